//! `order_events` and `orders`.

use sqlx::{Postgres, Transaction};

use hookline_contract::StateOrder;

use super::fold::{self, Foldable, column};
use super::{Error, Fields, Result, Stored};

/// One order event: the fields every event has. An order is its own entity:
/// `entity_id` is the order id, and with `provider_event_id` the event's
/// identity.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderEvent(pub Fields);

fields_newtype!(OrderEvent);

impl Foldable for OrderEvent {
    type EventKey<'a> = (&'a str, &'a str);
    type Entity<'a> = &'a str;

    fn event_key(&self) -> Self::EventKey<'_> {
        (&self.entity_id, &self.provider_event_id)
    }

    fn entity(&self) -> Self::Entity<'_> {
        &self.entity_id
    }

    fn ordering(&self) -> StateOrder<'_> {
        fold::state_order(self)
    }
}

/// Stores a batch of order events in `tx` and brings each order's latest state
/// up to date: one outcome per event, in batch order.
///
/// An event already in `order_events` (or earlier in the batch) is reported as
/// [`Stored::AlreadyStored`]. The state of an order only moves forward: an event
/// older than the stored state leaves it as it is.
///
/// `payloads` are the events' JSON texts, in batch order; PostgreSQL parses
/// each into `jsonb` (an invalid one is refused as SQLSTATE 22P02).
pub async fn store_order_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[OrderEvent],
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
    upsert_state(tx, events, &fold::newest_per_entity(events, &distinct)).await?;
    Ok(fold::outcomes(events.len(), &distinct, &inserted))
}

/// Inserts the events at `rows`; returns the 1-based positions in `rows` of
/// those that were new.
async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[OrderEvent],
    payloads: &[&str],
    rows: &[usize],
) -> Result<Vec<i64>> {
    sqlx::query_scalar!(
        r#"
        WITH input AS (
            SELECT * FROM UNNEST(
                $1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                $6::timestamptz[], $7::timestamptz[], $8::text[])
            WITH ORDINALITY AS i(order_id, provider_event_id, event_id, user_id,
                                 event_type, created_at, received_at, payload, n)
        ), inserted AS (
            INSERT INTO order_events
                (order_id, provider_event_id, event_id, user_id, event_type,
                 created_at, received_at, payload)
            SELECT order_id, provider_event_id, event_id, user_id, event_type,
                   created_at, received_at, payload::jsonb
            FROM input
            ON CONFLICT (order_id, provider_event_id) DO NOTHING
            RETURNING order_id, provider_event_id
        )
        SELECT input.n AS "n!"
        FROM input JOIN inserted USING (order_id, provider_event_id)
        "#,
        &column(events, rows, |e| e.entity_id.clone()),
        &column(events, rows, |e| e.provider_event_id.clone()),
        &column(events, rows, |e| e.event_id),
        &column(events, rows, |e| e.user_id.clone()),
        &column(events, rows, |e| e.event_type.clone()),
        &column(events, rows, |e| e.occurred_at),
        &column(events, rows, |e| e.received_at),
        // Borrowed texts, where the macro would want owned ones: the same
        // text[] to PostgreSQL, without a copy of each payload.
        &column(payloads, rows, |p| *p) as _,
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(Error::InsertOrderEvents)
}

/// Upserts the state of each order from its event at `rows` (one per order).
async fn upsert_state(
    tx: &mut Transaction<'_, Postgres>,
    events: &[OrderEvent],
    rows: &[usize],
) -> Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO orders AS stored
            (order_id, user_id, status, amount, currency,
             last_event_id, last_event_type, last_event_at, last_event_rank)
        SELECT * FROM UNNEST(
            $1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
            $6::text[], $7::text[], $8::timestamptz[], $9::smallint[])
        ON CONFLICT (order_id) DO UPDATE SET
            status = EXCLUDED.status,
            amount = EXCLUDED.amount,
            currency = EXCLUDED.currency,
            last_event_id = EXCLUDED.last_event_id,
            last_event_type = EXCLUDED.last_event_type,
            last_event_at = EXCLUDED.last_event_at,
            last_event_rank = EXCLUDED.last_event_rank,
            updated_at = now()
        WHERE (stored.last_event_at, stored.last_event_rank, stored.last_event_id)
            < (EXCLUDED.last_event_at, EXCLUDED.last_event_rank, EXCLUDED.last_event_id)
        "#,
        &column(events, rows, |e| e.entity_id.clone()),
        &column(events, rows, |e| e.user_id.clone()),
        &column(events, rows, |e| e.status.clone()),
        &column(events, rows, |e| e.amount),
        &column(events, rows, |e| e.currency.clone()),
        &column(events, rows, |e| e.provider_event_id.clone()),
        &column(events, rows, |e| e.event_type.clone()),
        &column(events, rows, |e| e.occurred_at),
        &column(events, rows, |e| e.rank),
    )
    .execute(&mut **tx)
    .await
    .map_err(Error::UpsertOrders)?;
    Ok(())
}
