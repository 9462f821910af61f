-- Already stored events among the ids an append group mentions.
SELECT position, stream, revision, id, event_type, schema_version, payload, correlation_id, causation_id, actor, recorded_at, hash
FROM events
WHERE id = ANY($1)
