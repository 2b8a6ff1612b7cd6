//! Dead-lettering records the worker can never write: the original key, value
//! and headers, plus the reason headers, to `<topic>.DLQ`.
//!
//! What the broker's answer means decides what happens, class by class:
//!
//! - **No ack in time, queue full, broker away**: retried with the batch. A
//!   record whose ack timed out is still in the producer's queue, so the retry
//!   waits for that same delivery ([`InFlight`]) instead of sending a second
//!   copy.
//! - **Too large** (the broker's, or the producer's own, size limit): a copy
//!   whose value is cut to fit is kept instead, with the reason
//!   `dead_letter_too_large`, the original reason, the original value's size
//!   and SHA-256, and the source coordinates. Nothing is lost that a human
//!   cannot get back: the original stays in the source topic at those
//!   coordinates while its retention lasts, and the digest says whether what
//!   is found there is it. Holding the partition instead would stop every
//!   later record for a record that can never fit.
//! - **Refused for good** (not authorized, invalid or missing topic): the
//!   partition stops, loudly ([`DeadLetterError::Refused`]): the batch is held
//!   and retried at the longest backoff, nothing is committed past the record,
//!   and the caller says why in `/readyz`, a metric and the log. Writing the
//!   letter anywhere else would lose it to whoever reads the DLQ; skipping it
//!   would lose it outright. It resumes by itself once the topic exists or
//!   the permission is granted.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hookline_contract::Reason;
use hookline_contract::headers::dlq as dlq_headers;
use hookline_kafka::produce::{Delivery, Failure, ProduceError, Producer, Record};
use hookline_kafka::{ClientSettings, DeadLetter};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::{ClientConfig, Message};
use sha2::{Digest, Sha256};

use crate::decode::Poison;
use crate::{Error, Result};

/// How long a dead-letter record may wait for its ack before the batch is
/// retried (the record stays queued, and the retry waits for it).
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest dead-letter record the producer sends by default
/// (`--dlq-max-bytes`): a main-topic record (1 MiB by default at ingest) with
/// room for its reason headers. A larger one is refused locally, as a broker
/// would refuse it, and kept as a cut copy.
pub const DLQ_MAX_BYTES: usize = 4 << 20;

/// What a record needs besides its key, value and headers (record and batch
/// framing), with a margin: a cut copy is sized to fit under the limit with it.
const RECORD_OVERHEAD: usize = 1024;

/// How often the producer asks the broker about the DLQ topic. librdkafka's
/// default (5 minutes) is how long a partition stopped for a missing DLQ
/// would stay stopped after the topic is created; a metadata request every
/// few seconds costs nothing.
const METADATA_REFRESH_MS: &str = "5000";

/// The producer of one topic's DLQ.
pub struct DeadLetters {
    producer: Producer,
    topic: String,
    /// The producer's record size limit, which a cut copy is sized to fit.
    max_bytes: usize,
}

/// A dead letter handed to the producer and not acknowledged yet: kept with
/// its record so that a retry waits for it rather than sending it again.
#[derive(Debug)]
pub struct InFlight {
    delivery: Delivery,
    /// How many bytes of the value this letter keeps (`None`: all of them).
    cut: Option<usize>,
}

/// How a dead letter was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The record as it was.
    Whole,
    /// A copy whose value was cut to this many bytes.
    Cut(usize),
}

/// Why a dead letter is not in the DLQ yet.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// Nothing acknowledged yet, and retrying may help. After an ack timeout
    /// the letter is still queued, and the retry waits for it.
    #[error("sending a dead letter to {topic} failed")]
    Send {
        topic: String,
        #[source]
        source: ProduceError,
    },
    /// The broker refuses the DLQ for good (topic missing, not authorized, a
    /// copy cut to nothing still too large) until someone acts.
    #[error("the broker refuses dead letters to {topic}")]
    Refused {
        topic: String,
        #[source]
        source: ProduceError,
    },
}

impl DeadLetterError {
    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DeadLetterError::Send {
                source: ProduceError::AckTimeout(_),
                ..
            } => "dlq_ack_timeout",
            DeadLetterError::Send { .. } => "dlq_produce",
            DeadLetterError::Refused { .. } => "dlq_refused",
        }
    }
}

/// What to do about a refused letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Retry,
    Cut,
    Stop,
}

