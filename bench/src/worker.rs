//! `hookline bench worker`: events per second from Kafka to committed rows, with
//! one worker (a consumer group of one, holding every partition) and with one
//! worker pinned to each partition, beside the same rows written by a plain
//! `COPY` into the same tables, in one run.
//!
//! Each measurement gets a fresh topic and fresh shard databases. A worker run
//! is timed from the moment its processes are ready (migrated, subscribed or
//! assigned) to the moment every partition's committed offset reached its
//! end, so the group of one includes joining its consumer group.

use std::time::{Duration, Instant};

use anyhow::bail;
use hookline_contract::{event_id, partition_for};
use hookline_kafka::{ClientSettings, Envelope, offsets};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::stats::rate;
use super::{Stack, databases};
use hookline::local::{processes, topics};

/// Arguments of `hookline bench worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    stack: Stack,
    /// Events per run.
    #[arg(long, default_value_t = 30_000)]
    events: usize,
    /// Partitions of the topic (and workers of the per-partition run).
    #[arg(long, default_value_t = 4)]
    partitions: i32,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    println!(
        "hookline bench worker: {} order events, {} partitions, 2 shards, broker {}",
        args.events, args.partitions, args.stack.broker.bootstrap
    );
    let payloads: Vec<(String, Vec<u8>, Envelope)> = (0..args.events)
        .map(|i| event(i, args.partitions))
        .collect();

    let one = worker_run(&args, &format!("{run}1"), &payloads, Workers::OneInGroup).await?;
    print_run("1 worker (group of one)", args.events, &one);
    let many = worker_run(
        &args,
        &format!("{run}p"),
        &payloads,
        Workers::OnePerPartition,
    )
    .await?;
    print_run(
        &format!("{} workers (one per partition)", args.partitions),
        args.events,
        &many,
    );
    let copy = copy_run(&args, &format!("{run}c"), &payloads).await?;
    println!(
        "{:<32} {:>7} rows in {:>6.2} s  {:>8.0} rows/s",
        "plain COPY (same rows)",
        args.events,
        copy.as_secs_f64(),
        rate(args.events, copy)
    );
    let copy_rate = rate(args.events, copy);
    println!(
        "ratio to COPY, steady (end to end): 1 worker {:.3} ({:.3}), {} workers {:.3} ({:.3})",
        rate(one.steady.events, one.steady.elapsed) / copy_rate,
        rate(args.events, one.elapsed) / copy_rate,
        args.partitions,
        rate(many.steady.events, many.steady.elapsed) / copy_rate,
        rate(args.events, many.elapsed) / copy_rate,
    );
    Ok(())
}

fn print_run(label: &str, events: usize, run: &Run) {
    println!(
        "{label:<32} {events:>7} events in {:>6.2} s  {:>8.0} events/s end to end, {:>8.0} events/s steady",
        run.elapsed.as_secs_f64(),
        rate(events, run.elapsed),
        rate(run.steady.events, run.steady.elapsed),
    );
}

/// The `i`-th event: its user, its body and its envelope.
fn event(i: usize, partitions: i32) -> (String, Vec<u8>, Envelope) {
    let user = format!("user-{}", i % 997);
    let id = format!("evt_{i}");
    let body = json!({
        "id": id, "type": "order.paid", "created": 1_700_000_000 + i as i64,
        "data": {"user_id": user, "order_id": format!("ord_{i}"), "amount": 1250,
                 "currency": "eur", "status": "paid"}
    });
    let envelope = Envelope {
        event_id: event_id("bench", &id),
        event_type: "order.paid".into(),
        source: "bench".into(),
        received_at: chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default(),
        partition_count: partitions.unsigned_abs(),
        schema: "bench".into(),
        message_id: None,
    };
    (
        user,
        serde_json::to_vec(&body).unwrap_or_default(),
        envelope,
    )
}

