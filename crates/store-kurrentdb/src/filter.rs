//! An [`AllFilter`] as a KurrentDB server-side filter plus a client-side check.
//!
//! KurrentDB filters `$all` on one thing at a time: stream names by prefix
//! (or regex), or event types by prefix (or regex). Palaver's filter is
//! stream prefixes AND exact types, inside the namespace. So the server gets
//! the most selective part it can express, and every event that comes back
//! is checked again on the client ([`Namespace::owns`], then
//! [`AllFilter::matches`]): the server narrows, the client decides.
//!
//! | namespace | prefixes | types | server filter |
//! |---|---|---|---|
//! | none | none | none | event types not starting with `$` |
//! | none | none | some | event types matching `^(?:t1\|t2)$` |
//! | none | some | any | stream prefixes |
//! | `ns` | none | any | stream prefix `ns` |
//! | `ns` | some | any | stream prefixes `ns` + each prefix |
//!
//! Names and types passed [`AllFilter::validate`] first, so they hold no
//! pattern syntax but `.`, which the regex escapes.

use kurrentdb::SubscriptionFilter;
use palaver_store::AllFilter;

use crate::namespace::Namespace;

/// What the server is asked to filter on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServerFilter {
    /// Events whose type does not start with `$`.
    NoSystemEvents,
    /// Events in streams starting with one of these (namespaced) prefixes.
    StreamPrefixes(Vec<String>),
    /// Events whose type matches this regex.
    EventTypes(String),
}

impl ServerFilter {
    /// The server-side part of `filter` for a store in `namespace`.
    pub(crate) fn of(namespace: &Namespace, filter: &AllFilter) -> Self {
        if !filter.stream_prefixes.is_empty() {
            return ServerFilter::StreamPrefixes(
                filter
                    .stream_prefixes
                    .iter()
                    .map(|prefix| namespace.apply(prefix))
                    .collect(),
            );
        }
        if let Some(prefix) = namespace.prefix() {
            return ServerFilter::StreamPrefixes(vec![prefix.to_owned()]);
        }
        if filter.event_types.is_empty() {
            ServerFilter::NoSystemEvents
        } else {
            ServerFilter::EventTypes(exact_types_regex(&filter.event_types))
        }
    }

    /// The client's filter object.
    pub(crate) fn to_kurrent(&self) -> SubscriptionFilter {
        match self {
            ServerFilter::NoSystemEvents => SubscriptionFilter::on_event_type().exclude_system_events(),
            ServerFilter::StreamPrefixes(prefixes) => prefixes
                .iter()
                .fold(SubscriptionFilter::on_stream_name(), |filter, prefix| {
                    filter.add_prefix(prefix)
                }),
            ServerFilter::EventTypes(regex) => SubscriptionFilter::on_event_type().regex(regex),
        }
    }
}

/// A regex matching exactly one of `types`.
fn exact_types_regex(types: &[String]) -> String {
    let alternatives: Vec<String> = types.iter().map(|t| escape(t)).collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// Escapes regex syntax. Checked types only ever hold `.` of it; escaping
/// the rest too costs nothing and keeps this correct on its own.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(prefix: &str) -> Namespace {
        Namespace::new(Some(prefix.to_owned())).unwrap()
    }

    #[test]
    fn without_a_namespace() {
        let none = Namespace::default();
        assert_eq!(
            ServerFilter::of(&none, &AllFilter::all()),
            ServerFilter::NoSystemEvents
        );
        assert_eq!(
            ServerFilter::of(&none, &AllFilter::stream_prefixes(["conversation-", "thread-"])),
            ServerFilter::StreamPrefixes(vec!["conversation-".into(), "thread-".into()])
        );
        assert_eq!(
            ServerFilter::of(
                &none,
                &AllFilter::event_types(["palaver.v1.MessageReceived", "Closed"])
            ),
            ServerFilter::EventTypes(r"^(?:palaver\.v1\.MessageReceived|Closed)$".into())
        );
        // Both: the server takes the prefixes, the client checks the types.
        let both = AllFilter {
            stream_prefixes: vec!["conversation-".into()],
            event_types: vec!["Opened".into()],
        };
        assert_eq!(
            ServerFilter::of(&none, &both),
            ServerFilter::StreamPrefixes(vec!["conversation-".into()])
        );
    }

    #[test]
    fn with_a_namespace_the_server_stays_inside_it() {
        let ns = ns("run7.");
        assert_eq!(
            ServerFilter::of(&ns, &AllFilter::all()),
            ServerFilter::StreamPrefixes(vec!["run7.".into()])
        );
        assert_eq!(
            ServerFilter::of(&ns, &AllFilter::event_types(["Opened"])),
            ServerFilter::StreamPrefixes(vec!["run7.".into()])
        );
        assert_eq!(
            ServerFilter::of(&ns, &AllFilter::stream_prefixes(["con", "thread-"])),
            ServerFilter::StreamPrefixes(vec!["run7.con".into(), "run7.thread-".into()])
        );
    }

    #[test]
    fn escaping_leaves_no_pattern_syntax() {
        assert_eq!(escape("a.b-c_d:e@f"), r"a\.b-c_d:e@f");
        assert_eq!(escape("x*(y)|$"), r"x\*\(y\)\|\$");
        assert_eq!(exact_types_regex(&["a".into()]), "^(?:a)$");
    }
}
