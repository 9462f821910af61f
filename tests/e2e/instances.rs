//! Two instances over one PostgreSQL database (events, read models, leases):
//! one projects and runs the workers, the other serves calls and waits;
//! when the first is killed (SIGKILL: no release, no goodbye), the second
//! takes the leases over within seconds and goes on where the first
//! stopped. Nothing is projected twice and no message is sent twice.
//!
//! Uses the PostgreSQL server at `PALAVER_TEST_POSTGRES_URL` (default the
//! local `test` database), in schemas of its own that it drops at the end.

use std::time::{Duration, Instant};

use palaver_proto::v1 as pb;

use crate::harness::{Clients, Server, command, query};
use crate::webhooks::{Answer, SECRET, cloud_api_stub, post};

const WORKSPACE: &str = "0192f0e3-0000-7000-8000-0000000000d1";
const NUMBER: &str = "100000000000061";
const CUSTOMER: &str = "447700900161";
/// Short leases, so the test waits seconds, not tens of seconds.
const LEASE_TTL_SECONDS: u64 = 2;

fn url() -> String {
    std::env::var("PALAVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The schemas of one test, dropped when it ends.
struct Schemas {
    store: String,
    read_models: String,
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = [self.store.clone(), self.read_models.clone()];
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            for name in names {
                let _ = runtime.block_on(palaver_store_postgres::PostgresStore::drop_schema(&url(), &name));
            }
        })
        .join();
    }
}

fn start(name: &str, schemas: &Schemas, api: &str) -> Server {
    let url = url();
    let ttl = LEASE_TTL_SECONDS.to_string();
    Server::start_with(&[
        "--store",
        "postgres",
        "--read-models",
        "postgres",
        "--postgres-url",
        &url,
        "--postgres-schema",
        &schemas.store,
        "--read-models-schema",
        &schemas.read_models,
        "--instance-id",
        name,
        "--lease-ttl-seconds",
        &ttl,
        "--whatsapp-app-secret",
        SECRET,
        "--whatsapp-access-token",
        "test-access-token",
        "--whatsapp-api-base-url",
        api,
        "--whatsapp-api-version",
        "v25.0",
    ])
}

/// Waits until `server` has logged, for each of `lines`, a line containing
/// all its parts, in any order (lines it logged while starting count).
fn wait_for_logs(server: &Server, lines: &[&[&str]], timeout: Duration) {
    fn take(missing: &mut Vec<&[&str]>, line: &str) {
        missing.retain(|parts| !parts.iter().all(|part| line.contains(part)));
    }
    let mut missing: Vec<&[&str]> = lines.to_vec();
    for line in &server.startup_logs {
        take(&mut missing, line);
    }
    let deadline = Instant::now() + timeout;
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match server.logs.recv_timeout(left) {
            Ok(line) => take(&mut missing, &line),
            Err(_) => panic!("no log lines with {missing:?} within {timeout:?}"),
        }
    }
}

const PROJECTING: &[&str] = &["this instance projects the read models now"];
const DELIVERING: &[&str] = &["lease taken", "\"delivery\""];

/// A signed-ready webhook body: one text message from the customer, sent now.
fn inbound(id: &str, body: &str) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "200000000000061",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550006161", "phone_number_id": NUMBER},
                    "contacts": [{"profile": {"name": "Ada"}, "wa_id": CUSTOMER}],
                    "messages": [{
                        "from": CUSTOMER, "id": id, "timestamp": now.to_string(),
                        "type": "text", "text": {"body": body},
                    }],
                },
            }],
        }],
    })
    .to_string()
    .into_bytes()
}

async fn reply(clients: &mut Clients, conversation_id: &str, message_id: &str, text: &str) {
    clients
        .conversations
        .send_reply(pb::SendReplyRequest {
            options: command(WORKSPACE),
            conversation_id: conversation_id.to_owned(),
            message_id: message_id.to_owned(),
            reply: Some(pb::Reply {
                kind: Some(pb::reply::Kind::Text(text.to_owned())),
            }),
        })
        .await
        .unwrap();
}

