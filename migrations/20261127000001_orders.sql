-- Orders: the latest state of each order, and every order event once.

-- Latest state. `last_event_at` (the provider's event time) and `last_event_id`
-- order the events: an upsert applies only when its event sorts after the stored
-- one, so a late or replayed older event never overwrites a newer state.
CREATE TABLE orders (
    order_id        text        PRIMARY KEY,
    user_id         text        NOT NULL,
    status          text        NOT NULL,
    amount          bigint      NOT NULL,
    currency        text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    last_event_id   text        NOT NULL,
    last_event_type text        NOT NULL,
    last_event_at   timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- user_id is the shard key: the shard holds whole users, and reads go by user.
CREATE INDEX orders_user_id ON orders (user_id);

-- Every event once. Hash-partitioned by order so that the table stays writable
-- at any size without a partition calendar; the key includes order_id because a
-- unique constraint on a partitioned table must include the partition key.
CREATE TABLE order_events (
    order_id          text        NOT NULL,
    provider_event_id text        NOT NULL,
    event_id          uuid        NOT NULL,
    user_id           text        NOT NULL,
    event_type        text        NOT NULL,
    -- The provider's event time, identical on every retry of the event.
    created_at        timestamptz NOT NULL,
    -- When ingest received this copy; differs between retries, so it is not part
    -- of the key.
    received_at       timestamptz NOT NULL,
    payload           jsonb       NOT NULL,
    CONSTRAINT order_events_order_event_key UNIQUE (order_id, provider_event_id)
) PARTITION BY HASH (order_id);

CREATE TABLE order_events_p0 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE order_events_p1 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE order_events_p2 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE order_events_p3 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE order_events_p4 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE order_events_p5 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE order_events_p6 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE order_events_p7 PARTITION OF order_events FOR VALUES WITH (MODULUS 8, REMAINDER 7);

CREATE INDEX order_events_user_id_created_at ON order_events (user_id, created_at);
-- Lookup by hookline's event id (replay, support), which is not the key.
CREATE INDEX order_events_event_id ON order_events (event_id);
