//! Broker helpers: addresses, unique names, topic creation with a deadline.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use uuid::Uuid;

/// How long any single broker interaction of a test may take.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The stack's broker, overridable for other setups.
pub fn bootstrap() -> String {
    std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

/// Creates `topic` with `partitions` partitions, failing the test with the
/// broker's address when it does not answer in time.
pub async fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let created = tokio::time::timeout(
        DEADLINE,
        admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        ),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the broker at {} did not answer CreateTopics within {DEADLINE:?}; run `scripts/stack up`",
            bootstrap()
        )
    })
    .unwrap();
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => panic!("creating topic {name} failed: {code}"),
        }
    }
}
