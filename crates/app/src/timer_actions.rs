//! What a durable timer does when it fires (docs/domain.md, "Timers"), for
//! the timer service (crate `palaver-workers`).
//!
//! Each action is an ordinary command that re-checks its subject when it
//! runs, because a timer can fire late, twice (a crash between the action
//! and `record_timer_fired`), or after its subject moved on: a snooze that
//! was changed, a window a reply answered, a send that was settled. Then
//! the action writes nothing. `LaunchCampaign` needs no method of its own:
//! [`App::launch_campaign`] is already a no-op once launched.

use chrono::{DateTime, Utc};
use palaver_domain::conversation::{ConversationCommand, MessageRef};
use palaver_domain::delivery::{DeliveryFailure, DeliveryUpdate};
use palaver_domain::ids::{ConversationId, MessageId, TimerId, WorkspaceId};
use palaver_domain::timer::{Timer, TimerEvent};

use crate::error::{Error, Result};
use crate::repository::Step;
use crate::{App, CommandContext, CommandResult};

/// Failure code of a send given up by Palaver itself: 0, as for every
/// failure that happened before WhatsApp answered.
pub const PALAVER_FAILURE_CODE: i32 = 0;

/// Why an uncertain send is recorded as failed when its timer runs out.
pub const UNCERTAIN_SEND_EXPIRED: &str =
    "the Cloud API's answer was lost and no status webhook named it; not resent to avoid sending twice";

impl App {
    /// Whether the timer is scheduled in `workspace` and has not fired: read
    /// from its stream, so a lagging read model cannot make it fire twice.
    pub async fn timer_pending(&self, workspace: WorkspaceId, timer_id: TimerId) -> Result<bool> {
        let timer = self.load::<Timer>(&Timer::stream_name(timer_id)).await?;
        let in_workspace = timer.events.iter().any(
            |e| matches!(&e.event, TimerEvent::Scheduled { workspace_id, .. } if *workspace_id == workspace),
        );
        Ok(in_workspace && !timer.state.fired())
    }

    /// Ends the snooze that ends at `until`, if the conversation is still
    /// snoozed until exactly then (a snooze changed or ended since is left
    /// alone). The conversation's `Unsnooze` decides the rest: today it
    /// writes nothing once the snooze's time has passed, because a run-out
    /// snooze already reads as open. Target: the conversation.
    pub async fn wake_conversation(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        until: DateTime<Utc>,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "wake_conversation");
        self.run(&cmd, async {
            self.conversation_in(ctx.workspace_id, conversation_id).await?;
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                Ok(vec![ConversationCommand::Wake { until }])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// Warns that the window closing at `closes_at` closes soon; the
    /// conversation writes `WindowClosingSoon` only if its last message is
    /// still the customer's one that opened that window, it is not closed,
    /// and it was not warned already. Target: the conversation.
    pub async fn warn_window_closing(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        closes_at: DateTime<Utc>,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "warn_window_closing");
        self.run(&cmd, async {
            self.conversation_in(ctx.workspace_id, conversation_id).await?;
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |_| {
                Ok(vec![ConversationCommand::WarnWindowClosing { closes_at }])
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// Gives up on a send whose outcome stayed unknown: if the message is
    /// still not settled (no WhatsApp id, no status, no failure), records it
    /// failed with [`PALAVER_FAILURE_CODE`] and [`UNCERTAIN_SEND_EXPIRED`].
    /// It is not resent: it may have reached the customer. A settled
    /// message is left alone. Target: the conversation.
    pub async fn expire_uncertain_send(
        &self,
        ctx: &CommandContext,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "expire_uncertain_send");
        self.run(&cmd, async {
            self.conversation_in(ctx.workspace_id, conversation_id).await?;
            let failed = DeliveryUpdate::Failed {
                failure: DeliveryFailure {
                    code: PALAVER_FAILURE_CODE,
                    reason: UNCERTAIN_SEND_EXPIRED.to_owned(),
                },
                at: cmd.now,
            };
            self.on_conversation(&cmd, conversation_id, Step::PRIMARY, |conversation| {
                // Decided on the state as loaded for this attempt, so a
                // status that lands first (a lost race) is seen on retry.
                match conversation.state.outbound(message_id) {
                    None => Err(Error::not_found("message", message_id)),
                    Some(message) if message.is_settled() => Ok(vec![]),
                    Some(_) => Ok(vec![ConversationCommand::RecordDeliveryStatus {
                        message: MessageRef::Ours(message_id),
                        update: failed.clone(),
                    }]),
                }
            })
            .await?;
            Ok(())
        })
        .await
    }
}
