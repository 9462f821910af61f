//! The one error type of the application layer. The API layer maps it to
//! gRPC statuses in one exhaustive `match`, so every variant says what the
//! caller should do, and refusals by the domain travel inside, intact, for
//! a machine-readable reason ([`Precondition::reason`]).

use palaver_domain::Error as DomainError;
use palaver_domain::ids::{ContactId, PhoneNumberId};
use palaver_domain::templates::TemplateError;
use palaver_store::Position;

/// Result with the application layer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a command or query failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is not acceptable (empty text, a number that is not
    /// a phone number, a malformed id). `field` names it. Fix the request:
    /// sent again unchanged it fails again.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The request field, e.g. `reply`, `phone_numbers`, `wa_id`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Nothing with this id in the caller's workspace. Something that
    /// belongs to another workspace is reported the same way, so ids never
    /// leak across tenants. Check the id (and the workspace).
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for: `conversation`, `contact`, `thread`, …
        what: &'static str,
        /// The id as given.
        id: String,
    },

    /// The request is well-formed but the current state refuses it (the
    /// 24-hour window is closed, the template is not approved, the
    /// conversation is still open, …). The inner value says which;
    /// [`Precondition::reason`] is a stable code for clients. Change the
    /// request (send a template, pick another target) or the state first.
    #[error(transparent)]
    FailedPrecondition(#[from] Precondition),

    /// Another writer got there first: either the aggregate is not at the
    /// caller's `expected_version`, or concurrent writers kept winning until
    /// the retries ran out. Reload, decide again, and retry.
    #[error("conflict on {stream}: {reason}")]
    Conflict {
        /// The contended stream.
        stream: String,
        /// Which kind of conflict.
        reason: ConflictReason,
    },

    /// The business phone number id is not connected to the caller's
    /// workspace (unknown, disconnected, or another workspace's). Connect it
    /// first, or check which number the webhook named.
    #[error("phone number id {0} is not connected to this workspace")]
    UnknownPhoneNumberId(PhoneNumberId),

    /// The read models did not reach the requested minimum position in
    /// time. Retry the query later, or without a minimum position.
    #[error("read models reached position {reached}, not {wanted}, in time")]
    NotCaughtUp {
        /// The position asked for.
        wanted: Position,
        /// Where the read models were when the wait ended.
        reached: Position,
    },

    /// The event store failed (or refused the write, e.g. an event over the
    /// size limit). Transient failures (see `palaver_store::Error::is_transient`)
    /// may be retried; commands are safe to retry with an idempotency key.
    #[error("event store: {0}")]
    Store(#[source] palaver_store::Error),

    /// The read-model database failed or the projection loop stopped.
    /// Retry later; nothing was written.
    #[error("read models: {0}")]
    ReadModels(#[source] palaver_projections::Error),

    /// A bug or corrupt data (an undecodable stored event, an impossible
    /// routing). Report it; retrying will not help.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which kind of [`Error::Conflict`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictReason {
    /// The caller's `expected_version` did not match the stream's revision
    /// (`None`: the stream has no events).
    ExpectedVersion {
        /// What the caller expected.
        expected: u64,
        /// Where the stream is.
        actual: Option<u64>,
    },
    /// Concurrent writers won every one of this many attempts.
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
    },
}

impl std::fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConflictReason::ExpectedVersion {
                expected,
                actual: Some(actual),
            } => write!(f, "expected version {expected}, but it is at {actual}"),
            ConflictReason::ExpectedVersion {
                expected,
                actual: None,
            } => {
                write!(f, "expected version {expected}, but it has no events")
            }
            ConflictReason::RetriesExhausted { attempts } => {
                write!(f, "concurrent writers won {attempts} attempts in a row")
            }
        }
    }
}

/// Why the current state refuses a well-formed command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Precondition {
    /// The domain's refusal, intact: e.g. `TemplateRequired {
    /// window_closed_at }` when the 24-hour window is closed, a
    /// `TemplateError` naming what is wrong with a template send,
    /// `ConversationStillOpen { current }`. Its variant docs say what to do.
    #[error(transparent)]
    Domain(#[from] DomainError),

    /// The contact has neither a WhatsApp id nor a phone number, so there
    /// is nobody to write to. Add a phone number to the contact first.
    #[error("contact {contact_id} has no WhatsApp id or phone number to write to")]
    NoWhatsAppNumber {
        /// The contact.
        contact_id: ContactId,
    },

    /// The phone number id is connected to another workspace; a number can
    /// serve one workspace only (its threads are named by the number).
    /// Disconnect it there first.
    #[error("phone number id {phone_number_id} is connected to another workspace")]
    NumberInUse {
        /// The number.
        phone_number_id: PhoneNumberId,
    },

    /// The idempotency key was first used for another command. Use a new
    /// key for a new command.
    #[error("the idempotency key was first used for `{first}`, not `{this}`")]
    IdempotencyKeyReused {
        /// The command the key belongs to.
        first: String,
        /// The command that reused it.
        this: &'static str,
    },
}

