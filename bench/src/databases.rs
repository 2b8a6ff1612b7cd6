//! Shard databases of a benchmark run: created fresh and migrated, counted,
//! dropped.

use anyhow::Context;
use sqlx::{Executor, PgPool};

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
