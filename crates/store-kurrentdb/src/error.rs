//! The client's errors as the store's: one exhaustive mapping, so a new
//! client error is a compile error here rather than a surprise in production.

use palaver_store::{ActualRevision, Error, ExpectedRevision, StreamName};

/// What the store was doing when the client failed: the context an error
/// needs to say something useful.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operation<'a> {
    Append {
        stream: &'a StreamName,
        expected: ExpectedRevision,
    },
    ReadStream(&'a StreamName),
    ReadAll,
    Subscribe,
}

impl std::fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operation::Append { stream, .. } => write!(f, "appending to {stream}"),
            Operation::ReadStream(stream) => write!(f, "reading {stream}"),
            Operation::ReadAll => f.write_str("reading $all"),
            Operation::Subscribe => f.write_str("subscribing to $all"),
        }
    }
}

/// The store error for a client error raised during `operation`.
///
/// Connection, server and timeout failures are [`Error::Backend`]: the
/// caller may retry (an append safely, thanks to event ids). Refusals that
/// no retry fixes (access denied, an unsupported server) are
/// [`Error::Backend`] as well, for want of a closer variant; their message
/// says what to change.
pub(crate) fn to_store_error(error: kurrentdb::Error, operation: Operation<'_>) -> Error {
    use kurrentdb::Error as K;
    let message = match &error {
        K::WrongExpectedVersion { current, .. } => {
            // Appends re-read and retry on this themselves; it only surfaces
            // here if the server and the adapter disagree.
            if let Operation::Append { stream, expected } = operation {
                return Error::WrongExpectedRevision {
                    stream: stream.clone(),
                    expected,
                    actual: match current {
                        kurrentdb::CurrentRevision::Current(revision) => ActualRevision::At(*revision),
                        kurrentdb::CurrentRevision::NoStream => ActualRevision::NoStream,
                    },
                };
            }
            format!("{operation}: unexpected revision conflict")
        }
        K::ResourceDeleted => {
            return Error::Corrupt {
                location: match operation {
                    Operation::Append { stream, .. } | Operation::ReadStream(stream) => stream.to_string(),
                    Operation::ReadAll | Operation::Subscribe => "$all".to_owned(),
                },
                reason: "the stream was deleted in KurrentDB; Palaver never deletes streams".to_owned(),
            };
        }
        K::ServerError(_) | K::Grpc { .. } | K::InternalParsingError(_) | K::InternalClientError => {
            format!("{operation}: KurrentDB failed")
        }
        K::NotLeaderException(leader) => format!(
            "{operation}: the node is not the leader; the client reconnects to {}:{}",
            leader.host, leader.port
        ),
        K::GrpcConnectionError(_) | K::InitializationError(_) => {
            format!("{operation}: cannot reach KurrentDB")
        }
        // The store has already started a new client (see `connection.rs`).
        K::ConnectionClosed => {
            format!("{operation}: the connection to KurrentDB was lost; the next call reconnects")
        }
        K::DeadlineExceeded => format!("{operation}: KurrentDB did not answer in time"),
        K::AccessDenied => format!("{operation}: access denied; check the user in the connection string"),
        K::UnsupportedFeature => {
            format!("{operation}: the server does not support this; KurrentDB 20.6.1 or newer is needed")
        }
        K::ResourceNotFound | K::ResourceAlreadyExists | K::IllegalStateError(_) => {
            format!("{operation}: unexpected answer from KurrentDB")
        }
    };
    Error::backend(message, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamName {
        StreamName::new("thread-1").unwrap()
    }

    #[test]
    fn a_revision_conflict_names_the_stream_and_both_revisions() {
        let s = stream();
        let append = Operation::Append {
            stream: &s,
            expected: ExpectedRevision::Exact(3),
        };
        let error = to_store_error(
            kurrentdb::Error::WrongExpectedVersion {
                expected: kurrentdb::StreamState::StreamRevision(3),
                current: kurrentdb::CurrentRevision::Current(5),
            },
            append,
        );
        match error {
            Error::WrongExpectedRevision {
                stream,
                expected,
                actual,
            } => {
                assert_eq!(stream.as_str(), "thread-1");
                assert_eq!(expected, ExpectedRevision::Exact(3));
                assert_eq!(actual, ActualRevision::At(5));
            }
            other => panic!("{other:?}"),
        }
        let none = to_store_error(
            kurrentdb::Error::WrongExpectedVersion {
                expected: kurrentdb::StreamState::StreamExists,
                current: kurrentdb::CurrentRevision::NoStream,
            },
            append,
        );
        assert!(matches!(
            none,
            Error::WrongExpectedRevision {
                actual: ActualRevision::NoStream,
                ..
            }
        ));
    }

    #[test]
    fn every_client_error_has_a_store_error() {
        use kurrentdb::Error as K;
        let s = stream();
        let transient = [
            K::ServerError("boom".into()),
            K::NotLeaderException(kurrentdb::Endpoint {
                host: "node2".into(),
                port: 2113,
            }),
            K::Grpc {
                code: 14.into(),
                message: "unavailable".into(),
            },
            K::GrpcConnectionError(kurrentdb::GrpcConnectionError::MaxDiscoveryAttemptReached(3)),
            K::InternalParsingError("x".into()),
            K::AccessDenied,
            K::ResourceAlreadyExists,
            K::ResourceNotFound,
            K::UnsupportedFeature,
            K::InternalClientError,
            K::DeadlineExceeded,
            K::InitializationError("tls".into()),
            K::IllegalStateError("x".into()),
            K::ConnectionClosed,
        ];
        for error in transient {
            let shown = error.to_string();
            let mapped = to_store_error(error, Operation::ReadStream(&s));
            assert!(mapped.is_transient(), "{shown} -> {mapped:?}");
            let text = mapped.to_string();
            assert!(text.contains("reading thread-1"), "{text}");
            // The client's own words stay reachable as the source.
            let source = std::error::Error::source(&mapped).map(ToString::to_string);
            assert_eq!(source.as_deref(), Some(shown.as_str()));
        }
        // A revision conflict outside an append is not one the caller made.
        let conflict = K::WrongExpectedVersion {
            expected: kurrentdb::StreamState::Any,
            current: kurrentdb::CurrentRevision::NoStream,
        };
        assert!(to_store_error(conflict, Operation::ReadAll).is_transient());
        assert!(matches!(
            to_store_error(K::ResourceDeleted, Operation::ReadStream(&s)),
            Error::Corrupt { location, .. } if location == "thread-1"
        ));
    }
}
