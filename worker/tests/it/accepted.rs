//! What ingest accepts, the worker stores: payloads the orders schema accepts,
//! in the shapes providers send (whole floats, integers beyond `i64`, any
//! Unicode, extra fields, any time), inspected as ingest inspects them at its
//! receipt time, then decoded from the record ingest would make and written
//! to a real shard.

use chrono::{DateTime, TimeZone, Utc};
use hookline_contract::event_types::ORDERS;
use hookline_contract::payload::{Delivery, Inspector, integer};
use hookline_contract::pipeline::Pointers;
use hookline_contract::{event_id, ordering, partition_for};
use hookline_kafka::Envelope;
use hookline_kafka::envelope::EnvelopeError;
use hookline_worker::decode::{RecordView, decode};
use hookline_worker::store::{OrderEvent, Stored, store_order_events};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

use crate::support::TestDb;

const PARTITIONS: u32 = 4;

fn received() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_773_600, 0).unwrap()
}

fn orders() -> Inspector {
    Inspector::builtin("orders", Pointers::default()).unwrap()
}

fn amount() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0_i64..=i64::MAX).prop_map(Value::from),
        (0_u32..1_000_000).prop_map(|a| json!(f64::from(a))),
        (i64::MAX as u64..=u64::MAX).prop_map(Value::from),
        (0.0_f64..1e22).prop_map(Value::from),
    ]
}

fn created() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (946_684_800_i64..1_795_860_000).prop_map(Value::from),
        1 => (0_i64..i64::MAX).prop_map(Value::from),
        1 => (946_684_800_u32..1_795_860_000).prop_map(|t| json!(f64::from(t))),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_]{1,40}", "\\PC{1,40}", ".{1,40}", "[a-z]{255}"]
}

prop_compose! {
    fn order()(
        id in text(),
        kind in prop::sample::select(ORDERS.lifecycle.iter().map(|(t, _)| *t).collect::<Vec<_>>()),
        created in created(),
        user in text(),
        order_id in text(),
        amount in amount(),
        currency in "[a-z]{3}",
        status in "\\PC{1,64}",
        extra in prop::option::of(text()),
    ) -> Value {
        let mut payload = json!({
            "id": id, "type": kind, "created": created,
            "data": {"user_id": user, "order_id": order_id, "amount": amount,
                     "currency": currency, "status": status}
        });
        if let Some(extra) = extra {
            payload["data"]["metadata"] = json!({ extra.clone(): [extra, 1.5, null] });
        }
        payload
    }
}

/// The record ingest makes of an accepted payload, decoded by the worker.
fn decoded(inspector: &Inspector, payload: &Value) -> Option<Result<OrderEvent, String>> {
    let inspected = inspector
        .inspect_value(payload, received(), Delivery::new(b"", None))
        .ok()?;
    let user = inspected.user_id.clone();
    let value = serde_json::to_vec(payload).unwrap();
    let envelope: Result<Envelope, EnvelopeError> = Ok(Envelope {
        event_id: event_id("test", &inspected.provider_event_id),
        event_type: inspected.event_type.clone(),
        source: "test".into(),
        received_at: received(),
        partition_count: PARTITIONS,
        schema: inspector.schema_id().into(),
        message_id: None,
    });
    let view = RecordView {
        partition: partition_for(user.as_bytes(), PARTITIONS).unwrap() as i32,
        key: Some(user.as_bytes()),
        value: Some(&value),
        envelope: &envelope,
    };
    Some(
        decode(inspector, view)
            .map(OrderEvent::from)
            .map_err(|poison| format!("{poison:?}")),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn every_payload_ingest_accepts_the_worker_decodes(payload in order()) {
        if let Some(decoded) = decoded(&orders(), &payload) {
            prop_assert!(decoded.is_ok(), "{payload}: {decoded:?}");
        }
    }

    /// The edge refuses no more than it must: a schema-valid payload is
    /// refused only for an amount or time beyond what a shard holds, U+0000,
    /// or a blank id.
    #[test]
    fn ingest_refuses_only_what_the_shards_cannot_hold(payload in order()) {
        let storable_amount = integer(&payload["data"]["amount"]).is_some();
        let storable_time = integer(&payload["created"])
            .is_some_and(|t| ordering::event_time(t, received()).is_ok());
        let nul = payload.to_string().contains("\\u0000");
        let blank = ["/id", "/data/user_id"].iter().any(|p| {
            payload.pointer(p).and_then(Value::as_str).is_some_and(|s| s.trim().is_empty())
        });
        let accepted = orders().inspect_value(&payload, received(), Delivery::new(b"", None)).is_ok();
        prop_assert_eq!(accepted, storable_amount && storable_time && !nul && !blank, "{}", payload);
    }
}

/// 400 generated payloads that ingest accepts, written to a real shard in
/// batches: every one is stored, none refused.
#[tokio::test]
async fn every_payload_ingest_accepts_is_stored_by_a_real_shard() {
    let inspector = orders();
    let mut runner = TestRunner::deterministic();
    let strategy = order();
    let mut events = Vec::new();
    let mut texts = Vec::new();
    while events.len() < 400 {
        let payload = strategy.new_tree(&mut runner).unwrap().current();
        if let Some(decoded) = decoded(&inspector, &payload) {
            events.push(decoded.unwrap());
            texts.push(payload.to_string());
        }
    }
    let db = TestDb::migrated().await;
    for (chunk, texts) in events.chunks(50).zip(texts.chunks(50)) {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut tx = db.pool.begin().await.unwrap();
        let stored = store_order_events(&mut tx, chunk, &texts)
            .await
            .unwrap_or_else(|e| panic!("{e}: {:?} in {chunk:#?}", e.sqlstate()));
        tx.commit().await.unwrap();
        assert!(
            stored
                .iter()
                .all(|s| *s == Stored::Inserted || *s == Stored::AlreadyStored)
        );
    }
    let distinct: std::collections::HashSet<_> = events
        .iter()
        .map(|e| (e.entity_id.clone(), e.provider_event_id.clone()))
        .collect();
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM order_events").await,
        distinct.len() as i64
    );
    db.drop().await;
}
