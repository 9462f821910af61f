SELECT last_revision FROM streams WHERE name = $1
