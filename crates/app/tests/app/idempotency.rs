//! Idempotency keys.

use palaver_app::{Error, Precondition};
use palaver_domain::codec::event_types as t;
use palaver_domain::message::Reply;

use crate::harness::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_command_returns_the_first_result() {
    let w = World::new().await;
    let conversation = w
        .inbound("447700900123", "wamid.1", "Hi")
        .await
        .unwrap()
        .value
        .conversation_id;
    let ctx = w.ctx().with_idempotency_key("reply-1");
    let reply = || Reply::Text { body: "On it".into() };

    let first = w.app.send_reply(&ctx, conversation, None, reply()).await.unwrap();
    let second = w.app.send_reply(&ctx, conversation, None, reply()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(w.count(t::OUTBOUND_MESSAGE_QUEUED).await, 1);

    // Even once the window has closed, the retry gets the first answer.
    w.clock.advance(chrono::TimeDelta::days(2));
    let third = w.app.send_reply(&ctx, conversation, None, reply()).await.unwrap();
    assert_eq!(third, first);

    // Another command under the same key is refused.
    let error = w.app.close(&ctx, conversation).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::FailedPrecondition(Precondition::IdempotencyKeyReused { this: "close", .. })
        ),
        "{error:?}"
    );

    // Keys are per workspace.
    let other = w.other_ctx().with_idempotency_key("reply-1");
    let error = w
        .app
        .send_reply(&other, conversation, None, reply())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_with_one_key_send_one_message() {
    let w = World::new().await;
    let conversation = w
        .inbound("447700900123", "wamid.1", "Hi")
        .await
        .unwrap()
        .value
        .conversation_id;
    let ctx = w.ctx().with_idempotency_key("reply-race");
    let send = || {
        w.app
            .send_reply(&ctx, conversation, None, Reply::Text { body: "On it".into() })
    };
    let (a, b, c) = tokio::join!(send(), send(), send());
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a.value, b.value);
    assert_eq!(b.value, c.value);
    assert_eq!(w.count(t::OUTBOUND_MESSAGE_QUEUED).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_key_names_the_field() {
    let w = World::new().await;
    let conversation = w
        .inbound("447700900123", "wamid.1", "Hi")
        .await
        .unwrap()
        .value
        .conversation_id;
    let ctx = w.ctx().with_idempotency_key("k".repeat(201));
    let error = w.app.close(&ctx, conversation).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                field: "idempotency_key",
                ..
            }
        ),
        "{error:?}"
    );
}
