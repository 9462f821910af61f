//! The KurrentDB client, kept usable across outages.
//!
//! A `kurrentdb::Client` runs one connection task. When that task fails to
//! find a node (the server was unreachable for longer than its discovery
//! attempts last, 3 × 500 ms by default), it stops for good: the failing
//! call gets `GrpcConnectionError`, and every later call on that client
//! `ConnectionClosed`. So the store keeps the settings and builds a new
//! client when it sees either. The failing call still returns a transient
//! error; the next one connects afresh.

use std::{
    sync::{PoisonError, RwLock},
    time::Duration,
};

use kurrentdb::{Client, ClientSettings};
use palaver_store::Error;

use crate::{
    connect::ConnectError,
    error::{Operation, to_store_error},
};

/// The settings to build clients from, and the current one.
pub(crate) struct Connection {
    settings: ClientSettings,
    runtime: tokio::runtime::Handle,
    current: RwLock<Lease>,
}

/// The client one operation uses, with the generation it belongs to, so
/// that many operations failing at once replace it only once.
#[derive(Clone)]
pub(crate) struct Lease {
    generation: u64,
    pub(crate) client: Client,
}

impl Connection {
    /// A first client. Connects lazily: no request is made here.
    pub(crate) fn new(
        settings: ClientSettings,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, ConnectError> {
        let client = build(&settings, &runtime)?;
        Ok(Connection {
            settings,
            runtime,
            current: RwLock::new(Lease {
                generation: 0,
                client,
            }),
        })
    }

    /// The client to use now.
    pub(crate) fn client(&self) -> Lease {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The store error for `error`, which the client of `lease` raised
    /// during `operation`; replaces that client first if it is dead.
    pub(crate) fn failed(&self, lease: &Lease, error: kurrentdb::Error, operation: Operation<'_>) -> Error {
        if ends_client(&error) {
            self.replace(lease.generation);
        }
        to_store_error(error, operation)
    }

    fn replace(&self, dead: u64) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.generation != dead {
            return;
        }
        match build(&self.settings, &self.runtime) {
            Ok(client) => {
                tracing::warn!("the KurrentDB client lost its connection for good; starting a new one");
                *current = Lease {
                    generation: dead + 1,
                    client,
                };
            }
            // It was built from the same settings once; keep the dead one
            // and try again on the next failure.
            Err(error) => tracing::error!(%error, "cannot start a new KurrentDB client"),
        }
    }
}

fn build(settings: &ClientSettings, runtime: &tokio::runtime::Handle) -> Result<Client, ConnectError> {
    Client::with_runtime_handle(runtime.clone(), settings.clone()).map_err(|error| ConnectError::Client {
        reason: error.to_string(),
    })
}

/// Whether the client's connection task has stopped after `error`.
pub(crate) fn ends_client(error: &kurrentdb::Error) -> bool {
    matches!(
        error,
        kurrentdb::Error::ConnectionClosed | kurrentdb::Error::GrpcConnectionError(_)
    )
}

/// Whether `error` is a lost connection or an unavailable node, which a
/// subscription rides out by subscribing again (rather than failing).
pub(crate) fn is_outage(error: &kurrentdb::Error) -> bool {
    use kurrentdb::Error as K;
    match error {
        K::ConnectionClosed
        | K::GrpcConnectionError(_)
        | K::ServerError(_)
        | K::NotLeaderException(_)
        | K::DeadlineExceeded => true,
        // 14: UNAVAILABLE (the client does not re-export tonic's codes).
        K::Grpc { code, .. } => i32::from(*code) == 14,
        K::InternalParsingError(_)
        | K::AccessDenied
        | K::ResourceAlreadyExists
        | K::ResourceNotFound
        | K::ResourceDeleted
        | K::UnsupportedFeature
        | K::InternalClientError
        | K::InitializationError(_)
        | K::IllegalStateError(_)
        | K::WrongExpectedVersion { .. } => false,
    }
}

/// How long a subscription waits before its `failures`-th attempt to
/// subscribe again: 100 ms, doubling, at most 5 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.saturating_sub(1).min(6)))
        .min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_errors_end_the_client_and_which_are_outages() {
        use kurrentdb::Error as K;
        let dead = [
            K::ConnectionClosed,
            K::GrpcConnectionError(kurrentdb::GrpcConnectionError::MaxDiscoveryAttemptReached(3)),
        ];
        for error in &dead {
            assert!(ends_client(error) && is_outage(error), "{error}");
        }
        for error in [K::ServerError("gone".into()), K::DeadlineExceeded] {
            assert!(!ends_client(&error) && is_outage(&error), "{error}");
        }
        let unavailable = K::Grpc {
            code: 14.into(),
            message: "down".into(),
        };
        assert!(is_outage(&unavailable));
        let invalid = K::Grpc {
            code: 3.into(),
            message: "bad".into(),
        };
        assert!(!is_outage(&invalid));
        for error in [K::AccessDenied, K::ResourceDeleted, K::UnsupportedFeature] {
            assert!(!ends_client(&error) && !is_outage(&error), "{error}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_dead_client_is_replaced_once() {
        let settings: ClientSettings = "kurrentdb://127.0.0.1:1?tls=false".parse().unwrap();
        let connection = Connection::new(settings, tokio::runtime::Handle::current()).unwrap();
        let first = connection.client();
        let s = palaver_store::StreamName::new("thread-1").unwrap();
        // Two operations failing on the same client replace it once.
        for _ in 0..2 {
            let error = connection.failed(
                &first,
                kurrentdb::Error::ConnectionClosed,
                Operation::ReadStream(&s),
            );
            assert!(error.is_transient(), "{error:?}");
        }
        assert_eq!(connection.client().generation, 1);
        // Errors that leave the client alive keep it.
        let second = connection.client();
        let _ = connection.failed(&second, kurrentdb::Error::DeadlineExceeded, Operation::ReadAll);
        assert_eq!(connection.client().generation, 1);
    }
}
