//! The broker places keyed records as Kafka's Java client would, and a consumer
//! group reads them back.

use std::collections::BTreeMap;

use hookline_contract::partition_for;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::kafka::{DEADLINE, bootstrap, create_topic, unique};

const PARTITIONS: i32 = 3;

fn producer() -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        // librdkafka's default is CRC32, which places keys elsewhere than every
        // other Kafka client.
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // Records never expire locally (see the design's notes on the broker):
        // the test's own deadline bounds the wait instead.
        .set("message.timeout.ms", "0")
        .create()
        .unwrap()
}

fn consumer(group: &str) -> StreamConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .set("group.instance.id", format!("{group}-0"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

#[tokio::test]
async fn keyed_records_land_where_the_java_partitioner_puts_them_and_are_read_back() {
    let topic = unique("smoke");
    create_topic(&topic, PARTITIONS).await;
    // `user_1` is the published vector: partition 0 with murmur2, 2 with CRC32.
    let keys: Vec<String> = std::iter::once("user_1".to_owned())
        .chain((0..59).map(|i| format!("user-{i}")))
        .collect();

    let producer = producer();
    let mut produced = BTreeMap::new();
    for key in &keys {
        let record = FutureRecord::to(&topic).key(key).payload(key.as_bytes());
        let send = producer.send(record, Timeout::Never);
        let Ok(acked) = tokio::time::timeout(DEADLINE, send).await else {
            panic!("no ack from {} within {DEADLINE:?}", bootstrap());
        };
        let delivery = acked.unwrap_or_else(|(e, _)| panic!("producing {key} failed: {e}"));
        produced.insert(key.clone(), delivery.partition);
    }

    let expected: BTreeMap<String, i32> = keys
        .iter()
        .map(|k| {
            (
                k.clone(),
                partition_for(k.as_bytes(), PARTITIONS as u32).unwrap() as i32,
            )
        })
        .collect();
    assert_eq!(produced, expected, "acked placement");
    assert_eq!(produced["user_1"], 0);
    let used: std::collections::BTreeSet<i32> = produced.values().copied().collect();
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "keys spread over every partition"
    );

    let consumer = consumer(&unique("smoke-group"));
    consumer.subscribe(&[&topic]).unwrap();
    let mut consumed = BTreeMap::new();
    while consumed.len() < keys.len() {
        let message = tokio::time::timeout(DEADLINE, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {} records read back within {DEADLINE:?}",
                    consumed.len(),
                    keys.len()
                )
            })
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        assert_eq!(message.payload(), Some(key.as_bytes()));
        let earlier = consumed.insert(key.clone(), message.partition());
        assert_eq!(earlier, None, "{key} read twice");
    }
    assert_eq!(consumed, expected, "consumed placement");
}
