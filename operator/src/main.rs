//! `hookline-operator`: wiring only.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hookline_operator::workloads::Images;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "hookline-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Reconcile WebhookPipelines in the cluster (leader-elected).
    Run(hookline_operator::run::Args),
    /// Print, as YAML, every object the operator would apply for a pipeline.
    Render {
        /// The WebhookPipeline manifest.
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// Image of the ingest pods.
        #[arg(
            long,
            env = "HOOKLINE_INGEST_IMAGE",
            default_value = "ghcr.io/hookline/hookline-ingest:latest"
        )]
        ingest_image: String,
        /// Image of the worker pods.
        #[arg(
            long,
            env = "HOOKLINE_WORKER_IMAGE",
            default_value = "ghcr.io/hookline/hookline-worker:latest"
        )]
        worker_image: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Run(args) => hookline_operator::run::run(args).await,
        Command::Render {
            file,
            ingest_image,
            worker_image,
        } => {
            let images = Images {
                ingest: ingest_image,
                worker: worker_image,
            };
            print!("{}", hookline_operator::render::render(&file, &images)?);
            Ok(())
        }
    }
}
