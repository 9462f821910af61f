-- Durable timers scheduled and not fired yet: the timer service's work
-- list. A row appears with TimerScheduled and goes with TimerFired; the
-- timer's stream stays the authority (the service checks it before firing).
CREATE TABLE pending_timers (
    timer_id      TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    due_at        INTEGER NOT NULL, -- µs since 1970 UTC
    -- launch_campaign, wake_conversation, warn_window_closing or
    -- expire_uncertain_send (TimerAction::name)
    action        TEXT NOT NULL,
    subject_id    TEXT NOT NULL,    -- the campaign, or the conversation
    message_id    TEXT,             -- expire_uncertain_send: the message
    -- wake_conversation: the snooze's end; warn_window_closing: when the
    -- window closes (µs). NULL otherwise.
    action_at     INTEGER
) WITHOUT ROWID;
CREATE INDEX pending_timers_by_due ON pending_timers (due_at, timer_id);
