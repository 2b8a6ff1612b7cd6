//! Producing records, and knowing the topics' partition counts.
//!
//! The Kafka side is `hookline_kafka`'s: an idempotent producer with
//! `acks=all` that never expires a record locally, so a record whose ack does
//! not come in time stays queued and is delivered once the broker is back,
//! while the request answers from its own deadline. What is ingest's own is
//! the size of its queue and the partition counts it places records with:
//! ingest places every record itself (see [`crate::record`]), so it must know
//! each topic's count, and it is not ready until it knows all of them.
//!
//! One background task asks the broker for the counts every few seconds, and
//! its verdict is what `/readyz` answers: a probe never waits on the broker,
//! so a burst of probes costs the broker nothing and a silent broker cannot
//! make the probe itself time out.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use hookline_kafka::ClientSettings;
use hookline_kafka::produce::{self, Acked, ProduceError, Record};
use rdkafka::ClientConfig;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// The `client.id` the broker sees.
const CLIENT_ID: &str = "hookline-ingest";
/// How often the broker is asked for partition counts: that is also how
/// stale a readiness verdict may be, and how soon a grown topic is used.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long one check may wait for the broker.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A verdict older than this means the checks stopped: not ready.
const STALE_AFTER: Duration = Duration::from_secs(15);

/// What ingest sets on its producer beyond the shared Kafka settings.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub client: ClientSettings,
    /// Records the local queue holds before sends are refused.
    pub queue_capacity: usize,
    /// Kilobytes the local queue holds before sends are refused.
    pub queue_kbytes: usize,
    /// Largest record, key and headers included (see [`crate::limits`]); the
    /// producer refuses a larger one at once.
    pub max_record_bytes: usize,
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
            .set("message.max.bytes", self.max_record_bytes.to_string());
        config
    }
}

/// The producer and the partition counts it places records with.
pub struct Producer {
    kafka: produce::Producer,
    /// By topic; only topics the broker listed with at least one partition.
    counts: RwLock<HashMap<String, u32>>,
    /// The last check's verdict and when it was made; none before the first.
    verdict: RwLock<Option<(Instant, Result<(), String>)>>,
}

impl Producer {
    /// Creates the producer; connecting happens in the background.
    pub fn new(settings: &ProducerSettings) -> Result<Self> {
        let kafka = produce::Producer::new(&settings.client_config(), settings.ack_timeout)
            .map_err(|e| Error::CreateProducer(Box::new(e)))?;
        Ok(Self {
            kafka,
            counts: RwLock::default(),
            verdict: RwLock::default(),
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
            .partition_counts(CHECK_TIMEOUT)
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

    /// Refreshes the counts of `topics` and records the verdict `/readyz`
    /// answers with: ready when the broker answered and listed every topic;
    /// before that, a webhook could only be answered 503.
    pub async fn check(&self, topics: &[String]) -> Result<(), String> {
        let verdict = match self.refresh(topics).await {
            Ok(missing) if missing.is_empty() => Ok(()),
            Ok(missing) => Err(format!("topics not seen yet: {}", missing.join(", "))),
            Err(error) => {
                tracing::debug!(error = %error, "the broker check failed");
                Err("the broker does not answer".to_owned())
            }
        };
        if let Ok(mut last) = self.verdict.write() {
            let before = last.as_ref().map(|(_, verdict)| verdict.clone());
            if before.as_ref() != Some(&verdict) {
                // Logged on change only: the check runs every few seconds.
                match &verdict {
                    Ok(()) => tracing::info!("ready: the broker answers and lists every topic"),
                    Err(why) => tracing::warn!(why = %why, "not ready"),
                }
            }
            *last = Some((Instant::now(), verdict.clone()));
        }
        verdict
    }

    /// Checks `topics` now and every few seconds until `shutdown`.
    pub async fn keep_checking(&self, topics: &[String], shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        // A check that took long is not followed by a burst of catching up.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let _ = self.check(topics).await;
        }
    }

    /// The last check's verdict, without asking the broker: not ready before
    /// the first check, and when the checks stopped coming.
    pub fn readiness(&self) -> Result<(), String> {
        let last = self
            .verdict
            .read()
            .map_err(|_| "the readiness state is poisoned".to_owned())?;
        match last.as_ref() {
            None => Err("the broker has not been checked yet".to_owned()),
            Some((at, _)) if at.elapsed() > STALE_AFTER => {
                Err(format!("no broker check for {}s", at.elapsed().as_secs()))
            }
            Some((_, verdict)) => verdict.clone(),
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
            max_record_bytes: 4 * 1024 * 1024,
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
        let max = (4 * 1024 * 1024).to_string();
        assert_eq!(config.get("message.max.bytes"), Some(max.as_str()));
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
        assert_eq!(
            producer.readiness(),
            Err("the broker has not been checked yet".to_owned())
        );

        let why = producer.check(&["orders".to_owned()]).await;

        assert_eq!(why, Err("the broker does not answer".to_owned()));
        assert_eq!(producer.readiness(), why);
    }

    #[test]
    fn a_stale_verdict_is_not_ready() {
        let producer = Producer::new(&settings()).unwrap();
        let long_ago = Instant::now()
            .checked_sub(STALE_AFTER + Duration::from_secs(1))
            .unwrap();
        *producer.verdict.write().unwrap() = Some((long_ago, Ok(())));
        let why = producer.readiness().unwrap_err();
        assert!(why.starts_with("no broker check for"), "{why}");
        *producer.verdict.write().unwrap() = Some((Instant::now(), Ok(())));
        assert_eq!(producer.readiness(), Ok(()));
    }
}
