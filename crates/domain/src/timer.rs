//! Durable timers (stream `timer-<timer id>`): something that must happen
//! at a time, kept as events so it survives restarts and fires once.
//!
//! A timer's id is derived from what it does, so scheduling the same thing
//! twice (a redelivered event, a retried command) is one timer. The timer
//! service fires a due timer by running its action, which is idempotent,
//! and then recording [`TimerEvent::Fired`]; a crash between the two runs
//! the action again, harmlessly. Actions re-check their subject when they
//! run: a snooze that was changed, a window that a reply closed or a send
//! that was settled make the timer a no-op rather than wrong.

use chrono::{DateTime, Utc};

use crate::aggregate::Aggregate;
use crate::ids::{CampaignId, ConversationId, MessageId, TimerId, WorkspaceId, derive};
use crate::stream::StreamName;
use crate::{Error, Result};

/// What a timer does when it fires.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TimerAction {
    /// Launch a scheduled campaign.
    LaunchCampaign {
        /// The campaign.
        campaign_id: CampaignId,
    },
    /// End a snooze (if it is still the snooze that ends at `until`).
    WakeConversation {
        /// The conversation.
        conversation_id: ConversationId,
        /// The snooze's end.
        until: DateTime<Utc>,
    },
    /// Warn that the window closes soon (if it is still that window).
    WarnWindowClosing {
        /// The conversation.
        conversation_id: ConversationId,
        /// When the window closes.
        closes_at: DateTime<Utc>,
    },
    /// Give up on a send whose outcome stayed unknown.
    ExpireUncertainSend {
        /// The conversation.
        conversation_id: ConversationId,
        /// The message.
        message_id: MessageId,
    },
}

impl TimerAction {
    /// Short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::LaunchCampaign { .. } => "launch_campaign",
            Self::WakeConversation { .. } => "wake_conversation",
            Self::WarnWindowClosing { .. } => "warn_window_closing",
            Self::ExpireUncertainSend { .. } => "expire_uncertain_send",
        }
    }
}

impl TimerId {
    /// The timer that runs `action` at `due_at`: derived, so scheduling it
    /// again is a no-op.
    pub fn derive(action: &TimerAction, due_at: DateTime<Utc>) -> Self {
        let subject = match action {
            TimerAction::LaunchCampaign { campaign_id } => campaign_id.to_string(),
            TimerAction::WakeConversation { conversation_id, .. }
            | TimerAction::WarnWindowClosing { conversation_id, .. } => conversation_id.to_string(),
            TimerAction::ExpireUncertainSend { message_id, .. } => message_id.to_string(),
        };
        Self::from_uuid(derive(
            "timer",
            &[action.name(), &subject, &due_at.timestamp_micros().to_string()],
        ))
    }
}

/// Commands on a timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerCommand {
    /// Schedule it (a no-op if it exists).
    Schedule {
        /// Workspace it acts in.
        workspace_id: WorkspaceId,
        /// When it is due.
        due_at: DateTime<Utc>,
        /// What it does.
        action: TimerAction,
    },
    /// Its action ran: record that it fired (a no-op if it did).
    Fire,
}

/// What happened to a timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerEvent {
    /// Scheduled.
    Scheduled {
        /// This timer.
        timer_id: TimerId,
        /// Workspace it acts in.
        workspace_id: WorkspaceId,
        /// When it is due.
        due_at: DateTime<Utc>,
        /// What it does.
        action: TimerAction,
        /// When it was scheduled.
        at: DateTime<Utc>,
    },
    /// Fired.
    Fired {
        /// This timer.
        timer_id: TimerId,
        /// When.
        at: DateTime<Utc>,
    },
}

/// One timer.
#[derive(Clone, Debug, Default)]
pub struct Timer {
    scheduled: Option<(TimerId, WorkspaceId, DateTime<Utc>, TimerAction)>,
    fired: bool,
}

impl Timer {
    /// The stream of a timer.
    pub fn stream_name(id: TimerId) -> StreamName {
        StreamName::new(Self::CATEGORY, &id.to_string()).expect("a UUID is a valid id")
    }

    /// Whether it fired.
    pub fn fired(&self) -> bool {
        self.fired
    }
}

impl Aggregate for Timer {
    const CATEGORY: &'static str = "timer";
    type Command = TimerCommand;
    type Event = TimerEvent;

    fn decide(&self, command: TimerCommand, now: DateTime<Utc>) -> Result<Vec<TimerEvent>> {
        match command {
            TimerCommand::Schedule {
                workspace_id,
                due_at,
                action,
            } => {
                if self.scheduled.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![TimerEvent::Scheduled {
                    timer_id: TimerId::derive(&action, due_at),
                    workspace_id,
                    due_at,
                    action,
                    at: now,
                }])
            }
            TimerCommand::Fire => {
                let Some((timer_id, ..)) = &self.scheduled else {
                    return Err(Error::NotFound("timer"));
                };
                if self.fired {
                    return Ok(vec![]);
                }
                Ok(vec![TimerEvent::Fired {
                    timer_id: *timer_id,
                    at: now,
                }])
            }
        }
    }

    fn evolve(mut self, event: &TimerEvent) -> Self {
        match event {
            TimerEvent::Scheduled {
                timer_id,
                workspace_id,
                due_at,
                action,
                ..
            } => self.scheduled = Some((*timer_id, *workspace_id, *due_at, action.clone())),
            TimerEvent::Fired { .. } => self.fired = true,
        }
        self
    }
}
