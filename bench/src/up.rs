//! `hookline-bench up`: receipt to row through `hookline up` itself, as a user
//! runs it: the example's topics (orders with 4 partitions, disputes with 2)
//! on two fresh shard databases, order webhooks at a fixed rate as a
//! provider sends them, and the worker of the orders' partition 0 SIGKILLed
//! on the way. Latency is read from the rows, as in `e2e`: `stored_at` (the
//! insert's `clock_timestamp()`) minus `received_at` (ingest's receipt).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use hookline_runtime::parse_duration;
use sqlx::PgPool;
use tokio::process::{Child, Command};

use super::databases::{self, PhaseRows};
use super::load::{self, SECRET, body, succeeded};
use super::stats::{Latencies, ms};
use super::{Stack, e2e};

/// Arguments of `hookline-bench up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    stack: Stack,
    /// Webhooks per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// How long to send (whole seconds).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// When to SIGKILL the worker of the orders' partition 0, counted from
    /// the first webhook; `0s` kills none.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    kill_after: Duration,
    /// Ingest listens here, the six workers on the ports after it.
    #[arg(long, default_value_t = 9400)]
    first_port: u16,
    /// The workers' fetch wait (`hookline up --fetch-wait`).
    #[arg(long, default_value = hookline::local::processes::FETCH_WAIT)]
    fetch_wait: String,
}

/// Workers of the example manifest: 4 orders partitions, 2 disputes.
const WORKERS: u16 = 6;
/// How long `up` may take to be ready, and the rows to arrive.
const DEADLINE: Duration = Duration::from_secs(120);
/// Requests open at once.
const IN_FLIGHT: usize = 1_024;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let urls = databases::create(&args.stack.admin_url, &format!("{run}u")).await?;
    let measured = measure(&args, &run, &urls).await;
    databases::drop(&args.stack.admin_url, &urls).await?;
    measured
}

async fn measure(args: &Args, run: &str, urls: &[String; 2]) -> anyhow::Result<()> {
    let mut pools = Vec::new();
    for url in urls {
        let pool = PgPool::connect(url).await?;
        databases::add_stored_at(&pool).await?;
        pools.push(pool);
    }
    let dir = tempfile::tempdir()?;
    let topic = format!("bench-{run}.orders");
    write_pipeline(dir.path(), &args.stack.broker.bootstrap, &topic, urls)?;
    let ingest = format!("127.0.0.1:{}", args.first_port);
    println!(
        "hookline bench up: order webhooks at {}/s for {} s through `hookline up` (orders 4 partitions, disputes 2, 2 shards, fetch wait {}), broker {}",
        args.rate,
        args.duration.as_secs(),
        args.fetch_wait,
        args.stack.broker.bootstrap
    );
    let mut up = start_up(dir.path(), &ingest, args.first_port + 1, &args.fetch_wait)?;
    let measured = async {
        ready(&ingest, args.first_port + 1).await?;
        send_and_read(args, &ingest, &pools, &dir.path().join("logs"), &topic).await
    }
    .await;
    stop_up(&mut up).await?;
    let (answers, kill) = measured?;
    report(&databases::phase_rows(&pools, "u").await?, &answers, kill);
    Ok(())
}

/// The example manifest with this run's topics and shards, and its secrets.
fn write_pipeline(
    dir: &Path,
    bootstrap: &str,
    topic: &str,
    urls: &[String; 2],
) -> anyhow::Result<()> {
    let disputes = topic.replace(".orders", ".disputes");
    let manifest = format!(
        "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: bench}}\nspec:\n  kafka: {{bootstrapServers: \"{bootstrap}\"}}\n  topics:\n    - {{name: {topic}, eventType: orders, partitions: 4}}\n    - {{name: {disputes}, eventType: disputes, partitions: 2}}\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-shard-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-shard-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider-secrets}}}}\n"
    );
    std::fs::write(dir.join("pipeline.yaml"), manifest)?;
    for (path, text) in [
        ("pg-shard-a/url", urls[0].as_str()),
        ("pg-shard-b/url", urls[1].as_str()),
        ("provider-secrets/standard-webhooks", SECRET),
    ] {
        let file = dir.join("secrets").join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, text)?;
    }
    Ok(())
}

/// Starts `hookline up` (built beside this binary) on the pipeline in `dir`.
fn start_up(
    dir: &Path,
    ingest: &str,
    first_worker: u16,
    fetch_wait: &str,
) -> anyhow::Result<Child> {
    let hookline = std::env::current_exe()?.with_file_name("hookline");
    let log = std::fs::File::create(dir.join("up.log"))?;
    Command::new(&hookline)
        .arg("up")
        .arg("-f")
        .arg(dir.join("pipeline.yaml"))
        .arg("--secrets-dir")
        .arg(dir.join("secrets"))
        .args(["--ingest-addr", ingest, "--first-worker-port"])
        .arg(first_worker.to_string())
        // After the workers' ports: ingest serves no metrics on its own.
        .arg("--ingest-metrics-addr")
        .arg(format!("127.0.0.1:{}", first_worker + WORKERS))
        .arg("--logs")
        .arg(dir.join("logs"))
        .args(["--fetch-wait", fetch_wait])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (cargo build --release --bins)",
                hookline.display()
            )
        })
}

