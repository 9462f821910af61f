-- The saved position of job $1, if any.
SELECT position FROM job_checkpoints WHERE name = $1
