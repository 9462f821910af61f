-- Window state on PostgreSQL: the same table as window.sql, column by
-- column (see there for what each holds); times are BIGINT.
-- Text is COLLATE "C": it compares byte by byte, as in SQLite, whatever
-- the database's locale, so orders and key ranges are the same on both.
CREATE TABLE window_state (
    thread_id                 TEXT COLLATE "C" PRIMARY KEY,
    workspace_id              TEXT COLLATE "C" NOT NULL,
    business_phone_number_id  TEXT COLLATE "C" NOT NULL,
    customer_wa_id            TEXT COLLATE "C" NOT NULL,
    contact_id                TEXT COLLATE "C" NOT NULL,
    current_conversation_id   TEXT COLLATE "C",
    last_customer_message_at  BIGINT,
    window_closes_at          BIGINT,
    started_at                BIGINT NOT NULL
);
CREATE INDEX window_state_by_workspace ON window_state (workspace_id, window_closes_at);
