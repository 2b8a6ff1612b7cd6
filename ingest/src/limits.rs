//! How large a body may be: its record, and the dead letter of that record,
//! must both fit the largest record the broker takes.
//!
//! A body becomes a record whose value is the body, plus a key (the user id)
//! and headers (the envelope; or, quarantined at ingest, the origin and the
//! reason). A worker that later refuses the record dead-letters a copy: the
//! same key, value and headers, plus reason headers. The broker refuses for
//! good a record over its limit (`message.max.bytes`), and a dead letter it
//! refuses can hold a partition. So:
//!
//! - every record ingest produces leaves [`DEAD_LETTER_HEADROOM_BYTES`] under
//!   the broker's limit: the producer's own limit is set that much lower, and
//!   refuses (413) anything that would not leave it, whatever its key;
//! - the body limit leaves [`RECORD_HEADROOM_BYTES`] more for the key and
//!   headers of an ordinary record, so that a body within the limit is
//!   accepted.
//!
//! [`HEADROOM_BYTES`] is both; the tests below build the largest records
//! hookline writes and check that they fit.

use crate::{Error, Result};

/// Kafka's default `message.max.bytes` (1 MiB + 12 bytes), which is also a
/// topic's default `max.message.bytes`; defined beside the DLQ's limit, which
/// the tests below hold to it.
pub use hookline_kafka::topics::KAFKA_DEFAULT_MESSAGE_MAX_BYTES;

/// What a dead letter adds to the record it copies: the `hookline.errors.*`
/// headers, whose message is bounded (512 characters, so at most 2 KiB of
/// UTF-8) and whose topic name is at most 249 bytes, with room to spare.
pub const DEAD_LETTER_HEADROOM_BYTES: usize = 8 * 1024;

/// What a record adds to its body: the key (a user id, at most
/// [`MAX_KEY_BYTES`] in a dead letter), the envelope or origin headers, a
/// quarantine's reason headers, and the record batch's framing.
pub const RECORD_HEADROOM_BYTES: usize = 8 * 1024;

/// Everything between the broker's limit and the body limit.
pub const HEADROOM_BYTES: usize = DEAD_LETTER_HEADROOM_BYTES + RECORD_HEADROOM_BYTES;

/// Longest key a quarantined record keeps: a longer user id (the reason it
/// is invalid, perhaps) is dropped from the key rather than let a dead letter
/// grow with it. Built-in schemas allow user ids of 255 characters.
pub const MAX_KEY_BYTES: usize = 1024;

/// The largest record ingest produces under a broker limit of
/// `message_max_bytes`: the rest is for the reason headers of its dead letter.
pub fn max_record_bytes(message_max_bytes: usize) -> usize {
    message_max_bytes.saturating_sub(DEAD_LETTER_HEADROOM_BYTES)
}

