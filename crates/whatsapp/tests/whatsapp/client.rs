//! The Cloud API client against a local stub of the API: the exact request
//! it sends, and how each kind of answer (or its absence) is classified.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use palaver_domain::ids::WaMessageId;
use palaver_domain::message::OutboundContent;
use palaver_domain::templates::{
    ComponentKind, TemplateCategory, TemplateComponent, TemplateDefinition, TemplateSend, TemplateStatus,
};
use palaver_whatsapp::client::{
    CloudApi, CloudApiConfig, Error, MediaSource, Payload, Recipient, SendError, SendRequest,
};
use serde_json::{Value, json};

const TOKEN: &str = "EAAG-test-token-never-logged";
const PHONE_NUMBER_ID: &str = "100000000000001";
const WABA: &str = "200000000000001";

/// One request as the stub saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path_and_query: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// One scripted answer.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    /// `{BASE}` is replaced by the stub's base URL.
    body: String,
    /// Never answer: the client must time out.
    hang: bool,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_string(),
            hang: false,
        }
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

#[derive(Default)]
struct Stub {
    base: String,
    seen: Mutex<Vec<Seen>>,
    replies: Mutex<VecDeque<Reply>>,
}

async fn answer(
    State(stub): State<Arc<Stub>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    stub.seen.lock().expect("lock").push(Seen {
        method,
        path_and_query: uri.path_and_query().map(ToString::to_string).unwrap_or_default(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
    });
    let reply = stub.replies.lock().expect("lock").pop_front();
    let Some(reply) = reply else {
        return (StatusCode::IM_A_TEAPOT, "no scripted reply").into_response();
    };
    if reply.hang {
        std::future::pending::<()>().await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body.replace("{BASE}", &stub.base),
    )
        .into_response();
    for (name, value) in reply.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    response
}

/// A stub answering `replies` in order, and a client pointed at it.
async fn stub(replies: Vec<Reply>, timeout: Duration) -> (Arc<Stub>, CloudApi) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stub = Arc::new(Stub {
        base: base.clone(),
        replies: Mutex::new(replies.into()),
        ..Stub::default()
    });
    let app = axum::Router::new().fallback(answer).with_state(stub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = CloudApi::new(CloudApiConfig {
        base_url: format!("{base}/"),
        api_version: "v25.0".to_owned(),
        access_token: TOKEN.into(),
        timeout,
    })
    .expect("client");
    (stub, client)
}

fn seen(stub: &Stub) -> Vec<Seen> {
    stub.seen.lock().expect("lock").clone()
}

fn accepted(id: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": "447700900123", "wa_id": "447700900123" }],
            "messages": [{ "id": id, "message_status": "accepted" }]
        }),
    )
}

fn graph_error(status: u16, code: i64, message: &str, details: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": { "messaging_product": "whatsapp", "details": details },
                "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
            }
        }),
    )
}

fn text_to_ada() -> SendRequest {
    SendRequest::new(
        Recipient::WaId("447700900123".to_owned()),
        &OutboundContent::Text {
            body: "Your order ships today: https://example.com/track/42".to_owned(),
        },
    )
    .with_callback_data("0197a3f2-5b1e-7c44-9a2d-3f6e8b1c0d42")
}

const SECOND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_send_posts_the_exact_request_and_returns_the_id() {
    let (stub, client) = stub(vec![accepted("wamid.TEST_sent")], SECOND).await;
    let accepted = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect("accepted");
    assert_eq!(accepted.wa_message_id, WaMessageId::new("wamid.TEST_sent"));

    let seen = seen(&stub);
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path_and_query, "/v25.0/100000000000001/messages");
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer EAAG-test-token-never-logged")
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "447700900123",
            "type": "text",
            "text": { "preview_url": true, "body": "Your order ships today: https://example.com/track/42" },
            "biz_opaque_callback_data": "0197a3f2-5b1e-7c44-9a2d-3f6e8b1c0d42"
        })
    );
}

