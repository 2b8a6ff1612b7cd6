//! What a shard takes, read by the reconcile from the stack's PostgreSQL over
//! the shard's Secrets in the fake API: the workers' pools against the real
//! `max_connections`, TLS with the shard's CA, and shards that cannot be read.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hookline_kafka::admin::FakeAdmin;
use hookline_operator::fixtures::pipeline;
use hookline_operator::shard_limits::READ_TIMEOUT;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sqlx::{Connection, PgConnection};

use crate::reconcile::World;

const SECRETS: &str = "/api/v1/namespaces/default/secrets";
/// The certificate Debian's `ssl-cert` package makes, which PostgreSQL serves.
const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

/// The stack's administrative connection string, overridable for other setups.
fn admin_url() -> String {
    std::env::var("HOOKLINE_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://hookline:hookline@127.0.0.1:5432/postgres".to_owned())
}

/// The shard's `max_connections`, as an administrator reads it.
async fn max_connections() -> i64 {
    let mut connection = PgConnection::connect(&admin_url()).await.unwrap();
    let (max,): (String,) = sqlx::query_as("SHOW max_connections")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    max.parse().unwrap()
}

/// Puts Secret `name` with one key in the fake API's store.
fn put_secret(world: &World, name: &str, key: &str, value: &str) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            key.to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Default::default()
    };
    let mut object = serde_json::to_value(secret).unwrap();
    object["apiVersion"] = "v1".into();
    object["kind"] = "Secret".into();
    world.api.put(SECRETS, name, object);
}

/// A world whose one shard `s0` is reached at `url`.
fn world_with_shard(url: &str) -> World {
    let world = World::new(FakeAdmin::default());
    put_secret(&world, "pg-shard-0", "url", url);
    world
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn pools_beyond_the_shards_real_max_connections_warn_with_the_limit_read() {
    let max = max_connections().await;
    let world = world_with_shard(&admin_url());
    // 6 worker pods (4 + 2 partitions) × 64 connections is beyond any
    // stock max_connections; the stated 10 000 is not believed over it.
    assert!(
        6 * 64 > max,
        "max_connections {max} is too large for this test"
    );
    world.apply(
        pipeline().with_shards(1).with_shard_pools(64, Some(10_000)),
        1,
    );
    world.settle("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "ShardConnections");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PoolsExceedShard"),
        "{message}"
    );
    assert!(
        message.contains("shard s0: workers may open 384 connections, it takes"),
        "{message}"
    );
    assert!(
        message.contains(&format!("(max_connections {max} less ")),
        "{message}"
    );
    world.pods_ready();
    world.reconcile("payments").await;
    let (ready, _, _) = world.condition_with_message("payments", "Ready");
    assert_eq!(ready, "True", "a warning, not a failure");
}

#[tokio::test]
async fn pools_that_fit_the_shard_are_checked_against_what_it_takes() {
    let max = max_connections().await;
    let world = world_with_shard(&admin_url());
    // Stated far too low, but the shard itself is the truth.
    world.apply(pipeline().with_shards(1).with_shard_pools(1, Some(1)), 1);
    world.settle("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "ShardConnections");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "PoolsFit"),
        "{message}"
    );
    assert!(
        message.contains("shard s0: 6 connections, it takes"),
        "{message}"
    );
    assert!(
        message.contains(&format!("(max_connections {max} less ")),
        "{message}"
    );
}

#[tokio::test]
async fn a_shard_over_tls_is_read_with_the_ca_of_its_secret() {
    let world = world_with_shard(&format!(
        "{}?sslmode=verify-full",
        admin_url().replace("@127.0.0.1:", "@localhost:")
    ));
    put_secret(
        &world,
        "pg-ca",
        "ca.crt",
        &std::fs::read_to_string(SNAKEOIL).unwrap(),
    );
    world.apply(
        pipeline()
            .with_shards(1)
            .with_shard_pools(1, None)
            .with_shard_ca(),
        1,
    );
    world.settle("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "ShardConnections");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "PoolsFit"),
        "{message}"
    );

    // Without the CA, verify-full cannot trust the snakeoil certificate.
    let untrusted = world_with_shard(&format!(
        "{}?sslmode=verify-full",
        admin_url().replace("@127.0.0.1:", "@localhost:")
    ));
    untrusted.apply(pipeline().with_shards(1).with_shard_pools(1, None), 1);
    untrusted.settle("payments").await;
    let (_, reason, message) = untrusted.condition_with_message("payments", "ShardConnections");
    assert_eq!(reason, "Unchecked", "{message}");
    assert!(
        message.contains("connecting to the shard failed"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_shard_falls_back_to_the_stated_limit_and_says_why() {
    let port = closed_port();
    let world = world_with_shard(&format!(
        "postgres://hookline:hookline@127.0.0.1:{port}/postgres"
    ));
    world.apply(pipeline().with_shards(1).with_shard_pools(8, Some(40)), 1);

    let started = Instant::now();
    world.settle("payments").await;
    assert!(started.elapsed() < READ_TIMEOUT, "{:?}", started.elapsed());

    let (status, reason, message) = world.condition_with_message("payments", "ShardConnections");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PoolsExceedShard"),
        "{message}"
    );
    assert!(
        message.contains(
            "shard s0: workers may open 48 connections, maxConnections is 40 (stated; the shard could not be read: connecting to the shard failed"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_shard_that_never_answers_is_given_up_within_the_timeout_and_not_asked_again_at_once() {
    // Connections complete in the kernel's backlog, and no byte ever comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let world = world_with_shard(&format!(
        "postgres://hookline:hookline@127.0.0.1:{port}/postgres"
    ));
    world.apply(pipeline().with_shards(1), 1);

    let started = Instant::now();
    world.settle("payments").await;
    let first = started.elapsed();
    assert!(
        first >= READ_TIMEOUT && first < READ_TIMEOUT + Duration::from_secs(3),
        "{first:?}"
    );
    let (status, reason, message) = world.condition_with_message("payments", "ShardConnections");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "Unchecked"),
        "{message}"
    );
    assert!(
        message.contains("reading the shard did not finish within 3s")
            && message.contains("no maxConnections is stated"),
        "{message}"
    );

    // The reading is kept: the next reconciles wait for no shard.
    let started = Instant::now();
    world.reconcile("payments").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn a_missing_url_secret_is_named_in_the_condition() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline().with_shards(1), 1);
    world.settle("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "ShardConnections");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Unchecked"));
    assert!(
        message.contains(
            "reading the shard's Secrets failed: reading Secret pg-shard-0 failed: pg-shard-0 not found"
        ),
        "{message}"
    );
    assert!(
        !message.contains("Status {"),
        "the API's answer once, as text: {message}"
    );
}
