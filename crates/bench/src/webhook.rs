//! `palaver-bench webhook`: signed WhatsApp webhook posts against
//! `palaver serve` on the embedded store.
//!
//! It starts the release binary with an app secret, connects the business
//! number, then `--connections` keep-alive HTTP/1.1 connections post, for
//! `--seconds`, signed payloads carrying one inbound text message each
//! (a new message id every time, from a few hundred customers). A post
//! counts once the server answered 200, which it does only after the
//! payload is durably stored; the intake worker turns payloads into
//! conversations meanwhile, on the same two cores.
//! - `webhook_posts_per_s`, `webhook_p50`, `webhook_p99`;
//! - `webhook_intake_lag_s`: how long after the last post the intake took
//!   to finish the backlog (so the post rate can be read against the rate
//!   at which messages reach the inbox);
//! - `webhook_intake_per_s`: payloads turned into conversations per second,
//!   from the first post until the inbox held them all (the lag grows with
//!   the posts accepted; this rate compares across runs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use palaver_api::auth::BearerToken;
use palaver_proto::v1 as pb;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tonic::transport::Channel;

use crate::Figures;
use crate::grpc::{millis, start};

#[derive(Debug, Args)]
pub struct Options {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long the load runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The server binary.
    #[arg(long, default_value = "target/release/palaver")]
    server: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connections: 32,
            seconds: 10,
            server: PathBuf::from("target/release/palaver"),
        }
    }
}

const WORKSPACE: &str = "0192f0e3-0000-7000-8000-0000000000bf";
const NUMBER: &str = "100000000000077";
const SECRET: &str = "bench-app-secret";

fn payload(connection: usize, n: u64) -> Vec<u8> {
    let customer = 447_700_900_000u64 + (connection as u64 * 10 + n % 10);
    let at = 1_764_050_000 + n;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"200000000000077","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550007777","phone_number_id":"{NUMBER}"}},"contacts":[{{"profile":{{"name":"Customer {customer}"}},"wa_id":"{customer}"}}],"messages":[{{"from":"{customer}","id":"wamid.BENCH_{connection}_{n}","timestamp":"{at}","type":"text","text":{{"body":"Hello, where is my order {n}?"}}}}]}}}}]}}]}}"#
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Connection {
    async fn open(host: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            host: host.to_owned(),
        })
    }

    /// Posts `body` signed; returns the status code.
    async fn post(&mut self, body: &[u8]) -> anyhow::Result<u16> {
        let signature = palaver_whatsapp::signature::sign(SECRET.as_bytes(), body);
        let head = format!(
            "POST /webhooks/whatsapp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let socket = self.stream.get_mut();
        socket.write_all(head.as_bytes()).await?;
        socket.write_all(body).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line.get(9..12).unwrap_or("0").parse()?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok(status)
    }
}

pub async fn run(dir: &Path, options: &Options, figures: &mut Figures) -> anyhow::Result<()> {
    let data = dir.join("webhook-data");
    let _ = std::fs::remove_dir_all(&data);
    let server = start(&options.server, &data, &["--whatsapp-app-secret", SECRET])?;
    let channel = Channel::from_shared(server.grpc.clone())?.connect().await?;
    let bearer = BearerToken::new(&server.token)?;
    let mut channels =
        pb::channel_service_client::ChannelServiceClient::with_interceptor(channel.clone(), bearer.clone());
    channels
        .connect_number(pb::ConnectNumberRequest {
            options: Some(pb::CommandOptions {
                workspace_id: WORKSPACE.to_owned(),
                ..Default::default()
            }),
            phone_number_id: NUMBER.to_owned(),
            display_phone_number: "+1 555 000 7777".to_owned(),
            business_account_id: "200000000000077".to_owned(),
        })
        .await?;

    let duration = Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..options.connections {
        let host = server.http.clone();
        tasks.push(tokio::spawn(async move {
            let mut http = Connection::open(&host).await?;
            let mut latency = Histogram::<u64>::new(3)?;
            let mut n = 0u64;
            while started.elapsed() < duration {
                let body = payload(connection, n);
                let began = Instant::now();
                let status = http.post(&body).await?;
                anyhow::ensure!(status == 200, "the server answered {status}");
                latency.record(began.elapsed().as_micros() as u64)?;
                n += 1;
            }
            anyhow::Ok((n, latency))
        }));
    }
    let mut posts = 0;
    let mut latency = Histogram::<u64>::new(3)?;
    for task in tasks {
        let (count, histogram) = task.await??;
        posts += count;
        latency.add(histogram)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    figures.record("webhook_posts_per_s", posts as f64 / seconds, "posts/s");
    figures.record("webhook_p50", millis(&latency, 0.5), "ms");
    figures.record("webhook_p99", millis(&latency, 0.99), "ms");

    // How long the intake needs to turn the backlog into conversations:
    // the inbox is complete when every customer's conversation holds all
    // its messages; the total message count is the simplest check.
    let drained = Instant::now();
    let mut inbox = pb::inbox_service_client::InboxServiceClient::with_interceptor(channel, bearer);
    let wanted = posts;
    loop {
        let mut total = 0u64;
        let mut cursor = String::new();
        loop {
            let page = inbox
                .list_inbox(pb::ListInboxRequest {
                    options: Some(pb::QueryOptions {
                        workspace_id: WORKSPACE.to_owned(),
                        min_position: 0,
                    }),
                    limit: 500,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            total += page.rows.iter().map(|r| u64::from(r.unread_count)).sum::<u64>();
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        if total >= wanted || drained.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    figures.record("webhook_intake_lag_s", drained.elapsed().as_secs_f64(), "s");
    figures.record(
        "webhook_intake_per_s",
        posts as f64 / started.elapsed().as_secs_f64(),
        "payloads/s",
    );
    Ok(())
}
