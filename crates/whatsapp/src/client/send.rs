//! Sending a message: `POST {base}/{version}/{phone_number_id}/messages`.
//! The outcome is classified for a retrying worker: [`SendError`] says
//! whether to wait and retry, give up, fix the configuration, or reconcile
//! because the message may have gone out.

use std::time::Duration;

use palaver_domain::ids::WaMessageId;
use palaver_domain::message::{MAX_TEXT_LEN, OutboundContent};
use palaver_domain::templates::TemplateSend;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::codes::{self, CodeClass};
use super::{CloudApi, GraphError, check_path_id, retry_after};

/// Meta's limit on `biz_opaque_callback_data`, in characters.
pub const MAX_CALLBACK_DATA_LEN: usize = 512;

/// Who receives a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A WhatsApp id (phone digits), sent as `to`.
    WaId(String),
    /// A business-scoped user id (BSUID), sent as `recipient`: the only
    /// way to reach a customer whose number is hidden behind a username.
    UserId(String),
}

/// Where the bytes of a media message are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaSource {
    /// A public HTTPS URL WhatsApp fetches (`link`).
    Link(String),
    /// A media id from an earlier upload (`id`); faster and not refetched.
    Id(String),
}

/// What is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Text; `preview_url` renders a preview of the first link.
    Text {
        /// The text.
        body: String,
        /// Show a link preview.
        preview_url: bool,
    },
    /// A picture.
    Image {
        /// The file.
        media: MediaSource,
        /// Caption, empty for none.
        caption: String,
    },
    /// A file as a document.
    Document {
        /// The file.
        media: MediaSource,
        /// File name shown, empty to let WhatsApp choose.
        file_name: String,
        /// Caption, empty for none.
        caption: String,
    },
    /// An approved template with text parameters.
    Template(TemplateSend),
}

impl Payload {
    /// What Palaver records as sent, as the Cloud API takes it. Text and
    /// macro text get a link preview when they contain a link.
    pub fn from_content(content: &OutboundContent) -> Self {
        match content {
            OutboundContent::Text { body } | OutboundContent::MacroText { body, .. } => Payload::Text {
                preview_url: has_link(body),
                body: body.clone(),
            },
            OutboundContent::Image {
                url,
                media_id,
                caption,
            } => Payload::Image {
                media: media_source(url, media_id),
                caption: caption.clone(),
            },
            OutboundContent::Document {
                url,
                media_id,
                file_name,
                caption,
            } => Payload::Document {
                media: media_source(url, media_id),
                file_name: file_name.clone(),
                caption: caption.clone(),
            },
            OutboundContent::Template(send) => Payload::Template(send.clone()),
        }
    }
}

/// By uploaded id when there is one, else by link (the domain makes sure
/// exactly one is set).
fn media_source(url: &str, media_id: &str) -> MediaSource {
    if media_id.is_empty() {
        MediaSource::Link(url.to_owned())
    } else {
        MediaSource::Id(media_id.to_owned())
    }
}

fn has_link(text: &str) -> bool {
    text.contains("https://") || text.contains("http://")
}

/// One message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRequest {
    /// Who receives it.
    pub recipient: Recipient,
    /// What it carries.
    pub payload: Payload,
    /// `biz_opaque_callback_data`: echoed in every status webhook of this
    /// message. The delivery worker passes `"<conversation id>/<message
    /// id>"`, so a status can be matched to a send whose answer was lost.
    pub callback_data: Option<String>,
}

impl SendRequest {
    /// `content` to `recipient`.
    pub fn new(recipient: Recipient, content: &OutboundContent) -> Self {
        Self {
            recipient,
            payload: Payload::from_content(content),
            callback_data: None,
        }
    }

    /// With `biz_opaque_callback_data`.
    #[must_use]
    pub fn with_callback_data(mut self, data: impl Into<String>) -> Self {
        self.callback_data = Some(data.into());
        self
    }

    /// Image or document from an uploaded media id instead of its link (no
    /// effect on other payloads).
    #[must_use]
    pub fn with_media_id(mut self, media_id: impl Into<String>) -> Self {
        match &mut self.payload {
            Payload::Image { media, .. } | Payload::Document { media, .. } => {
                *media = MediaSource::Id(media_id.into());
            }
            Payload::Text { .. } | Payload::Template(_) => {}
        }
        self
    }

