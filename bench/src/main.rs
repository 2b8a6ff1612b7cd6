//! `hookline-bench`: throughput and latency figures, printed, against the
//! broker and databases of the local stack.

use clap::Parser;

mod cpu;
mod databases;
mod e2e;
mod ingest;
mod load;
mod stats;
mod up;
mod worker;

/// The broker the benchmarks use.
#[derive(Debug, clap::Args)]
pub struct Broker {
    /// The broker.
    #[arg(
        long,
        env = "HOOKLINE_KAFKA_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap: String,
}

/// The broker and the PostgreSQL server the benchmarks use.
#[derive(Debug, clap::Args)]
pub struct Stack {
    #[command(flatten)]
    pub broker: Broker,
    /// A connection string with the right to create databases.
    #[arg(long, env = "HOOKLINE_PG_ADMIN_URL")]
    pub admin_url: String,
}

/// `hookline-bench`'s command line.
#[derive(Debug, Parser)]
#[command(name = "hookline-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// The authenticated, validated HTTP path against the broker's raw produce rate.
    Ingest(ingest::Args),
    /// Kafka to committed rows, one worker and one per partition, against COPY.
    Worker(worker::Args),
    /// HTTP to committed rows through the whole pipeline, beside a synchronous
    /// baseline; then both with one shard stopped for a while.
    E2e(e2e::Args),
    /// Receipt to row at a steady rate through `hookline up`, with a worker
    /// killed on the way.
    Up(up::Args),
    /// The synchronous baseline's own process, which `e2e` starts.
    #[command(hide = true)]
    Baseline(e2e::ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The pools of the e2e baseline log every connection a stopped shard
    // cuts; that is the benchmark working, not news.
    hookline_runtime::telemetry::init("info,sqlx=error");
    match Cli::parse().what {
        What::Ingest(args) => ingest::run(args).await,
        What::Worker(args) => worker::run(args).await,
        What::E2e(args) => e2e::run(args).await,
        What::Up(args) => up::run(args).await,
        What::Baseline(args) => e2e::serve_baseline(args).await,
    }
}
