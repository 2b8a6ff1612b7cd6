//! hookline's Kubernetes operator: the `WebhookPipeline` resource and the
//! controller that creates and grows the topics and keeps one worker replica
//! per partition.

pub mod admin;
pub mod crd;
pub mod topics;
