//! `hookline bench ingest`: how much of the broker's raw produce rate the
//! authenticated, validated HTTP path keeps, and what each webhook costs the
//! ingest process in CPU.
//!
//! One run, one broker: the same signed payloads are (1) produced straight to
//! the broker by ingest's producer, configured as ingest's, with the same
//! headers, (2) posted to the `hookline-ingest` binary as fast as
//! `--concurrency` clients can, (3) posted at a fixed rate, with latency
//! measured from each request's scheduled start so that a stall is not
//! hidden. Ingest runs as a process of its own on 127.0.0.1, so its CPU time
//! is read from `/proc` apart from the load generator's, thread by thread.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hookline_contract::{event_id, partition_for};
use hookline_ingest::auth::{header, sign};
use hookline_ingest::produce::ProducerSettings;
use hookline_kafka::admin::{KafkaAdmin, RdKafkaAdmin};
use hookline_kafka::produce::{Producer, Record};
use hookline_kafka::{ClientSettings, Envelope};
use serde_json::json;
use tokio::process::{Child, Command};

use super::Broker;
use super::cpu;
use super::load::{self, SECRET};
use super::stats::{Latencies, ms, rate};

/// Records the first raw produce run keeps in flight at most.
const RAW_IN_FLIGHT: usize = 10_000;
/// Requests of the fixed-rate run that may be outstanding at once.
const FIXED_RATE_IN_FLIGHT: usize = 1_024;
/// How long ingest's idle CPU is read for, once it is ready.
const IDLE_WINDOW: Duration = Duration::from_secs(10);
/// The longest saturation run under wrk: its requests are signed once, and
/// ingest refuses signatures older than five minutes.
const MAX_SATURATION_SECS: u64 = 240;
/// How long ingest may take to become ready, and to stop.
const DEADLINE: Duration = Duration::from_secs(60);

/// Arguments of `hookline bench ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    broker: Broker,
    /// Records of the raw produce run and requests of the saturation run.
    #[arg(long, default_value_t = 40_000)]
    requests: usize,
    /// Concurrent HTTP clients of the saturation run.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// What sends the saturation run: `wrk` (Debian's package; cheap on the
    /// CPU, so that ingest and the broker get the cores), or the benchmark's
    /// own reqwest clients, which post `--requests` once each.
    #[arg(long, value_enum, default_value_t = Generator::Wrk)]
    generator: Generator,
    /// Length of the saturation run under wrk.
    #[arg(long, default_value = "15s", value_parser = hookline_runtime::parse_duration)]
    saturation: Duration,
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

/// What sends the saturation run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Generator {
    Wrk,
    Reqwest,
}

/// One run's outcome over HTTP.
struct HttpRun {
    accepted: usize,
    other: usize,
    elapsed: Duration,
    latencies: Option<Latencies>,
    cpu: Usage,
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
    let service = Service::start(&args, &topic, dir.path()).await?;
    println!(
        "hookline bench ingest: {}-byte signed order webhooks, {} partitions, broker {}",
        args.body_bytes, args.partitions, args.broker.bootstrap
    );

    let idle = Usage::over(service.pid, &args.broker.bootstrap, async {
        tokio::time::sleep(IDLE_WINDOW).await;
    })
    .await;
    println!(
        "ingest idle for {} s: {:.2}% of a core (broker {:.2}%)",
        IDLE_WINDOW.as_secs(),
        idle.1.process / IDLE_WINDOW.as_secs_f64() * 100.0,
        idle.1.broker / IDLE_WINDOW.as_secs_f64() * 100.0,
    );

