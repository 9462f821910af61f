//! The gRPC API end to end: the real binary, a generated tonic client.

use std::time::Duration;

use futures::StreamExt;
use palaver_proto::{prost_types::Timestamp, v1 as pb};
use tonic::Code;

use crate::harness::{Clients, Server, command, query};

const A: &str = "0192f0e3-0000-7000-8000-00000000000a";
const B: &str = "0192f0e3-0000-7000-8000-00000000000b";
const NUMBER_A: &str = "1000001";

fn text(body: &str) -> Option<pb::InboundContent> {
    Some(pb::InboundContent {
        kind: Some(pb::inbound_content::Kind::Text(pb::TextContent {
            body: body.to_owned(),
        })),
    })
}

fn reply(body: &str) -> Option<pb::Reply> {
    Some(pb::Reply {
        kind: Some(pb::reply::Kind::Text(body.to_owned())),
    })
}

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// Now, on the server's clock, as the test sets it.
const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn reason(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get("palaver-reason")
        .and_then(|v| v.to_str().ok())
}

fn field(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get("palaver-field")
        .and_then(|v| v.to_str().ok())
}

/// Connects a number to the workspace, with one approved template.
async fn setup(clients: &mut Clients, workspace: &str, number: &str) {
    clients
        .channels
        .connect_number(pb::ConnectNumberRequest {
            options: command(workspace),
            phone_number_id: number.to_owned(),
            display_phone_number: "+44 20 7946 0001".to_owned(),
            business_account_id: format!("waba-{number}"),
        })
        .await
        .unwrap();
    clients
        .channels
        .sync_templates(pb::SyncTemplatesRequest {
            options: command(workspace),
            business_account_id: format!("waba-{number}"),
            templates: vec![pb::TemplateDefinition {
                name: "order_update".to_owned(),
                language: "en_GB".to_owned(),
                category: pb::TemplateCategory::Utility as i32,
                components: vec![pb::TemplateComponent {
                    r#type: pb::TemplateComponentType::Body as i32,
                    format: String::new(),
                    text: "Your order {{1}} is on its way".to_owned(),
                }],
                status: pb::TemplateStatus::Approved as i32,
            }],
        })
        .await
        .unwrap();
}

/// A server in test-clock mode at `T0`, with workspace A's number
/// connected, and admin clients.
async fn started() -> (Server, Clients) {
    let server = Server::start();
    let mut clients = server.clients(&server.admin_token).await;
    clients
        .clock
        .set_time(pb::SetTimeRequest { now: ts(T0) })
        .await
        .unwrap();
    setup(&mut clients, A, NUMBER_A).await;
    (server, clients)
}

async fn inbound(
    clients: &mut Clients,
    workspace: &str,
    number: &str,
    wa_id: &str,
    id: &str,
    body: &str,
    sent_at: i64,
) -> pb::RecordInboundMessageResponse {
    clients
        .conversations
        .record_inbound_message(pb::RecordInboundMessageRequest {
            options: command(workspace),
            phone_number_id: number.to_owned(),
            wa_id: wa_id.to_owned(),
            profile_name: "Ada".to_owned(),
            wa_message_id: id.to_owned(),
            sent_at: ts(sent_at),
            content: text(body),
        })
        .await
        .unwrap()
        .into_inner()
}

