-- Stream owners on PostgreSQL: the same table as owners.sql.
-- Text is COLLATE "C": it compares byte by byte, as in SQLite, whatever
-- the database's locale, so orders and key ranges are the same on both.
CREATE TABLE stream_owners (
    stream        TEXT COLLATE "C" PRIMARY KEY,
    workspace_id  TEXT COLLATE "C" NOT NULL
);