    let bodies: Vec<Vec<u8>> = (0..args.requests)
        .map(|i| body(i, args.body_bytes))
        .collect();
    // The broker's best (as many records in flight as its queue takes), and
    // the same concurrency as the HTTP clients': what is left between the
    // second and the HTTP rate is ingest's own.
    let mut raw = Vec::new();
    for in_flight in [RAW_IN_FLIGHT, args.concurrency] {
        let (elapsed, used) = Usage::over(std::process::id(), &args.broker.bootstrap, async {
            raw_produce(&args, &raw_topic, &bodies, in_flight).await
        })
        .await;
        let records_per_second = rate(bodies.len(), elapsed?);
        println!(
            "raw produce (ingest's producer, same headers, {in_flight:>5} in flight) {:>7} records  {records_per_second:>9.0} records/s  CPU/record: producer {:.1} µs, broker {:.1} µs",
            bodies.len(),
            used.process / bodies.len() as f64 * 1e6,
            used.broker / bodies.len() as f64 * 1e6,
        );
        raw.push((in_flight, records_per_second));
    }

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let saturated = match args.generator {
        Generator::Reqwest => {
            saturation(
                &client,
                &service,
                &args.broker.bootstrap,
                &bodies,
                args.concurrency,
            )
            .await
        }
        Generator::Wrk => saturation_wrk(&args, &service, dir.path()).await?,
    };
    print_http(
        &format!(
            "HTTP saturation ({} clients, {:?})",
            args.concurrency, args.generator
        ),
        &saturated,
    );

    let fixed = fixed_rate(&client, &service, &args).await;
    print_http(
        &format!(
            "HTTP fixed rate ({}/s for {} s)",
            args.rate,
            args.duration.as_secs()
        ),
        &fixed,
    );

    for (in_flight, records_per_second) in raw {
        println!(
            "ratio: HTTP saturation / raw produce with {in_flight} in flight = {:.3}",
            rate(saturated.accepted, saturated.elapsed) / records_per_second
        );
    }

    service.stop().await?;
    if saturated.other + fixed.other > 0 {
        bail!(
            "{} requests were not accepted",
            saturated.other + fixed.other
        );
    }
    Ok(())
}

/// CPU seconds used over a span: by one process (and by its threads, by
/// name), by the broker, and by this process (the load generator).
#[derive(Debug, Default)]
struct Usage {
    process: f64,
    threads: BTreeMap<String, f64>,
    broker: f64,
    generator: f64,
}

impl Usage {
    /// Runs `work`, and reads what process `pid` and the broker at
    /// `bootstrap` used meanwhile.
    async fn over<T>(pid: u32, bootstrap: &str, work: impl Future<Output = T>) -> (T, Usage) {
        let me = std::process::id();
        let (process, threads, broker, generator) = (
            cpu::of(&[pid]),
            cpu::threads(pid),
            cpu::named("tansu", bootstrap),
            cpu::with_ended_children(me),
        );
        let out = work.await;
        let mut used = Usage {
            process: cpu::of(&[pid]) - process,
            threads: cpu::threads(pid),
            broker: cpu::named("tansu", bootstrap) - broker,
            generator: cpu::with_ended_children(me) - generator,
        };
        for (name, seconds) in &mut used.threads {
            *seconds -= threads.get(name).copied().unwrap_or(0.0);
        }
        (out, used)
    }

    /// "12.3 µs (rdk:broker 4.5, tokio-rt-worker 6.7, …), broker 8.9 µs,
    /// load generator 10.1 µs" per one of `count`, the busiest threads first.
    fn per(&self, count: usize) -> String {
        let micros = |seconds: f64| seconds / count.max(1) as f64 * 1e6;
        let mut threads: Vec<(&String, &f64)> =
            self.threads.iter().filter(|(_, s)| **s > 0.0).collect();
        threads.sort_by(|a, b| b.1.total_cmp(a.1));
        let listed: Vec<String> = threads
            .iter()
            .map(|(name, seconds)| format!("{name} {:.1}", micros(**seconds)))
            .collect();
        format!(
            "{:.1} µs ({}), broker {:.1} µs, load generator {:.1} µs",
            micros(self.process),
            listed.join(", "),
            micros(self.broker),
            micros(self.generator)
        )
    }
}