#[tokio::test]
async fn throttling_is_transient_with_retry_after_then_succeeds() {
    let (stub, client) = stub(
        vec![
            graph_error(
                429,
                130_429,
                "(#130429) Rate limit hit",
                "Cloud API message throughput has been reached.",
            )
            .header("retry-after", "7"),
            accepted("wamid.TEST_retried"),
        ],
        SECOND,
    )
    .await;
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("throttled");
    assert_eq!(
        error,
        SendError::Transient {
            status: Some(429),
            code: Some(130_429),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    let accepted = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect("accepted");
    assert_eq!(accepted.wa_message_id.as_str(), "wamid.TEST_retried");
    let seen = seen(&stub);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body, "the retry is the same request");
}

#[tokio::test]
async fn server_errors_are_transient() {
    let (_stub, client) = stub(
        vec![
            Reply {
                status: 500,
                headers: vec![],
                body: "Internal Server Error".to_owned(),
                hang: false,
            },
            graph_error(500, 131_000, "(#131000) Something went wrong", "Unknown error"),
            graph_error(
                400,
                131_056,
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                "",
            ),
        ],
        SECOND,
    )
    .await;
    for code in [None, Some(131_000)] {
        let error = client
            .send(PHONE_NUMBER_ID, &text_to_ada())
            .await
            .expect_err("refused");
        assert_eq!(
            error,
            SendError::Transient {
                status: Some(500),
                code,
                retry_after: None
            }
        );
    }
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("refused");
    assert!(matches!(
        error,
        SendError::Transient {
            status: Some(400),
            code: Some(131_056),
            ..
        }
    ));
}

#[tokio::test]
async fn a_timeout_after_the_request_arrived_is_uncertain_and_not_resent() {
    let (stub, client) = stub(
        vec![Reply {
            hang: true,
            ..accepted("wamid.TEST_never")
        }],
        Duration::from_millis(300),
    )
    .await;
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("no answer");
    assert!(matches!(error, SendError::Uncertain { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(seen(&stub).len(), 1, "exactly one request, no hidden retry");
}

#[tokio::test]
async fn no_connection_is_transient() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let client = CloudApi::new(CloudApiConfig {
        base_url: base,
        api_version: "v25.0".to_owned(),
        access_token: TOKEN.into(),
        timeout: SECOND,
    })
    .expect("client");
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        SendError::Transient {
            status: None,
            code: None,
            retry_after: None
        }
    );
}

#[tokio::test]
async fn re_engagement_required_is_permanent() {
    let details = "Message failed to send because more than 24 hours have passed since the customer last replied to this number.";
    let (_stub, client) = stub(
        vec![graph_error(
            400,
            131_047,
            "(#131047) Re-engagement message",
            details,
        )],
        SECOND,
    )
    .await;
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("refused");
    assert_eq!(
        error,
        SendError::Permanent {
            code: 131_047,
            title: "(#131047) Re-engagement message".to_owned(),
            details: details.to_owned(),
        }
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_expired_token_is_unauthorized() {
    let (_stub, client) = stub(
        vec![
            Reply::json(
                401,
                json!({ "error": {
                    "message": "Error validating access token: Session has expired on Tuesday, 25-Nov-25.",
                    "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "A1"
                }}),
            ),
            graph_error(
                400,
                190,
                "Invalid OAuth access token - Cannot parse access token",
                "",
            ),
        ],
        SECOND,
    )
    .await;
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, SendError::Unauthorized { status: 401, code: Some(190), message } if message.contains("expired")),
        "{error:?}"
    );
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("refused");
    assert!(matches!(
        error,
        SendError::Unauthorized {
            status: 400,
            code: Some(190),
            ..
        }
    ));
}

#[tokio::test]
async fn a_success_without_an_id_is_uncertain() {
    let (_stub, client) = stub(
        vec![Reply::json(200, json!({ "messaging_product": "whatsapp" }))],
        SECOND,
    )
    .await;
    let error = client
        .send(PHONE_NUMBER_ID, &text_to_ada())
        .await
        .expect_err("no id");
    assert!(matches!(error, SendError::Uncertain { .. }), "{error:?}");
}

#[tokio::test]
async fn bad_requests_never_reach_the_api() {
    let (stub, client) = stub(vec![], SECOND).await;
    for phone_number_id in ["", "100/../200", "1?x=1"] {
        let error = client
            .send(phone_number_id, &text_to_ada())
            .await
            .expect_err("refused");
        assert!(
            matches!(error, SendError::InvalidRequest { .. }),
            "{phone_number_id}: {error:?}"
        );
    }
    let long = text_to_ada().with_callback_data("x".repeat(513));
    assert!(matches!(
        client.send(PHONE_NUMBER_ID, &long).await,
        Err(SendError::InvalidRequest { .. })
    ));
    let nobody = SendRequest::new(
        Recipient::UserId(" ".to_owned()),
        &OutboundContent::Text {
            body: "hi".to_owned(),
        },
    );
    assert!(matches!(
        client.send(PHONE_NUMBER_ID, &nobody).await,
        Err(SendError::InvalidRequest { .. })
    ));
    assert!(seen(&stub).is_empty());
}

#[test]
fn request_bodies_follow_the_reference() {
    let by_bsuid = SendRequest::new(
        Recipient::UserId("GB.1000000000000001".to_owned()),
        &OutboundContent::MacroText {
            macro_id: "greeting".to_owned(),
            body: "Hello *Ada*".to_owned(),
        },
    );
    assert_eq!(
        by_bsuid.to_json(),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "recipient": "GB.1000000000000001",
            "type": "text",
            "text": { "preview_url": false, "body": "Hello *Ada*" }
        })
    );

    let image = SendRequest::new(
        Recipient::WaId("447700900123".to_owned()),
        &OutboundContent::Image {
            url: "https://cdn.example.com/label.png".to_owned(),
            media_id: String::new(),
            caption: String::new(),
        },
    );
    assert_eq!(
        image.to_json()["image"],
        json!({ "link": "https://cdn.example.com/label.png" })
    );
    assert_eq!(
        image.clone().with_media_id("1000000000000201").to_json()["image"],
        json!({ "id": "1000000000000201" })
    );

    // Uploaded media goes by id.
    let uploaded = SendRequest::new(
        Recipient::WaId("447700900123".to_owned()),
        &OutboundContent::Image {
            url: String::new(),
            media_id: "1000000000000202".to_owned(),
            caption: "Label".to_owned(),
        },
    );
    assert_eq!(
        uploaded.to_json()["image"],
        json!({ "id": "1000000000000202", "caption": "Label" })
    );

    let document = SendRequest::new(
        Recipient::WaId("447700900123".to_owned()),
        &OutboundContent::Document {
            url: "https://cdn.example.com/invoice.pdf".to_owned(),
            media_id: String::new(),
            file_name: "invoice-0042.pdf".to_owned(),
            caption: "Your invoice".to_owned(),
        },
    );
    assert_eq!(
        document.to_json()["document"],
        json!({ "link": "https://cdn.example.com/invoice.pdf", "caption": "Your invoice", "filename": "invoice-0042.pdf" })
    );

    let template = SendRequest::new(
        Recipient::WaId("447700900123".to_owned()),
        &OutboundContent::Template(TemplateSend {
            name: "order_update".to_owned(),
            language: "en_GB".to_owned(),
            header_parameters: vec!["42".to_owned()],
            body_parameters: vec!["Ada".to_owned(), "Tuesday".to_owned()],
        }),
    );
    assert_eq!(
        template.to_json(),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "447700900123",
            "type": "template",
            "template": {
                "name": "order_update",
                "language": { "code": "en_GB" },
                "components": [
                    { "type": "header", "parameters": [{ "type": "text", "text": "42" }] },
                    { "type": "body", "parameters": [
                        { "type": "text", "text": "Ada" },
                        { "type": "text", "text": "Tuesday" }
                    ] }
                ]
            }
        })
    );

    let bare = Payload::from_content(&OutboundContent::Template(TemplateSend {
        name: "hello_world".to_owned(),
        language: "en_US".to_owned(),
        header_parameters: vec![],
        body_parameters: vec![],
    }));
    let bare = SendRequest {
        recipient: Recipient::WaId("447700900123".to_owned()),
        payload: bare,
        callback_data: None,
    };
    assert_eq!(
        bare.to_json()["template"],
        json!({ "name": "hello_world", "language": { "code": "en_US" } })
    );
    assert!(matches!(
        image.with_media_id("9").payload,
        Payload::Image {
            media: MediaSource::Id(_),
            ..
        }
    ));
}

