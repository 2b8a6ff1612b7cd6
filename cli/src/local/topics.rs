//! A pipeline's topics on the broker: reconciled with the operator's own topic
//! code, and read back (depth, end and committed offsets) for reports.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use hookline_contract::pipeline::PipelineSpec;
use hookline_operator::admin::{AdminError, KafkaAdmin, RdKafkaAdmin};
use hookline_operator::topics::{self, Plan};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates and grows the topics of `spec` and their DLQs as the operator does;
/// returns the partitions each topic has. Problems are reported as the
/// operator reports them, and do not stop the caller.
pub async fn reconcile(spec: &PipelineSpec) -> anyhow::Result<BTreeMap<String, i32>> {
    let admin = RdKafkaAdmin::new(&spec.kafka.bootstrap_servers)
        .context("opening the Kafka admin client")?;
    let wanted = topics::wanted(spec);
    let names: Vec<String> = wanted.iter().map(|(n, _)| n.clone()).collect();
    let before = admin
        .partitions(&names)
        .await
        .context("asking the broker for the topics")?;
    let plans = topics::plan(&wanted, &before);
    for plan in &plans {
        if let Plan::Adopt {
            topic,
            observed,
            spec,
        } = plan
        {
            eprintln!(
                "topic {topic} has {observed} partitions, more than the {spec} of the manifest: workers follow the broker"
            );
        }
    }
    let mut partitions = BTreeMap::new();
    for outcome in topics::apply(&admin, &plans).await {
        match &outcome.problem {
            Some(AdminError::Unsupported(_)) => eprintln!(
                "topic {} stays at {} partitions: this broker does not implement CreatePartitions (KIP-195); grow it with the broker's own tools",
                outcome.topic, outcome.partitions
            ),
            Some(error) => eprintln!("topic {}: {error}", outcome.topic),
            None => {}
        }
        if let Some(change) = outcome.change {
            println!("topic {}: {change:?}", outcome.topic);
        }
        partitions.insert(outcome.topic, outcome.partitions);
    }
    Ok(partitions)
}

/// One partition's end offset and its group's committed offset, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub end: i64,
    pub committed: Option<i64>,
}

/// The offsets of every partition of `topic`, the group being the topic's
/// name (as the workers use it).
pub async fn offsets(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<PartitionOffsets>> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &topic)
            .set("enable.auto.commit", "false")
            .create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), TIMEOUT)?;
        let count = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len() as i32);
        let mut wanted = TopicPartitionList::new();
        for p in 0..count {
            wanted.add_partition(&topic, p);
        }
        let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
        (0..count)
            .map(|p| {
                let (_, end) = consumer.fetch_watermarks(&topic, p, TIMEOUT)?;
                let committed =
                    committed
                        .find_partition(&topic, p)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                Ok(PartitionOffsets { end, committed })
            })
            .collect()
    })
    .await?
}

/// Records in `topic` (the sum of its partitions' end offsets, less what the
/// broker no longer keeps).
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
