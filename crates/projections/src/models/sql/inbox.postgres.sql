-- The inbox on PostgreSQL: the same table as inbox.sql, column by column
-- (see there for what each holds); integers and times are BIGINT.
-- Text is COLLATE "C": it compares byte by byte, as in SQLite, whatever
-- the database's locale, so orders and key ranges are the same on both.
CREATE TABLE inbox (
    conversation_id         TEXT COLLATE "C" PRIMARY KEY,
    workspace_id            TEXT COLLATE "C",
    thread_id               TEXT COLLATE "C" NOT NULL,
    channel                 TEXT COLLATE "C" NOT NULL,
    contact_id              TEXT COLLATE "C" NOT NULL,
    origin                  TEXT COLLATE "C" NOT NULL,
    status                  TEXT COLLATE "C" NOT NULL,
    snoozed_until           BIGINT,
    assignee                TEXT COLLATE "C",
    last_message_preview    TEXT COLLATE "C",
    last_message_kind       TEXT COLLATE "C",
    last_message_direction  TEXT COLLATE "C",
    last_message_at         BIGINT,
    last_activity_at        BIGINT NOT NULL,
    unread_count            BIGINT NOT NULL DEFAULT 0,
    waiting_since           BIGINT,
    window_warning_closes_at BIGINT,
    started_at              BIGINT NOT NULL
);
CREATE INDEX inbox_by_activity ON inbox (workspace_id, last_activity_at DESC, conversation_id DESC);
-- The next snooze to run out in a workspace (when a cached open or snoozed
-- inbox page goes stale).
CREATE INDEX inbox_snoozes ON inbox (workspace_id, snoozed_until) WHERE status = 'snoozed';

CREATE TABLE inbox_threads (
    thread_id     TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL
);
