//! `palaver-bench grpc`: a load generator against `palaver serve` on the
//! embedded store, over gRPC with a tonic client.
//!
//! It starts the release `palaver` binary on a fresh data folder and free
//! ports, connects a number, makes one conversation per stream from an
//! inbound message, then, with the streams spread over `--connections`
//! HTTP/2 connections (4: a few client services, as in production):
//! - `grpc_send_reply_*`: 32 concurrent streams send text replies, each to
//!   its own conversation, for `--seconds`; every reply is a full command
//!   (load, decide, durable append);
//! - `grpc_send_reply_server_cpu_per_command`: the server's CPU time over
//!   the reply phase (its projector included) divided by the replies, and
//!   `grpc_send_reply_cores_busy`: how much of the machine's cores the
//!   server and this load generator used meanwhile (near 100 %: the
//!   figure is bound by CPU, and on a machine where both share the cores
//!   it measures the pair);
//! - `grpc_read_models_catch_up`: how long after the last reply the read
//!   models held it (the inbox phase starts then);
//! - `grpc_inbox_*`: 32 concurrent streams list the inbox (first page, up
//!   to 50 rows: one per conversation). The load generator checks each
//!   answer's gRPC status and takes its bytes, but does not decode them:
//!   it shares the two cores with the server, and decoding dozens of rows
//!   per answer cost it more CPU than the server spent answering, so the
//!   figure would have measured the client. One decoded page is checked
//!   before the load starts. Nothing is written meanwhile, so the server
//!   answers from its inbox cache (ADR 0010): this is the polling path;
//! - `grpc_inbox_1_connection_per_s`: the same over a single connection;
//! - `grpc_inbox_server_cpu_per_query`: the server's CPU time (user and
//!   system) over the inbox phase, divided by the queries it answered;
//! - `grpc_server_peak_memory`: the server's peak resident set (VmHWM).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use hdrhistogram::Histogram;
use palaver_api::auth::BearerToken;
use palaver_proto::{prost_types::Timestamp, v1 as pb};
use tonic::{Status, transport::Channel};

use crate::Figures;

#[derive(Debug, Args)]
pub struct Options {
    /// Concurrent request streams.
    #[arg(long, default_value_t = 32)]
    streams: usize,
    /// HTTP/2 connections the streams are spread over (as several client
    /// services or instances would be).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// How long each phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server binary.
    #[arg(long, default_value = "target/release/palaver")]
    server: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            streams: 32,
            connections: 4,
            seconds: 10,
            server: PathBuf::from("target/release/palaver"),
        }
    }
}

const WORKSPACE: &str = "0192f0e3-0000-7000-8000-0000000000be";

