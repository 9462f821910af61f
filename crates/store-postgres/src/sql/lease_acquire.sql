-- Grants lease $1 to $2 for $3 microseconds if it is free or expired, on
-- the database's clock. Each grant takes the next fencing token; a row is
-- never deleted, so tokens never go back.
INSERT INTO leases (name, holder, token, expires_at)
VALUES ($1, $2, 1, now() + $3::bigint * interval '1 microsecond')
ON CONFLICT (name) DO UPDATE
    SET holder = EXCLUDED.holder,
        token = leases.token + 1,
        expires_at = EXCLUDED.expires_at
    WHERE leases.expires_at <= now()
RETURNING token
