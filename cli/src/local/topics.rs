//! A pipeline's topics on the broker, reconciled with the operator's own topic
//! code and reported in the operator's words.

use std::collections::BTreeMap;

use anyhow::Context;
use hookline_contract::pipeline::PipelineSpec;
use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{AdminError, KafkaAdmin, RdKafkaAdmin};
use hookline_kafka::topics::{self, TopicPlan};

/// Creates and grows the topics of `spec` and their DLQs as the operator does;
/// returns the partitions each topic has. Problems are reported as the
/// operator reports them, and do not stop the caller.
pub async fn reconcile(spec: &PipelineSpec) -> anyhow::Result<BTreeMap<String, i32>> {
    let admin = RdKafkaAdmin::new(&ClientSettings::of(&spec.kafka), "hookline-up")
        .context("opening the Kafka admin client")?;
    let declared = topics::declared(spec);
    let names: Vec<String> = declared.iter().map(|(n, _)| n.clone()).collect();
    let before = admin
        .partitions(&names)
        .await
        .context("asking the broker for the topics")?;
    let plans = topics::plan(&declared, &before);
    for plan in &plans {
        if let TopicPlan::Adopt {
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
