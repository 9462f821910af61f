-- Version 1: the event log and the head of every stream.

-- One row per event. `position` is the global `$all` order: assigned by
-- the single writer in commit order, 1-based, without holes.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY,
    stream          TEXT    NOT NULL,
    revision        INTEGER NOT NULL,
    id              BLOB    NOT NULL UNIQUE,  -- 16-byte UUID
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         BLOB    NOT NULL,
    correlation_id  BLOB,                     -- 16-byte UUID or NULL
    causation_id    BLOB,                     -- 16-byte UUID or NULL
    actor           TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL,         -- microseconds since 1970 UTC
    hash            BLOB    NOT NULL,         -- SHA-256, chained per stream
    UNIQUE (stream, revision)
);

-- The last event of each stream, so an append needs no scan to check the
-- expected revision or to chain the next hash.
CREATE TABLE streams (
    name            TEXT    PRIMARY KEY,
    last_revision   INTEGER NOT NULL,
    last_hash       BLOB    NOT NULL
) WITHOUT ROWID;
