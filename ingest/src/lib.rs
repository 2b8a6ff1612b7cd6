//! hookline's ingest service: authenticates and validates provider webhooks and
//! produces each one to Kafka, keyed by user id, answering 202 only once the
//! broker acknowledged it.

pub mod auth;
pub mod config;
pub mod metrics;
pub mod produce;
pub mod routes;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use server::{App, bind, serve};

/// Result of the ingest service's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An operation of the ingest service that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Manifest(#[from] hookline_contract::pipeline::ManifestError),
    #[error(transparent)]
    Secret(#[from] hookline_contract::secrets::SecretError),
    #[error("signing secret file {path}: {source}")]
    SigningKey {
        path: PathBuf,
        #[source]
        source: auth::KeyError,
    },
    #[error("no signing secrets: neither {standard} nor {stripe} exists")]
    NoSigningSecrets { standard: PathBuf, stripe: PathBuf },
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    #[error(transparent)]
    Schema(#[from] hookline_contract::payload::SchemaError),
    #[error("creating the Kafka producer failed")]
    CreateProducer(#[source] rdkafka::error::KafkaError),
    #[error("fetching topic metadata failed")]
    FetchMetadata(#[source] rdkafka::error::KafkaError),
    #[error("flushing the producer failed")]
    Flush(#[source] rdkafka::error::KafkaError),
    #[error("a blocking Kafka call did not complete")]
    BlockingTask(#[source] tokio::task::JoinError),
    #[error("binding {addr} failed")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}
