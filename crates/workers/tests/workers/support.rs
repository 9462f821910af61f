//! Shared by the worker tests: an application over an in-memory store with
//! live read models and a manual clock, one connected business number with
//! an approved template, and worker runtimes over the same store.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use palaver_app::channel::SyncedTemplate;
use palaver_app::{App, Clock, CommandContext, ManualClock};
use palaver_domain::ids::{
    Actor, BusinessAccountId, ConversationId, MessageId, PhoneNumberId, TeammateId, WaId, WaMessageId,
    WorkspaceId,
};
use palaver_domain::message::{InboundContent, InboundMessage, Reply};
use palaver_domain::templates::{
    ComponentKind, TemplateCategory, TemplateComponent, TemplateDefinition, TemplateSend, TemplateStatus,
};
use palaver_projections::{Projections, ReadModelDb, models, queries::ReadModels};
use palaver_store::{EventStore, MemoryStore, Position};
use palaver_workers::checkpoint::SqliteCheckpoints;
use palaver_workers::{LocalLeases, RunOptions, Runtime};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The business number (Meta's ids are digits).
pub const NUMBER: &str = "100000000000001";
/// Its WhatsApp Business Account.
pub const ACCOUNT: &str = "200000000000001";
/// A customer's WhatsApp id.
pub const CUSTOMER: &str = "447700900123";

/// When every test starts.
pub fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).unwrap()
}

/// An application and what it runs over.
pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn EventStore>,
    pub workspace: WorkspaceId,
    pub number: PhoneNumberId,
    /// Read models and checkpoint files live here.
    pub dir: tempfile::TempDir,
    /// Dropped with the test: stops the projection loop.
    _stop: oneshot::Sender<()>,
}

/// An application over a fresh in-memory store, with live read models, a
/// [`ManualClock`] at [`t0`], the number [`NUMBER`] connected and the
/// template `welcome` (one body parameter) approved.
pub async fn app_with_clock() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::default());
    let path = dir.path().join("read-models.db");
    let db = ReadModelDb::open(&path, models::all()).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let projections = Projections::start(Arc::clone(&store), db, &path, async {
        let _ = stopped.await;
    });
    let clock = Arc::new(ManualClock::new(t0()));
    let app = App::new(
        Arc::clone(&store),
        projections.clone(),
        ReadModels::open(&path).cached(projections.changes()),
        clock.clone(),
    );
    let test = TestApp {
        app,
        clock,
        store,
        workspace: WorkspaceId::from_uuid(Uuid::from_u128(0xA)),
        number: PhoneNumberId::new(NUMBER),
        dir,
        _stop: stop,
    };
    let ctx = test.teammate();
    test.app
        .connect_number(
            &ctx,
            test.number.clone(),
            "+1 555 000 1111",
            BusinessAccountId::new(ACCOUNT),
        )
        .await
        .unwrap();
    test.app
        .sync_templates(&ctx, BusinessAccountId::new(ACCOUNT), vec![welcome_template()])
        .await
        .unwrap();
    test
}

impl TestApp {
    /// A teammate of the workspace.
    pub fn teammate(&self) -> CommandContext {
        CommandContext::new(self.workspace, Actor::Teammate(TeammateId::new("alice")))
    }

    /// Palaver itself, in the workspace (webhooks, workers).
    pub fn system(&self) -> CommandContext {
        CommandContext::new(self.workspace, Actor::System)
    }

    /// A customer's text message, sent at the clock's time; the
    /// conversation it landed in.
    pub async fn inbound(&self, wa_id: &str, wa_message_id: &str, text: &str) -> ConversationId {
        let message = InboundMessage {
            wa_message_id: WaMessageId::new(wa_message_id),
            sent_at: self.clock.now(),
            content: InboundContent::Text {
                body: text.to_owned(),
            },
            context: Default::default(),
        };
        self.app
            .record_inbound(
                &self.system(),
                self.number.clone(),
                WaId::new(wa_id),
                "Ada",
                message,
            )
            .await
            .unwrap()
            .value
            .conversation_id
    }

    /// A teammate's text reply; the message and the position of its
    /// `OutboundMessageQueued`.
    pub async fn reply(&self, conversation_id: ConversationId, text: &str) -> (MessageId, Position) {
        let sent = self
            .app
            .send_reply(
                &self.teammate(),
                conversation_id,
                None,
                Reply::Text {
                    body: text.to_owned(),
                },
            )
            .await
            .unwrap();
        (sent.value, sent.position)
    }

    /// The `welcome` template to `name`; the message and its position.
    pub async fn template(&self, conversation_id: ConversationId, name: &str) -> (MessageId, Position) {
        let sent = self
            .app
            .send_template(&self.teammate(), conversation_id, None, welcome(name))
            .await
            .unwrap();
        (sent.value, sent.position)
    }

    /// Checkpoints in their own file: a new `file` is a worker that never
    /// saved one (a restart after a crash that lost it).
    pub fn checkpoints(&self, file: &str) -> Arc<SqliteCheckpoints> {
        Arc::new(SqliteCheckpoints::open(&self.dir.path().join(file)).unwrap())
    }

    /// A worker runtime over the application's store.
    pub fn runtime(&self, checkpoints: Arc<SqliteCheckpoints>) -> Runtime {
        Runtime {
            store: Arc::clone(&self.store),
            checkpoints,
            leases: Arc::new(LocalLeases),
            options: run_options(),
        }
    }
}

/// Worker loop timings for tests: milliseconds, not seconds.
pub fn run_options() -> RunOptions {
    RunOptions {
        retry_base: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        save_every: Duration::from_millis(10),
        lease_poll: Duration::from_millis(10),
    }
}

/// Waits until `check` holds, polling (real time: workers talk to real
/// sockets); fails the test after five seconds.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The `welcome` template as the catalogue knows it.
pub fn welcome_template() -> SyncedTemplate {
    SyncedTemplate {
        definition: TemplateDefinition {
            name: "welcome".into(),
            language: "en".into(),
            category: TemplateCategory::Utility,
            components: vec![TemplateComponent {
                kind: ComponentKind::Body,
                format: "TEXT".into(),
                text: "Hello {{1}}, how can we help?".into(),
            }],
        },
        status: TemplateStatus::Approved,
    }
}

/// A send of `welcome`.
pub fn welcome(name: &str) -> TemplateSend {
    TemplateSend {
        name: "welcome".into(),
        language: "en".into(),
        header_parameters: vec![],
        body_parameters: vec![name.into()],
    }
}
