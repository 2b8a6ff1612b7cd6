//! Dead-lettering records the worker can never write: the original key, value
//! and headers, plus the reason headers, to `<topic>.DLQ`.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use hookline_contract::headers::dlq;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::decode::Poison;
use crate::{Error, Result};

/// How long a dead-letter record may wait for its ack before the batch is
/// retried (the record stays queued; a retry may add a duplicate).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest dead-letter record: a main-topic record (1 MiB by default at
/// ingest) with room for its reason headers.
const DLQ_MAX_BYTES: &str = "4194304";

/// Why a record could not be dead-lettered; always worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    #[error("the DLQ record was not acknowledged within {0:?}")]
    AckTimeout(Duration),
    #[error("producing the DLQ record failed")]
    Produce(#[source] KafkaError),
}

/// The producer of one topic's DLQ.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub fn new(bootstrap_servers: &str, topic: String) -> Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("client.id", "hookline-worker-dlq")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Records never expire locally; see the ingest producer for why.
            .set("message.timeout.ms", "0")
            // A record of the main topic plus its reason headers must fit.
            .set("message.max.bytes", DLQ_MAX_BYTES)
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(Error::CreateProducer)?;
        Ok(Self { producer, topic })
    }

    /// Sends `record` to the DLQ with `poison`'s reason, and waits for the ack.
    pub async fn send(&self, record: &OwnedMessage, poison: &Poison) -> Result<(), DlqError> {
        let headers = reason_headers(record, poison);
        let mut out = FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = record.key() {
            out = out.key(key);
        }
        if let Some(value) = record.payload() {
            out = out.payload(value);
        }
        let delivery = self
            .producer
            .send_result(out)
            .map_err(|(e, _)| DlqError::Produce(e))?;
        match tokio::time::timeout(ACK_TIMEOUT, delivery).await {
            Err(_) => Err(DlqError::AckTimeout(ACK_TIMEOUT)),
            Ok(Err(_canceled)) => Err(DlqError::Produce(KafkaError::Canceled)),
            Ok(Ok(Err((e, _)))) => Err(DlqError::Produce(e)),
            Ok(Ok(Ok(_))) => Ok(()),
        }
    }
}

/// The original headers followed by the `hookline.errors.*` headers.
fn reason_headers(record: &OwnedMessage, poison: &Poison) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = record.headers() {
        for header in original.iter() {
            headers = headers.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let partition = record.partition().to_string();
    let offset = record.offset().to_string();
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let added: [(&str, &str); 7] = [
        (dlq::TOPIC, record.topic()),
        (dlq::PARTITION, &partition),
        (dlq::OFFSET, &offset),
        (dlq::STAGE, poison.stage.as_str()),
        (dlq::REASON, poison.reason.as_str()),
        (dlq::MESSAGE, &poison.message),
        (dlq::TIMESTAMP, &now),
    ];
    for (key, value) in added {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    headers
}
