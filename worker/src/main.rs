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
    let args = Args::parse();
    hookline_runtime::telemetry::init_with_format("info", args.log_format);

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

    let pools = Pools::connect_lazy(&config.shard_urls, &config.shard_connections)
        .map_err(Error::ShardPool)?
        // Twice the batch's deadline: the batch's own deadline runs out
        // first, and the batch is split rather than retried whole.
        .with_write_timeout(config.write_timeout.saturating_mul(2));
    // Not awaited: a shard that is down at startup must not hold up the
    // others. Until its schema is current its writes fail as transient and
    // are retried, like any write to a shard that is down.
    let schema = config.migrate.then(|| {
        tokio::spawn(store::maintain(
            pools.clone(),
            store::PARTITION_CHECK_INTERVAL,
            shutdown.clone(),
        ))
    });
    let dead_letters = DeadLetters::new(&config.kafka, config.dlq.clone(), config.dlq_max_bytes)?;
    let Some(consumer) = connect(&config, &metrics, &shutdown).await? else {
        return Ok(());
    };
    health.set_ready();
    tracing::info!(
        topic = %config.topic, group = %config.group, membership = ?config.membership,
        event_type = config.inspector.definition().name, shards = pools.count(), listen = %args.listen,
        fetch_wait = ?config.fetch_wait, "hookline-worker consuming"
    );

    let worker = Worker {
        config,
        consumer: Arc::new(consumer),
        pools,
        dead_letters,
        metrics,
        health,
    };
    worker.run(shutdown.clone()).await;
    shutdown.cancel();
    if let Some(schema) = schema {
        schema.await?;
    }
    server.await?.map_err(Error::Serve)?;
    tracing::info!("hookline-worker stopped");
    Ok(())
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
