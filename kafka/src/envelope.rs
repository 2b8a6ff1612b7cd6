//! The envelope: what hookline knows about a record, carried in its headers.
//!
//! Ingest writes it, the worker and the tools read it back; one codec for both
//! directions keeps them from drifting apart.

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_contract::headers as h;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use uuid::Uuid;

/// The hookline headers of a record on a main topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub event_id: Uuid,
    /// The provider's event type, e.g. `order.paid`.
    pub event_type: String,
    pub source: String,
    /// When ingest received the webhook; carried to the millisecond.
    pub received_at: DateTime<Utc>,
    /// The partition count the producer placed the record with.
    pub partition_count: u32,
    pub schema: String,
    /// The message id the source's scheme signed (`webhook-id`), when it
    /// signs one: the provider event id of a
    /// declared type without an event-id pointer.
    pub message_id: Option<String>,
}

/// What is known of every authentic webhook, valid or not: the headers a
/// quarantined record carries (its type and placement may not be known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin<'a> {
    pub event_id: Uuid,
    pub source: &'a str,
    pub received_at: DateTime<Utc>,
    pub schema: &'a str,
    pub message_id: Option<&'a str>,
}

/// Why a record's headers do not make an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("header {0} is missing")]
    Missing(&'static str),
    #[error("header {0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("header {header} has an invalid value {value:?}")]
    Invalid { header: &'static str, value: String },
}

/// A time as every hookline header writes it: RFC 3339, UTC, milliseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Envelope {
    /// The headers to write, in a fixed order.
    pub fn to_headers(&self) -> OwnedHeaders {
        Origin {
            event_id: self.event_id,
            source: &self.source,
            received_at: self.received_at,
            schema: &self.schema,
            message_id: self.message_id.as_deref(),
        }
        .to_headers()
        .insert(text(h::EVENT_TYPE, &self.event_type))
        .insert(text(h::PARTITION_COUNT, &self.partition_count.to_string()))
    }

    /// Reads an envelope from a record's headers; the last value of a repeated
    /// header wins, as with most Kafka header readers.
    pub fn from_headers(headers: Option<&impl Headers>) -> Result<Self, EnvelopeError> {
        let found = Found::new(headers);
        let event_id = found.text(h::EVENT_ID)?;
        let event_type = found.text(h::EVENT_TYPE)?;
        let source = found.text(h::SOURCE)?;
        let received_at = found.text(h::RECEIVED_AT)?;
        let partition_count = found.text(h::PARTITION_COUNT)?;
        Ok(Self {
            event_id: Uuid::parse_str(event_id).map_err(|_| invalid(h::EVENT_ID, event_id))?,
            event_type: event_type.to_owned(),
            source: source.to_owned(),
            received_at: DateTime::parse_from_rfc3339(received_at)
                .map(|t| t.to_utc())
                .map_err(|_| invalid(h::RECEIVED_AT, received_at))?,
            partition_count: partition_count
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(h::PARTITION_COUNT, partition_count))?,
            schema: found.text(h::SCHEMA)?.to_owned(),
            message_id: found.optional_text(h::MESSAGE_ID)?.map(str::to_owned),
        })
    }
}

impl Origin<'_> {
    pub fn to_headers(&self) -> OwnedHeaders {
        let headers = OwnedHeaders::new_with_capacity(8)
            .insert(text(h::EVENT_ID, &self.event_id.to_string()))
            .insert(text(h::SOURCE, self.source))
            .insert(text(h::RECEIVED_AT, &timestamp(self.received_at)))
            .insert(text(h::SCHEMA, self.schema));
        match self.message_id {
            Some(id) => headers.insert(text(h::MESSAGE_ID, id)),
            None => headers,
        }
    }
}

/// The value of header `name` as text, the last one when repeated; `None`
/// when absent, without a value, or not UTF-8. For tools that show what a
/// record carries rather than refuse it.
pub fn header<'a>(headers: Option<&'a impl Headers>, name: &str) -> Option<&'a str> {
    headers?
        .iter()
        .filter(|header| header.key == name)
        .last()
        .and_then(|header| header.value)
        .and_then(|value| std::str::from_utf8(value).ok())
}

/// A UTF-8 header.
pub(crate) fn text<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

pub(crate) fn invalid(header: &'static str, value: &str) -> EnvelopeError {
    EnvelopeError::Invalid {
        header,
        value: value.chars().take(64).collect(),
    }
}

