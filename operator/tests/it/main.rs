//! Integration tests of the operator: the rdkafka admin implementation against
//! the real broker of the stack, what a shard takes read from the stack's
//! PostgreSQL, and the reconcile against in-memory fakes of
//! what cannot run here (the Kubernetes API; CreatePartitions).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_broker;
mod fake_api;
mod lease;
mod rbac;
mod reconcile;
mod shard_limits;
