//! `hookline verify`: committed records stored, dead-lettered or missing,
//! records past the committed offsets as lag, the latest state against the
//! newest stored event by (event time, lifecycle rank, provider id), and the
//! exit codes 0, 1 and 2.

use hookline_contract::Reason;

use crate::fixture::{Fixture, Ran, order, set_declared_state, store_declared};

const T0: i64 = 1_700_000_000;

fn assert_code(ran: &Ran, code: i32) {
    assert_eq!(
        ran.code, code,
        "stdout: {}\nstderr: {}",
        ran.stdout, ran.stderr
    );
}

#[tokio::test]
async fn records_past_the_committed_offsets_are_lag_not_missing() {
    let fixture = Fixture::new(2, true).await;
    let topic = &fixture.topic;
    let first = order(0, "order.paid", T0);
    let (partition, offset) = topic.produce(&first).await;
    for n in 1..4 {
        topic.produce(&order(n, "order.paid", T0 + n as i64)).await;
    }

    // No worker has committed: every record is lag, none is missing.
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 0);
    let report = ran.json();
    assert_eq!(report["result"], "clean");
    assert_eq!(report["lag"], 4);
    assert_eq!(
        report["committed"],
        serde_json::json!({"stored": 0, "dead_lettered": 0, "missing": 0})
    );

    // A commit past a record the shard does not hold: that one is missing.
    fixture.topic.commit(partition, offset + 1).await;
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 1);
    let report = ran.json();
    assert_eq!(report["result"], "failed");
    assert_eq!(report["committed"]["missing"], 1);
    assert_eq!(report["lag"], 3);
    let missing = &report["topics"][0]["missing_records"][0];
    assert_eq!(missing["provider_event_id"], "evt_0", "{report}");
    assert_eq!(missing["partition"], partition);
    assert_eq!(missing["offset"], offset);

    // Stored, with its state: clean again.
    fixture.store_event(&first).await;
    fixture.set_state(&first).await;
    let ran = fixture.hookline(&["verify"]).await;
    assert_code(&ran, 0);
    assert!(
        ran.stdout
            .contains("1 stored, 0 in the DLQ, 0 missing; 3 past the committed offsets"),
        "{}",
        ran.stdout
    );
    fixture.finish().await;
}

#[tokio::test]
async fn every_committed_record_is_looked_up_in_batches() {
    let fixture = Fixture::new(2, true).await;
    let topic = &fixture.topic;
    // More than one batch (500) per shard, plus one record the worker
    // dead-lettered, found by its coordinates in the DLQ.
    let total = 1_300;
    let mut ends = [0i64; 2];
    for n in 0..total {
        let event = order(n, "order.created", T0 + n as i64);
        let (partition, offset) = topic.produce(&event).await;
        ends[partition as usize] = ends[partition as usize].max(offset + 1);
        if n == 7 {
            topic
                .dead_letter_from(&event, Reason::ConstraintViolation, (partition, offset))
                .await;
            continue;
        }
        fixture.store_event(&event).await;
        fixture.set_state(&event).await;
    }
    for (partition, end) in ends.iter().enumerate() {
        topic.commit(partition as i32, *end).await;
    }
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 0);
    let report = ran.json();
    assert_eq!(
        report["committed"],
        serde_json::json!({"stored": total - 1, "dead_lettered": 1, "missing": 0})
    );
    assert_eq!(report["lag"], 0);
    let checked: u64 = report["state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["checked"].as_u64().unwrap())
        .sum();
    assert_eq!(checked, total as u64 - 1, "every order's state compared");
    fixture.finish().await;
}

