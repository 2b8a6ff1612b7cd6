//! Shard databases of a benchmark run: created fresh and migrated, counted,
//! read for receipt-to-row latency, dropped.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{Executor, PgPool};

/// The rows of one phase of a run.
pub struct PhaseRows {
    pub rows: i64,
    /// When the last row was inserted.
    pub last: DateTime<Utc>,
    /// Receipt to row, one per row, with the receipt.
    pub latencies: Vec<Duration>,
    /// The receipt of each row, in the order of `latencies`.
    pub received: Vec<DateTime<Utc>>,
}

/// Adds `stored_at` to `order_events`: the insert's time, for receipt-to-row
/// latency (`stored_at - received_at`, both from this machine's clock). The
/// store names its columns, so it leaves this one to its default.
pub async fn add_stored_at(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(
        "ALTER TABLE order_events ADD COLUMN stored_at timestamptz NOT NULL DEFAULT clock_timestamp()",
    )
    .execute(pool)
    .await
    .context("adding stored_at")?;
    Ok(())
}

/// The rows whose provider event id starts with `evt_<phase>_`, over `pools`.
pub async fn phase_rows(pools: &[PgPool], phase: &str) -> anyhow::Result<PhaseRows> {
    let mut stored = PhaseRows {
        rows: 0,
        last: DateTime::<Utc>::MIN_UTC,
        latencies: Vec::new(),
        received: Vec::new(),
    };
    for pool in pools {
        let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT received_at, stored_at FROM order_events WHERE provider_event_id LIKE $1",
        )
        .bind(format!("evt_{phase}_%"))
        .fetch_all(pool)
        .await?;
        for (received, inserted) in rows {
            stored.rows += 1;
            stored.last = stored.last.max(inserted);
            stored
                .latencies
                .push((inserted - received).to_std().unwrap_or_default());
            stored.received.push(received);
        }
    }
    Ok(stored)
}

/// Two fresh shard databases named after `run`, migrated; their URLs.
pub async fn create(admin_url: &str, run: &str) -> anyhow::Result<[String; 2]> {
    let admin = PgPool::connect(admin_url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {admin_url}"))?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    let mut urls = Vec::new();
    for shard in ["a", "b"] {
        let name = format!("hookline_bench_{run}_{shard}");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        let url = format!("{base}/{name}");
        let pool = PgPool::connect(&url).await?;
        hookline_worker::store::migrate(&pool, chrono::Utc::now()).await?;
        pool.close().await;
        urls.push(url);
    }
    Ok([urls[0].clone(), urls[1].clone()])
}

/// Rows of `order_events` over both shards.
pub async fn count(urls: &[String; 2]) -> anyhow::Result<i64> {
    let mut total = 0;
    for url in urls {
        let pool = PgPool::connect(url).await?;
        total += sqlx::query_scalar::<_, i64>("SELECT count(*) FROM order_events")
            .fetch_one(&pool)
            .await?;
        pool.close().await;
    }
    Ok(total)
}

/// Drops the databases of `urls`, whoever is still connected.
pub async fn drop(admin_url: &str, urls: &[String; 2]) -> anyhow::Result<()> {
    let admin = PgPool::connect(admin_url).await?;
    for url in urls {
        if let Some((_, name)) = url.rsplit_once('/') {
            admin
                .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                .await?;
        }
    }
    Ok(())
}