fn template_page(next: Option<&str>, data: Value) -> Reply {
    let mut body =
        json!({ "data": data, "paging": { "cursors": { "before": "QVFIUmFz", "after": "QVFIUmJn" } } });
    if let Some(next) = next {
        body["paging"]["next"] = next.into();
    }
    Reply::json(200, body)
}

#[tokio::test]
async fn templates_are_read_across_pages() {
    let page_one = template_page(
        Some(
            "{BASE}/v25.0/200000000000001/message_templates?fields=name,language,status,category,components&limit=100&after=QVFIUmJn",
        ),
        json!([
            {
                "name": "order_update",
                "language": "en_GB",
                "status": "APPROVED",
                "category": "UTILITY",
                "id": "1234567890123456",
                "components": [
                    { "type": "HEADER", "format": "TEXT", "text": "Order {{1}}" },
                    { "type": "BODY", "text": "Hi {{1}}, your order ships {{2}}." },
                    { "type": "FOOTER", "text": "Reply STOP to opt out" },
                    { "type": "BUTTONS", "buttons": [{ "type": "QUICK_REPLY", "text": "Track my order" }] }
                ]
            },
            {
                "name": "spring_sale",
                "language": "en_GB",
                "status": "PAUSED",
                "category": "MARKETING",
                "components": [{ "type": "HEADER", "format": "IMAGE" }, { "type": "BODY", "text": "20% off" }]
            }
        ]),
    );
    let page_two = template_page(
        None,
        json!([
            { "name": "login_code", "language": "en_US", "status": "IN_APPEAL", "category": "AUTHENTICATION",
              "components": [{ "type": "BODY", "text": "{{1}} is your code." }] },
            { "name": "old_one", "language": "en_US", "status": "PENDING_DELETION", "category": "UTILITY",
              "components": [] },
            { "name": "mystery", "language": "en_US", "status": "APPROVED", "category": "SOMETHING_NEW",
              "components": [] }
        ]),
    );
    let (stub, client) = stub(vec![page_one, page_two], SECOND).await;
    let templates = client.list_templates(WABA).await.expect("listed");

    let component = |kind, format: &str, text: &str| TemplateComponent {
        kind,
        format: format.to_owned(),
        text: text.to_owned(),
    };
    assert_eq!(
        templates.len(),
        4,
        "the unknown category is left out: {templates:?}"
    );
    assert_eq!(
        templates[0],
        (
            TemplateDefinition {
                name: "order_update".to_owned(),
                language: "en_GB".to_owned(),
                category: TemplateCategory::Utility,
                components: vec![
                    component(ComponentKind::Header, "TEXT", "Order {{1}}"),
                    component(ComponentKind::Body, "", "Hi {{1}}, your order ships {{2}}."),
                    component(ComponentKind::Footer, "", "Reply STOP to opt out"),
                    component(ComponentKind::Buttons, "", ""),
                ],
            },
            TemplateStatus::Approved
        )
    );
    assert_eq!(templates[0].0.parameter_count(ComponentKind::Body), 2);
    assert_eq!(templates[1].0.category, TemplateCategory::Marketing);
    assert_eq!(
        templates[1].0.components[0],
        component(ComponentKind::Header, "IMAGE", "")
    );
    assert_eq!(templates[1].1, TemplateStatus::Paused);
    assert_eq!(templates[2].1, TemplateStatus::Rejected);
    assert_eq!(templates[3].1, TemplateStatus::Disabled);

    let seen = seen(&stub);
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].path_and_query,
        "/v25.0/200000000000001/message_templates?fields=name,language,status,category,components&limit=100"
    );
    assert!(seen[1].path_and_query.ends_with("&after=QVFIUmJn"));
    assert!(seen.iter().all(|s| s.method == Method::GET));
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer EAAG-test-token-never-logged"))
    );
}

