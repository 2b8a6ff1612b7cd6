//! `hookline bench ingest`: how much of the broker's raw produce rate the
//! authenticated, validated HTTP path keeps.
//!
//! One run, one broker: the same signed payloads are (1) produced straight to
//! the broker by an rdkafka producer configured as ingest's, (2) posted to an
//! ingest service as fast as `--concurrency` clients can, (3) posted at a fixed
//! rate, with latency measured from each request's scheduled start so that a
//! stall is not hidden. The service runs in this process, on 127.0.0.1, so the
//! load generator and the service share the machine's cores.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hookline_contract::{event_id, partition_for};
use hookline_ingest::config::{Args as IngestArgs, Config};
use hookline_kafka::admin::{KafkaAdmin, RdKafkaAdmin};
use hookline_kafka::{ClientSettings, Envelope};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Broker;
use super::load::{self, SECRET};
use super::stats::{Latencies, ms, rate};

/// Produce futures awaited at most this far behind the newest send.
const RAW_IN_FLIGHT: usize = 10_000;
/// Requests of the fixed-rate run that may be outstanding at once.
const FIXED_RATE_IN_FLIGHT: usize = 1_024;

/// Arguments of `hookline bench ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: Broker,
    /// Records of the raw produce run and requests of the saturation run.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent HTTP clients of the saturation run.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per second of the fixed-rate run.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Length of the fixed-rate run (whole seconds).
    #[arg(long, default_value = "10s", value_parser = hookline_runtime::parse_duration)]
    duration: Duration,
    /// Size of each webhook body in bytes.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
    /// Partitions of the topics.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
}

/// One run's outcome over HTTP.
struct HttpRun {
    accepted: usize,
    other: usize,
    elapsed: Duration,
    latencies: Option<Latencies>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let topic = format!("bench-{run_id}.orders");
    let raw_topic = format!("bench-{run_id}.raw");
    create_topics(
        &args.broker.bootstrap,
        &[
            (&topic, args.partitions),
            (&format!("{topic}.DLQ"), 1),
            (&raw_topic, args.partitions),
        ],
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let (url, shutdown, served) = start_ingest(&args, &topic, dir.path()).await?;
    println!(
        "hookline bench ingest: {}-byte signed order webhooks, {} partitions, broker {}",
        args.body_bytes, args.partitions, args.broker.bootstrap
    );

    let bodies: Vec<Vec<u8>> = (0..args.requests)
        .map(|i| body(i, args.body_bytes))
        .collect();
    let raw = raw_produce(&args, &raw_topic, &bodies).await?;
    println!(
        "raw produce (rdkafka, idempotent, acks=all)  {:>7} records  {:>9.0} records/s",
        bodies.len(),
        rate(bodies.len(), raw)
    );

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let saturated = saturation(&client, &url, &bodies, args.concurrency).await;
    print_http(
        &format!("HTTP saturation ({} clients)", args.concurrency),
        &saturated,
    );

    let fixed = fixed_rate(&client, &url, &args).await;
    print_http(
        &format!(
            "HTTP fixed rate ({}/s for {} s)",
            args.rate,
            args.duration.as_secs()
        ),
        &fixed,
    );

    println!(
        "ratio: HTTP saturation / raw produce = {:.3}",
        rate(saturated.accepted, saturated.elapsed) / rate(bodies.len(), raw)
    );

    shutdown.cancel();
    served.await??;
    if saturated.other + fixed.other > 0 {
        bail!(
            "{} requests were not accepted",
            saturated.other + fixed.other
        );
    }
    Ok(())
}

fn print_http(label: &str, run: &HttpRun) {
    let (p50, p99, max) = run
        .latencies
        .map_or(("-".into(), "-".into(), "-".into()), |l| {
            (ms(l.p50), ms(l.p99), ms(l.max))
        });
    println!(
        "{label:<44} {:>7} accepted {:>9.0} req/s  p50 {p50} ms  p99 {p99} ms  max {max} ms  (not accepted: {})",
        run.accepted,
        rate(run.accepted, run.elapsed),
        run.other
    );
}

/// The `i`-th order webhook, padded to `size` bytes.
fn body(i: usize, size: usize) -> Vec<u8> {
    let mut payload = json!({
        "id": format!("evt_bench_{i}"),
        "type": "order.paid",
        "created": 1_700_000_000 + i as i64,
        "data": {
            "user_id": format!("user-{}", i % 1_000),
            "order_id": format!("ord_{i}"),
            "amount": 1250, "currency": "eur", "status": "paid",
            "metadata": {"note": ""}
        }
    });
    let bare = serde_json::to_vec(&payload).map_or(0, |b| b.len());
    payload["data"]["metadata"]["note"] = json!("x".repeat(size.saturating_sub(bare)));
    serde_json::to_vec(&payload).unwrap_or_default()
}

async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) -> anyhow::Result<()> {
    let admin = RdKafkaAdmin::new(&ClientSettings::new(bootstrap), "hookline-bench")?;
    for (topic, partitions) in topics {
        tokio::time::timeout(
            Duration::from_secs(60),
            admin.create(topic, *partitions, &Default::default()),
        )
        .await
        .with_context(|| {
            format!("the broker at {bootstrap} did not answer; run `scripts/stack up`")
        })?
        .with_context(|| format!("creating {topic}"))?;
    }
    Ok(())
}

