//! The shards' connection pools, and a shard's part of a batch written in one
//! transaction within a deadline.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{Error, Event, Result, Stored};

/// How long a write waits for a connection before it counts as failed
/// (transient: the shard is retried).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one shard transaction may take, unless set with
/// [`Pools::with_write_timeout`].
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One pool per shard, in the manifest's order: the shard index is
/// `murmur2(user_id) % shards`.
#[derive(Clone)]
pub struct Pools {
    shards: Vec<Shard>,
    write_timeout: Duration,
}

#[derive(Clone)]
struct Shard {
    name: String,
    pool: PgPool,
}

impl Pools {
    /// Pools that connect on first use, so that a shard that is down at
    /// startup delays only its own writes. `urls` are (name, connection
    /// string) pairs; `connections` the size of each one's pool, in the same
    /// order (a shard without one gets a single connection).
    pub fn connect_lazy(
        urls: &[(String, String)],
        connections: &[u32],
    ) -> Result<Self, sqlx::Error> {
        let shards = urls
            .iter()
            .enumerate()
            .map(|(index, (name, url))| {
                let size = connections.get(index).copied().unwrap_or(1).max(1);
                let pool = PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy(url)?;
                Ok(Shard {
                    name: name.clone(),
                    pool,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Self {
            shards,
            write_timeout: WRITE_TIMEOUT,
        })
    }

    /// Cuts a shard transaction short after `timeout`: a backstop behind the
    /// caller's own deadline, which must be the one to run out (the caller
    /// splits a batch that outlives its deadline; a cut here is only retried).
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    pub fn count(&self) -> u32 {
        self.shards.len() as u32
    }

    pub fn name(&self, shard: usize) -> &str {
        self.shards.get(shard).map_or("?", |s| s.name.as_str())
    }

    /// Each shard's name and pool, in shard order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PgPool)> {
        self.shards.iter().map(|s| (s.name.as_str(), &s.pool))
    }

    /// Writes `events` to `shard` in one transaction, within its write timeout;
    /// one outcome per event. A write cut short is rolled back with its
    /// connection and counts as transient.
    pub async fn write<E: Event>(
        &self,
        shard: usize,
        events: &[E],
        payloads: &[&str],
    ) -> Result<Vec<Stored>> {
        tokio::time::timeout(self.write_timeout, self.write_now(shard, events, payloads))
            .await
            .unwrap_or(Err(Error::Timeout(self.write_timeout)))
    }

    async fn write_now<E: Event>(
        &self,
        shard: usize,
        events: &[E],
        payloads: &[&str],
    ) -> Result<Vec<Stored>> {
        let pool = &self
            .shards
            .get(shard)
            .ok_or(Error::UnknownShard(shard))?
            .pool;
        let mut tx = pool.begin().await.map_err(Error::Begin)?;
        let outcomes = E::store_batch(&mut tx, events, payloads).await?;
        tx.commit().await.map_err(Error::Commit)?;
        Ok(outcomes)
    }
}
