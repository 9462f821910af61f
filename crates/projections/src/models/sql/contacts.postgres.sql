-- Contacts on PostgreSQL: the same tables as contacts.sql, column by column
-- (see there for what each holds); times are BIGINT.
-- Text is COLLATE "C": it compares byte by byte, as in SQLite, whatever
-- the database's locale, so orders and key ranges are the same on both.
CREATE TABLE contacts (
    contact_id        TEXT COLLATE "C" PRIMARY KEY,
    workspace_id      TEXT COLLATE "C" NOT NULL,
    kind              TEXT COLLATE "C" NOT NULL,
    name              TEXT COLLATE "C" NOT NULL,
    wa_id             TEXT COLLATE "C",
    external_user_id  TEXT COLLATE "C",
    merged_into       TEXT COLLATE "C",
    merged_reason     TEXT COLLATE "C",
    merged_at         BIGINT,
    survivor_id       TEXT COLLATE "C" NOT NULL,
    created_at        BIGINT NOT NULL,
    last_active_at    BIGINT
);
CREATE INDEX contacts_by_survivor ON contacts (survivor_id);
CREATE INDEX contacts_by_wa_id ON contacts (workspace_id, wa_id);

CREATE TABLE contact_phones (
    phone_e164  TEXT COLLATE "C" NOT NULL,
    contact_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (phone_e164, contact_id)
);

CREATE TABLE contact_threads (
    thread_id   TEXT COLLATE "C" PRIMARY KEY,
    contact_id  TEXT COLLATE "C" NOT NULL
);
