//! `hookline-worker`: wiring only: tracing, configuration, migrations, then the
//! consumer loop and the health endpoints under one shutdown signal.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hookline_worker::backoff::Backoff;
use hookline_worker::config::{Args, Config};
use hookline_worker::consume::{self, Worker};
use hookline_worker::dlq::DeadLetters;
use hookline_worker::health::{self, Health};
use hookline_worker::metrics::Metrics;
use hookline_worker::shards::Shards;
use hookline_worker::{Error, store};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let args = Args::parse();
    let config = Config::load(&args).context("loading the configuration")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(hookline_contract::shutdown::on_signal(shutdown.clone()));

    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health {
        metrics: metrics.clone(),
        ready: false.into(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: args.listen,
            source,
        })?;
    let server = tokio::spawn(health::serve(health.clone(), listener, shutdown.clone()));

    let shards = Shards::connect_lazy(&config.shard_urls, config.shard_connections)
        .map_err(Error::ShardPool)?;
    if config.migrate && !migrate(&shards, &shutdown).await {
        return Ok(());
    }
    let dead_letters = DeadLetters::new(&config.bootstrap_servers, config.dlq.clone())?;
    let consumer = Arc::new(consume::consumer(&config, metrics.clone())?);
    health.ready.store(true, Ordering::Release);
    tracing::info!(
        topic = %config.topic, group = %config.group, instance_id = %config.instance_id,
        shards = shards.count(), listen = %args.listen, "hookline-worker consuming"
    );

    let worker = Worker {
        config,
        consumer,
        shards,
        dead_letters,
        metrics,
    };
    worker.run(shutdown.clone()).await;
    shutdown.cancel();
    server.await??;
    tracing::info!("hookline-worker stopped");
    Ok(())
}

/// Migrates every shard, retrying a shard that is not reachable yet; false when
/// shutdown came first.
async fn migrate(shards: &Shards, shutdown: &CancellationToken) -> bool {
    for (i, pool) in shards.pools().iter().enumerate() {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match store::migrate(pool, chrono::Utc::now()).await {
                Ok(()) => break,
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(shard = shards.name(i), error = %error, cause = ?error, ?delay, "migrating shard failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        tracing::info!(shard = shards.name(i), "shard schema up to date");
    }
    true
}
