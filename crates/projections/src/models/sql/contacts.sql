-- Contacts: leads and users, their phones, and merges.
CREATE TABLE contacts (
    contact_id        TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    kind              TEXT NOT NULL,      -- lead, user
    name              TEXT NOT NULL,
    wa_id             TEXT,               -- WhatsApp id, if known
    external_user_id  TEXT,               -- a user's id in the customer's system (given at creation, or when a lead became a user)
    -- The contact this one was merged into (NULL if it was not), and the
    -- end of that chain: the contact that stands for it now. A contact that
    -- was never merged is its own survivor.
    merged_into       TEXT,
    merged_reason     TEXT,
    merged_at         INTEGER,
    survivor_id       TEXT NOT NULL,
    created_at        INTEGER NOT NULL,   -- µs since 1970 UTC
    last_active_at    INTEGER             -- latest customer message, µs
);
CREATE INDEX contacts_by_survivor ON contacts (survivor_id);
CREATE INDEX contacts_by_wa_id ON contacts (workspace_id, wa_id);

-- Phone numbers in E.164, so a lookup in any format is one index probe.
CREATE TABLE contact_phones (
    phone_e164  TEXT NOT NULL,
    contact_id  TEXT NOT NULL,
    PRIMARY KEY (phone_e164, contact_id)
) WITHOUT ROWID;

-- Which contact each thread's customer is, to date their activity.
CREATE TABLE contact_threads (
    thread_id   TEXT PRIMARY KEY,
    contact_id  TEXT NOT NULL
) WITHOUT ROWID;
