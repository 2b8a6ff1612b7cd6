#![allow(clippy::expect_used)] // a benchmark's setup: it has nothing to measure if this fails
//! What each stage of one webhook costs ingest on the CPU, apart from HTTP
//! and the producer: `cargo bench -p hookline-ingest --bench stages`.
//!
//! The stages in request order: the signature (claim and HMAC), the payload
//! (JSON parse alone, then parse, schema validation and field extraction
//! together, which is what ingest runs), the event id, the partition, and the
//! record's headers. The body is the 1 KiB order webhook `hookline-bench
//! ingest` posts.

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookline_contract::payload::{self, Delivery, Inspector};
use hookline_contract::pipeline::Pointers;
use hookline_contract::{event_id, partition_for};
use hookline_ingest::auth::{Keys, header, sign};
use hookline_kafka::Envelope;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const BODY_BYTES: usize = 1024;

/// The order webhook of the ingest benchmark, padded to `BODY_BYTES`.
fn body() -> Vec<u8> {
    let mut payload = serde_json::json!({
        "id": "evt_bench_1", "type": "order.paid", "created": 1_700_000_000,
        "data": {"user_id": "user-1", "order_id": "ord_1", "amount": 1250,
                 "currency": "eur", "status": "paid", "metadata": {"note": ""}}
    });
    let bare = serde_json::to_vec(&payload).map_or(0, |b| b.len());
    payload["data"]["metadata"]["note"] = "x".repeat(BODY_BYTES.saturating_sub(bare)).into();
    serde_json::to_vec(&payload).expect("a JSON value serialises")
}

fn stages(c: &mut Criterion) {
    let body = body();
    let now = Utc::now().timestamp();
    let mut keys = Keys::default();
    keys.add_standard_webhooks(SECRET)
        .expect("the secret is valid");
    let signature = sign::standard_v1(SECRET, "msg_1", now, &body).expect("signs");
    let timestamp = now.to_string();
    let headers = |name: &str| match name {
        header::WEBHOOK_ID => Some("msg_1"),
        header::WEBHOOK_TIMESTAMP => Some(timestamp.as_str()),
        header::WEBHOOK_SIGNATURE => Some(signature.as_str()),
        _ => None,
    };
    let inspector = Inspector::builtin("orders", Pointers::default()).expect("orders compiles");
    let received_at = Utc::now();
    let inspected = inspector
        .inspect_delivery(Delivery::new(&body, Some("msg_1")), received_at)
        .expect("the body is a valid order");

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signature: standard-webhooks v1, 1 KiB", |b| {
        b.iter(|| keys.verify(headers, black_box(&body), now, 300))
    });
    group.bench_function("payload: JSON parse only", |b| {
        b.iter(|| payload::parse(black_box(&body)))
    });
    group.bench_function("payload: parse, schema, fields", |b| {
        b.iter(|| {
            inspector.inspect_delivery(Delivery::new(black_box(&body), Some("msg_1")), received_at)
        })
    });
    group.bench_function("event id: UUIDv5", |b| {
        b.iter(|| {
            event_id(
                black_box("standard-webhooks"),
                black_box(&inspected.provider_event_id),
            )
        })
    });
    group.bench_function("partition: murmur2", |b| {
        b.iter(|| partition_for(black_box(inspected.user_id.as_bytes()), 4))
    });
    group.bench_function("record headers: envelope", |b| {
        b.iter(|| {
            Envelope {
                event_id: event_id("standard-webhooks", &inspected.provider_event_id),
                event_type: inspected.event_type.clone(),
                source: "standard-webhooks".to_owned(),
                received_at,
                partition_count: 4,
                schema: inspector.schema_id().to_owned(),
                message_id: Some("msg_1".to_owned()),
            }
            .to_headers()
        })
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
