//! Producing records, and knowing the topics' partition counts.
//!
//! The Kafka side is `hookline_kafka`'s: an idempotent producer with
//! `acks=all` that never expires a record locally, so a record whose ack does
//! not come in time stays queued and is delivered once the broker is back,
//! while the request answers from its own deadline. What is ingest's own is
//! the size of its queue and the partition counts it places records with:
//! ingest places every record itself (see [`crate::record`]), so it must know
//! each topic's count, and it is not ready until it knows all of them.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use hookline_kafka::ClientSettings;
use hookline_kafka::produce::{self, Acked, ProduceError, Record};
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// The `client.id` the broker sees.
const CLIENT_ID: &str = "hookline-ingest";
/// How often partition counts are re-read, so that grown topics are used.
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// How long a readiness probe waits for the broker: less than the probe's
/// own timeout, so that a silent broker is reported rather than timed out.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the periodic refresh of partition counts may wait for the broker.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);
/// Room in a request for the record's headers and framing, beyond the body.
const RECORD_OVERHEAD_BYTES: usize = 256 * 1024;
/// librdkafka's own default `message.max.bytes`, never lowered.
const MIN_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// What ingest sets on its producer beyond the shared Kafka settings.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub client: ClientSettings,
    /// Records the local queue holds before sends are refused.
    pub queue_capacity: usize,
    /// Kilobytes the local queue holds before sends are refused.
    pub queue_kbytes: usize,
    /// Largest record value; the producer's own limit is raised to fit it.
    pub max_value_bytes: usize,
    /// How long a request waits for the broker's ack.
    pub ack_timeout: Duration,
}

impl ProducerSettings {
    /// The shared producer settings plus ingest's queue and size limits. A
    /// bounded queue is what turns a slow broker into 503s at once instead of
    /// a buffer that grows until the process is killed.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = self.client.producer(CLIENT_ID);
        config
            // A webhook waits for its ack: batching may delay it only a little.
            .set("linger.ms", "2")
            .set(
                "queue.buffering.max.messages",
                self.queue_capacity.to_string(),
            )
            .set("queue.buffering.max.kbytes", self.queue_kbytes.to_string())
            .set(
                "message.max.bytes",
                (self.max_value_bytes + RECORD_OVERHEAD_BYTES)
                    .max(MIN_MESSAGE_MAX_BYTES)
                    .to_string(),
            );
        config
    }
}

/// The producer and the partition counts it places records with.
pub struct Producer {
    kafka: produce::Producer,
    /// By topic; only topics the broker listed with at least one partition.
    counts: RwLock<HashMap<String, u32>>,
}

impl Producer {
    /// Creates the producer; connecting happens in the background.
    pub fn new(settings: &ProducerSettings) -> Result<Self> {
        let kafka = produce::Producer::new(&settings.client_config(), settings.ack_timeout)
            .map_err(|e| Error::CreateProducer(Box::new(e)))?;
        Ok(Self {
            kafka,
            counts: RwLock::default(),
        })
    }

    /// Produces `record` and waits for its ack, at most the ack timeout.
    pub async fn send(&self, record: Record<'_>) -> Result<Acked, ProduceError> {
        self.kafka.send(record).await
    }

