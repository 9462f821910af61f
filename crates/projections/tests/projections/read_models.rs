//! Scenarios from events to rows: each read model as a query sees it.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use palaver_domain::{
    codec::{self, DomainEvent},
    contact::{ContactEvent, ContactKind, MergeReason},
    conversation::{ConversationEvent, WakeReason},
    delivery::{DeliveryFailure, DeliveryProgress, DeliveryUpdate},
    ids::{
        Actor, ContactId, ConversationId, MessageId, PhoneNumberId, TeammateId, ThreadId, WaId, WaMessageId,
        WorkspaceId,
    },
    message::{InboundContent, InboundMessage, Media, OutboundContent},
    phone::{PhoneNumber, Region},
    thread::{ConversationOrigin, InboundRouting, ThreadEvent, ThreadIdentity},
};
use palaver_projections::{
    Error, Projections, ReadModelDb, models,
    queries::{AssigneeFilter, InboxQuery, ReadModels, Status},
    rebuild::{self, Until},
};
use palaver_store::{EventStore, ExpectedRevision, MemoryStore, Metadata, NewEvent, StreamName};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).unwrap()
}

/// A workspace with one business number, written event by event.
struct World {
    store: Arc<dyn EventStore>,
    dir: tempfile::TempDir,
    workspace: WorkspaceId,
    number: PhoneNumberId,
    replays: usize,
}

impl World {
    fn new() -> Self {
        World {
            store: Arc::new(MemoryStore::default()),
            dir: tempfile::tempdir().unwrap(),
            workspace: WorkspaceId::from_uuid(Uuid::from_u128(1)),
            number: PhoneNumberId::new("1000"),
            replays: 0,
        }
    }

    async fn append(&self, stream: String, event: DomainEvent, at: DateTime<Utc>) {
        let encoded = codec::encode(&event);
        let new = NewEvent::new(encoded.event_type, encoded.payload, Metadata::new(at));
        self.store
            .append(
                &StreamName::new(stream).unwrap(),
                ExpectedRevision::Any,
                vec![new],
            )
            .await
            .unwrap();
    }

    async fn contact(
        &self,
        n: u128,
        kind: ContactKind,
        name: &str,
        phone: &str,
        at: DateTime<Utc>,
    ) -> ContactId {
        let id = ContactId::from_uuid(Uuid::from_u128(1000 + n));
        let event = ContactEvent::Created {
            contact_id: id,
            workspace_id: self.workspace,
            kind,
            name: name.to_owned(),
            phone_numbers: vec![PhoneNumber::parse(phone, None).unwrap()],
            wa_id: None,
            external_user_id: None,
            by: Actor::System,
            at,
        };
        self.append(format!("contact-{id}"), DomainEvent::Contact(event), at)
            .await;
        id
    }

    async fn thread(&self, wa_id: &str, contact: ContactId, at: DateTime<Utc>) -> ThreadId {
        let wa = WaId::new(wa_id);
        let id = ThreadId::derive(&self.number, &wa);
        let identity = ThreadIdentity {
            workspace_id: self.workspace,
            business_phone_number_id: self.number.clone(),
            customer_wa_id: wa,
            contact_id: contact,
        };
        self.append(
            format!("thread-{id}"),
            DomainEvent::Thread(ThreadEvent::Started {
                thread_id: id,
                identity,
                at,
            }),
            at,
        )
        .await;
        id
    }

    async fn conversation(
        &self,
        thread: ThreadId,
        contact: ContactId,
        sequence: u32,
        at: DateTime<Utc>,
    ) -> ConversationId {
        let id = ConversationId::from_uuid(Uuid::from_u128(
            u128::from(sequence) + (thread.as_uuid().as_u128() << 8),
        ));
        let started = ThreadEvent::ConversationStarted {
            thread_id: thread,
            conversation_id: id,
            sequence,
            origin: ConversationOrigin::Inbound,
            request_id: None,
            at,
        };
        self.append(format!("thread-{thread}"), DomainEvent::Thread(started), at)
            .await;
        let started = ConversationEvent::Started {
            conversation_id: id,
            thread_id: thread,
            contact_id: contact,
            origin: ConversationOrigin::Inbound,
            at,
        };
        self.append(
            format!("conversation-{id}"),
            DomainEvent::Conversation(started),
            at,
        )
        .await;
        id
    }