/// A running `palaver serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) grpc: String,
    pub(crate) http: String,
    pub(crate) token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` on `data` and free ports, with `extra` flags.
pub(crate) fn start(binary: &Path, data: &Path, extra: &[&str]) -> anyhow::Result<Server> {
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: build it with `cargo build --release -p palaver`",
        binary.display()
    );
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--log",
            "warn,palaver::server=info",
        ])
        .args(extra)
        .env("PALAVER_DATA_DIR", data)
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = BufReader::new(stderr).lines();
    let field = |line: &str, key: &str| -> Option<String> {
        let rest = line.split(key).nth(1)?;
        Some(
            rest.chars()
                .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
                .collect(),
        )
    };
    let (grpc, http) = loop {
        let line = lines
            .next()
            .ok_or_else(|| anyhow::anyhow!("the server exited"))??;
        if let (Some(grpc), Some(http)) = (field(&line, "grpc="), field(&line, "http=")) {
            break (grpc, http);
        }
    };
    // Keep draining the server's log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let token = std::fs::read_to_string(data.join("admin-token"))?
        .trim()
        .to_owned();
    Ok(Server {
        child,
        grpc: format!("http://{grpc}"),
        http,
        token,
    })
}

fn command() -> Option<pb::CommandOptions> {
    Some(pb::CommandOptions {
        workspace_id: WORKSPACE.to_owned(),
        ..Default::default()
    })
}

pub async fn run(dir: &Path, options: &Options, figures: &mut Figures) -> anyhow::Result<()> {
    let data = dir.join("grpc-data");
    let _ = std::fs::remove_dir_all(&data);
    let server = start(&options.server, &data, &[])?;
    let mut connections = Vec::new();
    for _ in 0..options.connections.max(1) {
        connections.push(Channel::from_shared(server.grpc.clone())?.connect().await?);
    }
    let channel = connections[0].clone();
    let connections = Arc::new(connections);
    let bearer = BearerToken::new(&server.token)?;
    let mut channels =
        pb::channel_service_client::ChannelServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let mut conversations = pb::conversation_service_client::ConversationServiceClient::with_interceptor(
        channel.clone(),
        bearer.clone(),
    );
    channels
        .connect_number(pb::ConnectNumberRequest {
            options: command(),
            phone_number_id: "bench-number".to_owned(),
            display_phone_number: "+44 20 7946 0999".to_owned(),
            business_account_id: "bench-waba".to_owned(),
        })
        .await?;
    let now = chrono::Utc::now().timestamp();
    let mut targets = Vec::new();
    for i in 0..options.streams {
        let received = conversations
            .record_inbound_message(pb::RecordInboundMessageRequest {
                options: command(),
                phone_number_id: "bench-number".to_owned(),
                wa_id: format!("4477009{i:05}"),
                profile_name: format!("Customer {i}"),
                wa_message_id: format!("wamid.bench.{i}"),
                sent_at: Some(Timestamp {
                    seconds: now,
                    nanos: 0,
                }),
                content: Some(pb::InboundContent {
                    kind: Some(pb::inbound_content::Kind::Text(pb::TextContent {
                        body: "Hello!".to_owned(),
                    })),
                }),
            })
            .await?
            .into_inner();
        targets.push(received.conversation_id);
    }

    let duration = Duration::from_secs(options.seconds);
    // Replies: each stream on its own conversation.
    let cpu_before = (cpu_seconds(server.child.id())?, cpu_seconds(std::process::id())?);
    let (count, latency, elapsed) = load(options.streams, duration, {
        let (connections, bearer, targets) = (connections.clone(), bearer.clone(), Arc::new(targets.clone()));
        move |stream| {
            let mut client = pb::conversation_service_client::ConversationServiceClient::with_interceptor(
                connections[stream % connections.len()].clone(),
                bearer.clone(),
            );
            let conversation_id = targets[stream].clone();
            async move {
                client
                    .send_reply(pb::SendReplyRequest {
                        options: command(),
                        conversation_id,
                        message_id: String::new(),
                        reply: Some(pb::Reply {
                            kind: Some(pb::reply::Kind::Text("Thanks, on it 👍".to_owned())),
                        }),
                    })
                    .await
                    .map(|_| ())
            }
        }
    })
    .await?;
    figures.record("grpc_send_reply_per_s", count as f64 / elapsed, "commands/s");
    figures.record("grpc_send_reply_p50", millis(&latency, 0.50), "ms");
    figures.record("grpc_send_reply_p99", millis(&latency, 0.99), "ms");
    let server_cpu = cpu_seconds(server.child.id())? - cpu_before.0;
    let bench_cpu = cpu_seconds(std::process::id())? - cpu_before.1;
    figures.record(
        "grpc_send_reply_server_cpu_per_command",
        server_cpu * 1e6 / count.max(1) as f64,
        "us",
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    figures.record(
        "grpc_send_reply_cores_busy",
        100.0 * (server_cpu + bench_cpu) / (elapsed * cores),
        "%",
    );

    // The projector may still be folding the replies in; measure queries,
    // not queries competing with that catch-up: wait until the read models
    // hold the last reply (read-your-writes, retried past the read timeout).
    let last = conversations
        .send_reply(pb::SendReplyRequest {
            options: command(),
            conversation_id: targets[0].clone(),
            message_id: String::new(),
            reply: Some(pb::Reply {
                kind: Some(pb::reply::Kind::Text("Last one".to_owned())),
            }),
        })
        .await?
        .into_inner()
        .result
        .map_or(0, |r| r.position);
    let mut inbox =
        pb::inbox_service_client::InboxServiceClient::with_interceptor(channel.clone(), bearer.clone());
    let caught_up = Instant::now();
    let page = loop {
        match inbox
            .list_inbox(pb::ListInboxRequest {
                options: Some(pb::QueryOptions {
                    workspace_id: WORKSPACE.to_owned(),
                    min_position: last,
                }),
                ..Default::default()
            })
            .await
        {
            Ok(page) => break page.into_inner(),
            // Only "not caught up yet" (the read timeout passed) is worth asking again.
            Err(status) => anyhow::ensure!(
                status.code() == tonic::Code::DeadlineExceeded
                    && caught_up.elapsed() < Duration::from_secs(300),
                "the read models did not catch up with the replies: {status}"
            ),
        }
    };
    figures.record(
        "grpc_read_models_catch_up",
        caught_up.elapsed().as_secs_f64() * 1_000.0,
        "ms",
    );
    anyhow::ensure!(
        page.rows.len() == targets.len().min(50),
        "the inbox lists {} conversations, not {}",
        page.rows.len(),
        targets.len().min(50)
    );

    let cpu_before = cpu_seconds(server.child.id())?;
    let (count, latency, elapsed) = list_inboxes(&connections, &bearer, options.streams, duration).await?;
    let cpu = cpu_seconds(server.child.id())? - cpu_before;
    figures.record("grpc_inbox_per_s", count as f64 / elapsed, "queries/s");
    figures.record("grpc_inbox_p50", millis(&latency, 0.50), "ms");
    figures.record("grpc_inbox_p99", millis(&latency, 0.99), "ms");
    figures.record(
        "grpc_inbox_server_cpu_per_query",
        cpu * 1e6 / count.max(1) as f64,
        "us",
    );
    // The same streams over one connection: HTTP/2 frames of a connection
    // are handled one after another on each side, which caps it.
    if connections.len() > 1 {
        let one = Arc::new(vec![channel.clone()]);
        let (count, _, elapsed) = list_inboxes(&one, &bearer, options.streams, duration).await?;
        figures.record(
            "grpc_inbox_1_connection_per_s",
            count as f64 / elapsed,
            "queries/s",
        );
    }

    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))?;
    if let Some(kb) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
    {
        figures.record("grpc_server_peak_memory", kb / 1024.0, "MiB");
    }
    Ok(())
}

/// `streams` loops listing the first inbox page for `duration`, spread
/// over `connections`, taking the answers undecoded (see the module docs).
async fn list_inboxes(
    connections: &Arc<Vec<Channel>>,
    bearer: &BearerToken,
    streams: usize,
    duration: Duration,
) -> anyhow::Result<(u64, Histogram<u64>, f64)> {
    load(streams, duration, {
        let (connections, bearer) = (Arc::clone(connections), bearer.clone());
        move |stream| {
            let mut grpc = tonic::client::Grpc::new(tonic::service::interceptor::InterceptedService::new(
                connections[stream % connections.len()].clone(),
                bearer.clone(),
            ));
            async move {
                let request = pb::ListInboxRequest {
                    options: Some(pb::QueryOptions {
                        workspace_id: WORKSPACE.to_owned(),
                        min_position: 0,
                    }),
                    ..Default::default()
                };
                grpc.ready()
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                let path = tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/palaver.v1.InboxService/ListInbox",
                );
                let bytes = grpc
                    .unary(tonic::Request::new(request), path, Undecoded)
                    .await?
                    .into_inner();
                if bytes == 0 {
                    return Err(Status::internal("an empty inbox answer"));
                }
                Ok(())
            }
        }
    })
    .await
}

/// The CPU time (user and system) process `pid` has used, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) in parentheses;
    // utime and stime are the 14th and 15th, in clock ticks of 1/100 s
    // (USER_HZ, 100 on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/stat has no field {}", i + 3))?
            .parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Sends a protobuf request and takes the answer's bytes without decoding
/// them: the answer's length is the item.
#[derive(Debug, Clone, Copy)]
struct Undecoded;

impl tonic::codec::Codec for Undecoded {
    type Encode = pb::ListInboxRequest;
    type Decode = usize;
    type Encoder = tonic_prost::ProstEncoder<pb::ListInboxRequest>;
    type Decoder = Undecoded;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstCodec::<pb::ListInboxRequest, pb::ListInboxResponse>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Undecoded
    }
}

impl tonic::codec::Decoder for Undecoded {
    type Item = usize;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<usize>, Status> {
        use bytes::Buf;
        let length = src.remaining();
        src.advance(length);
        Ok(Some(length))
    }
}

/// Runs `streams` loops of `call` for `duration`; returns calls made, their
/// latencies and the seconds it took.
async fn load<F, Fut>(
    streams: usize,
    duration: Duration,
    call: F,
) -> anyhow::Result<(u64, Histogram<u64>, f64)>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), Status>> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for stream in 0..streams {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3)?;
            let mut count = 0u64;
            while start.elapsed() < duration {
                let began = Instant::now();
                call(stream).await?;
                latency.record(began.elapsed().as_micros() as u64)?;
                count += 1;
            }
            anyhow::Ok((count, latency))
        }));
    }
    let mut total = 0;
    let mut latency = Histogram::<u64>::new(3)?;
    for task in tasks {
        let (count, histogram) = task.await??;
        total += count;
        latency.add(histogram)?;
    }
    Ok((total, latency, start.elapsed().as_secs_f64()))
}

pub(crate) fn millis(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}
