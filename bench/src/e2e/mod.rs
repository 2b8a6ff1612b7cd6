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

pub use baseline::{ServeArgs, serve as serve_baseline};

use std::time::{Duration, Instant};

use anyhow::bail;

use super::Stack;
use super::cpu::Usage;
use super::load::{self, body, succeeded};
use super::stats::{Latencies, ms, rate};
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
    /// Ingest (or the baseline) listens here; the workers on the ports after
    /// `--first-port`.
    #[arg(long, default_value_t = 9300)]
    first_port: u16,
    /// The workers' fetch wait, as `hookline up` passes it.
    #[arg(long, default_value = hookline::local::processes::FETCH_WAIT, value_parser = hookline_runtime::parse_duration)]
    fetch_wait: Duration,
}

/// How long the rows may take to arrive once the sending is over.
const SETTLE_DEADLINE: Duration = Duration::from_secs(300);
/// Warm-up webhooks: sent and stored before anything is measured, so that
/// connections are open and the consumer group has formed.
pub const WARM_UP: usize = 64;
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
        "hookline bench e2e: signed order webhooks, {} partitions and workers (fetch wait {:?}), 2 shards, broker {}",
        args.partitions, args.fetch_wait, args.stack.broker.bootstrap
    );

    println!(
        "\nsteady state: {} webhooks from {} clients, each waiting for its answer",
        args.events, args.clients
    );
    println!(
        "  {:<10} {:>9} {:>11} {:>22} {:>28}",
        "system", "2xx", "HTTP req/s", "HTTP to rows, rows/s", "receipt to row p50/p99/max ms"
    );
    let mut cpu = Vec::new();
    for kind in [Design::Pipeline, Design::Baseline] {
        let target = Target::start(kind, &args, &format!("{run}s{}", kind.tag())).await?;
        let figures = steady(&client, &args, &target).await;
        let stopped = target.stop(&args).await;
        let figures = figures?;
        print_steady(kind, &figures);
        cpu.push((kind, figures.cpu.per_thousand(figures.succeeded)));
        stopped?;
    }
    print_cpu(&cpu);

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
    /// From the first request to the last row.
    cpu: Usage,
}

async fn steady(client: &reqwest::Client, args: &Args, target: &Target) -> anyhow::Result<Steady> {
    warm_up(client, target).await?;
    let bodies = (0..args.events).map(|i| body("s", i)).collect();
    let pids = target.pids();
    let bootstrap = &args.stack.broker.bootstrap;
    let before = Usage::now(&pids, bootstrap);
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let answers = load::closed_loop(client, &target.url, bodies, args.clients).await;
    let http = started.elapsed();
    let succeeded = succeeded(&answers);
    target.settle("s", succeeded).await?;
    let cpu = Usage::now(&pids, bootstrap).since(&before);
    let stored = target.stored("s").await?;
    Ok(Steady {
        succeeded,
        http,
        rows: stored.rows,
        to_rows: (stored.last - started_at).to_std().unwrap_or_default(),
        latencies: Latencies::of(stored.latencies),
        cpu,
    })
}

/// CPU seconds per 1,000 webhooks of the steady run, by design.
fn print_cpu(cpu: &[(Design, Usage)]) {
    println!(
        "
CPU seconds per 1,000 webhooks of the steady run (/proc utime+stime; the load generator not counted)"
    );
    println!(
        "  {:<10} {:>30} {:>12} {:>8}",
        "system", "hookline (HTTP side + workers)", "PostgreSQL", "broker"
    );
    for (kind, usage) in cpu {
        let hookline = format!(
            "{:.3} ({:.3} + {:.3})",
            usage.hookline(),
            usage.front,
            usage.workers
        );
        println!(
            "  {:<10} {:>30} {:>12.3} {:>8.3}",
            kind.label(),
            hookline,
            usage.postgres,
            usage.broker
        );
    }
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
    let sent = chrono::Utc::now();
    let succeeded = succeeded(&answers);
    target.settle("o", succeeded).await?;
    let stored = target.stored("o").await?;
    Ok(Outage {
        succeeded,
        failed: answers.iter().filter(|(s, _)| *s >= 500).count(),
        unanswered: answers.iter().filter(|(s, _)| *s == 0).count(),
        stored: stored.rows,
        sent: answers.len(),
        // The last row's own time: the workers' commits trail their rows.
        caught_up: (stored.last - sent).to_std().unwrap_or_default(),
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
