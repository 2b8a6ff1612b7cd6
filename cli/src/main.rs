//! `hookline`: the commands of the one-machine runtime.

use clap::{Parser, Subcommand};
use hookline::{dlq, migrate, status, up, verify};

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
    hookline_runtime::telemetry::init("info");
    match Cli::parse().command {
        Command::Migrate(args) => migrate::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Dlq(args) => dlq::run(args).await,
    }
}
