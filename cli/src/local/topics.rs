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
pub async fn reconcile(
    spec: &PipelineSpec,
    kafka: &ClientSettings,
) -> anyhow::Result<BTreeMap<String, i32>> {
    let admin =
        RdKafkaAdmin::new(kafka, "hookline-up").context("opening the Kafka admin client")?;
    let declared = topics::declared(spec);
    let names: Vec<String> = declared.iter().map(|d| d.name.clone()).collect();
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

#[cfg(test)]
mod tests {
    use hookline_contract::pipeline::PipelineManifest;

    use super::*;

    fn bootstrap() -> String {
        std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
    }

    /// `hookline up` on the one-broker development broker, with the settings
    /// a production spec carries that one broker can satisfy: the topics and
    /// their DLQs (`retention.ms=-1`, a larger `max.message.bytes`) are
    /// created, and a second run changes nothing.
    #[tokio::test]
    async fn up_creates_topics_with_topic_defaults_and_dlq_configs_on_the_local_broker() {
        let topic = format!("up-settings-{}", uuid::Uuid::new_v4().simple());
        let manifest = PipelineManifest::from_yaml(&format!(
            "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: p}}\nspec:\n  kafka:\n    bootstrapServers: \"{}\"\n    topicDefaults: {{replicationFactor: 1, minInsyncReplicas: 1}}\n  topics: [{{name: {topic}, eventType: orders, partitions: 2}}]\n  shards: [{{name: a, databaseUrlSecretRef: {{name: pg, key: url}}, poolSize: 2}}]\n  ingest: {{signingSecretRef: {{name: s}}}}\n",
            bootstrap()
        ))
        .unwrap();
        let dlq = hookline_contract::headers::dlq_topic(&topic);
        let expected = BTreeMap::from([(topic.clone(), 2), (dlq.clone(), 1)]);

        let kafka = ClientSettings::new(bootstrap());
        let first = reconcile(&manifest.spec, &kafka).await.unwrap();
        assert_eq!(first, expected);
        // The broker applies a CreateTopics shortly after answering it.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let again = reconcile(&manifest.spec, &kafka).await.unwrap();
            if again == expected {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{again:?}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}
