//! `orders` and `order_events` through the repository layer.

use hookline_contract::Reason;
use hookline_worker::store::{ErrorClass, OrderEvent, Stored, store_order_events};

use crate::fixtures::{EventExt, order};
use crate::support::TestDb;

/// One event in its own transaction.
async fn store_one(db: &TestDb, event: &OrderEvent) -> Stored {
    let [stored] = store_batch(db, std::slice::from_ref(event))
        .await
        .try_into()
        .unwrap();
    stored
}

async fn store_batch(db: &TestDb, events: &[OrderEvent]) -> Vec<Stored> {
    let mut tx = db.pool.begin().await.unwrap();
    let stored = store_order_events(&mut tx, events).await.unwrap();
    tx.commit().await.unwrap();
    stored
}

async fn state(db: &TestDb, order_id: &str) -> (String, String) {
    sqlx::query_as("SELECT status, last_event_id FROM orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn same_event_twice_is_already_stored_with_one_row() {
    let db = TestDb::migrated().await;
    let event = order("o1", "evt_1");

    assert_eq!(store_one(&db, &event).await, Stored::Inserted);
    assert_eq!(store_one(&db, &event).await, Stored::AlreadyStored);

    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM order_events").await,
        1
    );
    assert_eq!(db.scalar::<i64>("SELECT count(*) FROM orders").await, 1);
    db.drop().await;
}

#[tokio::test]
async fn retry_with_a_later_arrival_time_is_one_row() {
    let db = TestDb::migrated().await;

    let first = store_one(&db, &order("o1", "evt_1").received(5_000)).await;
    let retry = store_one(&db, &order("o1", "evt_1").received(9_000)).await;

    assert_eq!((first, retry), (Stored::Inserted, Stored::AlreadyStored));
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM order_events").await,
        1
    );
    assert_eq!(
        db.scalar::<i64>("SELECT extract(epoch FROM received_at)::bigint FROM order_events")
            .await,
        5_000,
        "the first copy stays"
    );
    db.drop().await;
}

#[tokio::test]
async fn older_event_after_newer_keeps_the_newer_state() {
    let db = TestDb::migrated().await;

    store_one(&db, &order("o1", "evt_2").at(2_000).status("paid")).await;
    let late = store_one(&db, &order("o1", "evt_1").at(1_000).status("created")).await;

    assert_eq!(late, Stored::Inserted, "the older event is still recorded");
    assert_eq!(state(&db, "o1").await, ("paid".into(), "evt_2".into()));
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM order_events").await,
        2
    );
    db.drop().await;
}

#[tokio::test]
async fn newer_event_replaces_the_state() {
    let db = TestDb::migrated().await;

    store_one(&db, &order("o1", "evt_1").at(1_000).status("created")).await;
    store_one(&db, &order("o1", "evt_2").at(2_000).status("paid")).await;

    assert_eq!(state(&db, "o1").await, ("paid".into(), "evt_2".into()));
    db.drop().await;
}

#[tokio::test]
async fn equal_event_times_are_ordered_by_event_id() {
    let db = TestDb::migrated().await;

    store_one(&db, &order("o1", "evt_b").at(1_000).status("paid")).await;
    store_one(&db, &order("o1", "evt_a").at(1_000).status("created")).await;

    assert_eq!(state(&db, "o1").await, ("paid".into(), "evt_b".into()));
    db.drop().await;
}

#[tokio::test]
async fn ties_are_broken_by_event_id_in_byte_order_whatever_the_locale() {
    // "evt_B" < "evt_a" in byte order; English collation says the opposite.
    for batched in [false, true] {
        let db = TestDb::migrated_with_english_collation().await;
        let lower = order("o1", "evt_a").at(1_000).status("paid");
        let upper = order("o1", "evt_B").at(1_000).status("created");
        if batched {
            store_batch(&db, &[lower, upper]).await;
        } else {
            store_one(&db, &lower).await;
            store_one(&db, &upper).await;
        }
        assert_eq!(
            state(&db, "o1").await,
            ("paid".into(), "evt_a".into()),
            "batched: {batched}"
        );
        db.drop().await;
    }
}

#[tokio::test]
async fn batch_with_the_same_event_twice_stores_it_once() {
    let db = TestDb::migrated().await;
    let event = order("o1", "evt_1");

    // Without folding, the state upsert would touch `orders` twice in one
    // statement and fail with SQLSTATE 21000.
    let outcomes = store_batch(&db, &[event.clone(), event]).await;

    assert_eq!(outcomes, vec![Stored::Inserted, Stored::AlreadyStored]);
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM order_events").await,
        1
    );
    db.drop().await;
}

#[tokio::test]
async fn batch_with_several_events_of_one_order_keeps_the_newest_state() {
    let db = TestDb::migrated().await;

    let outcomes = store_batch(
        &db,
        &[
            order("o1", "evt_2").at(2_000).status("paid"),
            order("o1", "evt_3").at(3_000).status("refunded"),
            order("o1", "evt_1").at(1_000).status("created"),
        ],
    )
    .await;

    assert_eq!(outcomes, vec![Stored::Inserted; 3]);
    assert_eq!(state(&db, "o1").await, ("refunded".into(), "evt_3".into()));
    db.drop().await;
}

#[tokio::test]
async fn batch_reports_each_event_in_order() {
    let db = TestDb::migrated().await;
    store_one(&db, &order("o2", "evt_9")).await;

    let outcomes = store_batch(
        &db,
        &[
            order("o1", "evt_1"),
            order("o2", "evt_9"),
            order("o3", "evt_1"),
            order("o1", "evt_1"),
        ],
    )
    .await;

    use Stored::{AlreadyStored as Old, Inserted as New};
    assert_eq!(outcomes, vec![New, Old, New, Old]);
    assert_eq!(
        db.scalar::<i64>("SELECT count(*) FROM order_events").await,
        3
    );
    assert_eq!(db.scalar::<i64>("SELECT count(*) FROM orders").await, 3);
    db.drop().await;
}

#[tokio::test]
async fn empty_batch_writes_nothing() {
    let db = TestDb::migrated().await;
    assert!(store_batch(&db, &[]).await.is_empty());
    assert_eq!(db.scalar::<i64>("SELECT count(*) FROM orders").await, 0);
    db.drop().await;
}

#[tokio::test]
async fn refused_row_is_a_permanent_constraint_violation() {
    let db = TestDb::migrated().await;
    let mut tx = db.pool.begin().await.unwrap();

    let error = store_order_events(&mut tx, &[order("o1", "evt_1").currency("EURO")])
        .await
        .unwrap_err();

    assert_eq!(
        error.class(),
        ErrorClass::Permanent(Reason::ConstraintViolation)
    );
    assert_eq!(error.label(), "upsert_orders");
    drop(tx);
    db.drop().await;
}
