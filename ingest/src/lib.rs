//! hookline's ingest service: authenticates and validates provider webhooks and
//! produces each one to Kafka, keyed by user id, answering 202 only once the
//! broker acknowledged it.
//!
//! The modules in reading order. At startup:
//!
//! - [`config`]: the command line, the pipeline manifest and the signing
//!   secrets, checked before the first request; one route per event type.
//! - [`server`]: the state every request shares, the public router, the
//!   metrics listener, and serving until shutdown.
//! - [`signing`]: the signing secrets in use, read again when the mounted
//!   files change.
//! - [`limits`]: the body limit, derived from the broker's record limit so
//!   that the dead letter of any accepted body fits.
//!
//! Then one webhook, from its route to Kafka and back to the provider:
//!
//! - [`signed`]: the extractor that admits a request: its route, what its
//!   headers claim, its body read within a deadline and a budget of its own
//!   ([`body`]), a valid signature ([`auth`] decides that, without I/O), and
//!   only then a produce slot.
//! - [`routes`]: the handler: inspect the payload, then accept or refuse it.
//! - [`record`]: the Kafka record of either: placement, envelope, quarantine
//!   headers.
//! - [`produce`]: producing it, with the partition counts placement uses and
//!   the readiness that depends on them.
//! - [`answer`]: what the provider is told, and what a failed produce means
//!   in HTTP.
//! - [`metrics`]: what was counted along the way.

pub mod config;
pub mod limits;
pub mod server;
pub mod signing;

pub mod signed;

pub mod auth;
pub mod body;

pub mod routes;

pub mod record;

pub mod produce;

pub mod answer;

pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use server::{App, bind, serve, serve_metrics};

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
    #[error("secrets of source {name}, file {path}: {source}")]
    SourceKey {
        name: String,
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
    // Boxed: a Kafka error is large, and every `Result` of the crate would
    // carry its size.
    #[error("creating the Kafka producer failed")]
    CreateProducer(#[source] Box<hookline_kafka::Error>),
    #[error("fetching the partition counts failed")]
    FetchPartitionCounts(#[source] Box<hookline_kafka::Error>),
    #[error("flushing the producer failed")]
    Flush(#[source] Box<hookline_kafka::Error>),
    #[error("binding {addr} failed")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP failed")]
    Serve(#[source] std::io::Error),
}
