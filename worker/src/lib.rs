//! hookline's worker: reads a topic's events and writes each one, exactly once
//! in effect, into the shard of its user.
//!
//! [`store`] is the repository layer every shard is written through, with the
//! shards' pools; [`decode`] and [`batch`] decide what a record is, where it
//! goes and what is left to do for it; [`dlq`] sends what can never be
//! written to the topic's DLQ; [`consumer`] gets the partitions (one pinned
//! partition, or a group's share), [`filling`] closes a batch once nothing
//! more is ready, and [`consume`] is the loop that commits offsets only after
//! the shards' transactions committed.

pub mod backoff;
pub mod batch;
pub mod commits;
pub mod config;
pub mod consume;
pub mod consumer;
pub mod decode;
pub mod dlq;
pub mod filling;
pub mod health;
pub mod metrics;
pub mod store;

/// Result of the worker's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An operation of the worker that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] hookline_contract::pipeline::ManifestError),
    #[error(transparent)]
    Secret(#[from] hookline_contract::secrets::SecretError),
    #[error(transparent)]
    Schema(#[from] hookline_contract::payload::SchemaError),
    #[error("topic {0} is not in the pipeline manifest")]
    UnknownTopic(String),
    #[error(
        "no worker knows how to store event type {0:?} (known: {known})",
        known = hookline_contract::event_types::names()
    )]
    UnknownEventType(String),
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    #[error("configuring the shard pools failed")]
    ShardPool(#[source] sqlx::Error),
    #[error("creating the Kafka consumer failed")]
    CreateConsumer(#[source] rdkafka::error::KafkaError),
    #[error("subscribing to the topic failed")]
    Subscribe(#[source] rdkafka::error::KafkaError),
    #[error("assigning the partition failed")]
    Assign(#[source] rdkafka::error::KafkaError),
    #[error("fetching the topic's metadata failed")]
    FetchMetadata(#[source] rdkafka::error::KafkaError),
    #[error("fetching the group's committed offset failed")]
    FetchCommitted(#[source] rdkafka::error::KafkaError),
    #[error("topic {topic} has no partition {partition} (it has {partitions})")]
    NoSuchPartition {
        topic: String,
        partition: i32,
        partitions: i32,
    },
    /// Boxed: the Kafka crate's errors carry topic and group names, and
    /// every `Result` of the worker would otherwise be as large.
    #[error("creating the DLQ producer failed")]
    CreateProducer(#[source] Box<hookline_kafka::Error>),
    #[error("binding {addr} failed")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_event_type_names_the_known_ones() {
        let error = Error::UnknownEventType("refunds".into());
        assert_eq!(
            error.to_string(),
            format!(
                "no worker knows how to store event type \"refunds\" (known: {})",
                hookline_contract::event_types::names()
            )
        );
    }
}
