//! `hookline up`: a WebhookPipeline without a cluster. The manifest a platform
//! team would `kubectl apply` drives this machine's processes: its topics are
//! reconciled with the operator's own topic code, ingest and one worker per
//! partition run from the same binaries and flags the images carry, a process
//! that dies is started again, and a changed manifest is applied.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::local::PipelineFiles;
use crate::local::assignment::{self, Notice, Watch};
use crate::local::processes::{self, Layout, Process};
use crate::local::topics;
use crate::sample;

/// How often processes and the manifest are looked at.
const TICK: Duration = Duration::from_secs(1);
/// How often the workers are asked which partitions they hold.
const ASSIGNMENT_CHECK: Duration = Duration::from_secs(10);

/// Arguments of `hookline up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: PipelineFiles,
    /// Address of the ingest service.
    #[arg(long, env = "HOOKLINE_INGEST_ADDR", default_value = "127.0.0.1:8080")]
    ingest_addr: String,
    /// Workers serve health and metrics on this port and the ones after it.
    #[arg(long, default_value_t = 9100)]
    first_worker_port: u16,
    /// Where each process's log and pid file go.
    #[arg(long, default_value = ".hookline/logs")]
    logs: PathBuf,
    /// Once everything is ready, send a few hundred signed sample webhooks
    /// (provider retries and invalid ones among them) and report where they went.
    #[arg(long)]
    sample_traffic: bool,
    /// Stop after the sample traffic's report instead of running on.
    #[arg(long, requires = "sample_traffic")]
    exit: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut supervisor = Supervisor::new(&args);
    let mut tick = tokio::time::interval(TICK);
    // One listener for the whole run, so a Ctrl-C that comes while the
    // manifest is applied or the sample sent is not lost.
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    let outcome = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tick.tick() => {}
        }
        supervisor.keep_up().await?;
        if supervisor.announced || !supervisor.all_ready().await {
            continue;
        }
        supervisor.announce();
        if args.sample_traffic && !supervisor.sampled {
            supervisor.sampled = true;
            let sent = tokio::select! {
                sent = supervisor.sample() => sent,
                _ = &mut stop => break Ok(()),
            };
            if args.exit {
                break sent;
            }
            if let Err(error) = &sent {
                eprintln!("hookline up: sample traffic: {error:#}");
            }
            supervisor.print_endpoints();
        }
    };
    supervisor.stop().await;
    println!("pipeline stopped");
    outcome
}

/// The pipeline's processes on this machine and what is known about them.
struct Supervisor<'a> {
    args: &'a Args,
    layout: Layout<'a>,
    /// By process name.
    running: HashMap<String, Process>,
    /// The manifest's modification time when it was last applied.
    applied: Option<SystemTime>,
    /// Why the manifest could not be applied (a broker not up yet, a file
    /// caught half-written): it is tried again every tick, the error told once.
    failed: Option<String>,
    /// Whether "pipeline running" was said since the manifest was applied.
    announced: bool,
    /// Whether the sample traffic was sent (once per run).
    sampled: bool,
    /// Partitions per topic, as the broker has them.
    partitions: BTreeMap<String, i32>,
    /// Whether the workers hold every partition, and since when not.
    watch: Watch,
    /// When the workers were last asked which partitions they hold.
    checked: Instant,
}

impl<'a> Supervisor<'a> {
    fn new(args: &'a Args) -> Self {
        Self {
            args,
            layout: Layout {
                pipeline: &args.pipeline.file,
                secrets: &args.pipeline.secrets_dir,
                logs: &args.logs,
                ingest_listen: &args.ingest_addr,
                first_worker_port: args.first_worker_port,
            },
            running: HashMap::new(),
            applied: None,
            failed: None,
            announced: false,
            sampled: false,
            partitions: BTreeMap::new(),
            watch: Watch::default(),
            checked: Instant::now(),
        }
    }

    /// One look at everything: the manifest applied when it changed (or its
    /// last apply failed), dead processes started again, and the workers'
    /// partitions checked.
    async fn keep_up(&mut self) -> anyhow::Result<()> {
        let modified = std::fs::metadata(&self.args.pipeline.file)
            .and_then(|m| m.modified())
            .ok();
        if modified != self.applied || self.failed.is_some() {
            match self.apply().await {
                Ok(()) => {
                    self.applied = modified;
                    self.failed = None;
                    self.announced = false;
                    self.watch.reset();
                }
                Err(error) => {
                    let error = format!("{error:#}");
                    if self.failed.as_ref() != Some(&error) {
                        eprintln!("hookline up: {error}");
                    }
                    self.failed = Some(error);
                }
            }
        }
        self.restart_exited()?;
        if self.announced && self.checked.elapsed() >= ASSIGNMENT_CHECK {
            self.checked = Instant::now();
            let held = assignment::held(&self.processes()).await;
            for notice in self.watch.observe(
                self.checked,
                assignment::shortfalls(&self.partitions, &held),
            ) {
                tell(&notice);
            }
        }
        Ok(())
    }

