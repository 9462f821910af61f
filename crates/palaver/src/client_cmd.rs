//! Client verbs for people at a terminal: they talk to a running server
//! over gRPC. Human-readable tables by default, `--json` for scripts.

#![allow(clippy::print_stdout)] // a terminal tool

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt;
use palaver_api::auth::BearerToken;
use palaver_proto::v1::{
    self as pb, channel_service_client::ChannelServiceClient,
    conversation_service_client::ConversationServiceClient, event_service_client::EventServiceClient,
    inbox_service_client::InboxServiceClient, webhook_service_client::WebhookServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::config::Config;

/// How to reach the server, for verbs on no particular workspace.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's gRPC address.
    #[arg(long, env = "PALAVER_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token [default: the first admin token in <data-dir>/admin-token].
    #[arg(long, env = "PALAVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// How to reach the server, and the workspace acted on.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The workspace (UUID).
    #[arg(long, env = "PALAVER_WORKSPACE")]
    workspace: String,
}

/// `palaver templates …`
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Read a business account's catalogue from the WhatsApp Cloud API and
    /// sync it (the server needs `whatsapp_access_token`).
    Pull {
        #[command(flatten)]
        client: ClientArgs,
        /// The WhatsApp Business Account id.
        #[arg(long = "business-account")]
        business_account: String,
    },
}

/// `palaver webhooks …` (an admin token for every workspace).
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List stored payloads the intake parked or failed, oldest first.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Only parked or only failed payloads [default: both].
        #[arg(long, value_enum)]
        state: Option<PayloadState>,
    },
    /// Handle a stored payload again, now.
    Reprocess {
        #[command(flatten)]
        server: ServerArgs,
        payload_id: String,
    },
}

