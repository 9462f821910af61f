-- The inbox: one row per conversation.
CREATE TABLE inbox (
    conversation_id         TEXT PRIMARY KEY,
    workspace_id            TEXT,             -- from the conversation's thread
    thread_id               TEXT NOT NULL,
    channel                 TEXT NOT NULL,    -- whatsapp
    contact_id              TEXT NOT NULL,    -- as started; see contacts.survivor_id
    origin                  TEXT NOT NULL,    -- inbound, inbox, campaign, whatsapp_switch
    -- open, snoozed or closed, as last set. A snooze whose time has passed
    -- reads as open: queries decide against their clock.
    status                  TEXT NOT NULL,
    snoozed_until           INTEGER,
    assignee                TEXT,             -- teammate id, NULL if unassigned
    last_message_preview    TEXT,
    last_message_kind       TEXT,
    last_message_direction  TEXT,             -- inbound, outbound
    last_message_at         INTEGER,          -- when the last message was sent, µs
    last_activity_at        INTEGER NOT NULL, -- µs since 1970 UTC
    unread_count            INTEGER NOT NULL DEFAULT 0, -- customer messages since our last reply
    waiting_since           INTEGER,          -- oldest unanswered customer message, µs
    -- Set by WindowClosingSoon: the window closes at this time (µs) and the
    -- customer is still waiting; cleared by our reply or a newer message.
    window_warning_closes_at INTEGER,
    started_at              INTEGER NOT NULL
);
CREATE INDEX inbox_by_activity ON inbox (workspace_id, last_activity_at DESC, conversation_id DESC);
-- The next snooze to run out in a workspace (when a cached open or snoozed
-- inbox page goes stale).
CREATE INDEX inbox_snoozes ON inbox (workspace_id, snoozed_until) WHERE status = 'snoozed';

-- The workspace of each thread, so a conversation row can carry it.
CREATE TABLE inbox_threads (
    thread_id     TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL
) WITHOUT ROWID;
