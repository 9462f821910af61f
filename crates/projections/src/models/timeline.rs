//! Conversation timelines: each message with its kind, summary, media and
//! delivery state.

use palaver_domain::{
    codec::{DomainEvent, event_types as t},
    conversation::ConversationEvent,
    delivery::{DeliveryProgress, DeliveryUpdate},
};
use palaver_store::RecordedEvent;

use super::summary;
use crate::{ProjectError, Projector, sql::Statement, stmt};

/// The timeline projector.
#[derive(Debug, Default)]
pub struct TimelineProjector;

/// Delivery states in the order they can only move forward.
fn progress(progress: DeliveryProgress) -> (&'static str, i64) {
    match progress {
        DeliveryProgress::Queued => ("queued", 0),
        DeliveryProgress::Sent => ("sent", 1),
        DeliveryProgress::Delivered => ("delivered", 2),
        DeliveryProgress::Read => ("read", 3),
    }
}

impl Projector for TimelineProjector {
    fn name(&self) -> &'static str {
        "timeline"
    }
    fn version(&self) -> u32 {
        1
    }
    fn schema(&self) -> &'static str {
        include_str!("sql/timeline.sql")
    }
    fn postgres_schema(&self) -> &'static str {
        include_str!("sql/timeline.postgres.sql")
    }
    fn tables(&self) -> &'static [&'static str] {
        &["timeline"]
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[
            t::MESSAGE_RECEIVED,
            t::OUTBOUND_MESSAGE_QUEUED,
            t::OUTBOUND_MESSAGE_ACCEPTED,
            t::DELIVERY_STATUS_CHANGED,
        ]
    }

    fn project(
        &self,
        recorded: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError> {
        let DomainEvent::Conversation(event) = event else {
            return Ok(());
        };
        match event {
            ConversationEvent::MessageReceived {
                conversation_id,
                message,
                ..
            } => {
                let summary = summary::inbound(&message.content);
                out.push(stmt!(
                    "INSERT INTO timeline (conversation_id, message_id, direction, kind, summary, media, mime_type, \
                     file_name, wa_message_id, sent_at, position) \
                     VALUES (?1, ?2, 'inbound', ?3, ?4, ?5, ?6, ?7, ?2, ?8, ?9) ON CONFLICT DO NOTHING",
                    conversation_id.to_string(),
                    message.wa_message_id.as_str(),
                    summary.kind,
                    summary.preview,
                    summary.media,
                    summary.mime_type,
                    summary.file_name,
                    message.sent_at,
                    recorded.position.0,
                ));
            }
            ConversationEvent::OutboundQueued {
                conversation_id,
                message_id,
                content,
                author,
                at,
            } => {
                let summary = summary::outbound(content);
                out.push(stmt!(
                    "INSERT INTO timeline (conversation_id, message_id, direction, kind, summary, media, file_name, \
                     author, delivery_state, delivery_rank, delivery_at, sent_at, position) \
                     VALUES (?1, ?2, 'outbound', ?3, ?4, ?5, ?6, ?7, 'queued', 0, ?8, ?8, ?9) ON CONFLICT DO NOTHING",
                    conversation_id.to_string(),
                    message_id.to_string(),
                    summary.kind,
                    summary.preview,
                    summary.media,
                    summary.file_name,
                    author.to_string(),
                    *at,
                    recorded.position.0,
                ));
            }
            ConversationEvent::OutboundAccepted {
                conversation_id,
                message_id,
                wa_message_id,
                ..
            } => out.push(stmt!(
                "UPDATE timeline SET wa_message_id = ?3 WHERE conversation_id = ?1 AND message_id = ?2",
                conversation_id.to_string(),
                message_id.to_string(),
                wa_message_id.as_str(),
            )),
            ConversationEvent::DeliveryStatusChanged {
                conversation_id,
                message_id,
                update,
            } => match update {
                DeliveryUpdate::Progress { progress: p, at } => {
                    let (state, rank) = progress(*p);
                    // Forward only, and never over a failure.
                    out.push(stmt!(
                        "UPDATE timeline SET delivery_state = ?3, delivery_rank = ?4, delivery_at = ?5 \
                         WHERE conversation_id = ?1 AND message_id = ?2 AND delivery_rank < ?4 \
                         AND delivery_state <> 'failed'",
                        conversation_id.to_string(),
                        message_id.to_string(),
                        state,
                        rank,
                        *at,
                    ));
                }
                DeliveryUpdate::Failed { failure, at } => out.push(stmt!(
                    "UPDATE timeline SET delivery_state = 'failed', delivery_at = ?3, failure_code = ?4, \
                     failure_reason = ?5 WHERE conversation_id = ?1 AND message_id = ?2",
                    conversation_id.to_string(),
                    message_id.to_string(),
                    *at,
                    i64::from(failure.code),
                    failure.reason.as_str(),
                )),
            },
            _ => {}
        }
        Ok(())
    }
}
