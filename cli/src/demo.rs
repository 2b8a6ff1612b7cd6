//! `hookline demo`: the whole pipeline on this machine, shown working.
//!
//! Writes a WebhookPipeline manifest and a secrets folder for the local stack,
//! creates the topics, starts ingest and one worker per partition, sends a few
//! hundred signed webhooks (duplicates and invalid ones among them), and prints
//! where they went. Then it keeps the pipeline running until Ctrl-C, or stops
//! at once with `--exit`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineManifest;
use hookline_ingest::auth::{header, sign};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::local::{processes, topics};

/// Arguments of `hookline demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The broker.
    #[arg(
        long,
        env = "HOOKLINE_KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// Connection string of shard a.
    #[arg(long, env = "HOOKLINE_SHARD_A_URL")]
    shard_a: String,
    /// Connection string of shard b.
    #[arg(long, env = "HOOKLINE_SHARD_B_URL")]
    shard_b: String,
    /// Where the manifest, secrets and logs go.
    #[arg(long, env = "HOOKLINE_DEMO_DIR", default_value = ".stack/demo")]
    dir: PathBuf,
    /// Address of the ingest service.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Stop the pipeline after the demo instead of leaving it running.
    #[arg(long)]
    exit: bool,
}

const SIGNING_SECRET: &str = "provider-secrets";
const ORDERS: usize = 200;
const DISPUTES: usize = 60;
const DUPLICATES: usize = 25;
const INVALID: usize = 10;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let manifest_path = write_manifest(&args)?;
    let secrets = args.dir.join("secrets");
    let standard_secret = ensure_secrets(&args, &secrets)?;
    let manifest = PipelineManifest::from_yaml(&std::fs::read_to_string(&manifest_path)?)?;
    topics::reconcile(&manifest.spec).await?;

    let layout = processes::Layout {
        pipeline: &manifest_path,
        secrets: &secrets,
        logs: &args.dir.join("logs"),
        ingest_listen: &args.listen,
        first_worker_port: 9100,
    };
    let mut running = processes::start(&manifest.spec, &layout)?;
    if let Err(error) = processes::wait_ready(&mut running).await {
        processes::stop(running).await;
        return Err(error);
    }
    let workers = running.len() - 1;
    println!(
        "pipeline {} running: ingest on http://{} and {workers} workers (one per partition)",
        manifest.metadata.name, args.listen
    );

    let shards = [
        PgPool::connect(&args.shard_a).await?,
        PgPool::connect(&args.shard_b).await?,
    ];
    let before = counts(&shards).await?;
    let dlq_before = dlq_depth(&args.bootstrap, &manifest).await?;
    let answers = send_traffic(&args.listen, &standard_secret).await?;
    println!(
        "sent {} webhooks: {}",
        answers.values().sum::<usize>(),
        describe(&answers)
    );

    let expected_rows = (ORDERS + DISPUTES) as i64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let duplicates = "hookline_worker_processed_total{outcome=\"duplicate\"}";
    let duplicates_before = processes::metric_sum(&running, duplicates).await;
    let mut after = counts(&shards).await?;
    let mut folded = 0.0;
    while added(&before, &after, "order_events") + added(&before, &after, "dispute_events")
        < expected_rows
        || folded < DUPLICATES as f64
    {
        if tokio::time::Instant::now() > deadline {
            processes::stop(running).await;
            bail!(
                "the events did not all reach the shards within 60 s; logs in {}",
                args.dir.join("logs").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = counts(&shards).await?;
        folded = processes::metric_sum(&running, duplicates).await - duplicates_before;
    }
    let dlq_after = dlq_depth(&args.bootstrap, &manifest).await?;
    report(&before, &after, folded, dlq_after - dlq_before, dlq_after);

    if args.exit {
        processes::stop(running).await;
        println!("pipeline stopped");
        return Ok(());
    }
    println!("\nthe pipeline keeps running; Ctrl-C stops it.");
    println!(
        "  webhooks:  POST http://{}/webhooks/{{orders,disputes}} (signing secrets in {})",
        args.listen,
        secrets.join(SIGNING_SECRET).display()
    );
    println!(
        "  health:    http://{}/readyz   metrics: http://{}/metrics",
        args.listen, args.listen
    );
    println!(
        "  workers:   http://127.0.0.1:9100/metrics … http://127.0.0.1:{}/metrics",
        9100 + workers - 1
    );
    println!("  logs:      {}", args.dir.join("logs").display());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Some((name, log)) = processes::exited(&mut running) {
                    eprintln!("{name} exited; see {}", log.display());
                    break;
                }
            }
        }
    }
    processes::stop(running).await;
    println!("pipeline stopped");
    Ok(())
}

