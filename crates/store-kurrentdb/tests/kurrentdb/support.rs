//! Stores for the tests that need a KurrentDB server.

#![allow(dead_code)]

use palaver_store_kurrentdb::{KurrentDbOptions, KurrentDbStore};
use uuid::Uuid;

/// The server to test against, from `PALAVER_TEST_KURRENTDB_URL` (for
/// example `kurrentdb://localhost:2113?tls=false`), or `None` after saying
/// why the test does nothing.
pub fn url() -> Option<String> {
    match std::env::var("PALAVER_TEST_KURRENTDB_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!(
                "KurrentDB tests skipped: PALAVER_TEST_KURRENTDB_URL is not set (no KurrentDB server on this machine)"
            );
            None
        }
    }
}

/// A random namespace: KurrentDB cannot drop a database, so each test
/// writes and reads behind its own stream-name prefix.
pub fn namespace() -> String {
    format!("t{}.", Uuid::new_v4().simple())
}

/// A store in `namespace`.
pub fn store_in(url: &str, namespace: &str) -> KurrentDbStore {
    let options = KurrentDbOptions {
        namespace: Some(namespace.to_owned()),
        ..KurrentDbOptions::default()
    };
    KurrentDbStore::connect(url, options).expect("the test URL is a valid connection string")
}

/// A store in a fresh namespace, with a unit guard (nothing to drop), or
/// `None` without a server.
pub async fn fresh() -> Option<(KurrentDbStore, ())> {
    let url = url()?;
    Some((store_in(&url, &namespace()), ()))
}
