-- Creating a month's partition moves that month's rows out of the DEFAULT
-- partition and then attaches the new table. A row of that month inserted
-- between the two landed in DEFAULT, and the ATTACH then failed ("updated
-- partition constraint for default partition would be violated"), every time
-- the periodic task met live traffic. Writers are now held off for the move:
-- SHARE ROW EXCLUSIVE on the parent conflicts with the ROW EXCLUSIVE every
-- INSERT takes, so a concurrent insert waits a few milliseconds and is then
-- routed, with the new partition in place, to it. Nothing is refused or lost.
-- The common case (the partition exists) takes only the advisory lock.
CREATE OR REPLACE FUNCTION hookline_ensure_dispute_events_partition(month date)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    lo   timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', month::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
    part text        := format('dispute_events_%s', to_char(month, 'YYYY_MM'));
BEGIN
    -- The lock comes before the first look at the catalog: an advisory lock
    -- does not refresh the backend's catalog caches, so a look before it
    -- could miss a partition another backend made meanwhile.
    PERFORM pg_advisory_xact_lock(hashtext('hookline_ensure_dispute_events_partition'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    LOCK TABLE dispute_events IN SHARE ROW EXCLUSIVE MODE;
    EXECUTE format('CREATE TABLE %I (LIKE dispute_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM dispute_events_default WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', part)
        USING lo, hi;
    EXECUTE format('ALTER TABLE dispute_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    RETURN part;
END
$$;
