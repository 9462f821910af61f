//! `palaver-bench rebuild`: rebuilding every read model from history on the
//! embedded store.
//!
//! The store is filled with a realistic mix: per customer a lead, a thread,
//! a conversation, three inbound messages (each a thread and a conversation
//! event) and two replies that are accepted, sent, delivered and read;
//! every fifth conversation is closed and reopened. That is 22 events per
//! customer, across contact, thread and conversation streams. The figure is
//! a replay of `$all` from the start into a fresh read-model file with all
//! projectors, as `palaver projections replay` does it. Peak memory is the
//! process's peak resident set during the rebuild alone (reset before it
//! through /proc/self/clear_refs).

use std::{path::Path, sync::Arc, time::Instant};

use chrono::{Duration, TimeZone, Utc};
use clap::Args;
use palaver_domain::{
    codec::{self, DomainEvent},
    contact::{ContactEvent, ContactKind},
    conversation::{ConversationEvent, WakeReason},
    delivery::{DeliveryProgress, DeliveryUpdate},
    ids::{
        Actor, ContactId, ConversationId, MessageId, PhoneNumberId, TeammateId, ThreadId, WaId, WaMessageId,
        WorkspaceId,
    },
    message::{InboundContent, InboundMessage, OutboundContent},
    phone::PhoneNumber,
    thread::{ConversationOrigin, InboundRouting, ThreadEvent, ThreadIdentity},
};
use palaver_projections::{
    models,
    rebuild::{self, Until},
};
use palaver_store::{EventStore, ExpectedRevision, Limits, Metadata, NewEvent, SqliteStore, StreamName};
use uuid::Uuid;

use crate::Figures;

#[derive(Debug, Args)]
pub struct Options {
    /// Events to rebuild from (rounded to whole customers).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { events: 1_000_000 }
    }
}

/// Events in one customer's history (see [`customer`]).
pub(crate) const EVENTS_PER_CUSTOMER: u64 = 22;

pub async fn run(dir: &Path, options: &Options, figures: &mut Figures) -> anyhow::Result<()> {
    let store_path = dir.join("rebuild-events.db");
    let models_path = dir.join("rebuild-read-models.db");
    crate::remove_database(&store_path);
    crate::remove_database(&models_path);
    let store = Arc::new(SqliteStore::open(&store_path, Limits::default())?);
    let customers = options.events.div_ceil(EVENTS_PER_CUSTOMER);
    fill(&store, customers).await?;
    let total = store.head().await?.0;

    reset_peak_memory();
    let start = Instant::now();
    let store: Arc<dyn EventStore> = store;
    let db = rebuild::replay(
        Arc::clone(&store),
        &models_path,
        models::all(),
        Until::Head,
        |_| {},
    )
    .await?;
    let elapsed = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        db.position().0 == total,
        "rebuilt to {} of {total}",
        db.position()
    );
    figures.record("rebuild_events", total as f64, "events");
    figures.record("rebuild_events_per_s", total as f64 / elapsed, "events/s");
    if let Some(peak) = peak_memory_mib() {
        figures.record("rebuild_peak_memory", peak, "MiB");
    }
    Ok(())
}

