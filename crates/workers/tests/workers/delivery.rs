//! The delivery worker against a stub Cloud API on 127.0.0.1: accepted
//! sends recorded, transient failures retried, uncertain sends never
//! repeated (not even after a restart), permanent failures in the
//! timeline, and the access token never in the logs.

use crate::support;

use std::collections::VecDeque;
use std::io::Write;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use palaver_domain::codec::{EventCodec, event_types};
use palaver_domain::ids::{ConversationId, MessageId};
use palaver_domain::timer::{TimerAction, TimerEvent};
use palaver_projections::queries::TimelineEntry;
use palaver_store::{AllFilter, Position};
use palaver_whatsapp::{Backoff, CloudApi, CloudApiConfig, Secret};
use palaver_workers::Checkpoints;
use palaver_workers::checkpoint::SqliteCheckpoints;
use palaver_workers::delivery::{DeliveryOptions, DeliveryWorker};
use palaver_workers::runner::run;
use serde_json::{Value, json};
use support::{CUSTOMER, NUMBER, TestApp, app_with_clock, eventually};
use tokio::sync::watch;

const TOKEN: &str = "EAAG-test-token-do-not-log";
const VERSION: &str = "v23.0";

/// What the stub answers to one request.
#[derive(Clone)]
enum Answer {
    /// 200 with `messages[0].id`.
    Accept(&'static str),
    /// An error answer.
    Error {
        status: u16,
        retry_after: Option<u64>,
        body: Value,
    },
    /// Receives the request, then answers only after the client gave up.
    Hang(Duration),
}

/// One request the stub received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
    at: Instant,
}

/// A scripted Cloud API: answers requests in script order, then accepts
/// everything.
struct Stub {
    script: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<Seen>>,
    base_url: String,
}

impl Stub {
    async fn start(script: Vec<Answer>) -> Arc<Stub> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stub = Arc::new(Stub {
            script: Mutex::new(script.into()),
            seen: Mutex::default(),
            base_url: format!("http://{}", listener.local_addr().unwrap()),
        });
        let router = Router::new().fallback(answer).with_state(Arc::clone(&stub));
        tokio::spawn(async move { axum::serve(listener, router).await });
        stub
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// A client of this stub giving up after `timeout`.
    fn api(&self, timeout: Duration) -> CloudApi {
        CloudApi::new(CloudApiConfig {
            base_url: self.base_url.clone(),
            api_version: VERSION.to_owned(),
            access_token: Secret::new(TOKEN),
            timeout,
        })
        .unwrap()
    }
}

async fn answer(State(stub): State<Arc<Stub>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let n = {
        let mut seen = stub.seen.lock().unwrap();
        seen.push(Seen {
            path: uri.path().to_owned(),
            authorization: headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned()),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            at: Instant::now(),
        });
        seen.len()
    };
    let next = stub.script.lock().unwrap().pop_front();
    let accept = |id: String| {
        axum::Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": CUSTOMER, "wa_id": CUSTOMER}],
            "messages": [{"id": id}],
        }))
        .into_response()
    };
    match next {
        None => accept(format!("wamid.stub-{n}")),
        Some(Answer::Accept(id)) => accept(id.to_owned()),
        Some(Answer::Error {
            status,
            retry_after,
            body,
        }) => {
            let mut response = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.to_string().parse().unwrap());
            }
            response
        }
        Some(Answer::Hang(duration)) => {
            tokio::time::sleep(duration).await;
            accept(format!("wamid.stub-{n}"))
        }
    }
}

/// A Graph API error body.
fn graph_error(code: i64, message: &str, details: &str) -> Value {
    json!({"error": {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }})
}

fn options() -> DeliveryOptions {
    DeliveryOptions {
        max_attempts: 3,
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(40),
        },
        rate: NonZeroU32::new(1_000).unwrap(),
        reconcile_after: Duration::from_secs(15 * 60),
        concurrency: 4,
    }
}

/// A delivery worker running in the background.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(test: &TestApp, api: CloudApi, checkpoints: Arc<SqliteCheckpoints>) -> Running {
        let (stop, shutdown) = watch::channel(false);
        let worker = DeliveryWorker::new(test.app.clone(), api, options()).with_shutdown(shutdown.clone());
        let task = tokio::spawn(run(test.runtime(checkpoints), Arc::new(worker), shutdown));
        Running { stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
    }
}

/// A conversation with a reply queued in it.
async fn queued_reply(test: &TestApp, text: &str) -> (ConversationId, MessageId, Position) {
    let conversation = test.inbound(CUSTOMER, "wamid.in-1", "Hello?").await;
    let (message, position) = test.reply(conversation, text).await;
    (conversation, message, position)
}

async fn settled(test: &TestApp, conversation: ConversationId, message: MessageId) -> bool {
    test.app
        .pending_send(test.workspace, conversation, message)
        .await
        .unwrap()
        .unwrap()
        .settled
}

async fn attempts(test: &TestApp, conversation: ConversationId, message: MessageId) -> u32 {
    test.app
        .pending_send(test.workspace, conversation, message)
        .await
        .unwrap()
        .unwrap()
        .attempts
}

