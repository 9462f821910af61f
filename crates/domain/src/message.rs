//! What messages carry: the kinds a customer can send (every one WhatsApp
//! has today, and a catch-all for kinds it adds later, which is recorded
//! with its raw type and never dropped) and the kinds Palaver sends.

use chrono::{DateTime, Utc};

use crate::ids::{MessageId, WaMessageId};
use crate::macros::Macro;
use crate::templates::TemplateSend;
use crate::{Error, Result};

/// WhatsApp's limit on a text message body, in characters.
pub const MAX_TEXT_LEN: usize = 4096;

/// A customer message as the webhook reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    /// WhatsApp's id; the same id twice is one message.
    pub wa_message_id: WaMessageId,
    /// WhatsApp's timestamp; the window is measured from it.
    pub sent_at: DateTime<Utc>,
    /// What it carries.
    pub content: InboundContent,
    /// What it answers, whether it was forwarded, the ad it came from.
    pub context: MessageContext,
}

/// Where a customer message stands in the chat, as the webhook reports it.
/// The default is a fresh message: no reply, not forwarded, no referral.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageContext {
    /// The message this one replies to (swipe-to-reply).
    pub reply_to: Option<WaMessageId>,
    /// The customer forwarded it.
    pub forwarded: bool,
    /// WhatsApp marks it as forwarded many times.
    pub frequently_forwarded: bool,
    /// The Click-to-WhatsApp ad or post the customer came from.
    /// Boxed: rare, and ten strings would make every message carry them.
    pub referral: Option<Box<Referral>>,
}

/// A Click-to-WhatsApp referral, kept field for field so analytics can
/// attribute conversations to ads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Referral {
    /// The ad's or post's URL.
    pub source_url: String,
    /// `ad` or `post`.
    pub source_type: String,
    /// The ad's or post's id.
    pub source_id: String,
    /// The ad's headline.
    pub headline: String,
    /// The ad's text.
    pub body: String,
    /// `image` or `video`, empty if none.
    pub media_type: String,
    /// The ad's image, if any.
    pub image_url: String,
    /// The ad's video, if any.
    pub video_url: String,
    /// The video's thumbnail, if any.
    pub thumbnail_url: String,
    /// Click id for conversion tracking.
    pub ctwa_clid: String,
}

/// A media object held by WhatsApp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// WhatsApp media id, to fetch the bytes.
    pub media_id: String,
    /// MIME type as reported.
    pub mime_type: String,
    /// SHA-256 as reported, verbatim.
    pub sha256: String,
}

/// One contact card of a contacts message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactCard {
    /// Display name on the card.
    pub formatted_name: String,
    /// Numbers as written on the card (the customer's data, not identities,
    /// so not normalized).
    pub phone_numbers: Vec<String>,
}

/// Which interactive message a reply answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InteractiveReplyKind {
    /// A reply button.
    Button,
    /// A list row.
    List,
}

/// What a customer sent.
#[derive(Clone, Debug, PartialEq)]
pub enum InboundContent {
    /// Text, emoji included.
    Text {
        /// The text.
        body: String,
    },
    /// A picture.
    Image {
        /// The file.
        media: Media,
        /// Caption, empty if none.
        caption: String,
    },
    /// A file attachment.
    Document {
        /// The file.
        media: Media,
        /// File name as the phone reported it.
        file_name: String,
        /// Caption, empty if none.
        caption: String,
    },
    /// A video.
    Video {
        /// The file.
        media: Media,
        /// Caption, empty if none.
        caption: String,
    },
    /// An animated GIF.
    Gif {
        /// The file (a looping MP4).
        media: Media,
        /// Caption, empty if none.
        caption: String,
    },
    /// An audio file, or a voice note when `voice` is set.
    Audio {
        /// The file.
        media: Media,
        /// Recorded as a voice note in WhatsApp.
        voice: bool,
    },
    /// A sticker.
    Sticker {
        /// The file.
        media: Media,
        /// Animated sticker.
        animated: bool,
    },
    /// A location pin.
    Location {
        /// Degrees.
        latitude: f64,
        /// Degrees.
        longitude: f64,
        /// Place name, empty if none.
        name: String,
        /// Address, empty if none.
        address: String,
    },
    /// Contact cards.
    Contacts {
        /// The cards.
        cards: Vec<ContactCard>,
    },
    /// A reaction to an earlier message; `emoji: None` removes it.
    Reaction {
        /// The message reacted to.
        target: WaMessageId,
        /// The emoji, or `None` for a removal.
        emoji: Option<String>,
    },
    /// A template quick-reply button tap.
    ButtonReply {
        /// Payload configured on the button.
        payload: String,
        /// Button text.
        text: String,
    },
    /// A reply to an interactive message.
    InteractiveReply {
        /// Button or list.
        kind: InteractiveReplyKind,
        /// Id of the chosen button or row.
        id: String,
        /// Its title.
        title: String,
        /// The row's description, empty for buttons.
        description: String,
    },
    /// A kind Palaver does not know yet, kept verbatim.
    Unsupported {
        /// WhatsApp's `type`.
        raw_type: String,
        /// The message object as received, JSON text.
        raw_payload: String,
    },
}

