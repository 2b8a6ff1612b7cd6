//! Running a pipeline on one machine: its topics, and its ingest and worker
//! processes, from the same manifest and secrets layout a cluster uses.

use std::path::PathBuf;

use hookline_contract::pipeline::PipelineManifest;
use hookline_contract::secrets::SecretsDir;
use hookline_kafka::ClientSettings;

pub mod assignment;
pub mod processes;
pub mod restarts;
pub mod shards;
pub mod topics;

/// The manifest and the folder its secret references resolve under: what
/// every command that reads a pipeline takes.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineFiles {
    /// The WebhookPipeline manifest.
    #[arg(short = 'f', long = "file", env = "HOOKLINE_PIPELINE")]
    pub file: PathBuf,
    /// Where the manifest's secret references resolve: key K of Secret S is DIR/S/K.
    #[arg(long, env = "HOOKLINE_SECRETS_DIR")]
    pub secrets_dir: PathBuf,
}

impl PipelineFiles {
    /// Reads and checks the manifest.
    pub fn manifest(&self) -> anyhow::Result<PipelineManifest> {
        Ok(PipelineManifest::read(&self.file)?)
    }

    pub fn secrets(&self) -> SecretsDir {
        SecretsDir::new(&self.secrets_dir)
    }

    /// The Kafka client settings of `manifest`, with its TLS and SASL files
    /// read from the secrets folder.
    pub fn kafka(&self, manifest: &PipelineManifest) -> anyhow::Result<ClientSettings> {
        Ok(ClientSettings::of(&manifest.spec.kafka, &self.secrets())?)
    }
}
