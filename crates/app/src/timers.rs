//! Durable timers (docs/domain.md, "Timers"): scheduling and recording that
//! one fired. What a timer *does* when it fires is the timer service's
//! business (crate `palaver-workers`), through the ordinary commands.

use chrono::{DateTime, Utc};
use palaver_domain::ids::TimerId;
use palaver_domain::timer::{Timer, TimerAction, TimerCommand};

use crate::repository::Step;
use crate::{App, CommandContext, CommandResult, Result};

impl App {
    /// Schedules `action` at `due_at` in the caller's workspace. The timer's
    /// id is derived from the action and the time, so scheduling the same
    /// thing again is a no-op that returns the same id. Target: the timer.
    pub async fn schedule_timer(
        &self,
        ctx: &CommandContext,
        due_at: DateTime<Utc>,
        action: TimerAction,
    ) -> Result<CommandResult<TimerId>> {
        let cmd = self.begin(ctx, "schedule_timer");
        self.run(&cmd, async {
            let id = TimerId::derive(&action, due_at);
            self.execute::<Timer>(&cmd, &Timer::stream_name(id), Step::PRIMARY, |_| {
                Ok(vec![TimerCommand::Schedule {
                    workspace_id: ctx.workspace_id,
                    due_at,
                    action: action.clone(),
                }])
            })
            .await?;
            Ok(id)
        })
        .await
    }

    /// Records that a timer's action ran (a no-op if already recorded).
    /// Target: the timer.
    pub async fn record_timer_fired(&self, ctx: &CommandContext, timer_id: TimerId) -> Result<CommandResult> {
        let cmd = self.begin(ctx, "record_timer_fired");
        self.run(&cmd, async {
            self.execute::<Timer>(&cmd, &Timer::stream_name(timer_id), Step::PRIMARY, |_| {
                Ok(vec![TimerCommand::Fire])
            })
            .await?;
            Ok(())
        })
        .await
    }
}