    /// A customer message sent at `sent_at`, received a little later.
    async fn inbound(
        &self,
        thread: ThreadId,
        conversation: ConversationId,
        wa_message: &str,
        content: InboundContent,
        sent_at: DateTime<Utc>,
    ) {
        let received_at = sent_at + Duration::seconds(2);
        let accepted = ThreadEvent::CustomerMessageAccepted {
            thread_id: thread,
            wa_message_id: WaMessageId::new(wa_message),
            sent_at,
            received_at,
            conversation_id: conversation,
            routing: InboundRouting::Joined,
        };
        self.append(
            format!("thread-{thread}"),
            DomainEvent::Thread(accepted),
            received_at,
        )
        .await;
        let message = InboundMessage {
            wa_message_id: WaMessageId::new(wa_message),
            sent_at,
            content,
            context: Default::default(),
        };
        let received = ConversationEvent::MessageReceived {
            conversation_id: conversation,
            message,
            received_at,
        };
        self.append(
            format!("conversation-{conversation}"),
            DomainEvent::Conversation(received),
            received_at,
        )
        .await;
    }

    async fn conversation_event(
        &self,
        conversation: ConversationId,
        event: ConversationEvent,
        at: DateTime<Utc>,
    ) {
        self.append(
            format!("conversation-{conversation}"),
            DomainEvent::Conversation(event),
            at,
        )
        .await;
    }

    async fn reply(&self, conversation: ConversationId, n: u128, body: &str, at: DateTime<Utc>) -> MessageId {
        let id = MessageId::from_uuid(Uuid::from_u128(5000 + n));
        let queued = ConversationEvent::OutboundQueued {
            conversation_id: conversation,
            message_id: id,
            content: OutboundContent::Text {
                body: body.to_owned(),
            },
            author: Actor::Teammate(TeammateId::new("ana")),
            at,
        };
        self.conversation_event(conversation, queued, at).await;
        id
    }

    /// Replays everything into a fresh read-model file and reads it.
    async fn read_models(&mut self) -> ReadModels {
        self.replays += 1;
        let path = self.dir.path().join(format!("read-models-{}.db", self.replays));
        rebuild::replay(Arc::clone(&self.store), &path, models::all(), Until::Head, |_| {})
            .await
            .unwrap();
        ReadModels::open(path)
    }

    /// Live read models over the store, read twice: through a cache that
    /// follows the projector's commits, and afresh.
    fn live(&self) -> Live {
        let path = self.dir.path().join("live.db");
        let db = ReadModelDb::open(&path, models::all()).unwrap();
        let projections = Projections::start(Arc::clone(&self.store), db, &path, std::future::pending());
        Live {
            cached: ReadModels::open(&path).cached(projections.changes()),
            fresh: ReadModels::open(&path),
            projections,
            store: Arc::clone(&self.store),
            workspace: self.workspace.as_uuid(),
        }
    }

    /// Ada: a lead (+44 7700 900123), her thread, and its first
    /// conversation, all at `t0`.
    async fn ada(&self) -> (ContactId, ThreadId, ConversationId) {
        let lead = self
            .contact(1, ContactKind::Lead, "Ada", "+447700900123", t0())
            .await;
        let thread = self.thread("447700900123", lead, t0()).await;
        let conversation = self.conversation(thread, lead, 1, t0()).await;
        (lead, thread, conversation)
    }

    fn text(body: &str) -> InboundContent {
        InboundContent::Text {
            body: body.to_owned(),
        }
    }
}

/// Live read models, cached and not (see [`World::live`]).
struct Live {
    projections: Projections,
    cached: ReadModels,
    fresh: ReadModels,
    store: Arc<dyn EventStore>,
    workspace: Uuid,
}

impl Live {
    /// Waits until the read models hold everything written so far.
    async fn caught_up(&self) {
        let head = self.store.head().await.unwrap();
        self.projections
            .wait_for(head, std::time::Duration::from_secs(10))
            .await
            .unwrap();
    }