#[tokio::test]
async fn a_state_that_is_not_the_newest_event_by_rank_is_inconsistent() {
    let fixture = Fixture::new(2, true).await;
    // Order 10: created and paid in the same second. By id alone `evt_9`
    // (created) sorts after `evt_10` (paid); by the design's order the rank
    // decides, and paid is the newest.
    let mut created = order(10, "order.created", T0);
    created["id"] = "evt_9".into();
    let paid = order(10, "order.paid", T0);
    // Order 11: a later event time wins over any rank.
    let refunded = order(11, "order.refunded", T0);
    let mut updated = order(11, "order.updated", T0 + 1);
    updated["id"] = "evt_11b".into();
    for event in [&created, &paid, &refunded, &updated] {
        fixture.store_event(event).await;
    }
    fixture.set_state(&paid).await;
    fixture.set_state(&updated).await;
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 0);

    fixture.set_state(&created).await;
    fixture.set_state(&refunded).await;
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 1);
    let report = ran.json();
    assert_eq!(report["inconsistent"], 2, "{report}");
    let entities: Vec<_> = report["state"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["entities"].as_array().unwrap().clone())
        .collect();
    let ord_10 = entities
        .iter()
        .find(|e| e["entity_id"] == "ord_10")
        .unwrap();
    assert_eq!(ord_10["state"]["provider_event_id"], "evt_9");
    assert_eq!(ord_10["newest"]["provider_event_id"], "evt_10");
    assert_eq!(ord_10["newest"]["event_type"], "order.paid");
    let ord_11 = entities
        .iter()
        .find(|e| e["entity_id"] == "ord_11")
        .unwrap();
    assert_eq!(ord_11["newest"]["event_type"], "order.updated");

    // An event with no state row at all, and a state row with no event.
    let orphan = order(12, "order.created", T0);
    fixture.store_event(&orphan).await;
    fixture.set_state(&order(13, "order.created", T0)).await;
    let ran = fixture.hookline(&["verify"]).await;
    assert_code(&ran, 1);
    for line in [
        "3 state rows checked, 4 entities not at their newest event",
        "ord_10 on shard",
        "state evt_9 (order.created at 2023-11-14T22:13:20Z), newest stored event evt_10 (order.paid at 2023-11-14T22:13:20Z)",
        "ord_12 on shard",
        "state none, newest stored event evt_12",
        "ord_13 on shard",
    ] {
        assert!(ran.stdout.contains(line), "{line:?} not in {}", ran.stdout);
    }
    fixture.finish().await;
}

#[tokio::test]
async fn an_audit_that_cannot_look_exits_2() {
    let fixture = Fixture::new(2, true).await;
    assert_code(&fixture.hookline(&["verify"]).await, 0);

    // The database of a shard unreachable.
    let url = std::fs::read_to_string(fixture.secrets().join("pg-shard-a/url")).unwrap();
    let closed = format!(
        "postgres://hookline:hookline@127.0.0.1:{}/nowhere",
        hookline_testkit::free_port()
    );
    crate::support::write(&fixture.secrets().join("pg-shard-a/url"), &closed);
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 2);
    assert_eq!(ran.json()["result"], "unchecked");
    assert!(
        ran.json()["error"]
            .as_str()
            .unwrap()
            .contains("connecting to shard a"),
        "{}",
        ran.stdout
    );
    crate::support::write(&fixture.secrets().join("pg-shard-a/url"), &url);

    // The broker unreachable.
    fixture.write_manifest(&format!("127.0.0.1:{}", hookline_testkit::free_port()));
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 2);
    assert!(
        ran.stderr.contains("verify could not check"),
        "{}",
        ran.stderr
    );

    // A manifest that is not one.
    crate::support::write(&fixture.manifest(), "spec: [not a pipeline");
    assert_code(&fixture.hookline(&["verify"]).await, 2);
    fixture.finish().await;
}

/// A declared type's states are audited against its own events in the
/// shared tables: another type's newer event of the same entity id is not
/// its newest, and its lifecycle decides a same-second pair.
#[tokio::test]
async fn a_declared_types_state_is_audited_against_its_own_events_by_its_lifecycle() {
    let fixture = Fixture::new(2, true).await;
    fixture.declare_refunds().await;
    let shard = fixture.shard_of("user-0");
    store_declared(shard, "refunds", "rf_1", "evt_b", "refund.created", T0).await;
    store_declared(shard, "refunds", "rf_1", "evt_a", "refund.succeeded", T0).await;
    set_declared_state(shard, "refunds", "rf_1", "evt_a", "refund.succeeded", T0).await;
    // Rows of another type with the same entity id, newer.
    store_declared(shard, "issues", "rf_1", "evt_z", "opened", T0 + 100).await;
    set_declared_state(shard, "issues", "rf_1", "evt_z", "opened", T0 + 100).await;
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 0);
    let report = ran.json();
    let tables: Vec<&str> = report["state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["table"].as_str().unwrap())
        .collect();
    assert!(tables.contains(&"entities (refunds)"), "{report}");

    // By id alone evt_b would be the newest; by the lifecycle it is not.
    set_declared_state(shard, "refunds", "rf_1", "evt_b", "refund.created", T0).await;
    let ran = fixture.hookline(&["verify", "--output", "json"]).await;
    assert_code(&ran, 1);
    let report = ran.json();
    assert_eq!(report["inconsistent"], 1, "{report}");
    let entity = report["state"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["entities"].as_array().unwrap().clone())
        .find(|e| e["entity_id"] == "rf_1")
        .unwrap();
    assert_eq!(entity["state"]["provider_event_id"], "evt_b");
    assert_eq!(entity["newest"]["provider_event_id"], "evt_a");
    assert_eq!(entity["newest"]["event_type"], "refund.succeeded");
    fixture.finish().await;
}
