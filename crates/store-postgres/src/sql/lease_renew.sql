-- Extends a lease still held: same holder, same token, not yet expired.
UPDATE leases
   SET expires_at = now() + $4::bigint * interval '1 microsecond'
 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()
