//! `hookline-worker`: wiring only: tracing, configuration, migrations, then the
//! consumer loop and the health endpoints under one shutdown signal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hookline_worker::Error;
use hookline_worker::backoff::Backoff;
use hookline_worker::config::{Args, Config};
use hookline_worker::consume::Worker;
use hookline_worker::consumer::{self, WorkerConsumer};
use hookline_worker::dlq::DeadLetters;
use hookline_worker::health::Health;
use hookline_worker::metrics::Metrics;
use hookline_worker::store::{self, Pools};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hookline_runtime::telemetry::init("info");

    let args = Args::parse();
    let config = Config::load(&args).context("loading the configuration")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(hookline_runtime::shutdown::on_signal(shutdown.clone()));

    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(metrics.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: args.listen,
            source,
        })?;
    let server = tokio::spawn(hookline_runtime::health::serve(
        health.clone(),
        listener,
        shutdown.clone(),
    ));

    let pools = Pools::connect_lazy(&config.shard_urls, config.shard_connections)
        .map_err(Error::ShardPool)?;
    if config.migrate && !migrate(&pools, &shutdown).await {
        return Ok(());
    }
    let dead_letters = DeadLetters::new(&config.kafka, config.dlq.clone())?;
    let Some(consumer) = connect(&config, &metrics, &shutdown).await? else {
        return Ok(());
    };
    health.set_ready();
    tracing::info!(
        topic = %config.topic, group = %config.group, membership = ?config.membership,
        event_type = config.event_type.name, shards = pools.count(), listen = %args.listen,
        fetch_wait = ?config.fetch_wait, "hookline-worker consuming"
    );

    let worker = Worker {
        config,
        consumer: Arc::new(consumer),
        pools,
        dead_letters,
        metrics,
    };
    worker.run(shutdown.clone()).await;
    shutdown.cancel();
    server.await?.map_err(Error::Serve)?;
    tracing::info!("hookline-worker stopped");
    Ok(())
}

/// Migrates every shard, retrying a shard that is not reachable yet; false when
/// shutdown came first.
async fn migrate(pools: &Pools, shutdown: &CancellationToken) -> bool {
    for (shard, pool) in pools.iter() {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while let Err(error) = store::migrate(pool, chrono::Utc::now()).await {
            let delay = backoff.next_delay();
            tracing::warn!(shard, error = %error, cause = ?error, ?delay, "migrating shard failed; retrying");
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(delay) => {}
            }
        }
        tracing::info!(shard, "shard schema up to date");
    }
    true
}

/// Creates the consumer, retrying while the broker does not answer (a
/// pinned worker asks it where to resume); `None` when shutdown came first.
/// A partition the topic does not have is an error, not worth a retry.
async fn connect(
    config: &Config,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> Result<Option<WorkerConsumer>, Error> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        // The pinned worker's requests block: off the async threads.
        let created = tokio::task::block_in_place(|| consumer::create(config, metrics.clone()));
        let error = match created {
            Ok(consumer) => return Ok(Some(consumer)),
            Err(error @ (Error::FetchMetadata(_) | Error::FetchCommitted(_))) => error,
            Err(error) => return Err(error),
        };
        let delay = backoff.next_delay();
        tracing::warn!(error = %error, cause = %hookline_runtime::root_cause(&error), ?delay, "the broker did not answer; retrying");
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(delay) => {}
        }
    }
}