    /// Checks what Meta would refuse anyway, so the refusal is immediate
    /// and precise.
    pub fn validate(&self) -> Result<(), SendError> {
        let invalid = |reason: &str| {
            Err(SendError::InvalidRequest {
                reason: reason.to_owned(),
            })
        };
        match &self.recipient {
            Recipient::WaId(id) | Recipient::UserId(id) if id.trim().is_empty() => {
                return invalid("the recipient is empty");
            }
            _ => {}
        }
        if let Some(data) = &self.callback_data
            && data.chars().count() > MAX_CALLBACK_DATA_LEN
        {
            return invalid("biz_opaque_callback_data is longer than 512 characters");
        }
        match &self.payload {
            Payload::Text { body, .. } => {
                if body.trim().is_empty() {
                    return invalid("the text is empty");
                }
                if body.chars().count() > MAX_TEXT_LEN {
                    return invalid("the text is longer than 4096 characters");
                }
            }
            Payload::Image { media, .. } | Payload::Document { media, .. } => match media {
                MediaSource::Link(link) if !link.starts_with("https://") => {
                    return invalid("a media link must be an https:// URL");
                }
                MediaSource::Id(id) if id.trim().is_empty() => return invalid("the media id is empty"),
                _ => {}
            },
            Payload::Template(send) => {
                if send.name.trim().is_empty() || send.language.trim().is_empty() {
                    return invalid("a template needs a name and a language");
                }
            }
        }
        Ok(())
    }

    /// The JSON body, exactly as posted.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("messaging_product".into(), json!("whatsapp"));
        body.insert("recipient_type".into(), json!("individual"));
        match &self.recipient {
            Recipient::WaId(id) => body.insert("to".into(), json!(id)),
            Recipient::UserId(id) => body.insert("recipient".into(), json!(id)),
        };
        let (kind, object) = match &self.payload {
            Payload::Text { body, preview_url } => {
                ("text", json!({ "preview_url": preview_url, "body": body }))
            }
            Payload::Image { media, caption } => {
                let mut object = media_object(media);
                put_non_empty(&mut object, "caption", caption);
                ("image", Value::Object(object))
            }
            Payload::Document {
                media,
                file_name,
                caption,
            } => {
                let mut object = media_object(media);
                put_non_empty(&mut object, "caption", caption);
                put_non_empty(&mut object, "filename", file_name);
                ("document", Value::Object(object))
            }
            Payload::Template(send) => ("template", template_object(send)),
        };
        body.insert("type".into(), json!(kind));
        body.insert(kind.into(), object);
        if let Some(data) = &self.callback_data {
            body.insert("biz_opaque_callback_data".into(), json!(data));
        }
        Value::Object(body)
    }
}

fn media_object(media: &MediaSource) -> Map<String, Value> {
    let mut object = Map::new();
    match media {
        MediaSource::Link(link) => object.insert("link".into(), json!(link)),
        MediaSource::Id(id) => object.insert("id".into(), json!(id)),
    };
    object
}

fn put_non_empty(object: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        object.insert(key.into(), json!(value));
    }
}

fn template_object(send: &TemplateSend) -> Value {
    let text_parameters = |values: &[String]| -> Vec<Value> {
        values
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect()
    };
    let mut components = Vec::new();
    if !send.header_parameters.is_empty() {
        components.push(json!({ "type": "header", "parameters": text_parameters(&send.header_parameters) }));
    }
    if !send.body_parameters.is_empty() {
        components.push(json!({ "type": "body", "parameters": text_parameters(&send.body_parameters) }));
    }
    let mut object = Map::new();
    object.insert("name".into(), json!(send.name));
    object.insert("language".into(), json!({ "code": send.language }));
    if !components.is_empty() {
        object.insert("components".into(), Value::Array(components));
    }
    Value::Object(object)
}

/// WhatsApp took the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its id; status webhooks name it.
    pub wa_message_id: WaMessageId,
}

