//! Stream names. Every aggregate instance lives in one stream named
//! `<category>-<id>`; the category is the text before the first `-`, so
//! categories never contain one. The store accepts ASCII letters, digits and
//! `- _ . : @`, at most 200 bytes: names are checked here so a bad id is
//! caught in the domain, not as a store error after a decision was made.

use std::fmt;

/// Longest stream name the store accepts, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 200;

/// A valid stream name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamName(String);

/// The id part would make an invalid stream name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid stream name: {reason}")]
pub struct InvalidStreamName {
    /// The name as it would have been.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl StreamName {
    /// `<category>-<id>`, checked.
    pub fn new(category: &str, id: &str) -> Result<Self, InvalidStreamName> {
        let name = format!("{category}-{id}");
        let invalid = |reason| InvalidStreamName {
            name: name.clone(),
            reason,
        };
        if category.is_empty() || category.contains('-') {
            return Err(invalid("the category must be non-empty and without `-`"));
        }
        if id.is_empty() {
            return Err(invalid("the id is empty"));
        }
        if name.len() > MAX_STREAM_NAME_LEN {
            return Err(invalid("longer than 200 bytes"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b))
        {
            return Err(invalid("only ASCII letters, digits and - _ . : @ are allowed"));
        }
        Ok(Self(name))
    }

    /// The category: text before the first `-`.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }

    /// The whole name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let name = StreamName::new("thread", "0a-b").unwrap();
        assert_eq!(name.as_str(), "thread-0a-b");
        assert_eq!(name.category(), "thread");
        assert!(StreamName::new("templates", "12 34").is_err());
        assert!(StreamName::new("a-b", "1").is_err());
        assert!(StreamName::new("c", "").is_err());
        assert!(StreamName::new("c", &"x".repeat(199)).is_err());
    }
}
