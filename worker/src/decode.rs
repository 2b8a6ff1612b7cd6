//! From a Kafka record to an event the store can write, or to the reason it
//! never can. Pure: no I/O.

use chrono::{DateTime, TimeZone, Utc};
use hookline_contract::payload::{Inspected, Inspector, parse};
use hookline_contract::reason::Stage;
use hookline_contract::{Envelope, Reason, is_placed_correctly};
use serde_json::Value;

use crate::store::{DisputeEvent, OrderEvent};

/// What a topic carries, from its `eventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Orders,
    Disputes,
}

impl Kind {
    pub fn of_event_type(event_type: &str) -> Option<Self> {
        match event_type {
            "orders" => Some(Kind::Orders),
            "disputes" => Some(Kind::Disputes),
            _ => None,
        }
    }
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Order(OrderEvent),
    Dispute(DisputeEvent),
}

impl Event {
    pub fn user_id(&self) -> &str {
        match self {
            Event::Order(e) => &e.user_id,
            Event::Dispute(e) => &e.user_id,
        }
    }
}

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
    pub envelope: &'a Result<Envelope, hookline_contract::envelope::EnvelopeError>,
}

/// Decodes one record of a topic of `kind`.
pub fn decode(kind: Kind, inspector: &Inspector, record: RecordView<'_>) -> Result<Event, Poison> {
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
    let inspected = inspector
        .inspect_value(&payload)
        .map_err(|invalid| Poison::new(Stage::Validate, invalid.reason, invalid.message))?;
    if inspected.user_id != key {
        return Err(Poison::new(
            Stage::Route,
            Reason::Misrouted,
            format!("the key {} is not the payload's user id", shown(key)),
        ));
    }
    let received_at = DateTime::parse_from_rfc3339(&envelope.received_at)
        .map(|t| t.to_utc())
        .map_err(|_| {
            Poison::new(
                Stage::Decode,
                Reason::Undecodable,
                "hookline-received-at is not RFC 3339",
            )
        })?;
    let fields = Fields {
        payload: &payload,
        inspected: &inspected,
    };
    let occurred_at = fields.occurred_at()?;
    let (order_id, status, amount, currency) = (
        fields.text("/data/order_id")?,
        fields.text("/data/status")?,
        fields.integer("/data/amount")?,
        fields.text("/data/currency")?,
    );
    Ok(match kind {
        Kind::Orders => Event::Order(OrderEvent {
            event_id: envelope.event_id,
            provider_event_id: inspected.provider_event_id.clone(),
            event_type: inspected.event_type.clone(),
            order_id,
            user_id: inspected.user_id.clone(),
            status,
            amount,
            currency,
            occurred_at,
            received_at,
            payload,
        }),
        Kind::Disputes => Event::Dispute(DisputeEvent {
            event_id: envelope.event_id,
            provider_event_id: inspected.provider_event_id.clone(),
            event_type: inspected.event_type.clone(),
            dispute_id: fields.text("/data/dispute_id")?,
            order_id,
            user_id: inspected.user_id.clone(),
            status,
            amount,
            currency,
            occurred_at,
            received_at,
            payload,
        }),
    })
}

/// Reads the columns of an event out of a validated payload.
struct Fields<'a> {
    payload: &'a Value,
    inspected: &'a Inspected,
}

impl Fields<'_> {
    fn text(&self, pointer: &str) -> Result<String, Poison> {
        self.payload
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| missing(pointer, "a string"))
    }

    fn integer(&self, pointer: &str) -> Result<i64, Poison> {
        self.payload
            .pointer(pointer)
            .and_then(Value::as_i64)
            .ok_or_else(|| missing(pointer, "an integer"))
    }

    fn occurred_at(&self) -> Result<DateTime<Utc>, Poison> {
        Utc.timestamp_opt(self.inspected.event_time, 0)
            .single()
            .ok_or_else(|| {
                Poison::new(
                    Stage::Validate,
                    Reason::SchemaInvalid,
                    "the event time is out of range",
                )
            })
    }
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

fn missing(pointer: &str, what: &str) -> Poison {
    Poison::new(
        Stage::Validate,
        Reason::SchemaInvalid,
        format!("no {what} at {pointer}"),
    )
}

#[cfg(test)]
mod tests;
