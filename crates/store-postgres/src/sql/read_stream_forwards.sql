SELECT position, stream, revision, id, event_type, schema_version, payload, correlation_id, causation_id, actor, recorded_at, hash
FROM events
WHERE stream = $1 AND revision >= $2
ORDER BY revision ASC
LIMIT $3
