//! Pinned workers (`--partition N`), as `hookline up` runs them: a lone event
//! is stored at once, a backlog still goes in large batches, and a worker
//! killed mid-stream resumes exactly where its group's commit says.

use std::time::Duration;

use futures_util::future::join_all;
use hookline_contract::{partition_for, shard_for};
use tokio::time::Instant;

use crate::pipeline::{Ev, PARTITIONS, Pipeline, ev, eventually};
use crate::workers::{Membership, WorkerProcess};

/// The median receipt-to-row time a lone event must beat. Before adaptive
/// batching, a record waited for the worker's flush tick (50 ms in these
/// tests, 100 ms by default) on top of the broker's fetch wait (100 ms, which
/// tansu always waits out): a median near 100 ms. Now it is the fetch wait of
/// the tests (10 ms), one transaction and the polling below, some 15-25 ms on
/// an idle machine; the bound leaves room for a 2-core machine busy with
/// other tests, and the median of several events for a single hiccup.
const LONE_EVENT_MEDIAN: Duration = Duration::from_millis(60);
/// Lone events measured, one after the other.
const LONE_EVENTS: usize = 7;

/// Users whose events go to `partition`.
fn users_on(partition: i32, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("user-{i}"))
        .filter(|u| partition_for(u.as_bytes(), PARTITIONS as u32) == Some(partition as u32))
        .take(count)
        .collect()
}

/// Produces `events` a hundred at a time, acknowledged.
async fn produce_all(pipeline: &Pipeline, events: &[Ev]) {
    for chunk in events.chunks(100) {
        join_all(chunk.iter().map(|e| pipeline.produce(e))).await;
    }
}

/// When the row of order `order` first shows on `shard`, looking every
/// 2 ms for at most 10 s.
async fn row_seen(pipeline: &Pipeline, shard: usize, order: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: i64 =
            sqlx::query_scalar("SELECT count(*) FROM order_events WHERE order_id = $1")
                .bind(order)
                .fetch_one(&pipeline.shards[shard].pool)
                .await
                .unwrap_or(0);
        if found > 0 {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "order {order} not stored in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_lone_event_is_stored_within_tens_of_milliseconds_of_its_receipt() {
    let _alone = crate::support::BROKER_HEAVY_OR_TIMED.lock().await;
    let pipeline = Pipeline::orders().await;
    let mut workers = pipeline.workers().await;
    // A first event opens the shards' connections; the measured ones follow.
    pipeline
        .produce(&ev("user-0", "evt_first", "ord_first"))
        .await;
    eventually("the first event stored", || async {
        pipeline.total("order_events").await == 1
    })
    .await;

    let mut latencies = Vec::new();
    for i in 0..LONE_EVENTS {
        let user = format!("user-{i}");
        let order = format!("ord_lone_{i}");
        let shard = shard_for(&user, 2).unwrap() as usize;
        // Received: from here on the event is the pipeline's (ingest stamps
        // its receipt before it produces).
        let received = Instant::now();
        pipeline
            .produce(&ev(&user, &format!("evt_lone_{i}"), &order))
            .await;
        latencies.push(row_seen(&pipeline, shard, &order).await - received);
    }
    latencies.sort_unstable();
    let median = latencies[LONE_EVENTS / 2];
    println!("receipt to row, sorted: {latencies:?}");
    assert!(
        median <= LONE_EVENT_MEDIAN,
        "receipt to row, sorted: {latencies:?}"
    );
    // Each was a batch of its own: nothing waited for company. A batch is
    // counted after its offsets are handed to the broker, a moment after its
    // row shows: awaited, not read at once.
    eventually("every event counted as a batch of its own", || async {
        workers.metric("hookline_worker_batch_records_count").await == (LONE_EVENTS + 1) as f64
    })
    .await;
    workers.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn a_backlog_is_written_in_large_batches() {
    let pipeline = Pipeline::orders().await;
    let total = 2_000;
    let events: Vec<Ev> = (0..total)
        .map(|i| {
            ev(
                &format!("user-{}", i % 89),
                &format!("evt_{i}"),
                &format!("ord_{i}"),
            )
        })
        .collect();
    produce_all(&pipeline, &events).await;

    let mut workers = pipeline.workers_with_batch(500).await;
    eventually("the backlog stored", || async {
        pipeline.total("order_events").await == total as i64
    })
    .await;
    // Records come a fetch at a time, and a batch takes all that are ready:
    // some 500 records per partition make a few batches each, not hundreds.
    let batches = workers.metric("hookline_worker_batch_records_count").await;
    println!("{total} records in {batches} batches");
    assert!(batches <= 40.0, "{total} records took {batches} batches");
    workers.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn a_pinned_worker_killed_mid_stream_resumes_exactly_at_its_committed_offset() {
    let pipeline = Pipeline::orders().await;
    let partition = 2;
    let users = users_on(partition, 40);
    let total = 2_000;
    let events: Vec<Ev> = (0..total)
        .map(|i| {
            ev(
                &users[i % users.len()],
                &format!("evt_{i}"),
                &format!("ord_{i}"),
            )
        })
        .collect();
    produce_all(&pipeline, &events).await;
    let end = pipeline.ends().await[&partition];
    assert_eq!(end, total as i64);

    // Batches of 2: the stream takes a thousand transactions and commits,
    // long enough to be cut in the middle.
    let mut worker = pipeline.pinned(partition, 2).await;
    assert_eq!(
        worker.metric("hookline_worker_assigned_partitions").await,
        1.0
    );
    eventually("a few hundred records committed", || async {
        pipeline
            .committed()
            .await
            .get(&partition)
            .is_some_and(|&c| c >= 200)
    })
    .await;
    worker.kill().await;
    let committed = pipeline.committed().await[&partition];
    assert!(
        committed < end,
        "the stream was over before the kill ({committed})"
    );

    worker.restart().await;
    eventually("every event stored", || async {
        pipeline.total("order_events").await == total as i64
    })
    .await;
    eventually("offsets committed to the end", || async {
        pipeline.committed().await.get(&partition) == Some(&end)
    })
    .await;

    // It resumed at the commit, neither before (it would read records again
    // that were committed) nor after (it would skip some) ...
    let log = worker.logged();
    let resumed = log
        .lines()
        .rev()
        .filter(|l| l.contains("resuming at the group's committed offset"))
        // The worker logs JSON lines when its output is not a terminal.
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["offset"].as_i64())
        .unwrap_or_else(|| panic!("no resume in {log}"));
    assert_eq!(resumed, committed, "{log}");
    // ... and read every record from there once: the ones written before the
    // kill but not committed are found stored, not doubled.
    let inserted = worker
        .metric("hookline_worker_processed_total{outcome=\"inserted\"}")
        .await;
    let duplicates = worker
        .metric("hookline_worker_processed_total{outcome=\"duplicate\"}")
        .await;
    assert_eq!(inserted + duplicates, (end - committed) as f64);
    assert_eq!(pipeline.total("order_events").await, total as i64);
    assert_eq!(pipeline.total("orders").await, total as i64);
    worker.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn a_partition_the_topic_does_not_have_is_refused_at_startup() {
    let pipeline = Pipeline::orders().await;
    let mut worker = WorkerProcess::prepare(&pipeline, Membership::Pinned(PARTITIONS), 10);
    worker.spawn();
    assert!(
        !worker.exited().await,
        "the worker ran: {}",
        worker.logged()
    );
    assert!(
        worker.logged().contains(&format!(
            "has no partition {PARTITIONS} (it has {PARTITIONS})"
        )),
        "{}",
        worker.logged()
    );
    pipeline.drop_shards().await;
}