/// The `hookline-ingest` binary beside this one, serving one orders topic.
struct Service {
    url: String,
    pid: u32,
    child: Child,
}

impl Service {
    async fn start(args: &Args, topic: &str, dir: &Path) -> anyhow::Result<Self> {
        let manifest = format!(
            "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: bench}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: {}}}]\n  shards: [{{name: a, databaseUrlSecretRef: {{name: pg, key: url}}}}]\n  ingest: {{signingSecretRef: {{name: provider}}}}\n",
            args.broker.bootstrap, args.partitions
        );
        std::fs::write(dir.join("pipeline.yaml"), manifest)?;
        std::fs::create_dir_all(dir.join("secrets/provider"))?;
        std::fs::write(dir.join("secrets/provider/standard-webhooks"), SECRET)?;
        let listen = free_address()?;
        let binary = std::env::current_exe()?.with_file_name("hookline-ingest");
        let log = dir.join("ingest.log");
        let mut child = Command::new(&binary)
            .arg("--pipeline")
            .arg(dir.join("pipeline.yaml"))
            .arg("--secrets-dir")
            .arg(dir.join("secrets"))
            .args(["--listen", &listen, "--metrics-listen", &free_address()?])
            .args([
                "--max-concurrent-requests",
                &args.concurrency.max(256).to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (cargo build --release --bins)",
                    binary.display()
                )
            })?;
        let pid = child.id().context("ingest exited at once")?;
        let client = reqwest::Client::new();
        let ready = format!("http://{listen}/readyz");
        let started = Instant::now();
        while !client
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if started.elapsed() > DEADLINE || child.try_wait()?.is_some() {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("ingest did not become ready within {DEADLINE:?}; it said:\n{said}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            url: format!("http://{listen}/webhooks/orders"),
            pid,
            child,
        })
    }

    /// SIGTERM, and waits for a clean exit.
    async fn stop(mut self) -> anyhow::Result<()> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        let status = tokio::time::timeout(DEADLINE, self.child.wait()).await??;
        anyhow::ensure!(status.success(), "ingest exited with {status}");
        Ok(())
    }
}

/// A loopback address no one listens on now.
fn free_address() -> anyhow::Result<String> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.to_string())
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
    println!(
        "{:<44} CPU per accepted request: ingest {}",
        "",
        run.cpu.per(run.accepted)
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

/// Produces every body straight to the broker, as ingest would, with at most
/// `most_in_flight` records unacknowledged; returns the time from the first
/// send to the last ack.
async fn raw_produce(
    args: &Args,
    topic: &str,
    bodies: &[Vec<u8>],
    most_in_flight: usize,
) -> anyhow::Result<Duration> {
    // Ingest's producer, configured as ingest configures it, but with many
    // sends in flight at once.
    let producer = Producer::new(
        &ProducerSettings {
            client: ClientSettings::new(args.broker.bootstrap.as_str()),
            queue_capacity: 100_000,
            queue_kbytes: 256 * 1024,
            max_record_bytes: 1_048_588,
            ack_timeout: DEADLINE,
        }
        .client_config(),
        DEADLINE,
    )?;
    let count = args.partitions.unsigned_abs();
    let started = Instant::now();
    let mut in_flight = VecDeque::with_capacity(most_in_flight);
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
        let delivery = producer
            .enqueue(Record {
                topic,
                partition: partition_for(user.as_bytes(), count)
                    .and_then(|p| i32::try_from(p).ok()),
                key: Some(user.as_bytes()),
                value: Some(body),
                headers,
            })
            .context("enqueueing a record")?;
        in_flight.push_back(delivery);
        if in_flight.len() >= most_in_flight
            && let Some(mut oldest) = in_flight.pop_front()
        {
            producer
                .delivered(&mut oldest)
                .await
                .context("a record's ack")?;
        }
    }
    for mut delivery in in_flight {
        producer
            .delivered(&mut delivery)
            .await
            .context("a record's ack")?;
    }
    Ok(started.elapsed())
}