    /// Every first-page query, asked at `now` through the cache (twice:
    /// the second is answered from it when nothing changed) and afresh,
    /// reads the same; returns the unfiltered page.
    async fn same_at(&self, now: DateTime<Utc>) -> Vec<palaver_projections::queries::InboxRow> {
        self.caught_up().await;
        let statuses = [
            None,
            Some(Status::Open),
            Some(Status::Snoozed),
            Some(Status::Closed),
        ];
        let assignees = [AssigneeFilter::Anyone, AssigneeFilter::Unassigned];
        for status in statuses {
            for assignee in assignees.clone() {
                for limit in [1, 50] {
                    let query = InboxQuery {
                        status,
                        assignee: assignee.clone(),
                        limit,
                        ..InboxQuery::new(self.workspace)
                    };
                    let fresh = self.fresh.inbox(query.clone(), now).await.unwrap();
                    for _ in 0..2 {
                        let cached = self.cached.inbox(query.clone(), now).await.unwrap();
                        assert_eq!(cached, fresh, "{query:?} at {now}");
                    }
                }
            }
        }
        self.fresh
            .inbox(InboxQuery::new(self.workspace), now)
            .await
            .unwrap()
            .rows
            .clone()
    }
}

#[tokio::test]
async fn cached_inbox_pages_read_as_fresh_ones_through_writes_and_time() {
    let world = World::new();
    let (_, ada_thread, ada) = world.ada().await;
    let live = world.live();
    let minutes = |m: i64| t0() + Duration::minutes(m);

    // A customer message opens the window for 24 hours.
    world
        .inbound(ada_thread, ada, "wamid.1", World::text("one"), minutes(1))
        .await;
    let closes = minutes(1) + Duration::hours(24);
    for now in [minutes(2), closes - Duration::minutes(1), closes, minutes(2)] {
        let rows = live.same_at(now).await;
        assert_eq!(rows[0].needs_template, now >= closes, "at {now}");
    }
    assert_eq!(
        live.same_at(minutes(2)).await[0].last_message_preview.as_deref(),
        Some("one")
    );

    // A snooze runs out with no event: into the open pages, out of the snoozed ones.
    let by = Actor::Teammate(TeammateId::new("ana"));
    let until = minutes(120);
    let snoozed = ConversationEvent::Snoozed {
        conversation_id: ada,
        until,
        by: by.clone(),
        at: minutes(3),
    };
    world.conversation_event(ada, snoozed, minutes(3)).await;
    for now in [
        minutes(60),
        until - Duration::microseconds(1),
        until,
        minutes(60),
        minutes(180),
    ] {
        let rows = live.same_at(now).await;
        let expected = if now < until {
            Status::Snoozed
        } else {
            Status::Open
        };
        assert_eq!(rows[0].status, expected, "at {now}");
    }

    // Another customer writes: the page changes with the commit.
    let bo = world
        .contact(2, ContactKind::Lead, "Bo", "+447700900456", t0())
        .await;
    let bo_thread = world.thread("447700900456", bo, t0()).await;
    let bo_conversation = world.conversation(bo_thread, bo, 1, t0()).await;
    world
        .inbound(
            bo_thread,
            bo_conversation,
            "wamid.2",
            World::text("two"),
            minutes(5),
        )
        .await;
    assert_eq!(live.same_at(minutes(60)).await.len(), 2);

    // The closing-soon warning lapses when the window closes.
    let warning = ConversationEvent::WindowClosingSoon {
        conversation_id: ada,
        closes_at: closes,
        at: closes - Duration::hours(1),
    };
    world
        .conversation_event(ada, warning, closes - Duration::hours(1))
        .await;
    for now in [
        closes - Duration::minutes(30),
        closes,
        closes - Duration::minutes(30),
    ] {
        let rows = live.same_at(now).await;
        let row = rows
            .iter()
            .find(|row| row.conversation_id == ada.as_uuid())
            .unwrap();
        assert_eq!(row.window_closing_soon, now < closes, "at {now}");
    }

    // Closing moves Ada's conversation out of the open pages.
    let closed = ConversationEvent::Closed {
        conversation_id: ada,
        by,
        at: minutes(200),
    };
    world.conversation_event(ada, closed, minutes(200)).await;
    let rows = live.same_at(minutes(201)).await;
    let row = rows
        .iter()
        .find(|row| row.conversation_id == ada.as_uuid())
        .unwrap();
    assert_eq!(row.status, Status::Closed);

    // The second asking of each query was answered from the cache.
    let stats = live.cached.inbox_cache_stats();
    assert!(stats.hits >= stats.misses, "{stats:?}");
    assert_eq!(live.fresh.inbox_cache_stats(), Default::default());
}

