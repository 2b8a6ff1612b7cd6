//! `hookline`: the commands of the one-machine runtime.

mod bench;
mod dlq;
mod local;
mod migrate;
mod sample;
mod status;
mod up;
mod verify;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "hookline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the shard schema's pending migrations to every shard.
    Migrate(migrate::Args),
    /// Measure throughput and latency against the local stack.
    Bench(bench::Args),
    /// Run a WebhookPipeline manifest on this machine, without a cluster.
    Up(up::Args),
    /// List the DLQs' records, or replay them once their cause is fixed.
    Dlq(dlq::Args),
    /// Topics, partitions, lag, rows per shard and DLQ depth of a pipeline.
    Status(status::Args),
    /// Audit that every committed event has its row or its DLQ entry.
    Verify(verify::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            // The pools of the benchmark's baseline log every connection a stopped
            // shard cuts; that is the benchmark working, not news.
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=error")),
        )
        .with_writer(std::io::stderr)
        .init();

    match Cli::parse().command {
        Command::Migrate(args) => migrate::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Dlq(args) => dlq::run(args).await,
    }
}
