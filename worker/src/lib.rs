//! hookline's worker: reads a topic's events and writes each one, exactly once
//! in effect, into the shard of its user.
//!
//! [`store`] is the repository layer every shard is written through; [`decode`]
//! and [`batch`] decide what a record is and where it goes; [`consume`] is the
//! loop that commits offsets only after the shards' transactions committed.

pub mod backoff;
pub mod batch;
pub mod config;
pub mod consume;
pub mod decode;
pub mod dlq;
pub mod health;
pub mod metrics;
pub mod shards;
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
    #[error("no worker knows how to store event type {0:?} (known: orders, disputes)")]
    UnknownEventType(String),
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    #[error("configuring the shard pools failed")]
    ShardPool(#[source] sqlx::Error),
    #[error("migrating shard {shard} failed")]
    MigrateShard {
        shard: String,
        #[source]
        source: store::Error,
    },
    #[error("creating the Kafka consumer failed")]
    CreateConsumer(#[source] rdkafka::error::KafkaError),
    #[error("subscribing to the topic failed")]
    Subscribe(#[source] rdkafka::error::KafkaError),
    #[error("creating the DLQ producer failed")]
    CreateProducer(#[source] rdkafka::error::KafkaError),
    #[error("binding {addr} failed")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}
