-- The last rows of an append group, the new stream heads and the
-- notification, in one statement (so COMMIT can follow in the same round
-- trip). Data-modifying CTEs run whether or not their rows are used.
WITH inserted AS (
    INSERT INTO events (position, stream, revision, id, event_type, schema_version,
                        payload, correlation_id, causation_id, actor, recorded_at, hash)
    SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[],
                         $6::bigint[], $7::bytea[], $8::uuid[], $9::uuid[], $10::text[],
                         $11::bigint[], $12::bytea[])
), heads AS (
    INSERT INTO streams (name, last_revision, last_hash)
    SELECT * FROM UNNEST($13::text[], $14::bigint[], $15::bytea[])
    ON CONFLICT (name) DO UPDATE
        SET last_revision = EXCLUDED.last_revision, last_hash = EXCLUDED.last_hash
)
-- Delivered to listeners only when the transaction commits.
SELECT pg_notify($16, $17)