fn write_manifest(args: &Args) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(&args.dir)?;
    let path = args.dir.join("pipeline.yaml");
    let manifest = format!(
        r#"apiVersion: hookline.dev/v1alpha1
kind: WebhookPipeline
metadata: {{name: demo}}
spec:
  kafka: {{bootstrapServers: "{}"}}
  topics:
    - {{name: orders.webhooks, eventType: orders, partitions: 4}}
    - {{name: disputes.webhooks, eventType: disputes, partitions: 2}}
  shards:
    - {{name: a, databaseUrlSecretRef: {{name: pg-shard-a, key: url}}}}
    - {{name: b, databaseUrlSecretRef: {{name: pg-shard-b, key: url}}}}
  ingest: {{replicas: 1, signingSecretRef: {{name: {SIGNING_SECRET}}}}}
"#,
        args.bootstrap
    );
    std::fs::write(&path, manifest).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes the shard URLs, and signing secrets made once and kept; returns the
/// Standard Webhooks secret.
fn ensure_secrets(args: &Args, secrets: &Path) -> anyhow::Result<String> {
    for (name, url) in [("pg-shard-a", &args.shard_a), ("pg-shard-b", &args.shard_b)] {
        std::fs::create_dir_all(secrets.join(name))?;
        std::fs::write(secrets.join(name).join("url"), url)?;
    }
    let signing = secrets.join(SIGNING_SECRET);
    std::fs::create_dir_all(&signing)?;
    let standard = signing.join("standard-webhooks");
    if !standard.is_file() {
        let key = [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ]
        .concat();
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        std::fs::write(&standard, format!("{secret}\n"))?;
    }
    let stripe = signing.join("stripe");
    if !stripe.is_file() {
        std::fs::write(
            &stripe,
            format!("whsec_{}\n", uuid::Uuid::new_v4().simple()),
        )?;
    }
    let text = std::fs::read_to_string(&standard)?;
    text.lines()
        .find(|l| l.starts_with("whsec_"))
        .map(str::to_owned)
        .context("no whsec_ secret in the demo's standard-webhooks file")
}

/// Sends the demo's webhooks; answers by status.
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

    let client = reqwest::Client::new();
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

type Counts = [BTreeMap<&'static str, i64>; 2];
const TABLES: [&str; 4] = ["orders", "order_events", "disputes", "dispute_events"];

async fn counts(shards: &[PgPool; 2]) -> anyhow::Result<Counts> {
    let mut counts: Counts = Default::default();
    for (shard, pool) in shards.iter().enumerate() {
        for table in TABLES {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(pool)
                .await?;
            counts[shard].insert(table, n);
        }
    }
    Ok(counts)
}

fn added(before: &Counts, after: &Counts, table: &str) -> i64 {
    (0..2).map(|s| after[s][table] - before[s][table]).sum()
}

async fn dlq_depth(bootstrap: &str, manifest: &PipelineManifest) -> anyhow::Result<i64> {
    let mut total = 0;
    for topic in &manifest.spec.topics {
        total += topics::depth(bootstrap, &dlq_topic(&topic.name)).await?;
    }
    Ok(total)
}

fn report(before: &Counts, after: &Counts, folded: f64, dlq_added: i64, dlq_total: i64) {
    println!("\nrows per shard (added by this run / total):");
    println!("  {:<16} {:>16} {:>16}", "table", "shard a", "shard b");
    for table in TABLES {
        let cell = |s: usize| {
            format!(
                "{} / {}",
                after[s][table] - before[s][table],
                after[s][table]
            )
        };
        println!("  {table:<16} {:>16} {:>16}", cell(0), cell(1));
    }
    println!(
        "  {folded} duplicate deliveries recognised by the workers; {dlq_added} invalid webhooks quarantined to the DLQs ({dlq_total} in all)"
    );
}
