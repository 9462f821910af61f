//! The notification payload as Meta sends it, field for field, with Meta's
//! names. Only what Palaver reads is typed; every other field is ignored,
//! so fields Meta adds later never break parsing. A change whose `field`
//! Palaver does not know keeps its `value` as raw JSON, and every message
//! keeps its own JSON text, so kinds Palaver does not know are recorded
//! verbatim.

use serde::Deserialize;

/// `object` of every WhatsApp Business Account notification.
pub const WHATSAPP_BUSINESS_ACCOUNT: &str = "whatsapp_business_account";

/// One webhook POST body.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// `object`: always [`WHATSAPP_BUSINESS_ACCOUNT`] once parsed.
    pub object: String,
    /// `entry[]`: one per business account with news.
    pub entry: Vec<Entry>,
}

/// `entry[]`: the changes of one WhatsApp Business Account.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// `id`: the WhatsApp Business Account (WABA) id.
    pub id: String,
    /// `changes[]`.
    pub changes: Vec<Change>,
}

/// `changes[]`: one change, its kind named by `field`.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// `field`: `messages`, `message_template_status_update`, ….
    pub field: String,
    /// `value`, typed for the fields Palaver reads.
    pub value: ChangeValue,
}

/// The `value` of a change.
#[derive(Clone, Debug, PartialEq)]
pub enum ChangeValue {
    /// `field: messages`: customer messages, delivery statuses, errors.
    Messages(Box<MessagesValue>),
    /// `field: message_template_status_update`.
    TemplateStatus(TemplateStatusValue),
    /// Any other field, kept as received.
    Other(serde_json::Value),
}

/// The value of a `messages` change.
#[derive(Clone, Debug, PartialEq)]
pub struct MessagesValue {
    /// `messaging_product`: `whatsapp`.
    pub messaging_product: String,
    /// `metadata`: which business number this is about.
    pub metadata: Metadata,
    /// `contacts[]`: the senders of `messages[]` (absent for system
    /// messages and statuses).
    pub contacts: Vec<Contact>,
    /// `messages[]`.
    pub messages: Vec<Message>,
    /// `statuses[]`: delivery reports of messages the business sent.
    pub statuses: Vec<Status>,
    /// `errors[]`: errors not tied to one message.
    pub errors: Vec<ApiError>,
}

/// The wire form of [`MessagesValue`]: messages stay raw until each is
/// typed on its own, so each keeps its JSON text.
#[derive(Deserialize)]
pub(crate) struct MessagesWire {
    #[serde(default)]
    pub(crate) messaging_product: String,
    pub(crate) metadata: Metadata,
    #[serde(default)]
    pub(crate) contacts: Vec<Contact>,
    #[serde(default)]
    pub(crate) messages: Vec<serde_json::Value>,
    #[serde(default)]
    pub(crate) statuses: Vec<Status>,
    #[serde(default)]
    pub(crate) errors: Vec<ApiError>,
}

/// `metadata`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    /// `display_phone_number`: the business number as shown to customers.
    #[serde(default)]
    pub display_phone_number: String,
    /// `phone_number_id`: the business number's Cloud API id.
    pub phone_number_id: String,
}

/// `contacts[]`: who sent the messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Contact {
    /// `profile`.
    pub profile: Option<Profile>,
    /// `wa_id`: the customer's WhatsApp id (phone digits); absent when the
    /// customer hides their number behind a username.
    pub wa_id: Option<String>,
    /// `user_id`: the business-scoped user id (BSUID, e.g.
    /// `US.13491208655302741918`); may be the only identifier.
    pub user_id: Option<String>,
}

/// `contacts[].profile`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Profile {
    /// `name`: the customer's profile name.
    pub name: Option<String>,
    /// `username`: the customer's username, if they adopted one.
    pub username: Option<String>,
}

