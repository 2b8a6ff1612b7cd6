//! The worker's Kafka consumer, in one of two memberships: pinned to one
//! partition by assignment, resuming at the group's committed offset, or a
//! member of the topic's consumer group, with the callbacks a group needs.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::config::{Config, Membership};
use crate::metrics::Metrics;
use crate::{Error, Result};

/// How often the consumer reports statistics (lag).
const STATISTICS_INTERVAL_MS: &str = "5000";
/// How long one metadata or committed-offset request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The worker's consumer.
pub type WorkerConsumer = StreamConsumer<WorkerContext>;

/// Consumer callbacks: lag and fetch requests from statistics, revoked
/// partitions, and the outcome of asynchronous commits.
pub struct WorkerContext {
    topic: String,
    metrics: Arc<Metrics>,
    revoked: Mutex<Vec<i32>>,
    /// The partitions the group assigned to this consumer.
    held: Mutex<BTreeSet<i32>>,
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        let fetches: i64 = statistics
            .brokers
            .values()
            .filter_map(|broker| broker.req.get("Fetch"))
            .sum();
        self.metrics.fetches(fetches);
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (&partition, stats) in &topic.partitions {
                // librdkafka reports an internal partition -1 and -1 lag when unknown.
                if partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics.lag(partition, stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance
            && let Ok(mut revoked) = self.revoked.lock()
        {
            revoked.extend(partitions.elements().iter().map(|e| e.partition()));
        }
    }

    /// Cooperative rebalances hand out increments; the gauge follows the sum
    /// of them, kept here rather than asked of the consumer, since asking
    /// from inside a rebalance callback can wait on a consumer that is closing.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(partitions) => {
                held.extend(partitions.elements().iter().map(|e| e.partition()));
            }
            Rebalance::Revoke(partitions) => {
                for e in partitions.elements() {
                    held.remove(&e.partition());
                }
            }
            Rebalance::Error(_) => return,
        }
        self.metrics.assigned(held.len());
    }

    /// Commits are asynchronous: a failed one is only told. The records stay
    /// written; the next commit covers them, or a restart reads them again
    /// and finds them stored.
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            self.metrics.commit_failed();
            tracing::warn!(error = %error, "committing offsets failed; a later commit covers them");
        }
    }
}

