//! Crashes and outages: nothing lost, nothing doubled, nothing skipped.

use std::collections::BTreeSet;

use hookline_contract::shard_for;

use crate::pipeline::{Ev, PARTITIONS, Pipeline, ev, eventually};
use hookline_testkit::proxy::Proxy;

/// Order event `i`: event `evt_<i>` of order `ord_<i>`, for one of `users`
/// users.
fn numbered(i: i64, users: i64) -> Ev {
    ev(
        &format!("user-{}", i % users),
        &format!("evt_{i}"),
        &format!("ord_{i}"),
    )
}

#[tokio::test]
async fn worker_killed_mid_stream_and_restarted_stores_every_event_once() {
    let pipeline = Pipeline::orders().await;
    let total = 3_000;
    for i in 0..total {
        pipeline.produce(&numbered(i, 97)).await;
    }
    // A provider's retries, interleaved.
    for i in (0..total).step_by(50) {
        pipeline.produce(&numbered(i, 97)).await;
    }

    // Batches of 2: the stream takes some fifteen hundred transactions and
    // commits, long enough to be cut in the middle.
    let mut workers = pipeline.workers_with_batch(2).await;
    eventually("some but not all events stored", || async {
        let stored = pipeline.total("order_events").await;
        stored >= 300
    })
    .await;
    workers.kill().await;
    let at_kill = pipeline.total("order_events").await;
    assert!(
        at_kill < total,
        "the stream was over before the kill ({at_kill})"
    );

    // Each pinned worker resumes its partition at the group's commit.
    workers.restart().await;
    eventually("every event stored", || async {
        pipeline.total("order_events").await == total
    })
    .await;
    let ends = pipeline.ends().await;
    eventually("offsets committed to the end", || async {
        pipeline.committed().await == ends
    })
    .await;

    assert_eq!(pipeline.total("order_events").await, total, "none doubled");
    assert_eq!(pipeline.total("orders").await, total);
    workers.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn shard_outage_is_retried_without_dlq_or_commits_past_the_gap() {
    let proxy = Proxy::start("127.0.0.1:5432").await.unwrap();
    let pipeline = Pipeline::new("orders", Some(proxy.port)).await;
    let users: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    for (i, user) in users.iter().enumerate() {
        pipeline
            .produce(&ev(user, &format!("evt_a{i}"), &format!("ord_a{i}")))
            .await;
    }
    let mut workers = pipeline.workers().await;
    eventually("the first events stored", || async {
        pipeline.total("order_events").await == 40
    })
    .await;
    let before = pipeline.ends().await;
    eventually("their offsets committed", || async {
        pipeline.committed().await == before
    })
    .await;

    proxy.stop();
    for (i, user) in users.iter().enumerate() {
        pipeline
            .produce(&ev(user, &format!("evt_b{i}"), &format!("ord_b{i}")))
            .await;
    }
    eventually("the workers retry the failing batch", || async {
        workers.metric("hookline_worker_batch_retries_total").await >= 3.0
    })
    .await;

    // Partitions hold the users of one shard each (P is a multiple of N): the
    // partitions of shard b must not have moved past the gap.
    let committed = pipeline.committed().await;
    let shard_b_partitions: BTreeSet<i32> = (0..PARTITIONS).filter(|p| p % 2 == 1).collect();
    for p in &shard_b_partitions {
        assert_eq!(
            committed.get(p),
            before.get(p),
            "partition {p} committed past the gap"
        );
    }
    assert_eq!(
        workers.metric("hookline_worker_dead_lettered_total").await,
        0.0
    );
    let on_b = users.iter().filter(|u| shard_for(u, 2) == Some(1)).count() as i64;
    assert_eq!(
        pipeline.count(1, "order_events").await,
        on_b,
        "nothing new on shard b"
    );

    proxy.resume().await.unwrap();
    eventually("everything arrives once the shard is back", || async {
        pipeline.total("order_events").await == 80
    })
    .await;
    let after = pipeline.ends().await;
    eventually("offsets committed to the end", || async {
        pipeline.committed().await == after
    })
    .await;
    assert_eq!(
        workers.metric("hookline_worker_dead_lettered_total").await,
        0.0
    );
    workers.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn two_workers_in_one_group_share_the_partitions_and_store_everything_once() {
    // Group mode, as the Kubernetes workers run: no --partition.
    let pipeline = Pipeline::orders().await;
    let mut first = pipeline.group_worker("w1").await;
    let mut second = pipeline.group_worker("w2").await;
    let total = 400;
    for i in 0..total {
        pipeline.produce(&numbered(i, 61)).await;
    }

    eventually("every event stored", || async {
        pipeline.total("order_events").await == total
    })
    .await;
    let ends = pipeline.ends().await;
    eventually("offsets committed to the end", || async {
        pipeline.committed().await == ends
    })
    .await;

    let held = "hookline_worker_assigned_partitions";
    eventually("the group split the 4 partitions between them", || async {
        let (a, b) = (first.metric(held).await, second.metric(held).await);
        a >= 1.0 && b >= 1.0 && a + b == f64::from(PARTITIONS)
    })
    .await;
    let inserted = "hookline_worker_processed_total{outcome=\"inserted\"}";
    let (a, b) = (first.metric(inserted).await, second.metric(inserted).await);
    assert!(a > 0.0 && b > 0.0, "both workers wrote: {a} and {b}");
    assert_eq!(a + b, total as f64, "inserts add up to the events");
    first.terminate().await;
    second.terminate().await;
    pipeline.drop_shards().await;
}

/// A rollout of group workers: a new pod (a new process, a new identity)
/// starts, then the old one is stopped. The old one leaves the group as it
/// stops, so its partitions are consumed again by the new one long before the
/// 45 s a static member named after its pod would hold them.
#[tokio::test]
async fn a_group_worker_replaced_by_a_new_one_has_its_partitions_consumed_again_within_seconds() {
    use std::time::{Duration, Instant};

    let pipeline = Pipeline::orders().await;
    let mut old = pipeline.dynamic_worker("old-pod").await;
    for i in 0..40 {
        pipeline.produce(&numbered(i, 41)).await;
    }
    eventually("the old worker stores everything", || async {
        pipeline.total("order_events").await == 40
    })
    .await;

    let mut new = pipeline.dynamic_worker("new-pod").await;
    old.terminate().await;
    let replaced = Instant::now();
    for i in 40..80 {
        pipeline.produce(&numbered(i, 41)).await;
    }
    let mut first_row = None;
    let all_rows = loop {
        let total = pipeline.total("order_events").await;
        if total > 40 && first_row.is_none() {
            first_row = Some(replaced.elapsed());
        }
        if total == 80 {
            break replaced.elapsed();
        }
        assert!(
            replaced.elapsed() < Duration::from_secs(60),
            "{total} of 80 after a minute; log: {}",
            new.log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first_row = first_row.unwrap_or(all_rows);
    eprintln!("after the replacement: first row in {first_row:?}, all 80 in {all_rows:?}");
    assert!(
        all_rows < Duration::from_secs(20),
        "every partition consumed again in {all_rows:?}, not well before 45 s"
    );
    assert_eq!(
        new.metric("hookline_worker_assigned_partitions").await,
        f64::from(PARTITIONS)
    );
    new.terminate().await;
    pipeline.drop_shards().await;
}
