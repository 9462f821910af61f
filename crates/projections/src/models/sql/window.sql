-- Window state: one row per thread (business number + customer).
CREATE TABLE window_state (
    thread_id                 TEXT PRIMARY KEY,
    workspace_id              TEXT NOT NULL,
    business_phone_number_id  TEXT NOT NULL,
    customer_wa_id            TEXT NOT NULL,
    contact_id                TEXT NOT NULL,  -- as the thread started; see contacts.survivor_id
    current_conversation_id   TEXT,
    -- Latest customer message, as WhatsApp timestamps it (µs since 1970 UTC).
    last_customer_message_at  INTEGER,
    -- last_customer_message_at + 24 h. Whether the window is open is
    -- decided against the reader's clock: window_closes_at > now.
    window_closes_at          INTEGER,
    started_at                INTEGER NOT NULL
);
CREATE INDEX window_state_by_workspace ON window_state (workspace_id, window_closes_at);
