//! Palaver's application layer: the command side of the engine, and the
//! queries passed through to the read models.
//!
//! [`App`] runs every command the same way (docs/domain.md, "The command
//! loop"): read the aggregate's stream, decode and replay it, call the
//! domain's pure `decide` with `now` from an injected [`Clock`], append the
//! events with the revision it read as expected revision, and on a lost
//! race read again and retry (bounded; then [`Error::Conflict`]). Around
//! that loop it wires the processes that span aggregates: an inbound
//! message (channel → contact → thread → conversation → switch), starting a
//! conversation with a template, merges (manual, and automatic by phone
//! number), the Messenger-to-WhatsApp switch, campaigns.
//!
//! Every command takes a [`CommandContext`]: the workspace it is scoped to
//! (anything of another workspace reads as not found), the actor recorded
//! in event metadata, an optional correlation id, idempotency key and
//! expected version. Every command returns a [`CommandResult`] whose
//! `position` a query can wait for (read your own writes).
//!
//! Layout:
//!
//! - [`clock`]: [`Clock`], [`SystemClock`], [`ManualClock`].
//! - [`context`]: [`CommandContext`], [`CommandResult`].
//! - [`error`]: [`Error`], [`Precondition`], [`ConflictReason`].
//! - `repository`: the command loop (load, decide, append, retry) and the
//!   per-stream turn-taking that keeps bursts from exhausting retries.
//! - `idempotency`: idempotency-key records; `records` and `lookups`: the
//!   small streams the application keeps for routing (which workspace a
//!   number serves, which conversation a WhatsApp message id names).
//! - `tenancy`: loading an aggregate on behalf of a workspace.
//! - Commands by subject: [`channel`], [`inbound`], [`conversation`],
//!   [`contact`], [`campaign`], [`switch`]; queries: [`queries`].

pub mod campaign;
pub mod campaign_sends;
pub mod channel;
pub mod clock;
pub mod contact;
pub mod context;
pub mod conversation;
pub mod delivery;
pub mod error;
mod idempotency;
pub mod inbound;
pub mod intake;
mod lookups;
pub mod queries;
mod records;
mod repository;
pub mod switch;
mod tenancy;
pub mod timer_actions;
pub mod timers;

use std::sync::Arc;
use std::time::Duration;

use palaver_projections::Projections;
use palaver_projections::queries::ReadModels;
use palaver_store::EventStore;

pub use campaign::{CampaignState, CampaignView, NewCampaign, RecipientState, RecipientView};
pub use campaign_sends::{CampaignSend, RecipientSendOutcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use contact::NewContact;
pub use context::{CommandContext, CommandResult};
pub use conversation::{DeliveryTarget, StartedConversation};
pub use error::{ConflictReason, Error, Precondition, Result};
pub use idempotency::MAX_KEY_LEN;
pub use inbound::Inbound;
pub use switch::SwitchOffer;

use repository::{LoadCache, StreamLocks};

/// How long a query waits for the read models to reach its minimum
/// position, unless [`App::with_read_timeout`] says otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Lock stripes for per-stream turn-taking; more stripes, fewer unrelated
/// streams waiting on each other.
const LOCK_STRIPES: usize = 256;

/// The application: commands, processes and queries over one event store
/// and its read models. Cheap to clone (one `Arc` inside).
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
    read_timeout: Duration,
}

struct Inner {
    store: Arc<dyn EventStore>,
    projections: Projections,
    read_models: ReadModels,
    clock: Arc<dyn Clock>,
    locks: StreamLocks,
    loads: LoadCache,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("projections", &self.inner.projections)
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An application over `store`, whose read models `projections` keeps
    /// and `read_models` reads, with `clock` for every decision.
    pub fn new(
        store: Arc<dyn EventStore>,
        projections: Projections,
        read_models: ReadModels,
        clock: Arc<dyn Clock>,
    ) -> Self {
        App {
            inner: Arc::new(Inner {
                store,
                projections,
                read_models,
                clock,
                locks: StreamLocks::new(LOCK_STRIPES),
                loads: LoadCache::default(),
            }),
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }

    /// The same application with another bound on read-your-writes waits.
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The event store.
    pub fn store(&self) -> Arc<dyn EventStore> {
        Arc::clone(&self.inner.store)
    }

    /// The live read models' loop (positions, lag, waits).
    pub fn projections(&self) -> Projections {
        self.inner.projections.clone()
    }

    /// Read access to the read models.
    pub fn read_models(&self) -> ReadModels {
        self.inner.read_models.clone()
    }

    /// The clock every decision reads.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.clock)
    }

    /// The bound on read-your-writes waits.
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// Starts one execution of a command.
    fn begin<'a>(&self, ctx: &'a CommandContext, name: &'static str) -> context::Cmd<'a> {
        context::Cmd::new(ctx, name, self.inner.clock.now())
    }
}
