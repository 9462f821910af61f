//! Pending timers: the durable timers scheduled and not fired yet, so the
//! timer service finds what is due with one indexed read instead of
//! replaying every timer stream. Only a work list: the timer's stream
//! decides whether it fired, and a row that lags behind a `TimerFired`
//! costs the service one extra check, never a second firing.

use palaver_domain::{
    codec::{DomainEvent, event_types as t},
    timer::{TimerAction, TimerEvent},
};
use palaver_store::RecordedEvent;

use crate::{ProjectError, Projector, sql::Statement, stmt};

/// The pending-timers projector.
#[derive(Debug, Default)]
pub struct TimersProjector;

impl Projector for TimersProjector {
    fn name(&self) -> &'static str {
        "timers"
    }
    fn version(&self) -> u32 {
        1
    }
    fn schema(&self) -> &'static str {
        include_str!("sql/timers.sql")
    }
    fn postgres_schema(&self) -> &'static str {
        include_str!("sql/timers.postgres.sql")
    }
    fn tables(&self) -> &'static [&'static str] {
        &["pending_timers"]
    }
    fn event_types(&self) -> &'static [&'static str] {
        &[t::TIMER_SCHEDULED, t::TIMER_FIRED]
    }

    fn project(
        &self,
        _: &RecordedEvent,
        event: &DomainEvent,
        out: &mut Vec<Statement>,
    ) -> Result<(), ProjectError> {
        let DomainEvent::Timer(event) = event else {
            return Ok(());
        };
        match event {
            TimerEvent::Scheduled {
                timer_id,
                workspace_id,
                due_at,
                action,
                ..
            } => {
                let (subject, message, action_at) = match action {
                    TimerAction::LaunchCampaign { campaign_id } => (campaign_id.to_string(), None, None),
                    TimerAction::WakeConversation {
                        conversation_id,
                        until,
                    } => (conversation_id.to_string(), None, Some(*until)),
                    TimerAction::WarnWindowClosing {
                        conversation_id,
                        closes_at,
                    } => (conversation_id.to_string(), None, Some(*closes_at)),
                    TimerAction::ExpireUncertainSend {
                        conversation_id,
                        message_id,
                    } => (conversation_id.to_string(), Some(message_id.to_string()), None),
                };
                out.push(stmt!(
                    "INSERT INTO pending_timers (timer_id, workspace_id, due_at, action, subject_id, \
                     message_id, action_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT (timer_id) DO NOTHING",
                    timer_id.to_string(),
                    workspace_id.to_string(),
                    *due_at,
                    action.name(),
                    subject,
                    message,
                    action_at,
                ));
            }
            TimerEvent::Fired { timer_id, .. } => out.push(stmt!(
                "DELETE FROM pending_timers WHERE timer_id = ?1",
                timer_id.to_string(),
            )),
        }
        Ok(())
    }
}
