//! What every command carries in ([`CommandContext`]) and gets back
//! ([`CommandResult`]), and the per-execution bookkeeping ([`Cmd`]) that
//! turns a context into event metadata and event ids.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use palaver_domain::ids::{Actor, WorkspaceId};
use palaver_store::{Metadata, Position};
use uuid::Uuid;

/// Namespace of every UUID v5 this crate derives (idempotency streams,
/// event ids, ids generated for a keyed command). Fixed forever: changing
/// it would orphan every idempotency record.
pub(crate) const APP_NAMESPACE: Uuid = Uuid::from_u128(0x3e0b_9c52_71d4_5f08_a6e1_4c2b_8d97_1f60);

/// Who acts, for whom, and under which guarantees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandContext {
    /// Every command is scoped to one workspace: ids of another workspace
    /// read as "not found".
    pub workspace_id: WorkspaceId,
    /// Recorded in each event's metadata (`teammate:<id>`, `service:<name>`,
    /// `system`) and, where the domain keeps it, in the event.
    pub actor: Actor,
    /// Groups the events of one outside request across streams; one is
    /// generated per command when absent.
    pub correlation_id: Option<Uuid>,
    /// A retried command with the same key (in the same workspace) returns
    /// the first result and does nothing else. At most 200 characters.
    pub idempotency_key: Option<String>,
    /// Optimistic concurrency from the caller: the command fails with
    /// [`crate::Error::Conflict`] unless its target aggregate's stream is at
    /// this revision (0-based revision of its last event). Not retried.
    pub expected_version: Option<u64>,
}

impl CommandContext {
    /// A context with no correlation id, idempotency key or expected version.
    pub fn new(workspace_id: WorkspaceId, actor: Actor) -> Self {
        CommandContext {
            workspace_id,
            actor,
            correlation_id: None,
            idempotency_key: None,
            expected_version: None,
        }
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sets the expected version of the target aggregate.
    #[must_use]
    pub fn with_expected_version(mut self, version: u64) -> Self {
        self.expected_version = Some(version);
        self
    }
}

/// What a command returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandResult<T = ()> {
    /// Global position of the last event the command appended; if it
    /// changed nothing (a retry, or nothing to change), the store's head
    /// when it finished. Pass it as a query's minimum position to read your
    /// own write.
    pub position: Position,
    /// What the command produced (ids, flags).
    pub value: T,
}

/// One execution of a command: the context plus what is fixed for the whole
/// execution (its time, its correlation id, its id for event ids).
#[derive(Debug)]
pub(crate) struct Cmd<'a> {
    pub ctx: &'a CommandContext,
    pub name: &'static str,
    /// Names this execution in derived event ids and generated ids. With an
    /// idempotency key it is derived from the key, so a retry that got past
    /// the idempotency record (a crash before it was written, or two
    /// retries at once) generates the same message, contact and campaign
    /// ids, and the domain sees a repeat instead of a second command.
    pub id: Uuid,
    pub keyed: bool,
    pub correlation: Uuid,
    /// Read once: every decision of one command sees the same instant.
    pub now: DateTime<Utc>,
    pub span: tracing::Span,
    /// Highest position appended so far (0 = nothing yet).
    last_position: AtomicU64,
}

impl<'a> Cmd<'a> {
    pub fn new(ctx: &'a CommandContext, name: &'static str, now: DateTime<Utc>) -> Self {
        let (id, keyed) = match &ctx.idempotency_key {
            Some(key) => (idempotency_id(ctx.workspace_id, key), true),
            None => (Uuid::now_v7(), false),
        };
        let correlation = ctx.correlation_id.unwrap_or_else(Uuid::now_v7);
        let span = tracing::info_span!(
            "command",
            command = name,
            workspace_id = %ctx.workspace_id,
            correlation_id = %correlation,
            actor = %ctx.actor,
        );
        Cmd {
            ctx,
            name,
            id,
            keyed,
            correlation,
            now,
            span,
            last_position: AtomicU64::new(0),
        }
    }

    /// Metadata for an event of this command.
    pub fn metadata(&self, causation: Option<Uuid>) -> Metadata {
        let metadata = Metadata::new(self.now)
            .with_actor(self.ctx.actor.to_string())
            .with_correlation(self.correlation);
        match causation {
            Some(cause) => metadata.with_causation(cause),
            None => metadata,
        }
    }

    /// The id of the `index`-th event appended to `stream` after `revision`.
    /// Deterministic, so that re-sending an append after a transient store
    /// failure (which may have committed) is recognised by the store as the
    /// same append. The revision is part of the name: after a lost race the
    /// next attempt lands elsewhere and must not reuse the ids.
    ///
    /// When the command's id is a UUIDv7 (a command without an idempotency
    /// key), the event id keeps its 48-bit millisecond timestamp in front
    /// of the hash (a UUIDv8). Event ids are a unique index of the event
    /// store: ids in time order land at its end, in a page or two that
    /// every commit touches anyway, where hashed ids each dirtied a page of
    /// their own, one more page per event for the store to log, sync and
    /// checkpoint (a fifth more replies per second on the gRPC benchmark).
    /// A command id derived from an idempotency key or a WhatsApp message
    /// id carries no time (a retry from another request must derive the
    /// same event ids), so its event ids stay plain hashes. Either way the
    /// id depends on nothing but the command id and the arguments.
    pub fn event_id(&self, stream: &str, revision: Option<u64>, index: usize) -> Uuid {
        let revision = revision.map_or_else(|| "none".to_owned(), |r| r.to_string());
        let hashed = Uuid::new_v5(
            &APP_NAMESPACE,
            format!("event\0{}\0{stream}\0{revision}\0{index}", self.id).as_bytes(),
        );
        if self.id.get_version_num() != 7 {
            return hashed;
        }
        let mut bytes = *hashed.as_bytes();
        bytes[..6].copy_from_slice(&self.id.as_bytes()[..6]);
        Uuid::new_v8(bytes)
    }

