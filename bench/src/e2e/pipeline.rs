//! The pipeline under test: ingest and one worker per partition, started from
//! the same binaries and manifest format `hookline up` uses.

use std::path::Path;

use hookline_contract::pipeline::PipelineManifest;
use hookline_kafka::{ClientSettings, offsets};

use crate::cpu::Pids;
use crate::load::SECRET;
use hookline::local::processes::{self, Layout, Process};
use hookline::local::topics;

pub struct Pipeline {
    pub url: String,
    kafka: ClientSettings,
    topic: String,
    processes: Vec<Process>,
    _dir: tempfile::TempDir,
}

/// Where the processes listen, and the workers' fetch wait.
pub struct Ports {
    pub ingest: u16,
    pub ingest_metrics: u16,
    pub first_worker: u16,
    pub fetch_wait: std::time::Duration,
}

impl Pipeline {
    /// Creates the run's topic, writes its manifest and secrets (shard URLs in
    /// order a, b) and starts the processes; returns once all are ready.
    pub async fn start(
        bootstrap: &str,
        run: &str,
        partitions: i32,
        shard_urls: [&str; 2],
        ports: Ports,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let topic = format!("bench-{run}.orders");
        let secrets = dir.path().join("secrets");
        for (name, url) in [("pg-a", shard_urls[0]), ("pg-b", shard_urls[1])] {
            write(&secrets.join(name).join("url"), url)?;
        }
        write(&secrets.join("provider/standard-webhooks"), SECRET)?;
        let manifest = format!(
            "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: bench}}\nspec:\n  kafka: {{bootstrapServers: \"{bootstrap}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: {partitions}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider}}}}\n"
        );
        let pipeline = dir.path().join("pipeline.yaml");
        write(&pipeline, &manifest)?;
        let spec = PipelineManifest::from_yaml(&manifest)?.spec;
        topics::reconcile(&spec, &ClientSettings::new(bootstrap.to_string())).await?;
        let ingest = format!("127.0.0.1:{}", ports.ingest);
        let ingest_metrics = format!("127.0.0.1:{}", ports.ingest_metrics);
        let layout = Layout {
            pipeline: &pipeline,
            secrets: &secrets,
            logs: &dir.path().join("logs"),
            ingest_listen: &ingest,
            ingest_metrics: &ingest_metrics,
            first_worker_port: ports.first_worker,
            fetch_wait: ports.fetch_wait,
        };
        let mut running = processes::start(&spec, &layout)?;
        if let Err(error) = processes::wait_ready(&mut running).await {
            processes::stop(running).await;
            return Err(error);
        }
        Ok(Self {
            url: format!("http://{ingest}/webhooks/orders"),
            kafka: ClientSettings::new(bootstrap),
            topic,
            processes: running,
            _dir: dir,
        })
    }

    /// Whether the workers have committed every record on the topic.
    pub async fn drained(&self) -> anyhow::Result<bool> {
        let partitions = offsets::offsets(&self.kafka, &self.topic, &self.topic).await?;
        Ok(partitions.iter().all(|p| p.committed.unwrap_or(0) == p.end))
    }

    /// Ingest's and the workers' process ids.
    pub fn pids(&self) -> Pids {
        let mut pids = Pids::default();
        for process in &self.processes {
            let Some(pid) = process.pid() else { continue };
            match process.spec.topic {
                Some(_) => pids.workers.push(pid),
                None => pids.front.push(pid),
            }
        }
        pids
    }

    pub async fn stop(self) {
        processes::stop(self.processes).await;
    }
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}