    /// The partition count last seen for `topic`.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.counts
            .read()
            .ok()
            .and_then(|counts| counts.get(topic).copied())
    }

    /// Asks the broker for the partition counts of `topics`; returns the
    /// topics it does not list, which keep no count.
    pub async fn refresh(&self, topics: &[String]) -> Result<Vec<String>> {
        let seen = self
            .kafka
            .partition_counts(REFRESH_TIMEOUT)
            .await
            .map_err(|e| Error::FetchPartitionCounts(Box::new(e)))?;
        let mut missing = Vec::new();
        if let Ok(mut counts) = self.counts.write() {
            for topic in topics {
                match seen.get(topic).and_then(|&n| u32::try_from(n).ok()) {
                    Some(n) => grow(&mut counts, topic, n),
                    None => missing.push(topic.clone()),
                }
            }
        }
        Ok(missing)
    }

    /// Refreshes the counts of `topics` now and every few seconds until
    /// `shutdown`, so that a topic created late or grown is used.
    pub async fn keep_counts_fresh(&self, topics: &[String], shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.refresh(topics).await {
                Ok(missing) if missing.is_empty() => {}
                Ok(missing) => tracing::warn!(?missing, "topics not found on the broker"),
                Err(error) => tracing::warn!(error = %error, "refreshing partition counts failed"),
            }
        }
    }

    /// Ready when the broker answers and every one of `topics` has a count:
    /// before that, a webhook could only be answered 503. Otherwise why not,
    /// for an operator.
    pub async fn readiness(&self, topics: &[String]) -> Result<(), String> {
        if self.kafka.partition_counts(PROBE_TIMEOUT).await.is_err() {
            return Err("the broker does not answer".to_owned());
        }
        let unseen: Vec<&str> = topics
            .iter()
            .map(String::as_str)
            .filter(|topic| self.partition_count(topic).is_none())
            .collect();
        if unseen.is_empty() {
            Ok(())
        } else {
            Err(format!("topics not seen yet: {}", unseen.join(", ")))
        }
    }

    /// Waits up to `timeout` for queued records to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        self.kafka
            .flush(timeout)
            .await
            .map_err(|e| Error::Flush(Box::new(e)))
    }
}

/// Records `n` partitions for `topic`. Partitions only grow: a stale, smaller
/// answer from a lagging broker must not shrink the count placement uses.
fn grow(counts: &mut HashMap<String, u32>, topic: &str, n: u32) {
    if n == 0 {
        return;
    }
    let count = counts.entry(topic.to_owned()).or_insert(n);
    *count = (*count).max(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ProducerSettings {
        ProducerSettings {
            client: ClientSettings::new("127.0.0.1:9"),
            queue_capacity: 10,
            queue_kbytes: 64,
            max_value_bytes: 4 * 1024 * 1024,
            ack_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn ingest_adds_its_limits_to_the_shared_producer_settings() {
        let config = settings().client_config();
        assert_eq!(config.get("message.timeout.ms"), Some("0"));
        assert_eq!(config.get("partitioner"), Some("murmur2_random"));
        assert_eq!(config.get("client.id"), Some(CLIENT_ID));
        assert_eq!(config.get("queue.buffering.max.messages"), Some("10"));
        assert_eq!(config.get("queue.buffering.max.kbytes"), Some("64"));
        let max = (4 * 1024 * 1024 + RECORD_OVERHEAD_BYTES).to_string();
        assert_eq!(config.get("message.max.bytes"), Some(max.as_str()));
    }

    #[test]
    fn a_small_body_limit_never_lowers_the_record_limit() {
        let small = ProducerSettings {
            max_value_bytes: 1024,
            ..settings()
        };
        let config = small.client_config();
        assert_eq!(config.get("message.max.bytes"), Some("1000000"));
    }

    #[test]
    fn counts_only_grow() {
        let mut counts = HashMap::new();
        grow(&mut counts, "orders", 4);
        grow(&mut counts, "orders", 2);
        grow(&mut counts, "disputes", 0);
        assert_eq!(counts.get("orders"), Some(&4));
        grow(&mut counts, "orders", 8);
        assert_eq!(counts.get("orders"), Some(&8));
        assert_eq!(counts.get("disputes"), None);
    }

    #[tokio::test]
    async fn unknown_counts_and_a_silent_broker_are_not_ready() {
        let producer = Producer::new(&settings()).unwrap();
        assert_eq!(producer.partition_count("orders"), None);
        let why = producer.readiness(&["orders".to_owned()]).await;
        assert_eq!(why, Err("the broker does not answer".to_owned()));
    }
}
