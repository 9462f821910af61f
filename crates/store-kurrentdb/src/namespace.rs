//! Which KurrentDB streams belong to this store.
//!
//! KurrentDB cannot drop a database, so installations (and test runs) that
//! share one server are kept apart by a namespace: a prefix on every stream
//! name this store writes, and the only streams it reads back. The prefix
//! never shows above this crate: Palaver sees its own stream names, and the
//! hash chain covers those, so history copied between namespaces (or to
//! another backend) still verifies.
//!
//! Without a namespace the store owns every stream of the database that is
//! not a system stream. System events (streams or event types starting with
//! `$`, such as `$metadata` or projection links) are never Palaver's and are
//! hidden either way.

use palaver_store::{Error, Result, StreamName, names};

/// The prefix in front of every stream name this store uses, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Namespace(Option<String>);

impl Namespace {
    /// Checks the prefix against the stream naming rules, so that a
    /// namespaced name is still a name KurrentDB filters can match by prefix.
    pub(crate) fn new(prefix: Option<String>) -> Result<Self> {
        if let Some(prefix) = &prefix {
            names::check_stream_prefix(prefix)?;
        }
        Ok(Namespace(prefix))
    }

    /// The prefix, if there is one.
    pub(crate) fn prefix(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The KurrentDB name of a Palaver stream, or of a Palaver name prefix.
    pub(crate) fn apply(&self, name: &str) -> String {
        match &self.0 {
            Some(prefix) => format!("{prefix}{name}"),
            None => name.to_owned(),
        }
    }

    /// The Palaver part of a KurrentDB stream name, or `None` if the stream
    /// is outside the namespace or a system stream.
    pub(crate) fn strip<'a>(&self, kurrent_name: &'a str) -> Option<&'a str> {
        let name = match &self.0 {
            Some(prefix) => kurrent_name.strip_prefix(prefix.as_str())?,
            None => kurrent_name,
        };
        (!name.is_empty() && !name.starts_with('$')).then_some(name)
    }

    /// Whether an event read from KurrentDB is one of this store's: inside
    /// the namespace, and neither in a system stream nor of a system type.
    pub(crate) fn owns(&self, kurrent_stream: &str, event_type: &str) -> bool {
        !kurrent_stream.starts_with('$')
            && !event_type.starts_with('$')
            && self.strip(kurrent_stream).is_some()
    }

    /// The Palaver stream name behind a KurrentDB one. Names in the store
    /// passed [`StreamName::new`] on the way in; one that does not now was
    /// written by someone else.
    pub(crate) fn stream_name(&self, kurrent_name: &str) -> Result<StreamName> {
        let corrupt = |reason: String| Error::Corrupt {
            location: format!("KurrentDB stream {kurrent_name:?}"),
            reason,
        };
        let name = self
            .strip(kurrent_name)
            .ok_or_else(|| corrupt("the stream is outside this store's namespace".to_owned()))?;
        StreamName::new(name).map_err(|error| corrupt(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_namespace_names_pass_through_and_system_streams_are_hidden() {
        let none = Namespace::new(None).unwrap();
        assert_eq!(none.apply("thread-1"), "thread-1");
        assert_eq!(none.strip("thread-1"), Some("thread-1"));
        assert!(none.owns("thread-1", "palaver.v1.MessageReceived"));
        assert!(!none.owns("$$thread-1", "$metadata"));
        assert!(!none.owns("$ce-thread", "$>"));
        assert!(!none.owns("thread-1", "$>"));
        assert_eq!(none.stream_name("thread-1").unwrap().as_str(), "thread-1");
    }

    #[test]
    fn a_namespace_prefixes_writes_and_bounds_reads() {
        let ns = Namespace::new(Some("t1a2.".to_owned())).unwrap();
        assert_eq!(ns.prefix(), Some("t1a2."));
        assert_eq!(ns.apply("thread-1"), "t1a2.thread-1");
        assert_eq!(ns.apply("con"), "t1a2.con");
        assert_eq!(ns.strip("t1a2.thread-1"), Some("thread-1"));
        assert_eq!(ns.strip("thread-1"), None);
        assert_eq!(ns.strip("t1a2."), None);
        assert!(ns.owns("t1a2.thread-1", "t"));
        assert!(!ns.owns("other.thread-1", "t"));
        assert!(!ns.owns("$$t1a2.thread-1", "$metadata"));
        assert_eq!(ns.stream_name("t1a2.thread-1").unwrap().as_str(), "thread-1");
        assert!(matches!(ns.stream_name("thread-1"), Err(Error::Corrupt { .. })));
        assert!(matches!(
            ns.stream_name("t1a2.has space"),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn a_namespace_must_be_a_valid_prefix() {
        for bad in ["", "$sys", "a b", "x*"] {
            assert!(
                matches!(
                    Namespace::new(Some(bad.to_owned())),
                    Err(Error::InvalidStreamName { .. })
                ),
                "{bad:?} was accepted"
            );
        }
    }
}