#[tokio::test]
async fn template_paging_never_leaves_the_configured_host() {
    let (stub, client) = stub(
        vec![template_page(
            Some("https://elsewhere.example/v25.0/200000000000001/message_templates?after=x"),
            json!([]),
        )],
        SECOND,
    )
    .await;
    assert!(matches!(
        client.list_templates(WABA).await,
        Err(Error::Paging { .. })
    ));
    assert_eq!(seen(&stub).len(), 1);
}

#[tokio::test]
async fn template_errors_are_typed() {
    let (_stub, client) = stub(
        vec![
            graph_error(401, 190, "Error validating access token", ""),
            graph_error(400, 100, "(#100) Invalid parameter", ""),
            Reply::json(200, json!({ "data": [{ "name": 5 }] })),
        ],
        SECOND,
    )
    .await;
    assert!(matches!(
        client.list_templates(WABA).await,
        Err(Error::Unauthorized {
            status: 401,
            code: Some(190),
            ..
        })
    ));
    assert!(matches!(
        client.list_templates(WABA).await,
        Err(Error::Api {
            status: 400,
            code: Some(100),
            ..
        })
    ));
    assert!(
        matches!(client.list_templates(WABA).await, Err(Error::Decode { reason }) if reason.contains("data[0].name"))
    );
    assert!(matches!(
        client.list_templates("").await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn the_access_token_never_shows_in_debug_output() {
    let (_stub, client) = stub(vec![], SECOND).await;
    let debug = format!("{client:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("***"), "{debug}");
    let config = CloudApiConfig::new(TOKEN);
    assert!(!format!("{config:?}").contains(TOKEN));
}

#[test]
fn bad_configurations_are_refused() {
    let config = |base_url: &str, version: &str, token: &str, timeout: Duration| CloudApiConfig {
        base_url: base_url.to_owned(),
        api_version: version.to_owned(),
        access_token: token.into(),
        timeout,
    };
    for bad in [
        config("graph.facebook.com", "v25.0", TOKEN, SECOND),
        config("https://graph.facebook.com", "", TOKEN, SECOND),
        config("https://graph.facebook.com", "v25.0/x", TOKEN, SECOND),
        config("https://graph.facebook.com", "v25.0", " ", SECOND),
        config("https://graph.facebook.com", "v25.0", TOKEN, Duration::ZERO),
    ] {
        assert!(matches!(CloudApi::new(bad), Err(Error::Config(_))));
    }
    assert!(CloudApi::new(CloudApiConfig::new(TOKEN)).is_ok());
}
