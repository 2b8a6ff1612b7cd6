//! hookline's Kafka plumbing, in one place for every binary and tool.
//!
//! The broker facts the design depends on are settled here once: records never
//! expire in a producer's queue (`message.timeout.ms=0`), no client creates a
//! topic by asking for it, and keys are placed with murmur2 as the Java client
//! places them ([`client`]). The envelope and the dead-letter context travel
//! in record headers, written and read by one codec each ([`envelope`],
//! [`dead_letter`]). Reading a partition up to an offset, offsets and lag
//! ([`reader`], [`offsets`]), producing with an ack deadline ([`produce`]),
//! and topic administration with its pure plans ([`admin`], [`topics`]) are
//! the rest.

mod acks;
pub mod admin;
pub mod client;
pub mod dead_letter;
pub mod envelope;
pub mod offsets;
pub mod produce;
pub mod reader;
pub mod security;
pub mod topics;

pub use client::ClientSettings;
pub use dead_letter::DeadLetter;
pub use envelope::Envelope;
pub use offsets::blocking;
pub use security::Security;

/// Result of the Kafka plumbing's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Kafka operation that failed. librdkafka's errors are boxed: they are
/// large, and every result of this crate carries one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating the Kafka client failed")]
    CreateClient(#[source] Box<rdkafka::error::KafkaError>),
    #[error("fetching the metadata of {topic} failed")]
    FetchMetadata {
        topic: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("fetching the offsets of {topic}[{partition}] failed")]
    FetchWatermarks {
        topic: String,
        partition: i32,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("fetching the committed offsets of group {group} on {topic} failed")]
    FetchCommitted {
        group: String,
        topic: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("assigning the partitions of {topic} failed")]
    Assign {
        topic: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("reading {topic} failed")]
    Read {
        topic: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("reading {topic} did not reach its end within {deadline:?}")]
    ReadDeadline {
        topic: String,
        deadline: std::time::Duration,
    },
    #[error("committing offsets of group {group} on {topic} failed")]
    Commit {
        group: String,
        topic: String,
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    #[error("flushing the producer failed")]
    Flush(#[source] Box<rdkafka::error::KafkaError>),
    #[error("a blocking Kafka call did not complete")]
    BlockingTask(#[source] tokio::task::JoinError),
}
