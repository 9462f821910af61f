-- Saves position $4 for job $1, but only while $2 holds its lease with
-- fencing token $3: a holder that lost the lease (paused, partitioned) can
-- no longer move the checkpoint of the instance that took over.
INSERT INTO job_checkpoints (name, position, token)
SELECT $1, $4, $3
  FROM leases
 WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()
ON CONFLICT (name) DO UPDATE
    SET position = EXCLUDED.position,
        token = EXCLUDED.token,
        updated_at = now()
