//! Starts the real `palaver` binary on free ports with a temporary data
//! folder, and hands out authenticated gRPC clients.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use palaver_api::auth::BearerToken;
use palaver_proto::v1::{
    self as pb, campaign_service_client::CampaignServiceClient, channel_service_client::ChannelServiceClient,
    contact_service_client::ContactServiceClient, conversation_service_client::ConversationServiceClient,
    event_service_client::EventServiceClient, inbox_service_client::InboxServiceClient,
    test_clock_service_client::TestClockServiceClient, webhook_service_client::WebhookServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// A running server. Killed when dropped.
pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub grpc: String,
    pub http: String,
    pub admin_token: String,
    /// Every line the server logged after the `listening` line arrives here.
    pub logs: mpsc::Receiver<String>,
    /// The lines it logged up to `listening`.
    pub startup_logs: Vec<String>,
}

/// The binary on `data_dir`, on free ports (tests run side by side).
pub fn palaver(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_palaver"));
    command
        .env("PALAVER_DATA_DIR", data_dir)
        .env("PALAVER_GRPC_ADDR", "127.0.0.1:0")
        .env("PALAVER_HTTP_ADDR", "127.0.0.1:0")
        .env("PALAVER_LOG", "info");
    command
}

impl Server {
    /// A server with the test clock on (clients can move its time).
    pub fn start() -> Server {
        Self::start_with(&["--unsafe-test-clock", "true"])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let data = dir.path().join("data");
        let mut child = palaver(&data)
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, logs) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut startup_logs = Vec::new();
        let (grpc, http) = loop {
            let line = logs
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the server did not start within a minute: {startup_logs:#?}"));
            if line.contains("listening") {
                break (field(&line, "grpc="), field(&line, "http="));
            }
            startup_logs.push(line);
        };
        let admin_token = std::fs::read_to_string(data.join("admin-token"))
            .unwrap()
            .trim()
            .to_owned();
        Server {
            child,
            dir,
            grpc: format!("http://{grpc}"),
            http,
            admin_token,
            logs,
            startup_logs,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.grpc.clone())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn clients(&self, token: &str) -> Clients {
        Clients::new(self.channel().await, token)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// Sends SIGTERM and hands back the data folder for a restart.
    pub fn stop_keeping_data(mut self) -> tempfile::TempDir {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(self.child.wait().unwrap().success());
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key=value` from a tracing line.
fn field(line: &str, key: &str) -> String {
    let plain: String = strip_ansi(line);
    let start = plain.find(key).unwrap_or_else(|| panic!("no {key} in {plain}")) + key.len();
    plain[start..].split_whitespace().next().unwrap().to_owned()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

type Authed = InterceptedService<Channel, BearerToken>;

/// One client per service, all with the same token.
pub struct Clients {
    pub channels: ChannelServiceClient<Authed>,
    pub conversations: ConversationServiceClient<Authed>,
    pub contacts: ContactServiceClient<Authed>,
    pub campaigns: CampaignServiceClient<Authed>,
    pub inbox: InboxServiceClient<Authed>,
    pub events: EventServiceClient<Authed>,
    pub clock: TestClockServiceClient<Authed>,
    pub webhooks: WebhookServiceClient<Authed>,
}

impl Clients {
    pub fn new(channel: Channel, token: &str) -> Self {
        let bearer = BearerToken::new(token).unwrap();
        Clients {
            channels: ChannelServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            conversations: ConversationServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            contacts: ContactServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            campaigns: CampaignServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            inbox: InboxServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            events: EventServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            clock: TestClockServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            webhooks: WebhookServiceClient::with_interceptor(channel, bearer),
        }
    }

    /// The workspace's only conversation, once it holds `messages` messages
    /// (fails if the workspace has more than one, or after 20 s).
    pub async fn conversation_with(
        &mut self,
        workspace: &str,
        messages: usize,
    ) -> pb::GetConversationResponse {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rows = self
                .inbox
                .list_inbox(pb::ListInboxRequest {
                    options: query(workspace, 0),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .rows;
            assert!(rows.len() <= 1, "one conversation, not {}", rows.len());
            if let Some(row) = rows.first() {
                let conversation = self
                    .inbox
                    .get_conversation(pb::GetConversationRequest {
                        options: query(workspace, 0),
                        conversation_id: row.conversation_id.clone(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                if conversation.messages.len() >= messages {
                    return conversation;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no conversation with {messages} messages in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn command(workspace: &str) -> Option<pb::CommandOptions> {
    Some(pb::CommandOptions {
        workspace_id: workspace.to_owned(),
        ..Default::default()
    })
}

pub fn query(workspace: &str, min_position: u64) -> Option<pb::QueryOptions> {
    Some(pb::QueryOptions {
        workspace_id: workspace.to_owned(),
        min_position,
    })
}
