//! hookline's Kubernetes operator: the `WebhookPipeline` resource and the
//! controller that creates the topics and keeps one worker replica per partition.
//!
//! The controller lands with its own issue; the routing it relies on (partition
//! counts that are multiples of the shard count) is in `hookline-contract`.
