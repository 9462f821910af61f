//! The inbox: one row per conversation, with what a teammate scans a list
//! for (status, assignee, last message, unread count, waiting since).

use palaver_domain::{
    codec::{DomainEvent, event_types as t},
    conversation::ConversationEvent,
    thread::{ConversationOrigin, ThreadEvent},
};
use palaver_store::RecordedEvent;

use super::summary;
use crate::{ProjectError, Projector, sql::Statement, stmt};

/// The inbox projector.
#[derive(Debug, Default)]
pub struct InboxProjector;

fn origin_name(origin: ConversationOrigin) -> &'static str {
    match origin {
        ConversationOrigin::Inbound => "inbound",
        ConversationOrigin::Inbox => "inbox",
        ConversationOrigin::Campaign => "campaign",
        ConversationOrigin::WhatsAppSwitch => "whatsapp_switch",
    }
}

impl Projector for InboxProjector {
    fn name(&self) -> &'static str {
        "inbox"
    }
    fn version(&self) -> u32 {
        // 4: the inbox_snoozes index.
        4
    }
    fn schema(&self) -> &'static str {
        include_str!("sql/inbox.sql")
    }
    fn postgres_schema(&self) -> &'static str {
        include_str!("sql/inbox.postgres.sql")
    }
    fn tables(&self) -> &'static [&'static str] {
        &["inbox", "inbox_threads"]
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[
            t::THREAD_STARTED,
            t::CONVERSATION_STARTED,
            t::MESSAGE_RECEIVED,
            t::OUTBOUND_MESSAGE_QUEUED,
            t::CONVERSATION_ASSIGNED,
            t::CONVERSATION_SNOOZED,
            t::CONVERSATION_UNSNOOZED,
            t::CONVERSATION_CLOSED,
            t::CONVERSATION_REOPENED,
            t::WINDOW_CLOSING_SOON,
        ]
    }

    fn project(
        &self,
        _: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError> {
        let event = match event {
            DomainEvent::Thread(ThreadEvent::Started {
                thread_id, identity, ..
            }) => {
                out.push(stmt!(
                    "INSERT INTO inbox_threads (thread_id, workspace_id) VALUES (?1, ?2) \
                     ON CONFLICT (thread_id) DO NOTHING",
                    thread_id.to_string(),
                    identity.workspace_id.to_string(),
                ));
                return Ok(());
            }
            DomainEvent::Conversation(event) => event,
            _ => return Ok(()),
        };
        match event {
            ConversationEvent::Started { conversation_id, thread_id, contact_id, origin, at } => out.push(stmt!(
                "INSERT INTO inbox (conversation_id, workspace_id, thread_id, channel, contact_id, origin, status, \
                 last_activity_at, started_at) \
                 VALUES (?1, (SELECT workspace_id FROM inbox_threads WHERE thread_id = ?2), ?2, 'whatsapp', ?3, ?4, \
                 'open', ?5, ?5) ON CONFLICT (conversation_id) DO NOTHING",
                conversation_id.to_string(),
                thread_id.to_string(),
                contact_id.to_string(),
                origin_name(*origin),
                *at,
            )),
            ConversationEvent::MessageReceived { conversation_id, message, .. } => {
                let summary = summary::inbound(&message.content);
                // Out-of-order webhooks: only a newer message replaces the
                // preview. (WhatsApp's timestamp can precede the conversation's
                // own start, which is when Palaver received the message.)
                // Greatest and least are spelt CASE WHEN: SQLite's MAX(a, b)
                // is not PostgreSQL's. A NULL waiting_since compares as
                // unknown, so the ELSE takes the new time.
                out.push(stmt!(
                    "UPDATE inbox SET \
                     last_message_preview = CASE WHEN ?2 >= COALESCE(last_message_at, ?2) THEN ?3 \
                         ELSE last_message_preview END, \
                     last_message_kind = CASE WHEN ?2 >= COALESCE(last_message_at, ?2) THEN ?4 \
                         ELSE last_message_kind END, \
                     last_message_direction = CASE WHEN ?2 >= COALESCE(last_message_at, ?2) THEN 'inbound' \
                         ELSE last_message_direction END, \
                     last_message_at = CASE WHEN ?2 >= COALESCE(last_message_at, ?2) THEN ?2 \
                         ELSE last_message_at END, \
                     last_activity_at = CASE WHEN ?2 > last_activity_at THEN ?2 ELSE last_activity_at END, \
                     unread_count = unread_count + 1, \
                     waiting_since = CASE WHEN waiting_since <= ?2 THEN waiting_since ELSE ?2 END, \
                     window_warning_closes_at = CASE WHEN ?2 >= COALESCE(last_message_at, ?2) THEN NULL \
                         ELSE window_warning_closes_at END \
                     WHERE conversation_id = ?1",
                    conversation_id.to_string(),
                    message.sent_at,
                    summary.preview,
                    summary.kind,
                ));
            }
            ConversationEvent::OutboundQueued { conversation_id, content, at, .. } => {
                let summary = summary::outbound(content);
                // A reply answers everything the customer said before it.
                out.push(stmt!(
                    "UPDATE inbox SET last_message_preview = ?3, last_message_kind = ?4, \
                     last_message_direction = 'outbound', \
                     last_message_at = CASE WHEN ?2 >= COALESCE(last_message_at, ?2) THEN ?2 \
                         ELSE last_message_at END, \
                     last_activity_at = CASE WHEN ?2 > last_activity_at THEN ?2 ELSE last_activity_at END, \
                     unread_count = 0, waiting_since = NULL, window_warning_closes_at = NULL \
                     WHERE conversation_id = ?1",
                    conversation_id.to_string(),
                    *at,
                    summary.preview,
                    summary.kind,
                ));
            }
            ConversationEvent::Assigned { conversation_id, assignee, .. } => out.push(stmt!(
                "UPDATE inbox SET assignee = ?2 WHERE conversation_id = ?1",
                conversation_id.to_string(),
                assignee.as_ref().map(|a| a.to_string()),
            )),
            ConversationEvent::Snoozed { conversation_id, until, .. } => out.push(stmt!(
                "UPDATE inbox SET status = 'snoozed', snoozed_until = ?2 WHERE conversation_id = ?1",
                conversation_id.to_string(),
                *until,
            )),
            ConversationEvent::Unsnoozed { conversation_id, .. } | ConversationEvent::Reopened { conversation_id, .. } => {
                out.push(stmt!(
                    "UPDATE inbox SET status = 'open', snoozed_until = NULL WHERE conversation_id = ?1",
                    conversation_id.to_string(),
                ))
            }
            ConversationEvent::Closed { conversation_id, .. } => out.push(stmt!(
                "UPDATE inbox SET status = 'closed', snoozed_until = NULL WHERE conversation_id = ?1",
                conversation_id.to_string(),
            )),
            ConversationEvent::WindowClosingSoon { conversation_id, closes_at, .. } => out.push(stmt!(
                "UPDATE inbox SET window_warning_closes_at = ?2 WHERE conversation_id = ?1",
                conversation_id.to_string(),
                *closes_at,
            )),
            ConversationEvent::OutboundAccepted { .. }
            | ConversationEvent::DeliveryStatusChanged { .. }
            | ConversationEvent::SendAttempted { .. } => {}
        }
        Ok(())
    }
}
