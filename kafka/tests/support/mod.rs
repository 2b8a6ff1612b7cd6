//! What the crate's test binaries share.

use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{KafkaAdmin, RdKafkaAdmin};
use hookline_kafka::topics::TopicSettings;
use hookline_testkit::eventually;

/// A new topic named `<prefix>-<uuid>` with `partitions`, once the broker
/// lists it.
pub async fn new_topic(settings: &ClientSettings, prefix: &str, partitions: i32) -> String {
    let topic = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
    let admin = RdKafkaAdmin::new(settings, &format!("{prefix}-test")).unwrap();
    admin
        .create(&topic, partitions, &TopicSettings::default())
        .await
        .unwrap();
    eventually("the topic exists", || async {
        admin
            .partitions(std::slice::from_ref(&topic))
            .await
            .is_ok_and(|p| p.get(&topic) == Some(&partitions))
    })
    .await;
    topic
}
