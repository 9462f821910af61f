-- What schema $1 holds: how many relations, and the comment on its
-- `schema_migrations` table (NULL if there is none).
SELECT
    (SELECT count(*)
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1) AS relations,
    (SELECT obj_description(c.oid, 'pg_class')
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = 'schema_migrations' AND c.relkind = 'r') AS marker
