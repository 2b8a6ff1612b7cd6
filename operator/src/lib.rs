//! hookline's Kubernetes operator: the `WebhookPipeline` resource and the
//! controller that creates and grows the topics and keeps one worker replica
//! per partition.

pub mod claims;
pub mod controller;
pub mod crd;
pub mod drift;
pub mod fence;
#[cfg(any(test, feature = "testing"))]
pub mod fixtures;
pub mod health;
pub mod lease;
pub mod metrics;
pub mod ownership;
pub mod render;
pub mod run;
pub mod secrets;
pub mod shard_limits;
pub mod status;
pub mod workloads;
