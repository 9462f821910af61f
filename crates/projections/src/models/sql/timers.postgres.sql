-- Pending timers on PostgreSQL: the same table as timers.sql, column by
-- column (see there for what each holds); times are BIGINT.
-- Text is COLLATE "C": it compares byte by byte, as in SQLite, whatever
-- the database's locale, so orders and key ranges are the same on both.
CREATE TABLE pending_timers (
    timer_id      TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL,
    due_at        BIGINT NOT NULL,
    action        TEXT COLLATE "C" NOT NULL,
    subject_id    TEXT COLLATE "C" NOT NULL,
    message_id    TEXT COLLATE "C",
    action_at     BIGINT
);
CREATE INDEX pending_timers_by_due ON pending_timers (due_at, timer_id);
