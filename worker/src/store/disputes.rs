//! `dispute_events` and `disputes`.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use hookline_contract::StateOrder;

use super::fold::{self, Foldable, column};
use super::{Error, Fields, Result, Stored};

/// One dispute event: the fields every event has. `entity_id` is the dispute
/// id; with `provider_event_id` and `occurred_at` (the same on every retry,
/// and the key `dispute_events` is partitioned by) the event's identity.
#[derive(Debug, Clone, PartialEq)]
pub struct DisputeEvent(pub Fields);

fields_newtype!(DisputeEvent);

impl Foldable for DisputeEvent {
    type EventKey<'a> = (&'a str, &'a str, DateTime<Utc>);
    type Entity<'a> = &'a str;

    fn event_key(&self) -> Self::EventKey<'_> {
        (&self.entity_id, &self.provider_event_id, self.occurred_at)
    }

    fn entity(&self) -> Self::Entity<'_> {
        &self.entity_id
    }

    fn ordering(&self) -> StateOrder<'_> {
        fold::state_order(self)
    }
}

/// Stores a batch of dispute events in `tx` and brings each dispute's latest
/// state up to date: one outcome per event, in batch order.
///
/// An event already in `dispute_events` (or earlier in the batch) is reported as
/// [`Stored::AlreadyStored`]. The state of a dispute only moves forward.
///
/// `payloads` are the events' JSON texts, in batch order; PostgreSQL parses
/// each into `jsonb` (an invalid one is refused as SQLSTATE 22P02).
pub async fn store_dispute_events(
    tx: &mut Transaction<'_, Postgres>,
    events: &[DisputeEvent],
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
    events: &[DisputeEvent],
    payloads: &[&str],
    rows: &[usize],
) -> Result<Vec<i64>> {
    sqlx::query_scalar!(
        r#"
        WITH input AS (
            SELECT * FROM UNNEST(
                $1::text[], $2::text[], $3::timestamptz[], $4::uuid[], $5::text[],
                $6::text[], $7::text[], $8::timestamptz[], $9::text[])
            WITH ORDINALITY AS i(dispute_id, provider_event_id, created_at, event_id,
                                 order_id, user_id, event_type, received_at, payload, n)
        ), inserted AS (
            INSERT INTO dispute_events
                (dispute_id, provider_event_id, created_at, event_id, order_id,
                 user_id, event_type, received_at, payload)
            SELECT dispute_id, provider_event_id, created_at, event_id, order_id,
                   user_id, event_type, received_at, payload::jsonb
            FROM input
            ON CONFLICT (dispute_id, provider_event_id, created_at) DO NOTHING
            RETURNING dispute_id, provider_event_id, created_at
        )
        SELECT input.n AS "n!"
        FROM input JOIN inserted USING (dispute_id, provider_event_id, created_at)
        "#,
        &column(events, rows, |e| e.entity_id.clone()),
        &column(events, rows, |e| e.provider_event_id.clone()),
        &column(events, rows, |e| e.occurred_at),
        &column(events, rows, |e| e.event_id),
        &column(events, rows, |e| e.order_id.clone()),
        &column(events, rows, |e| e.user_id.clone()),
        &column(events, rows, |e| e.event_type.clone()),
        &column(events, rows, |e| e.received_at),
        // Borrowed texts, where the macro would want owned ones: the same
        // text[] to PostgreSQL, without a copy of each payload.
        &column(payloads, rows, |p| *p) as _,
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(Error::InsertDisputeEvents)
}

/// Upserts the state of each dispute from its event at `rows` (one per dispute).
async fn upsert_state(
    tx: &mut Transaction<'_, Postgres>,
    events: &[DisputeEvent],
    rows: &[usize],
) -> Result<()> {
    sqlx::query!(
        r#"
        INSERT INTO disputes AS stored
            (dispute_id, order_id, user_id, status, amount, currency,
             last_event_id, last_event_type, last_event_at, last_event_rank)
        SELECT * FROM UNNEST(
            $1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
            $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::smallint[])
        ON CONFLICT (dispute_id) DO UPDATE SET
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
        &column(events, rows, |e| e.order_id.clone()),
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
    .map_err(Error::UpsertDisputes)?;
    Ok(())
}
