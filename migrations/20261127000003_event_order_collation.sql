-- The ordering guard compares (last_event_at, last_event_id); ties in event
-- time are broken by the event id. The worker folds a batch in byte order, so
-- the database must compare ids in byte order too, whatever the database's
-- locale: otherwise which event wins a tie would depend on batching.
ALTER TABLE orders ALTER COLUMN last_event_id TYPE text COLLATE "C";
ALTER TABLE disputes ALTER COLUMN last_event_id TYPE text COLLATE "C";
