//! `hookline status`: topics, partitions, lag per partition, rows per shard,
//! DLQ depth, from the manifest and the secrets `hookline up` runs with.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineManifest;
use hookline_contract::secrets::SecretsDir;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::PgPool;

use crate::local::topics;

const TIMEOUT: Duration = Duration::from_secs(10);
const TABLES: [&str; 4] = ["orders", "order_events", "disputes", "dispute_events"];

/// Arguments of `hookline status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The WebhookPipeline manifest.
    #[arg(short = 'f', long = "file", env = "HOOKLINE_PIPELINE")]
    file: PathBuf,
    /// Where the manifest's secret references resolve.
    #[arg(long, env = "HOOKLINE_SECRETS_DIR")]
    secrets_dir: PathBuf,
}

/// Per partition: (end offset, committed offset if any).
type Partitions = Vec<(i64, Option<i64>)>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let manifest = PipelineManifest::read(&args.file)?;
    let bootstrap = manifest.spec.kafka.bootstrap_servers.clone();
    println!("pipeline {} (broker {bootstrap})", manifest.metadata.name);
    for topic in &manifest.spec.topics {
        let (b, name) = (bootstrap.clone(), topic.name.clone());
        let partitions = tokio::task::spawn_blocking(move || offsets(&b, &name)).await??;
        let lag: i64 = partitions
            .iter()
            .map(|(end, committed)| end - committed.unwrap_or(0))
            .sum();
        println!(
            "topic {}: {} partitions, {} records, lag {lag}, DLQ {}",
            topic.name,
            partitions.len(),
            partitions.iter().map(|(end, _)| end).sum::<i64>(),
            topics::depth(&bootstrap, &dlq_topic(&topic.name)).await?
        );
        for (partition, (end, committed)) in partitions.iter().enumerate() {
            let committed = committed.map_or("-".to_owned(), |c| c.to_string());
            println!(
                "  partition {partition}: end {end}, committed {committed}, lag {}",
                end - committed.parse().unwrap_or(0)
            );
        }
    }
    let secrets = SecretsDir::new(&args.secrets_dir);
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

fn offsets(bootstrap: &str, topic: &str) -> anyhow::Result<Partitions> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", topic)
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
    let count = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    let mut wanted = TopicPartitionList::new();
    for p in 0..count {
        wanted.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
    (0..count)
        .map(|p| {
            let (_, end) = consumer.fetch_watermarks(topic, p, TIMEOUT)?;
            let done = committed
                .find_partition(topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            Ok((end, done))
        })
        .collect()
}