async fn saturation(
    client: &reqwest::Client,
    service: &Service,
    bootstrap: &str,
    bodies: &[Vec<u8>],
    clients: usize,
) -> HttpRun {
    let started = Instant::now();
    let (results, cpu) = Usage::over(service.pid, bootstrap, async {
        load::closed_loop(client, &service.url, bodies.to_vec(), clients).await
    })
    .await;
    summarise(results, started.elapsed(), cpu)
}

async fn fixed_rate(client: &reqwest::Client, service: &Service, args: &Args) -> HttpRun {
    let total = args.rate as usize * args.duration.as_secs() as usize;
    let started = Instant::now();
    let (results, cpu) = Usage::over(service.pid, &args.broker.bootstrap, async {
        load::open_loop(
            client,
            &service.url,
            args.rate,
            total,
            FIXED_RATE_IN_FLIGHT,
            |n| body(args.requests + n, args.body_bytes),
        )
        .await
    })
    .await;
    summarise(results, started.elapsed(), cpu)
}

/// The saturation run through wrk, for `--saturation`: `--concurrency`
/// connections over two threads cycle through a thousand signed requests of
/// distinct users (repeats are new records to ingest, as provider retries
/// are), written into a Lua script.
async fn saturation_wrk(args: &Args, service: &Service, dir: &Path) -> anyhow::Result<HttpRun> {
    // Signed once, so a run longer than ingest's timestamp tolerance (5 m)
    // would be refused: `--saturation` is capped below it.
    let now = chrono::Utc::now().timestamp();
    let base = service.url.trim_end_matches("/webhooks/orders").to_owned();
    // wrk adds a Host header only to requests it formats after loading the
    // script; these are formatted while it loads.
    let host = base.trim_start_matches("http://").to_owned();
    let mut script = String::from("local requests = {}\n");
    for i in 0..1_000 {
        let body = String::from_utf8(body(args.requests + i, args.body_bytes))?;
        let id = format!("msg_wrk_{i}");
        let signature =
            sign::standard_v1(SECRET, &id, now, body.as_bytes()).context("signing a request")?;
        script.push_str(&format!(
            "requests[{}] = wrk.format(\"POST\", \"/webhooks/orders\", {{[\"host\"] = \"{host}\", [\"{}\"] = \"{id}\", [\"{}\"] = \"{now}\", [\"{}\"] = \"{signature}\", [\"content-type\"] = \"application/json\"}}, [==[{body}]==])\n",
            i + 1,
            header::WEBHOOK_ID,
            header::WEBHOOK_TIMESTAMP,
            header::WEBHOOK_SIGNATURE,
        ));
    }
    script.push_str(
        "local n = 0\nrequest = function()\n  n = n % #requests + 1\n  return requests[n]\nend\n",
    );
    let path = dir.join("saturation.lua");
    std::fs::write(&path, script)?;
    let started = Instant::now();
    let (output, cpu) = Usage::over(service.pid, &args.broker.bootstrap, async {
        Command::new("wrk")
            .args(["--threads", "2", "--latency", "--timeout", "10s"])
            .args(["--connections", &args.concurrency.to_string()])
            .args([
                "--duration",
                &format!(
                    "{}s",
                    args.saturation.as_secs().clamp(1, MAX_SATURATION_SECS)
                ),
            ])
            .arg("--script")
            .arg(&path)
            .arg(&base)
            .stdin(Stdio::null())
            .output()
            .await
    })
    .await;
    let output = output.context("running wrk (apt-get install wrk, or --generator reqwest)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report =
        WrkReport::parse(&text).with_context(|| format!("reading wrk's report:\n{text}"))?;
    Ok(HttpRun {
        accepted: report.answered.saturating_sub(report.not_2xx),
        other: report.not_2xx + report.socket_errors,
        elapsed: report.elapsed.min(started.elapsed()),
        latencies: Some(report.latencies),
        cpu,
    })
}

/// What wrk printed of a run.
#[derive(Debug, PartialEq)]
struct WrkReport {
    /// Requests answered ("N requests in"): socket errors are not among them.
    answered: usize,
    not_2xx: usize,
    /// Connect, read, write errors and timeouts.
    socket_errors: usize,
    elapsed: Duration,
    latencies: Latencies,
}

impl WrkReport {
    fn parse(text: &str) -> Option<Self> {
        let words =
            |line: &str| -> Vec<String> { line.split_whitespace().map(str::to_owned).collect() };
        let mut answered = None;
        let mut elapsed = None;
        let (mut not_2xx, mut socket_errors) = (0, 0);
        let (mut p50, mut p99, mut max) = (None, None, None);
        for line in text.lines() {
            let w = words(line);
            match w.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                [count, "requests", "in", seconds, ..] => {
                    answered = count.parse().ok();
                    elapsed = wrk_duration(seconds.trim_end_matches(','));
                }
                ["50%", value] => p50 = wrk_duration(value),
                ["99%", value] => p99 = wrk_duration(value),
                ["Latency", _avg, _stdev, value, ..] => max = wrk_duration(value),
                ["Non-2xx", "or", "3xx", "responses:", count] => {
                    not_2xx = count.parse::<usize>().ok()?;
                }
                ["Socket", "errors:", rest @ ..] => {
                    for part in rest.chunks(2) {
                        if let [_, count] = part {
                            socket_errors += count.trim_end_matches(',').parse::<usize>().ok()?;
                        }
                    }
                }
                _ => {}
            }
        }
        Some(Self {
            answered: answered?,
            not_2xx,
            socket_errors,
            elapsed: elapsed?,
            latencies: Latencies {
                p50: p50?,
                p99: p99?,
                max: max?,
            },
        })
    }
}