/// The body limit: `configured` when it is set and leaves the headroom, else
/// the most that does.
pub fn max_body_bytes(message_max_bytes: usize, configured: Option<usize>) -> Result<usize> {
    let ceiling = message_max_bytes
        .checked_sub(HEADROOM_BYTES)
        .filter(|&ceiling| ceiling > 0)
        .ok_or(Error::InvalidSetting(
            "--max-message-bytes must exceed the 16 KiB kept for headers",
        ))?;
    match configured {
        None => Ok(ceiling),
        Some(0) => Err(Error::InvalidSetting("--max-body-bytes must be at least 1")),
        Some(limit) if limit > ceiling => Err(Error::InvalidSetting(
            "--max-body-bytes must leave 16 KiB of --max-message-bytes for the headers of \
             the record and of its dead letter",
        )),
        Some(limit) => Ok(limit),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use hookline_contract::Reason;
    use hookline_contract::reason::Stage;
    use hookline_kafka::envelope::Origin;
    use hookline_kafka::{DeadLetter, Envelope};
    use rdkafka::message::{Headers, OwnedHeaders};
    use uuid::Uuid;

    use super::*;

    /// Longest topic name Kafka allows.
    const MAX_TOPIC: usize = 249;
    /// Bytes of a bounded dead-letter message: 512 characters of 4 bytes,
    /// and the ellipsis.
    const MAX_MESSAGE: usize = 512 * 4 + 3;

    /// An upper bound of a record's size in a v2 record batch: the batch
    /// header (61 bytes), the record's own fields (at most 21 bytes of
    /// varints and attributes), then key, value and each header with two
    /// length varints (at most 5 bytes each).
    fn wire_size(key: usize, value: usize, headers: &OwnedHeaders) -> usize {
        let headers: usize = headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len) + 10)
            .sum();
        61 + 21 + 5 + key + 5 + value + 5 + headers
    }

    fn letter(stage: Stage, origin: Option<(i32, i64)>) -> DeadLetter {
        DeadLetter {
            topic: "t".repeat(MAX_TOPIC),
            origin,
            stage,
            reason: Reason::ALL[0],
            message: "€".repeat(MAX_MESSAGE / 3),
            at: Utc::now(),
        }
    }

    fn largest_reason() -> usize {
        Reason::ALL
            .iter()
            .map(|reason| reason.as_str().len())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_quarantined_body_at_the_limit_fits_with_its_longest_key_and_headers() {
        let body = max_body_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES, None).unwrap();
        let origin = Origin {
            event_id: Uuid::nil(),
            source: &"s".repeat(63),
            received_at: Utc::now(),
            schema: &"s".repeat(256),
            message_id: Some(&"m".repeat(crate::auth::mac::MAX_MESSAGE_ID_BYTES)),
        };
        let headers = letter(Stage::Ingest, None).append_to(origin.to_headers());

        let size = wire_size(MAX_KEY_BYTES, body, &headers) + largest_reason();

        assert!(
            size <= max_record_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES),
            "{size}"
        );
    }

    #[test]
    fn the_dead_letter_of_any_record_ingest_produces_fits_the_broker() {
        // The producer refuses a record over `max_record_bytes`, key and
        // headers included; a worker's dead letter adds its reason headers.
        let record = max_record_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES);
        let reasons =
            letter(Stage::Write, Some((i32::MAX, i64::MAX))).append_to(OwnedHeaders::new());

        let size = record + wire_size(0, 0, &reasons) + largest_reason();

        assert!(size <= KAFKA_DEFAULT_MESSAGE_MAX_BYTES, "{size}");
    }

    #[test]
    fn a_dlq_topic_takes_the_dead_letter_of_the_largest_accepted_webhook_with_a_mebibyte_to_spare()
    {
        // The largest dead letter of an ingest at its default limit, as the
        // test above builds it.
        let record = max_record_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES);
        let reasons =
            letter(Stage::Write, Some((i32::MAX, i64::MAX))).append_to(OwnedHeaders::new());
        let largest = record + wire_size(0, 0, &reasons) + largest_reason();

        let dlq = hookline_kafka::topics::DLQ_MAX_MESSAGE_BYTES;

        assert!(largest + (1 << 20) <= dlq, "{largest} + 1 MiB > {dlq}");
    }

    #[test]
    fn a_valid_body_at_the_limit_fits_the_producer_with_its_envelope() {
        let body = max_body_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES, None).unwrap();
        let envelope = Envelope {
            event_id: Uuid::nil(),
            event_type: "e".repeat(255),
            source: "s".repeat(63),
            received_at: Utc::now(),
            partition_count: u32::MAX,
            schema: "s".repeat(256),
            message_id: Some("m".repeat(crate::auth::mac::MAX_MESSAGE_ID_BYTES)),
        };

        // A built-in schema's user id: 255 characters of up to 4 bytes.
        let size = wire_size(255 * 4, body, &envelope.to_headers());

        assert!(
            size <= max_record_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES),
            "{size}"
        );
    }

    #[test]
    fn a_body_limit_that_leaves_no_headroom_is_refused() {
        let ceiling = KAFKA_DEFAULT_MESSAGE_MAX_BYTES - HEADROOM_BYTES;
        assert_eq!(
            max_body_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES, Some(ceiling)).unwrap(),
            ceiling
        );
        assert!(max_body_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES, Some(ceiling + 1)).is_err());
        assert!(max_body_bytes(KAFKA_DEFAULT_MESSAGE_MAX_BYTES, Some(0)).is_err());
        assert!(max_body_bytes(HEADROOM_BYTES, None).is_err());
        // A broker that takes 4 MiB records lets bodies of almost 4 MiB in.
        assert_eq!(
            max_body_bytes(4 << 20, None).unwrap(),
            (4 << 20) - HEADROOM_BYTES
        );
    }
}
