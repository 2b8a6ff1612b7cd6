//! Running a pipeline on one machine: its topics, and its ingest and worker
//! processes, from the same manifest and secrets layout a cluster uses.

use std::path::PathBuf;

pub mod assignment;
pub mod processes;
pub mod topics;

/// The manifest and the folder its secret references resolve under: what
/// `up`, `status` and `verify` read.
#[derive(Debug, clap::Args)]
pub struct PipelineFiles {
    /// The WebhookPipeline manifest.
    #[arg(short = 'f', long = "file", env = "HOOKLINE_PIPELINE")]
    pub file: PathBuf,
    /// Where the manifest's secret references resolve: key K of Secret S is DIR/S/K.
    #[arg(long, env = "HOOKLINE_SECRETS_DIR")]
    pub secrets_dir: PathBuf,
}
