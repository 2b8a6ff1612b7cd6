//! `hookline-ingest`: wiring only: tracing, configuration, the service under one
//! shutdown signal.

use anyhow::Context;
use clap::Parser;
use hookline_ingest::config::{Args, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    hookline_runtime::telemetry::init_with_format("info", args.log_format);

    let config = Config::load(&args).context("loading the configuration")?;
    let topics = config.topics();
    let app = hookline_ingest::App::new(config)?;
    let listener = hookline_ingest::bind(args.listen).await?;
    let metrics_listener = hookline_ingest::bind(args.metrics_listen).await?;
    tracing::info!(listen = %args.listen, metrics_listen = %args.metrics_listen, ?topics, "hookline-ingest serving");

    let shutdown = CancellationToken::new();
    tokio::spawn(hookline_runtime::shutdown::on_signal(shutdown.clone()));
    let metrics = tokio::spawn(hookline_ingest::serve_metrics(
        app.clone(),
        metrics_listener,
        shutdown.clone(),
    ));
    let served = hookline_ingest::serve(app, listener, shutdown.clone()).await;
    // Whichever way the public listener ended, the metrics listener ends too.
    shutdown.cancel();
    metrics.await.context("the metrics listener panicked")??;
    served?;
    tracing::info!("hookline-ingest stopped");
    Ok(())
}
