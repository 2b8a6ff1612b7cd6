//! `hookline bench`: throughput and latency figures, printed, against the
//! broker and databases of the local stack.

mod ingest;
mod stats;
mod worker;

/// Arguments of `hookline bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// The authenticated, validated HTTP path against the broker's raw produce rate.
    Ingest(ingest::Args),
    /// Kafka to committed rows, one worker and one per partition, against COPY.
    Worker(worker::Args),
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Ingest(args) => ingest::run(args).await,
        What::Worker(args) => worker::run(args).await,
    }
}
