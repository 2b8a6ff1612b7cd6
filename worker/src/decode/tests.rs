use chrono::{TimeZone, Utc};
use hookline_contract::definition::Definition;
use hookline_contract::event_types::ORDERS;
use hookline_contract::pipeline::Pointers;
use hookline_contract::{event_id, partition_for};
use serde_json::{Value, json};

use super::*;

const PARTITIONS: u32 = 4;

fn orders() -> Inspector {
    Inspector::builtin("orders", Pointers::default()).unwrap()
}

fn envelope(count: u32) -> Result<Envelope, EnvelopeError> {
    Ok(Envelope {
        event_id: event_id("stripe", "evt_1"),
        event_type: "order.paid".into(),
        source: "stripe".into(),
        received_at: Utc.timestamp_millis_opt(1_795_773_600_000).unwrap(),
        partition_count: count,
        schema: "orders/v1".into(),
        message_id: None,
    })
}

fn body(user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "evt_1", "type": "order.paid", "created": 1_700_000_000,
        "data": {"user_id": user, "order_id": "o1", "amount": 1250, "currency": "eur", "status": "paid"}
    }))
    .unwrap()
}

fn home(user: &str) -> i32 {
    partition_for(user.as_bytes(), PARTITIONS).unwrap() as i32
}

fn view<'a>(
    partition: i32,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    envelope: &'a Result<Envelope, EnvelopeError>,
) -> RecordView<'a> {
    RecordView {
        partition,
        key,
        value,
        envelope,
    }
}

#[test]
fn well_formed_record_decodes_to_an_order() {
    let env = envelope(PARTITIONS);
    let value = body("u1");
    let event = decode(&orders(), view(home("u1"), Some(b"u1"), Some(&value), &env)).unwrap();
    assert_eq!(
        (event.entity_id.as_str(), event.order_id.as_str()),
        ("o1", "o1")
    );
    assert_eq!(event.user_id, "u1");
    assert_eq!(event.amount, 1250);
    assert_eq!(event.occurred_at.timestamp(), 1_700_000_000);
    assert_eq!(event.received_at.to_rfc3339(), "2026-11-27T10:00:00+00:00");
    assert_eq!(event.event_id, event_id("stripe", "evt_1"));
}

#[test]
fn record_on_the_wrong_partition_is_misrouted() {
    let env = envelope(PARTITIONS);
    let value = body("u1");
    let wrong = (home("u1") + 1) % PARTITIONS as i32;
    let poison = decode(&orders(), view(wrong, Some(b"u1"), Some(&value), &env)).unwrap_err();
    assert_eq!(
        (poison.stage, poison.reason),
        (Stage::Route, Reason::Misrouted)
    );
}

#[test]
fn placement_is_checked_against_the_producers_count_not_todays() {
    // Placed when the topic had 2 partitions; it has grown since.
    let env = envelope(2);
    let value = body("u1");
    let then = partition_for(b"u1", 2).unwrap() as i32;
    assert!(decode(&orders(), view(then, Some(b"u1"), Some(&value), &env)).is_ok());
}

#[test]
fn key_that_is_not_the_payloads_user_is_misrouted() {
    let env = envelope(PARTITIONS);
    let value = body("u2");
    let poison = decode(&orders(), view(home("u1"), Some(b"u1"), Some(&value), &env)).unwrap_err();
    assert_eq!(poison.reason, Reason::Misrouted);
}

#[test]
fn missing_headers_key_or_value_are_undecodable() {
    let no_envelope = Err(EnvelopeError::Missing("hookline-event-id"));
    let env = envelope(PARTITIONS);
    let value = body("u1");
    let cases = [
        view(home("u1"), Some(b"u1"), Some(&value), &no_envelope),
        view(home("u1"), None, Some(&value), &env),
        view(home("u1"), Some(&[0xff]), Some(&value), &env),
        view(home("u1"), Some(b"u1"), None, &env),
    ];
    for case in cases {
        let poison = decode(&orders(), case).unwrap_err();
        assert_eq!(
            (poison.stage, poison.reason),
            (Stage::Decode, Reason::Undecodable),
            "{case:?}"
        );
    }
}

#[test]
fn non_json_value_is_invalid_json_at_decode() {
    let env = envelope(PARTITIONS);
    let poison = decode(&orders(), view(home("u1"), Some(b"u1"), Some(b"{"), &env)).unwrap_err();
    assert_eq!(
        (poison.stage, poison.reason),
        (Stage::Decode, Reason::InvalidJson)
    );
}

