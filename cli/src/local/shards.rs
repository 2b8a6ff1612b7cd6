//! A pipeline's shards as the tools see them: connected from the manifest's
//! secret references, and counted table by table.

use std::collections::BTreeMap;

use anyhow::Context;
use hookline_contract::event_types;
use hookline_contract::pipeline::PipelineSpec;
use hookline_contract::secrets::SecretsDir;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// One shard, connected.
pub struct Shard {
    pub name: String,
    pub pool: PgPool,
}

/// Rows per table of one shard, for every table of every event type.
pub type Rows = BTreeMap<&'static str, i64>;

/// Connects to every shard of `spec`, in the manifest's order (a user's shard
/// is its index in that order).
pub async fn connect(spec: &PipelineSpec, secrets: &SecretsDir) -> anyhow::Result<Vec<Shard>> {
    let mut shards = Vec::with_capacity(spec.shards.len());
    for shard in &spec.shards {
        let url = secrets.shard_url(shard)?;
        // The tools run one query at a time per shard.
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .with_context(|| format!("connecting to shard {}", shard.name))?;
        shards.push(Shard {
            name: shard.name.clone(),
            pool,
        });
    }
    Ok(shards)
}

/// Closes every pool, so that the server sees the tools leave at once.
pub async fn close(shards: Vec<Shard>) {
    for shard in shards {
        shard.pool.close().await;
    }
}

impl Shard {
    /// Rows of every table of every event type.
    pub async fn rows(&self) -> anyhow::Result<Rows> {
        let mut rows = Rows::new();
        for table in event_types::tables() {
            // Table names come from the registry, never from input.
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await
                .with_context(|| format!("counting {table} on shard {}", self.name))?;
            rows.insert(table, n);
        }
        Ok(rows)
    }
}
