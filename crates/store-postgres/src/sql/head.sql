-- The last committed position. Appends are serialised by the append lock
-- and take positions in commit order, so every position up to it is
-- committed too.
SELECT COALESCE(MAX(position), 0) FROM events
