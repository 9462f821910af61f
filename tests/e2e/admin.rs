//! The operator's calls: pulling a template catalogue from the Cloud API
//! (`ChannelService.PullTemplates`) and the stored webhook payloads
//! (`WebhookService`), over gRPC and from the terminal.

use std::process::Command;

use palaver_proto::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::harness::{Server, command};

const A: &str = "0192f0e3-0000-7000-8000-0000000000d1";
const NUMBER: &str = "100000000000009";
/// Accounts of the Cloud API stand-in: one lists a catalogue, one refuses
/// the access token, one is down.
const ACCOUNT: &str = "111";
const REFUSING: &str = "401";
const DOWN: &str = "503";

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

/// Runs a client verb against `server`; its exit success and stdout.
fn cli(server: &Server, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_palaver"))
        .env("PALAVER_DATA_DIR", server.data_dir())
        .env("PALAVER_SERVER", &server.grpc)
        .env("PALAVER_LOG", "warn")
        .args(args)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_admin_of_every_workspace_reaches_the_webhook_payloads() {
    // Tokens written the way an operator would, before the first start.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let token = |name: &str, secret: &str, role: &str, workspaces: &str| {
        format!(
            "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\nworkspaces = {workspaces}\n\n",
            palaver_api::auth::token_hash(secret)
        )
    };
    let tokens = [
        token("admin", "pvr_admin", "admin", "[\"*\"]"),
        token("a-admin", "pvr_a_admin", "admin", &format!("[\"{A}\"]")),
        token("writer", "pvr_writer", "write", "[\"*\"]"),
    ]
    .concat();
    std::fs::write(data.join("tokens.toml"), tokens).unwrap();
    std::fs::write(data.join("admin-token"), "pvr_admin\n").unwrap();
    let server = Server::start_in(dir, &[]);

    let unknown = uuid::Uuid::now_v7().to_string();
    for denied in ["pvr_a_admin", "pvr_writer"] {
        let mut c = server.clients(denied).await;
        let status = c
            .webhooks
            .list_webhook_payloads(pb::ListWebhookPayloadsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{denied}: {status:?}");
        let status = c
            .webhooks
            .reprocess_webhook_payload(pb::ReprocessWebhookPayloadRequest {
                payload_id: unknown.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{denied}: {status:?}");
    }
    let mut admin = server.clients(&server.admin_token).await;
    admin
        .webhooks
        .list_webhook_payloads(pb::ListWebhookPayloadsRequest::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_has_no_payloads_to_list_or_reprocess() {
    let server = Server::start();
    let mut c = server.clients(&server.admin_token).await;
    for state in [
        pb::WebhookPayloadState::Unspecified,
        pb::WebhookPayloadState::Parked,
        pb::WebhookPayloadState::Failed,
    ] {
        let listed = c
            .webhooks
            .list_webhook_payloads(pb::ListWebhookPayloadsRequest { state: state as i32 })
            .await
            .unwrap()
            .into_inner();
        assert!(listed.payloads.is_empty(), "{state:?}: {listed:?}");
    }
    // Only parked and failed payloads are listed: asking for others is an error.
    let status = c
        .webhooks
        .list_webhook_payloads(pb::ListWebhookPayloadsRequest {
            state: pb::WebhookPayloadState::Processed as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, Some("state"))
    );

    let status = c
        .webhooks
        .reprocess_webhook_payload(pb::ReprocessWebhookPayloadRequest {
            payload_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = c
        .webhooks
        .reprocess_webhook_payload(pb::ReprocessWebhookPayloadRequest {
            payload_id: "not-a-uuid".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), field(&status)),
        (Code::InvalidArgument, Some("payload_id"))
    );

    // The same from a terminal.
    let (ok, table) = cli(&server, &["webhooks", "list"]);
    assert!(
        ok && table.starts_with("PAYLOAD") && table.lines().count() == 1,
        "{table}"
    );
    let (ok, json) = cli(&server, &["webhooks", "list", "--state", "parked", "--json"]);
    assert!(ok && json.is_empty(), "{json}");
    let (ok, _) = cli(
        &server,
        &["webhooks", "reprocess", &uuid::Uuid::now_v7().to_string()],
    );
    assert!(!ok, "reprocessing an unknown payload fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulling_templates_needs_a_cloud_api_access_token() {
    let server = Server::start();
    let mut c = server.clients(&server.admin_token).await;
    let status = c
        .channels
        .pull_templates(pb::PullTemplatesRequest {
            options: command(A),
            business_account_id: ACCOUNT.to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), Some("whatsapp_not_configured"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_templates_are_synced_and_cloud_api_trouble_is_classified() {
    let cloud_api = cloud_api_stub().await;
    let server = Server::start_with(&[
        "--unsafe-test-clock",
        "true",
        "--whatsapp-access-token",
        "test-access-token",
        "--whatsapp-api-base-url",
        &cloud_api,
    ]);
    let mut c = server.clients(&server.admin_token).await;
    c.channels
        .connect_number(pb::ConnectNumberRequest {
            options: command(A),
            phone_number_id: NUMBER.to_owned(),
            display_phone_number: "+44 20 7946 0009".to_owned(),
            business_account_id: ACCOUNT.to_owned(),
        })
        .await
        .unwrap();

    let pulled = c
        .channels
        .pull_templates(pb::PullTemplatesRequest {
            options: command(A),
            business_account_id: ACCOUNT.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(pulled.result.unwrap().position > 0);

    // The pulled template can start a conversation.
    let contact = c
        .contacts
        .create_contact(pb::CreateContactRequest {
            options: command(A),
            kind: pb::ContactKind::User as i32,
            name: "Ada".to_owned(),
            phone_numbers: vec!["+447700900123".to_owned()],
            wa_id: String::new(),
            external_user_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    c.conversations
        .start_conversation(pb::StartConversationRequest {
            options: command(A),
            contact_id: contact.contact_id,
            phone_number_id: NUMBER.to_owned(),
            template: Some(pb::TemplateSend {
                name: "order_update".to_owned(),
                language: "en_GB".to_owned(),
                header_parameters: vec![],
                body_parameters: vec!["#42".to_owned()],
            }),
            message_id: String::new(),
        })
        .await
        .unwrap();

    let pull = |account: &str| pb::PullTemplatesRequest {
        options: command(A),
        business_account_id: account.to_owned(),
    };
    let refused = c.channels.pull_templates(pull(REFUSING)).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), Some("whatsapp_unauthorized"));
    let down = c.channels.pull_templates(pull(DOWN)).await.unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");

    // And from a terminal.
    let (ok, out) = cli(
        &server,
        &[
            "templates",
            "pull",
            "--workspace",
            A,
            "--business-account",
            ACCOUNT,
            "--json",
        ],
    );
    assert!(ok, "{out}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["business_account_id"], ACCOUNT);
}

/// A stand-in for the Cloud API's template catalogue, on a free port:
/// account [`ACCOUNT`] lists one approved template, [`REFUSING`] refuses
/// the access token, [`DOWN`] answers 503. Its base URL.
async fn cloud_api_stub() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split_whitespace().nth(1).unwrap_or_default();
                let catalogue =
                    |account: &str| path.starts_with(&format!("/v25.0/{account}/message_templates"));
                let (status, body) = if catalogue(ACCOUNT) {
                    (
                        "200 OK",
                        r#"{"data":[{"name":"order_update","language":"en_GB","status":"APPROVED","category":"UTILITY","components":[{"type":"BODY","text":"Your order {{1}} is on its way"}],"id":"1"}],"paging":{"cursors":{"before":"a","after":"b"}}}"#,
                    )
                } else if catalogue(REFUSING) {
                    (
                        "401 Unauthorized",
                        r#"{"error":{"message":"Error validating access token","type":"OAuthException","code":190,"fbtrace_id":"x"}}"#,
                    )
                } else if catalogue(DOWN) {
                    (
                        "503 Service Unavailable",
                        r#"{"error":{"message":"Service temporarily unavailable","code":2}}"#,
                    )
                } else {
                    (
                        "404 Not Found",
                        r#"{"error":{"message":"Unknown path","code":100}}"#,
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}