    fn processes(&self) -> Vec<&Process> {
        self.running.values().collect()
    }

    fn announce(&mut self) {
        println!(
            "pipeline running: ingest on http://{}, {} workers; Ctrl-C stops it",
            self.args.ingest_addr,
            self.running.len() - 1
        );
        self.announced = true;
    }

    async fn stop(&mut self) {
        processes::stop(self.running.drain().map(|(_, p)| p).collect()).await;
    }

    /// Sends the sample traffic. When its rows do not all arrive, partitions no
    /// worker holds are the likeliest cause, and are told at once.
    async fn sample(&self) -> anyhow::Result<()> {
        let manifest = self.args.pipeline.manifest()?;
        let processes = self.processes();
        let sent = sample::send_and_report(
            &manifest,
            &self.args.pipeline.secrets_dir,
            &self.args.ingest_addr,
            &processes,
        )
        .await;
        if sent.is_err() {
            let held = assignment::held(&processes).await;
            for short in assignment::shortfalls(&self.partitions, &held) {
                tell(&Notice::Stuck(short));
            }
        }
        sent
    }

    fn print_endpoints(&self) {
        let args = self.args;
        println!("\nthe pipeline keeps running; Ctrl-C stops it.");
        println!(
            "  webhooks:  POST http://{}/webhooks/<eventType> (signing secrets under {})",
            args.ingest_addr,
            args.pipeline.secrets_dir.display()
        );
        println!(
            "  ingest:    http://{0}/readyz, http://{0}/metrics",
            args.ingest_addr
        );
        let mut workers: Vec<&Process> = self
            .running
            .values()
            .filter(|p| p.name != "ingest")
            .collect();
        workers.sort_by(|a, b| a.name.cmp(&b.name));
        for worker in workers {
            println!(
                "  {}: {}",
                worker.name,
                worker.health.replace("/readyz", "/metrics")
            );
        }
        println!("  logs:      {}", args.logs.display());
    }

    /// Reconciles the topics of the manifest and starts and stops processes
    /// so that one worker runs per partition the broker has.
    async fn apply(&mut self) -> anyhow::Result<()> {
        let manifest = self.args.pipeline.manifest()?;
        let partitions = topics::reconcile(&manifest.spec).await?;
        let specs = processes::specs(&manifest.spec, &partitions, &self.layout);
        let names: Vec<&str> = specs.iter().map(|w| w.name.as_str()).collect();
        let extra: Vec<String> = self
            .running
            .keys()
            .filter(|n| !names.contains(&n.as_str()))
            .cloned()
            .collect();
        let stopping: Vec<Process> = extra
            .iter()
            .filter_map(|n| self.running.remove(n))
            .collect();
        processes::stop(stopping).await;
        // A changed manifest is read by the processes only at startup: the ones
        // whose flags did not change are restarted to read it.
        self.stop().await;
        processes::stop_leftovers(&specs, self.layout.logs).await;
        for spec in &specs {
            self.running
                .insert(spec.name.clone(), processes::spawn(spec, self.layout.logs)?);
        }
        self.partitions = manifest
            .spec
            .topics
            .iter()
            .map(|t| {
                let count = partitions.get(&t.name).copied().unwrap_or(t.partitions);
                (t.name.clone(), count)
            })
            .collect();
        Ok(())
    }

    /// Starts again every process that died.
    fn restart_exited(&mut self) -> anyhow::Result<()> {
        let dead: Vec<String> = self
            .running
            .iter_mut()
            .filter_map(|(name, p)| p.has_exited().then(|| name.clone()))
            .collect();
        for name in dead {
            if let Some(process) = self.running.remove(&name) {
                eprintln!(
                    "hookline up: {name} exited; starting it again (log: {})",
                    process.log.display()
                );
                let restarted = processes::spawn(&process.spec, self.layout.logs)?;
                self.running.insert(name, restarted);
            }
        }
        Ok(())
    }

    /// Whether every process answers its readiness check.
    async fn all_ready(&self) -> bool {
        let client = reqwest::Client::new();
        for process in self.running.values() {
            let answer = client
                .get(&process.health)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if !answer.is_ok_and(|a| a.status().is_success()) {
                return false;
            }
        }
        !self.running.is_empty()
    }
}

fn tell(notice: &Notice) {
    match notice {
        Notice::Stuck(short) => eprintln!(
            "hookline up: the workers of {} hold {} of its {} partitions, for over {} s: the broker's consumer group is not handing them out. tansu 0.6.0 can keep a group waiting for a leader that is gone; restarting the broker clears it (scripts/stack down && scripts/stack up), and nothing is lost",
            short.topic,
            short.held,
            short.partitions,
            assignment::GRACE.as_secs()
        ),
        Notice::Recovered(topic) => {
            eprintln!("hookline up: every partition of {topic} is held by a worker again");
        }
    }
}
