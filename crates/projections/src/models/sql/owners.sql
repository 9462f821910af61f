-- Which workspace each stream belongs to: feeds and audits deliver a
-- workspace only its own streams.
CREATE TABLE stream_owners (
    stream        TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL
) WITHOUT ROWID;