/// The states `webhooks list` filters on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PayloadState {
    /// Waiting for a business number to be connected.
    Parked,
    /// An item was refused.
    Failed,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List the inbox, most recent activity first.
    Inbox {
        #[command(flatten)]
        client: ClientArgs,
        /// open, snoozed or closed.
        #[arg(long)]
        status: Option<String>,
        /// Only this teammate's conversations.
        #[arg(long, conflicts_with = "unassigned")]
        assignee: Option<String>,
        /// Only conversations nobody is assigned to.
        #[arg(long)]
        unassigned: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show a conversation and its messages.
    Show {
        #[command(flatten)]
        client: ClientArgs,
        conversation_id: String,
    },
    /// Send a text reply.
    Reply {
        #[command(flatten)]
        client: ClientArgs,
        conversation_id: String,
        /// The text (words are joined with spaces).
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Follow the workspace's events as they happen.
    Tail {
        #[command(flatten)]
        client: ClientArgs,
        /// Start after this position (0: from the beginning).
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// Only these stream categories (repeatable).
        #[arg(long = "category")]
        categories: Vec<String>,
        /// Only these event types (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
    },
    /// The template catalogue.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Stored WhatsApp webhook payloads the intake could not handle.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

type Authed = InterceptedService<Channel, BearerToken>;

async fn connect(args: &ServerArgs, config: &Config) -> anyhow::Result<(Channel, BearerToken)> {
    let token = match &args.token {
        Some(token) => token.clone(),
        None => std::fs::read_to_string(config.first_token_path())
            .map_err(|e| anyhow::anyhow!("no --token and no {}: {e}", config.first_token_path().display()))?
            .trim()
            .to_owned(),
    };
    let bearer = BearerToken::new(&token)?;
    let channel = Channel::from_shared(args.server.clone())?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {}: {e}", args.server))?;
    Ok((channel, bearer))
}

fn query(args: &ClientArgs) -> Option<pb::QueryOptions> {
    Some(pb::QueryOptions {
        workspace_id: args.workspace.clone(),
        min_position: 0,
    })
}

fn time(ts: &Option<palaver_proto::prost_types::Timestamp>) -> String {
    ts.as_ref()
        .and_then(|ts| chrono::DateTime::from_timestamp(ts.seconds, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn status_name(status: i32) -> &'static str {
    match pb::ConversationStatus::try_from(status) {
        Ok(pb::ConversationStatus::Open) => "open",
        Ok(pb::ConversationStatus::Snoozed) => "snoozed",
        Ok(pb::ConversationStatus::Closed) => "closed",
        _ => "?",
    }
}

fn payload_state_name(state: i32) -> &'static str {
    match pb::WebhookPayloadState::try_from(state) {
        Ok(pb::WebhookPayloadState::Pending) => "pending",
        Ok(pb::WebhookPayloadState::Processed) => "processed",
        Ok(pb::WebhookPayloadState::Parked) => "parked",
        Ok(pb::WebhookPayloadState::Failed) => "failed",
        _ => "?",
    }
}

fn payload_json(payload: &pb::WebhookPayloadSummary) -> serde_json::Value {
    serde_json::json!({
        "payload_id": payload.payload_id,
        "received_at": time(&payload.received_at),
        "state": payload_state_name(payload.state),
        "parked_phone_number_ids": payload.parked_phone_number_ids,
        "error": payload.error,
    })
}

/// What a table shows of a payload beyond its state: the numbers it waits
/// for, or why it failed.
fn payload_detail(payload: &pb::WebhookPayloadSummary) -> String {
    if payload.parked_phone_number_ids.is_empty() {
        payload.error.clone()
    } else {
        format!("waiting for {}", payload.parked_phone_number_ids.join(", "))
    }
}

fn payload_table(payloads: &[pb::WebhookPayloadSummary]) {
    println!("{:<36}  {:<16}  {:<9}  DETAIL", "PAYLOAD", "RECEIVED", "STATE");
    for payload in payloads {
        println!(
            "{:<36}  {:<16}  {:<9}  {}",
            payload.payload_id,
            time(&payload.received_at),
            payload_state_name(payload.state),
            payload_detail(payload)
        );
    }
}

fn row_json(row: &pb::InboxRow) -> serde_json::Value {
    serde_json::json!({
        "conversation_id": row.conversation_id,
        "contact_id": row.contact_id,
        "contact_name": row.contact_name,
        "status": status_name(row.status),
        "assignee": row.assignee,
        "unread_count": row.unread_count,
        "needs_template": row.needs_template,
        "last_message_kind": row.last_message_kind,
        "last_message_preview": row.last_message_preview,
        "last_activity_at": time(&row.last_activity_at),
    })
}

pub async fn run(config: &Config, command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Inbox {
            client,
            status,
            assignee,
            unassigned,
            limit,
        } => {
            let (channel, bearer) = connect(&client.server, config).await?;
            let mut inbox: InboxServiceClient<Authed> = InboxServiceClient::with_interceptor(channel, bearer);
            let status = match status.as_deref() {
                None => pb::ConversationStatus::Unspecified,
                Some("open") => pb::ConversationStatus::Open,
                Some("snoozed") => pb::ConversationStatus::Snoozed,
                Some("closed") => pb::ConversationStatus::Closed,
                Some(other) => anyhow::bail!("unknown status {other:?}: use open, snoozed or closed"),
            };
            let page = inbox
                .list_inbox(pb::ListInboxRequest {
                    options: query(&client),
                    status: status as i32,
                    assignee: assignee.unwrap_or_default(),
                    unassigned,
                    limit,
                    cursor: String::new(),
                })
                .await?
                .into_inner();
            if client.server.json {
                for row in &page.rows {
                    println!("{}", row_json(row));
                }
            } else {
                println!(
                    "{:<36}  {:<20}  {:<7}  {:<12}  {:>6}  {:<16}  LAST MESSAGE",
                    "CONVERSATION", "CONTACT", "STATUS", "ASSIGNEE", "UNREAD", "ACTIVITY"
                );
                for row in &page.rows {
                    let template = if row.needs_template {
                        " [template only]"
                    } else {
                        ""
                    };
                    println!(
                        "{:<36}  {:<20.20}  {:<7}  {:<12.12}  {:>6}  {:<16}  {}{template}",
                        row.conversation_id,
                        row.contact_name,
                        status_name(row.status),
                        row.assignee,
                        row.unread_count,
                        time(&row.last_activity_at),
                        row.last_message_preview
                    );
                }
            }
        }
        ClientCommand::Show {
            client,
            conversation_id,
        } => {
            let (channel, bearer) = connect(&client.server, config).await?;
            let mut inbox: InboxServiceClient<Authed> = InboxServiceClient::with_interceptor(channel, bearer);
            let view = inbox
                .get_conversation(pb::GetConversationRequest {
                    options: query(&client),
                    conversation_id,
                })
                .await?
                .into_inner();
            if client.server.json {
                let messages: Vec<_> = view
                    .messages
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "message_id": m.message_id, "direction": m.direction, "kind": m.kind,
                            "summary": m.summary, "sent_at": time(&m.sent_at),
                            "delivery_status": m.delivery_status,
                            "failure": m.failure.as_ref().map(|f| serde_json::json!({"code": f.code, "reason": f.reason})),
                        })
                    })
                    .collect();
                let conversation = view.conversation.as_ref().map(row_json);
                println!(
                    "{}",
                    serde_json::json!({ "conversation": conversation, "messages": messages })
                );
            } else {
                if let Some(row) = &view.conversation {
                    println!(
                        "{} with {} ({}), {}",
                        row.conversation_id,
                        row.contact_name,
                        row.contact_id,
                        status_name(row.status)
                    );
                }
                for message in &view.messages {
                    let arrow = if message.direction == "inbound" {
                        "<-"
                    } else {
                        "->"
                    };
                    let state = pb::DeliveryStatus::try_from(message.delivery_status)
                        .ok()
                        .filter(|s| *s != pb::DeliveryStatus::Unspecified)
                        .map(|s| {
                            format!(
                                " [{}]",
                                s.as_str_name()
                                    .trim_start_matches("DELIVERY_STATUS_")
                                    .to_lowercase()
                            )
                        })
                        .unwrap_or_default();
                    println!(
                        "{}  {arrow} {:<10} {}{state}",
                        time(&message.sent_at),
                        message.kind,
                        message.summary
                    );
                }
            }
        }
        ClientCommand::Reply {
            client,
            conversation_id,
            text,
        } => {
            let (channel, bearer) = connect(&client.server, config).await?;
            let mut conversations: ConversationServiceClient<Authed> =
                ConversationServiceClient::with_interceptor(channel, bearer);
            let response = conversations
                .send_reply(pb::SendReplyRequest {
                    options: Some(pb::CommandOptions {
                        workspace_id: client.workspace.clone(),
                        ..Default::default()
                    }),
                    conversation_id,
                    message_id: String::new(),
                    reply: Some(pb::Reply {
                        kind: Some(pb::reply::Kind::Text(text.join(" "))),
                    }),
                })
                .await?
                .into_inner();
            let position = response.result.map_or(0, |r| r.position);
            if client.server.json {
                println!(
                    "{}",
                    serde_json::json!({ "message_id": response.message_id, "position": position })
                );
            } else {
                println!("queued {} (position {position})", response.message_id);
            }
        }
        ClientCommand::Tail {
            client,
            after,
            categories,
            types,
        } => {
            let (channel, bearer) = connect(&client.server, config).await?;
            let mut events: EventServiceClient<Authed> =
                EventServiceClient::with_interceptor(channel, bearer);
            let mut stream = events
                .subscribe(pb::SubscribeRequest {
                    workspace_id: client.workspace.clone(),
                    after_position: after,
                    categories,
                    event_types: types,
                })
                .await?
                .into_inner();
            while let Some(event) = stream.next().await {
                let event = event?;
                if client.server.json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "position": event.position, "stream": event.stream, "revision": event.revision,
                            "type": event.event_type, "id": event.id,
                        })
                    );
                } else {
                    println!(
                        "{:>10}  {:<50}  {}",
                        event.position, event.stream, event.event_type
                    );
                }
            }
        }
        ClientCommand::Templates(TemplatesCommand::Pull {
            client,
            business_account,
        }) => {
            let (channel, bearer) = connect(&client.server, config).await?;
            let mut channels: ChannelServiceClient<Authed> =
                ChannelServiceClient::with_interceptor(channel, bearer);
            let response = channels
                .pull_templates(pb::PullTemplatesRequest {
                    options: Some(pb::CommandOptions {
                        workspace_id: client.workspace.clone(),
                        ..Default::default()
                    }),
                    business_account_id: business_account.clone(),
                })
                .await?
                .into_inner();
            let position = response.result.map_or(0, |r| r.position);
            if client.server.json {
                println!(
                    "{}",
                    serde_json::json!({ "business_account_id": business_account, "position": position })
                );
            } else {
                println!("synced the templates of {business_account} (position {position})");
            }
        }
        ClientCommand::Webhooks(WebhooksCommand::List { server, state }) => {
            let (channel, bearer) = connect(&server, config).await?;
            let mut webhooks: WebhookServiceClient<Authed> =
                WebhookServiceClient::with_interceptor(channel, bearer);
            let state = match state {
                None => pb::WebhookPayloadState::Unspecified,
                Some(PayloadState::Parked) => pb::WebhookPayloadState::Parked,
                Some(PayloadState::Failed) => pb::WebhookPayloadState::Failed,
            };
            let listed = webhooks
                .list_webhook_payloads(pb::ListWebhookPayloadsRequest { state: state as i32 })
                .await?
                .into_inner();
            if server.json {
                for payload in &listed.payloads {
                    println!("{}", payload_json(payload));
                }
            } else {
                payload_table(&listed.payloads);
            }
        }
        ClientCommand::Webhooks(WebhooksCommand::Reprocess { server, payload_id }) => {
            let (channel, bearer) = connect(&server, config).await?;
            let mut webhooks: WebhookServiceClient<Authed> =
                WebhookServiceClient::with_interceptor(channel, bearer);
            let payload = webhooks
                .reprocess_webhook_payload(pb::ReprocessWebhookPayloadRequest { payload_id })
                .await?
                .into_inner()
                .payload
                .unwrap_or_default();
            if server.json {
                println!("{}", payload_json(&payload));
            } else {
                payload_table(std::slice::from_ref(&payload));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
