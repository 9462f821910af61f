-- Held until the transaction ends. Keys: (what is locked, which schema).
SELECT pg_advisory_xact_lock($1, $2)
