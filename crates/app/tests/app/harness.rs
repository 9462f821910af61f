//! A workspace with one connected number and an approved template, over a
//! store and live read models in a temporary folder.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use palaver_app::channel::SyncedTemplate;
use palaver_app::{App, CommandContext, CommandResult, Error, ManualClock, Result};
use palaver_domain::ids::{
    Actor, BusinessAccountId, PhoneNumberId, TeammateId, WaId, WaMessageId, WorkspaceId,
};
use palaver_domain::message::{InboundContent, InboundMessage};
use palaver_domain::templates::{
    ComponentKind, TemplateCategory, TemplateComponent, TemplateDefinition, TemplateSend, TemplateStatus,
};
use palaver_projections::{Projections, ReadModelDb, models, queries::ReadModels};
use palaver_store::{AllFilter, EventStore, MemoryStore, Position, SqliteStore};
use tokio::sync::oneshot;
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).unwrap()
}

pub const NUMBER: &str = "1000";
pub const ACCOUNT: &str = "waba-1";

pub struct World {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn EventStore>,
    pub workspace: WorkspaceId,
    pub number: PhoneNumberId,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl World {
    /// Over an in-memory store.
    pub async fn new() -> World {
        Self::over(Arc::new(MemoryStore::default()), tempfile::tempdir().unwrap()).await
    }

    /// Over an embedded SQLite store in a temporary folder.
    pub async fn sqlite() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("events.db"), Default::default()).unwrap();
        Self::over(Arc::new(store), dir).await
    }

    async fn over(store: Arc<dyn EventStore>, dir: tempfile::TempDir) -> World {
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
        let world = World {
            app,
            clock,
            store,
            workspace: WorkspaceId::from_uuid(Uuid::from_u128(0xA)),
            number: PhoneNumberId::new(NUMBER),
            _dir: dir,
            _stop: stop,
        };
        world.connect(&world.ctx(), NUMBER, "+44 20 7946 0000").await;
        world.sync_welcome(&world.ctx()).await;
        world
    }

    /// A second application over the same store and read models, as a
    /// second process would be (its own locks).
    pub fn second_app(&self) -> App {
        App::new(
            Arc::clone(&self.store),
            self.app.projections(),
            self.app.read_models(),
            self.clock.clone(),
        )
    }

    /// A teammate of the main workspace.
    pub fn ctx(&self) -> CommandContext {
        CommandContext::new(self.workspace, Actor::Teammate(TeammateId::new("alice")))
    }

    /// A teammate of another workspace.
    pub fn other_ctx(&self) -> CommandContext {
        CommandContext::new(
            WorkspaceId::from_uuid(Uuid::from_u128(0xB)),
            Actor::Teammate(TeammateId::new("bob")),
        )
    }

    /// The webhook's context.
    pub fn webhook(&self) -> CommandContext {
        CommandContext::new(self.workspace, Actor::System)
    }

    pub async fn connect(&self, ctx: &CommandContext, number: &str, display: &str) {
        self.app
            .connect_number(
                ctx,
                PhoneNumberId::new(number),
                display,
                BusinessAccountId::new(ACCOUNT),
            )
            .await
            .unwrap();
    }

    pub async fn sync_welcome(&self, ctx: &CommandContext) {
        self.app
            .sync_templates(ctx, BusinessAccountId::new(ACCOUNT), vec![welcome_template()])
            .await
            .unwrap();
    }

    /// A customer text message, sent at the clock's time.
    pub async fn inbound(
        &self,
        wa_id: &str,
        wa_message_id: &str,
        text: &str,
    ) -> Result<CommandResult<palaver_app::Inbound>> {
        self.inbound_on(&self.app, wa_id, wa_message_id, text).await
    }

    pub async fn inbound_on(
        &self,
        app: &App,
        wa_id: &str,
        wa_message_id: &str,
        text: &str,
    ) -> Result<CommandResult<palaver_app::Inbound>> {
        app.record_inbound(
            &self.webhook(),
            self.number.clone(),
            WaId::new(wa_id),
            "Customer",
            text_message(wa_message_id, text, self.clock.now()),
        )
        .await
    }

    /// Events of these types in the whole store.
    pub async fn count(&self, event_type: &str) -> usize {
        self.store
            .read_all(Position::START, &AllFilter::event_types([event_type]), 100_000)
            .await
            .unwrap()
            .len()
    }

    pub async fn settle(&self) {
        let head = self.store.head().await.unwrap();
        self.app.wait_for(Some(head)).await.unwrap();
    }
}

use palaver_app::Clock as _;

pub fn text_message(wa_message_id: &str, text: &str, sent_at: DateTime<Utc>) -> InboundMessage {
    InboundMessage {
        wa_message_id: WaMessageId::new(wa_message_id),
        sent_at,
        content: InboundContent::Text {
            body: text.to_owned(),
        },
        context: Default::default(),
    }
}

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

pub fn welcome(name: &str) -> TemplateSend {
    TemplateSend {
        name: "welcome".into(),
        language: "en".into(),
        header_parameters: vec![],
        body_parameters: vec![name.into()],
    }
}

/// The domain refusal inside a failed precondition.
pub fn domain_error(error: Error) -> palaver_domain::Error {
    match error {
        Error::FailedPrecondition(palaver_app::Precondition::Domain(error)) => error,
        other => panic!("expected a domain precondition, got {other:?}"),
    }
}