impl InboundContent {
    /// The text a customer typed, if this kind has any: where a
    /// Messenger-switch token can hide.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text { body } => Some(body),
            Self::Image { caption, .. }
            | Self::Document { caption, .. }
            | Self::Video { caption, .. }
            | Self::Gif { caption, .. } => Some(caption),
            _ => None,
        }
    }
}

/// A reply a teammate or service writes in a conversation (free-form, so
/// only inside the 24-hour window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Text, emoji included.
    Text {
        /// The text.
        body: String,
    },
    /// A picture at a public URL or uploaded to the Cloud API.
    Image {
        /// HTTPS URL WhatsApp fetches; empty when `media_id` is set.
        url: String,
        /// Id of media uploaded beforehand; empty when `url` is set.
        media_id: String,
        /// Caption, empty if none.
        caption: String,
    },
    /// A file at a public URL or uploaded, sent as a document.
    Attachment {
        /// HTTPS URL WhatsApp fetches; empty when `media_id` is set.
        url: String,
        /// Id of media uploaded beforehand; empty when `url` is set.
        media_id: String,
        /// File name shown.
        file_name: String,
        /// Caption, empty if none.
        caption: String,
    },
    /// A macro from the inbox's library, sent as plain text.
    Macro(Macro),
}

/// What Palaver sends, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboundContent {
    /// Text.
    Text {
        /// The text.
        body: String,
    },
    /// A picture.
    Image {
        /// HTTPS URL, or empty when sent by `media_id`.
        url: String,
        /// Uploaded media id, or empty when sent by `url`.
        media_id: String,
        /// Caption, empty if none.
        caption: String,
    },
    /// A file as a document.
    Document {
        /// HTTPS URL, or empty when sent by `media_id`.
        url: String,
        /// Uploaded media id, or empty when sent by `url`.
        media_id: String,
        /// File name shown.
        file_name: String,
        /// Caption, empty if none.
        caption: String,
    },
    /// A macro rendered to text.
    MacroText {
        /// The macro's id.
        macro_id: String,
        /// Text actually sent.
        body: String,
    },
    /// A template with parameters.
    Template(TemplateSend),
}

impl Reply {
    /// What is actually sent for this reply; refuses empty or oversized
    /// text.
    pub fn into_content(self) -> Result<OutboundContent> {
        let content = match self {
            Self::Text { body } => OutboundContent::Text { body },
            Self::Image {
                url,
                media_id,
                caption,
            } => OutboundContent::Image {
                url,
                media_id,
                caption,
            },
            Self::Attachment {
                url,
                media_id,
                file_name,
                caption,
            } => OutboundContent::Document {
                url,
                media_id,
                file_name,
                caption,
            },
            Self::Macro(m) => OutboundContent::MacroText {
                body: m.render_for_whatsapp(),
                macro_id: m.id,
            },
        };
        match &content {
            OutboundContent::Text { body } | OutboundContent::MacroText { body, .. } => {
                check_text(body)?;
            }
            OutboundContent::Image { url, media_id, .. }
            | OutboundContent::Document { url, media_id, .. } => {
                match (url.is_empty(), media_id.trim().is_empty()) {
                    (false, true) if url.starts_with("https://") => {}
                    (false, true) => return Err(Error::InvalidReply("media must be at an https:// URL")),
                    (true, false) => {}
                    (false, false) => return Err(Error::InvalidReply("media has both a URL and a media id")),
                    (true, true) => {
                        return Err(Error::InvalidReply("media needs an https:// URL or a media id"));
                    }
                }
            }
            OutboundContent::Template(_) => {}
        }
        Ok(content)
    }
}

fn check_text(body: &str) -> Result<()> {
    if body.trim().is_empty() {
        return Err(Error::InvalidReply("the text is empty"));
    }
    if body.chars().count() > MAX_TEXT_LEN {
        return Err(Error::InvalidReply("the text is longer than 4096 characters"));
    }
    Ok(())
}

/// An outbound message as a conversation knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundMessage {
    /// Palaver's id.
    pub id: MessageId,
    /// What was sent.
    pub content: OutboundContent,
    /// WhatsApp's id once the Cloud API accepted it.
    pub wa_message_id: Option<WaMessageId>,
    /// Merged delivery state.
    pub delivery: crate::delivery::DeliveryState,
    /// How many times the delivery worker handed it to the Cloud API.
    pub attempts: u32,
}

impl OutboundMessage {
    /// WhatsApp accepted it or it failed: nothing more to send.
    pub fn is_settled(&self) -> bool {
        self.wa_message_id.is_some()
            || self.delivery.progress != crate::delivery::DeliveryProgress::Queued
            || !self.delivery.failures.is_empty()
    }
}
