//! From a Kafka record to the fields the store writes, or to the reason it
//! never can. Pure: no I/O. What a column is called in the payload comes from
//! the event type's registry entry, never from this file.

use hookline_contract::payload::{Delivery, Inspector, parse};
use hookline_contract::reason::Stage;
use hookline_contract::{Reason, is_placed_correctly};
use hookline_kafka::Envelope;
use hookline_kafka::envelope::EnvelopeError;

use crate::store::Fields;

/// A record that can never be written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    pub stage: Stage,
    pub reason: Reason,
    pub message: String,
}

impl Poison {
    fn new(stage: Stage, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            stage,
            reason,
            message: message.into(),
        }
    }
}

/// The parts of a record decoding looks at.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub partition: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub envelope: &'a Result<Envelope, EnvelopeError>,
}

/// Decodes one record of a topic whose payloads `inspector` reads.
pub fn decode(inspector: &Inspector, record: RecordView<'_>) -> Result<Fields, Poison> {
    let envelope = record
        .envelope
        .as_ref()
        .map_err(|e| Poison::new(Stage::Decode, Reason::Undecodable, e.to_string()))?;
    let key = record
        .key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Poison::new(
                Stage::Decode,
                Reason::Undecodable,
                "the record has no UTF-8 key",
            )
        })?;
    if !is_placed_correctly(key.as_bytes(), record.partition, envelope.partition_count) {
        return Err(Poison::new(
            Stage::Route,
            Reason::Misrouted,
            format!(
                "key {} belongs on another partition than {} of {}",
                shown(key),
                record.partition,
                envelope.partition_count
            ),
        ));
    }
    let value = record.value.ok_or_else(|| {
        Poison::new(
            Stage::Decode,
            Reason::Undecodable,
            "the record has no value",
        )
    })?;
    let payload = parse(value)
        .map_err(|invalid| Poison::new(Stage::Decode, invalid.reason, invalid.message))?;
    // The same inspection as ingest's, with the receipt time ingest used: a
    // payload ingest accepted is decoded here, and one it would refuse now
    // (written by an older ingest, or replayed) is refused for the same reason.
    let inspected = inspector
        .inspect_value(
            &payload,
            envelope.received_at,
            Delivery::new(value, envelope.message_id.as_deref()),
        )
        .map_err(|invalid| Poison::new(Stage::Validate, invalid.reason, invalid.message))?;
    if inspected.user_id != key {
        return Err(Poison::new(
            Stage::Route,
            Reason::Misrouted,
            format!("the key {} is not the payload's user id", shown(key)),
        ));
    }
    let columns = inspected.columns;
    // Declared types have no commerce columns, and their storage reads none.
    let commerce = columns.commerce.unwrap_or_default();
    Ok(Fields {
        type_name: inspector.definition().name.clone(),
        event_id: envelope.event_id,
        occurred_at: inspected.occurred_at,
        rank: inspected.rank,
        received_at: envelope.received_at,
        order_id: commerce.order_id,
        entity_id: columns.entity_id,
        status: columns.status.unwrap_or_default(),
        amount: commerce.amount,
        currency: commerce.currency,
        provider_event_id: inspected.provider_event_id,
        event_type: inspected.event_type,
        user_id: inspected.user_id,
    })
}

/// A key as quoted in a message: bounded, so that the reason headers never
/// make a dead-letter record much larger than the record.
fn shown(key: &str) -> String {
    let mut quoted: String = key.chars().take(64).collect();
    if quoted.len() < key.len() {
        quoted.push('…');
    }
    format!("{quoted:?}")
}

#[cfg(test)]
mod tests;
