//! Creating a pipeline's topics and their DLQs on the broker.

use std::time::Duration;

use anyhow::Context;
use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineSpec;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates every topic of `spec` and its DLQ (one partition) unless it exists.
pub async fn ensure(spec: &PipelineSpec) -> anyhow::Result<()> {
    let bootstrap = &spec.kafka.bootstrap_servers;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let names: Vec<(String, i32)> = spec
        .topics
        .iter()
        .flat_map(|t| [(t.name.clone(), t.partitions), (dlq_topic(&t.name), 1)])
        .collect();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = tokio::time::timeout(TIMEOUT * 2, admin.create_topics(&new, &options))
        .await
        .with_context(|| format!("the broker at {bootstrap} did not answer CreateTopics"))??;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic} failed: {code}"),
        }
    }
    Ok(())
}

/// Records in `topic` (the sum of its partitions' end offsets).
pub async fn depth(bootstrap: &str, topic: &str) -> anyhow::Result<i64> {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), TIMEOUT)?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        let mut total = 0;
        for partition in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(&topic, partition, TIMEOUT)?;
            total += high - low;
        }
        Ok(total)
    })
    .await?
}
