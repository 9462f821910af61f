-- Conversation timelines: every message of every conversation.
CREATE TABLE timeline (
    conversation_id  TEXT NOT NULL,
    -- WhatsApp's id for customer messages, Palaver's for ours.
    message_id       TEXT NOT NULL,
    direction        TEXT NOT NULL,     -- inbound, outbound
    kind             TEXT NOT NULL,     -- see crates/projections/src/models/summary.rs
    summary          TEXT NOT NULL,
    media            TEXT,              -- media id (inbound) or URL (outbound)
    mime_type        TEXT,
    file_name        TEXT,
    author           TEXT,              -- teammate:<id>, service:<name>, system; NULL for the customer
    wa_message_id    TEXT,              -- WhatsApp's id, once known
    -- Outbound only: queued, sent, delivered, read, failed. Moves forward
    -- only; a failure is recorded whenever it comes.
    delivery_state   TEXT,
    delivery_rank    INTEGER,
    delivery_at      INTEGER,
    failure_code     INTEGER,
    failure_reason   TEXT,
    sent_at          INTEGER NOT NULL,  -- WhatsApp's timestamp (inbound) or when queued (outbound), µs
    position         INTEGER NOT NULL,  -- $all position that added it: a stable tie-breaker
    PRIMARY KEY (conversation_id, message_id)
) WITHOUT ROWID;
CREATE INDEX timeline_in_order ON timeline (conversation_id, sent_at, position);
