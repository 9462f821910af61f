//! Idempotency keys: a retried command with the same key (in the same
//! workspace) returns the first result without running again.
//!
//! After a keyed command succeeds, its result is written as the only event
//! of `idempotency-<UUID v5 of workspace and key>` (expected revision "no
//! stream"). A retry reads that stream first and answers from it. Two
//! retries racing past the read both run, but a keyed command derives its
//! generated ids (message, contact, campaign, token) from the key, so the
//! domain sees the second as a repeat and writes nothing; the second
//! record append then loses and returns the winner's record. A command that
//! fails records nothing, so retrying it runs it again.

use std::future::Future;

use chrono::{DateTime, Utc};
use palaver_domain::ids::{CampaignId, ContactId, ConversationId, MessageId, ThreadId, TimerId};
use palaver_domain::messenger::{self, SwitchToken};
use palaver_store::{Position, StreamName};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument;
use uuid::Uuid;

use crate::App;
use crate::context::{Cmd, CommandResult, idempotency_id};
use crate::error::{Error, Precondition, Result};
use crate::{Inbound, StartedConversation, SwitchOffer};

/// Longest idempotency key.
pub const MAX_KEY_LEN: usize = 200;

const COMPLETED: &str = "palaver.app.CommandCompleted";

/// What is kept of a keyed command's result.
#[derive(Debug, Serialize, Deserialize)]
struct Completed {
    command: String,
    position: u64,
    value: Value,
}

/// A command's value as stored in its idempotency record.
pub(crate) trait Replay: Sized {
    fn to_record(&self) -> Value;
    fn from_record(value: &Value) -> Option<Self>;
}

impl Replay for () {
    fn to_record(&self) -> Value {
        Value::Null
    }
    fn from_record(_: &Value) -> Option<Self> {
        Some(())
    }
}

fn uuid_of(value: &Value) -> Option<Uuid> {
    value.as_str().and_then(|s| Uuid::parse_str(s).ok())
}

macro_rules! replay_uuid_id {
    ($($id:ty),*) => {$(
        impl Replay for $id {
            fn to_record(&self) -> Value {
                Value::String(self.to_string())
            }
            fn from_record(value: &Value) -> Option<Self> {
                uuid_of(value).map(<$id>::from_uuid)
            }
        }
    )*};
}

replay_uuid_id!(
    MessageId,
    ContactId,
    CampaignId,
    ConversationId,
    ThreadId,
    TimerId
);

impl Replay for Inbound {
    fn to_record(&self) -> Value {
        json!({
            "thread_id": self.thread_id.to_string(),
            "conversation_id": self.conversation_id.to_string(),
            "contact_id": self.contact_id.to_string(),
            "duplicate": self.duplicate,
        })
    }
    fn from_record(value: &Value) -> Option<Self> {
        Some(Inbound {
            thread_id: ThreadId::from_record(&value["thread_id"])?,
            conversation_id: ConversationId::from_record(&value["conversation_id"])?,
            contact_id: ContactId::from_record(&value["contact_id"])?,
            duplicate: value["duplicate"].as_bool()?,
        })
    }
}

impl Replay for StartedConversation {
    fn to_record(&self) -> Value {
        json!({
            "thread_id": self.thread_id.to_string(),
            "conversation_id": self.conversation_id.to_string(),
            "message_id": self.message_id.to_string(),
        })
    }
    fn from_record(value: &Value) -> Option<Self> {
        Some(StartedConversation {
            thread_id: ThreadId::from_record(&value["thread_id"])?,
            conversation_id: ConversationId::from_record(&value["conversation_id"])?,
            message_id: MessageId::from_record(&value["message_id"])?,
        })
    }
}

impl Replay for SwitchOffer {
    /// The QR codes are drawn again from the link rather than stored.
    fn to_record(&self) -> Value {
        json!({
            "token": self.token.as_str(),
            "link": self.link,
            "expires_at": self.expires_at.to_rfc3339(),
        })
    }
    fn from_record(value: &Value) -> Option<Self> {
        let link = value["link"].as_str()?.to_owned();
        Some(SwitchOffer {
            token: SwitchToken::parse(value["token"].as_str()?)?,
            qr_svg: messenger::qr_svg(&link).ok()?,
            qr_png: messenger::qr_png(&link).ok()?,
            link,
            expires_at: DateTime::parse_from_rfc3339(value["expires_at"].as_str()?)
                .ok()?
                .with_timezone(&Utc),
        })
    }
}

impl App {
    /// Runs a command body under the command's span, answering from the
    /// idempotency record when the key was used before and writing the
    /// record after a first success.
    pub(crate) async fn run<T: Replay>(
        &self,
        cmd: &Cmd<'_>,
        body: impl Future<Output = Result<T>>,
    ) -> Result<CommandResult<T>> {
        async {
            let record = match &cmd.ctx.idempotency_key {
                Some(key) => {
                    let stream = record_stream(cmd, key)?;
                    if let Some(done) = self.read_completed(cmd, &stream).await? {
                        tracing::info!(position = %done.position, "answered from the idempotency record");
                        return Ok(done);
                    }
                    Some(stream)
                }
                None => None,
            };
            let value = match body.await {
                Ok(value) => value,
                Err(error) => {
                    tracing::info!(%error, "command refused");
                    return Err(error);
                }
            };
            let position = match cmd.last_position() {
                Some(position) => position,
                None => self.head().await?,
            };
            let result = CommandResult { position, value };
            match record {
                Some(stream) => self.write_completed(cmd, &stream, result).await,
                None => Ok(result),
            }
        }
        .instrument(cmd.span.clone())
        .await
    }

    async fn read_completed<T: Replay>(
        &self,
        cmd: &Cmd<'_>,
        stream: &StreamName,
    ) -> Result<Option<CommandResult<T>>> {
        let records = self.read_records::<Completed>(stream).await?;
        let Some((_, done)) = records.events.into_iter().next() else {
            return Ok(None);
        };
        if done.command != cmd.name {
            return Err(Precondition::IdempotencyKeyReused {
                first: done.command,
                this: cmd.name,
            }
            .into());
        }
        let value = T::from_record(&done.value)
            .ok_or_else(|| Error::Internal(format!("{stream}: unreadable idempotency record")))?;
        Ok(Some(CommandResult {
            position: Position(done.position),
            value,
        }))
    }

    async fn write_completed<T: Replay>(
        &self,
        cmd: &Cmd<'_>,
        stream: &StreamName,
        result: CommandResult<T>,
    ) -> Result<CommandResult<T>> {
        let completed = Completed {
            command: cmd.name.to_owned(),
            position: result.position.0,
            value: result.value.to_record(),
        };
        let expected = palaver_store::ExpectedRevision::NoStream;
        match self
            .append_record(cmd, stream, expected, COMPLETED, &completed)
            .await?
        {
            Some(_) => Ok(result),
            // A concurrent retry recorded first: its answer is the answer.
            None => self
                .read_completed(cmd, stream)
                .await?
                .ok_or_else(|| Error::Internal(format!("{stream}: lost the record race to nothing"))),
        }
    }
}

fn record_stream(cmd: &Cmd<'_>, key: &str) -> Result<StreamName> {
    if key.is_empty() || key.chars().count() > MAX_KEY_LEN {
        return Err(Error::invalid(
            "idempotency_key",
            format!("must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    StreamName::from_parts("idempotency", idempotency_id(cmd.ctx.workspace_id, key))
        .map_err(|e| Error::Internal(e.to_string()))
}
