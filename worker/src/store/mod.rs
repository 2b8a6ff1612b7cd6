//! The repository layer of a shard.
//!
//! Every write goes through a [`sqlx::Transaction`]: the event rows and the state
//! rows of a batch commit together or not at all, and the caller commits Kafka
//! offsets only after the transaction did.

mod disputes;
mod error;
mod fold;
mod migrate;
mod orders;

pub use disputes::{DisputeEvent, store_dispute_event, store_dispute_events};
pub use error::{Error, ErrorClass, Result, class_of_sqlstate};
pub use migrate::{MIGRATOR, PARTITION_MONTHS_AHEAD, ensure_dispute_partitions, migrate};
pub use orders::{OrderEvent, store_order_event, store_order_events};

/// What storing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The event is new: its row was inserted and the state updated if it was
    /// the newest.
    Inserted,
    /// The event was stored before (a redelivery, a provider's retry, or a
    /// duplicate earlier in the same batch): nothing changed, and the caller
    /// treats it as done.
    AlreadyStored,
}
