//! `hookline up`: a WebhookPipeline without a cluster. The manifest a platform
//! team would `kubectl apply` drives this machine's processes: its topics are
//! reconciled with the operator's own topic code, ingest and one worker pinned
//! to each partition run from the same binaries and flags the images carry, a
//! process that dies is started again the moment it dies, and a changed
//! manifest is applied.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::local::PipelineFiles;
use crate::local::assignment::{self, Notice, Watch};
use crate::local::processes::{self, Layout, Process, ProcessSpec};
use crate::local::restarts::Restarts;
use crate::local::topics;
use crate::sample;

/// How often the manifest and the workers' readiness are looked at.
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
    /// Where the ingest service serves its metrics (not on its public address).
    #[arg(
        long,
        env = "HOOKLINE_INGEST_METRICS_ADDR",
        default_value = "127.0.0.1:9099"
    )]
    ingest_metrics_addr: String,
    /// Workers serve health and metrics on this port and the ones after it.
    #[arg(long, default_value_t = 9100)]
    first_worker_port: u16,
    /// The workers' fetch wait: how long the broker may hold a fetch with no
    /// records to send. tansu holds each fetch this long even when records
    /// arrive, so it is added to every event's latency; shorter costs the
    /// broker more CPU while idle.
    #[arg(long, env = "HOOKLINE_FETCH_WAIT", default_value = processes::FETCH_WAIT, value_parser = hookline_runtime::parse_duration)]
    fetch_wait: Duration,
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
    // A manifest that cannot work is refused before anything starts; once
    // running, a bad edit is reported and the running pipeline kept.
    args.pipeline.manifest()?;
    let mut supervisor = Supervisor::new(&args);
    let mut tick = tokio::time::interval(TICK);
    // One listener for the whole run, so a Ctrl-C that comes while the
    // manifest is applied or the sample sent is not lost.
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    // The kernel tells a parent when a child dies: a dead process is seen at
    // once, not at the next tick. Signals coalesce, so each one is a reason
    // to look at every process.
    let mut child_died = signal(SignalKind::child()).context("listening for SIGCHLD")?;
    let outcome = loop {
        let restart_at = supervisor.next_restart();
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = child_died.recv() => supervisor.restart_exited()?,
            () = tokio::time::sleep_until(restart_at.unwrap_or_else(tokio::time::Instant::now)), if restart_at.is_some() => {
                supervisor.restart_due()?;
            }
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
    /// Processes that died soon after their start, again: when each is to
    /// be started again.
    waiting: Vec<(tokio::time::Instant, ProcessSpec)>,
    restarts: Restarts,
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
                ingest_metrics: &args.ingest_metrics_addr,
                first_worker_port: args.first_worker_port,
                fetch_wait: args.fetch_wait,
            },
            running: HashMap::new(),
            waiting: Vec::new(),
            restarts: Restarts::default(),
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
    /// last apply failed), and the workers' partitions checked.
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
        self.waiting.clear();
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
            "  ingest:    http://{}/readyz, http://{}/metrics",
            args.ingest_addr, args.ingest_metrics_addr
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
        let kafka = self.args.pipeline.kafka(&manifest)?;
        let partitions = topics::reconcile(&manifest.spec, &kafka).await?;
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
        self.restarts.reset();
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

    /// Starts again every process that died: at once, unless it keeps dying
    /// soon after its start.
    fn restart_exited(&mut self) -> anyhow::Result<()> {
        let dead: Vec<String> = self
            .running
            .iter_mut()
            .filter_map(|(name, p)| p.has_exited().then(|| name.clone()))
            .collect();
        for name in dead {
            let Some(process) = self.running.remove(&name) else {
                continue;
            };
            let delay = self.restarts.delay(&name, process.started.elapsed());
            let log = process.log.display();
            if delay.is_zero() {
                eprintln!("hookline up: {name} exited; starting it again (log: {log})");
                let restarted = processes::spawn(&process.spec, self.layout.logs)?;
                self.running.insert(name, restarted);
            } else {
                eprintln!(
                    "hookline up: {name} exited soon after its start, again; starting it in {delay:?} (log: {log})"
                );
                let at = tokio::time::Instant::now() + delay;
                self.waiting.push((at, process.spec));
            }
        }
        Ok(())
    }

    /// When the next waiting process is to be started.
    fn next_restart(&self) -> Option<tokio::time::Instant> {
        self.waiting.iter().map(|(at, _)| *at).min()
    }

    /// Starts the waiting processes whose delay is over.
    fn restart_due(&mut self) -> anyhow::Result<()> {
        let now = tokio::time::Instant::now();
        let (due, later) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.waiting = later;
        for (_, spec) in due {
            let started = processes::spawn(&spec, self.layout.logs)?;
            self.running.insert(spec.name.clone(), started);
        }
        Ok(())
    }

    /// Whether every process answers its readiness check.
    async fn all_ready(&self) -> bool {
        if !self.waiting.is_empty() {
            return false;
        }
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
            "hookline up: the workers of {} hold {} of its {} partitions, for over {} s: a worker keeps dying or cannot reach the broker; its log (under --logs) says why",
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
