//! What changes under a running `hookline up`: an `up` killed and replaced,
//! a changed partition count, a fixed manifest and the replay it allows.

use std::path::Path;

use hookline_testkit::eventually;

use crate::pipeline::*;
use crate::support::*;

#[tokio::test]
async fn a_new_up_stops_the_processes_a_killed_up_left_behind() {
    let mut up = Up::start(|run| manifest(&format!("up-{run}.orders"), 2, "/id"), 2).await;
    let pid_file = up.first_worker_pid_file();
    let left = std::fs::read_to_string(&pid_file).unwrap();
    // `up` alone is killed: its workers and ingest run on, orphaned.
    std::process::Command::new("kill")
        .args(["-KILL", &up.child.id().unwrap().to_string()])
        .status()
        .unwrap();
    up.child.wait().await.unwrap();
    assert!(Path::new(&format!("/proc/{}", left.trim())).exists());

    let (child, group) = spawn_up(&up.args, &up.stdout, &up.stderr);
    up.child = child;
    up.groups.push(group);
    eventually("the left-behind worker stopped and replaced", || async {
        !Path::new(&format!("/proc/{}/cmdline", left.trim())).exists()
            || std::fs::read(format!("/proc/{}/cmdline", left.trim())).is_ok_and(|c| c.is_empty())
    })
    .await;
    assert!(
        up.errors()
            .contains("was left running by an earlier run; stopping it"),
        "{}",
        up.errors()
    );
    up.restarted(2).await;
    assert_ne!(std::fs::read_to_string(&pid_file).unwrap(), left);
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 10).await;
    eventually("10 rows", || async { rows(&up.pools).await == 10 }).await;
    up.stop().await;
}

#[tokio::test]
async fn a_changed_partition_count_is_applied_as_the_operator_would() {
    let up = Up::start(|run| manifest(&format!("up-{run}.orders"), 4, "/id"), 4).await;
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 10).await;
    eventually("10 rows", || async { rows(&up.pools).await == 10 }).await;

    // Fewer partitions than the broker has: the broker's count stands and the
    // four workers keep running, as the operator adopts it.
    write(
        &up.dir.path().join("pipeline.yaml"),
        &manifest(&up.topic, 2, "/id"),
    );
    eventually("up reports the decrease", || async {
        up.errors().contains(&format!(
            "topic {} has 4 partitions, more than the 2 of the manifest",
            up.topic
        ))
    })
    .await;
    up.restarted(2).await;

    // More partitions: this broker cannot grow a topic; up says so and runs on.
    write(
        &up.dir.path().join("pipeline.yaml"),
        &manifest(&up.topic, 6, "/id"),
    );
    eventually(
        "up reports that the broker cannot grow the topic",
        || async {
            up.errors().contains(&format!(
                "topic {} stays at 4 partitions: this broker does not implement CreatePartitions",
                up.topic
            ))
        },
    )
    .await;
    up.restarted(3).await;
    let (_, status) = up.hookline(&["status"], &[]).await;
    assert!(
        status.contains(&format!("topic {}: 4 partitions", up.topic)),
        "{status}"
    );
    send(&client, &up.ingest, 10, 20).await;
    eventually("20 rows", || async { rows(&up.pools).await == 20 }).await;
    up.stop().await;
}

#[tokio::test]
async fn replay_after_fixing_the_cause_stores_the_quarantined_events_once() {
    // A wrong pointer: every webhook is quarantined as missing its event id.
    let up = Up::start(
        |run| manifest(&format!("up-{run}.orders"), 2, "/event_id"),
        2,
    )
    .await;
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 10).await;
    let (_, listed) = up.hookline(&["dlq", "list"], &[]).await;
    assert!(listed.contains("10 missing_event_id"), "{listed}");
    assert_eq!(rows(&up.pools).await, 0);

    // The fix: the manifest points at the provider's id; `up` applies it.
    write(
        &up.dir.path().join("pipeline.yaml"),
        &manifest(&up.topic, 2, "/id"),
    );
    up.restarted(2).await;
    let (ok, dry) = up.hookline(&["dlq", "replay"], &["--dry-run"]).await;
    assert!(ok && dry.contains("would replay 10"), "{dry}");
    assert_eq!(rows(&up.pools).await, 0, "a dry run changes nothing");

    let (ok, out) = up.hookline(&["dlq", "replay"], &[]).await;
    assert!(ok && out.contains("replayed 10, still invalid 0"), "{out}");
    eventually("the replayed events stored", || async {
        rows(&up.pools).await == 10
    })
    .await;
    let (ok, again) = up.hookline(&["dlq", "replay"], &[]).await;
    assert!(ok && again.contains("replayed 0"), "{again}");
    eventually("verify sees the 10 replayed events stored", || async {
        let (ok, out) = up.hookline(&["verify"], &[]).await;
        ok && out.contains("10 stored")
    })
    .await;
    assert_eq!(rows(&up.pools).await, 10, "stored once");
    up.stop().await;
}

/// A signing secret rotated in its file is taken by the running ingest
/// process, the real binary `up` started, with no restart: a signature by the
/// new secret is refused before and accepted after, and ingest started once.
#[tokio::test]
async fn a_rotated_signing_secret_is_taken_by_the_running_ingest_process() {
    let up = Up::start(|run| manifest(&format!("up-{run}.orders"), 2, "/id"), 2).await;
    let client = reqwest::Client::new();
    let rotated = "whsec_cm90YXRlZC1zaWduaW5nLXNlY3JldC0wMDAx";
    let webhook = ("orders", &order(1), "msg_rotated_1");
    let (status, _) = post_signed(&client, &up.ingest, webhook, rotated).await;
    assert_eq!(status, 401, "a secret ingest was never given");

    let file = Path::new(&up.secrets()).join("provider-secrets/standard-webhooks");
    write(&file, &format!("{SECRET}\n{rotated}\n"));
    eventually("the new secret accepted", || async {
        post_signed(&client, &up.ingest, webhook, rotated).await.0 == 202
    })
    .await;
    let (status, _) = post(&client, &up.ingest, "orders", &order(2), "msg_rotated_2").await;
    assert_eq!(status, 202, "the old secret, still in the file");
    let log = std::fs::read_to_string(up.logs.join("ingest.log")).unwrap();
    assert_eq!(
        log.matches("hookline-ingest serving").count(),
        1,
        "ingest was restarted: {log}"
    );
    up.stop().await;
}
