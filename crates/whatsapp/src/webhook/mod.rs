//! Webhook notifications: [`parse`] turns a POST body into a typed
//! [`Notification`] (Meta's shape, Meta's names), and [`items`] turns that
//! into what Palaver acts on, one [`Item`] per message, status, template
//! change or anything else, in payload order. Nothing is dropped: what
//! Palaver does not act on becomes [`Item::Unhandled`] so the caller can
//! log or park it.
//!
//! Verify the signature ([`crate::signature::verify`]) over the raw body
//! before parsing.
//!
//! - [`payload`]: the serde types.
//! - [`mapping`]: `Notification -> Vec<Item>`.

pub mod mapping;
pub mod payload;

use serde::Deserialize;

pub use mapping::{Customer, Item, items};
pub use payload::{Change, ChangeValue, Entry, MessagesValue, Notification, TemplateStatusValue};

use payload::{Message, MessagesWire, WHATSAPP_BUSINESS_ACCOUNT};

/// Result with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a notification could not be read. For each, answer the POST with
/// 200 anyway (Meta would otherwise redeliver the same bytes for days) and
/// park the raw body for a person to look at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The body is not JSON (or is cut short).
    #[error("the body is not valid JSON: {message} (line {line}, column {column})")]
    Syntax {
        /// Where it broke, 1-based.
        line: usize,
        /// Where it broke, 1-based.
        column: usize,
        /// The parser's words.
        message: String,
    },
    /// The JSON does not have the reference's shape: a required field is
    /// missing or has the wrong type.
    #[error("unexpected shape at `{path}`: {message}")]
    Shape {
        /// JSON path of the offending value, e.g.
        /// `entry[0].changes[0].value.messages[1].timestamp`.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// The shape is right but a value is unusable: an empty id, a
    /// timestamp that is not Unix seconds, a message without its content
    /// object.
    #[error("invalid value at `{path}`: {message}")]
    Invalid {
        /// JSON path of the offending value.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// `object` is not `whatsapp_business_account`: the app's webhook is
    /// subscribed to another product (a Page, Instagram). Check the app's
    /// webhook configuration.
    #[error("notification object is `{0}`, not `whatsapp_business_account`")]
    UnexpectedObject(String),
}

#[derive(Deserialize)]
struct NotificationWire {
    object: String,
    entry: Vec<EntryWire>,
}

#[derive(Deserialize)]
struct EntryWire {
    id: String,
    #[serde(default)]
    changes: Vec<ChangeWire>,
}

#[derive(Deserialize)]
struct ChangeWire {
    field: String,
    #[serde(default)]
    value: serde_json::Value,
}

/// Parses a webhook POST body. Unknown fields are ignored; changes of
/// fields Palaver does not read are kept raw; messages of kinds Palaver
/// does not know parse as long as they have an id, a timestamp and a type.
pub fn parse(body: &[u8]) -> Result<Notification> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let wire: NotificationWire =
        serde_path_to_error::deserialize(&mut de).map_err(|e| from_path_error("", e))?;
    de.end().map_err(|e| from_json_error("", e))?;
    if wire.object != WHATSAPP_BUSINESS_ACCOUNT {
        return Err(Error::UnexpectedObject(wire.object));
    }
    let entry = wire
        .entry
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let changes = entry
                .changes
                .into_iter()
                .enumerate()
                .map(|(j, change)| {
                    let path = format!("entry[{i}].changes[{j}].value");
                    parse_change(&path, change)
                })
                .collect::<Result<_>>()?;
            Ok(Entry {
                id: entry.id,
                changes,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Notification {
        object: wire.object,
        entry,
    })
}

/// [`parse`] then [`items`].
pub fn parse_items(body: &[u8]) -> Result<Vec<Item>> {
    items(&parse(body)?)
}

fn parse_change(path: &str, change: ChangeWire) -> Result<Change> {
    let value = match change.field.as_str() {
        "messages" => {
            let wire: MessagesWire = typed(path, &change.value)?;
            let messages = wire
                .messages
                .iter()
                .enumerate()
                .map(|(k, raw)| {
                    let mut message: Message = typed(&format!("{path}.messages[{k}]"), raw)?;
                    message.raw = raw.to_string();
                    Ok(message)
                })
                .collect::<Result<_>>()?;
            ChangeValue::Messages(Box::new(MessagesValue {
                messaging_product: wire.messaging_product,
                metadata: wire.metadata,
                contacts: wire.contacts,
                messages,
                statuses: wire.statuses,
                errors: wire.errors,
            }))
        }
        "message_template_status_update" => ChangeValue::TemplateStatus(typed(path, &change.value)?),
        _ => ChangeValue::Other(change.value),
    };
    Ok(Change {
        field: change.field,
        value,
    })
}

/// Types `value`, naming the path of a mismatch below `path`.
fn typed<T: serde::de::DeserializeOwned>(path: &str, value: &serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| from_path_error(path, e))
}

fn from_path_error(prefix: &str, error: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let inner = error.path().to_string();
    let path = join_path(prefix, &inner);
    let error = error.into_inner();
    match error.classify() {
        serde_json::error::Category::Data => Error::Shape {
            path,
            message: strip_position(&error),
        },
        _ => from_json_error(prefix, error),
    }
}

fn from_json_error(prefix: &str, error: serde_json::Error) -> Error {
    match error.classify() {
        serde_json::error::Category::Data => Error::Shape {
            path: join_path(prefix, "."),
            message: strip_position(&error),
        },
        _ => Error::Syntax {
            line: error.line(),
            column: error.column(),
            message: strip_position(&error),
        },
    }
}

/// `prefix` + the path serde_path_to_error reports below it (`.` for the
/// value itself, `[3]…` for an element, `field…` for a member).
fn join_path(prefix: &str, inner: &str) -> String {
    match (prefix.is_empty(), inner) {
        (true, ".") => "$".to_owned(),
        (true, _) => inner.to_owned(),
        (false, ".") => prefix.to_owned(),
        (false, _) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (false, _) => format!("{prefix}.{inner}"),
    }
}

/// serde_json appends "at line L column C" to its messages; the path (or
/// the explicit line and column) says where, once.
fn strip_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_without_doubled_separators() {
        assert_eq!(join_path("", "."), "$");
        assert_eq!(join_path("", "entry[0].id"), "entry[0].id");
        assert_eq!(join_path("a.value", "."), "a.value");
        assert_eq!(join_path("a.value", "metadata"), "a.value.metadata");
        assert_eq!(join_path("a.messages", "[2].id"), "a.messages[2].id");
    }
}
