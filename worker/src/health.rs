//! What the worker tells `/readyz` and `/metrics` (served by
//! [`hookline_runtime::health`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use hookline_runtime::health::Probe;

use crate::metrics::Metrics;

/// The worker's readiness and metrics.
pub struct Health {
    metrics: Arc<Metrics>,
    /// Set once the shards are migrated and the consumer subscribed (or
    /// assigned its partition): before that a rollout must not count the pod
    /// as serving.
    ready: AtomicBool,
    /// Partitions stopped because the broker refuses their dead letter, and
    /// why, in words for whoever reads `/readyz`: a worker that cannot move
    /// is not serving, and must say so rather than look healthy.
    blocked: Mutex<BTreeMap<i32, String>>,
}

impl Health {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            ready: AtomicBool::new(false),
            blocked: Mutex::default(),
        }
    }

    /// `partition` stops at a dead letter the broker refuses, for `why`.
    pub fn block(&self, partition: i32, why: String) {
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(partition, why);
    }

    /// `partition` moves again (or is no longer this worker's); whether it
    /// was stopped.
    pub fn unblock(&self, partition: i32) -> bool {
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&partition)
            .is_some()
    }

    /// The shards are migrated and the consumer subscribed or assigned.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

impl Probe for Health {
    async fn ready(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::Acquire) {
            return Err("starting: migrating the shards and joining the topic".to_owned());
        }
        let blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        if blocked.is_empty() {
            Ok(())
        } else {
            Err(blocked.values().cloned().collect::<Vec<_>>().join("; "))
        }
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_only_once_started() {
        let health = Health::new(Arc::new(Metrics::new()));
        let not_yet = health.ready().await;
        assert!(not_yet.is_err_and(|why| why.starts_with("starting")));
        health.set_ready();
        assert_eq!(health.ready().await, Ok(()));
    }

    #[tokio::test]
    async fn a_partition_stopped_by_the_dlq_says_why_until_it_moves() {
        let health = Health::new(Arc::new(Metrics::new()));
        health.set_ready();
        health.block(3, "partition 3 stopped at offset 41: topic missing".into());
        assert_eq!(
            health.ready().await,
            Err("partition 3 stopped at offset 41: topic missing".to_owned())
        );
        assert!(!health.unblock(1));
        assert!(health.unblock(3));
        assert_eq!(health.ready().await, Ok(()));
    }

    #[test]
    fn metrics_are_the_workers() {
        let metrics = Arc::new(Metrics::new());
        metrics.assigned(3);
        let health = Health::new(metrics);
        assert!(Probe::metrics(&health).contains("hookline_worker_assigned_partitions 3"));
    }
}
