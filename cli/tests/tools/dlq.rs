//! `hookline dlq replay`: a run never moves a position past a record it did
//! not replay, so one reason after another replays everything once, and a
//! record replayed again keeps its event id.

use std::collections::BTreeMap;

use hookline_contract::{Reason, partition_for};
use hookline_testkit::eventually;

use crate::fixture::{Fixture, MainRecord, Topic, order};
use crate::pipeline::Up;
use crate::support::{manifest, rows};

const T0: i64 = 1_700_000_000;

/// How many times each provider event id is on the main topic.
fn copies(records: &[MainRecord]) -> BTreeMap<String, usize> {
    let mut copies = BTreeMap::new();
    for record in records {
        *copies.entry(record.provider_event_id.clone()).or_default() += 1;
    }
    copies
}

fn ids(ns: &[usize]) -> BTreeMap<String, usize> {
    ns.iter().map(|n| (format!("evt_{n}"), 1)).collect()
}

#[tokio::test]
async fn replay_for_one_reason_then_another_leaves_nothing_stranded() {
    let fixture = Fixture::new(2, false).await;
    let topic = &fixture.topic;
    // Two reasons, interleaved: the first version committed past the
    // constraint violations while replaying the misrouted records.
    let reasons = [
        Reason::Misrouted,
        Reason::ConstraintViolation,
        Reason::Misrouted,
        Reason::ConstraintViolation,
        Reason::Misrouted,
    ];
    for (n, reason) in reasons.into_iter().enumerate() {
        topic
            .dead_letter(&order(n, "order.paid", T0 + n as i64), reason)
            .await;
    }

    let first = fixture
        .hookline(&["dlq", "replay", "--reason", "misrouted"])
        .await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert_eq!(copies(&topic.main_records().await), ids(&[0, 2, 4]));

    let second = fixture
        .hookline(&["dlq", "replay", "--reason", "constraint_violation"])
        .await;
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert_eq!(
        copies(&topic.main_records().await),
        ids(&[0, 1, 2, 3, 4]),
        "the constraint violations were stranded: {}",
        second.stdout
    );

    // Every reason at once: all replayed already, nothing sent again.
    let third = fixture
        .hookline(&["dlq", "replay", "--output", "json"])
        .await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    let dlq = &third.json()["dlqs"][0];
    assert_eq!(dlq["replayed"], 0, "{dlq}");
    assert_eq!(dlq["already_replayed"], 5, "{dlq}");
    assert_eq!(dlq["positions"]["misrouted"], 5, "{dlq}");
    assert_eq!(dlq["positions"]["constraint_violation"], 5, "{dlq}");

    // Each replayed on its user's partition, with its original event id.
    let records = topic.main_records().await;
    assert_eq!(records.len(), 5);
    for record in &records {
        assert_eq!(
            partition_for(record.key.as_bytes(), 2),
            Some(record.partition as u32)
        );
        assert_eq!(
            record.event_id,
            hookline_contract::event_id("shop", &record.provider_event_id).to_string()
        );
    }
    fixture.finish().await;
}

#[tokio::test]
async fn a_record_still_invalid_holds_its_reason_and_nothing_else() {
    let fixture = Fixture::new(2, false).await;
    let topic = &fixture.topic;
    // Offset 0 is still invalid under the manifest (no user id).
    let mut invalid = order(0, "order.paid", T0);
    invalid["data"].as_object_mut().unwrap().remove("user_id");
    topic
        .dead_letter(&invalid, Reason::ConstraintViolation)
        .await;
    topic
        .dead_letter(&order(1, "order.paid", T0 + 1), Reason::Misrouted)
        .await;
    topic
        .dead_letter(&order(2, "order.paid", T0 + 2), Reason::ConstraintViolation)
        .await;

    // A dry run says what it would do and moves nothing.
    let dry = fixture
        .hookline(&["dlq", "replay", "--dry-run", "--output", "json"])
        .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.json()["dlqs"][0]["replayed"], 2);
    assert!(topic.main_records().await.is_empty());

    let first = fixture
        .hookline(&[
            "dlq",
            "replay",
            "--reason",
            "constraint_violation",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let dlq = &first.json()["dlqs"][0];
    assert_eq!(dlq["replayed"], 1, "{dlq}");
    assert_eq!(dlq["filtered_out"], 1, "{dlq}");
    assert_eq!(dlq["still_invalid"][0]["offset"], 0, "{dlq}");
    assert_eq!(
        dlq["still_invalid"][0]["reason"], "missing_user_id",
        "{dlq}"
    );
    assert_eq!(
        dlq["positions"]["constraint_violation"], 0,
        "held at the record not replayed: {dlq}"
    );

    // The held reason does not hold the others.
    let second = fixture
        .hookline(&["dlq", "replay", "--reason", "misrouted", "--output", "json"])
        .await;
    assert_eq!(second.json()["dlqs"][0]["replayed"], 1);
    assert_eq!(copies(&topic.main_records().await), ids(&[1, 2]));

    // Every reason: the held one is read again from its position, so the
    // record behind it goes again, with the same event id.
    let third = fixture
        .hookline(&["dlq", "replay", "--output", "json"])
        .await;
    let dlq = &third.json()["dlqs"][0];
    assert_eq!(dlq["replayed"], 1, "{dlq}");
    assert_eq!(dlq["already_replayed"], 1, "{dlq}");
    assert_eq!(dlq["positions"]["misrouted"], 3, "{dlq}");
    assert_eq!(dlq["positions"]["constraint_violation"], 0, "{dlq}");
    let records = topic.main_records().await;
    let again: Vec<_> = records
        .iter()
        .filter(|r| r.provider_event_id == "evt_2")
        .collect();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].event_id, again[1].event_id);

    // The listing says the same, as text and as JSON.
    let listed = fixture.hookline(&["dlq", "list"]).await;
    assert!(
        listed.stdout.contains(&format!(
            "{}: 2 constraint_violation, 1 misrouted",
            topic.dlq()
        )),
        "{}",
        listed.stdout
    );
    let listed = fixture
        .hookline(&["dlq", "list", "--reason", "misrouted", "--output", "json"])
        .await;
    let dlq = &listed.json()["dlqs"][0];
    assert_eq!(dlq["by_reason"], serde_json::json!({"misrouted": 1}));
    assert_eq!(dlq["records"][0]["offset"], 1);
    assert_eq!(dlq["records"][0]["stage"], "write");
    let unknown = fixture
        .hookline(&["dlq", "replay", "--reason", "gremlins"])
        .await;
    assert_ne!(unknown.code, 0);
    assert!(
        unknown.stderr.contains("unknown reason code"),
        "{}",
        unknown.stderr
    );
    fixture.finish().await;
}

