//! Prometheus metrics of the worker. Labels are bounded: outcomes and reasons
//! come from fixed sets, partitions from the topic's partition count.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    partition: i32,
}

/// The worker's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    processed: Family<OutcomeLabels, Counter>,
    dead_lettered: Family<ReasonLabels, Counter>,
    retries: Family<ReasonLabels, Counter>,
    batch_seconds: Histogram,
    batch_records: Histogram,
    commit_failures: Counter,
    fetch_requests: Counter,
    /// librdkafka's running count of fetch requests when last reported.
    fetches_reported: AtomicU64,
    lag: Family<PartitionLabels, Gauge>,
    assigned: Gauge,
    batch_splits: Counter,
    dead_letter_blocked: Family<PartitionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookline_worker");
        let processed = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "processed",
            "Events written, by outcome (inserted, duplicate)",
            processed.clone(),
        );
        let dead_lettered = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "dead_lettered",
            "Records sent to the DLQ, by reason code",
            dead_lettered.clone(),
        );
        let retries = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "batch_retries",
            "Batches retried after a transient failure, by failed operation",
            retries.clone(),
        );
        let batch_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "batch_seconds",
            "Time to write a batch and commit its offsets",
            batch_seconds.clone(),
        );
        let batch_records = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "batch_records",
            "Records per written batch: one for a lone event, many for a backlog",
            batch_records.clone(),
        );
        let commit_failures = Counter::default();
        registry.register(
            "commit_failures",
            "Offset commits the broker refused or never answered (the records are written; a later commit covers them)",
            commit_failures.clone(),
        );
        let fetch_requests = Counter::default();
        registry.register(
            "fetch_requests",
            "Fetch requests sent to the brokers, as the consumer's statistics report them (every 5 s): the idle cost of --fetch-wait",
            fetch_requests.clone(),
        );
        let lag = Family::<PartitionLabels, Gauge>::default();
        registry.register(
            "consumer_lag",
            "Records behind the partition's end, as last reported by the consumer",
            lag.clone(),
        );
        let assigned = Gauge::default();
        registry.register(
            "assigned_partitions",
            "Partitions this worker holds: the one it is pinned to, or those the consumer group assigned it",
            assigned.clone(),
        );
        let batch_splits = Counter::default();
        registry.register(
            "batch_splits",
            "Failing batches split in halves because their write did not finish within --write-timeout",
            batch_splits.clone(),
        );
        let dead_letter_blocked = Family::<PartitionLabels, Gauge>::default();
        registry.register(
            "dead_letter_blocked",
            "1 while the partition is stopped at a dead letter the broker refuses (DLQ topic missing, not authorized): nothing is committed past it until the DLQ takes it",
            dead_letter_blocked.clone(),
        );
        Self {
            registry,
            processed,
            dead_lettered,
            retries,
            batch_seconds,
            batch_records,
            commit_failures,
            fetch_requests,
            fetches_reported: AtomicU64::new(0),
            lag,
            assigned,
            batch_splits,
            dead_letter_blocked,
        }
    }

    pub fn batch_split(&self) {
        self.batch_splits.inc();
    }

    /// Whether `partition` is stopped at a dead letter the broker refuses.
    pub fn dead_letter_blocked(&self, partition: i32, blocked: bool) {
        self.dead_letter_blocked
            .get_or_create(&PartitionLabels { partition })
            .set(i64::from(blocked));
    }

    pub fn processed(&self, inserted: usize, duplicates: usize) {
        let count = |outcome| self.processed.get_or_create(&OutcomeLabels { outcome });
        count("inserted").inc_by(inserted as u64);
        count("duplicate").inc_by(duplicates as u64);
    }

    pub fn dead_lettered(&self, reason: &'static str) {
        self.dead_lettered
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn retried(&self, reason: &'static str) {
        self.retries.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// A batch of `records` was written and its commit sent in `seconds`.
    pub fn batch(&self, records: usize, seconds: f64) {
        self.batch_seconds.observe(seconds);
        self.batch_records.observe(records as f64);
    }

    /// librdkafka's running count of fetch requests is `reported` now.
    pub fn fetches(&self, reported: i64) {
        let reported = reported.max(0) as u64;
        let before = self.fetches_reported.swap(reported, Ordering::Relaxed);
        self.fetch_requests.inc_by(reported.saturating_sub(before));
    }

    pub fn commit_failed(&self) {
        self.commit_failures.inc();
    }

    pub fn lag(&self, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabels { partition })
            .set(lag);
    }

    pub fn assigned(&self, partitions: usize) {
        self.assigned.set(partitions as i64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        hookline_runtime::health::exposition(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.processed(3, 1);
        metrics.dead_lettered("misrouted");
        metrics.lag(2, 17);
        metrics.assigned(2);
        metrics.batch(3, 0.01);
        metrics.fetches(40);
        metrics.fetches(100);
        metrics.batch_split();
        metrics.dead_letter_blocked(1, true);
        let text = metrics.render();
        assert!(
            text.contains("hookline_worker_batch_splits_total 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"hookline_worker_dead_letter_blocked{partition="1"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("hookline_worker_fetch_requests_total 100"),
            "{text}"
        );
        assert!(
            text.contains("hookline_worker_batch_records_sum 3.0"),
            "{text}"
        );
        assert!(
            text.contains("hookline_worker_assigned_partitions 2"),
            "{text}"
        );
        assert!(
            text.contains(r#"hookline_worker_processed_total{outcome="inserted"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hookline_worker_processed_total{outcome="duplicate"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hookline_worker_dead_lettered_total{reason="misrouted"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hookline_worker_consumer_lag{partition="2"} 17"#),
            "{text}"
        );
    }
}
