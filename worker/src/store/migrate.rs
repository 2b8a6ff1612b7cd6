//! The shard schema: migrations and the month partitions of `dispute_events`.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use super::{Error, Result};

/// The migrations in `migrations/`, embedded at build time; the same on every
/// shard.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Months of `dispute_events` partitions kept ready beyond the current one.
/// Events outside them still land in the DEFAULT partition.
pub const PARTITION_MONTHS_AHEAD: i32 = 3;

/// Applies pending migrations under sqlx's migration lock (an advisory lock, so
/// that workers starting together migrate once), then makes sure the partitions
/// of this month and the next [`PARTITION_MONTHS_AHEAD`] exist.
pub async fn migrate(pool: &PgPool, now: DateTime<Utc>) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(Error::Migrate)?;
    ensure_dispute_partitions(pool, now, PARTITION_MONTHS_AHEAD + 1).await?;
    Ok(())
}

/// Makes sure `dispute_events` has the partitions of `months` months from the
/// month of `from`, moving rows of those months out of the DEFAULT partition;
/// returns their names.
pub async fn ensure_dispute_partitions(
    pool: &PgPool,
    from: DateTime<Utc>,
    months: i32,
) -> Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT p AS "p!" FROM hookline_ensure_dispute_events_partitions($1, $2) AS p"#,
        from.date_naive(),
        months,
    )
    .fetch_all(pool)
    .await
    .map_err(Error::EnsurePartitions)
}
