//! `disputes` and the month-partitioned `dispute_events`.

use chrono::{TimeZone, Utc};
use hookline_worker::store::{
    DisputeEvent, Stored, ensure_dispute_partitions, store_dispute_events,
};

use crate::fixtures::{EventExt, dispute, payloads, texts};
use crate::support::TestDb;

/// 1999-03-10, a month no partition exists for.
const MARCH_1999: i64 = 921_024_000;
/// 2031-05-20.
const MAY_2031: i64 = 1_937_001_600;

/// One event in its own transaction.
async fn store_one(db: &TestDb, event: &DisputeEvent) -> Stored {
    let mut tx = db.pool.begin().await.unwrap();
    let events = std::slice::from_ref(event);
    let [stored] = store_dispute_events(&mut tx, events, &texts(&payloads(events)))
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
        let first = store_dispute_events(&mut tx, &[newer], &["{}"])
            .await
            .unwrap();
        let second = store_dispute_events(&mut tx, &[older], &["{}"])
            .await
            .unwrap();
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

    let outcomes = store_dispute_events(&mut tx, &[event.clone(), event], &["{}", "{}"])
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

#[tokio::test]
async fn same_second_dispute_events_end_in_the_later_lifecycle_state() {
    let db = TestDb::migrated().await;
    for (case, later_first) in [(0, false), (1, true)] {
        let id = format!("dp{case}");
        // The closing event's id sorts first: the rank, not the id, decides.
        let created = dispute(&id, "evt_b").at(1_000).typed("dispute.created");
        let closed = dispute(&id, "evt_a").at(1_000).typed("dispute.closed");
        let arrival = if later_first {
            [closed, created]
        } else {
            [created, closed]
        };
        for event in &arrival {
            store_one(&db, event).await;
        }
        let state: (String, String) =
            sqlx::query_as("SELECT status, last_event_id FROM disputes WHERE dispute_id = $1")
                .bind(&id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(
            state,
            ("closed".into(), "evt_a".into()),
            "later first: {later_first}"
        );
    }
    db.drop().await;
}

/// Creating a month's partition while that month's rows keep arriving in
/// DEFAULT: 50 runs, each with rows already waiting in DEFAULT (so that the
/// move takes a while) and three writers inserting through the repository
/// until the partition exists. Every insert succeeds, every row is in the
/// new partition, none is lost.
#[tokio::test]
async fn month_partition_creation_racing_inserts_refuses_and_loses_nothing() {
    let db = TestDb::migrated().await;
    // 2100-01-15: months far from the ones kept ready.
    const JANUARY_2100: i64 = 4_103_654_400;
    const WAITING: i64 = 2_000;
    const WRITERS: usize = 3;
    for run in 0..50_i64 {
        let at = JANUARY_2100 + run * 31 * 86_400;
        let month = Utc.timestamp_opt(at, 0).unwrap();
        let partition = format!("dispute_events_{}", month.format("%Y_%m"));
        sqlx::query(
            "INSERT INTO dispute_events
                 (dispute_id, provider_event_id, created_at, event_id, order_id, user_id,
                  event_type, received_at, payload)
             SELECT 'waiting', 'evt_' || n, to_timestamp($1), gen_random_uuid(), 'o1', 'u1',
                    'dispute.created', now(), '{}'
             FROM generate_series(1, $2) AS n",
        )
        .bind(at as f64)
        .bind(WAITING)
        .execute(&db.pool)
        .await
        .unwrap();

        let created = std::sync::Arc::new(tokio::sync::Notify::new());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let pool = db.pool.clone();
                let done = done.clone();
                let created = created.clone();
                tokio::spawn(async move {
                    let mut written = 0_i64;
                    // Writes until the partition exists, and once more after.
                    loop {
                        let last = done.load(std::sync::atomic::Ordering::SeqCst);
                        let event =
                            dispute(&format!("dp{writer}"), &format!("evt_{writer}_{written}"))
                                .at(at);
                        let mut tx = pool.begin().await.unwrap();
                        store_dispute_events(&mut tx, &[event], &["{}"])
                            .await
                            .map_err(|e| {
                                format!(
                                    "insert {written} of writer {writer} failed: {e}: {:?}",
                                    e.sqlstate()
                                )
                            })?;
                        tx.commit().await.unwrap();
                        written += 1;
                        if written == 1 && writer == 0 {
                            created.notify_one();
                        }
                        if last {
                            return Ok::<i64, String>(written);
                        }
                    }
                })
            })
            .collect();
        created.notified().await;
        let made = ensure_dispute_partitions(&db.pool, month, 1).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut written = 0;
        for writer in writers {
            written += writer
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("run {run}: {e}"));
        }
        assert_eq!(made.unwrap(), vec![partition.clone()], "run {run}");

        let (in_partition, in_default): (i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM {partition}),
                    (SELECT count(*) FROM dispute_events_default
                     WHERE created_at >= date_trunc('month', to_timestamp($1) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
        ))
        .bind(at as f64)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(
            (in_partition, in_default),
            (WAITING + written, 0),
            "run {run}"
        );
    }
    db.drop().await;
}
