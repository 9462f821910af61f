-- One row per worker: every event up to `position` has been handled.
CREATE TABLE IF NOT EXISTS worker_checkpoints (
    worker    TEXT PRIMARY KEY,
    position  INTEGER NOT NULL
) WITHOUT ROWID;
