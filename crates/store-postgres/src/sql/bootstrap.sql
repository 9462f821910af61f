-- The migration ledger, created before the first migration. The comment
-- marks the schema as a Palaver event store, so a schema that merely has a
-- table of the same name (another tool's ledger) is refused.
CREATE TABLE schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE schema_migrations IS 'palaver event store';
