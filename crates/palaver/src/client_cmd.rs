//! Client verbs for people at a terminal: they talk to a running server
//! over gRPC. Human-readable tables by default, `--json` for scripts.

#![allow(clippy::print_stdout)] // a terminal tool

use std::process::ExitCode;

use clap::{Args, Subcommand};
use futures::StreamExt;
use palaver_api::auth::BearerToken;
use palaver_proto::v1::{
    self as pb, conversation_service_client::ConversationServiceClient,
    event_service_client::EventServiceClient, inbox_service_client::InboxServiceClient,
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::config::Config;

#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server's gRPC address.
    #[arg(long, env = "PALAVER_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token [default: the first admin token in <data-dir>/admin-token].
    #[arg(long, env = "PALAVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The workspace (UUID).
    #[arg(long, env = "PALAVER_WORKSPACE")]
    workspace: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
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
}

type Authed = InterceptedService<Channel, BearerToken>;

async fn connect(args: &ClientArgs, config: &Config) -> anyhow::Result<(Channel, BearerToken)> {
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
            let (channel, bearer) = connect(&client, config).await?;
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
            if client.json {
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
            let (channel, bearer) = connect(&client, config).await?;
            let mut inbox: InboxServiceClient<Authed> = InboxServiceClient::with_interceptor(channel, bearer);
            let view = inbox
                .get_conversation(pb::GetConversationRequest {
                    options: query(&client),
                    conversation_id,
                })
                .await?
                .into_inner();
            if client.json {
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
            let (channel, bearer) = connect(&client, config).await?;
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
            if client.json {
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
            let (channel, bearer) = connect(&client, config).await?;
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
                if client.json {
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
    }
    Ok(ExitCode::SUCCESS)
}
