//! Stream names and event types: what characters they may hold and how long
//! they may be. Checked once, at the edge, so that every backend (and every
//! SQL `GLOB` or KurrentDB filter built from them) can rely on them.

use std::fmt;

use crate::{Error, Result};

/// Longest stream name, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 200;
/// Longest event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 200;

/// The name of a stream: `<category>-<id>`, such as `thread-0192…`.
///
/// Letters, digits and `- _ . : @` only, at most [`MAX_STREAM_NAME_LEN`]
/// bytes. Names starting with `$` are reserved for the store (`$all`). The
/// category is everything before the first `-`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamName(String);

impl StreamName {
    /// Checks and wraps a stream name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        match check_stream_chars(&name) {
            Ok(()) => Ok(StreamName(name)),
            Err(reason) => Err(Error::InvalidStreamName { name, reason }),
        }
    }

    /// Builds `<category>-<id>`.
    pub fn from_parts(category: &str, id: impl fmt::Display) -> Result<Self> {
        if category.is_empty() || category.contains('-') {
            return Err(Error::InvalidStreamName {
                name: format!("{category}-{id}"),
                reason: "the category must be non-empty and contain no '-'",
            });
        }
        Self::new(format!("{category}-{id}"))
    }

    /// Wraps a name read back from storage, which only ever holds names that
    /// passed [`StreamName::new`]: skips the check on the hot read path.
    pub(crate) fn trusted(name: String) -> Self {
        StreamName(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-`, or the whole name if there is none.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(category, _)| category)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for StreamName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for StreamName {
    type Error = Error;
    fn try_from(name: &str) -> Result<Self> {
        Self::new(name)
    }
}

impl TryFrom<String> for StreamName {
    type Error = Error;
    fn try_from(name: String) -> Result<Self> {
        Self::new(name)
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')
}

fn check_stream_chars(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_STREAM_NAME_LEN {
        return Err("it is longer than 200 bytes");
    }
    if name.starts_with('$') {
        return Err("names starting with '$' are reserved for the store");
    }
    if !name.chars().all(is_name_char) {
        return Err("only ASCII letters, digits and - _ . : @ are allowed");
    }
    Ok(())
}

/// Checks a stream-name prefix used in a filter: the same characters as a
/// stream name, so it can never smuggle pattern syntax into a backend query.
pub fn check_stream_prefix(prefix: &str) -> Result<()> {
    check_stream_chars(prefix).map_err(|reason| Error::InvalidStreamName {
        name: prefix.to_owned(),
        reason,
    })
}

/// Checks an event type such as `palaver.v1.MessageReceived`: ASCII letters,
/// digits and `. _ -`, at most [`MAX_EVENT_TYPE_LEN`] bytes.
pub fn check_event_type(event_type: &str) -> Result<()> {
    let reason = if event_type.is_empty() {
        "it is empty"
    } else if event_type.len() > MAX_EVENT_TYPE_LEN {
        "it is longer than 200 bytes"
    } else if !event_type
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        "only ASCII letters, digits and . _ - are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidEventType {
        event_type: event_type.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names_and_finds_the_category() {
        let name = StreamName::new("thread-0192f0e3-7b1c-7c4e-9a2b-3c4d5e6f7a8b").unwrap();
        assert_eq!(name.category(), "thread");
        assert_eq!(StreamName::new("channel").unwrap().category(), "channel");
        assert_eq!(
            StreamName::from_parts("contact", 42).unwrap().as_str(),
            "contact-42"
        );
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        for bad in ["", "$all", "has space", "semi;colon", "star*", "é-1"] {
            assert!(
                matches!(StreamName::new(bad), Err(Error::InvalidStreamName { .. })),
                "{bad:?} was accepted"
            );
        }
        assert!(StreamName::new("a".repeat(MAX_STREAM_NAME_LEN)).is_ok());
        assert!(StreamName::new("a".repeat(MAX_STREAM_NAME_LEN + 1)).is_err());
        assert!(StreamName::from_parts("a-b", 1).is_err());
    }

    #[test]
    fn event_types() {
        assert!(check_event_type("palaver.v1.MessageReceived").is_ok());
        assert!(check_event_type("").is_err());
        assert!(check_event_type("with space").is_err());
        assert!(check_event_type(&"t".repeat(MAX_EVENT_TYPE_LEN + 1)).is_err());
    }
}