/// The last value of each header of a record, looked up by name.
pub(crate) struct Found<'a> {
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl<'a> Found<'a> {
    pub(crate) fn new(headers: Option<&'a impl Headers>) -> Self {
        Self {
            headers: headers
                .map(|hs| hs.iter().map(|h| (h.key, h.value)).collect())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn text(&self, name: &'static str) -> Result<&'a str, EnvelopeError> {
        let value = self
            .headers
            .iter()
            .rev()
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| *value)
            .ok_or(EnvelopeError::Missing(name))?;
        std::str::from_utf8(value).map_err(|_| EnvelopeError::NotUtf8(name))
    }

    /// [`Found::text`] of a header records may go without.
    pub(crate) fn optional_text(
        &self,
        name: &'static str,
    ) -> Result<Option<&'a str>, EnvelopeError> {
        match self.text(name) {
            Ok(value) => Ok(Some(value)),
            Err(EnvelopeError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn envelope() -> Envelope {
        Envelope {
            event_id: hookline_contract::event_id("stripe", "evt_1"),
            event_type: "order.paid".into(),
            source: "stripe".into(),
            received_at: Utc.timestamp_millis_opt(1_795_000_000_123).unwrap(),
            partition_count: 4,
            schema: "orders/v1".into(),
            message_id: Some("msg_1".into()),
        }
    }

    /// Headers with one of them replaced (`Some`) or removed (`None`).
    fn with(name: &str, value: Option<&[u8]>) -> OwnedHeaders {
        let good = envelope().to_headers();
        let mut headers = OwnedHeaders::new();
        for header in good.iter() {
            if header.key != name {
                headers = headers.insert(header);
            } else if let Some(value) = value {
                headers = headers.insert(Header {
                    key: header.key,
                    value: Some(value),
                });
            }
        }
        headers
    }

    #[test]
    fn headers_round_trip_to_the_millisecond() {
        let headers = envelope().to_headers();
        assert_eq!(Envelope::from_headers(Some(&headers)), Ok(envelope()));
        assert_eq!(
            header(Some(&headers), h::RECEIVED_AT),
            Some("2026-11-18T11:06:40.123Z")
        );
    }

    #[test]
    fn each_missing_header_is_named() {
        for name in [
            h::EVENT_ID,
            h::EVENT_TYPE,
            h::SOURCE,
            h::RECEIVED_AT,
            h::PARTITION_COUNT,
            h::SCHEMA,
        ] {
            let headers = with(name, None);
            assert_eq!(
                Envelope::from_headers(Some(&headers)),
                Err(EnvelopeError::Missing(name))
            );
        }
        assert_eq!(
            Envelope::from_headers(None::<&OwnedHeaders>),
            Err(EnvelopeError::Missing(h::EVENT_ID))
        );
    }

    #[test]
    fn zero_or_garbage_partition_count_is_invalid() {
        for bad in ["0", "-1", "four", ""] {
            let headers = with(h::PARTITION_COUNT, Some(bad.as_bytes()));
            assert!(
                matches!(
                    Envelope::from_headers(Some(&headers)),
                    Err(EnvelopeError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_utf8_bad_uuid_and_bad_time_are_refused() {
        let headers = with(h::EVENT_TYPE, Some(&[0xff, 0xfe]));
        assert_eq!(
            Envelope::from_headers(Some(&headers)),
            Err(EnvelopeError::NotUtf8(h::EVENT_TYPE))
        );
        for (name, bad) in [(h::EVENT_ID, "not-a-uuid"), (h::RECEIVED_AT, "yesterday")] {
            let headers = with(name, Some(bad.as_bytes()));
            assert!(matches!(
                Envelope::from_headers(Some(&headers)),
                Err(EnvelopeError::Invalid { header, .. }) if header == name
            ));
        }
    }

    #[test]
    fn header_without_value_is_missing() {
        let headers = with(h::SCHEMA, None).insert(Header::<&str> {
            key: h::SCHEMA,
            value: None,
        });
        assert_eq!(
            Envelope::from_headers(Some(&headers)),
            Err(EnvelopeError::Missing(h::SCHEMA))
        );
    }

    #[test]
    fn the_last_of_a_repeated_header_wins() {
        let headers = envelope()
            .to_headers()
            .insert(text(h::EVENT_TYPE, "order.refunded"));
        let read = Envelope::from_headers(Some(&headers)).unwrap();
        assert_eq!(read.event_type, "order.refunded");
        assert_eq!(
            header(Some(&headers), h::EVENT_TYPE),
            Some("order.refunded")
        );
    }

    #[test]
    fn an_origin_is_an_envelope_without_type_and_placement() {
        let e = envelope();
        let origin = Origin {
            event_id: e.event_id,
            source: &e.source,
            received_at: e.received_at,
            schema: &e.schema,
            message_id: e.message_id.as_deref(),
        };
        let headers = origin.to_headers();
        assert_eq!(
            Envelope::from_headers(Some(&headers)),
            Err(EnvelopeError::Missing(h::EVENT_TYPE))
        );
        assert_eq!(header(Some(&headers), h::SOURCE), Some("stripe"));
    }
}
