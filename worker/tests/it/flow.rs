//! Records through the worker into the shards: placement, duplicates, order.

use hookline_contract::shard_for;

use crate::pipeline::{Pipeline, ev, eventually};

#[tokio::test]
async fn every_event_lands_on_its_users_shard_and_nowhere_else() {
    let pipeline = Pipeline::orders().await;
    let events: Vec<_> = (0..200)
        .map(|i| {
            ev(
                &format!("user-{}", i % 40),
                &format!("evt_{i}"),
                &format!("ord_{i}"),
            )
        })
        .collect();
    for e in &events {
        pipeline.produce(e).await;
    }

    let mut worker = pipeline.workers().await;
    eventually("all 200 events stored", || async {
        pipeline.total("order_events").await == 200
    })
    .await;

    for shard in 0..2 {
        let users: Vec<String> = sqlx::query_scalar("SELECT DISTINCT user_id FROM order_events")
            .fetch_all(&pipeline.shards[shard].pool)
            .await
            .unwrap();
        assert!(!users.is_empty(), "shard {shard} got nothing");
        for user in users {
            assert_eq!(
                shard_for(&user, 2),
                Some(shard as u32),
                "{user} on shard {shard}"
            );
        }
    }
    assert_eq!(pipeline.total("orders").await, 200);
    // Committed only after the rows: every partition's offset reaches its end.
    let ends = pipeline.ends().await;
    eventually("offsets committed to the end", || async {
        pipeline.committed().await == ends
    })
    .await;
    worker.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn the_same_event_produced_three_times_is_one_row() {
    let pipeline = Pipeline::orders().await;
    let event = ev("user-7", "evt_dup", "ord_dup");
    for _ in 0..3 {
        pipeline.produce(&event).await;
    }
    pipeline
        .produce(&ev("user-7", "evt_after", "ord_after"))
        .await;

    let mut worker = pipeline.workers().await;
    eventually("the later event stored", || async {
        pipeline.total("orders").await == 2
    })
    .await;
    eventually("three duplicates counted", || async {
        worker
            .metric("hookline_worker_processed_total{outcome=\"duplicate\"}")
            .await
            == 2.0
    })
    .await;

    assert_eq!(pipeline.total("order_events").await, 2);
    worker.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn events_out_of_order_leave_the_newest_state() {
    let pipeline = Pipeline::orders().await;
    let user = "user-3";
    pipeline
        .produce(
            &ev(user, "evt_3", "ord_1")
                .at(1_700_003_000)
                .status("refunded"),
        )
        .await;
    pipeline
        .produce(
            &ev(user, "evt_1", "ord_1")
                .at(1_700_001_000)
                .status("created"),
        )
        .await;
    pipeline
        .produce(&ev(user, "evt_2", "ord_1").at(1_700_002_000).status("paid"))
        .await;

    let mut worker = pipeline.workers().await;
    eventually("three events stored", || async {
        pipeline.total("order_events").await == 3
    })
    .await;

    let shard = shard_for(user, 2).unwrap() as usize;
    let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE order_id = 'ord_1'")
        .fetch_one(&pipeline.shards[shard].pool)
        .await
        .unwrap();
    assert_eq!(status, "refunded");
    worker.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn disputes_are_stored_in_the_dispute_tables() {
    let pipeline = Pipeline::new("disputes", None).await;
    for i in 0..20 {
        pipeline
            .produce(&ev(
                &format!("user-{i}"),
                &format!("evt_{i}"),
                &format!("dp_{i}"),
            ))
            .await;
    }

    let mut worker = pipeline.workers().await;
    eventually("20 disputes stored", || async {
        pipeline.total("disputes").await == 20
    })
    .await;

    assert_eq!(pipeline.total("dispute_events").await, 20);
    assert_eq!(pipeline.total("order_events").await, 0);
    worker.terminate().await;
    pipeline.drop_shards().await;
}