async fn start_ingest(
    args: &Args,
    topic: &str,
    dir: &std::path::Path,
) -> anyhow::Result<(
    String,
    CancellationToken,
    tokio::task::JoinHandle<hookline_ingest::Result<()>>,
)> {
    let manifest = format!(
        "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: bench}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: {}}}]\n  shards: [{{name: a, databaseUrlSecretRef: {{name: pg, key: url}}}}]\n  ingest: {{signingSecretRef: {{name: provider}}}}\n",
        args.broker.bootstrap, args.partitions
    );
    std::fs::write(dir.join("pipeline.yaml"), manifest)?;
    std::fs::create_dir_all(dir.join("secrets/provider"))?;
    std::fs::write(dir.join("secrets/provider/standard-webhooks"), SECRET)?;
    let ingest_args = IngestArgs {
        pipeline: dir.join("pipeline.yaml"),
        secrets_dir: dir.join("secrets"),
        listen: "127.0.0.1:0".parse()?,
        metrics_listen: "127.0.0.1:0".parse()?,
        max_message_bytes: 1_048_588,
        max_body_bytes: None,
        body_timeout: Duration::from_secs(5),
        max_reading_bytes: 64 * 1024 * 1024,
        timestamp_tolerance: Duration::from_secs(300),
        ack_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        producer_queue: 100_000,
        producer_queue_kbytes: 256 * 1024,
        max_concurrent_requests: 1_024,
        retry_after: Duration::from_secs(5),
        secrets_reload_interval: Duration::from_secs(5),
        log_format: None,
    };
    let app = hookline_ingest::App::new(Config::load(&ingest_args)?)?;
    let listener = hookline_ingest::bind(ingest_args.listen).await?;
    let url = format!("http://{}/webhooks/orders", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let served = tokio::spawn(hookline_ingest::serve(app, listener, shutdown.clone()));
    let ready = format!("{}/readyz", url.trim_end_matches("/webhooks/orders"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(&ready)
        .await
        .map_or(true, |r| r.status() != 200)
    {
        if Instant::now() > deadline {
            bail!("the ingest service did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((url, shutdown, served))
}

/// Produces every body straight to the broker, as ingest would; returns the
/// time from the first send to the last ack.
async fn raw_produce(args: &Args, topic: &str, bodies: &[Vec<u8>]) -> anyhow::Result<Duration> {
    // Configured as ingest's producer, but with many sends in flight at once.
    let producer: FutureProducer = ClientSettings::new(args.broker.bootstrap.as_str())
        .producer("hookline-bench")
        .set("linger.ms", "2")
        .create()?;
    let count = args.partitions.unsigned_abs();
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(RAW_IN_FLIGHT);
    for (i, body) in bodies.iter().enumerate() {
        let user = format!("user-{}", i % 1_000);
        let headers = Envelope {
            event_id: event_id("bench", &format!("evt_bench_{i}")),
            event_type: "order.paid".to_owned(),
            source: "bench".to_owned(),
            received_at: chrono::Utc::now(),
            partition_count: count,
            schema: "bench".to_owned(),
            message_id: None,
        }
        .to_headers();
        let mut record = FutureRecord::to(topic)
            .key(&user)
            .payload(body)
            .headers(headers);
        if let Some(p) = partition_for(user.as_bytes(), count) {
            record = record.partition(p as i32);
        }
        let delivery = producer
            .send_result(record)
            .map_err(|(e, _)| anyhow::anyhow!("enqueueing failed: {e}"))?;
        in_flight.push_back(delivery);
        if in_flight.len() >= RAW_IN_FLIGHT
            && let Some(oldest) = in_flight.pop_front()
        {
            acked(oldest.await)?;
        }
    }
    for delivery in in_flight {
        acked(delivery.await)?;
    }
    Ok(started.elapsed())
}

fn acked<Canceled>(
    result: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, Canceled>,
) -> anyhow::Result<()> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => bail!("the broker refused a record: {e}"),
        Err(_) => bail!("the producer shut down"),
    }
}

async fn saturation(
    client: &reqwest::Client,
    url: &str,
    bodies: &[Vec<u8>],
    clients: usize,
) -> HttpRun {
    let started = Instant::now();
    let results = load::closed_loop(client, url, bodies.to_vec(), clients).await;
    summarise(results, started.elapsed())
}

async fn fixed_rate(client: &reqwest::Client, url: &str, args: &Args) -> HttpRun {
    let total = args.rate as usize * args.duration.as_secs() as usize;
    let started = Instant::now();
    let results = load::open_loop(client, url, args.rate, total, FIXED_RATE_IN_FLIGHT, |n| {
        body(args.requests + n, args.body_bytes)
    })
    .await;
    summarise(results, started.elapsed())
}

fn summarise(results: Vec<(u16, Duration)>, elapsed: Duration) -> HttpRun {
    let accepted: Vec<Duration> = results
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, d)| *d)
        .collect();
    HttpRun {
        accepted: accepted.len(),
        other: results.len() - accepted.len(),
        elapsed,
        latencies: Latencies::of(accepted),
    }
}