/// Waits until ingest and every worker answer ready.
async fn ready(ingest: &str, first_worker: u16) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut urls = vec![format!("http://{ingest}/readyz")];
    urls.extend((0..WORKERS).map(|w| format!("http://127.0.0.1:{}/readyz", first_worker + w)));
    let started = Instant::now();
    for url in &urls {
        loop {
            let answer = client.get(url).timeout(Duration::from_secs(1)).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                break;
            }
            if started.elapsed() > DEADLINE {
                bail!("{url} not ready within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Ctrl-C to `up`, which stops its processes.
async fn stop_up(up: &mut Child) -> anyhow::Result<()> {
    if let Some(pid) = up.id() {
        std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()?;
    }
    tokio::time::timeout(DEADLINE, up.wait())
        .await
        .context("hookline up did not stop")??;
    Ok(())
}

/// Warms up, sends the measured webhooks (phase `u`) with the kill on the
/// way, and waits for their rows: the answers, and when the worker was
/// killed.
async fn send_and_read(
    args: &Args,
    ingest: &str,
    pools: &[PgPool],
    logs: &Path,
    topic: &str,
) -> anyhow::Result<(Vec<load::Answer>, Option<DateTime<Utc>>)> {
    let client = reqwest::Client::new();
    let url = format!("http://{ingest}/webhooks/orders");
    let warm: Vec<Vec<u8>> = (0..e2e::WARM_UP).map(|i| body("w", i)).collect();
    let accepted = succeeded(&load::closed_loop(&client, &url, warm, 8).await);
    settle(pools, "w", accepted).await?;

    let total = args.rate as usize * args.duration.as_secs() as usize;
    let send = load::open_loop(&client, &url, args.rate, total, IN_FLIGHT, |i| body("u", i));
    let kill = async {
        if args.kill_after.is_zero() {
            return Ok(None);
        }
        tokio::time::sleep(args.kill_after).await;
        let pid_file = logs.join(format!("worker-{topic}-0.pid"));
        let pid = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("reading {}", pid_file.display()))?;
        std::process::Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()?;
        anyhow::Ok(Some(Utc::now()))
    };
    let (answers, killed) = tokio::join!(send, kill);
    settle(pools, "u", succeeded(&answers)).await?;
    Ok((answers, killed?))
}

/// Waits until `rows` rows of `phase` are stored.
async fn settle(pools: &[PgPool], phase: &str, rows: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let stored = databases::phase_rows(pools, phase).await?.rows;
        if stored >= rows as i64 {
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            bail!("{stored} of {rows} rows of phase {phase} after {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn report(rows: &PhaseRows, answers: &[load::Answer], kill: Option<DateTime<Utc>>) {
    let show = |latencies: Vec<Duration>| {
        Latencies::of(latencies).map_or("-".to_owned(), |l| {
            format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.max))
        })
    };
    // Counted by the sender from each request's scheduled start, so it also
    // holds the sender's own queueing; a worker may already be writing the
    // record while its ack travels back.
    let accepted: Vec<Duration> = load::accepted_latencies(answers).collect();
    println!(
        "  all webhooks: {} accepted, {} stored; receipt to row p50 / p99 / max: {} ms",
        accepted.len(),
        rows.rows,
        show(rows.latencies.clone())
    );
    println!(
        "  their HTTP answers (the broker's ack included), from each request's scheduled start: p50 / p99 / max {} ms",
        show(accepted)
    );
    let Some(kill) = kill else {
        return;
    };
    let after: Vec<Duration> = rows
        .latencies
        .iter()
        .zip(&rows.received)
        .filter(|(_, received)| **received >= kill)
        .map(|(latency, _)| *latency)
        .collect();
    let first_second: Vec<Duration> = rows
        .latencies
        .iter()
        .zip(&rows.received)
        .filter(|(_, received)| {
            **received >= kill && **received - kill < chrono::TimeDelta::seconds(1)
        })
        .map(|(latency, _)| *latency)
        .collect();
    println!(
        "  received after the SIGKILL of worker 0 ({} webhooks): p50 / p99 / max {} ms",
        after.len(),
        show(after)
    );
    println!(
        "  received in the second after it ({} webhooks): p50 / p99 / max {} ms",
        first_second.len(),
        show(first_second)
    );
}
