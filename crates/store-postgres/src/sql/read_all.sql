SELECT position, stream, revision, id, event_type, schema_version, payload, correlation_id, causation_id, actor, recorded_at, hash
FROM events
WHERE position > $1
ORDER BY position
LIMIT $2