impl WorkerContext {
    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<i32> {
        self.revoked
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Creates the consumer of `config.topic` with manual commits to
/// `config.group`: pinned, it is assigned its partition at the committed
/// offset (blocking on the broker: call it off the async executor); in the
/// group, it subscribes with cooperative-sticky assignment, static
/// membership when it has an instance id.
pub fn create(config: &Config, metrics: Arc<Metrics>) -> Result<WorkerConsumer> {
    let context = WorkerContext {
        topic: config.topic.clone(),
        metrics: metrics.clone(),
        revoked: Mutex::new(Vec::new()),
        held: Mutex::default(),
    };
    let mut settings = config.kafka.consumer(&config.client_id, &config.group);
    for (key, value) in prefetch_limits(config.batch_bytes) {
        settings.set(key, value);
    }
    settings
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .set(
            "fetch.wait.max.ms",
            config.fetch_wait.as_millis().to_string(),
        );
    match &config.membership {
        Membership::Pinned(partition) => {
            let consumer: WorkerConsumer = settings
                .create_with_context(context)
                .map_err(Error::CreateConsumer)?;
            let start = resume_offset(&consumer, &config.topic, *partition)?;
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&config.topic, *partition, start)
                .map_err(Error::Assign)?;
            consumer.assign(&assignment).map_err(Error::Assign)?;
            metrics.assigned(1);
            match start {
                Offset::Offset(offset) => {
                    tracing::info!(
                        partition,
                        offset,
                        "resuming at the group's committed offset"
                    );
                }
                _ => tracing::info!(partition, "nothing committed: reading from the beginning"),
            }
            Ok(consumer)
        }
        Membership::Group { instance_id } => {
            for (key, value) in group_settings(config.session_timeout, instance_id.as_deref()) {
                settings.set(key, value);
            }
            let consumer: WorkerConsumer = settings
                .create_with_context(context)
                .map_err(Error::CreateConsumer)?;
            consumer
                .subscribe(&[&config.topic])
                .map_err(Error::Subscribe)?;
            Ok(consumer)
        }
    }
}

/// A group member's settings. Cooperative-sticky assignment: a member
/// joining or leaving moves only the partitions that must move, and the
/// others keep consuming through the rebalance. The session timeout bounds
/// how long a silent member's partitions stand still, with heartbeats five
/// times per timeout (Kafka wants them below a third of it). Static
/// membership only with an instance id that survives restarts.
fn group_settings(
    session_timeout: Duration,
    instance_id: Option<&str>,
) -> Vec<(&'static str, String)> {
    let heartbeat = (session_timeout / 5).max(Duration::from_millis(100));
    let mut settings = vec![
        (
            "partition.assignment.strategy",
            "cooperative-sticky".to_owned(),
        ),
        (
            "session.timeout.ms",
            session_timeout.as_millis().to_string(),
        ),
        ("heartbeat.interval.ms", heartbeat.as_millis().to_string()),
    ];
    if let Some(id) = instance_id {
        settings.push(("group.instance.id", id.to_owned()));
    }
    settings
}

/// librdkafka's prefetch, sized from the batch: by default it keeps fetching
/// until 64 MiB are queued, in fetches of up to 50 MiB, which with large
/// records dwarfs the batch and makes the worker's memory a function of the
/// backlog. Here at most about one batch waits in the queue and one more
/// arrives in a fetch. A record larger than a fetch still comes, alone (Kafka
/// returns the first record whatever the limit).
fn prefetch_limits(batch_bytes: usize) -> [(&'static str, String); 4] {
    let kbytes = batch_bytes.div_ceil(1024).max(1);
    [
        ("queued.max.messages.kbytes", kbytes.to_string()),
        ("fetch.max.bytes", batch_bytes.to_string()),
        ("max.partition.fetch.bytes", batch_bytes.to_string()),
        // librdkafka refuses a fetch limit below its request limit, which a
        // consumer only needs for its own small requests.
        ("message.max.bytes", batch_bytes.min(1_000_000).to_string()),
    ]
}

/// Where a pinned worker starts: the group's committed offset (the next
/// record to read), or the partition's beginning when nothing was committed.
/// A partition the topic does not have is refused: the worker would
/// otherwise wait on it for ever, looking healthy.
fn resume_offset(consumer: &WorkerConsumer, topic: &str, partition: i32) -> Result<Offset> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(Error::FetchMetadata)?;
    let partitions = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map_or(0, |t| t.partitions().len() as i32);
    if partition >= partitions {
        return Err(Error::NoSuchPartition {
            topic: topic.to_owned(),
            partition,
            partitions,
        });
    }
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(topic, partition);
    let committed = consumer
        .committed_offsets(wanted, REQUEST_TIMEOUT)
        .map_err(Error::FetchCommitted)?;
    Ok(start_of(
        committed
            .find_partition(topic, partition)
            .map(|e| e.offset()),
    ))
}

/// The offset to assign, given what the group committed.
fn start_of(committed: Option<Offset>) -> Offset {
    match committed {
        Some(Offset::Offset(next)) if next >= 0 => Offset::Offset(next),
        // Nothing committed (librdkafka says `Invalid`): from the oldest
        // record kept.
        _ => Offset::Beginning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefetch_is_sized_from_the_batch_and_librdkafka_takes_it() {
        let limits = prefetch_limits(8 << 20);
        assert_eq!(limits[0], ("queued.max.messages.kbytes", "8192".to_owned()));
        assert_eq!(limits[1], ("fetch.max.bytes", "8388608".to_owned()));
        // The smallest batch allowed still makes a configuration librdkafka
        // accepts (it checks the fetch limit against the request limit).
        for bytes in [64 << 10, 8 << 20, 64 << 20] {
            let mut config = hookline_kafka::ClientSettings::new("127.0.0.1:1").consumer("c", "g");
            for (key, value) in prefetch_limits(bytes) {
                config.set(key, value);
            }
            let created: KafkaResult<BaseConsumer> = config.create();
            assert!(created.is_ok(), "{bytes}: {:?}", created.err());
        }
    }

    #[test]
    fn a_pinned_worker_starts_at_the_commit_or_the_beginning() {
        assert_eq!(start_of(Some(Offset::Offset(42))), Offset::Offset(42));
        assert_eq!(start_of(Some(Offset::Offset(0))), Offset::Offset(0));
        assert_eq!(start_of(Some(Offset::Invalid)), Offset::Beginning);
        assert_eq!(start_of(None), Offset::Beginning);
    }

    #[test]
    fn a_group_member_is_cooperative_sticky_with_the_session_timeout_and_dynamic_without_an_id() {
        let settings = group_settings(Duration::from_secs(10), None);
        let get = |key: &str| {
            settings
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("partition.assignment.strategy").as_deref(),
            Some("cooperative-sticky")
        );
        assert_eq!(get("session.timeout.ms").as_deref(), Some("10000"));
        let heartbeat: u64 = get("heartbeat.interval.ms").unwrap().parse().unwrap();
        assert!(heartbeat * 3 < 10_000, "{heartbeat} ms");
        assert_eq!(get("group.instance.id"), None, "dynamic membership");
        let stable = group_settings(Duration::from_secs(10), Some("slot-0"));
        assert!(stable.contains(&("group.instance.id", "slot-0".to_owned())));
        // And librdkafka takes them.
        let mut config = hookline_kafka::ClientSettings::new("127.0.0.1:1").consumer("c", "g");
        for (key, value) in group_settings(Duration::from_secs(6), Some("slot-0")) {
            config.set(key, value);
        }
        let created: KafkaResult<BaseConsumer> = config.create();
        assert!(created.is_ok(), "{:?}", created.err());
    }
}
