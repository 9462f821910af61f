-- Frees a lease still held, keeping its row (and so its token).
UPDATE leases
   SET expires_at = '-infinity'
 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()
