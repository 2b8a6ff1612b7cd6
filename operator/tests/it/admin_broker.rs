//! The rdkafka admin implementation against the stack's broker (tansu): every
//! operation it supports, and a clear answer for the one it does not.

use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{AdminError, KafkaAdmin, RdKafkaAdmin};

fn bootstrap() -> String {
    std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The broker applies a CreateTopics or DeleteTopics shortly after answering
/// it: waits until `topic` has `partitions` partitions (None: is gone).
async fn settled(admin: &RdKafkaAdmin, topic: &str, partitions: Option<i32>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let seen = admin.partitions(&[topic.to_owned()]).await.unwrap();
        if seen.get(topic).copied() == partitions {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic}: {seen:?}, expected {partitions:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn topics_are_created_and_described_with_the_brokers_error_codes() {
    let admin = RdKafkaAdmin::new(&ClientSettings::new(bootstrap()), "test").unwrap();
    let topic = unique("admin");

    admin.create(&topic, 3).await.unwrap();
    settled(&admin, &topic, Some(3)).await;
    let again = admin.create(&topic, 3).await;
    let seen = admin
        .partitions(&[topic.clone(), unique("missing")])
        .await
        .unwrap();

    assert_eq!(again, Err(AdminError::TopicAlreadyExists(topic.clone())));
    assert_eq!(
        seen,
        std::collections::HashMap::from([(topic.clone(), 3)]),
        "only the topic that exists"
    );
}

#[tokio::test]
async fn growing_on_a_broker_without_create_partitions_is_unsupported() {
    let admin = RdKafkaAdmin::new(&ClientSettings::new(bootstrap()), "test").unwrap();
    let topic = unique("grow");
    admin.create(&topic, 2).await.unwrap();
    settled(&admin, &topic, Some(2)).await;

    let grown = admin.grow(&topic, 4).await;

    assert_eq!(grown, Err(AdminError::Unsupported("CreatePartitions")));
    let seen = admin
        .partitions(std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(seen.get(&topic), Some(&2), "{seen:?}");
}

/// On a broker of its own: tansu 0.6.0's DeleteTopics removes every topic, not
/// only the one named, so deleting must never touch the shared broker.
#[tokio::test]
async fn deleting_a_topic_removes_it_and_a_second_delete_is_unknown_topic() {
    let broker = hookline_testkit::PrivateBroker::start().await;
    let admin = RdKafkaAdmin::new(&ClientSettings::new(broker.bootstrap.clone()), "test").unwrap();
    let topic = unique("delete");
    admin.create(&topic, 1).await.unwrap();
    settled(&admin, &topic, Some(1)).await;

    admin.delete(&topic).await.unwrap();
    settled(&admin, &topic, None).await;

    assert_eq!(
        admin.delete(&topic).await,
        Err(AdminError::UnknownTopic(topic.clone()))
    );
}

/// Pins the broker defect the operator works around: if this starts failing,
/// tansu deletes only the named topic and the warning can go.
#[tokio::test]
async fn tansu_deletes_every_topic_when_asked_to_delete_one() {
    let broker = hookline_testkit::PrivateBroker::start().await;
    let admin = RdKafkaAdmin::new(&ClientSettings::new(broker.bootstrap.clone()), "test").unwrap();
    let (doomed, bystander) = (unique("doomed"), unique("bystander"));
    admin.create(&doomed, 1).await.unwrap();
    admin.create(&bystander, 1).await.unwrap();
    settled(&admin, &bystander, Some(1)).await;
    settled(&admin, &doomed, Some(1)).await;

    admin.delete(&doomed).await.unwrap();

    settled(&admin, &bystander, None).await;
}