#[test]
fn schema_invalid_value_is_refused_at_validate() {
    let env = envelope(PARTITIONS);
    let mut payload: Value = serde_json::from_slice(&body("u1")).unwrap();
    payload["data"]["currency"] = json!("EURO");
    let value = serde_json::to_vec(&payload).unwrap();
    let poison = decode(&orders(), view(home("u1"), Some(b"u1"), Some(&value), &env)).unwrap_err();
    assert_eq!(
        (poison.stage, poison.reason),
        (Stage::Validate, Reason::SchemaInvalid)
    );
}

#[test]
fn dispute_record_decodes_to_a_dispute() {
    let disputes = Inspector::builtin("disputes", Pointers::default()).unwrap();
    let env = envelope(PARTITIONS);
    let value = serde_json::to_vec(&json!({
        "id": "evt_d", "type": "dispute.created", "created": 1_700_000_100,
        "data": {"user_id": "u1", "dispute_id": "dp1", "order_id": "o1", "amount": 5,
                 "currency": "usd", "status": "open"}
    }))
    .unwrap();
    let event = decode(&disputes, view(home("u1"), Some(b"u1"), Some(&value), &env)).unwrap();
    assert_eq!(
        (event.entity_id.as_str(), event.order_id.as_str()),
        ("dp1", "o1")
    );
}

#[test]
fn columns_are_read_where_the_event_type_says() {
    // The orders schema lets providers add fields; a type whose status lives
    // elsewhere is read from there, not from a pointer written in the worker.
    let mut moved = Definition::builtin(&ORDERS, &Pointers::default()).unwrap();
    moved.fields.status = Some("/data/state".into());
    let moved = Inspector::new(moved).unwrap();
    let env = envelope(PARTITIONS);
    let mut payload: Value = serde_json::from_slice(&body("u1")).unwrap();
    payload["data"]["state"] = json!("settled");
    let value = serde_json::to_vec(&payload).unwrap();
    let event = decode(&moved, view(home("u1"), Some(b"u1"), Some(&value), &env)).unwrap();
    assert_eq!(event.status, "settled");

    payload["data"].as_object_mut().unwrap().remove("state");
    let value = serde_json::to_vec(&payload).unwrap();
    let poison = decode(&moved, view(home("u1"), Some(b"u1"), Some(&value), &env)).unwrap_err();
    assert_eq!(
        (poison.stage, poison.reason),
        (Stage::Validate, Reason::SchemaInvalid)
    );
    assert!(
        poison.message.ends_with("/data/state"),
        "{}",
        poison.message
    );
}

fn decoded(payload: &Value) -> Result<Fields, Poison> {
    let env = envelope(PARTITIONS);
    let value = serde_json::to_vec(payload).unwrap();
    decode(&orders(), view(home("u1"), Some(b"u1"), Some(&value), &env))
}

#[test]
fn an_event_time_in_milliseconds_is_out_of_range_and_never_state() {
    let mut payload: Value = serde_json::from_slice(&body("u1")).unwrap();
    payload["created"] = json!(1_700_000_000_000_i64);
    let poison = decoded(&payload).unwrap_err();
    assert_eq!(
        (poison.stage, poison.reason),
        (Stage::Validate, Reason::EventTimeOutOfRange)
    );
    assert!(
        poison.message.contains("milliseconds"),
        "{}",
        poison.message
    );
}

#[test]
fn the_range_is_judged_from_the_receipt_ingest_recorded() {
    // Received 2026-11-27T10:00:00Z: a day later is the last accepted time,
    // whenever the worker reads the record.
    let received = 1_795_773_600;
    let mut payload: Value = serde_json::from_slice(&body("u1")).unwrap();
    payload["created"] = json!(received + 86_400);
    assert!(decoded(&payload).is_ok());
    payload["created"] = json!(received + 86_401);
    assert_eq!(
        decoded(&payload).unwrap_err().reason,
        Reason::EventTimeOutOfRange
    );
}

#[test]
fn a_whole_float_amount_is_stored_as_the_integer() {
    let mut payload: Value = serde_json::from_slice(&body("u1")).unwrap();
    payload["data"]["amount"] = json!(1250.0);
    assert_eq!(decoded(&payload).unwrap().amount, 1250);
}

#[test]
fn ranks_come_from_the_lifecycle() {
    let mut payload: Value = serde_json::from_slice(&body("u1")).unwrap();
    for (event_type, rank) in [
        ("order.created", 0),
        ("order.paid", 2),
        ("order.cancelled", 3),
    ] {
        payload["type"] = json!(event_type);
        assert_eq!(decoded(&payload).unwrap().rank, rank, "{event_type}");
    }
}