/// The message as the timeline shows it, with everything written so far.
async fn timeline(test: &TestApp, conversation: ConversationId, message: MessageId) -> TimelineEntry {
    let head = test.store.head().await.unwrap();
    test.app
        .conversation(test.workspace, conversation, Some(head))
        .await
        .unwrap()
        .messages
        .into_iter()
        .find(|m| m.message_id == message.to_string())
        .unwrap()
}

/// Every timer scheduled so far, as (due, action).
async fn timers(test: &TestApp) -> Vec<(chrono::DateTime<chrono::Utc>, TimerAction)> {
    let filter = AllFilter::event_types([event_types::TIMER_SCHEDULED]);
    let events = test.store.read_all(Position::START, &filter, 100).await.unwrap();
    events
        .iter()
        .map(
            |e| match TimerEvent::decode(&e.event_type, e.schema_version, &e.payload).unwrap() {
                TimerEvent::Scheduled { due_at, action, .. } => (due_at, action),
                other => panic!("not a schedule: {other:?}"),
            },
        )
        .collect()
}

/// Waits until the worker's checkpoint passed `position`: everything up to
/// it was handled.
async fn handled(checkpoints: &SqliteCheckpoints, position: Position) {
    eventually("the worker handled the queued message", async || {
        checkpoints.load("delivery").await.unwrap() >= position
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_sent_once_and_its_whatsapp_id_recorded() {
    let test = app_with_clock().await;
    let stub = Stub::start(vec![Answer::Accept("wamid.HBgLNDQ3NzAwOTAwMTIzFQIAERgS")]).await;
    let (conversation, message, _) = queued_reply(&test, "Hi Ada, how can I help? https://example.com").await;

    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), test.checkpoints("1.db"));
    eventually("the reply is accepted", async || {
        settled(&test, conversation, message).await
    })
    .await;
    worker.stop().await;

    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/{VERSION}/{NUMBER}/messages"));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(
        seen[0].body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER,
            "type": "text",
            "text": {"preview_url": true, "body": "Hi Ada, how can I help? https://example.com"},
            "biz_opaque_callback_data": format!("{conversation}/{message}"),
        })
    );
    assert_eq!(attempts(&test, conversation, message).await, 1);
    let entry = timeline(&test, conversation, message).await;
    assert_eq!(
        entry.wa_message_id.as_deref(),
        Some("wamid.HBgLNDQ3NzAwOTAwMTIzFQIAERgS")
    );
    assert_eq!(entry.failure_code, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_goes_out_with_its_parameters() {
    let test = app_with_clock().await;
    let stub = Stub::start(vec![]).await;
    let conversation = test.inbound(CUSTOMER, "wamid.in-1", "Hello?").await;
    let (message, _) = test.template(conversation, "Ada").await;

    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), test.checkpoints("1.db"));
    eventually("the template is accepted", async || {
        settled(&test, conversation, message).await
    })
    .await;
    worker.stop().await;

    let seen = stub.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["type"], "template");
    assert_eq!(
        seen[0].body["template"],
        json!({
            "name": "welcome",
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}],
        })
    );
    let entry = timeline(&test, conversation, message).await;
    assert_eq!(entry.wa_message_id.as_deref(), Some("wamid.stub-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_retried_no_sooner_than_retry_after() {
    let test = app_with_clock().await;
    let stub = Stub::start(vec![Answer::Error {
        status: 429,
        retry_after: Some(1),
        body: graph_error(
            130_429,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
    }])
    .await;
    let (conversation, message, _) = queued_reply(&test, "On it").await;

    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), test.checkpoints("1.db"));
    eventually("the retry is accepted", async || {
        settled(&test, conversation, message).await
    })
    .await;
    worker.stop().await;

    let seen = stub.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "the same request again");
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "Retry-After is a floor"
    );
    assert_eq!(attempts(&test, conversation, message).await, 2);
    let entry = timeline(&test, conversation, message).await;
    assert_eq!(entry.wa_message_id.as_deref(), Some("wamid.stub-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried() {
    let test = app_with_clock().await;
    let stub = Stub::start(vec![Answer::Error {
        status: 500,
        retry_after: None,
        body: json!({"error": {"message": "An unknown error occurred", "type": "OAuthException"}}),
    }])
    .await;
    let (conversation, message, _) = queued_reply(&test, "On it").await;

    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), test.checkpoints("1.db"));
    eventually("the retry is accepted", async || {
        settled(&test, conversation, message).await
    })
    .await;
    worker.stop().await;

    assert_eq!(stub.seen().len(), 2);
    assert_eq!(attempts(&test, conversation, message).await, 2);
    let entry = timeline(&test, conversation, message).await;
    assert_eq!(entry.wa_message_id.as_deref(), Some("wamid.stub-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_give_up_after_max_attempts() {
    let test = app_with_clock().await;
    let unavailable = Answer::Error {
        status: 503,
        retry_after: None,
        body: json!({}),
    };
    let stub = Stub::start(vec![unavailable.clone(), unavailable.clone(), unavailable]).await;
    let (conversation, message, _) = queued_reply(&test, "On it").await;

    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), test.checkpoints("1.db"));
    eventually("the message fails", async || {
        settled(&test, conversation, message).await
    })
    .await;
    worker.stop().await;

    assert_eq!(stub.seen().len(), 3, "max_attempts sends, no more");
    let entry = timeline(&test, conversation, message).await;
    assert_eq!(entry.delivery_state.as_deref(), Some("failed"));
    assert_eq!(entry.failure_code, Some(0));
    let reason = entry.failure_reason.unwrap();
    assert!(reason.starts_with("gave up after 3 attempts: "), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_engagement_required_fails_the_message_with_its_code_and_reason() {
    let test = app_with_clock().await;
    let stub = Stub::start(vec![Answer::Error {
        status: 400,
        retry_after: None,
        body: graph_error(
            131_047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ),
    }])
    .await;
    let (conversation, message, _) = queued_reply(&test, "Still there?").await;

    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), test.checkpoints("1.db"));
    eventually("the message fails", async || {
        settled(&test, conversation, message).await
    })
    .await;
    worker.stop().await;

    assert_eq!(stub.seen().len(), 1, "a permanent refusal is not retried");
    let entry = timeline(&test, conversation, message).await;
    assert_eq!(entry.delivery_state.as_deref(), Some("failed"));
    assert_eq!(entry.failure_code, Some(131_047));
    assert_eq!(
        entry.failure_reason.as_deref(),
        Some(
            "Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number."
        )
    );
    assert_eq!(entry.wa_message_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_after_the_request_arrived_is_reconciled_not_resent_even_after_a_restart() {
    let test = app_with_clock().await;
    let stub = Stub::start(vec![Answer::Hang(Duration::from_secs(5))]).await;
    let (conversation, message, position) = queued_reply(&test, "On it").await;

    let checkpoints = test.checkpoints("1.db");
    let worker = Running::start(&test, stub.api(Duration::from_millis(300)), checkpoints.clone());
    handled(&checkpoints, position).await;
    worker.stop().await;

    let pending = test
        .app
        .pending_send(test.workspace, conversation, message)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((pending.attempts, pending.settled), (1, false));
    let expire = TimerAction::ExpireUncertainSend {
        conversation_id: conversation,
        message_id: message,
    };
    let due = pending.last_attempt_at.unwrap() + chrono::Duration::minutes(15);
    assert_eq!(timers(&test).await, vec![(due, expire.clone())]);

    // A restart that lost its checkpoint meets the message again.
    let checkpoints = test.checkpoints("2.db");
    let worker = Running::start(&test, stub.api(Duration::from_millis(300)), checkpoints.clone());
    handled(&checkpoints, position).await;
    worker.stop().await;

    assert_eq!(stub.seen().len(), 1, "never sent twice");
    assert_eq!(attempts(&test, conversation, message).await, 1);
    assert_eq!(timers(&test).await, vec![(due, expire)], "the same timer, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_without_an_outcome_is_not_resent_after_a_crash() {
    let test = app_with_clock().await;
    let stub = Stub::start(vec![]).await;
    let (conversation, message, position) = queued_reply(&test, "On it").await;
    // A worker recorded attempt 1 and died before (or while) sending.
    let attempt = test
        .app
        .record_send_attempt(&test.system(), conversation, message, 0)
        .await
        .unwrap();
    assert_eq!(attempt.value, 1);
    // Fenced: nobody else gets attempt 1.
    assert!(
        test.app
            .record_send_attempt(&test.system(), conversation, message, 0)
            .await
            .is_err()
    );
    test.clock.advance(chrono::Duration::seconds(30));

    let checkpoints = test.checkpoints("1.db");
    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), checkpoints.clone());
    handled(&checkpoints, position).await;
    worker.stop().await;

    assert!(stub.seen().is_empty(), "not resent");
    assert_eq!(attempts(&test, conversation, message).await, 1);
    assert_eq!(
        timers(&test).await,
        vec![(
            support::t0() + chrono::Duration::minutes(15),
            TimerAction::ExpireUncertainSend {
                conversation_id: conversation,
                message_id: message,
            }
        )],
        "due 15 minutes after the attempt, not after the restart"
    );
}

/// Log lines, as the fmt subscriber writes them.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_retried_and_never_logged() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(|| LogWriter)
        .try_init();
    let test = app_with_clock().await;
    let stub = Stub::start(vec![Answer::Error {
        status: 401,
        retry_after: None,
        body: graph_error(190, "Error validating access token", ""),
    }])
    .await;
    let (conversation, message, _) = queued_reply(&test, "On it").await;

    let worker = Running::start(&test, stub.api(Duration::from_secs(5)), test.checkpoints("1.db"));
    eventually("the retry is accepted", async || {
        settled(&test, conversation, message).await
    })
    .await;
    worker.stop().await;

    assert_eq!(stub.seen().len(), 2);
    let logs = String::from_utf8(LOGS.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("refused the access token"), "{logs}");
    assert!(!logs.contains(TOKEN), "the token leaked into the logs");
}
