//! Names of the Kafka record headers hookline writes and reads.
//!
//! The record value is the provider's raw body, byte for byte; everything hookline
//! knows about the record travels in these headers. Values are UTF-8 strings.

/// Deterministic id of the event: see [`crate::event_id`].
pub const EVENT_ID: &str = "hookline-event-id";
/// The provider's event type (`order.created`, `dispute.closed`, …).
pub const EVENT_TYPE: &str = "hookline-event-type";
/// The source (provider endpoint) the webhook was received from.
pub const SOURCE: &str = "hookline-source";
/// When ingest received the webhook, RFC 3339 in UTC.
pub const RECEIVED_AT: &str = "hookline-received-at";
/// The partition count the producer saw when it placed the record; the worker
/// checks placement against it, not against today's count.
pub const PARTITION_COUNT: &str = "hookline-partition-count";
/// The provider's id of the message, for schemes that sign one (Standard
/// Webhooks' `webhook-id`, svix's `svix-id`); absent otherwise (GitHub's and
/// Shopify's delivery ids are not signed). Printable ASCII, bounded in
/// length. A provider resends a message with the same id.
pub const MESSAGE_ID: &str = "hookline-message-id";
/// Id and version of the JSON Schema the payload was validated against.
pub const SCHEMA: &str = "hookline-schema";

/// Headers added to a record sent to a dead-letter topic, in the style of Kafka
/// Connect's `errors.deadletterqueue.context.headers.enable`.
pub mod dlq {
    /// Topic the record was read from (or meant for, at ingest).
    pub const TOPIC: &str = "hookline.errors.topic";
    /// Partition the record was read from.
    pub const PARTITION: &str = "hookline.errors.partition";
    /// Offset the record was read from.
    pub const OFFSET: &str = "hookline.errors.offset";
    /// Pipeline stage that refused the record: see [`crate::reason::Stage`].
    pub const STAGE: &str = "hookline.errors.stage";
    /// Stable machine-readable code: see [`crate::Reason`].
    pub const REASON: &str = "hookline.errors.reason";
    /// Human-readable explanation.
    pub const MESSAGE: &str = "hookline.errors.message";
    /// When the record was dead-lettered, RFC 3339 in UTC.
    pub const TIMESTAMP: &str = "hookline.errors.timestamp";
    /// A cut copy (`dead_letter_too_large`): SHA-256 of the original value,
    /// lowercase hex.
    pub const ORIGINAL_SHA256: &str = "hookline.errors.original.sha256";
    /// A cut copy: the size of the original value in bytes.
    pub const ORIGINAL_BYTES: &str = "hookline.errors.original.bytes";
    /// A cut copy: the reason code the original was refused for.
    pub const ORIGINAL_REASON: &str = "hookline.errors.original.reason";
}

/// Name of the dead-letter topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.DLQ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlq_topic_appends_suffix() {
        assert_eq!(dlq_topic("orders.webhooks"), "orders.webhooks.DLQ");
    }
}
