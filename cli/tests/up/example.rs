//! The example manifest run as a user runs it: traffic with retries and
//! invalid webhooks, a killed worker, the audit, and the sample traffic.

use hookline_testkit::{DEADLINE, eventually};

use crate::pipeline::*;
use crate::support::*;

#[tokio::test]
async fn up_runs_the_example_manifest_through_retries_invalid_webhooks_and_a_killed_worker() {
    // The example: orders with 4 partitions, disputes with 2.
    let up = Up::start(example_manifest, 6).await;
    let client = reqwest::Client::new();
    // 222 webhooks: 200 unique events (160 orders, 40 disputes), 20 retries
    // (10%) and 2 invalid ones (1%), in two halves with a worker killed between.
    traffic(&client, &up.ingest, 0, 80, false).await;
    up.kill_first_worker();
    // The second half goes in at once, while the killed worker's partition
    // waits for its replacement: ingest answers for the broker, not for it.
    traffic(&client, &up.ingest, 80, 160, true).await;

    let orders = expected_per_shard((0..160).map(|i| format!("user-{}", i % 7)));
    let disputes = expected_per_shard((0..40).map(|i| format!("user-{}", i % 5)));
    assert_eq!(orders[0] + orders[1], 160);
    eventually(
        "a row per unique valid event on its user's shard",
        || async {
            rows_per_shard(&up, "order_events").await == orders
                && rows_per_shard(&up, "dispute_events").await == disputes
        },
    )
    .await;

    // Every partition is held by a worker again after the kill.
    eventually("the workers hold all 6 partitions", || async {
        assigned(&up.health[1..]).await == 6
    })
    .await;

    let orders_topic = up.topic.clone();
    let disputes_topic = format!("up-{}.disputes", up.run);
    // The audit: every committed record (retries included) has its row ...
    eventually(
        "verify counts all 220 committed records as stored",
        || async {
            let (ok, out) = up.hookline(&["verify"], &[]).await;
            ok && out.contains("220 stored, 0 in the DLQ, 0 missing")
        },
    )
    .await;
    // ... and the DLQs hold exactly the two invalid webhooks, with their reasons.
    let (_, status) = up.hookline(&["status"], &[]).await;
    for (topic, records) in [(&orders_topic, 176), (&disputes_topic, 44)] {
        let line = format!("topic {topic}: ");
        let line = status
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("{status}"));
        assert!(
            line.ends_with(&format!("{records} records, lag 0, DLQ 1")),
            "{status}"
        );
    }
    let (_, listed) = up.hookline(&["dlq", "list"], &[]).await;
    assert!(
        listed.contains(&format!("{orders_topic}.DLQ: 1 missing_user_id\n"))
            && listed.contains(&format!("{disputes_topic}.DLQ: 1 schema_invalid\n")),
        "{listed}"
    );
    assert_eq!(
        rows_per_shard(&up, "order_events").await,
        orders,
        "nothing doubled"
    );
    assert_eq!(
        rows_per_shard(&up, "dispute_events").await,
        disputes,
        "nothing doubled"
    );

    // A row deleted behind the audit's back is named.
    let mut deleted = 0;
    for pool in &up.pools {
        deleted += sqlx::query("DELETE FROM order_events WHERE order_id = 'ord_3'")
            .execute(pool)
            .await
            .unwrap()
            .rows_affected();
    }
    assert_eq!(deleted, 1);
    let (ok, out) = up.hookline(&["verify"], &[]).await;
    assert!(!ok, "verify passed with a row missing: {out}");
    assert!(
        out.contains("1 missing") && out.contains("event evt_3 of user user-3"),
        "{out}"
    );
    up.stop().await;
}

#[tokio::test]
async fn sample_traffic_reports_where_the_webhooks_went_and_exit_stops_everything() {
    let mut up = Up::launch(example_manifest, 6, &["--sample-traffic", "--exit"]).await;
    let status = tokio::time::timeout(2 * DEADLINE, up.child.wait())
        .await
        .unwrap()
        .unwrap();
    let (out, errors) = (std::fs::read_to_string(&up.stdout).unwrap(), up.errors());
    assert!(status.success(), "up exited with {status}: {out}{errors}");
    for line in [
        "sent 295 webhooks: 295 × 202",
        "25 duplicate deliveries recognised by the workers; 10 invalid webhooks quarantined to the DLQs (10 in all)",
        "pipeline stopped",
    ] {
        assert!(out.contains(line), "{line:?} not in {out}");
    }
    let orders = rows_per_shard(&up, "order_events").await;
    let disputes = rows_per_shard(&up, "dispute_events").await;
    assert_eq!(
        (orders[0] + orders[1], disputes[0] + disputes[1]),
        (200, 60)
    );
    assert!(
        out.contains(&format!(
            "  {:<16} {:>16} {:>16}",
            "order_events",
            format!("{0} / {0}", orders[0]),
            format!("{0} / {0}", orders[1])
        )),
        "{out}"
    );
    up.finish().await;
}

/// Declared types beside the built-in orders, from the manifest alone: the
/// sample's webhooks of every type reach their tables once, retries folded.
#[tokio::test]
async fn declared_types_run_beside_the_built_in_orders_from_the_sources_example() {
    let mut up = Up::launch(sources_manifest, 6, &["--sample-traffic", "--exit"]).await;
    let status = tokio::time::timeout(2 * DEADLINE, up.child.wait())
        .await
        .unwrap()
        .unwrap();
    let (out, errors) = (std::fs::read_to_string(&up.stdout).unwrap(), up.errors());
    assert!(status.success(), "up exited with {status}: {out}{errors}");
    for line in [
        "sent 355 webhooks: 355 × 202",
        "25 duplicate deliveries recognised by the workers; 10 invalid webhooks quarantined to the DLQs (10 in all)",
    ] {
        assert!(out.contains(line), "{line:?} not in {out}");
    }
    let orders = rows_per_shard(&up, "order_events").await;
    let declared = rows_per_shard(&up, "events").await;
    let entities = rows_per_shard(&up, "entities").await;
    assert_eq!(
        (
            orders[0] + orders[1],
            declared[0] + declared[1],
            entities[0] + entities[1]
        ),
        (200, 120, 120)
    );
    for pool in &up.pools {
        let types: Vec<(String, i64)> =
            sqlx::query_as("SELECT type, count(*) FROM events GROUP BY type ORDER BY type")
                .fetch_all(pool)
                .await
                .unwrap();
        assert!(
            types.iter().all(|(t, _)| t == "issues" || t == "refunds"),
            "{types:?}"
        );
    }
    up.finish().await;
}

/// A declared type whose pointer cannot work is refused before anything
/// starts, with a message that names it.
#[tokio::test]
async fn up_refuses_a_manifest_with_a_broken_pointer_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pipeline.yaml");
    std::fs::write(
        &manifest,
        sources_manifest("broken").replace("entityId: /issue/id", "entityId: issue/id"),
    )
    .unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .arg("up")
        .arg("-f")
        .arg(&manifest)
        .arg("--secrets-dir")
        .arg(dir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEADLINE, run).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("eventTypes issues: fields.entityId \"issue/id\" is not a JSON Pointer"),
        "{stderr}"
    );
}
