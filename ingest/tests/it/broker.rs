//! The broker side of the tests: topics, reading records back, and a private
//! broker process a test may stop and start.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::types::RDKafkaErrorCode;
use uuid::Uuid;

/// How long one broker interaction of a test may take.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The stack's broker, overridable for other setups.
pub fn stack_bootstrap() -> String {
    std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

/// Creates `topics` (name, partitions), failing loudly when the broker does not
/// answer in time.
pub async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(DEADLINE));
    let created = tokio::time::timeout(DEADLINE, admin.create_topics(&new, &options))
        .await
        .unwrap_or_else(|_| {
            panic!("the broker at {bootstrap} did not answer CreateTopics; run `scripts/stack up`")
        })
        .unwrap();
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => panic!("creating topic {name} failed: {code}"),
        }
    }
}

/// A record as read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Reads `topic` from the start until `count` records arrived.
pub async fn read(bootstrap: &str, topic: &str, count: usize) -> Vec<Record> {
    read_until(bootstrap, topic, |records| records.len() >= count).await
}

/// Reads `topic` from the start until `done` holds for the records read.
pub async fn read_until(
    bootstrap: &str,
    topic: &str,
    done: impl Fn(&[Record]) -> bool,
) -> Vec<Record> {
    let group = unique("it-reader");
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("group.instance.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut records = Vec::new();
    while !done(&records) {
        let message = tokio::time::timeout(DEADLINE, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{topic}: only {} records read within {DEADLINE:?}",
                    records.len()
                )
            })
            .unwrap();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                        (h.key.to_owned(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    records
}

/// How many records `topic` holds (the sum of its partitions' high watermarks).
pub async fn depth(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("it-depth"))
        .create()
        .unwrap();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        (0..partitions)
            .map(|p| consumer.fetch_watermarks(&topic, p, DEADLINE).unwrap().1)
            .sum()
    })
    .await
    .unwrap()
}

pub use hookline_testkit::PrivateBroker;
