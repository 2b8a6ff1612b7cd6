//! The rdkafka admin implementation against the stack's broker (tansu): every
//! operation it supports, and a clear answer for the one it does not.

use hookline_contract::pipeline::TopicDefaults;
use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{AdminError, KafkaAdmin, RdKafkaAdmin};
use hookline_kafka::topics::TopicSettings;

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

    admin
        .create(&topic, 3, &TopicSettings::default())
        .await
        .unwrap();
    settled(&admin, &topic, Some(3)).await;
    let again = admin.create(&topic, 3, &TopicSettings::default()).await;
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
    admin
        .create(&topic, 2, &TopicSettings::default())
        .await
        .unwrap();
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
    admin
        .create(&topic, 1, &TopicSettings::default())
        .await
        .unwrap();
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
    admin
        .create(&doomed, 1, &TopicSettings::default())
        .await
        .unwrap();
    admin
        .create(&bystander, 1, &TopicSettings::default())
        .await
        .unwrap();
    settled(&admin, &bystander, Some(1)).await;
    settled(&admin, &doomed, Some(1)).await;

    admin.delete(&doomed).await.unwrap();

    settled(&admin, &bystander, None).await;
}

/// What `hookline up` and the operator create on the one-broker development
/// broker: a DLQ with `retention.ms=-1` and its `max.message.bytes`, with and
/// without `topicDefaults` that one broker can satisfy.
#[tokio::test]
async fn topics_with_dlq_configs_and_topic_defaults_are_created_on_the_local_broker() {
    let admin = RdKafkaAdmin::new(&ClientSettings::new(bootstrap()), "test").unwrap();
    let one_broker = TopicDefaults {
        replication_factor: Some(1),
        min_insync_replicas: Some(1),
    };
    for defaults in [TopicDefaults::default(), one_broker] {
        let main = unique("settings");
        let dlq = format!("{main}.DLQ");
        admin
            .create(&main, 2, &TopicSettings::main(&defaults))
            .await
            .unwrap();
        admin
            .create(&dlq, 1, &TopicSettings::dlq(&defaults))
            .await
            .unwrap();
        settled(&admin, &main, Some(2)).await;
        settled(&admin, &dlq, Some(1)).await;
        // Not deleted: tansu deletes every topic when asked to delete one
        // (see above), which would pull the topics of the other tests away.
    }
}

/// tansu 0.6.0 checks neither: it creates a topic with three replicas on its
/// one broker, and with a config Kafka does not know. The fake answers as
/// Apache Kafka does (INVALID_REPLICATION_FACTOR, INVALID_CONFIG), which is
/// what a production cluster says; this test notices when tansu starts to.
#[tokio::test]
async fn tansu_accepts_any_replication_factor_and_topic_config() {
    let admin = RdKafkaAdmin::new(&ClientSettings::new(bootstrap()), "test").unwrap();
    let three = TopicSettings::main(&TopicDefaults {
        replication_factor: Some(3),
        min_insync_replicas: Some(2),
    });
    let mut unknown = TopicSettings::default();
    unknown
        .configs
        .insert("no.such.config".to_owned(), "1".to_owned());

    assert_eq!(admin.create(&unique("rf3"), 1, &three).await, Ok(()));
    assert_eq!(admin.create(&unique("config"), 1, &unknown).await, Ok(()));
}

/// What tansu says its cluster id is: pipelines compare these ids, so the
/// answer must be an id or a clear "none", never a guess. tansu reports the id
/// it was started with (`--cluster-id`), the same default for every
/// broker started without one: two such brokers look like one cluster to
/// the operator, which then refuses more than it must, never less.
#[tokio::test]
async fn tansu_reports_its_configured_cluster_id_the_same_default_for_every_broker() {
    let admin = RdKafkaAdmin::new(&ClientSettings::new(bootstrap()), "test").unwrap();
    let private = hookline_testkit::PrivateBroker::start().await;
    let other = RdKafkaAdmin::new(&ClientSettings::new(private.bootstrap.clone()), "test").unwrap();

    let id = admin.cluster_id().await.unwrap();

    assert_eq!(id.as_deref(), Some("tansu_cluster"));
    assert_eq!(admin.cluster_id().await.unwrap(), id, "stable");
    assert_eq!(other.cluster_id().await.unwrap(), id);
}

/// An unreachable broker is an error, not a cluster without an id.
#[tokio::test]
async fn an_unreachable_broker_has_no_answer_rather_than_no_cluster_id() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin =
        RdKafkaAdmin::new(&ClientSettings::new(format!("127.0.0.1:{port}")), "test").unwrap();

    assert!(admin.cluster_id().await.is_err());
}
