//! Producing records and knowing the topics' partition counts.
//!
//! The producer is idempotent with `acks=all`, and never expires a record
//! locally (`message.timeout.ms=0`): a record whose ack does not come in time
//! stays queued and is delivered when the broker is back, while the caller
//! answers 503 from its own deadline. Expiring records instead makes librdkafka
//! bump the producer epoch, which some brokers mishandle; a provider's retry of
//! the same event only adds a duplicate with the same `event_id`, which the
//! worker folds. A full local queue is an immediate 503: backpressure reaches
//! the HTTP caller instead of growing a buffer.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use crate::{Error, Result};

/// How long a metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Producer settings from the command line.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub bootstrap_servers: String,
    /// Records the local queue holds before sends are refused.
    pub queue_capacity: usize,
    /// Kilobytes the local queue holds before sends are refused.
    pub queue_kbytes: usize,
    /// Largest record value; the producer's own limit is raised to fit it.
    pub max_value_bytes: usize,
    /// How long a request waits for the broker's ack.
    pub ack_timeout: Duration,
}

/// One record to produce.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    /// `None` lets the partitioner (murmur2, as Java's) choose.
    pub partition: Option<i32>,
    pub key: Option<&'a str>,
    pub value: &'a [u8],
    pub headers: OwnedHeaders,
}

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
}

/// Why a record was not acknowledged; every variant means "nothing acked".
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("the producer queue is full")]
    QueueFull,
    #[error("the broker did not acknowledge within {0:?}")]
    AckTimeout(Duration),
    #[error("the broker refused the record: {0}")]
    Refused(#[source] KafkaError),
    #[error("the producer shut down before the ack")]
    Canceled,
}

/// What a failed produce means for the webhook's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing was acknowledged but a retry may succeed: 503.
    RetryLater,
    /// The record is too large for the broker: 413, a retry never succeeds.
    TooLarge,
    /// The broker refuses this producer or topic for good (authorization, an
    /// invalid topic or record): an error of the deployment, 500, logged.
    Misconfigured,
}

impl ProduceError {
    /// What the failure means, from the broker's error code by name.
    pub fn verdict(&self) -> Verdict {
        let ProduceError::Refused(error) = self else {
            return Verdict::RetryLater;
        };
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
                Verdict::TooLarge
            }
            Some(
                RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidRequiredAcks
                | RDKafkaErrorCode::UnsupportedVersion,
            ) => Verdict::Misconfigured,
            // Timeouts, leadership changes, unknown (not yet created) topics,
            // lost connections and anything new: retrying is the safe answer.
            _ => Verdict::RetryLater,
        }
    }

    /// A fixed label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            ProduceError::QueueFull => "queue_full",
            ProduceError::AckTimeout(_) => "ack_timeout",
            ProduceError::Refused(_) => "refused",
            ProduceError::Canceled => "canceled",
        }
    }
}

/// The producer and the partition counts it has seen.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
    ack_timeout: Duration,
    partitions: Arc<RwLock<HashMap<String, i32>>>,
}

impl Producer {
    /// Creates the producer; connecting happens in the background.
    pub fn new(settings: &ProducerSettings) -> Result<Self> {
        let inner: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "hookline-ingest")
            // librdkafka's default is CRC32; murmur2 places keys as the Java
            // client and the worker's routing check expect.
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            // Topics are the operator's to create, with their partition counts;
            // a produce must never create one with the broker's defaults.
            .set("allow.auto.create.topics", "false")
            .set("linger.ms", "2")
            .set(
                "queue.buffering.max.messages",
                settings.queue_capacity.to_string(),
            )
            .set(
                "queue.buffering.max.kbytes",
                settings.queue_kbytes.to_string(),
            )
            .set(
                "message.max.bytes",
                (settings.max_value_bytes + 256 * 1024)
                    .max(1_000_000)
                    .to_string(),
            )
            .create()
            .map_err(Error::CreateProducer)?;
        Ok(Self {
            inner,
            ack_timeout: settings.ack_timeout,
            partitions: Arc::default(),
        })
    }

    /// Produces a record and waits for the broker's ack, at most the ack
    /// timeout. On timeout the record stays queued (see the module doc).
    pub async fn send(&self, record: Outgoing<'_>) -> Result<Acked, ProduceError> {
        let mut future_record = FutureRecord::to(record.topic)
            .payload(record.value)
            .headers(record.headers);
        if let Some(key) = record.key {
            future_record = future_record.key(key);
        }
        if let Some(partition) = record.partition {
            future_record = future_record.partition(partition);
        }
        let delivery = match self.inner.send_result(future_record) {
            Ok(delivery) => delivery,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                return Err(ProduceError::QueueFull);
            }
            Err((error, _)) => return Err(ProduceError::Refused(error)),
        };
        match tokio::time::timeout(self.ack_timeout, delivery).await {
            Err(_) => Err(ProduceError::AckTimeout(self.ack_timeout)),
            Ok(Err(_canceled)) => Err(ProduceError::Canceled),
            Ok(Ok(Err((error, _)))) => Err(ProduceError::Refused(error)),
            Ok(Ok(Ok(delivery))) => Ok(Acked {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
        }
    }

    /// The partition count last seen for `topic`.
    pub fn partition_count(&self, topic: &str) -> Option<i32> {
        self.partitions
            .read()
            .ok()
            .and_then(|counts| counts.get(topic).copied())
    }

    /// Asks the broker for the partition counts of `topics`; a topic the broker
    /// does not know keeps no count. Returns the topics without one.
    pub async fn refresh_partition_counts(&self, topics: &[String]) -> Result<Vec<String>> {
        let producer = self.inner.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, METADATA_TIMEOUT)
        })
        .await
        .map_err(Error::BlockingTask)?
        .map_err(Error::FetchMetadata)?;

        let seen: HashMap<String, i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect();
        let mut missing = Vec::new();
        if let Ok(mut counts) = self.partitions.write() {
            for topic in topics {
                match seen.get(topic) {
                    // Partitions only grow; a stale, smaller answer from a
                    // lagging broker must not shrink the count.
                    Some(&n) => {
                        let entry = counts.entry(topic.clone()).or_insert(n);
                        *entry = (*entry).max(n);
                    }
                    None => missing.push(topic.clone()),
                }
            }
        }
        Ok(missing)
    }

    /// Whether the broker answers a metadata request.
    pub async fn broker_reachable(&self) -> bool {
        let producer = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Waits up to `timeout` for queued records to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let producer = self.inner.clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(Error::BlockingTask)?
            .map_err(Error::Flush)
    }
}