/// `messages[]`: one customer message. Each kind has its own object named
/// after its `type`; only the one matching `type` is present.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Message {
    /// `from`: the sender's WhatsApp id; absent for a username-only sender.
    pub from: Option<String>,
    /// `from_user_id`: the sender's business-scoped user id.
    pub from_user_id: Option<String>,
    /// `id`: the WhatsApp message id (`wamid.…`).
    pub id: String,
    /// `timestamp`: Unix seconds, as a string.
    pub timestamp: String,
    /// `type`: `text`, `image`, …, `unsupported`, or a kind added later.
    #[serde(rename = "type")]
    pub kind: String,
    /// `text`.
    pub text: Option<TextObject>,
    /// `image`.
    pub image: Option<MediaObject>,
    /// `video`.
    pub video: Option<MediaObject>,
    /// `audio` (voice notes included).
    pub audio: Option<MediaObject>,
    /// `document`.
    pub document: Option<MediaObject>,
    /// `sticker`.
    pub sticker: Option<MediaObject>,
    /// `location`.
    pub location: Option<LocationObject>,
    /// `contacts`: contact cards (not the sender: that is the value's
    /// `contacts[]`).
    pub contacts: Option<Vec<ContactCardObject>>,
    /// `reaction`.
    pub reaction: Option<ReactionObject>,
    /// `button`: a template quick-reply tap.
    pub button: Option<ButtonObject>,
    /// `interactive`: a reply to an interactive message.
    pub interactive: Option<InteractiveObject>,
    /// `system`: a number or user id change.
    pub system: Option<SystemObject>,
    /// `context`: what this replies to, forwarding.
    pub context: Option<ContextObject>,
    /// `referral`: the Click-to-WhatsApp ad the customer came from.
    pub referral: Option<ReferralObject>,
    /// `errors[]`: why an `unsupported` message could not be read.
    #[serde(default)]
    pub errors: Vec<ApiError>,
    /// The message object as received, JSON text: what an unknown kind is
    /// recorded as.
    #[serde(skip)]
    pub raw: String,
}

/// `text`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TextObject {
    /// `body`.
    pub body: String,
}

/// `image`, `video`, `audio`, `document` and `sticker`: a media object
/// held by WhatsApp. The kind-specific flags are absent for other kinds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct MediaObject {
    /// `id`: the media id, to download the bytes.
    pub id: String,
    /// `mime_type`.
    pub mime_type: Option<String>,
    /// `sha256`.
    pub sha256: Option<String>,
    /// `caption` (image, video, document).
    pub caption: Option<String>,
    /// `filename` (document).
    pub filename: Option<String>,
    /// `voice` (audio): recorded as a voice note.
    pub voice: Option<bool>,
    /// `animated`: an animated sticker; on a video, an animated GIF (sent
    /// by WhatsApp as a looping MP4).
    pub animated: Option<bool>,
}

/// `location`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LocationObject {
    /// `latitude`, degrees.
    pub latitude: f64,
    /// `longitude`, degrees.
    pub longitude: f64,
    /// `name`: the place's name.
    pub name: Option<String>,
    /// `address`.
    pub address: Option<String>,
}

/// `contacts[]` of a contacts message: one card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ContactCardObject {
    /// `name`.
    pub name: Option<ContactName>,
    /// `phones[]`.
    #[serde(default)]
    pub phones: Vec<ContactPhone>,
}

/// `contacts[].name`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ContactName {
    /// `formatted_name`.
    pub formatted_name: Option<String>,
}

/// `contacts[].phones[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ContactPhone {
    /// `phone`: as written on the card.
    pub phone: Option<String>,
    /// `wa_id`: the number's WhatsApp id, if it has one.
    pub wa_id: Option<String>,
}

/// `reaction`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ReactionObject {
    /// `message_id`: the message reacted to.
    pub message_id: String,
    /// `emoji`: absent or empty when the reaction is removed.
    pub emoji: Option<String>,
}

/// `button`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ButtonObject {
    /// `payload`: set on the button by the business.
    pub payload: Option<String>,
    /// `text`: the button's label.
    pub text: Option<String>,
}

/// `interactive`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct InteractiveObject {
    /// `type`: `button_reply`, `list_reply`, or others (flows, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// `button_reply`.
    pub button_reply: Option<ReplyObject>,
    /// `list_reply`.
    pub list_reply: Option<ReplyObject>,
}

/// `interactive.button_reply` and `interactive.list_reply`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ReplyObject {
    /// `id`: the chosen button's or row's id.
    pub id: String,
    /// `title`.
    #[serde(default)]
    pub title: String,
    /// `description` (list rows only).
    pub description: Option<String>,
}

