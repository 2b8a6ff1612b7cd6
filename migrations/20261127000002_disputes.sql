-- Disputes: the latest state of each dispute, and every dispute event once.

CREATE TABLE disputes (
    dispute_id      text        PRIMARY KEY,
    order_id        text        NOT NULL,
    user_id         text        NOT NULL,
    status          text        NOT NULL,
    amount          bigint      NOT NULL,
    currency        text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    last_event_id   text        NOT NULL,
    last_event_type text        NOT NULL,
    last_event_at   timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX disputes_user_id ON disputes (user_id);
CREATE INDEX disputes_order_id ON disputes (order_id);

-- Every event once, range-partitioned by month of the provider's event time so
-- that old months can be detached and archived. The key must include the
-- partition key, which is why created_at is the provider's time (the same on
-- every retry) and never the arrival time (which would let retries through).
CREATE TABLE dispute_events (
    dispute_id        text        NOT NULL,
    provider_event_id text        NOT NULL,
    created_at        timestamptz NOT NULL,
    event_id          uuid        NOT NULL,
    order_id          text        NOT NULL,
    user_id           text        NOT NULL,
    event_type        text        NOT NULL,
    received_at       timestamptz NOT NULL,
    payload           jsonb       NOT NULL,
    CONSTRAINT dispute_events_dispute_event_key UNIQUE (dispute_id, provider_event_id, created_at)
) PARTITION BY RANGE (created_at);

-- No insert may ever fail for want of a month: events outside the months that
-- have partitions land here.
CREATE TABLE dispute_events_default PARTITION OF dispute_events DEFAULT;

CREATE INDEX dispute_events_user_id_created_at ON dispute_events (user_id, created_at);
CREATE INDEX dispute_events_event_id ON dispute_events (event_id);

-- Creates the partition of the month holding `month` unless it exists, moving
-- that month's rows out of the DEFAULT partition first (ATTACH refuses while the
-- DEFAULT partition holds rows of the new range). Safe to call concurrently.
CREATE FUNCTION hookline_ensure_dispute_events_partition(month date)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    lo   timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', month::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
    part text        := format('dispute_events_%s', to_char(month, 'YYYY_MM'));
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hookline_ensure_dispute_events_partition'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN part;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE dispute_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format(
        'WITH moved AS (DELETE FROM dispute_events_default WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', part)
        USING lo, hi;
    EXECUTE format('ALTER TABLE dispute_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    RETURN part;
END
$$;

-- The partitions of `months` consecutive months starting with the month of `first`.
CREATE FUNCTION hookline_ensure_dispute_events_partitions(first date, months integer)
RETURNS SETOF text
LANGUAGE sql
AS $$
    SELECT hookline_ensure_dispute_events_partition((date_trunc('month', first::timestamp) + make_interval(months => m))::date)
    FROM generate_series(0, months - 1) AS m
$$;
