//! Writing decoded events to their shards.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::decode::Event;
use crate::store::{self, DisputeEvent, OrderEvent, Stored};

/// How long a write waits for a connection before it counts as failed
/// (transient: the shard is retried).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one shard transaction may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One pool per shard, in the manifest's order.
#[derive(Clone)]
pub struct Shards {
    pools: Vec<PgPool>,
    names: Vec<String>,
}

impl Shards {
    /// Pools that connect on first use, so that a shard that is down at
    /// startup delays only its own writes.
    pub fn connect_lazy(urls: &[(String, String)], connections: u32) -> Result<Self, sqlx::Error> {
        let mut pools = Vec::with_capacity(urls.len());
        for (_, url) in urls {
            pools.push(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy(url)?,
            );
        }
        Ok(Self {
            pools,
            names: urls.iter().map(|(name, _)| name.clone()).collect(),
        })
    }

    pub fn count(&self) -> u32 {
        self.pools.len() as u32
    }

    pub fn name(&self, shard: usize) -> &str {
        self.names.get(shard).map_or("?", String::as_str)
    }

    pub fn pools(&self) -> &[PgPool] {
        &self.pools
    }

    /// Writes `events` to `shard` in one transaction, within [`WRITE_TIMEOUT`];
    /// one outcome per event. A write cut short is rolled back with its
    /// connection and counts as transient.
    pub async fn write(&self, shard: usize, events: &[&Event]) -> store::Result<Vec<Stored>> {
        tokio::time::timeout(WRITE_TIMEOUT, self.write_now(shard, events))
            .await
            .unwrap_or(Err(store::Error::Timeout(WRITE_TIMEOUT)))
    }

    async fn write_now(&self, shard: usize, events: &[&Event]) -> store::Result<Vec<Stored>> {
        let pool = self
            .pools
            .get(shard)
            .ok_or(store::Error::UnknownShard(shard))?;
        let (mut order_slots, mut orders) = (Vec::new(), Vec::<OrderEvent>::new());
        let (mut dispute_slots, mut disputes) = (Vec::new(), Vec::<DisputeEvent>::new());
        for (i, event) in events.iter().enumerate() {
            match event {
                Event::Order(e) => {
                    order_slots.push(i);
                    orders.push(e.clone());
                }
                Event::Dispute(e) => {
                    dispute_slots.push(i);
                    disputes.push(e.clone());
                }
            }
        }
        let mut tx = pool.begin().await.map_err(store::Error::Begin)?;
        let mut outcomes = vec![Stored::AlreadyStored; events.len()];
        if !orders.is_empty() {
            let stored = store::store_order_events(&mut tx, &orders).await?;
            for (&i, outcome) in order_slots.iter().zip(stored) {
                outcomes[i] = outcome;
            }
        }
        if !disputes.is_empty() {
            let stored = store::store_dispute_events(&mut tx, &disputes).await?;
            for (&i, outcome) in dispute_slots.iter().zip(stored) {
                outcomes[i] = outcome;
            }
        }
        tx.commit().await.map_err(store::Error::Commit)?;
        Ok(outcomes)
    }
}
