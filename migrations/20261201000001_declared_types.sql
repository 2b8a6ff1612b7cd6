-- Declared event types: every type a pipeline declares in its manifest shares
-- these two tables, each row naming its type. The built-in orders and
-- disputes keep their own tables.

-- Latest state of each entity of each declared type. The same guard as the
-- built-ins': an upsert applies only when its event sorts after the stored one
-- by (event time, lifecycle rank, provider event id in byte order).
CREATE TABLE entities (
    type            text        NOT NULL,
    entity_id       text        NOT NULL,
    user_id         text        NOT NULL,
    -- NULL when the type has no status pointer or the payload no status.
    status          text,
    last_event_id   text        COLLATE "C" NOT NULL,
    last_event_type text        NOT NULL,
    last_event_at   timestamptz NOT NULL,
    last_event_rank smallint    NOT NULL DEFAULT 0,
    -- The latest event's payload.
    state           jsonb       NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, entity_id)
);

-- user_id is the shard key: the shard holds whole users, and reads go by user.
CREATE INDEX entities_user_id ON entities (user_id);

-- Every event of every declared type once. Hash-partitioned by entity, as
-- order_events is, so that it stays writable at any size; the key holds the
-- partition key because a partitioned table's unique constraint must.
CREATE TABLE events (
    type              text        NOT NULL,
    entity_id         text        NOT NULL,
    provider_event_id text        NOT NULL,
    event_id          uuid        NOT NULL,
    user_id           text        NOT NULL,
    event_type        text        NOT NULL,
    -- The provider's event time, identical on every retry of the event.
    created_at        timestamptz NOT NULL,
    -- When ingest received this copy; differs between retries.
    received_at       timestamptz NOT NULL,
    payload           jsonb       NOT NULL,
    CONSTRAINT events_type_entity_event_key UNIQUE (type, entity_id, provider_event_id)
) PARTITION BY HASH (entity_id);

CREATE TABLE events_p0 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE events_p1 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE events_p2 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE events_p3 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE events_p4 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE events_p5 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE events_p6 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE events_p7 PARTITION OF events FOR VALUES WITH (MODULUS 8, REMAINDER 7);

CREATE INDEX events_user_id_created_at ON events (user_id, created_at);
-- Lookup by hookline's event id (replay, support, verify), which is not the key.
CREATE INDEX events_event_id ON events (event_id);
