//! Producing a record and waiting for its ack, at most a deadline.
//!
//! The producer never expires a record locally (see [`crate::client`]): when
//! the ack does not come in time the caller is told so, and the record stays
//! queued and is delivered once the broker is back. A full local queue is
//! refused at once, so that backpressure reaches the caller instead of
//! growing a buffer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, Producer as _};
use tokio::sync::oneshot;

use crate::acks::{Ack, Polled};

use crate::{Error, Result};

/// One record to produce.
pub struct Record<'a> {
    pub topic: &'a str,
    /// `None` lets the partitioner (murmur2, as Java's) choose.
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: OwnedHeaders,
}

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
}

/// Why a record was not acknowledged; every variant means "nothing acked".
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("the producer queue is full")]
    QueueFull,
    #[error("the broker did not acknowledge within {0:?}")]
    AckTimeout(Duration),
    #[error("the broker refused the record: {0}")]
    Refused(#[source] KafkaError),
    #[error("the producer shut down before the ack")]
    Canceled,
}

/// What a failed produce means for whoever asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing was acknowledged but a retry may succeed.
    Transient,
    /// The record is larger than the broker takes: a retry never succeeds.
    TooLarge,
    /// The broker refuses this producer or topic for good (authorization, an
    /// invalid topic or record): an error of the deployment.
    Refused,
}

impl ProduceError {
    /// What the failure means, from the broker's error code by name.
    pub fn failure(&self) -> Failure {
        let ProduceError::Refused(error) = self else {
            return Failure::Transient;
        };
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
                Failure::TooLarge
            }
            Some(
                RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::InvalidRequiredAcks
                | RDKafkaErrorCode::UnsupportedVersion,
            ) => Failure::Refused,
            // Timeouts, leadership changes, unknown (not yet created) topics,
            // lost connections and anything new: retrying is the safe answer.
            _ => Failure::Transient,
        }
    }

    /// A fixed label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            ProduceError::QueueFull => "queue_full",
            ProduceError::AckTimeout(_) => "ack_timeout",
            ProduceError::Refused(_) => "refused",
            ProduceError::Canceled => "canceled",
        }
    }
}

/// A record in the producer's queue, whose ack is still to come; `None` once
/// its outcome was taken.
pub struct Delivery(Option<oneshot::Receiver<Ack>>);

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delivery")
    }
}

/// A producer whose sends wait for their ack at most `ack_timeout`.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Polled>,
    ack_timeout: Duration,
}

impl Producer {
    /// Creates the producer from `config` (made by
    /// [`crate::ClientSettings::producer`], with the caller's limits added);
    /// connecting happens in the background.
    pub fn new(config: &ClientConfig, ack_timeout: Duration) -> Result<Self> {
        let inner = Polled::new(config).map_err(|e| Error::CreateClient(Box::new(e)))?;
        Ok(Self {
            inner: Arc::new(inner),
            ack_timeout,
        })
    }

    /// Produces `record` and waits for the broker's ack, at most the ack
    /// timeout. On timeout the record stays queued (see the module doc).
    pub async fn send(&self, record: Record<'_>) -> Result<Acked, ProduceError> {
        let mut delivery = self.enqueue(record)?;
        self.delivered(&mut delivery).await
    }

    /// Hands `record` to the producer's queue without waiting for its ack: a
    /// caller that must not send a record twice keeps the [`Delivery`] and,
    /// after a timeout, waits for the same one again.
    pub fn enqueue(&self, record: Record<'_>) -> Result<Delivery, ProduceError> {
        let (waiter, ack) = oneshot::channel();
        let mut out = BaseRecord::<[u8], [u8], _>::with_opaque_to(record.topic, Box::new(waiter))
            .headers(record.headers);
        if let Some(key) = record.key {
            out = out.key(key);
        }
        if let Some(value) = record.value {
            out = out.payload(value);
        }
        if let Some(partition) = record.partition {
            out = out.partition(partition);
        }
        match self.inner.producer().send(out) {
            Ok(()) => Ok(Delivery(Some(ack))),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                Err(ProduceError::QueueFull)
            }
            Err((error, _)) => Err(ProduceError::Refused(error)),
        }
    }

    /// Waits for `delivery`'s ack, at most the ack timeout. After
    /// [`ProduceError::AckTimeout`] the record is still queued and `delivery`
    /// may be waited for again; after any other outcome it is spent.
    pub async fn delivered(&self, delivery: &mut Delivery) -> Result<Acked, ProduceError> {
        let Some(ack) = delivery.0.as_mut() else {
            return Err(ProduceError::Canceled);
        };
        let outcome = match tokio::time::timeout(self.ack_timeout, ack).await {
            Err(_) => return Err(ProduceError::AckTimeout(self.ack_timeout)),
            Ok(outcome) => outcome,
        };
        delivery.0 = None;
        match outcome {
            Err(_canceled) => Err(ProduceError::Canceled),
            Ok(Err(error)) => Err(ProduceError::Refused(error)),
            Ok(Ok((partition, offset))) => Ok(Acked { partition, offset }),
        }
    }

    /// The partition counts of every topic the broker lists, asked within
    /// `timeout`: the blocking call ends then, so a silent broker holds no
    /// thread longer than the caller waits.
    pub async fn partition_counts(&self, timeout: Duration) -> Result<HashMap<String, i32>> {
        let producer = self.inner.producer().clone();
        let metadata =
            tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout))
                .await
                .map_err(Error::BlockingTask)?
                .map_err(|source| Error::FetchMetadata {
                    topic: "*".to_owned(),
                    source: Box::new(source),
                })?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect())
    }

    /// Waits up to `timeout` for queued records to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let producer = self.inner.producer().clone();
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(Error::BlockingTask)?
            .map_err(|e| Error::Flush(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_codes_decide_the_failure() {
        let refused = |code| ProduceError::Refused(KafkaError::MessageProduction(code));
        assert_eq!(
            refused(RDKafkaErrorCode::MessageSizeTooLarge).failure(),
            Failure::TooLarge
        );
        assert_eq!(
            refused(RDKafkaErrorCode::TopicAuthorizationFailed).failure(),
            Failure::Refused
        );
        assert_eq!(
            refused(RDKafkaErrorCode::NotLeaderForPartition).failure(),
            Failure::Transient
        );
        assert_eq!(ProduceError::QueueFull.failure(), Failure::Transient);
        assert_eq!(
            ProduceError::AckTimeout(Duration::from_secs(1)).failure(),
            Failure::Transient
        );
    }
}