/// `system`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SystemObject {
    /// `body`: a sentence describing the change.
    pub body: Option<String>,
    /// `type`: `user_changed_number`, `user_changed_user_id`, ….
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `context`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ContextObject {
    /// `from`: who sent the message replied to.
    pub from: Option<String>,
    /// `id`: the message replied to.
    pub id: Option<String>,
    /// `forwarded`.
    #[serde(default)]
    pub forwarded: bool,
    /// `frequently_forwarded`: forwarded more than five times.
    #[serde(default)]
    pub frequently_forwarded: bool,
}

/// `referral`: the ad or post of a Click-to-WhatsApp entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ReferralObject {
    /// `source_url`: the ad's or post's URL.
    pub source_url: Option<String>,
    /// `source_type`: `ad` or `post`.
    pub source_type: Option<String>,
    /// `source_id`: the ad's or post's id.
    pub source_id: Option<String>,
    /// `headline`.
    pub headline: Option<String>,
    /// `body`.
    pub body: Option<String>,
    /// `media_type`: `image` or `video`.
    pub media_type: Option<String>,
    /// `image_url`.
    pub image_url: Option<String>,
    /// `video_url`.
    pub video_url: Option<String>,
    /// `thumbnail_url`.
    pub thumbnail_url: Option<String>,
    /// `ctwa_clid`: the click id for conversion tracking.
    pub ctwa_clid: Option<String>,
}

/// `statuses[]`: a delivery report of a message the business sent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Status {
    /// `id`: the WhatsApp id of the message reported on.
    pub id: String,
    /// `status`: `sent`, `delivered`, `read`, `failed`, or others.
    pub status: String,
    /// `timestamp`: Unix seconds, as a string.
    pub timestamp: String,
    /// `recipient_id`: the customer's WhatsApp id, when known.
    pub recipient_id: Option<String>,
    /// `recipient_user_id`: the customer's business-scoped user id.
    pub recipient_user_id: Option<String>,
    /// `biz_opaque_callback_data`: what the send request carried.
    pub biz_opaque_callback_data: Option<String>,
    /// `errors[]`: why a `failed` message failed.
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

/// `errors[]`: an error as webhooks report it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    /// `code`: see docs/whatsapp.md for what each means.
    pub code: i64,
    /// `title`.
    pub title: Option<String>,
    /// `message`.
    pub message: Option<String>,
    /// `error_data`.
    pub error_data: Option<ErrorData>,
}

impl ApiError {
    /// The most specific explanation given: `error_data.details`, else
    /// `message`, else `title`, else empty.
    pub fn details(&self) -> &str {
        self.error_data
            .as_ref()
            .map(|d| d.details.as_str())
            .filter(|d| !d.is_empty())
            .or(self.message.as_deref().filter(|m| !m.is_empty()))
            .or(self.title.as_deref())
            .unwrap_or_default()
    }

    /// One line for people: `<title>: <details>`, or whichever exists.
    pub fn describe(&self) -> String {
        let title = self.title.as_deref().unwrap_or_default();
        let details = self.details();
        match (title.is_empty(), details.is_empty() || details == title) {
            (false, false) => format!("{title}: {details}"),
            (false, true) => title.to_owned(),
            (true, _) => details.to_owned(),
        }
    }
}

/// `errors[].error_data`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorData {
    /// `details`.
    #[serde(default)]
    pub details: String,
}

/// The value of a `message_template_status_update` change.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TemplateStatusValue {
    /// `event`: `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, `PENDING`, ….
    pub event: String,
    /// `message_template_id` (a number on the wire).
    #[serde(default, deserialize_with = "string_or_number")]
    pub message_template_id: Option<String>,
    /// `message_template_name`.
    pub message_template_name: String,
    /// `message_template_language`, e.g. `en_GB`.
    pub message_template_language: String,
    /// `reason`: `NONE` when there is none.
    pub reason: Option<String>,
}

/// Ids Meta sends as JSON numbers in some payloads and strings in others:
/// kept as text either way (a u64 would not survive a JavaScript client).
fn string_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Id>::deserialize(deserializer)?.map(|id| match id {
        Id::Text(text) => text,
        Id::Number(number) => number.to_string(),
    }))
}
