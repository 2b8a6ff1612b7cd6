//! `hookline status`: topics, partitions, lag per partition, rows per shard,
//! DLQ depth, from the manifest and the secrets `hookline up` runs with.

use anyhow::Context;
use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineManifest;
use hookline_contract::secrets::SecretsDir;
use sqlx::PgPool;

use crate::local::{PipelineFiles, topics};

const TABLES: [&str; 4] = ["orders", "order_events", "disputes", "dispute_events"];

/// Arguments of `hookline status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: PipelineFiles,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let manifest = PipelineManifest::read(&args.pipeline.file)?;
    let bootstrap = manifest.spec.kafka.bootstrap_servers.clone();
    println!("pipeline {} (broker {bootstrap})", manifest.metadata.name);
    for topic in &manifest.spec.topics {
        let partitions = topics::offsets(&bootstrap, &topic.name).await?;
        let lag: i64 = partitions
            .iter()
            .map(|p| p.end - p.committed.unwrap_or(0))
            .sum();
        println!(
            "topic {}: {} partitions, {} records, lag {lag}, DLQ {}",
            topic.name,
            partitions.len(),
            partitions.iter().map(|p| p.end).sum::<i64>(),
            topics::depth(&bootstrap, &dlq_topic(&topic.name)).await?
        );
        for (partition, offsets) in partitions.iter().enumerate() {
            let committed = offsets.committed.map_or("-".to_owned(), |c| c.to_string());
            println!(
                "  partition {partition}: end {}, committed {committed}, lag {}",
                offsets.end,
                offsets.end - offsets.committed.unwrap_or(0)
            );
        }
    }
    let secrets = SecretsDir::new(&args.pipeline.secrets_dir);
    for shard in &manifest.spec.shards {
        let url = secrets.read(&shard.database_url_secret_ref)?;
        let pool = PgPool::connect(&url)
            .await
            .with_context(|| format!("connecting to shard {}", shard.name))?;
        let mut counts = Vec::new();
        for table in TABLES {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
            counts.push(format!("{table} {n}"));
        }
        println!("shard {}: {}", shard.name, counts.join(", "));
        pool.close().await;
    }
    Ok(())
}
