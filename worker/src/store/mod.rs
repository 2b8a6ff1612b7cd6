//! The repository layer of a shard.
//!
//! Every write goes through a [`sqlx::Transaction`]: the event rows and the state
//! rows of a batch commit together or not at all, and the caller commits Kafka
//! offsets only after the transaction did. [`Pools`] holds the shards'
//! connections and writes a shard's part of a batch with the one function its
//! event type's storage needs ([`Event::store_batch`]).

/// `From<Fields>`, `Deref` and `DerefMut` for a storage's event, a newtype
/// over the [`Fields`] every event has.
macro_rules! fields_newtype {
    ($event:ty) => {
        impl From<$crate::store::Fields> for $event {
            fn from(fields: $crate::store::Fields) -> Self {
                Self(fields)
            }
        }

        impl std::ops::Deref for $event {
            type Target = $crate::store::Fields;

            fn deref(&self) -> &$crate::store::Fields {
                &self.0
            }
        }

        impl std::ops::DerefMut for $event {
            fn deref_mut(&mut self) -> &mut $crate::store::Fields {
                &mut self.0
            }
        }
    };
}

mod declared;
mod disputes;
mod error;
mod fold;
mod migrate;
mod orders;
mod pools;
mod schema;

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

pub use declared::{DeclaredEvent, store_declared_events};
pub use disputes::{DisputeEvent, store_dispute_events};
pub use error::{Error, ErrorClass, Result, class_of_sqlstate};
pub use migrate::{MIGRATOR, PARTITION_MONTHS_AHEAD, ensure_dispute_partitions, migrate};
pub use orders::{OrderEvent, store_order_events};
pub use pools::Pools;
pub use schema::{PARTITION_CHECK_INTERVAL, maintain};

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

/// What every event carries whatever its storage: hookline's and the
/// provider's identities, and the values found at its event type's column
/// pointers. Each storage's event is made from it ([`Event`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    /// The topic's event type (`orders`, or a declared name): the `type` of
    /// a declared type's rows.
    pub type_name: String,
    /// hookline's deterministic event id.
    pub event_id: Uuid,
    pub provider_event_id: String,
    /// The provider's event type (`order.paid`, …).
    pub event_type: String,
    /// The entity whose state the event changes (the order, the dispute).
    pub entity_id: String,
    /// The order the event belongs to; for an order, the entity itself.
    pub order_id: String,
    /// The shard key.
    pub user_id: String,
    /// Empty when a declared type's payload has none.
    pub status: String,
    /// Minor units; the built-ins' only, as are the order id and currency.
    pub amount: i64,
    /// ISO 4217, lowercase.
    pub currency: String,
    /// The provider's event time.
    pub occurred_at: DateTime<Utc>,
    /// The lifecycle rank of `event_type`: second in the latest-state order.
    pub rank: i16,
    /// When ingest received this copy of the event.
    pub received_at: DateTime<Utc>,
}

/// The event of one storage ([`hookline_contract::Storage`]), as its
/// repository function takes it. A worker consumes one topic and so stores
/// one kind of event: its batches are written with this one function and
/// never split by kind.
pub trait Event: From<Fields> + Clone + Send + Sync {
    /// Stores a batch in `tx` and brings the latest state up to date: one
    /// outcome per event, in batch order. `payloads` are the events' JSON
    /// texts, in the same order: borrowed from the records they came in, so
    /// that a payload is held once, as its record's bytes.
    fn store_batch(
        tx: &mut Transaction<'_, Postgres>,
        events: &[Self],
        payloads: &[&str],
    ) -> impl Future<Output = Result<Vec<Stored>>> + Send;
}

impl Event for OrderEvent {
    fn store_batch(
        tx: &mut Transaction<'_, Postgres>,
        events: &[Self],
        payloads: &[&str],
    ) -> impl Future<Output = Result<Vec<Stored>>> + Send {
        store_order_events(tx, events, payloads)
    }
}

impl Event for DeclaredEvent {
    fn store_batch(
        tx: &mut Transaction<'_, Postgres>,
        events: &[Self],
        payloads: &[&str],
    ) -> impl Future<Output = Result<Vec<Stored>>> + Send {
        store_declared_events(tx, events, payloads)
    }
}

impl Event for DisputeEvent {
    fn store_batch(
        tx: &mut Transaction<'_, Postgres>,
        events: &[Self],
        payloads: &[&str],
    ) -> impl Future<Output = Result<Vec<Stored>>> + Send {
        store_dispute_events(tx, events, payloads)
    }
}