    /// A fresh id for something this command creates (a message, a
    /// contact, a campaign): derived from the idempotency key when there is
    /// one, a UUIDv7 otherwise. Time-ordered ids are added at the end of
    /// the read models' keys (a conversation's timeline is keyed by message
    /// id), where random ones each dirtied a page of their own.
    pub fn new_id(&self, purpose: &str) -> Uuid {
        if self.keyed {
            self.keyed_id(purpose)
        } else {
            Uuid::now_v7()
        }
    }

    /// [`Self::new_id`] for a secret, such as a switch token: without an
    /// idempotency key all its 122 bits are random (a UUIDv7 has only 74,
    /// and tells when it was made).
    pub fn new_secret_id(&self, purpose: &str) -> Uuid {
        if self.keyed {
            self.keyed_id(purpose)
        } else {
            Uuid::new_v4()
        }
    }

    fn keyed_id(&self, purpose: &str) -> Uuid {
        Uuid::new_v5(&APP_NAMESPACE, format!("{purpose}\0{}", self.id).as_bytes())
    }

    /// Notes an appended position.
    pub fn wrote(&self, position: Position) {
        self.last_position.fetch_max(position.0, Ordering::Relaxed);
    }

    /// The last position this command appended, if any.
    pub fn last_position(&self) -> Option<Position> {
        match self.last_position.load(Ordering::Relaxed) {
            0 => None,
            p => Some(Position(p)),
        }
    }
}

/// The id of an idempotency key within a workspace.
pub(crate) fn idempotency_id(workspace: WorkspaceId, key: &str) -> Uuid {
    Uuid::new_v5(
        &APP_NAMESPACE,
        format!("idempotency\0{workspace}\0{key}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> CommandContext {
        CommandContext::new(WorkspaceId::from_uuid(Uuid::from_u128(7)), Actor::System)
    }

    /// Unkeyed commands' event ids sort as the commands ran, so the store's
    /// unique index of ids grows at its end (see `Cmd::event_id`).
    #[test]
    fn event_ids_of_unkeyed_commands_sort_in_time_order() {
        let ctx = context();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let cmd = Cmd::new(&ctx, "test", Utc::now());
            ids.push(cmd.event_id("conversation-1", Some(4), 0));
            ids.push(cmd.event_id("conversation-1", Some(4), 1));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        for later in ids.chunks(2).collect::<Vec<_>>().windows(2) {
            assert!(
                later[0].iter().all(|a| later[1].iter().all(|b| a < b)),
                "an id of a later command sorts before an earlier one: {ids:?}"
            );
        }
        assert!(ids.iter().all(|id| id.get_version_num() == 8), "{ids:?}");
    }

    /// The same command execution derives the same id for the same event
    /// (a re-sent append is recognised), and another for any other event.
    #[test]
    fn an_event_id_depends_only_on_the_command_and_the_event() {
        let ctx = context();
        let cmd = Cmd::new(&ctx, "test", Utc::now());
        let id = cmd.event_id("conversation-1", Some(4), 0);
        assert_eq!(cmd.event_id("conversation-1", Some(4), 0), id);
        for other in [
            cmd.event_id("conversation-2", Some(4), 0),
            cmd.event_id("conversation-1", None, 0),
            cmd.event_id("conversation-1", Some(5), 0),
            cmd.event_id("conversation-1", Some(4), 1),
        ] {
            assert_ne!(other, id);
        }
    }

    /// Ids an unkeyed command generates sort as they were made, except
    /// secrets, which are random through and through.
    #[test]
    fn generated_ids_are_time_ordered_and_secrets_random() {
        let ctx = context();
        let cmd = Cmd::new(&ctx, "test", Utc::now());
        let first = cmd.new_id("message");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = cmd.new_id("message");
        assert_eq!(first.get_version_num(), 7);
        assert!(first < second, "{first} {second}");
        assert_eq!(cmd.new_secret_id("switch-token").get_version_num(), 4);
        // With a key both are derived from it.
        let keyed = context().with_idempotency_key("k");
        let keyed = Cmd::new(&keyed, "test", Utc::now());
        assert_eq!(keyed.new_id("message"), keyed.new_id("message"));
        assert_eq!(
            keyed.new_secret_id("switch-token"),
            keyed.new_secret_id("switch-token")
        );
    }

    /// A keyed command's retry, from another request at another time,
    /// derives the same event ids.
    #[test]
    fn keyed_commands_derive_the_same_event_ids_on_every_retry() {
        let ctx = context().with_idempotency_key("retry-me");
        let first = Cmd::new(&ctx, "test", Utc::now()).event_id("conversation-1", Some(4), 0);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let retry = Cmd::new(&ctx, "test", Utc::now()).event_id("conversation-1", Some(4), 0);
        assert_eq!(first, retry);
        assert_eq!(first.get_version_num(), 5);
    }
}
