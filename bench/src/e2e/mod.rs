//! `hookline bench e2e`: webhooks from HTTP to committed rows through the whole
//! pipeline (ingest, broker, one worker per partition, two shards), beside the
//! synchronous baseline it replaces, in one run; then both again under a fixed
//! rate while one shard is stopped for a while.
//!
//! Every system gets fresh shard databases, with a `stored_at` column the
//! benchmark adds (`clock_timestamp()` when the row is inserted), so that
//! receipt-to-row latency is read from the rows themselves: `stored_at` minus
//! `received_at`, both from this machine's clock. Shard b is reached through a
//! proxy the benchmark stops and starts: to the system it is a shard that went
//! away, connections cut and new ones refused. Webhooks are sent once each, as
//! from a provider that does not retry, so what a failed answer costs shows.

mod baseline;
mod pipeline;
mod target;

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::stats::{Latencies, ms, rate};
use super::{Stack, load};
use target::{Design, Target};

/// Arguments of `hookline bench e2e`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    stack: Stack,
    /// Webhooks of the steady-state run.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Concurrent clients of the steady-state run.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Partitions of the pipeline's topic, and so its workers.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Webhooks per second of the outage run.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Length of the outage run (whole seconds).
    #[arg(long, default_value = "60s", value_parser = hookline_runtime::parse_duration)]
    duration: Duration,
    /// How long shard b is stopped, in the middle of the outage run.
    #[arg(long, default_value = "30s", value_parser = hookline_runtime::parse_duration)]
    outage: Duration,
    /// How long a sender waits for an answer, as a provider would.
    #[arg(long, default_value = "10s", value_parser = hookline_runtime::parse_duration)]
    request_timeout: Duration,
    /// Ingest listens here; the workers on the ports after `--first-port`.
    #[arg(long, default_value_t = 9300)]
    first_port: u16,
}

/// How long the rows may take to arrive once the sending is over.
const SETTLE_DEADLINE: Duration = Duration::from_secs(300);
/// Warm-up webhooks: sent and stored before anything is measured, so that
/// connections are open and the consumer group has formed.
const WARM_UP: usize = 64;
/// Requests open at once in the outage run.
const IN_FLIGHT: usize = 8_192;

pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.outage >= args.duration {
        bail!("--outage must be shorter than --duration");
    }
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let client = reqwest::Client::builder()
        .timeout(args.request_timeout)
        .pool_max_idle_per_host(args.clients)
        .build()?;
    println!(
        "hookline bench e2e: signed order webhooks, {} partitions and workers, 2 shards, broker {}",
        args.partitions, args.stack.broker.bootstrap
    );

    println!(
        "\nsteady state: {} webhooks from {} clients, each waiting for its answer",
        args.events, args.clients
    );
    println!(
        "  {:<10} {:>9} {:>11} {:>22} {:>28}",
        "system", "2xx", "HTTP req/s", "HTTP to rows, rows/s", "receipt to row p50/p99/max ms"
    );
    for kind in [Design::Pipeline, Design::Baseline] {
        let target = Target::start(kind, &args, &format!("{run}s{}", kind.tag())).await?;
        let figures = steady(&client, &args, &target).await;
        let stopped = target.stop(&args).await;
        print_steady(kind, &figures?);
        stopped?;
    }

    println!(
        "\nshard b stopped for {} s in the middle of {} s at {} webhooks/s ({} webhooks, no provider retries)",
        args.outage.as_secs(),
        args.duration.as_secs(),
        args.rate,
        u64::from(args.rate) * args.duration.as_secs()
    );
    println!(
        "  {:<10} {:>9} {:>16} {:>9} {:>6} {:>30}",
        "system", "2xx", "5xx / no answer", "stored", "lost", "all stored, s after last answer"
    );
    for kind in [Design::Pipeline, Design::Baseline] {
        let target = Target::start(kind, &args, &format!("{run}o{}", kind.tag())).await?;
        let figures = outage(&client, &args, &target).await;
        let stopped = target.stop(&args).await;
        print_outage(kind, &figures?);
        stopped?;
    }
    Ok(())
}

