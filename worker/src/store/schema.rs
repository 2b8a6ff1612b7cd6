//! Keeping every shard's schema current while the worker runs: each shard is
//! migrated on its own, so that a shard that is down at startup holds up only
//! its own writes (they fail as transient and are retried, like any write to
//! a shard that is down), and the months ahead of `dispute_events` are
//! partitioned by a periodic check, not only at startup.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{PARTITION_MONTHS_AHEAD, Pools, ensure_dispute_partitions, migrate};
use crate::backoff::Backoff;

/// How often each shard's months ahead are checked. A month's partition is
/// made [`PARTITION_MONTHS_AHEAD`] months before it starts, so a check a day
/// is plenty; an hour keeps a shard that came back late from waiting long.
pub const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(3_600);

/// Migrates every shard concurrently, each retried with backoff until it
/// answers, then checks its partitions every `every`; returns at `shutdown`.
pub async fn maintain(pools: Pools, every: Duration, shutdown: CancellationToken) {
    let mut shards = JoinSet::new();
    for (name, pool) in pools.iter() {
        shards.spawn(maintain_shard(
            name.to_owned(),
            pool.clone(),
            every,
            shutdown.clone(),
        ));
    }
    while shards.join_next().await.is_some() {}
}

async fn maintain_shard(shard: String, pool: PgPool, every: Duration, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    while let Err(error) = migrate(&pool, Utc::now()).await {
        let delay = backoff.next_delay();
        tracing::warn!(shard, error = %error, cause = %hookline_runtime::root_cause(&error), ?delay,
            "migrating shard failed; its writes wait, the other shards' do not; retrying");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
    tracing::info!(shard, "shard schema up to date");
    let mut ticks = tokio::time::interval(every);
    // The first tick is immediate and migrate has just made the partitions.
    ticks.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match ensure_dispute_partitions(&pool, Utc::now(), PARTITION_MONTHS_AHEAD + 1).await {
            Ok(partitions) => {
                tracing::debug!(shard, ?partitions, "dispute_events partitions ready")
            }
            // The next tick retries; rows of a month without its partition
            // land in DEFAULT meanwhile and are moved when it is made.
            Err(error) => {
                tracing::warn!(shard, error = %error, cause = %hookline_runtime::root_cause(&error),
                "making the months ahead of dispute_events failed")
            }
        }
    }
}