/// Writes `customers` customers' histories from 8 tasks, into any store
/// (the PostgreSQL area rebuilds from the same history).
pub(crate) async fn fill<S: EventStore + 'static>(store: &Arc<S>, customers: u64) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, next) = (Arc::clone(store), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= customers {
                    return anyhow::Ok(());
                }
                for (stream, events) in customer(n) {
                    store
                        .append(&StreamName::new(stream)?, ExpectedRevision::Any, events)
                        .await?;
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// One customer's history, stream by stream, in the order they are appended.
fn customer(n: u64) -> Vec<(String, Vec<NewEvent>)> {
    let at =
        Utc.timestamp_opt(1_760_000_000, 0).single().unwrap_or_default() + Duration::seconds(n as i64 * 7);
    let workspace = WorkspaceId::from_uuid(Uuid::from_u128(u128::from(n % 10) + 1));
    let number = PhoneNumberId::new(format!("10{}", n % 10));
    let wa = WaId::new(format!("4477009{n:05}"));
    let contact = ContactId::derive_lead(workspace, &wa);
    let thread = ThreadId::derive(&number, &wa);
    let conversation = ConversationId::from_uuid(Uuid::from_u128((u128::from(n) << 16) | 1));
    let encode = |event: DomainEvent, at| {
        let encoded = codec::encode(&event);
        NewEvent::new(
            encoded.event_type,
            encoded.payload,
            Metadata::new(at).with_actor("bench"),
        )
    };

    let phone = PhoneNumber::from_wa_id(wa.as_str()).ok();
    let contact_events = vec![encode(
        DomainEvent::Contact(ContactEvent::Created {
            contact_id: contact,
            workspace_id: workspace,
            kind: ContactKind::Lead,
            name: format!("Customer {n}"),
            phone_numbers: phone.into_iter().collect(),
            wa_id: Some(wa.clone()),
            external_user_id: None,
            by: Actor::System,
            at,
        }),
        at,
    )];

    let identity = ThreadIdentity {
        workspace_id: workspace,
        business_phone_number_id: number,
        customer_wa_id: wa,
        contact_id: contact,
    };
    let mut thread_events = vec![
        encode(
            DomainEvent::Thread(ThreadEvent::Started {
                thread_id: thread,
                identity,
                at,
            }),
            at,
        ),
        encode(
            DomainEvent::Thread(ThreadEvent::ConversationStarted {
                thread_id: thread,
                conversation_id: conversation,
                sequence: 1,
                origin: ConversationOrigin::Inbound,
                request_id: None,
                at,
            }),
            at,
        ),
    ];
    let mut conversation_events = vec![encode(
        DomainEvent::Conversation(ConversationEvent::Started {
            conversation_id: conversation,
            thread_id: thread,
            contact_id: contact,
            origin: ConversationOrigin::Inbound,
            at,
        }),
        at,
    )];
    let conversation_event = |event| DomainEvent::Conversation(event);
    for i in 0..3u64 {
        let sent_at = at + Duration::minutes(i as i64 * 10);
        let wa_message = WaMessageId::new(format!("wamid.{n}.{i}"));
        thread_events.push(encode(
            DomainEvent::Thread(ThreadEvent::CustomerMessageAccepted {
                thread_id: thread,
                wa_message_id: wa_message.clone(),
                sent_at,
                received_at: sent_at,
                conversation_id: conversation,
                routing: InboundRouting::Joined,
            }),
            sent_at,
        ));
        let message = InboundMessage {
            wa_message_id: wa_message,
            sent_at,
            content: InboundContent::Text {
                body: format!("Hello, this is message {i} about my order {n}, can you help?"),
            },
            context: Default::default(),
        };
        conversation_events.push(encode(
            conversation_event(ConversationEvent::MessageReceived {
                conversation_id: conversation,
                message,
                received_at: sent_at,
            }),
            sent_at,
        ));
        if i == 2 {
            break;
        }
        let reply_at = sent_at + Duration::minutes(2);
        let message_id = MessageId::from_uuid(Uuid::from_u128((u128::from(n) << 16) | (u128::from(i) + 100)));
        conversation_events.push(encode(
            conversation_event(ConversationEvent::OutboundQueued {
                conversation_id: conversation,
                message_id,
                content: OutboundContent::Text {
                    body: "Thanks! Let me check that for you 🙂".to_owned(),
                },
                author: Actor::Teammate(TeammateId::new("agent-1")),
                at: reply_at,
            }),
            reply_at,
        ));
        conversation_events.push(encode(
            conversation_event(ConversationEvent::OutboundAccepted {
                conversation_id: conversation,
                message_id,
                wa_message_id: WaMessageId::new(format!("wamid.out.{n}.{i}")),
                at: reply_at,
            }),
            reply_at,
        ));
        for progress in [
            DeliveryProgress::Sent,
            DeliveryProgress::Delivered,
            DeliveryProgress::Read,
        ] {
            conversation_events.push(encode(
                conversation_event(ConversationEvent::DeliveryStatusChanged {
                    conversation_id: conversation,
                    message_id,
                    update: DeliveryUpdate::Progress {
                        progress,
                        at: reply_at,
                    },
                }),
                reply_at,
            ));
        }
    }
    let by = Actor::Teammate(TeammateId::new("agent-1"));
    let end = at + Duration::hours(1);
    if n.is_multiple_of(5) {
        conversation_events.push(encode(
            conversation_event(ConversationEvent::Closed {
                conversation_id: conversation,
                by: by.clone(),
                at: end,
            }),
            end,
        ));
        conversation_events.push(encode(
            conversation_event(ConversationEvent::Reopened {
                conversation_id: conversation,
                reason: WakeReason::Manual,
                by,
                at: end,
            }),
            end,
        ));
    } else {
        conversation_events.push(encode(
            conversation_event(ConversationEvent::Assigned {
                conversation_id: conversation,
                assignee: Some(TeammateId::new("agent-2")),
                by: by.clone(),
                at: end,
            }),
            end,
        ));
        conversation_events.push(encode(
            conversation_event(ConversationEvent::Closed {
                conversation_id: conversation,
                by,
                at: end,
            }),
            end,
        ));
    }
    vec![
        (format!("contact-{contact}"), contact_events),
        (format!("thread-{thread}"), thread_events),
        (format!("conversation-{conversation}"), conversation_events),
    ]
}

/// Resets the kernel's record of this process's peak resident set.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set since the last reset, in MiB.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
