//! The envelope: what hookline knows about a record, carried in its headers.
//!
//! Ingest writes it, the worker reads it back; one type for both keeps the two
//! from drifting apart.

use uuid::Uuid;

use crate::headers as h;

/// The hookline headers of a record on a main topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub event_id: Uuid,
    /// The provider's event type, e.g. `order.paid`.
    pub event_type: String,
    pub source: String,
    /// RFC 3339, UTC.
    pub received_at: String,
    /// The partition count the producer placed the record with.
    pub partition_count: u32,
    pub schema: String,
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

impl Envelope {
    /// The headers to write, in a fixed order.
    pub fn to_headers(&self) -> [(&'static str, String); 6] {
        [
            (h::EVENT_ID, self.event_id.to_string()),
            (h::EVENT_TYPE, self.event_type.clone()),
            (h::SOURCE, self.source.clone()),
            (h::RECEIVED_AT, self.received_at.clone()),
            (h::PARTITION_COUNT, self.partition_count.to_string()),
            (h::SCHEMA, self.schema.clone()),
        ]
    }

    /// Reads an envelope from a record's headers (name, value); the last value
    /// of a repeated header wins, as with most Kafka header readers.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Result<Self, EnvelopeError> {
        let mut found: [Option<&[u8]>; 6] = [None; 6];
        let names = [
            h::EVENT_ID,
            h::EVENT_TYPE,
            h::SOURCE,
            h::RECEIVED_AT,
            h::PARTITION_COUNT,
            h::SCHEMA,
        ];
        for (name, value) in headers {
            if let Some(slot) = names.iter().position(|n| *n == name) {
                found[slot] = value;
            }
        }
        let text = |slot: usize| -> Result<&str, EnvelopeError> {
            let bytes = found[slot].ok_or(EnvelopeError::Missing(names[slot]))?;
            std::str::from_utf8(bytes).map_err(|_| EnvelopeError::NotUtf8(names[slot]))
        };
        let invalid = |slot: usize, value: &str| EnvelopeError::Invalid {
            header: names[slot],
            value: value.chars().take(64).collect(),
        };
        let event_id = text(0)?;
        let partition_count = text(4)?;
        Ok(Self {
            event_id: Uuid::parse_str(event_id).map_err(|_| invalid(0, event_id))?,
            event_type: text(1)?.to_owned(),
            source: text(2)?.to_owned(),
            received_at: text(3)?.to_owned(),
            partition_count: partition_count
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(4, partition_count))?,
            schema: text(5)?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            event_id: crate::event_id("stripe", "evt_1"),
            event_type: "order.paid".into(),
            source: "stripe".into(),
            received_at: "2026-11-27T00:00:00.000Z".into(),
            partition_count: 4,
            schema: "orders/v1".into(),
        }
    }

    fn round_trip(headers: &[(&'static str, String)]) -> Result<Envelope, EnvelopeError> {
        Envelope::from_headers(headers.iter().map(|(k, v)| (*k, Some(v.as_bytes()))))
    }

    #[test]
    fn headers_round_trip() {
        assert_eq!(round_trip(&envelope().to_headers()), Ok(envelope()));
    }

    #[test]
    fn each_missing_header_is_named() {
        for skip in 0..6 {
            let mut headers = envelope().to_headers().to_vec();
            let (name, _) = headers.remove(skip);
            assert_eq!(round_trip(&headers), Err(EnvelopeError::Missing(name)));
        }
    }

    #[test]
    fn zero_or_garbage_partition_count_is_invalid() {
        for bad in ["0", "-1", "four", ""] {
            let mut headers = envelope().to_headers();
            headers[4].1 = bad.to_owned();
            assert!(
                matches!(round_trip(&headers), Err(EnvelopeError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_utf8_and_bad_uuid_are_refused() {
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        let good = envelope().to_headers();
        for (k, v) in &good {
            headers.push((k, Some(v.as_bytes())));
        }
        headers[1].1 = Some(&[0xff, 0xfe]);
        assert_eq!(
            Envelope::from_headers(headers.clone()),
            Err(EnvelopeError::NotUtf8(h::EVENT_TYPE))
        );
        headers[1].1 = Some(b"order.paid");
        headers[0].1 = Some(b"not-a-uuid");
        assert!(matches!(
            Envelope::from_headers(headers),
            Err(EnvelopeError::Invalid { .. })
        ));
    }

    #[test]
    fn header_without_value_is_missing() {
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        let good = envelope().to_headers();
        for (k, v) in &good {
            headers.push((k, Some(v.as_bytes())));
        }
        headers[5].1 = None;
        assert_eq!(
            Envelope::from_headers(headers),
            Err(EnvelopeError::Missing(h::SCHEMA))
        );
    }
}
