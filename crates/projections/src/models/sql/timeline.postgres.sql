-- Conversation timelines on PostgreSQL: the same table as timeline.sql,
-- column by column (see there for what each holds); integers and times are
-- BIGINT.
-- Text is COLLATE "C": it compares byte by byte, as in SQLite, whatever
-- the database's locale, so orders and key ranges are the same on both.
CREATE TABLE timeline (
    conversation_id  TEXT COLLATE "C" NOT NULL,
    message_id       TEXT COLLATE "C" NOT NULL,
    direction        TEXT COLLATE "C" NOT NULL,
    kind             TEXT COLLATE "C" NOT NULL,
    summary          TEXT COLLATE "C" NOT NULL,
    media            TEXT COLLATE "C",
    mime_type        TEXT COLLATE "C",
    file_name        TEXT COLLATE "C",
    author           TEXT COLLATE "C",
    wa_message_id    TEXT COLLATE "C",
    delivery_state   TEXT COLLATE "C",
    delivery_rank    BIGINT,
    delivery_at      BIGINT,
    failure_code     BIGINT,
    failure_reason   TEXT COLLATE "C",
    sent_at          BIGINT NOT NULL,
    position         BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, message_id)
);
CREATE INDEX timeline_in_order ON timeline (conversation_id, sent_at, position);