/// The `i`-th webhook of `phase`.
fn body(phase: &str, i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("evt_{phase}_{i}"), "type": "order.paid", "created": 1_700_000_000 + i as i64,
        "data": {"user_id": format!("user-{}", i % 1_000), "order_id": format!("ord_{phase}_{i}"),
                 "amount": 1250, "currency": "eur", "status": "paid"}
    }))
    .unwrap_or_default()
}

fn succeeded(answers: &[load::Answer]) -> usize {
    answers
        .iter()
        .filter(|(s, _)| (200..300).contains(s))
        .count()
}

/// Sends the warm-up webhooks and waits for their rows.
async fn warm_up(client: &reqwest::Client, target: &Target) -> anyhow::Result<()> {
    let bodies = (0..WARM_UP).map(|i| body("w", i)).collect();
    let answers = load::closed_loop(client, &target.url, bodies, 8).await;
    if succeeded(&answers) != WARM_UP {
        bail!("{}: warm-up webhooks were refused", target.kind.label());
    }
    target.settle("w", WARM_UP).await?;
    Ok(())
}

struct Steady {
    succeeded: usize,
    http: Duration,
    rows: i64,
    to_rows: Duration,
    latencies: Option<Latencies>,
}

async fn steady(client: &reqwest::Client, args: &Args, target: &Target) -> anyhow::Result<Steady> {
    warm_up(client, target).await?;
    let bodies = (0..args.events).map(|i| body("s", i)).collect();
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let answers = load::closed_loop(client, &target.url, bodies, args.clients).await;
    let http = started.elapsed();
    let succeeded = succeeded(&answers);
    target.settle("s", succeeded).await?;
    let stored = target.stored("s").await?;
    Ok(Steady {
        succeeded,
        http,
        rows: stored.rows,
        to_rows: (stored.last - started_at).to_std().unwrap_or_default(),
        latencies: Latencies::of(stored.latencies),
    })
}

fn print_steady(kind: Design, s: &Steady) {
    let latencies = s.latencies.map_or("-".to_owned(), |l| {
        format!("{} / {} / {}", ms(l.p50), ms(l.p99), ms(l.max))
    });
    println!(
        "  {:<10} {:>9} {:>11.0} {:>22.0} {:>28}",
        kind.label(),
        s.succeeded,
        rate(s.succeeded, s.http),
        rate(s.rows.max(0) as usize, s.to_rows),
        latencies
    );
}

struct Outage {
    succeeded: usize,
    failed: usize,
    unanswered: usize,
    stored: i64,
    sent: usize,
    /// From the last answer to the last row.
    caught_up: Duration,
}

async fn outage(client: &reqwest::Client, args: &Args, target: &Target) -> anyhow::Result<Outage> {
    warm_up(client, target).await?;
    let total = args.rate as usize * args.duration.as_secs() as usize;
    let before = (args.duration - args.outage) / 2;
    let stopped = args.outage;
    let shard_b = async {
        tokio::time::sleep(before).await;
        target.proxy.stop();
        tokio::time::sleep(stopped).await;
        target.proxy.resume().await?;
        anyhow::Ok(())
    };
    let send = load::open_loop(client, &target.url, args.rate, total, IN_FLIGHT, |i| {
        body("o", i)
    });
    let (answers, back) = tokio::join!(send, shard_b);
    back?;
    let sent = Instant::now();
    let succeeded = succeeded(&answers);
    target.settle("o", succeeded).await?;
    let caught_up = sent.elapsed();
    Ok(Outage {
        succeeded,
        failed: answers.iter().filter(|(s, _)| *s >= 500).count(),
        unanswered: answers.iter().filter(|(s, _)| *s == 0).count(),
        stored: target.stored("o").await?.rows,
        sent: answers.len(),
        caught_up,
    })
}

fn print_outage(kind: Design, o: &Outage) {
    println!(
        "  {:<10} {:>9} {:>16} {:>9} {:>6} {:>30.1}",
        kind.label(),
        o.succeeded,
        format!("{} / {}", o.failed, o.unanswered),
        o.stored,
        o.sent as i64 - o.stored,
        o.caught_up.as_secs_f64()
    );
}
