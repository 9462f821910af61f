//! The client verbs (`palaver inbox|show|reply|tail`) against a running server.

use std::process::Command;

use palaver_proto::{prost_types::Timestamp, v1 as pb};

use crate::harness::{Server, command};

const A: &str = "0192f0e3-0000-7000-8000-00000000000a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_show_reply_and_tail_from_a_terminal() {
    let server = Server::start();
    let mut c = server.clients(&server.admin_token).await;
    c.channels
        .connect_number(pb::ConnectNumberRequest {
            options: command(A),
            phone_number_id: "1000001".to_owned(),
            display_phone_number: "+44 20 7946 0001".to_owned(),
            business_account_id: "waba-1".to_owned(),
        })
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let received = c
        .conversations
        .record_inbound_message(pb::RecordInboundMessageRequest {
            options: command(A),
            phone_number_id: "1000001".to_owned(),
            wa_id: "447700900123".to_owned(),
            profile_name: "Ada".to_owned(),
            wa_message_id: "wamid.cli".to_owned(),
            sent_at: Some(Timestamp {
                seconds: now,
                nanos: 0,
            }),
            content: Some(pb::InboundContent {
                kind: Some(pb::inbound_content::Kind::Text(pb::TextContent {
                    body: "Hello from the CLI test".to_owned(),
                })),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    // Let the read models take it.
    c.inbox
        .list_inbox(pb::ListInboxRequest {
            options: crate::harness::query(A, received.result.unwrap().position),
            ..Default::default()
        })
        .await
        .unwrap();

    let cli = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_palaver"))
            .env("PALAVER_DATA_DIR", server.data_dir())
            .env("PALAVER_SERVER", &server.grpc)
            .env("PALAVER_WORKSPACE", A)
            .env("PALAVER_LOG", "warn")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let table = cli(&["inbox"]);
    assert!(
        table.contains("CONVERSATION") && table.contains("Hello from the CLI test"),
        "{table}"
    );
    let json = cli(&["inbox", "--json"]);
    let row: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["conversation_id"], received.conversation_id.as_str());
    assert_eq!(row["unread_count"], 1);

    let sent = cli(&["reply", &received.conversation_id, "On", "it", "👍"]);
    assert!(sent.starts_with("queued "), "{sent}");
    let shown = cli(&["show", &received.conversation_id]);
    assert!(
        shown.contains("Hello from the CLI test") && shown.contains("On it 👍"),
        "{shown}"
    );
    assert!(shown.contains("[queued]"), "{shown}");

    // `tail` follows for ever; read its first lines and stop it.
    let mut tail = Command::new(env!("CARGO_BIN_EXE_palaver"))
        .env("PALAVER_DATA_DIR", server.data_dir())
        .env("PALAVER_SERVER", &server.grpc)
        .env("PALAVER_WORKSPACE", A)
        .args(["tail", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(tail.stdout.take().unwrap()));
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(first["position"].as_u64().unwrap() > 0);
    tail.kill().unwrap();
    let _ = tail.wait();
}
