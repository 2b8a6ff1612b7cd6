//! `hookline-operator`: wiring only.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
        #[command(flatten)]
        images: hookline_operator::run::ImageArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hookline_runtime::telemetry::init("info");
    match Cli::parse().command {
        Command::Run(args) => hookline_operator::run::run(args).await,
        Command::Render { file, images } => {
            print!(
                "{}",
                hookline_operator::render::render(&file, &images.into())?
            );
            Ok(())
        }
    }
}