async fn worker_run(
    args: &Args,
    run: &str,
    payloads: &[(String, Vec<u8>, Envelope)],
    workers: Workers,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let topic = format!("bench-{run}.orders");
    let urls = databases::create(&args.stack.admin_url, run).await?;
    let secrets = dir.path().join("secrets");
    for (name, url) in [("pg-a", &urls[0]), ("pg-b", &urls[1])] {
        std::fs::create_dir_all(secrets.join(name))?;
        std::fs::write(secrets.join(name).join("url"), url)?;
    }
    std::fs::create_dir_all(secrets.join("provider"))?;
    std::fs::write(secrets.join("provider/stripe"), "whsec_bench_unused_secret")?;
    let manifest_text = format!(
        "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: bench}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: {}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider}}}}\n",
        args.stack.broker.bootstrap, args.partitions
    );
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(&pipeline, &manifest_text)?;
    let manifest = hookline_contract::pipeline::PipelineManifest::from_yaml(&manifest_text)?;
    let kafka = ClientSettings::new(args.stack.broker.bootstrap.clone());
    topics::reconcile(&manifest.spec, &kafka).await?;
    produce(&args.stack.broker.bootstrap, &topic, payloads).await?;

    // Only the workers: one pinned to each partition, as `hookline up` runs
    // them, or a single group member holding them all.
    let layout = processes::Layout {
        pipeline: &pipeline,
        secrets: &secrets,
        logs: &dir.path().join("logs"),
        ingest_listen: "127.0.0.1:0",
        ingest_metrics: "127.0.0.1:0",
        first_worker_port: 9200,
        fetch_wait: hookline_runtime::parse_duration(processes::FETCH_WAIT)?,
    };
    let mut running = match workers {
        Workers::OnePerPartition => processes::start_workers(&manifest.spec, &layout)?,
        Workers::OneInGroup => vec![processes::spawn(
            &processes::group_worker(&topic, &layout),
            layout.logs,
        )?],
    };
    processes::wait_ready(&mut running).await?;
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut first_commit: Option<(Instant, i64)> = None;
    loop {
        let kafka = ClientSettings::new(args.stack.broker.bootstrap.clone());
        let partitions = offsets::offsets(&kafka, &topic, &topic).await?;
        let done: i64 = partitions.iter().filter_map(|p| p.committed).sum();
        if first_commit.is_none() && done > 0 {
            first_commit = Some((Instant::now(), done));
        }
        if partitions.iter().all(|p| p.committed == Some(p.end)) {
            break;
        }
        if Instant::now() > deadline {
            processes::stop(running).await;
            bail!("the workers did not commit every record within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let steady = first_commit.map_or(Steady::default(), |(at, done)| Steady {
        events: payloads.len() - done as usize,
        elapsed: at.elapsed(),
    });
    processes::stop(running).await;
    let stored = databases::count(&urls).await?;
    if stored != payloads.len() as i64 {
        bail!("{stored} rows stored for {} events", payloads.len());
    }
    databases::drop(&args.stack.admin_url, &urls).await?;
    Ok(Run { elapsed, steady })
}

/// The workers of a run.
#[derive(Debug, Clone, Copy)]
enum Workers {
    /// One consumer group member holding every partition.
    OneInGroup,
    /// One worker pinned to each partition.
    OnePerPartition,
}

/// A timed worker run.
struct Run {
    /// From ready to the last commit, joining the group included.
    elapsed: Duration,
    steady: Steady,
}

/// From the first commit to the last: the rate once the group has formed.
#[derive(Default)]
struct Steady {
    events: usize,
    elapsed: Duration,
}

async fn produce(
    bootstrap: &str,
    topic: &str,
    payloads: &[(String, Vec<u8>, Envelope)],
) -> anyhow::Result<()> {
    // Many records in flight at once, not one send awaited after the other:
    // the benchmark fills the topic as fast as the broker takes it.
    let producer: FutureProducer = ClientSettings::new(bootstrap)
        .producer("hookline-bench")
        .set("linger.ms", "5")
        .create()?;
    let mut in_flight = std::collections::VecDeque::new();
    for (user, body, envelope) in payloads {
        let headers = envelope.to_headers();
        let partition =
            partition_for(user.as_bytes(), envelope.partition_count).map_or(0, |p| p as i32);
        let record = FutureRecord::to(topic)
            .key(user)
            .payload(body)
            .headers(headers)
            .partition(partition);
        in_flight.push_back(producer.send_result(record).map_err(|(e, _)| e)?);
        if in_flight.len() >= 10_000
            && let Some(oldest) = in_flight.pop_front()
        {
            oldest.await?.map_err(|(e, _)| e)?;
        }
    }
    for delivery in in_flight {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(())
}

/// The same rows with `COPY`: every event into `order_events`, every order's
/// state into `orders`, each shard's rows in one transaction per table.
async fn copy_run(
    args: &Args,
    run: &str,
    payloads: &[(String, Vec<u8>, Envelope)],
) -> anyhow::Result<Duration> {
    let urls = databases::create(&args.stack.admin_url, run).await?;
    let mut events_csv = [String::new(), String::new()];
    let mut orders_csv = [String::new(), String::new()];
    for (i, (user, body, envelope)) in payloads.iter().enumerate() {
        let shard = hookline_contract::shard_for(user, 2).unwrap_or(0) as usize;
        let at = chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0)
            .unwrap_or_default()
            .to_rfc3339();
        let payload = String::from_utf8_lossy(body);
        events_csv[shard].push_str(&format!(
            "ord_{i},evt_{i},{},{user},order.paid,{at},{},{}\n",
            envelope.event_id,
            hookline_kafka::envelope::timestamp(envelope.received_at),
            csv_quote(&payload)
        ));
        orders_csv[shard].push_str(&format!(
            "ord_{i},{user},paid,1250,eur,evt_{i},order.paid,{at}\n"
        ));
    }
    let pools: Vec<PgPool> = futures_pools(&urls).await?;
    let started = Instant::now();
    for (shard, pool) in pools.iter().enumerate() {
        let mut conn = pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw("COPY order_events (order_id, provider_event_id, event_id, user_id, event_type, created_at, received_at, payload) FROM STDIN WITH (FORMAT csv)")
            .await?;
        copy.send(events_csv[shard].as_bytes()).await?;
        copy.finish().await?;
        let mut copy = conn
            .copy_in_raw("COPY orders (order_id, user_id, status, amount, currency, last_event_id, last_event_type, last_event_at) FROM STDIN WITH (FORMAT csv)")
            .await?;
        copy.send(orders_csv[shard].as_bytes()).await?;
        copy.finish().await?;
    }
    let elapsed = started.elapsed();
    for pool in pools {
        pool.close().await;
    }
    let stored = databases::count(&urls).await?;
    if stored != payloads.len() as i64 {
        bail!("COPY stored {stored} rows for {} events", payloads.len());
    }
    databases::drop(&args.stack.admin_url, &urls).await?;
    Ok(elapsed)
}

async fn futures_pools(urls: &[String; 2]) -> anyhow::Result<Vec<PgPool>> {
    let mut pools = Vec::new();
    for url in urls {
        pools.push(PgPoolOptions::new().max_connections(1).connect(url).await?);
    }
    Ok(pools)
}

fn csv_quote(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}