#[tokio::test]
async fn only_first_pages_are_cached() {
    let world = World::new();
    let (_, thread, conversation) = world.ada().await;
    world
        .inbound(thread, conversation, "wamid.1", World::text("one"), t0())
        .await;
    let live = world.live();
    live.caught_up().await;
    let first = InboxQuery {
        limit: 1,
        ..InboxQuery::new(live.workspace)
    };
    for _ in 0..3 {
        live.cached.inbox(first.clone(), t0()).await.unwrap();
    }
    let later = InboxQuery {
        cursor: Some(format!("{}_{}", t0().timestamp_micros(), Uuid::max())),
        ..first
    };
    for _ in 0..3 {
        live.cached.inbox(later.clone(), t0()).await.unwrap();
    }
    let stats = live.cached.inbox_cache_stats();
    assert_eq!((stats.misses, stats.hits), (1, 2));
}

#[tokio::test]
async fn an_inbound_message_makes_an_inbox_row_a_timeline_entry_and_opens_the_window() {
    let mut world = World::new();
    let (lead, thread, conversation) = world.ada().await;
    let sent = t0() + Duration::minutes(1);
    world
        .inbound(thread, conversation, "wamid.1", World::text("Hello 👋"), sent)
        .await;
    let media = Media {
        media_id: "media-9".into(),
        mime_type: "image/jpeg".into(),
        sha256: "abc".into(),
    };
    world
        .inbound(
            thread,
            conversation,
            "wamid.2",
            InboundContent::Image {
                media,
                caption: "receipt".into(),
            },
            sent + Duration::seconds(30),
        )
        .await;

    let models = world.read_models().await;
    let later = sent + Duration::hours(1);
    let page = models
        .inbox(InboxQuery::new(world.workspace.as_uuid()), later)
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    let row = &page.rows[0];
    assert_eq!(row.conversation_id, conversation.as_uuid());
    assert_eq!(
        (row.contact_id, row.contact_name.as_str()),
        (lead.as_uuid(), "Ada")
    );
    assert_eq!((row.status, row.unread_count), (Status::Open, 2));
    assert_eq!(row.waiting_since, Some(sent));
    assert_eq!(row.last_message_preview.as_deref(), Some("Image: receipt"));
    assert_eq!(
        (
            row.last_message_kind.as_deref(),
            row.last_message_direction.as_deref()
        ),
        (Some("image"), Some("inbound"))
    );
    assert_eq!(row.channel, "whatsapp");
    assert!(!row.needs_template);

    let view = models
        .conversation(world.workspace.as_uuid(), conversation.as_uuid(), later)
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<_> = view
        .messages
        .iter()
        .map(|m| (m.kind.as_str(), m.summary.as_str()))
        .collect();
    assert_eq!(kinds, [("text", "Hello 👋"), ("image", "Image: receipt")]);
    assert_eq!(view.messages[1].media.as_deref(), Some("media-9"));
    assert_eq!(view.messages[1].mime_type.as_deref(), Some("image/jpeg"));

    // The window runs 24 hours from the latest customer message, judged by
    // the reader's clock.
    let last = sent + Duration::seconds(30);
    let window = |now| {
        let models = models.clone();
        let (workspace, thread) = (world.workspace.as_uuid(), thread.as_uuid());
        async move { models.window(workspace, thread, now).await.unwrap().unwrap() }
    };
    let open = window(last + Duration::hours(24) - Duration::seconds(1)).await;
    assert!(open.free_form_allowed);
    assert_eq!(open.last_customer_message_at, Some(last));
    assert_eq!(open.closes_at, Some(last + Duration::hours(24)));
    assert_eq!(open.current_conversation_id, Some(conversation.as_uuid()));
    assert!(!window(last + Duration::hours(24)).await.free_form_allowed);
    let page = models
        .inbox(
            InboxQuery::new(world.workspace.as_uuid()),
            last + Duration::hours(25),
        )
        .await
        .unwrap();
    assert!(page.rows[0].needs_template);
}

