-- An empty array lets everything through; prefixes were checked to hold
-- only stream-name characters.
SELECT position, stream, revision, id, event_type, schema_version, payload, correlation_id, causation_id, actor, recorded_at, hash
FROM events
WHERE position > $1
  AND (cardinality($2::text[]) = 0
       OR EXISTS (SELECT 1 FROM unnest($2::text[]) AS prefix WHERE starts_with(stream, prefix)))
  AND (cardinality($3::text[]) = 0 OR event_type = ANY($3::text[]))
ORDER BY position
LIMIT $4
