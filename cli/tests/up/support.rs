//! What the `hookline up` tests send and count: signed webhooks, manifests,
//! rows per shard, the workers' partitions.

use std::path::Path;

use hookline_ingest::auth::{header, sign};
use sqlx::PgPool;

use crate::pipeline::Up;

pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

pub fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `n` consecutive ports nothing listens on.
pub fn free_ports(n: u16) -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port.checked_add(n).is_none() {
            continue;
        }
        let rest: Vec<_> = (1..n)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", port + i)).ok())
            .collect();
        if rest.len() == usize::from(n - 1) {
            return port;
        }
    }
}

pub async fn rows(pools: &[PgPool]) -> i64 {
    let mut total = 0;
    for pool in pools {
        total += rows_in(pool, "order_events").await;
    }
    total
}

pub async fn rows_in(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

/// Partitions the workers answering at `health` (their readiness URLs) say
/// they hold.
pub async fn assigned(health: &[String]) -> i64 {
    let mut total = 0;
    for url in health {
        let Ok(answer) = reqwest::get(url.replace("/readyz", "/metrics")).await else {
            continue;
        };
        total += answer
            .text()
            .await
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.strip_prefix("hookline_worker_assigned_partitions ")?
                    .parse::<i64>()
                    .ok()
            })
            .sum::<i64>();
    }
    total
}

pub async fn healthy(url: &str) -> bool {
    reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Posts one signed webhook; its status and answer.
pub async fn post(
    client: &reqwest::Client,
    ingest: &str,
    event_type: &str,
    payload: &serde_json::Value,
    id: &str,
) -> (u16, String) {
    post_signed(client, ingest, (event_type, payload, id), SECRET).await
}

/// Posts one webhook signed with `secret`; its status and answer.
pub async fn post_signed(
    client: &reqwest::Client,
    ingest: &str,
    (event_type, payload, id): (&str, &serde_json::Value, &str),
    secret: &str,
) -> (u16, String) {
    let body = serde_json::to_vec(payload).unwrap();
    let now = chrono::Utc::now().timestamp();
    let answer = client
        .post(format!("http://{ingest}/webhooks/{event_type}"))
        .header(header::WEBHOOK_ID, id)
        .header(header::WEBHOOK_TIMESTAMP, now.to_string())
        .header(
            header::WEBHOOK_SIGNATURE,
            sign::standard_v1(secret, id, now, &body).unwrap(),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The order event `i`: user `user-<i mod 7>`, order `ord_<i>`.
pub fn order(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": format!("evt_{i}"), "type": "order.paid", "created": 1_700_000_000 + i,
        "data": {"user_id": format!("user-{}", i % 7), "order_id": format!("ord_{i}"),
                 "amount": 100, "currency": "eur", "status": "paid"}
    })
}

/// The dispute event `i`: user `user-<i mod 5>`.
pub fn dispute(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": format!("evt_d{i}"), "type": "dispute.created", "created": 1_700_000_000 + i,
        "data": {"user_id": format!("user-{}", i % 5), "dispute_id": format!("dp_{i}"),
                 "order_id": format!("ord_{i}"), "amount": 500, "currency": "usd",
                 "status": "needs_response"}
    })
}

pub async fn send(client: &reqwest::Client, ingest: &str, from: usize, to: usize) {
    for i in from..to {
        let (status, text) = post(client, ingest, "orders", &order(i), &format!("msg_{i}")).await;
        assert_eq!(status, 202, "{text}");
    }
}

/// The example manifest of examples/local/, its topics named for one test run
/// and pointed at the stack's broker.
pub fn example_manifest(run: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local/pipeline.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    for name in ["orders.webhooks", "disputes.webhooks", "127.0.0.1:9092"] {
        assert!(
            text.contains(name),
            "{} no longer names {name}",
            path.display()
        );
    }
    text.replace("orders.webhooks", &format!("up-{run}.orders"))
        .replace("disputes.webhooks", &format!("up-{run}.disputes"))
        .replace(
            "127.0.0.1:9092",
            &env("HOOKLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        )
}

/// examples/sources/pipeline.yaml with this run's topics and broker.
pub fn sources_manifest(run: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sources/pipeline.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (name, short) in [
        ("orders.webhooks", "orders"),
        ("issues.webhooks", "issues"),
        ("refunds.webhooks", "refunds"),
    ] {
        assert!(
            text.contains(name),
            "{} no longer names {name}",
            path.display()
        );
        text = text.replace(name, &format!("up-{run}.{short}"));
    }
    text.replace(
        "127.0.0.1:9092",
        &env("HOOKLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    )
}

/// A manifest of one orders topic with `partitions` partitions on two shards,
/// reading the provider's event id at `event_id_pointer`, with the example's
/// secret names.
pub fn manifest(topic: &str, partitions: u16, event_id_pointer: &str) -> String {
    format!(
        "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: up}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: {partitions}, pointers: {{eventId: \"{event_id_pointer}\"}}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-shard-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-shard-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider-secrets}}}}\n",
        env("HOOKLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
}

/// Writes `path` whole at once (a rename), as an editor saving the file
/// would, so that `up` never reads it half-written.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// Sends orders `from..to` and disputes `from/4..to/4`, every tenth of them
/// again (a provider's retry, with a new delivery id) and, when `invalid`, one
/// invalid webhook of each type; checks every answer is 202.
pub async fn traffic(
    client: &reqwest::Client,
    ingest: &str,
    from: usize,
    to: usize,
    invalid: bool,
) {
    let mut webhooks: Vec<(&str, serde_json::Value)> = Vec::new();
    for i in from..to {
        webhooks.push(("orders", order(i)));
    }
    for i in from / 4..to / 4 {
        webhooks.push(("disputes", dispute(i)));
    }
    let retries: Vec<_> = webhooks.iter().step_by(10).cloned().collect();
    webhooks.extend(retries);
    if invalid {
        let mut invalid_order = order(to);
        invalid_order["data"]
            .as_object_mut()
            .unwrap()
            .remove("user_id");
        let mut invalid_dispute = dispute(to);
        invalid_dispute["data"]["amount"] = serde_json::json!("five hundred");
        webhooks.push(("orders", invalid_order));
        webhooks.push(("disputes", invalid_dispute));
    }
    for (n, (event_type, payload)) in webhooks.iter().enumerate() {
        let id = format!("msg_{from}_{n}");
        let (status, text) = post(client, ingest, event_type, payload, &id).await;
        assert_eq!(status, 202, "{event_type} {payload}: {text}");
    }
}

/// Rows of `table` on each shard.
pub async fn rows_per_shard(up: &Up, table: &str) -> [i64; 2] {
    [
        rows_in(&up.pools[0], table).await,
        rows_in(&up.pools[1], table).await,
    ]
}

/// How many of `users` (user ids, one per event) live on each shard.
pub fn expected_per_shard(users: impl Iterator<Item = String>) -> [i64; 2] {
    let mut expected = [0; 2];
    for user in users {
        expected[hookline_contract::shard_for(&user, 2).unwrap() as usize] += 1;
    }
    expected
}
