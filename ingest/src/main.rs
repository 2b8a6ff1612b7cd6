//! `hookline-ingest`: wiring only: tracing, configuration, the service under one
//! shutdown signal.

use anyhow::Context;
use clap::Parser;
use hookline_ingest::config::{Args, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hookline_runtime::telemetry::init("info");

    let args = Args::parse();
    let config = Config::load(&args).context("loading the configuration")?;
    let topics = config.topics();
    let app = hookline_ingest::App::new(config)?;
    let listener = hookline_ingest::bind(args.listen).await?;
    tracing::info!(listen = %args.listen, ?topics, "hookline-ingest serving");

    let shutdown = CancellationToken::new();
    tokio::spawn(hookline_runtime::shutdown::on_signal(shutdown.clone()));
    hookline_ingest::serve(app, listener, shutdown).await?;
    tracing::info!("hookline-ingest stopped");
    Ok(())
}
