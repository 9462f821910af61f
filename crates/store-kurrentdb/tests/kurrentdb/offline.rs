//! What the store does without a server: connecting is lazy, refusals are
//! typed, and a server that cannot be reached is a transient error, not a
//! hang or a panic. Runs everywhere.

use std::time::Duration;

use futures::StreamExt;
use palaver_store::{AllFilter, EventStore, ExpectedRevision, Position, StreamName};
use palaver_store_kurrentdb::{ConnectError, KurrentDbOptions, KurrentDbStore};

/// Nothing listens on port 1; one discovery attempt keeps failures quick.
const NOWHERE: &str =
    "kurrentdb://admin:secret@127.0.0.1:1?tls=false&maxDiscoverAttempts=1&discoveryInterval=10";

#[tokio::test]
async fn connecting_checks_the_options_but_not_the_server() {
    assert!(KurrentDbStore::connect(NOWHERE, KurrentDbOptions::default()).is_ok());
    let bad_namespace = KurrentDbOptions {
        namespace: Some("has space".into()),
        ..KurrentDbOptions::default()
    };
    assert!(matches!(
        KurrentDbStore::connect(NOWHERE, bad_namespace),
        Err(ConnectError::InvalidNamespace { .. })
    ));
    let error =
        KurrentDbStore::connect("kurrentdb://admin:secret@", KurrentDbOptions::default()).unwrap_err();
    assert!(matches!(error, ConnectError::InvalidUrl { .. }));
    assert!(!error.to_string().contains("secret"), "{error}");
    let as_store_error = palaver_store::Error::from(error);
    assert!(!as_store_error.to_string().contains("secret"), "{as_store_error}");
}

#[test]
fn connecting_needs_a_runtime() {
    assert!(matches!(
        KurrentDbStore::connect(NOWHERE, KurrentDbOptions::default()),
        Err(ConnectError::NoRuntime)
    ));
}

async fn within<T>(what: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), what)
        .await
        .expect("fails within 30 s instead of hanging")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_transient_error() {
    let store = KurrentDbStore::connect(NOWHERE, KurrentDbOptions::default()).unwrap();
    let stream = StreamName::new("thread-1").unwrap();
    // The client gives up for good after one failed discovery; the store
    // starts a new one, so every call tries the server again instead of
    // failing with "connection closed" forever.
    for _ in 0..3 {
        let error = within(store.head()).await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        assert!(error.to_string().contains("cannot reach KurrentDB"), "{error}");
        assert!(!format!("{error:?}").contains("secret"), "{error:?}");
        let error = within(store.stream_revision(&stream)).await.unwrap_err();
        assert!(error.to_string().contains("cannot reach KurrentDB"), "{error}");
    }
    // Limits are checked before the server is asked.
    assert!(matches!(
        store.append(&stream, ExpectedRevision::Any, Vec::new()).await,
        Err(palaver_store::Error::EmptyBatch)
    ));
    // A bad filter is refused before the server is asked, too.
    assert!(matches!(
        store
            .read_all(Position::START, &AllFilter::stream_prefixes(["c*"]), 1)
            .await,
        Err(palaver_store::Error::InvalidStreamName { .. })
    ));
}

/// A subscription waits out an unreachable server (subscribing again with
/// a growing pause) rather than ending. The clock is paused: the pauses and
/// the timeout pass without real waiting.
#[tokio::test(start_paused = true)]
async fn a_subscription_waits_for_the_server() {
    let store = KurrentDbStore::connect(NOWHERE, KurrentDbOptions::default()).unwrap();
    let mut events = store.subscribe_all(Position::START, AllFilter::all());
    assert!(
        tokio::time::timeout(Duration::from_secs(60), events.next())
            .await
            .is_err(),
        "the subscription ended or yielded without a server"
    );
}
