-- Version 2: how far each singleton job (a worker) got in `$all`, kept
-- beside its lease so whichever instance takes the lease over resumes
-- where the last holder stopped.
CREATE TABLE job_checkpoints (
    name            TEXT    COLLATE "C" PRIMARY KEY,  -- the job, as its lease
    position        BIGINT  NOT NULL CHECK (position >= 0),
    token           BIGINT  NOT NULL,                 -- fencing token of the writer
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