async fn wait_for_sends(requests: &std::sync::Mutex<Vec<serde_json::Value>>, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while requests.lock().unwrap().len() < count {
        assert!(Instant::now() < deadline, "{count} sends did not arrive in time");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_lease_holder_dies_the_other_instance_takes_over_without_doing_anything_twice() {
    // Schema names are short (read models allow 46 bytes).
    let id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let schemas = Schemas {
        store: format!("palaver_e2e_{id}"),
        read_models: format!("palaver_e2e_{id}_read"),
    };
    let stub = cloud_api_stub(vec![
        Answer::Accepted("wamid.OUT_1"),
        Answer::Accepted("wamid.OUT_2"),
    ])
    .await;
    let api = format!("http://{}", stub.addr);

    // The first instance takes every lease; the second waits for them.
    let first = start("first", &schemas, &api);
    wait_for_logs(&first, &[PROJECTING, DELIVERING], Duration::from_secs(20));
    let second = start("second", &schemas, &api);
    let mut clients = second.clients(&second.admin_token).await;
    clients
        .channels
        .connect_number(pb::ConnectNumberRequest {
            options: command(WORKSPACE),
            phone_number_id: NUMBER.to_owned(),
            display_phone_number: "+1 555 000 6161".to_owned(),
            business_account_id: "200000000000061".to_owned(),
        })
        .await
        .unwrap();

    // Everything goes through the second instance; the first does the work.
    assert_eq!(
        post(&second.http, &inbound("wamid.IN_1", "Where is my order?"))
            .await
            .0,
        200
    );
    let conversation = clients.conversation_with(WORKSPACE, 1).await;
    let conversation_id = conversation.conversation.unwrap().conversation_id;
    reply(
        &mut clients,
        &conversation_id,
        "0192f0e3-0000-7000-8000-0000000000e1",
        "On its way!",
    )
    .await;
    wait_for_sends(&stub.requests, 1).await;
    clients.conversation_with(WORKSPACE, 2).await;
    // Timestamps are whole seconds: keep the messages in distinct ones.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        post(&second.http, &inbound("wamid.IN_2", "Thanks! And the invoice?"))
            .await
            .0,
        200
    );
    clients.conversation_with(WORKSPACE, 3).await;

    // The holder dies.
    drop(first);
    let died = Instant::now();
    wait_for_logs(&second, &[PROJECTING, DELIVERING], Duration::from_secs(20));
    let took = died.elapsed();
    assert!(
        took < Duration::from_secs(LEASE_TTL_SECONDS + 5),
        "the leases moved after {took:?}"
    );

    // The survivor goes on: a new message in (the unread count shows the
    // first's last message was not projected again), a new reply out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post(&second.http, &inbound("wamid.IN_3", "Hello?")).await.0, 200);
    clients.conversation_with(WORKSPACE, 4).await;
    let rows = clients
        .inbox
        .list_inbox(pb::ListInboxRequest {
            options: query(WORKSPACE, 0),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows[0].unread_count, 2, "IN_2 and IN_3, each counted once");
    reply(
        &mut clients,
        &conversation_id,
        "0192f0e3-0000-7000-8000-0000000000e2",
        "Attached.",
    )
    .await;
    wait_for_sends(&stub.requests, 2).await;
    // A redelivered webhook of an earlier message changes nothing.
    assert_eq!(
        post(&second.http, &inbound("wamid.IN_2", "Thanks! And the invoice?"))
            .await
            .0,
        200
    );

    // Settle, then count: each message once in the timeline, each reply
    // sent once, one inbox row.
    clients.conversation_with(WORKSPACE, 5).await;
    tokio::time::sleep(Duration::from_secs(LEASE_TTL_SECONDS)).await;
    let conversation = clients.conversation_with(WORKSPACE, 5).await;
    let texts: Vec<_> = conversation
        .messages
        .iter()
        .map(|m| (m.direction.as_str(), m.summary.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("inbound", "Where is my order?"),
            ("outbound", "On its way!"),
            ("inbound", "Thanks! And the invoice?"),
            ("inbound", "Hello?"),
            ("outbound", "Attached."),
        ],
        "each message once, in order"
    );
    let sent = stub.requests.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "each reply sent once: {sent:?}");
    assert_eq!(sent[0]["text"]["body"], "On its way!");
    assert_eq!(sent[1]["text"]["body"], "Attached.");
    drop(second);
}