#[tokio::test]
async fn late_webhooks_do_not_move_the_window_or_the_preview_back() {
    let mut world = World::new();
    let (_, thread, conversation) = world.ada().await;
    world
        .inbound(
            thread,
            conversation,
            "wamid.new",
            World::text("newer"),
            t0() + Duration::hours(2),
        )
        .await;
    world
        .inbound(
            thread,
            conversation,
            "wamid.old",
            World::text("older"),
            t0() + Duration::hours(1),
        )
        .await;
    let models = world.read_models().await;
    let now = t0() + Duration::hours(3);
    let window = models
        .window(world.workspace.as_uuid(), thread.as_uuid(), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(window.last_customer_message_at, Some(t0() + Duration::hours(2)));
    let row = &models
        .inbox(InboxQuery::new(world.workspace.as_uuid()), now)
        .await
        .unwrap()
        .rows[0];
    assert_eq!(row.last_message_preview.as_deref(), Some("newer"));
    assert_eq!(row.waiting_since, Some(t0() + Duration::hours(1)));
    // The timeline is in WhatsApp's order.
    let view = models
        .conversation(world.workspace.as_uuid(), conversation.as_uuid(), now)
        .await
        .unwrap()
        .unwrap();
    let order: Vec<_> = view.messages.iter().map(|m| m.summary.as_str()).collect();
    assert_eq!(order, ["older", "newer"]);
}

#[tokio::test]
async fn replies_clear_waiting_and_delivery_states_only_move_forward() {
    let mut world = World::new();
    let (_, thread, conversation) = world.ada().await;
    world
        .inbound(thread, conversation, "wamid.1", World::text("hi"), t0())
        .await;
    let at = t0() + Duration::minutes(5);
    let first = world.reply(conversation, 1, "Hello Ada 😊", at).await;
    let second = world
        .reply(conversation, 2, "Anything else?", at + Duration::seconds(1))
        .await;
    let status = |message_id, update| ConversationEvent::DeliveryStatusChanged {
        conversation_id: conversation,
        message_id,
        update,
    };
    let progress = |progress, seconds| DeliveryUpdate::Progress {
        progress,
        at: at + Duration::seconds(seconds),
    };
    let accepted = ConversationEvent::OutboundAccepted {
        conversation_id: conversation,
        message_id: first,
        wa_message_id: WaMessageId::new("wamid.out.1"),
        at,
    };
    world.conversation_event(conversation, accepted, at).await;
    world
        .conversation_event(
            conversation,
            status(first, progress(DeliveryProgress::Sent, 1)),
            at,
        )
        .await;
    world
        .conversation_event(
            conversation,
            status(first, progress(DeliveryProgress::Read, 3)),
            at,
        )
        .await;
    // A late "delivered" after "read" changes nothing.
    world
        .conversation_event(
            conversation,
            status(first, progress(DeliveryProgress::Delivered, 2)),
            at,
        )
        .await;
    let failure = DeliveryFailure {
        code: 131047,
        reason: "Re-engagement message".into(),
    };
    world
        .conversation_event(
            conversation,
            status(
                second,
                DeliveryUpdate::Failed {
                    failure,
                    at: at + Duration::seconds(4),
                },
            ),
            at,
        )
        .await;
    // Nothing moves a failed message forward again.
    world
        .conversation_event(
            conversation,
            status(second, progress(DeliveryProgress::Delivered, 5)),
            at,
        )
        .await;

    let models = world.read_models().await;
    let now = at + Duration::minutes(1);
    let row = &models
        .inbox(InboxQuery::new(world.workspace.as_uuid()), now)
        .await
        .unwrap()
        .rows[0];
    assert_eq!((row.unread_count, row.waiting_since), (0, None));
    assert_eq!(
        (
            row.last_message_preview.as_deref(),
            row.last_message_direction.as_deref()
        ),
        (Some("Anything else?"), Some("outbound"))
    );
    let view = models
        .conversation(world.workspace.as_uuid(), conversation.as_uuid(), now)
        .await
        .unwrap()
        .unwrap();
    let first = &view.messages[1];
    assert_eq!(
        (first.delivery_state.as_deref(), first.wa_message_id.as_deref()),
        (Some("read"), Some("wamid.out.1"))
    );
    assert_eq!(first.author.as_deref(), Some("teammate:ana"));
    let second = &view.messages[2];
    assert_eq!(second.delivery_state.as_deref(), Some("failed"));
    assert_eq!(
        (second.failure_code, second.failure_reason.as_deref()),
        (Some(131047), Some("Re-engagement message"))
    );
}

#[tokio::test]
async fn status_assignee_and_a_new_conversation_after_closing() {
    let mut world = World::new();
    let lead = world
        .contact(1, ContactKind::Lead, "Ada", "+447700900123", t0())
        .await;
    let thread = world.thread("447700900123", lead, t0()).await;
    let first = world.conversation(thread, lead, 1, t0()).await;
    world
        .inbound(thread, first, "wamid.1", World::text("one"), t0())
        .await;
    let by = Actor::Teammate(TeammateId::new("ana"));
    let at = t0() + Duration::minutes(1);
    let assign = ConversationEvent::Assigned {
        conversation_id: first,
        assignee: Some(TeammateId::new("bo")),
        by: by.clone(),
        at,
    };
    world.conversation_event(first, assign, at).await;
    let until = t0() + Duration::hours(2);
    world
        .conversation_event(
            first,
            ConversationEvent::Snoozed {
                conversation_id: first,
                until,
                by: by.clone(),
                at,
            },
            at,
        )
        .await;

    let models = world.read_models().await;
    let workspace = world.workspace.as_uuid();
    let row = &models
        .inbox(InboxQuery::new(workspace), t0() + Duration::hours(1))
        .await
        .unwrap()
        .rows[0];
    assert_eq!(
        (row.status, row.assignee.as_deref(), row.snoozed_until),
        (Status::Snoozed, Some("bo"), Some(until))
    );
    // Once the snooze runs out the row reads as open, without any event.
    let row = &models
        .inbox(InboxQuery::new(workspace), until)
        .await
        .unwrap()
        .rows[0];
    assert_eq!(row.status, Status::Open);

    world
        .conversation_event(
            first,
            ConversationEvent::Closed {
                conversation_id: first,
                by: by.clone(),
                at,
            },
            at,
        )
        .await;
    let reopen_at = at + Duration::minutes(1);
    let reopened = ConversationEvent::Reopened {
        conversation_id: first,
        reason: WakeReason::CustomerMessage,
        by: Actor::System,
        at: reopen_at,
    };
    world.conversation_event(first, reopened, reopen_at).await;
    world
        .conversation_event(
            first,
            ConversationEvent::Closed {
                conversation_id: first,
                by: by.clone(),
                at: reopen_at,
            },
            reopen_at,
        )
        .await;
    // After the quiet period the thread starts conversation 2.
    let later = t0() + Duration::days(3);
    let second = world.conversation(thread, lead, 2, later).await;
    world
        .inbound(thread, second, "wamid.2", World::text("two"), later)
        .await;

    let models = world.read_models().await;
    let now = later + Duration::minutes(1);
    let all = models.inbox(InboxQuery::new(workspace), now).await.unwrap();
    let rows: Vec<_> = all.rows.iter().map(|r| (r.conversation_id, r.status)).collect();
    assert_eq!(
        rows,
        [
            (second.as_uuid(), Status::Open),
            (first.as_uuid(), Status::Closed)
        ]
    );
    let closed = InboxQuery {
        status: Some(Status::Closed),
        ..InboxQuery::new(workspace)
    };
    assert_eq!(models.inbox(closed, now).await.unwrap().rows.len(), 1);
    let unassigned = InboxQuery {
        assignee: AssigneeFilter::Unassigned,
        ..InboxQuery::new(workspace)
    };
    assert_eq!(
        models.inbox(unassigned, now).await.unwrap().rows[0].conversation_id,
        second.as_uuid()
    );
    let bos = InboxQuery {
        assignee: AssigneeFilter::Teammate("bo".into()),
        ..InboxQuery::new(workspace)
    };
    assert_eq!(
        models.inbox(bos, now).await.unwrap().rows[0].conversation_id,
        first.as_uuid()
    );
    let window = models
        .window(workspace, thread.as_uuid(), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(window.current_conversation_id, Some(second.as_uuid()));
}

#[tokio::test]
async fn merged_contacts_resolve_to_their_survivor_everywhere() {
    let mut world = World::new();
    let user = world
        .contact(1, ContactKind::User, "Ada Lovelace", "+44 20 7946 0000", t0())
        .await;
    let lead = world
        .contact(2, ContactKind::Lead, "ada", "+447700900123", t0())
        .await;
    let thread = world.thread("447700900123", lead, t0()).await;
    let conversation = world.conversation(thread, lead, 1, t0()).await;
    world
        .inbound(
            thread,
            conversation,
            "wamid.1",
            World::text("hi"),
            t0() + Duration::minutes(1),
        )
        .await;
    let merged = ContactEvent::Merged {
        contact_id: lead,
        into: user,
        reason: MergeReason::SamePhone,
        by: Actor::System,
        at: t0(),
    };
    world
        .append(format!("contact-{lead}"), DomainEvent::Contact(merged), t0())
        .await;

    let models = world.read_models().await;
    let workspace = world.workspace.as_uuid();
    let now = t0() + Duration::hours(1);
    let resolved = models.contact(workspace, lead.as_uuid()).await.unwrap().unwrap();
    assert_eq!(
        (
            resolved.contact_id,
            resolved.name.as_str(),
            resolved.kind.as_str()
        ),
        (user.as_uuid(), "Ada Lovelace", "user")
    );
    assert_eq!(resolved.merged_from, [lead.as_uuid()]);
    assert_eq!(resolved.phone_numbers, ["+442079460000", "+447700900123"]);
    assert_eq!(resolved.last_active_at, Some(t0() + Duration::minutes(1)));
    // Any spelling of the number finds the survivor.
    let gb = Region::parse("GB").unwrap();
    for spelling in [
        "+44 7700 900123",
        "+447700900123",
        "0044 7700 900123",
        "07700 900123",
    ] {
        let found = models
            .contacts_by_phone(workspace, spelling, Some(gb))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{spelling}");
        assert_eq!(found[0].contact_id, user.as_uuid());
    }
    assert!(matches!(
        models
            .contacts_by_phone(workspace, "not a number", Some(gb))
            .await,
        Err(Error::InvalidArgument { .. })
    ));
    let row = &models.inbox(InboxQuery::new(workspace), now).await.unwrap().rows[0];
    assert_eq!(
        (row.contact_id, row.contact_name.as_str()),
        (user.as_uuid(), "Ada Lovelace")
    );
    let window = models
        .window(workspace, thread.as_uuid(), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(window.contact_id, user.as_uuid());

    // A chain: the user merged again follows through.
    let third = world
        .contact(3, ContactKind::User, "A. Lovelace", "+441632960000", t0())
        .await;
    let again = ContactEvent::Merged {
        contact_id: user,
        into: third,
        reason: MergeReason::Manual,
        by: Actor::System,
        at: t0(),
    };
    world
        .append(format!("contact-{user}"), DomainEvent::Contact(again), t0())
        .await;
    let models = world.read_models().await;
    let resolved = models.contact(workspace, lead.as_uuid()).await.unwrap().unwrap();
    assert_eq!(resolved.contact_id, third.as_uuid());
    let mut from = resolved.merged_from.clone();
    from.sort();
    let mut expected = vec![user.as_uuid(), lead.as_uuid()];
    expected.sort();
    assert_eq!(from, expected);
}

/// Every query, asked again with other values bound, reuses its prepared
/// statement: SQLite must not parse and plan it anew each time (a plan
/// that depends on a bound value gets expired on every reuse; that was
/// once half the server's time under inbox load).
#[tokio::test]
async fn queries_reuse_their_prepared_statements() {
    let mut world = World::new();
    let (lead, thread, conversation) = world.ada().await;
    world.reply(conversation, 1, "Hello Ada", t0()).await;
    let models = world.read_models().await;
    let gb = Region::parse("GB").unwrap();
    let others = [world.workspace.as_uuid(), Uuid::from_u128(0xbad)];
    for (round, workspace) in others.into_iter().chain(others).enumerate() {
        let now = t0() + Duration::minutes(round as i64 + 1);
        let filtered = InboxQuery {
            status: Some(Status::Open),
            assignee: AssigneeFilter::Teammate(format!("ana-{round}")),
            limit: 10 + round as u32,
            ..InboxQuery::new(workspace)
        };
        let first = models.inbox(InboxQuery::new(workspace), now).await.unwrap();
        models.inbox(filtered, now).await.unwrap();
        if let Some(cursor) = first.rows.first().map(|row| {
            format!(
                "{}_{}",
                row.last_activity_at.timestamp_micros(),
                row.conversation_id
            )
        }) {
            let next = InboxQuery {
                cursor: Some(cursor),
                ..InboxQuery::new(workspace)
            };
            models.inbox(next, now).await.unwrap();
        }
        models
            .conversation(workspace, conversation.as_uuid(), now)
            .await
            .unwrap();
        models.window(workspace, thread.as_uuid(), now).await.unwrap();
        models.contact(workspace, lead.as_uuid()).await.unwrap();
        let phone = format!("+44 7700 90012{}", round % 2 + 3);
        models
            .contacts_by_phone(workspace, &phone, Some(gb))
            .await
            .unwrap();
        models.contact_by_wa_id(workspace, "447700900123").await.unwrap();
        models
            .stream_owner(&format!("conversation-{conversation}"))
            .await
            .unwrap();
        models.due_timers(now, 10 + round as u32).await.unwrap();
    }
    assert_eq!(models.reprepared_statements(), 0);
}

#[tokio::test]
async fn queries_are_scoped_to_their_workspace_and_paged() {
    let mut world = World::new();
    let lead = world
        .contact(1, ContactKind::Lead, "Ada", "+447700900123", t0())
        .await;
    let mut conversations = Vec::new();
    for i in 0..5u32 {
        let thread = world.thread(&format!("4477009001{i:02}"), lead, t0()).await;
        let conversation = world.conversation(thread, lead, 1, t0()).await;
        world
            .inbound(
                thread,
                conversation,
                &format!("wamid.{i}"),
                World::text("x"),
                t0() + Duration::minutes(i64::from(i % 3)),
            )
            .await;
        conversations.push(conversation);
    }
    let models = world.read_models().await;
    let workspace = world.workspace.as_uuid();
    let now = t0() + Duration::hours(1);
    let mut seen = Vec::new();
    let mut query = InboxQuery {
        limit: 2,
        ..InboxQuery::new(workspace)
    };
    loop {
        let page = models.inbox(query.clone(), now).await.unwrap();
        assert!(page.rows.len() <= 2);
        seen.extend(page.rows.iter().map(|r| (r.last_activity_at, r.conversation_id)));
        match &page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor.clone()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "most recent first, no duplicates");

    let other = Uuid::from_u128(999);
    assert!(
        models
            .inbox(InboxQuery::new(other), now)
            .await
            .unwrap()
            .rows
            .is_empty()
    );
    assert!(
        models
            .conversation(other, conversations[0].as_uuid(), now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(models.contact(other, lead.as_uuid()).await.unwrap().is_none());
    assert!(
        models
            .contacts_by_phone(other, "+447700900123", None)
            .await
            .unwrap()
            .is_empty()
    );
    let bad = InboxQuery {
        cursor: Some("garbage".into()),
        ..InboxQuery::new(workspace)
    };
    assert!(matches!(
        models.inbox(bad, now).await,
        Err(Error::InvalidArgument { field: "cursor", .. })
    ));
    let zero = InboxQuery {
        limit: 0,
        ..InboxQuery::new(workspace)
    };
    assert!(matches!(
        models.inbox(zero, now).await,
        Err(Error::InvalidArgument { field: "limit", .. })
    ));
}

#[tokio::test]
async fn projecting_the_same_events_twice_gives_identical_tables() {
    let world = World::new();
    let (_, thread, conversation) = world.ada().await;
    world
        .inbound(thread, conversation, "wamid.1", World::text("hi"), t0())
        .await;
    world
        .reply(conversation, 1, "hello", t0() + Duration::minutes(1))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let one = rebuild::replay(
        Arc::clone(&world.store),
        &dir.path().join("1.db"),
        models::all(),
        Until::Head,
        |_| {},
    )
    .await
    .unwrap();
    let two = rebuild::replay(
        Arc::clone(&world.store),
        &dir.path().join("2.db"),
        models::all(),
        Until::Head,
        |_| {},
    )
    .await
    .unwrap();
    for projector in ["inbox", "timeline", "window", "contacts"] {
        assert_eq!(
            one.digest(projector).unwrap(),
            two.digest(projector).unwrap(),
            "{projector}"
        );
    }
}
