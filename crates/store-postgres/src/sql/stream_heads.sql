SELECT name, last_revision, last_hash FROM streams WHERE name = ANY($1)