/// A wrk duration: `812.00us`, `4.21ms`, `1.02s`, `2.00m`.
fn wrk_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

fn summarise(results: Vec<(u16, Duration)>, elapsed: Duration, cpu: Usage) -> HttpRun {
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
        cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As wrk 4.1 printed it here, with socket errors added as it prints them.
    const REPORT: &str = "Running 1s test @ http://127.0.0.1:18099/webhooks/orders
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.36ms  574.56us  10.04ms   89.75%
    Req/Sec     1.46k    50.74     1.52k    70.00%
  Latency Distribution
     50%    1.29ms
     75%    1.53ms
     90%    1.80ms
     99%    2.77ms
  2897 requests in 1.00s, 1.44MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 40
Requests/sec:   2895.01
Transfer/sec:      1.44MB
";

    #[test]
    fn wrks_report_gives_the_counts_and_the_percentiles() {
        let report = WrkReport::parse(REPORT).unwrap();
        assert_eq!(report.answered, 2897);
        assert_eq!(report.not_2xx, 40);
        assert_eq!(report.socket_errors, 6);
        assert_eq!(report.elapsed, Duration::from_secs(1));
        assert_eq!(report.latencies.p50, Duration::from_micros(1_290));
        assert_eq!(report.latencies.p99, Duration::from_micros(2_770));
        assert_eq!(report.latencies.max, Duration::from_micros(10_040));
    }

    #[test]
    fn a_report_without_its_totals_is_not_read() {
        let truncated: String = REPORT.lines().take(9).collect::<Vec<_>>().join("\n");
        assert_eq!(WrkReport::parse(&truncated), None);
        assert_eq!(
            wrk_duration("574.56us"),
            Some(Duration::from_nanos(574_560))
        );
        assert_eq!(wrk_duration("2.00m"), Some(Duration::from_secs(120)));
        assert_eq!(wrk_duration("12"), None);
    }
}
