//! `hookline-operator`: wiring only.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "hookline-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `json` (one object per line) or `text`. Default: text on
    /// a terminal, JSON anywhere else (a pod, a pipe, a file).
    #[arg(long, env = "HOOKLINE_LOG_FORMAT", global = true)]
    log_format: Option<hookline_runtime::telemetry::LogFormat>,
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
    let cli = Cli::parse();
    hookline_runtime::telemetry::init_with_format("info", cli.log_format);
    match cli.command {
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
