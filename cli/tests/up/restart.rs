//! A worker killed under `hookline up` is back at once: `up` waits on its
//! children rather than looking every second, the replacement is pinned to
//! the same partition with no consumer group to form, and resumes at the
//! committed offset.

use std::collections::BTreeMap;
use std::time::Duration;

use hookline_contract::partition_for;
use tokio::time::Instant;

use crate::pipeline::*;
use crate::support::*;

/// From the kill to the replacement's pid file. `up` starts it again when
/// the kernel reports the death (SIGCHLD), some milliseconds; the old
/// once-a-second look took up to 1 s. Room is left for a busy machine.
const NOTICED_WITHIN: Duration = Duration::from_millis(500);
/// From the 202 of an event sent right after the kill to its row. The goal,
/// measured with release builds (README), is under a second; these are
/// debug builds on two cores shared with the other tests, and the
/// replacement migrates its shards and asks the broker for its offset
/// before it reads. Before pinned workers, a replacement waited some 6 s
/// for its consumer group to form again.
const LANDED_WITHIN: Duration = Duration::from_secs(2);
/// Events sent right after the kill.
const AFTER_KILL: usize = 10;

/// An order event of `user`, order `ord_<n>`.
fn order_of(user: &str, n: usize) -> serde_json::Value {
    serde_json::json!({
        "id": format!("evt_{n}"), "type": "order.paid", "created": 1_700_000_000 + n,
        "data": {"user_id": user, "order_id": format!("ord_{n}"),
                 "amount": 100, "currency": "eur", "status": "paid"}
    })
}

/// Polls `path` every few milliseconds until it holds something other than
/// `old`; when it did.
async fn replaced(path: &std::path::Path, old: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::fs::read_to_string(path).is_ok_and(|now| !now.is_empty() && now != old) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{} still says {old}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_sigkilled_worker_is_replaced_at_once_and_events_sent_after_the_kill_land_quickly() {
    let up = Up::start(|run| manifest(&format!("up-{run}.orders"), 2, "/id"), 2).await;
    let client = reqwest::Client::new();
    // Users of partition 0, whose worker is killed.
    let users: Vec<String> = (0..)
        .map(|i| format!("user-{i}"))
        .filter(|u| partition_for(u.as_bytes(), 2) == Some(0))
        .take(5)
        .collect();
    let (status, text) = post(&client, &up.ingest, "orders", &order_of(&users[0], 0), "m0").await;
    assert_eq!(status, 202, "{text}");
    hookline_testkit::eventually("the first event stored", || async {
        rows(&up.pools).await == 1
    })
    .await;

    let pid_file = up.first_worker_pid_file();
    let pid = up.kill_first_worker();
    let killed = Instant::now();
    let noticed = tokio::spawn({
        let pid_file = pid_file.clone();
        let pid = pid.clone();
        async move { replaced(&pid_file, &pid).await }
    });
    let mut sent = BTreeMap::new();
    for n in 1..=AFTER_KILL {
        let user = &users[n % users.len()];
        let (status, text) = post(
            &client,
            &up.ingest,
            "orders",
            &order_of(user, n),
            &format!("m{n}"),
        )
        .await;
        assert_eq!(status, 202, "{text}");
        sent.insert(format!("ord_{n}"), Instant::now());
    }
    let noticed = noticed.await.unwrap() - killed;
    assert!(
        noticed <= NOTICED_WITHIN,
        "the worker was started again {noticed:?} after the kill"
    );

    // Each event's row, as it shows up.
    let mut landed = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while landed.len() < sent.len() {
        for pool in &up.pools {
            let stored: Vec<String> =
                sqlx::query_scalar("SELECT order_id FROM order_events WHERE order_id <> 'ord_0'")
                    .fetch_all(pool)
                    .await
                    .unwrap_or_default();
            for order in stored {
                landed.entry(order).or_insert_with(Instant::now);
            }
        }
        assert!(Instant::now() < deadline, "stored after 30 s: {landed:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let longest = sent
        .iter()
        .map(|(order, at)| landed[order].saturating_duration_since(*at))
        .max()
        .unwrap();
    println!("replacement started {noticed:?} after the kill; longest 202 to row {longest:?}");
    assert!(
        longest <= LANDED_WITHIN,
        "an event sent after the kill took {longest:?} to land"
    );
    assert_eq!(
        rows(&up.pools).await,
        1 + AFTER_KILL as i64,
        "nothing doubled"
    );
    assert!(
        up.errors()
            .contains(&format!("worker {}-0 exited; starting it again", up.topic)),
        "{}",
        up.errors()
    );
    up.stop().await;
}