impl Precondition {
    /// A stable, machine-readable code for clients (the API sends it as
    /// `palaver-reason`), e.g. `window_closed`, `template_not_approved`.
    pub fn reason(&self) -> &'static str {
        match self {
            Precondition::Domain(error) => domain_reason(error),
            Precondition::NoWhatsAppNumber { .. } => "no_whatsapp_number",
            Precondition::NumberInUse { .. } => "number_in_use",
            Precondition::IdempotencyKeyReused { .. } => "idempotency_key_reused",
        }
    }
}

fn domain_reason(error: &DomainError) -> &'static str {
    match error {
        DomainError::TemplateRequired { .. } => "window_closed",
        DomainError::Template(TemplateError::Unknown { .. }) => "template_unknown",
        DomainError::Template(TemplateError::LanguageMismatch { .. }) => "template_language_mismatch",
        DomainError::Template(TemplateError::NotApproved { .. }) => "template_not_approved",
        DomainError::Template(TemplateError::ParameterCount { .. }) => "template_parameter_count",
        DomainError::Phone(_) => "invalid_phone_number",
        DomainError::InvalidReply(_) => "invalid_reply",
        DomainError::InvalidSetting(_) => "invalid_setting",
        DomainError::NumberAlreadyConnected(_) => "number_already_connected",
        DomainError::NumberNotConnected(_) => "number_not_connected",
        DomainError::NotFound(_) => "not_found",
        DomainError::AlreadyExists(_) => "already_exists",
        DomainError::WrongStream(_) => "wrong_stream",
        DomainError::StaleConversation { .. } => "stale_conversation",
        DomainError::ConversationStillOpen { .. } => "conversation_still_open",
        DomainError::InvalidTransition { .. } => "invalid_transition",
        DomainError::SnoozeInPast { .. } => "snooze_in_past",
        DomainError::UnknownMessage(_) => "unknown_message",
        DomainError::UnknownWaMessage(_) => "unknown_wa_message",
        DomainError::MessageIdReused(_) => "message_id_reused",
        DomainError::ContactMerged { .. } => "contact_merged",
        DomainError::InvalidMerge(_) => "invalid_merge",
        DomainError::CampaignNotDue { .. } => "campaign_not_due",
        DomainError::EmptyAudience => "empty_audience",
        DomainError::CampaignCancelled => "campaign_cancelled",
        DomainError::WrongTrigger => "wrong_trigger",
        DomainError::SwitchUnavailable(_) => "switch_unavailable",
        DomainError::UnknownSwitchToken => "switch_token_unknown",
        DomainError::SwitchTokenExpired { .. } => "switch_token_expired",
        DomainError::QrCode(_) => "qr_code",
        DomainError::SwitchTokenUsed => "switch_token_used",
    }
}

impl Error {
    /// Worth trying again later: the store, the read models or a race got
    /// in the way, not the request. Workers retry these and record the
    /// rest as the outcome.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Conflict { .. } | Error::NotCaughtUp { .. } | Error::Store(_) | Error::ReadModels(_) => {
                true
            }
            Error::InvalidArgument { .. }
            | Error::NotFound { .. }
            | Error::FailedPrecondition(_)
            | Error::UnknownPhoneNumberId(_)
            | Error::Internal(_) => false,
        }
    }

    /// An invalid request field.
    pub(crate) fn invalid(field: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.to_string(),
        }
    }

    /// Nothing with this id in the workspace.
    pub(crate) fn not_found(what: &'static str, id: impl std::fmt::Display) -> Self {
        Error::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// The domain's refusal of a command on the aggregate `id`, sorted into
    /// what the caller should do about it. Input errors get a field name;
    /// state errors stay whole inside [`Precondition::Domain`].
    pub(crate) fn from_domain(error: DomainError, id: &str) -> Self {
        match error {
            DomainError::NotFound(what) => Error::not_found(what, id),
            DomainError::UnknownMessage(message) => Error::not_found("message", message),
            DomainError::InvalidReply(reason) => Error::invalid("reply", reason),
            DomainError::InvalidSetting(reason) => Error::invalid("settings", reason),
            DomainError::Phone(error) => Error::invalid("phone_number", error),
            DomainError::SnoozeInPast { until } => {
                Error::invalid("until", format!("{until} is not in the future"))
            }
            DomainError::EmptyAudience => Error::invalid("recipients", "a campaign needs recipients"),
            DomainError::NumberNotConnected(number) => Error::UnknownPhoneNumberId(number),
            // The application routed a command to the wrong stream, or a
            // QR code could not be drawn for a link we built: our bugs.
            error @ (DomainError::WrongStream(_) | DomainError::QrCode(_)) => {
                Error::Internal(error.to_string())
            }
            error => Error::FailedPrecondition(Precondition::Domain(error)),
        }
    }
}

impl From<palaver_store::Error> for Error {
    fn from(error: palaver_store::Error) -> Self {
        Error::Store(error)
    }
}

impl From<palaver_projections::Error> for Error {
    fn from(error: palaver_projections::Error) -> Self {
        match error {
            palaver_projections::Error::NotCaughtUp { wanted, reached } => {
                Error::NotCaughtUp { wanted, reached }
            }
            palaver_projections::Error::InvalidArgument { field, reason } => {
                Error::InvalidArgument { field, reason }
            }
            palaver_projections::Error::Store(error) => Error::Store(error),
            error => Error::ReadModels(error),
        }
    }
}
