//! Why a command was refused. One enum for the crate, so the API layer maps
//! it to gRPC statuses in one exhaustive `match`; each variant says what the
//! caller should do about it.

use chrono::{DateTime, Utc};

use crate::ids::{ContactId, ConversationId, MessageId, PhoneNumberId, WaMessageId};
use crate::phone::PhoneError;
use crate::templates::TemplateError;

/// Result with the domain's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A refused command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A free-form message outside the 24-hour customer care window. Send an
    /// approved template instead. `window_closed_at` is when the window
    /// closed, `None` if the customer never wrote.
    #[error("a template is required: {}", match window_closed_at {
        Some(at) => format!("the 24-hour window closed at {at}"),
        None => "the customer has never written".to_owned(),
    })]
    TemplateRequired {
        /// When the window closed.
        window_closed_at: Option<DateTime<Utc>>,
    },

    /// The template send does not fit the catalogue; the inner error names
    /// what is wrong. Fix the request or sync the catalogue.
    #[error(transparent)]
    Template(#[from] TemplateError),

    /// A phone number or region could not be read. Ask for the number with
    /// its country code, or fix the region.
    #[error(transparent)]
    Phone(#[from] PhoneError),

    /// A reply's content is not sendable (empty text, too long, media not
    /// at an https URL). Fix the content.
    #[error("the reply cannot be sent: {0}")]
    InvalidReply(&'static str),

    /// A channel setting is out of range or unknown; the text says which.
    /// Fix the setting.
    #[error("invalid channel setting: {0}")]
    InvalidSetting(String),

    /// The number is already connected to this workspace. Nothing to do.
    #[error("phone number id {0} is already connected")]
    NumberAlreadyConnected(PhoneNumberId),

    /// The workspace has no such connected number. Connect it first.
    #[error("phone number id {0} is not connected")]
    NumberNotConnected(PhoneNumberId),

    /// The aggregate has not been created yet (empty stream). Create it
    /// first, or check the id.
    #[error("{0} does not exist")]
    NotFound(&'static str),

    /// The aggregate already exists with different content. Use another id,
    /// or treat it as done if it was a retry with changed input.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),

    /// The command names data of another stream (e.g. a different thread
    /// identity). The caller loaded the wrong stream: fix the routing.
    #[error("the command does not belong to this stream: {0}")]
    WrongStream(&'static str),

    /// The conversation state passed in is not the thread's current
    /// conversation: the caller's view is stale. Reload and retry.
    #[error("conversation {given} is not the current conversation of the thread")]
    StaleConversation {
        /// The conversation the caller described.
        given: ConversationId,
    },

    /// A new conversation cannot start while the current one is open or
    /// snoozed. Send the template into `current` instead.
    #[error("conversation {current} is still open")]
    ConversationStillOpen {
        /// The open conversation.
        current: ConversationId,
    },

    /// The command does not apply in the conversation's current status
    /// (e.g. snoozing a closed conversation). Refresh the view.
    #[error("cannot {action} a conversation that is {status}")]
    InvalidTransition {
        /// What was attempted.
        action: &'static str,
        /// The current status.
        status: &'static str,
    },

    /// A snooze must end in the future. Pick a later time.
    #[error("snooze must end after now, not at {until}")]
    SnoozeInPast {
        /// The requested end.
        until: DateTime<Utc>,
    },

    /// No outbound message with this id in the conversation. Check the id.
    #[error("no outbound message {0} in this conversation")]
    UnknownMessage(MessageId),

    /// No outbound message carries this WhatsApp id (yet). A status webhook
    /// can overtake the API response that tells us the id: retry later.
    #[error("no outbound message with WhatsApp id {0}")]
    UnknownWaMessage(WaMessageId),

    /// The message id is already used for different content. Use a new id.
    #[error("message id {0} is already used for another message")]
    MessageIdReused(MessageId),

    /// The contact was merged into `into` and takes no more changes. Apply
    /// the change to `into`.
    #[error("the contact was merged into {into}")]
    ContactMerged {
        /// The surviving contact.
        into: ContactId,
    },

    /// A merge that is not allowed; the text says why (e.g. into itself,
    /// into a merged contact, a user into a lead). Pick another target.
    #[error("cannot merge: {0}")]
    InvalidMerge(&'static str),

    /// A scheduled campaign was launched before its time. Launch at
    /// `scheduled_at` or later.
    #[error("the campaign is scheduled for {scheduled_at}")]
    CampaignNotDue {
        /// When it may launch.
        scheduled_at: DateTime<Utc>,
    },

    /// A campaign sent now or at a time needs at least one recipient. Add
    /// recipients.
    #[error("the campaign has no recipients")]
    EmptyAudience,

    /// The campaign was cancelled. Create a new one.
    #[error("the campaign was cancelled")]
    CampaignCancelled,

    /// The command does not fit the campaign's trigger (e.g. launching an
    /// event-triggered campaign). Use the trigger the campaign was created
    /// with.
    #[error("the campaign is not triggered that way")]
    WrongTrigger,

    /// The Messenger-to-WhatsApp switch is not offered: the toggle is off,
    /// reply times during office hours are not shown, or no number is
    /// connected. Change the channel settings.
    #[error("the WhatsApp switch is not available: {0}")]
    SwitchUnavailable(&'static str),

    /// No switch offer with this token. Treat the message as plain text.
    #[error("unknown switch token")]
    UnknownSwitchToken,

    /// The switch token expired at `expired_at`. Treat the message as plain
    /// text.
    #[error("the switch token expired at {expired_at}")]
    SwitchTokenExpired {
        /// When it expired.
        expired_at: DateTime<Utc>,
    },

    /// The text is too long to fit in a QR code. Shorten the prefilled
    /// text.
    #[error("cannot draw a QR code: {0}")]
    QrCode(String),

    /// The token was already used by another WhatsApp thread. Treat the
    /// message as plain text.
    #[error("the switch token was already used")]
    SwitchTokenUsed,
}
