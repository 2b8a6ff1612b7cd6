//! The contract every hookline binary shares.
//!
//! Ingest, worker, operator and tooling must agree on where a user's events go
//! (Kafka partition and Postgres shard), what the record headers are called, which
//! reason codes a dead-lettered record can carry, how an `event_id` is derived,
//! and what each event type is (its schema, fields, tables and lifecycle).
//! Keeping those decisions here, as plain functions and constants, means a change
//! to any of them is one change, reviewed once.

pub mod declared;
#[cfg(feature = "payload")]
pub mod definition;
pub mod event_id;
pub mod event_types;
pub mod headers;
pub mod ordering;
#[cfg(feature = "payload")]
pub mod payload;
pub mod pipeline;
pub mod pod_template;
pub mod reason;
pub mod routing;
pub mod secrets;
pub mod sources;
#[cfg(feature = "kube")]
pub mod status;

pub use event_id::event_id;
pub use event_types::{EventType, Storage};
pub use ordering::StateOrder;
pub use reason::Reason;
pub use routing::{is_placed_correctly, murmur2, partition_for, shard_for, to_positive};
