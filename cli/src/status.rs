//! `hookline status`: topics, partitions, lag per partition, rows per shard,
//! DLQ depth, from the manifest and the secrets `hookline up` runs with.

use hookline_contract::headers::dlq_topic;
use hookline_kafka::offsets;

use crate::local::{PipelineFiles, shards};

/// Arguments of `hookline status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: PipelineFiles,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let manifest = args.pipeline.manifest()?;
    let kafka = args.pipeline.kafka(&manifest)?;
    println!(
        "pipeline {} (broker {})",
        manifest.metadata.name,
        kafka.bootstrap_servers()
    );
    for topic in &manifest.spec.topics {
        // The workers commit to the group named after their topic.
        let partitions = offsets::offsets(&kafka, &topic.name, &topic.name).await?;
        println!(
            "topic {}: {} partitions, {} records, lag {}, DLQ {}",
            topic.name,
            partitions.len(),
            partitions.iter().map(|p| p.end).sum::<i64>(),
            partitions.iter().map(|p| p.lag()).sum::<i64>(),
            offsets::depth(&kafka, &dlq_topic(&topic.name)).await?
        );
        for p in &partitions {
            let committed = p.committed.map_or("-".to_owned(), |c| c.to_string());
            println!(
                "  partition {}: end {}, committed {committed}, lag {}",
                p.partition,
                p.end,
                p.lag()
            );
        }
    }
    let shards = shards::connect(&manifest.spec, &args.pipeline.secrets()).await?;
    for shard in &shards {
        let rows = shard.rows().await?;
        let counts: Vec<String> = rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
        println!("shard {}: {}", shard.name, counts.join(", "));
    }
    shards::close(shards).await;
    Ok(())
}
