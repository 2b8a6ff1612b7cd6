//! Kafka over TLS for real: a broker of the test's own behind stunnel, with a
//! CA the test makes. The clients are built by `ClientSettings` exactly as
//! ingest, the workers, the operator and the CLI build them.
//!
//! SASL is not exercised here: tansu 0.6.0 authenticates no SASL client (its
//! `--authentication` flag does not make it answer SaslHandshake), so the
//! SASL settings are tested as the key/value pairs librdkafka receives
//! (`client.rs`).

use std::sync::mpsc;
use std::time::Duration;

use hookline_kafka::ClientSettings;
use hookline_kafka::security::{Pem, Security, Tls};
use hookline_testkit::DEADLINE;
use hookline_testkit::tls::TlsBroker;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, TopicPartitionList};

use crate::support::new_topic;

fn with_ca(bootstrap: &str, ca: std::path::PathBuf) -> ClientSettings {
    ClientSettings::new(bootstrap).with_security(Security {
        tls: Some(Tls {
            ca: Some(Pem::File(ca)),
            client: None,
        }),
        sasl: None,
    })
}

#[tokio::test]
async fn records_round_trip_through_tls_with_the_brokers_ca() {
    let broker = TlsBroker::start().await;
    let settings = with_ca(&broker.bootstrap, broker.certificates.ca());
    let topic = new_topic(&settings, "tls", 1).await;

    let producer: FutureProducer = settings.producer("tls-test").create().unwrap();
    let delivery = producer
        .send(
            FutureRecord::to(&topic).key("k").payload("over tls"),
            DEADLINE,
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    let consumer: BaseConsumer = settings.reader(&topic).create().unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(
            &topic,
            delivery.partition,
            rdkafka::Offset::Offset(delivery.offset),
        )
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let payload = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no record within {DEADLINE:?}"
            );
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.unwrap();
                return message.payload().map(|p| p.to_vec());
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(payload.as_deref(), Some(&b"over tls"[..]));
}

/// Hands librdkafka's error callbacks to the test: what a user finds in the
/// log (the default context logs exactly these).
struct Errors(mpsc::Sender<String>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        let _ = self.0.send(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Errors {}

#[tokio::test]
async fn a_broker_signed_by_another_ca_is_refused_naming_the_tls_failure() {
    let broker = TlsBroker::start().await;
    let settings = with_ca(&broker.bootstrap, broker.certificates.other_ca());
    let (errors, received) = mpsc::channel();
    let consumer: BaseConsumer<Errors> = settings
        .admin("tls-wrong-ca")
        .create_with_context(Errors(errors))
        .unwrap();

    let found = tokio::task::spawn_blocking(move || {
        // A metadata request makes the client connect; it cannot succeed.
        let metadata = consumer.fetch_metadata(None, Duration::from_secs(5));
        assert!(
            metadata.is_err(),
            "metadata through an untrusted broker: {metadata:?}"
        );
        let deadline = std::time::Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        loop {
            // Polling serves the error callbacks.
            let _ = consumer.poll(Duration::from_millis(100));
            while let Ok(error) = received.try_recv() {
                if error.contains("SSL handshake failed") {
                    return error;
                }
                seen.push(error);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no TLS error within {DEADLINE:?}; errors seen: {seen:?}"
            );
        }
    })
    .await
    .unwrap();
    assert!(found.contains("certificate verify failed"), "{found}");
}
