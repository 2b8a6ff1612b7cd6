//! A declared event type, end to end through the real worker: stored once in
//! `events` on its users' shards, `entities` at the latest state by lifecycle,
//! and a payload without a user dead-lettered with its reason.

use hookline_contract::{headers as h, shard_for};

use crate::pipeline::{Pipeline, ev, eventually};
use crate::poison::read_dlq;

/// The stored state of refund `refund_id` on `user`'s shard.
async fn entity(
    pipeline: &Pipeline,
    user: &str,
    refund_id: &str,
) -> (Option<String>, String, String) {
    let shard = shard_for(user, 2).unwrap() as usize;
    sqlx::query_as(
        "SELECT status, last_event_id, state->>'type' FROM entities WHERE type = 'refunds' AND entity_id = $1",
    )
    .bind(refund_id)
    .fetch_one(&pipeline.shards[shard].pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn declared_events_are_stored_once_on_their_users_shards_at_the_latest_state() {
    let pipeline = Pipeline::new("refunds", None).await;
    let users: Vec<String> = (0..12).map(|i| format!("user-{i}")).collect();
    for user in &users {
        let created = ev(user, &format!("{user}-evt-1"), &format!("{user}-rf"))
            .at(1_700_000_000)
            .typed("refund.created")
            .status("pending");
        pipeline.produce(&created).await;
        // A provider's retry: the same event again.
        pipeline.produce(&created).await;
    }
    // The same second, in the order that the ids alone would get wrong:
    // "a-…" sorts before "z-…", and the later lifecycle step comes first. In
    // one batch, the fold decides.
    let succeeded = ev("user-0", "a-succeeded", "rf-same-second")
        .at(1_700_000_500)
        .typed("refund.succeeded")
        .status("succeeded");
    let created = ev("user-0", "z-created", "rf-same-second")
        .at(1_700_000_500)
        .typed("refund.created")
        .status("pending");
    pipeline.produce(&succeeded).await;
    pipeline.produce(&created).await;

    let mut workers = pipeline.workers().await;
    eventually("every distinct event stored", || async {
        pipeline.total("events").await == 14
    })
    .await;
    // Nothing more arrives once the offsets are committed past the retries.
    let ends = pipeline.ends().await;
    eventually("offsets committed to the end", || async {
        pipeline.committed().await == ends
    })
    .await;
    assert_eq!(pipeline.total("events").await, 14);
    assert_eq!(pipeline.total("entities").await, 13);
    for user in &users {
        let home = shard_for(user, 2).unwrap() as usize;
        let here: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE user_id = $1")
            .bind(user)
            .fetch_one(&pipeline.shards[home].pool)
            .await
            .unwrap();
        let elsewhere: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE user_id = $1")
            .bind(user)
            .fetch_one(&pipeline.shards[1 - home].pool)
            .await
            .unwrap();
        let expected = if user == "user-0" { 3 } else { 1 };
        assert_eq!((here, elsewhere), (expected, 0), "{user}");
    }
    assert_eq!(
        entity(&pipeline, "user-0", "rf-same-second").await,
        (
            Some("succeeded".into()),
            "a-succeeded".into(),
            "refund.succeeded".into()
        ),
        "the lifecycle decides a same-second pair, and the state is the winner's payload"
    );
    assert_eq!(
        entity(&pipeline, "user-3", "user-3-rf").await,
        (
            Some("pending".into()),
            "user-3-evt-1".into(),
            "refund.created".into()
        )
    );

    // The same pair across two batches: the stored state is `succeeded`, and
    // the `created` of the same second that arrives later must not replace it
    // (the upsert's guard decides, by rank, where the id alone would not).
    let late = ev("user-0", "z-created-late", "rf-1")
        .at(1_700_000_000)
        .typed("refund.created")
        .status("pending");
    let first = ev("user-0", "a-succeeded-first", "rf-1")
        .at(1_700_000_000)
        .typed("refund.succeeded")
        .status("succeeded");
    pipeline.produce(&first).await;
    eventually("the succeeded event stored", || async {
        pipeline.total("events").await == 15
    })
    .await;
    pipeline.produce(&late).await;
    eventually("the late created event stored", || async {
        pipeline.total("events").await == 16
    })
    .await;
    assert_eq!(
        entity(&pipeline, "user-0", "rf-1").await,
        (
            Some("succeeded".into()),
            "a-succeeded-first".into(),
            "refund.succeeded".into()
        )
    );
    workers.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn a_declared_payload_without_a_user_is_dead_lettered_with_its_reason() {
    let pipeline = Pipeline::new("refunds", None).await;
    let good = ev("user-1", "evt-good", "rf-1").typed("refund.created");
    pipeline.produce(&good).await;
    let mut payload = pipeline.payload(&ev("user-1", "evt-no-user", "rf-2"));
    payload["data"].as_object_mut().unwrap().remove("user_id");
    let value = serde_json::to_vec(&payload).unwrap();
    let partition = hookline_contract::partition_for(b"user-1", 4).unwrap() as i32;
    let envelope = pipeline.envelope(&ev("user-1", "evt-no-user", "rf-2"));
    pipeline
        .produce_raw(Some("user-1"), &value, Some(partition), Some(envelope))
        .await;

    let mut workers = pipeline.workers().await;
    let records = read_dlq(&pipeline.dlq(), 1).await;
    assert_eq!(records[0].headers[h::dlq::REASON], "missing_user_id");
    assert!(
        records[0].headers[h::dlq::MESSAGE].contains("/data/user_id"),
        "{}",
        records[0].headers[h::dlq::MESSAGE]
    );
    assert_eq!(records[0].value, value);
    eventually("the valid event stored", || async {
        pipeline.total("events").await == 1
    })
    .await;
    workers.terminate().await;
    pipeline.drop_shards().await;
}
