//! The dead-letter context: why and where a record was refused, in the Kafka
//! Connect style `hookline.errors.*` headers, written after the record's own
//! headers and read back by the tools.

use chrono::{DateTime, Utc};
use hookline_contract::Reason;
use hookline_contract::headers::dlq;
use hookline_contract::reason::Stage;
use rdkafka::message::{Header, Headers, OwnedHeaders};

use crate::envelope::{EnvelopeError, Found, invalid, text, timestamp};

/// Why and where a record was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The topic the record was read from (or meant for, at ingest).
    pub topic: String,
    /// Partition and offset it was read from; none for a record refused at
    /// ingest, which never reached its topic.
    pub origin: Option<(i32, i64)>,
    pub stage: Stage,
    pub reason: Reason,
    /// Human text, already bounded by whoever refused the record.
    pub message: String,
    pub at: DateTime<Utc>,
}

impl DeadLetter {
    /// `original`'s headers, then the context's: a dead letter keeps what the
    /// record carried.
    pub fn headers(&self, original: Option<&impl Headers>) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new_with_capacity(16);
        if let Some(original) = original {
            for header in original.iter() {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
        self.append_to(headers)
    }

    /// `headers` with the context appended.
    pub fn append_to(&self, mut headers: OwnedHeaders) -> OwnedHeaders {
        headers = headers.insert(text(dlq::TOPIC, &self.topic));
        if let Some((partition, offset)) = self.origin {
            headers = headers
                .insert(text(dlq::PARTITION, &partition.to_string()))
                .insert(text(dlq::OFFSET, &offset.to_string()));
        }
        headers
            .insert(text(dlq::STAGE, self.stage.as_str()))
            .insert(text(dlq::REASON, self.reason.as_str()))
            .insert(text(dlq::MESSAGE, &self.message))
            .insert(text(dlq::TIMESTAMP, &timestamp(self.at)))
    }

    /// Reads the context of a dead-letter record.
    pub fn from_headers(headers: Option<&impl Headers>) -> Result<Self, EnvelopeError> {
        let found = Found::new(headers);
        let topic = found.text(dlq::TOPIC)?;
        let origin = match (found.text(dlq::PARTITION), found.text(dlq::OFFSET)) {
            (Ok(partition), Ok(offset)) => Some((
                partition
                    .parse()
                    .map_err(|_| invalid(dlq::PARTITION, partition))?,
                offset.parse().map_err(|_| invalid(dlq::OFFSET, offset))?,
            )),
            (Err(EnvelopeError::Missing(_)), Err(EnvelopeError::Missing(_))) => None,
            (Err(error), _) | (_, Err(error)) => return Err(error),
        };
        let stage = found.text(dlq::STAGE)?;
        let reason = found.text(dlq::REASON)?;
        let message = found.text(dlq::MESSAGE)?;
        let at = found.text(dlq::TIMESTAMP)?;
        Ok(Self {
            topic: topic.to_owned(),
            origin,
            stage: stage.parse().map_err(|_| invalid(dlq::STAGE, stage))?,
            reason: reason.parse().map_err(|_| invalid(dlq::REASON, reason))?,
            message: message.to_owned(),
            at: DateTime::parse_from_rfc3339(at)
                .map(|t| t.to_utc())
                .map_err(|_| invalid(dlq::TIMESTAMP, at))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn worker_letter() -> DeadLetter {
        DeadLetter {
            topic: "orders.webhooks".into(),
            origin: Some((3, 41)),
            stage: Stage::Write,
            reason: Reason::ConstraintViolation,
            message: "refused".into(),
            at: Utc.timestamp_millis_opt(1_795_000_000_500).unwrap(),
        }
    }

    #[test]
    fn context_round_trips_after_the_original_headers() {
        let original = OwnedHeaders::new().insert(text("hookline-event-id", "x"));
        let letter = worker_letter();
        let headers = letter.headers(Some(&original));
        assert_eq!(headers.get(0).key, "hookline-event-id");
        assert_eq!(DeadLetter::from_headers(Some(&headers)), Ok(letter));
    }

    #[test]
    fn a_letter_from_ingest_has_no_origin() {
        let letter = DeadLetter {
            origin: None,
            stage: Stage::Ingest,
            reason: Reason::SchemaInvalid,
            ..worker_letter()
        };
        let headers = letter.append_to(OwnedHeaders::new());
        assert_eq!(DeadLetter::from_headers(Some(&headers)), Ok(letter));
    }

    #[test]
    fn an_unknown_reason_or_half_an_origin_is_refused_by_name() {
        let headers = worker_letter()
            .append_to(OwnedHeaders::new())
            .insert(text(dlq::REASON, "gremlins"));
        assert!(matches!(
            DeadLetter::from_headers(Some(&headers)),
            Err(EnvelopeError::Invalid { header, .. }) if header == dlq::REASON
        ));
        let half = OwnedHeaders::new()
            .insert(text(dlq::TOPIC, "t"))
            .insert(text(dlq::PARTITION, "1"));
        assert_eq!(
            DeadLetter::from_headers(Some(&half)),
            Err(EnvelopeError::Missing(dlq::OFFSET))
        );
    }
}