#[tokio::test]
async fn events_replayed_twice_are_stored_once_and_verify_is_clean() {
    let up = Up::start(|run| manifest(&format!("up-{run}.orders"), 2, "/id"), 2).await;
    let topic = Topic::new(&up.topic, 2);
    // A still-invalid record first, so that the second run of its reason
    // sends its other records again.
    let mut invalid = order(0, "order.paid", T0);
    invalid["data"].as_object_mut().unwrap().remove("user_id");
    topic
        .dead_letter(&invalid, Reason::ConstraintViolation)
        .await;
    for n in 1..=4 {
        let reason = if n % 2 == 0 {
            Reason::ConstraintViolation
        } else {
            Reason::Misrouted
        };
        topic
            .dead_letter(&order(n, "order.paid", T0 + n as i64), reason)
            .await;
    }
    let (ok, out) = up
        .hookline(&["dlq", "replay"], &["--reason", "misrouted"])
        .await;
    assert!(ok && out.contains("replayed 2, still invalid 0"), "{out}");
    let (ok, out) = up
        .hookline(&["dlq", "replay"], &["--reason", "constraint_violation"])
        .await;
    assert!(ok && out.contains("replayed 2, still invalid 1"), "{out}");
    eventually("the four replayed events stored", || async {
        rows(&up.pools).await == 4
    })
    .await;
    let (ok, out) = up
        .hookline(&["dlq", "replay"], &["--reason", "constraint_violation"])
        .await;
    assert!(ok && out.contains("replayed 2, still invalid 1"), "{out}");
    assert_eq!(
        copies(&topic.main_records().await).values().sum::<usize>(),
        6
    );

    // The workers reach the end of the topic; the copies are folded.
    eventually("verify clean with the six records committed", || async {
        let (ok, out) = up.hookline(&["verify"], &[]).await;
        ok && out.contains("6 stored, 0 in the DLQ, 0 missing; 0 past")
    })
    .await;
    assert_eq!(rows(&up.pools).await, 4, "stored once");
    up.stop().await;
}

/// A declared type without an event-id pointer is replayed with the delivery
/// id its source signed: kept on the dead letter, read again for the event
/// id, carried to the main topic.
#[tokio::test]
async fn a_declared_delivery_is_replayed_with_its_signed_message_id() {
    let fixture = Fixture::new(2, false).await;
    let issues = Topic::new(&fixture.declare_issues().await, 2);
    let payload = serde_json::json!({
        "action": "closed",
        "issue": {"id": 1_001, "updated_at": "2023-11-14T22:13:20Z"},
        "repository": {"id": 42}
    });
    issues
        .dead_letter_delivery(&payload, Reason::Misrouted, ("delivery-7", "42"))
        .await;

    let ran = fixture
        .hookline(&["dlq", "replay", "--topic", &issues.name, "--output", "json"])
        .await;
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let dlq = &ran.json()["dlqs"][0];
    assert_eq!(dlq["replayed"], 1, "{dlq}");
    let records = issues.main_records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].key, "42");
    assert_eq!(records[0].message_id.as_deref(), Some("delivery-7"));
    assert_eq!(
        records[0].event_id,
        hookline_contract::event_id("gh", "delivery-7").to_string()
    );
    fixture.finish().await;
}
