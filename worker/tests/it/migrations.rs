//! The shard schema's migrations.

use hookline_worker::store::{MIGRATOR, migrate};

use crate::support::TestDb;

/// Everything a migration could change, as one comparable text: relations with
/// their kind, columns with their types, constraints, indexes and functions.
async fn schema_snapshot(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        r#"
        SELECT 'rel ' || c.relname || ' ' || c.relkind::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'
        UNION ALL
        SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'idx ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL
        SELECT 'fn ' || p.oid::regprocedure::text
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
        ORDER BY 1
        "#,
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn all_migrations_apply_to_an_empty_database_and_again_change_nothing() {
    let db = TestDb::empty().await;

    migrate(&db.pool, chrono::Utc::now()).await.unwrap();
    let first = schema_snapshot(&db).await;
    migrate(&db.pool, chrono::Utc::now()).await.unwrap();
    let second = schema_snapshot(&db).await;

    assert_eq!(first, second);
    let applied: i64 = db
        .scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .await;
    assert_eq!(applied as usize, MIGRATOR.iter().count());
    for table in ["orders", "order_events", "disputes", "dispute_events"] {
        assert!(
            first.contains(&format!("rel {table} {}", relkind(table))),
            "{table} missing from {first:#?}"
        );
    }
    db.drop().await;
}

fn relkind(table: &str) -> char {
    // 'p' is a partitioned table, 'r' an ordinary one.
    if table.ends_with("_events") { 'p' } else { 'r' }
}

#[tokio::test]
async fn keys_hold_the_partition_key_and_never_the_arrival_time() {
    let db = TestDb::migrated().await;

    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid IN ('order_events'::regclass, 'dispute_events'::regclass)
           AND contype = 'u' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();

    assert_eq!(
        keys,
        vec![
            "dispute_events_dispute_event_key UNIQUE (dispute_id, provider_event_id, created_at)",
            "order_events_order_event_key UNIQUE (order_id, provider_event_id)",
        ]
    );
    db.drop().await;
}

#[tokio::test]
async fn concurrent_migrations_of_one_shard_both_succeed() {
    let db = TestDb::empty().await;

    let (a, b) = tokio::join!(
        migrate(&db.pool, chrono::Utc::now()),
        migrate(&db.pool, chrono::Utc::now())
    );

    a.unwrap();
    b.unwrap();
    db.drop().await;
}

/// A shard that is down when the workers start holds up only its own
/// writes: the other shard's events are stored meanwhile, and the late shard
/// is migrated and written as soon as it answers.
#[tokio::test]
async fn a_shard_down_at_startup_does_not_stop_the_other_shard() {
    use hookline_contract::shard_for;
    use hookline_testkit::proxy::Proxy;

    use crate::pipeline::{Pipeline, ev, eventually};

    let proxy = Proxy::start("127.0.0.1:5432").await.unwrap();
    proxy.stop();
    let pipeline = Pipeline::new("orders", Some(proxy.port)).await;
    let users: Vec<String> = (0..40).map(|i| format!("user-{i}")).collect();
    for (i, user) in users.iter().enumerate() {
        pipeline
            .produce(&ev(user, &format!("evt_{i}"), &format!("ord_{i}")))
            .await;
    }
    let on_a = users.iter().filter(|u| shard_for(u, 2) == Some(0)).count() as i64;
    let mut workers = pipeline.workers().await;

    eventually("shard a's events stored while shard b is down", || async {
        pipeline.count(0, "order_events").await == on_a
    })
    .await;
    proxy.resume().await.unwrap();
    eventually("shard b migrated and written once it answers", || async {
        pipeline.total("order_events").await == users.len() as i64
    })
    .await;
    assert_eq!(
        workers.metric("hookline_worker_dead_lettered_total").await,
        0.0
    );
    workers.terminate().await;
    pipeline.drop_shards().await;
}
