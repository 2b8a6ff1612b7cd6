//! `produce::Producer` against the real broker: what a caller holding a
//! `Delivery` is told.

use std::time::Duration;

use hookline_kafka::ClientSettings;
use hookline_kafka::produce::{ProduceError, Producer, Record};
use rdkafka::message::OwnedHeaders;

use crate::support::new_topic;

fn bootstrap() -> String {
    std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

#[tokio::test]
async fn a_delivery_is_acked_once_and_waiting_for_it_again_is_canceled() {
    let settings = ClientSettings::new(bootstrap());
    let topic = new_topic(&settings, "produce", 2).await;
    let producer =
        Producer::new(&settings.producer("produce-test"), Duration::from_secs(30)).unwrap();

    let mut delivery = producer
        .enqueue(Record {
            topic: &topic,
            partition: Some(1),
            key: Some(b"user-1"),
            value: Some(b"{}"),
            headers: OwnedHeaders::new(),
        })
        .unwrap();
    let acked = producer.delivered(&mut delivery).await.unwrap();
    assert_eq!((acked.partition, acked.offset), (1, 0));

    let again = producer.delivered(&mut delivery).await;
    assert!(matches!(again, Err(ProduceError::Canceled)), "{again:?}");
}
