//! hookline's worker: reads a topic's events and writes them into the user's shard.
//!
//! [`store`] is the repository layer every shard is written through: it stores
//! each event once, keeps the latest state of each order and dispute, and says
//! which events were already stored, so that at-least-once delivery from Kafka
//! has an exactly-once effect in Postgres.

pub mod store;
