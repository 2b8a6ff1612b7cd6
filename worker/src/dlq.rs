//! Dead-lettering records the worker can never write: the original key, value
//! and headers, plus the reason headers, to `<topic>.DLQ`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hookline_kafka::produce::{ProduceError, Producer, Record};
use hookline_kafka::{ClientSettings, DeadLetter};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Message};

use crate::decode::Poison;
use crate::{Error, Result};

/// How long a dead-letter record may wait for its ack before the batch is
/// retried (the record stays queued; a retry may add a duplicate).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest dead-letter record: a main-topic record (1 MiB by default at
/// ingest) with room for its reason headers.
const DLQ_MAX_BYTES: &str = "4194304";

/// The producer of one topic's DLQ.
pub struct DeadLetters {
    producer: Producer,
    topic: String,
}

impl DeadLetters {
    pub fn new(kafka: &ClientSettings, topic: String) -> Result<Self> {
        let producer = Producer::new(&producer_config(kafka), ACK_TIMEOUT)
            .map_err(|e| Error::CreateProducer(Box::new(e)))?;
        Ok(Self { producer, topic })
    }

    /// Sends `record` to the DLQ with `poison`'s reason, and waits for the ack.
    /// Every failure is worth a retry: a record that cannot be dead-lettered
    /// must hold its partition rather than be skipped.
    pub async fn send(&self, record: &OwnedMessage, poison: &Poison) -> Result<(), ProduceError> {
        let letter = letter(record, poison, Utc::now());
        self.producer
            .send(Record {
                topic: &self.topic,
                partition: None,
                key: record.key(),
                value: record.payload(),
                headers: letter.headers(record.headers()),
            })
            .await
            .map(|_| ())
    }
}

/// The shared producer settings, with room for a main-topic record and its
/// reason headers.
fn producer_config(kafka: &ClientSettings) -> ClientConfig {
    let mut config = kafka.producer("hookline-worker-dlq");
    config.set("message.max.bytes", DLQ_MAX_BYTES);
    config
}

/// The dead-letter context of `record`: where it was read, and why it is
/// refused.
fn letter(record: &OwnedMessage, poison: &Poison, at: DateTime<Utc>) -> DeadLetter {
    DeadLetter {
        topic: record.topic().to_owned(),
        origin: Some((record.partition(), record.offset())),
        stage: poison.stage,
        reason: poison.reason,
        message: poison.message.clone(),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use hookline_contract::Reason;
    use hookline_contract::reason::Stage;
    use hookline_kafka::Envelope;
    use rdkafka::Timestamp;
    use rdkafka::message::Headers;

    fn record() -> OwnedMessage {
        let envelope = Envelope {
            event_id: hookline_contract::event_id("stripe", "evt_1"),
            event_type: "order.paid".into(),
            source: "stripe".into(),
            received_at: Utc::now(),
            partition_count: 4,
            schema: "orders/v1".into(),
        };
        OwnedMessage::new(
            Some(b"{}".to_vec()),
            Some(b"user-1".to_vec()),
            "orders.webhooks".into(),
            Timestamp::NotAvailable,
            3,
            41,
            Some(envelope.to_headers()),
        )
    }

    #[test]
    fn a_letter_says_where_the_record_was_read_and_keeps_its_headers() {
        let poison = Poison {
            stage: Stage::Write,
            reason: Reason::ConstraintViolation,
            message: "SQLSTATE 22P05".into(),
        };
        let record = record();
        // Headers carry milliseconds.
        let at = Utc.timestamp_millis_opt(1_795_000_000_500).unwrap();
        let letter = letter(&record, &poison, at);
        assert_eq!(letter.topic, "orders.webhooks");
        assert_eq!(letter.origin, Some((3, 41)));
        assert_eq!(
            (letter.stage, letter.reason),
            (Stage::Write, Reason::ConstraintViolation)
        );
        let headers = letter.headers(record.headers());
        assert_eq!(
            DeadLetter::from_headers(Some(&headers)).as_ref(),
            Ok(&letter)
        );
        assert!(Envelope::from_headers(Some(&headers)).is_ok());
        assert!(headers.count() > 7);
    }

    #[test]
    fn dead_letters_never_expire_and_fit_a_main_topic_record() {
        let config = producer_config(&ClientSettings::new("b:9092"));
        assert_eq!(config.get("message.max.bytes"), Some(DLQ_MAX_BYTES));
        assert_eq!(config.get("message.timeout.ms"), Some("0"));
        assert_eq!(config.get("acks"), Some("all"));
    }
}