/// Why a send did not succeed, and what the worker should do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not sent, for now: a rate limit, a temporary outage, or no
    /// connection (the request never left). Retry the same request after
    /// a backoff, at least `retry_after` when given.
    #[error("temporarily refused (HTTP {status:?}, code {code:?}); retry later")]
    Transient {
        /// HTTP status, `None` when no answer came.
        status: Option<u16>,
        /// Graph API error code, when given.
        code: Option<i64>,
        /// The API's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// WhatsApp refused this message for good (re-engagement required,
    /// undeliverable, invalid parameter, template problem, …). Record it
    /// as failed; do not retry.
    #[error("refused (code {code}): {title}: {details}")]
    Permanent {
        /// Graph API error code (0 when the answer had none).
        code: i64,
        /// Meta's message.
        title: String,
        /// `error_data.details`, the most specific explanation.
        details: String,
    },
    /// The request may have reached WhatsApp, but no answer came (timeout,
    /// connection lost after sending, unreadable answer). Do NOT resend:
    /// reconcile through the status webhooks, which carry the callback
    /// data.
    #[error("outcome unknown: {reason}; reconcile through status webhooks, do not resend")]
    Uncertain {
        /// What happened.
        reason: String,
    },
    /// The access token or the app's permissions were refused. Nothing
    /// can be sent until a person fixes the configuration: stop the worker
    /// and alert.
    #[error("credentials refused (HTTP {status}, code {code:?}): {message}")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// Graph API error code, when given.
        code: Option<i64>,
        /// Meta's message.
        message: String,
    },
    /// The request is wrong before sending (empty recipient, bad id, text
    /// too long). Fix the caller; never retried.
    #[error("invalid send request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
}

impl SendError {
    /// Whether the same request should be tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The wait the API asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies an error answer of the API from its status, headers'
    /// `Retry-After` and body.
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let error = GraphError::from_body(body);
        // Meta support asks for the trace id; it is in no variant, so log it.
        tracing::debug!(status, code = ?error.code, fbtrace_id = ?error.fbtrace_id, "Cloud API error answer");
        let class = error.code.map(codes::classify);
        if status == 401 || class == Some(CodeClass::Configuration) || (status == 403 && error.code.is_none())
        {
            return Self::Unauthorized {
                status,
                code: error.code,
                message: error.message,
            };
        }
        match class {
            Some(CodeClass::Throttled | CodeClass::Temporary) => Self::Transient {
                status: Some(status),
                code: error.code,
                retry_after,
            },
            Some(_) => Self::Permanent {
                code: error.code.unwrap_or_default(),
                title: error.message,
                details: error.error_data.map(|d| d.details).unwrap_or_default(),
            },
            None if status == 429 || status >= 500 => Self::Transient {
                status: Some(status),
                code: None,
                retry_after,
            },
            None => Self::Permanent {
                code: 0,
                title: format!("HTTP {status}"),
                details: String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
            },
        }
    }

    fn from_transport(error: &reqwest::Error, timeout: Duration) -> Self {
        if error.is_builder() {
            Self::InvalidRequest {
                reason: error.to_string(),
            }
        } else if error.is_connect() {
            // No connection, so no request: safe to retry.
            Self::Transient {
                status: None,
                code: None,
                retry_after: None,
            }
        } else if error.is_timeout() {
            Self::Uncertain {
                reason: format!("no answer within {timeout:?}"),
            }
        } else {
            Self::Uncertain {
                reason: format!("the connection failed while sending: {error}"),
            }
        }
    }
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

impl CloudApi {
    /// Sends `request` from the business number `phone_number_id`.
    pub async fn send(&self, phone_number_id: &str, request: &SendRequest) -> Result<Accepted, SendError> {
        check_path_id("phone_number_id", phone_number_id)
            .map_err(|reason| SendError::InvalidRequest { reason })?;
        request.validate()?;
        let response = self
            .http
            .post(self.url(phone_number_id, "messages"))
            .bearer_auth(self.token.expose())
            .json(&request.to_json())
            .send()
            .await
            .map_err(|e| SendError::from_transport(&e, self.timeout))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            // The status line came, the body did not: a success cannot be
            // ruled out.
            Err(e) if status.is_success() => {
                return Err(SendError::Uncertain {
                    reason: format!("the answer was cut off: {e}"),
                });
            }
            Err(_) => Default::default(),
        };
        if !status.is_success() {
            return Err(SendError::from_response(status.as_u16(), wait, &body));
        }
        let accepted = serde_json::from_slice::<SendResponse>(&body)
            .ok()
            .and_then(|r| r.messages.into_iter().next())
            .filter(|m| !m.id.trim().is_empty());
        match accepted {
            Some(message) => Ok(Accepted {
                wa_message_id: WaMessageId::new(message.id),
            }),
            None => Err(SendError::Uncertain {
                reason: format!("HTTP {status} without messages[0].id"),
            }),
        }
    }
}
