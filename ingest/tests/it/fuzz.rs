//! Random bodies and headers never panic the service and never get a 5xx other
//! than 503.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{Value, json};

use crate::harness::{Answer, Ingest, bytes, order};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn acceptable(answer: &Answer) -> Result<(), TestCaseError> {
    prop_assert!(
        answer.status < 500 || answer.status == 503,
        "status {} for {:?}",
        answer.status,
        answer.body
    );
    if answer.status == 503 {
        prop_assert!(answer.retry_after.is_some());
    }
    Ok(())
}

/// Header values a client can send: visible ASCII and spaces.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,80}",
        Just("v1,".to_owned()),
        "v1,[A-Za-z0-9+/=]{0,60}",
        "t=[0-9]{0,12},v1=[0-9a-f]{0,70}",
        "-?[0-9]{1,20}",
    ]
}

#[test]
fn random_unsigned_requests_never_fail_the_server() {
    let rt = runtime();
    let ingest = rt.block_on(Ingest::start());
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::option::of(header_value()),
        proptest::option::of(header_value()),
        proptest::option::of(header_value()),
        proptest::option::of(header_value()),
        prop_oneof![Just("orders"), Just("disputes"), Just("x"), Just("%20")],
    );
    let mut runner = TestRunner::new(ProptestConfig::with_cases(96));
    runner
        .run(&strategy, |(body, id, ts, sig, stripe, event_type)| {
            rt.block_on(async {
                let mut request = ingest
                    .http()
                    .post(format!("{}/webhooks/{event_type}", ingest.url))
                    .body(body);
                for (name, value) in [
                    ("webhook-id", id),
                    ("webhook-timestamp", ts),
                    ("webhook-signature", sig),
                    ("stripe-signature", stripe),
                ] {
                    if let Some(value) = value {
                        request = request.header(name, value);
                    }
                }
                let answer = Answer::of(request).await;
                prop_assert!(
                    answer.status != 202,
                    "unsigned request accepted: {:?}",
                    answer.body
                );
                acceptable(&answer)
            })
        })
        .unwrap();
    rt.block_on(ingest.stop());
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn signed_payloads_with_random_fields_are_accepted_or_quarantined() {
    let rt = runtime();
    let ingest = rt.block_on(Ingest::start());
    let fields = prop_oneof![
        Just("/id"),
        Just("/type"),
        Just("/created"),
        Just("/data"),
        Just("/data/user_id"),
        Just("/data/amount"),
        Just("/data/currency"),
        Just("/extra"),
    ];
    let accepted = std::cell::Cell::new(0i64);
    let quarantined = std::cell::Cell::new(0i64);
    let mut runner = TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(&(fields, json_value()), |(field, value)| {
            rt.block_on(async {
                let mut payload = order("evt_fuzz", "u_fuzz");
                if let Some(slot) = payload.pointer_mut(field) {
                    *slot = value;
                }
                let answer = ingest.post("orders", &bytes(&payload)).await;
                acceptable(&answer)?;
                prop_assert_eq!(answer.status, 202, "{:?}", answer.body);
                if answer.body.get("quarantined") == Some(&json!(true)) {
                    prop_assert!(answer.body["reason"].is_string());
                    quarantined.set(quarantined.get() + 1);
                } else {
                    prop_assert_eq!(answer.body.as_object().map(|o| o.len()), Some(1));
                    accepted.set(accepted.get() + 1);
                }
                Ok(())
            })
        })
        .unwrap();
    // Every accepted answer is one record on the main topic, every quarantined
    // one a record in the DLQ: nothing crossed over, nothing was lost.
    let (main, dlq) = rt.block_on(async {
        (
            crate::broker::depth(
                &ingest.bootstrap,
                &ingest.orders,
                crate::harness::PARTITIONS,
            )
            .await,
            crate::broker::depth(&ingest.bootstrap, &format!("{}.DLQ", ingest.orders), 1).await,
        )
    });
    assert_eq!((main, dlq), (accepted.get(), quarantined.get()));
    rt.block_on(ingest.stop());
}
