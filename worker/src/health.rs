//! What the worker tells `/readyz` and `/metrics` (served by
//! [`hookline_runtime::health`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hookline_runtime::health::Probe;

use crate::metrics::Metrics;

/// The worker's readiness and metrics.
pub struct Health {
    metrics: Arc<Metrics>,
    /// Set once the shards are migrated and the consumer subscribed (or
    /// assigned its partition): before that a rollout must not count the pod
    /// as serving.
    ready: AtomicBool,
}

impl Health {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            ready: AtomicBool::new(false),
        }
    }

    /// The shards are migrated and the consumer subscribed or assigned.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

impl Probe for Health {
    async fn ready(&self) -> Result<(), String> {
        if self.ready.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("starting: migrating the shards and joining the topic".to_owned())
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

    #[test]
    fn metrics_are_the_workers() {
        let metrics = Arc::new(Metrics::new());
        metrics.assigned(3);
        let health = Health::new(metrics);
        assert!(Probe::metrics(&health).contains("hookline_worker_assigned_partitions 3"));
    }
}
