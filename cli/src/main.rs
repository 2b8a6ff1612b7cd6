//! `hookline`: the commands of the one-machine runtime.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookline::{dlq, migrate, status, up, verify};

#[derive(Debug, Parser)]
#[command(name = "hookline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `json` (one object per line) or `text`. Default: text on
    /// a terminal, JSON anywhere else (a pipe, a file).
    #[arg(long, env = "HOOKLINE_LOG_FORMAT", global = true)]
    log_format: Option<hookline_runtime::telemetry::LogFormat>,
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
    /// Audit that every committed event has its row or its DLQ entry, and
    /// every latest state its newest event; exits 0 clean, 1 missing or
    /// inconsistent, 2 could not check.
    Verify(verify::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    hookline_runtime::telemetry::init_with_format("info", cli.log_format);
    let done = match cli.command {
        Command::Migrate(args) => migrate::run(args).await,
        Command::Up(args) => up::run(args).await,
        // The audit's exit code is its verdict (0, 1 or 2), not only failure.
        Command::Verify(args) => return Ok(verify::run(args).await),
        Command::Status(args) => status::run(args).await,
        Command::Dlq(args) => dlq::run(args).await,
    };
    done.map(|()| ExitCode::SUCCESS)
}
