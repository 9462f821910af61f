-- Version 1: the event log, the head of every stream, and leases.

-- One row per event. `position` is the global `$all` order: assigned by the
-- writer holding the append lock, in commit order, 1-based, without holes
-- (a sequence would leave holes and hand out numbers out of commit order).
CREATE TABLE events (
    position        BIGINT  PRIMARY KEY CHECK (position > 0),
    stream          TEXT    COLLATE "C" NOT NULL,
    revision        BIGINT  NOT NULL CHECK (revision >= 0),
    id              UUID    NOT NULL UNIQUE,
    event_type      TEXT    COLLATE "C" NOT NULL,
    schema_version  BIGINT  NOT NULL,
    payload         BYTEA   NOT NULL,
    correlation_id  UUID,
    causation_id    UUID,
    actor           TEXT    NOT NULL,
    recorded_at     BIGINT  NOT NULL,  -- microseconds since 1970 UTC, as hashed
    hash            BYTEA   NOT NULL CHECK (octet_length(hash) = 32),
    UNIQUE (stream, revision)
);

-- The last event of each stream, so an append needs no scan to check the
-- expected revision or to chain the next hash.
CREATE TABLE streams (
    name            TEXT    COLLATE "C" PRIMARY KEY,
    last_revision   BIGINT  NOT NULL,
    last_hash       BYTEA   NOT NULL CHECK (octet_length(last_hash) = 32)
);

-- Who runs each singleton job (a projector, a worker) among several
-- instances. A row is never deleted, so `token` (the fencing token) only
-- ever grows for a name, even across releases.
CREATE TABLE leases (
    name            TEXT    COLLATE "C" PRIMARY KEY,
    holder          TEXT    NOT NULL,
    token           BIGINT  NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL  -- on the database's clock
);
