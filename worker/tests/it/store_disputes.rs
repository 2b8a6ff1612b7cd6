//! `disputes` and the month-partitioned `dispute_events`.

use chrono::{TimeZone, Utc};
use hookline_worker::store::{
    DisputeEvent, Stored, ensure_dispute_partitions, store_dispute_events,
};

use crate::fixtures::{EventExt, dispute};
use crate::support::TestDb;

/// 1999-03-10, a month no partition exists for.
const MARCH_1999: i64 = 921_024_000;
/// 2031-05-20.
const MAY_2031: i64 = 1_937_001_600;

/// One event in its own transaction.
async fn store_one(db: &TestDb, event: &DisputeEvent) -> Stored {
    let mut tx = db.pool.begin().await.unwrap();
    let [stored] = store_dispute_events(&mut tx, std::slice::from_ref(event))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    tx.commit().await.unwrap();
    stored
}

async fn partition_of(db: &TestDb, provider_event_id: &str) -> String {
    sqlx::query_scalar(
        "SELECT tableoid::regclass::text FROM dispute_events WHERE provider_event_id = $1",
    )
    .bind(provider_event_id)
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn retry_with_a_later_arrival_time_is_one_row() {
    let db = TestDb::migrated().await;

    let first = store_one(&db, &dispute("dp1", "evt_1").received(5_000)).await;
    let retry = store_one(&db, &dispute("dp1", "evt_1").received(9_000)).await;

    assert_eq!((first, retry), (Stored::Inserted, Stored::AlreadyStored));
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM dispute_events")
            .await,
        1
    );
    db.drop().await;
}

#[tokio::test]
async fn event_in_a_month_without_partition_lands_in_default() {
    let db = TestDb::migrated().await;

    let stored = store_one(&db, &dispute("dp1", "evt_old").at(MARCH_1999)).await;

    assert_eq!(stored, Stored::Inserted);
    assert_eq!(partition_of(&db, "evt_old").await, "dispute_events_default");
    db.drop().await;
}

#[tokio::test]
async fn event_of_this_month_lands_in_its_month_partition() {
    let db = TestDb::migrated().await;
    let now = Utc::now();

    store_one(&db, &dispute("dp1", "evt_now").at(now.timestamp())).await;

    let expected = format!("dispute_events_{}", now.format("%Y_%m"));
    assert_eq!(partition_of(&db, "evt_now").await, expected);
    db.drop().await;
}

#[tokio::test]
async fn new_month_partition_takes_over_rows_from_default() {
    let db = TestDb::migrated().await;
    store_one(&db, &dispute("dp1", "evt_1").at(MAY_2031)).await;
    assert_eq!(partition_of(&db, "evt_1").await, "dispute_events_default");

    let may = Utc.timestamp_opt(MAY_2031, 0).unwrap();
    let created = ensure_dispute_partitions(&db.pool, may, 1).await.unwrap();

    assert_eq!(created, vec!["dispute_events_2031_05".to_owned()]);
    assert_eq!(partition_of(&db, "evt_1").await, "dispute_events_2031_05");
    assert_eq!(
        store_one(&db, &dispute("dp1", "evt_1").at(MAY_2031)).await,
        Stored::AlreadyStored,
        "the moved row still deduplicates"
    );
    db.drop().await;
}

#[tokio::test]
async fn older_event_after_newer_keeps_the_newer_state() {
    let db = TestDb::migrated().await;

    let outcomes = {
        let mut tx = db.pool.begin().await.unwrap();
        let newer = dispute("dp1", "evt_2").at(2_000).status("won");
        let older = dispute("dp1", "evt_1").at(1_000).status("needs_response");
        let first = store_dispute_events(&mut tx, &[newer]).await.unwrap();
        let second = store_dispute_events(&mut tx, &[older]).await.unwrap();
        tx.commit().await.unwrap();
        [first, second].concat()
    };

    assert_eq!(outcomes, vec![Stored::Inserted, Stored::Inserted]);
    let (status, last): (String, String) =
        sqlx::query_as("SELECT status, last_event_id FROM disputes WHERE dispute_id = 'dp1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), last.as_str()), ("won", "evt_2"));
    db.drop().await;
}

#[tokio::test]
async fn batch_with_the_same_event_twice_stores_it_once() {
    let db = TestDb::migrated().await;
    let event = dispute("dp1", "evt_1");
    let mut tx = db.pool.begin().await.unwrap();

    let outcomes = store_dispute_events(&mut tx, &[event.clone(), event])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    assert_eq!(outcomes, vec![Stored::Inserted, Stored::AlreadyStored]);
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM dispute_events")
            .await,
        1
    );
    db.drop().await;
}
