//! `events` and `entities`: the rows of every declared event type, each
//! naming its type.

use sqlx::{Postgres, Transaction};

use hookline_contract::StateOrder;

use super::fold::{self, Foldable, column};
use super::{Error, Fields, Result, Stored};

/// One event of a declared type: the fields every event has; the type's name
/// is part of its identity and of its entity's.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredEvent(pub Fields);

fields_newtype!(DeclaredEvent);

impl Foldable for DeclaredEvent {
    type EventKey<'a> = (&'a str, &'a str, &'a str);
    type Entity<'a> = (&'a str, &'a str);

    fn event_key(&self) -> Self::EventKey<'_> {
        (&self.type_name, &self.entity_id, &self.provider_event_id)
    }

    fn entity(&self) -> Self::Entity<'_> {
        (&self.type_name, &self.entity_id)
    }

    fn ordering(&self) -> StateOrder<'_> {
        fold::state_order(self)
    }
}

/// Stores a batch of declared events in `tx` and brings each entity's latest
/// state up to date: one outcome per event, in batch order, with the same
/// "already stored" outcome and latest-state order as the built-ins.
///
/// `payloads` are the events' JSON texts, in batch order: each event's row
/// keeps its payload, and the newest event's payload is its entity's `state`.
pub async fn store_declared_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[DeclaredEvent],
    payloads: &[&str],
) -> Result<Vec<Stored>> {
    if payloads.len() != events.len() {
        return Err(Error::PayloadsMismatch {
            events: events.len(),
            payloads: payloads.len(),
        });
    }
    let distinct = fold::first_occurrences(events);
    let inserted = insert_events(tx, events, payloads, &distinct).await?;
    let newest = fold::newest_per_entity(events, &distinct);
    upsert_entities(tx, events, payloads, &newest).await?;
    Ok(fold::outcomes(events.len(), &distinct, &inserted))
}

/// Inserts the events at `rows`; returns the 1-based positions in `rows` of
/// those that were new.
async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[DeclaredEvent],
    payloads: &[&str],
    rows: &[usize],
) -> Result<Vec<i64>> {
    sqlx::query_scalar!(
        r#"
        WITH input AS (
            SELECT * FROM UNNEST(
                $1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[],
                $6::text[], $7::timestamptz[], $8::timestamptz[], $9::text[])
            WITH ORDINALITY AS i(type, entity_id, provider_event_id, event_id,
                                 user_id, event_type, created_at, received_at,
                                 payload, n)
        ), inserted AS (
            INSERT INTO events
                (type, entity_id, provider_event_id, event_id, user_id,
                 event_type, created_at, received_at, payload)
            SELECT type, entity_id, provider_event_id, event_id, user_id,
                   event_type, created_at, received_at, payload::jsonb
            FROM input
            ON CONFLICT (type, entity_id, provider_event_id) DO NOTHING
            RETURNING type, entity_id, provider_event_id
        )
        SELECT input.n AS "n!"
        FROM input JOIN inserted USING (type, entity_id, provider_event_id)
        "#,
        &column(events, rows, |e| e.type_name.clone()),
        &column(events, rows, |e| e.entity_id.clone()),
        &column(events, rows, |e| e.provider_event_id.clone()),
        &column(events, rows, |e| e.event_id),
        &column(events, rows, |e| e.user_id.clone()),
        &column(events, rows, |e| e.event_type.clone()),
        &column(events, rows, |e| e.occurred_at),
        &column(events, rows, |e| e.received_at),
        // Borrowed texts: the same text[] to PostgreSQL, without a copy.
        &column(payloads, rows, |p| *p) as _,
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(Error::InsertDeclaredEvents)
}

/// Upserts the state of each entity from its event at `rows` (one per entity).
async fn upsert_entities(
    tx: &mut Transaction<'_, Postgres>,
    events: &[DeclaredEvent],
    payloads: &[&str],
    rows: &[usize],
) -> Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO entities AS stored
            (type, entity_id, user_id, status, last_event_id, last_event_type,
             last_event_at, last_event_rank, state)
        SELECT type, entity_id, user_id, NULLIF(status, ''), last_event_id,
               last_event_type, last_event_at, last_event_rank, state::jsonb
        FROM UNNEST(
            $1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::timestamptz[], $8::smallint[], $9::text[])
            AS i(type, entity_id, user_id, status, last_event_id,
                 last_event_type, last_event_at, last_event_rank, state)
        ON CONFLICT (type, entity_id) DO UPDATE SET
            status = EXCLUDED.status,
            last_event_id = EXCLUDED.last_event_id,
            last_event_type = EXCLUDED.last_event_type,
            last_event_at = EXCLUDED.last_event_at,
            last_event_rank = EXCLUDED.last_event_rank,
            state = EXCLUDED.state,
            updated_at = now()
        WHERE (stored.last_event_at, stored.last_event_rank, stored.last_event_id)
            < (EXCLUDED.last_event_at, EXCLUDED.last_event_rank, EXCLUDED.last_event_id)
        "#,
        &column(events, rows, |e| e.type_name.clone()),
        &column(events, rows, |e| e.entity_id.clone()),
        &column(events, rows, |e| e.user_id.clone()),
        &column(events, rows, |e| e.status.clone()),
        &column(events, rows, |e| e.provider_event_id.clone()),
        &column(events, rows, |e| e.event_type.clone()),
        &column(events, rows, |e| e.occurred_at),
        &column(events, rows, |e| e.rank),
        &column(payloads, rows, |p| *p) as _,
    )
    .execute(&mut **tx)
    .await
    .map_err(Error::UpsertEntities)?;
    Ok(())
}