/// The broker's answer, by class (see the module doc). A topic the broker
/// does not know is not worth a quick retry here, unlike for ingest: the
/// operator creates DLQs with their topics, so a missing one is an error of
/// the deployment, and the partition stops loudly until it is fixed.
fn next_step(error: &ProduceError) -> Next {
    if let ProduceError::Refused(kafka) = error
        && matches!(
            kafka.rdkafka_error_code(),
            Some(RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition)
        )
    {
        return Next::Stop;
    }
    match error.failure() {
        Failure::Transient => Next::Retry,
        Failure::TooLarge => Next::Cut,
        Failure::Refused => Next::Stop,
    }
}

/// How many bytes of a value of `len` bytes the next copy keeps, after a copy
/// keeping `previous` bytes (the whole value at first) was refused as too
/// large; `None` when nothing is left to cut. The first cut keeps what fits
/// the producer's own limit (`budget`); a broker with a lower limit gets
/// halves until one fits.
fn next_cut(previous: usize, budget: usize) -> Option<usize> {
    if previous == 0 {
        None
    } else if budget < previous {
        Some(budget)
    } else {
        Some(previous / 2)
    }
}

impl DeadLetters {
    /// The producer of `topic`, sending records of at most `max_bytes`.
    pub fn new(kafka: &ClientSettings, topic: String, max_bytes: usize) -> Result<Self> {
        let producer = Producer::new(&producer_config(kafka, max_bytes), ACK_TIMEOUT)
            .map_err(|e| Error::CreateProducer(Box::new(e)))?;
        Ok(Self {
            producer,
            topic,
            max_bytes,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends `record` to the DLQ with `poison`'s reason and waits for the ack;
    /// a record too large for the DLQ is kept as a cut copy. `in_flight`
    /// belongs to the record: a letter whose ack timed out stays there, and
    /// the next call waits for it instead of sending another.
    pub async fn send(
        &self,
        record: &OwnedMessage,
        poison: &Poison,
        in_flight: &mut Option<InFlight>,
    ) -> Result<Kept, DeadLetterError> {
        loop {
            let flight = match in_flight {
                Some(flight) => flight,
                None => match self.enqueue(record, poison, None) {
                    Ok(flight) => in_flight.insert(flight),
                    Err(error) => {
                        self.after_refusal(record, poison, in_flight, None, error)?;
                        continue;
                    }
                },
            };
            let cut = flight.cut;
            match self.producer.delivered(&mut flight.delivery).await {
                Ok(_) => {
                    *in_flight = None;
                    return Ok(cut.map_or(Kept::Whole, Kept::Cut));
                }
                // Still queued: the next attempt waits for the same letter.
                Err(error @ ProduceError::AckTimeout(_)) => {
                    return Err(DeadLetterError::Send {
                        topic: self.topic.clone(),
                        source: error,
                    });
                }
                Err(error) => {
                    *in_flight = None;
                    self.after_refusal(record, poison, in_flight, cut, error)?;
                }
            }
        }
    }

    /// The letter keeping `cut` bytes was refused with `error`: either a cut
    /// copy is now in flight, or the error is returned.
    fn after_refusal(
        &self,
        record: &OwnedMessage,
        poison: &Poison,
        in_flight: &mut Option<InFlight>,
        cut: Option<usize>,
        error: ProduceError,
    ) -> Result<(), DeadLetterError> {
        let topic = || self.topic.clone();
        match next_step(&error) {
            Next::Retry => Err(DeadLetterError::Send {
                topic: topic(),
                source: error,
            }),
            Next::Stop => Err(DeadLetterError::Refused {
                topic: topic(),
                source: error,
            }),
            Next::Cut => {
                let value = record.payload().unwrap_or_default();
                let previous = cut.unwrap_or(value.len());
                let mut keep = next_cut(previous, cut_budget(record, poison, self.max_bytes));
                // A local refusal comes back at once: cut again until the
                // producer takes a copy, or nothing is left to cut.
                loop {
                    let Some(bytes) = keep else {
                        return Err(DeadLetterError::Refused {
                            topic: topic(),
                            source: error,
                        });
                    };
                    tracing::warn!(
                        partition = record.partition(), offset = record.offset(),
                        bytes = value.len(), keep = bytes, reason = %poison.reason,
                        "dead letter too large for the DLQ; keeping a copy cut to fit"
                    );
                    match self.enqueue(record, poison, Some(bytes)) {
                        Ok(flight) => {
                            *in_flight = Some(flight);
                            return Ok(());
                        }
                        Err(again) if next_step(&again) == Next::Cut => {
                            keep = next_cut(bytes, usize::MAX);
                        }
                        Err(again) => return self.after_refusal_of_cut(again),
                    }
                }
            }
        }
    }

    fn after_refusal_of_cut(&self, error: ProduceError) -> Result<(), DeadLetterError> {
        let topic = self.topic.clone();
        match next_step(&error) {
            Next::Retry => Err(DeadLetterError::Send {
                topic,
                source: error,
            }),
            Next::Cut | Next::Stop => Err(DeadLetterError::Refused {
                topic,
                source: error,
            }),
        }
    }

    /// Hands the letter of `record` to the producer: whole, or keeping the
    /// first `cut` bytes of its value.
    fn enqueue(
        &self,
        record: &OwnedMessage,
        poison: &Poison,
        cut: Option<usize>,
    ) -> Result<InFlight, ProduceError> {
        let value = record.payload();
        let (value, headers) = match cut {
            None => (
                value,
                letter(record, poison, Utc::now()).headers(record.headers()),
            ),
            Some(bytes) => {
                let whole = value.unwrap_or_default();
                let kept = &whole[..bytes.min(whole.len())];
                (
                    Some(kept),
                    cut_headers(record, poison, Utc::now(), kept.len()),
                )
            }
        };
        self.producer
            .enqueue(Record {
                topic: &self.topic,
                partition: None,
                key: record.key(),
                value,
                headers,
            })
            .map(|delivery| InFlight { delivery, cut })
    }
}

/// The shared producer settings, with room for a main-topic record and its
/// reason headers.
fn producer_config(kafka: &ClientSettings, max_bytes: usize) -> ClientConfig {
    let mut config = kafka.producer("hookline-worker-dlq");
    config
        .set("message.max.bytes", max_bytes.to_string())
        .set("topic.metadata.refresh.interval.ms", METADATA_REFRESH_MS);
    config
}

/// The dead-letter context of `record`: where it was read, and why it is
/// refused.
fn letter(record: &OwnedMessage, poison: &Poison, at: DateTime<Utc>) -> DeadLetter {
    DeadLetter {
        topic: record.topic().to_owned(),
        origin: Some((record.partition(), record.offset())),
        stage: poison.stage,
        reason: poison.reason,
        message: poison.message.clone(),
        at,
    }
}

/// The headers of a copy of `record` whose value keeps `kept` bytes: the
/// original headers, the context with reason `dead_letter_too_large` (the
/// original reason and message in the text), and what identifies the
/// original value.
fn cut_headers(
    record: &OwnedMessage,
    poison: &Poison,
    at: DateTime<Utc>,
    kept: usize,
) -> OwnedHeaders {
    let value = record.payload().unwrap_or_default();
    let digest = hex::encode(Sha256::digest(value));
    let context = DeadLetter {
        reason: Reason::DeadLetterTooLarge,
        message: format!(
            "{}: {}; the value of {} bytes was too large for the DLQ and was cut to its first {kept} bytes; sha256 of the original value {digest}; the original is at the source coordinates",
            poison.reason,
            poison.message,
            value.len()
        ),
        ..letter(record, poison, at)
    };
    context
        .headers(record.headers())
        .insert(text(dlq_headers::ORIGINAL_SHA256, &digest))
        .insert(text(dlq_headers::ORIGINAL_BYTES, &value.len().to_string()))
        .insert(text(dlq_headers::ORIGINAL_REASON, poison.reason.as_str()))
}

fn text<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a [u8]> {
    Header {
        key,
        value: Some(value.as_bytes()),
    }
}

/// How many bytes of `record`'s value fit the producer's limit beside its
/// key and the headers of a cut copy.
fn cut_budget(record: &OwnedMessage, poison: &Poison, max_bytes: usize) -> usize {
    let headers = cut_headers(record, poison, Utc::now(), 0);
    let header_bytes: usize = headers
        .iter()
        .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
        .sum();
    let key = record.key().map_or(0, <[u8]>::len);
    max_bytes.saturating_sub(key + header_bytes + RECORD_OVERHEAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use hookline_contract::Reason;
    use hookline_contract::reason::Stage;
    use hookline_kafka::Envelope;
    use rdkafka::Timestamp;
    use rdkafka::message::Headers;

    fn record() -> OwnedMessage {
        let envelope = Envelope {
            event_id: hookline_contract::event_id("stripe", "evt_1"),
            event_type: "order.paid".into(),
            source: "stripe".into(),
            received_at: Utc::now(),
            partition_count: 4,
            schema: "orders/v1".into(),
            message_id: None,
        };
        OwnedMessage::new(
            Some(b"{}".to_vec()),
            Some(b"user-1".to_vec()),
            "orders.webhooks".into(),
            Timestamp::NotAvailable,
            3,
            41,
            Some(envelope.to_headers()),
        )
    }

    #[test]
    fn a_letter_says_where_the_record_was_read_and_keeps_its_headers() {
        let poison = Poison {
            stage: Stage::Write,
            reason: Reason::ConstraintViolation,
            message: "SQLSTATE 22P05".into(),
        };
        let record = record();
        // Headers carry milliseconds.
        let at = Utc.timestamp_millis_opt(1_795_000_000_500).unwrap();
        let letter = letter(&record, &poison, at);
        assert_eq!(letter.topic, "orders.webhooks");
        assert_eq!(letter.origin, Some((3, 41)));
        assert_eq!(
            (letter.stage, letter.reason),
            (Stage::Write, Reason::ConstraintViolation)
        );
        let headers = letter.headers(record.headers());
        assert_eq!(
            DeadLetter::from_headers(Some(&headers)).as_ref(),
            Ok(&letter)
        );
        assert!(Envelope::from_headers(Some(&headers)).is_ok());
        assert!(headers.count() > 7);
    }

    #[test]
    fn dead_letters_never_expire_and_fit_a_main_topic_record() {
        let config = producer_config(&ClientSettings::new("b:9092"), DLQ_MAX_BYTES);
        assert_eq!(config.get("message.max.bytes"), Some("4194304"));
        assert_eq!(config.get("message.timeout.ms"), Some("0"));
        assert_eq!(config.get("acks"), Some("all"));
    }

    fn refused(code: RDKafkaErrorCode) -> ProduceError {
        ProduceError::Refused(rdkafka::error::KafkaError::MessageProduction(code))
    }

    #[test]
    fn each_refusal_class_has_its_answer() {
        assert_eq!(
            next_step(&ProduceError::AckTimeout(Duration::ZERO)),
            Next::Retry
        );
        assert_eq!(next_step(&ProduceError::QueueFull), Next::Retry);
        assert_eq!(
            next_step(&refused(RDKafkaErrorCode::NotLeaderForPartition)),
            Next::Retry
        );
        assert_eq!(
            next_step(&refused(RDKafkaErrorCode::MessageSizeTooLarge)),
            Next::Cut
        );
        for code in [
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidTopic,
        ] {
            assert_eq!(next_step(&refused(code)), Next::Stop, "{code:?}");
        }
    }

    #[test]
    fn cuts_keep_what_fits_then_halve_down_to_nothing() {
        assert_eq!(next_cut(5_000_000, 4_000_000), Some(4_000_000));
        assert_eq!(next_cut(4_000_000, 4_000_000), Some(2_000_000));
        assert_eq!(next_cut(1, usize::MAX), Some(0));
        assert_eq!(next_cut(0, usize::MAX), None);
    }

    #[test]
    fn a_cut_copy_names_its_original_and_fits() {
        let poison = Poison {
            stage: Stage::Decode,
            reason: Reason::Undecodable,
            message: "no envelope".into(),
        };
        let record = record();
        let at = Utc.timestamp_millis_opt(1_795_000_000_500).unwrap();
        let headers = cut_headers(&record, &poison, at, 1);
        let context = DeadLetter::from_headers(Some(&headers)).unwrap();
        assert_eq!(context.reason, Reason::DeadLetterTooLarge);
        assert_eq!(context.origin, Some((3, 41)));
        assert!(context.message.starts_with("undecodable: no envelope;"));
        let value = |key| {
            headers
                .iter()
                .find(|h| h.key == key)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(
            value(dlq_headers::ORIGINAL_SHA256).as_deref(),
            Some(hex::encode(Sha256::digest(b"{}")).as_str())
        );
        assert_eq!(value(dlq_headers::ORIGINAL_BYTES).as_deref(), Some("2"));
        assert_eq!(
            value(dlq_headers::ORIGINAL_REASON).as_deref(),
            Some("undecodable")
        );
        assert!(
            Envelope::from_headers(Some(&headers)).is_ok(),
            "keeps the envelope"
        );
        let budget = cut_budget(&record, &poison, DLQ_MAX_BYTES);
        assert!(budget > DLQ_MAX_BYTES - 4096 && budget < DLQ_MAX_BYTES);
    }
}