fn template() -> Option<pb::TemplateSend> {
    Some(pb::TemplateSend {
        name: "order_update".to_owned(),
        language: "en_GB".to_owned(),
        header_parameters: vec![],
        body_parameters: vec!["#42".to_owned()],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_message_reaches_the_inbox_and_gets_a_reply_then_the_window_closes() {
    let (_server, mut c) = started().await;

    let received = inbound(
        &mut c,
        A,
        NUMBER_A,
        "447700900123",
        "wamid.1",
        "Where is my order? 📦",
        T0 - 60,
    )
    .await;
    assert!(!received.duplicate);
    let position = received.result.unwrap().position;
    let page = c
        .inbox
        .list_inbox(pb::ListInboxRequest {
            options: query(A, position),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.rows.len(), 1);
    let row = &page.rows[0];
    assert_eq!(row.conversation_id, received.conversation_id);
    assert_eq!((row.unread_count, row.needs_template), (1, false));
    assert_eq!(row.last_message_preview, "Where is my order? 📦");

    let sent = c
        .conversations
        .send_reply(pb::SendReplyRequest {
            options: command(A),
            conversation_id: received.conversation_id.clone(),
            message_id: String::new(),
            reply: reply("On its way 🚚"),
        })
        .await
        .unwrap()
        .into_inner();
    let view = c
        .inbox
        .get_conversation(pb::GetConversationRequest {
            options: query(A, sent.result.unwrap().position),
            conversation_id: received.conversation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let last = view.messages.last().unwrap();
    assert_eq!(
        (last.direction.as_str(), last.summary.as_str()),
        ("outbound", "On its way 🚚")
    );
    assert_eq!(last.delivery_status, pb::DeliveryStatus::Queued as i32);
    assert_eq!(last.message_id, sent.message_id);

    // 24 hours after the customer's message, free-form replies are refused.
    c.clock
        .set_time(pb::SetTimeRequest {
            now: ts(T0 - 60 + 24 * 3600),
        })
        .await
        .unwrap();
    let refused = c
        .conversations
        .send_reply(pb::SendReplyRequest {
            options: command(A),
            conversation_id: received.conversation_id.clone(),
            message_id: String::new(),
            reply: reply("Still there?"),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), Some("window_closed"));
    // An approved template still goes.
    c.conversations
        .send_template(pb::SendTemplateRequest {
            options: command(A),
            conversation_id: received.conversation_id.clone(),
            message_id: String::new(),
            template: template(),
        })
        .await
        .unwrap();
    let window = c
        .inbox
        .get_window(pb::GetWindowRequest {
            options: query(A, 0),
            thread_id: received.thread_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!window.free_form_allowed);
    assert_eq!(window.closes_at, ts(T0 - 60 + 24 * 3600));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_conversation_takes_a_template_and_contacts_merge_by_phone() {
    let (_server, mut c) = started().await;
    let mut settings = pb::ChannelSettings {
        quiet_period: Some(pb::QuietPeriod {
            amount: 3,
            unit: pb::QuietPeriodUnit::Days as i32,
        }),
        identify_existing_users: true,
        default_region: "GB".to_owned(),
        ..Default::default()
    };
    settings.office_hours = Some(pb::OfficeHours {
        time_zone: "Europe/London".to_owned(),
        intervals: vec![],
    });
    c.channels
        .update_settings(pb::UpdateSettingsRequest {
            options: command(A),
            settings: Some(settings),
        })
        .await
        .unwrap();

    let user = c
        .contacts
        .create_contact(pb::CreateContactRequest {
            options: command(A),
            kind: pb::ContactKind::User as i32,
            name: "Ada Lovelace".to_owned(),
            phone_numbers: vec!["07700 900123".to_owned()],
            wa_id: String::new(),
            external_user_id: "crm-42".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();

    // The inbox starts a conversation with the user: template only.
    let started = c
        .conversations
        .start_conversation(pb::StartConversationRequest {
            options: command(A),
            contact_id: user.contact_id.clone(),
            phone_number_id: NUMBER_A.to_owned(),
            template: template(),
            message_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!started.conversation_id.is_empty());

    // The same person writes from WhatsApp: the new lead merges into the user.
    let received = inbound(&mut c, A, NUMBER_A, "447700900123", "wamid.7", "hi", T0).await;
    let position = received.result.unwrap().position;
    let found = c
        .inbox
        .find_contacts_by_phone(pb::FindContactsByPhoneRequest {
            options: query(A, position),
            phone_number: "+44 7700 900123".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.contacts.len(), 1);
    assert_eq!(found.contacts[0].contact_id, user.contact_id);
    assert_eq!(found.contacts[0].external_user_id, "crm-42");
    let resolved = c
        .inbox
        .get_contact(pb::GetContactRequest {
            options: query(A, 0),
            contact_id: received.contact_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.contact_id, user.contact_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_never_reaches_another_workspace() {
    let server = Server::start();
    let mut admin = server.clients(&server.admin_token).await;
    admin
        .clock
        .set_time(pb::SetTimeRequest { now: ts(T0) })
        .await
        .unwrap();
    setup(&mut admin, A, NUMBER_A).await;
    let received = inbound(
        &mut admin,
        A,
        NUMBER_A,
        "447700900123",
        "wamid.1",
        "secret stuff",
        T0,
    )
    .await;

    // A token for workspace B only, written the way an operator would.
    let b_token = "pvr_test_b_writer";
    let entry = format!(
        "\n[[token]]\nname = \"b-writer\"\nsha256 = \"{}\"\nrole = \"write\"\nworkspaces = [\"{B}\"]\n",
        palaver_api::auth::token_hash(b_token)
    );
    let tokens = server.data_dir().join("tokens.toml");
    let mut file = std::fs::read_to_string(&tokens).unwrap();
    file.push_str(&entry);
    std::fs::write(&tokens, file).unwrap();
    let dir = server.stop_keeping_data();
    let server = Server::start_in(dir, &["--unsafe-test-clock", "true"]);
    let mut b = server.clients(b_token).await;

    let denied = |status: tonic::Status| assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    denied(
        b.inbox
            .list_inbox(pb::ListInboxRequest {
                options: query(A, 0),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    denied(
        b.inbox
            .get_conversation(pb::GetConversationRequest {
                options: query(A, 0),
                conversation_id: received.conversation_id.clone(),
            })
            .await
            .unwrap_err(),
    );
    denied(
        b.inbox
            .find_contacts_by_phone(pb::FindContactsByPhoneRequest {
                options: query(A, 0),
                phone_number: "+447700900123".to_owned(),
            })
            .await
            .unwrap_err(),
    );
    denied(
        b.conversations
            .send_reply(pb::SendReplyRequest {
                options: command(A),
                conversation_id: received.conversation_id.clone(),
                message_id: String::new(),
                reply: reply("hijack"),
            })
            .await
            .unwrap_err(),
    );
    denied(
        b.events
            .subscribe(pb::SubscribeRequest {
                workspace_id: A.to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );
    denied(
        b.channels
            .connect_number(pb::ConnectNumberRequest {
                options: command(B),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    );

    // Naming its own workspace, B still finds nothing of A's.
    let not_found = b
        .inbox
        .get_conversation(pb::GetConversationRequest {
            options: query(B, 0),
            conversation_id: received.conversation_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(not_found.code(), Code::NotFound);
    let reply_elsewhere = b
        .conversations
        .send_reply(pb::SendReplyRequest {
            options: command(B),
            conversation_id: received.conversation_id.clone(),
            message_id: String::new(),
            reply: reply("hijack"),
        })
        .await
        .unwrap_err();
    assert_eq!(reply_elsewhere.code(), Code::NotFound);
    assert!(
        b.inbox
            .list_inbox(pb::ListInboxRequest {
                options: query(B, 0),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .rows
            .is_empty()
    );
    let mut feed = b
        .events
        .subscribe(pb::SubscribeRequest {
            workspace_id: B.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), feed.next())
            .await
            .is_err(),
        "B's feed must be empty"
    );
    let stream = format!("conversation-{}", received.conversation_id);
    let hidden = b
        .events
        .read_stream(pb::ReadStreamRequest {
            workspace_id: B.to_owned(),
            stream,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    // No token, or a wrong one.
    let mut nobody = server.clients("pvr_wrong").await;
    let status = nobody
        .inbox
        .list_inbox(pb::ListInboxRequest {
            options: query(A, 0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

/// Customers `range` each write their first message to workspace A.
async fn customers_write(c: &mut Clients, range: std::ops::Range<u32>) {
    for i in range {
        let wa_id = format!("44770090010{i}");
        inbound(c, A, NUMBER_A, &wa_id, &format!("wamid.{i}"), "hello", T0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_resumes_after_a_reconnect_without_gap_or_duplicate() {
    let (_server, mut c) = started().await;
    customers_write(&mut c, 0..5).await;
    let mut feed = c
        .events
        .subscribe(pb::SubscribeRequest {
            workspace_id: A.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(feed.next().await.unwrap().unwrap().position);
    }
    drop(feed);
    // More happens while the consumer is away.
    customers_write(&mut c, 5..8).await;
    let mut resumed = c
        .events
        .subscribe(pb::SubscribeRequest {
            workspace_id: A.to_owned(),
            after_position: *seen.last().unwrap(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Everything, from a fresh feed, to compare with.
    let mut everything = c
        .events
        .subscribe(pb::SubscribeRequest {
            workspace_id: A.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut all = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(1500), everything.next()).await {
        all.push(event.unwrap().position);
    }
    while seen.len() < all.len() {
        let event = tokio::time::timeout(Duration::from_secs(10), resumed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(event.position);
    }
    assert_eq!(seen, all);
    // Filters by category.
    let mut threads = c
        .events
        .subscribe(pb::SubscribeRequest {
            workspace_id: A.to_owned(),
            categories: vec!["thread".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let event = threads.next().await.unwrap().unwrap();
    assert!(event.stream.starts_with("thread-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_command_returns_the_first_result_and_does_nothing_twice() {
    let (_server, mut c) = started().await;
    let received = inbound(&mut c, A, NUMBER_A, "447700900123", "wamid.1", "hi", T0).await;
    let request = pb::SendReplyRequest {
        options: Some(pb::CommandOptions {
            workspace_id: A.to_owned(),
            idempotency_key: "reply-1".to_owned(),
            ..Default::default()
        }),
        conversation_id: received.conversation_id.clone(),
        message_id: String::new(),
        reply: reply("once"),
    };
    let first = c
        .conversations
        .send_reply(request.clone())
        .await
        .unwrap()
        .into_inner();
    let second = c.conversations.send_reply(request).await.unwrap().into_inner();
    assert_eq!(first, second);
    // The same WhatsApp message twice is one message.
    let again = inbound(&mut c, A, NUMBER_A, "447700900123", "wamid.1", "hi", T0).await;
    assert!(again.duplicate);
    let view = c
        .inbox
        .get_conversation(pb::GetConversationRequest {
            options: query(
                A,
                again.result.unwrap().position.max(first.result.unwrap().position),
            ),
            conversation_id: received.conversation_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.messages.len(), 2);
    // An expected version that no longer holds is a conflict.
    let stale = c
        .conversations
        .close_conversation(pb::ConversationActionRequest {
            options: Some(pb::CommandOptions {
                workspace_id: A.to_owned(),
                expected_version: Some(0),
                ..Default::default()
            }),
            conversation_id: view.conversation.unwrap().conversation_id,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_code_and_changes_nothing() {
    let (_server, mut c) = started().await;
    let received = inbound(&mut c, A, NUMBER_A, "447700900123", "wamid.1", "hi", T0).await;
    let position = received.result.unwrap().position;
    let before = c
        .inbox
        .get_conversation(pb::GetConversationRequest {
            options: query(A, position),
            conversation_id: received.conversation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();

    let send = |conversation_id: &str, reply: Option<pb::Reply>| pb::SendReplyRequest {
        options: command(A),
        conversation_id: conversation_id.to_owned(),
        message_id: String::new(),
        reply,
    };
    let status = c
        .conversations
        .send_reply(send("not-a-uuid", reply("x")))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, Some("conversation_id"))
    );
    let status = c
        .conversations
        .send_reply(send(&received.conversation_id, reply("   ")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = c
        .conversations
        .send_reply(send(&received.conversation_id, reply(&"x".repeat(5000))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = c
        .conversations
        .send_reply(send(&received.conversation_id, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = c
        .inbox
        .list_inbox(pb::ListInboxRequest {
            options: query(A, 0),
            status: 99,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, Some("status"))
    );
    let status = c
        .inbox
        .list_inbox(pb::ListInboxRequest {
            options: query("nope", 0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = c
        .contacts
        .create_contact(pb::CreateContactRequest {
            options: command(A),
            kind: pb::ContactKind::Lead as i32,
            name: "x".to_owned(),
            phone_numbers: vec!["not a phone".to_owned()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = c
        .conversations
        .send_reply(send(&uuid_like(), reply("x")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let after = c
        .inbox
        .get_conversation(pb::GetConversationRequest {
            options: query(A, position),
            conversation_id: received.conversation_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after);
}

fn uuid_like() -> String {
    "0192f0e3-0000-7000-8000-0000000000ff".to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_readiness_and_metrics_answer() {
    let server = Server::start_with(&[]);
    let channel = server.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (code, body) = http_get(&server.http, path);
        assert_eq!(code, 200, "{path}: {body}");
        if path == "/metrics" {
            assert!(body.contains("palaver_projection_lag_events"), "{body}");
            assert!(body.contains("palaver_inbox_cache_hits_total"), "{body}");
            assert!(body.contains("palaver_inbox_cache_misses_total"), "{body}");
        }
    }
    // Without the test mode there is no way to move the clock.
    let mut c = server.clients(&server.admin_token).await;
    let status = c
        .clock
        .set_time(pb::SetTimeRequest { now: ts(T0) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(server.stop().success());
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}
