-- Many event rows in one statement, one array per column.
INSERT INTO events (position, stream, revision, id, event_type, schema_version,
                    payload, correlation_id, causation_id, actor, recorded_at, hash)
SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[],
                     $6::bigint[], $7::bytea[], $8::uuid[], $9::uuid[], $10::text[],
                     $11::bigint[], $12::bytea[])
