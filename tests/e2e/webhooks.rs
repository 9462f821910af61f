//! WhatsApp webhooks end to end: signed payloads in the exact shape of
//! Meta's reference (the fixtures of `palaver-whatsapp`) posted to the real
//! server, and their effects read back over gRPC.

use std::time::Duration;

use palaver_proto::v1 as pb;
use palaver_store::{AllFilter, EventStore, Position, SqliteStore};
use palaver_whatsapp::signature;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Clients, Server, command, query};

const WORKSPACE: &str = "0192f0e3-0000-7000-8000-0000000000c1";
const NUMBER: &str = "100000000000001";
pub(crate) const SECRET: &str = "test-app-secret";
const VERIFY: &str = "test-verify-token";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../whatsapp/tests/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn start(extra: &[&str]) -> Server {
    let mut args = vec!["--whatsapp-app-secret", SECRET, "--whatsapp-verify-token", VERIFY];
    args.extend_from_slice(extra);
    Server::start_with(&args)
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
pub(crate) async fn http(
    addr: &str,
    request_line: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{request_line} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        addr,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub(crate) async fn post(addr: &str, body: &[u8]) -> (u16, String) {
    let headers = [
        ("Content-Type", "application/json".to_owned()),
        ("X-Hub-Signature-256", signature::sign(SECRET.as_bytes(), body)),
    ];
    http(addr, "POST /webhooks/whatsapp", &headers, body).await
}

async fn connect(clients: &mut Clients) {
    clients
        .channels
        .connect_number(pb::ConnectNumberRequest {
            options: command(WORKSPACE),
            phone_number_id: NUMBER.to_owned(),
            display_phone_number: "+1 555 000 1111".to_owned(),
            business_account_id: "200000000000001".to_owned(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_subscription_handshake_answers_only_the_right_token() {
    let server = start(&[]);
    let ok = format!(
        "GET /webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444"
    );
    assert_eq!(
        http(&server.http, &ok, &[], b"").await,
        (200, "1158201444".to_owned())
    );
    let wrong = "GET /webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1";
    assert_eq!(http(&server.http, wrong, &[], b"").await.0, 403);
    let no_mode = format!("GET /webhooks/whatsapp?hub.verify_token={VERIFY}&hub.challenge=1");
    assert_eq!(http(&server.http, &no_mode, &[], b"").await.0, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_kind_reaches_the_timeline() {
    let server = start(&[]);
    let mut clients = server.clients(&server.admin_token).await;
    connect(&mut clients).await;
    let kinds = [
        "text",
        "image",
        "document",
        "video",
        "gif",
        "audio",
        "voice",
        "sticker",
        "location",
        "contacts",
        "reaction",
        "button",
        "interactive_button_reply",
        "interactive_list_reply",
        "reply",
        "forwarded",
        "referral",
        "unsupported",
        "unknown_type",
    ];
    for kind in kinds {
        let (status, body) = post(&server.http, &fixture(kind)).await;
        assert_eq!(status, 200, "{kind}: {body}");
    }
    let conversation = clients.conversation_with(WORKSPACE, kinds.len()).await;
    let seen: std::collections::BTreeSet<String> =
        conversation.messages.iter().map(|m| m.kind.clone()).collect();
    for kind in [
        "text",
        "image",
        "document",
        "video",
        "gif",
        "audio",
        "voice",
        "sticker",
        "location",
        "contacts",
        "reaction",
        "button",
        "interactive",
    ] {
        assert!(seen.contains(kind), "no {kind} message in {seen:?}");
    }
    let image = conversation.messages.iter().find(|m| m.kind == "image").unwrap();
    assert!(
        !image.media.is_empty() && image.mime_type.starts_with("image/"),
        "{image:?}"
    );
    assert!(conversation.messages.iter().all(|m| m.direction == "inbound"));
    // The customer became a lead named from their profile.
    let contacts = clients
        .inbox
        .find_contacts_by_phone(pb::FindContactsByPhoneRequest {
            options: query(WORKSPACE, 0),
            phone_number: "+44 7700 900123".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .contacts;
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!(contacts[0].name, "Ada Lovelace");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_posts_store_nothing() {
    let server = start(&["--webhook-body-limit-bytes", "4096"]);
    let body = fixture("text");
    let no_signature = [("Content-Type", "application/json".to_owned())];
    assert_eq!(
        http(&server.http, "POST /webhooks/whatsapp", &no_signature, &body)
            .await
            .0,
        401
    );
    let forged = [("X-Hub-Signature-256", signature::sign(b"another secret", &body))];
    assert_eq!(
        http(&server.http, "POST /webhooks/whatsapp", &forged, &body)
            .await
            .0,
        401
    );
    let (status, reason) = post(
        &server.http,
        b"{\"object\": \"whatsapp_business_account\", \"entry\": [",
    )
    .await;
    assert_eq!(status, 400, "{reason}");
    let (status, reason) = post(
        &server.http,
        br#"{"object":"whatsapp_business_account","entry":[{"id":7}]}"#,
    )
    .await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("entry"), "the reason names the path: {reason}");
    let mut huge = body.clone();
    huge.extend(std::iter::repeat_n(b' ', 8192));
    assert_eq!(post(&server.http, &huge).await.0, 413);

    let dir = server.stop_keeping_data();
    let store = SqliteStore::open(dir.path().join("data/events.db"), Default::default()).unwrap();
    let events = store
        .read_all(Position::START, &AllFilter::stream_prefixes(["webhook-"]), 100)
        .await
        .unwrap();
    assert!(events.is_empty(), "refused posts were stored: {events:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payload_for_an_unconnected_number_waits_and_is_replayed_on_connect() {
    let server = start(&[]);
    let mut clients = server.clients(&server.admin_token).await;
    assert_eq!(post(&server.http, &fixture("text")).await.0, 200);
    // The intake parks it: nothing in any inbox yet.
    let parked = loop {
        match server.logs.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains("webhook parked") => break line,
            Ok(_) => {}
            Err(error) => panic!("the payload was not parked: {error}"),
        }
    };
    assert!(parked.contains(NUMBER), "{parked}");
    connect(&mut clients).await;
    let conversation = clients.conversation_with(WORKSPACE, 1).await;
    assert_eq!(conversation.messages[0].summary, "Hello! Is my order on its way?");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_from_a_new_number_makes_one_lead_and_one_conversation_and_redeliveries_change_nothing() {
    let server = start(&[]);
    let mut clients = server.clients(&server.admin_token).await;
    connect(&mut clients).await;
    let template = String::from_utf8(fixture("text")).unwrap();
    let bodies: Vec<Vec<u8>> = (0..12)
        .map(|i| {
            template
                .replace("wamid.TEST_text", &format!("wamid.BURST_{i}"))
                .replace("1764050000", &(1_764_050_000 + i).to_string())
                .into_bytes()
        })
        .collect();
    let mut posts = Vec::new();
    for body in bodies.iter().cloned().chain(bodies.iter().take(3).cloned()) {
        let addr = server.http.clone();
        posts.push(tokio::spawn(async move { post(&addr, &body).await.0 }));
    }
    for post in posts {
        assert_eq!(post.await.unwrap(), 200);
    }
    let conversation = clients.conversation_with(WORKSPACE, 12).await;
    // Give redeliveries time to (not) add anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = clients
        .inbox
        .get_conversation(pb::GetConversationRequest {
            options: query(WORKSPACE, 0),
            conversation_id: conversation
                .conversation
                .as_ref()
                .unwrap()
                .conversation_id
                .clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.messages.len(), 12);
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
    assert_eq!(rows.len(), 1, "one conversation: {rows:?}");
    let contacts = clients
        .inbox
        .find_contacts_by_phone(pb::FindContactsByPhoneRequest {
            options: query(WORKSPACE, 0),
            phone_number: "+447700900123".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .contacts;
    assert_eq!(contacts.len(), 1, "one lead: {contacts:?}");
}

/// A stand-in for the Cloud API: answers each send from a script and keeps
/// every request body.
pub(crate) struct CloudApiStub {
    pub(crate) addr: String,
    pub(crate) requests: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

/// How the stub answers the n-th send.
#[derive(Clone, Copy)]
pub(crate) enum Answer {
    /// 200 with this WhatsApp message id.
    Accepted(&'static str),
    /// 200 without a message id: Palaver cannot tell whether it was sent.
    NoId,
}

pub(crate) async fn cloud_api_stub(script: Vec<Answer>) -> CloudApiStub {
    use axum::{Json, Router, routing::post};
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = requests.clone();
    let app = Router::new().route(
        "/v25.0/{number}/messages",
        post(move |Json(body): Json<serde_json::Value>| {
            let seen = seen.clone();
            let script = script.clone();
            async move {
                let n = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(body);
                    seen.len() - 1
                };
                match script.get(n).copied().unwrap_or(Answer::NoId) {
                    Answer::Accepted(id) => Json(serde_json::json!({
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": "447700900123", "wa_id": "447700900123"}],
                        "messages": [{"id": id}],
                    })),
                    Answer::NoId => Json(serde_json::json!({"messaging_product": "whatsapp"})),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    CloudApiStub { addr, requests }
}

fn statuses(wa_message_id: &str, callback: &str) -> Vec<u8> {
    let status = |status: &str, at: i64| {
        serde_json::json!({
            "id": wa_message_id,
            "status": status,
            "timestamp": at.to_string(),
            "recipient_id": "447700900123",
            "biz_opaque_callback_data": callback,
        })
    };
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "200000000000001",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550001111", "phone_number_id": NUMBER},
                    // Out of order and repeated, as Meta may deliver them.
                    "statuses": [status("read", 1_764_050_130), status("sent", 1_764_050_110),
                                 status("delivered", 1_764_050_120), status("read", 1_764_050_130)],
                },
            }],
        }],
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn replies_go_to_the_cloud_api_once_and_statuses_come_back_by_webhook() {
    let stub = cloud_api_stub(vec![Answer::NoId, Answer::Accepted("wamid.OUT_2")]).await;
    let base_url = format!("http://{}", stub.addr);
    let server = start(&[
        "--unsafe-test-clock",
        "true",
        "--whatsapp-access-token",
        "test-access-token",
        "--whatsapp-api-base-url",
        &base_url,
        "--whatsapp-api-version",
        "v25.0",
    ]);
    let mut clients = server.clients(&server.admin_token).await;
    clients
        .clock
        .set_time(pb::SetTimeRequest {
            now: Some(palaver_proto::prost_types::Timestamp {
                seconds: 1_764_050_100,
                nanos: 0,
            }),
        })
        .await
        .unwrap();
    connect(&mut clients).await;
    assert_eq!(post(&server.http, &fixture("text")).await.0, 200);
    let conversation = clients.conversation_with(WORKSPACE, 1).await;
    let conversation_id = conversation.conversation.unwrap().conversation_id;
    let reply = |message_id: &str, body: &str| pb::SendReplyRequest {
        options: command(WORKSPACE),
        conversation_id: conversation_id.clone(),
        message_id: message_id.to_owned(),
        reply: Some(pb::Reply {
            kind: Some(pb::reply::Kind::Text(body.to_owned())),
        }),
    };
    // The first answer is lost (no id): Palaver must not send it again.
    let first = "0192f0e3-0000-7000-8000-0000000000f1";
    clients
        .conversations
        .send_reply(reply(first, "On its way!"))
        .await
        .unwrap();
    for _ in 0..200 {
        if !stub.requests.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let sent = stub.requests.lock().unwrap()[0].clone();
    assert_eq!(sent["to"], "447700900123");
    assert_eq!(sent["text"]["body"], "On its way!");
    let callback = format!("{conversation_id}/{first}");
    assert_eq!(sent["biz_opaque_callback_data"], callback.as_str());
    // The status webhooks name it by callback data: reconciled, then read.
    assert_eq!(
        post(&server.http, &statuses("wamid.OUT_1", &callback)).await.0,
        200
    );
    // A second reply goes through normally.
    let second = "0192f0e3-0000-7000-8000-0000000000f2";
    clients
        .conversations
        .send_reply(reply(second, "Anything else?"))
        .await
        .unwrap();

    let mut settled = None;
    for _ in 0..200 {
        let conversation = clients.conversation_with(WORKSPACE, 3).await;
        let out: Vec<_> = conversation
            .messages
            .iter()
            .filter(|m| m.direction == "outbound")
            .cloned()
            .collect();
        if out.len() == 2
            && out.iter().all(|m| !m.wa_message_id.is_empty())
            && out[0].delivery_status == pb::DeliveryStatus::Read as i32
        {
            settled = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = settled.expect("both replies accepted, the first read");
    assert_eq!(out[0].wa_message_id, "wamid.OUT_1");
    assert_eq!(out[1].wa_message_id, "wamid.OUT_2");
    assert_eq!(
        stub.requests.lock().unwrap().len(),
        2,
        "each reply sent exactly once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_known_only_by_a_business_scoped_id_gets_a_lead_and_a_conversation() {
    let server = start(&[]);
    let mut clients = server.clients(&server.admin_token).await;
    connect(&mut clients).await;
    assert_eq!(post(&server.http, &fixture("bsuid_only")).await.0, 200);
    let conversation = clients.conversation_with(WORKSPACE, 1).await;
    let row = conversation.conversation.unwrap();
    assert_eq!(row.contact_name, "Ada Lovelace");
    let contact = clients
        .inbox
        .get_contact(pb::GetContactRequest {
            options: query(WORKSPACE, 0),
            contact_id: row.contact_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contact.wa_id, "GB.1000000000000001");
    assert!(contact.phone_numbers.is_empty(), "no number to know: {contact:?}");
}
