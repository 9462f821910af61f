//! Window state: per thread, the customer's last message time and when the
//! 24-hour window closes. Whether free-form replies are allowed is decided
//! at query time against the reader's clock, never frozen here.

use palaver_domain::{
    codec::DomainEvent, codec::event_types as t, thread::ThreadEvent, window::WINDOW_LENGTH,
};
use palaver_store::RecordedEvent;

use crate::{ProjectError, Projector, sql::Statement, stmt};

/// The window-state projector.
#[derive(Debug, Default)]
pub struct WindowProjector;

impl Projector for WindowProjector {
    fn name(&self) -> &'static str {
        "window"
    }
    fn version(&self) -> u32 {
        1
    }
    fn schema(&self) -> &'static str {
        include_str!("sql/window.sql")
    }
    fn postgres_schema(&self) -> &'static str {
        include_str!("sql/window.postgres.sql")
    }
    fn tables(&self) -> &'static [&'static str] {
        &["window_state"]
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[
            t::THREAD_STARTED,
            t::THREAD_CONVERSATION_STARTED,
            t::CUSTOMER_MESSAGE_ACCEPTED,
        ]
    }

    fn project(
        &self,
        _: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError> {
        let DomainEvent::Thread(event) = event else {
            return Ok(());
        };
        match event {
            ThreadEvent::Started { thread_id, identity, at } => out.push(stmt!(
                "INSERT INTO window_state (thread_id, workspace_id, business_phone_number_id, customer_wa_id, \
                 contact_id, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (thread_id) DO NOTHING",
                thread_id.to_string(),
                identity.workspace_id.to_string(),
                identity.business_phone_number_id.as_str(),
                identity.customer_wa_id.as_str(),
                identity.contact_id.to_string(),
                *at,
            )),
            ThreadEvent::ConversationStarted { thread_id, conversation_id, .. } => out.push(stmt!(
                "UPDATE window_state SET current_conversation_id = ?2 WHERE thread_id = ?1",
                thread_id.to_string(),
                conversation_id.to_string(),
            )),
            ThreadEvent::CustomerMessageAccepted { thread_id, sent_at, conversation_id, .. } => {
                // Webhooks arrive out of order: the latest timestamp wins.
                out.push(stmt!(
                    "UPDATE window_state SET \
                     last_customer_message_at = CASE WHEN ?2 >= COALESCE(last_customer_message_at, ?2) \
                         THEN ?2 ELSE last_customer_message_at END, \
                     window_closes_at = CASE WHEN ?2 >= COALESCE(last_customer_message_at, ?2) \
                         THEN ?2 ELSE last_customer_message_at END + ?3, \
                     current_conversation_id = ?4 \
                     WHERE thread_id = ?1",
                    thread_id.to_string(),
                    *sent_at,
                    WINDOW_LENGTH.num_microseconds().unwrap_or(i64::MAX),
                    conversation_id.to_string(),
                ))
            }
        }
        Ok(())
    }
}
