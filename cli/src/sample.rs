//! Sample traffic for `hookline up --sample-traffic`: a few hundred signed
//! webhooks, provider retries and invalid ones among them, sent to the running
//! pipeline, and a report of where they went: rows per shard, duplicates the
//! workers recognised, webhooks quarantined to the DLQs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineManifest;
use hookline_contract::secrets::SecretsDir;
use hookline_ingest::auth::{header, sign};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::local::processes::{self, Process};
use crate::local::topics;

const ORDERS: usize = 200;
const DISPUTES: usize = 60;
const DUPLICATES: usize = 25;
const INVALID: usize = 10;
/// How long the sample's rows may take to arrive.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long one webhook may wait for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the sample to ingest at `ingest` (signed with the manifest's first
/// Standard Webhooks secret) and reports once every valid event has its row
/// and every retry was recognised.
pub async fn send_and_report(
    manifest: &PipelineManifest,
    secrets: &Path,
    ingest: &str,
    running: &[&Process],
) -> anyhow::Result<()> {
    let secrets = SecretsDir::new(secrets);
    let signing = &manifest.spec.ingest.signing_secret_ref.name;
    let secret = secrets
        .read_key(signing, "standard-webhooks")?
        .lines()
        .find(|l| l.starts_with("whsec_"))
        .map(str::to_owned)
        .with_context(|| format!("no whsec_ secret in {signing}/standard-webhooks"))?;
    let mut shards = Vec::new();
    for shard in &manifest.spec.shards {
        let url = secrets.read(&shard.database_url_secret_ref)?;
        let pool = PgPool::connect(&url)
            .await
            .with_context(|| format!("connecting to shard {}", shard.name))?;
        shards.push((shard.name.clone(), pool));
    }
    let bootstrap = &manifest.spec.kafka.bootstrap_servers;
    let before = counts(&shards).await?;
    let dlq_before = dlq_depth(bootstrap, manifest).await?;
    let duplicates = "hookline_worker_processed_total{outcome=\"duplicate\"}";
    let duplicates_before = processes::metric_sum(running, duplicates).await;
    let answers = send_traffic(ingest, &secret).await?;
    println!(
        "sent {} webhooks: {}",
        answers.values().sum::<usize>(),
        describe(&answers)
    );
    if answers.keys().any(|status| *status != 202) {
        bail!(
            "ingest refused some of the sample ({}); see its log",
            describe(&answers)
        );
    }

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut after = counts(&shards).await?;
    let mut folded = 0.0;
    // Each table on its own: rows a stuck earlier run left behind must not
    // stand in for this run's.
    while added(&before, &after, "order_events") < ORDERS as i64
        || added(&before, &after, "dispute_events") < DISPUTES as i64
        || folded < DUPLICATES as f64
    {
        if tokio::time::Instant::now() > deadline {
            bail!("the sample's events did not all reach the shards within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = counts(&shards).await?;
        folded = processes::metric_sum(running, duplicates).await - duplicates_before;
    }
    let dlq_after = dlq_depth(bootstrap, manifest).await?;
    report(
        &shards,
        &before,
        &after,
        folded,
        dlq_after - dlq_before,
        dlq_after,
    );
    for (_, pool) in shards {
        pool.close().await;
    }
    Ok(())
}

/// Sends the sample's webhooks; answers by status.
async fn send_traffic(listen: &str, secret: &str) -> anyhow::Result<BTreeMap<u16, usize>> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..8];
    let now = chrono::Utc::now().timestamp();
    let mut bodies: Vec<(&str, Value)> = Vec::new();
    for i in 0..ORDERS {
        bodies.push(("orders", json!({
            "id": format!("evt_{run}_o{i}"), "type": "order.paid", "created": now - 60 + (i as i64 % 60),
            "data": {"user_id": format!("user-{}", i % 50), "order_id": format!("ord_{run}_{i}"),
                     "amount": 1000 + i, "currency": "eur", "status": "paid"}
        })));
    }
    for i in 0..DISPUTES {
        bodies.push(("disputes", json!({
            "id": format!("evt_{run}_d{i}"), "type": "dispute.created", "created": now,
            "data": {"user_id": format!("user-{}", i % 50), "dispute_id": format!("dp_{run}_{i}"),
                     "order_id": format!("ord_{run}_{i}"), "amount": 500, "currency": "usd",
                     "status": "needs_response"}
        })));
    }
    // Providers retry: the same events again.
    let duplicates: Vec<(&str, Value)> = bodies
        .iter()
        .step_by(bodies.len() / DUPLICATES)
        .take(DUPLICATES)
        .cloned()
        .collect();
    bodies.extend(duplicates);
    for i in 0..INVALID {
        bodies.push(("orders", json!({
            "id": format!("evt_{run}_bad{i}"), "type": "order.paid", "created": now,
            "data": {"order_id": format!("ord_bad_{i}"), "amount": 1, "currency": "EURO", "status": "paid"}
        })));
    }

    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut answers = BTreeMap::new();
    for (n, (event_type, payload)) in bodies.iter().enumerate() {
        let body = serde_json::to_vec(payload)?;
        let id = format!("msg_{run}_{n}");
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign::standard_v1(secret, &id, timestamp, &body).context("signing")?;
        let status = client
            .post(format!("http://{listen}/webhooks/{event_type}"))
            .header(header::WEBHOOK_ID, id)
            .header(header::WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(header::WEBHOOK_SIGNATURE, signature)
            .body(body)
            .send()
            .await?
            .status()
            .as_u16();
        *answers.entry(status).or_insert(0) += 1;
    }
    Ok(answers)
}

fn describe(answers: &BTreeMap<u16, usize>) -> String {
    answers
        .iter()
        .map(|(status, n)| format!("{n} × {status}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows by table, one map per shard.
type Counts = Vec<BTreeMap<&'static str, i64>>;
const TABLES: [&str; 4] = ["orders", "order_events", "disputes", "dispute_events"];

async fn counts(shards: &[(String, PgPool)]) -> anyhow::Result<Counts> {
    let mut counts = Vec::new();
    for (_, pool) in shards {
        let mut shard = BTreeMap::new();
        for table in TABLES {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(pool)
                .await?;
            shard.insert(table, n);
        }
        counts.push(shard);
    }
    Ok(counts)
}

fn added(before: &Counts, after: &Counts, table: &str) -> i64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a[table] - b[table])
        .sum()
}

async fn dlq_depth(bootstrap: &str, manifest: &PipelineManifest) -> anyhow::Result<i64> {
    let mut total = 0;
    for topic in &manifest.spec.topics {
        total += topics::depth(bootstrap, &dlq_topic(&topic.name)).await?;
    }
    Ok(total)
}

fn report(
    shards: &[(String, PgPool)],
    before: &Counts,
    after: &Counts,
    folded: f64,
    dlq_added: i64,
    dlq_total: i64,
) {
    println!("\nrows per shard (added by the sample / total):");
    let names: Vec<String> = shards.iter().map(|(n, _)| format!("shard {n}")).collect();
    println!("  {:<16} {}", "table", row(&names));
    for table in TABLES {
        let cells: Vec<String> = before
            .iter()
            .zip(after)
            .map(|(b, a)| format!("{} / {}", a[table] - b[table], a[table]))
            .collect();
        println!("  {table:<16} {}", row(&cells));
    }
    println!(
        "  {folded} duplicate deliveries recognised by the workers; {dlq_added} invalid webhooks quarantined to the DLQs ({dlq_total} in all)"
    );
}

fn row(cells: &[String]) -> String {
    cells
        .iter()
        .map(|c| format!("{c:>16}"))
        .collect::<Vec<_>>()
        .join(" ")
}
