//! `hookline up`: a WebhookPipeline without a cluster. The manifest a platform
//! team would `kubectl apply` drives this machine's processes: its topics are
//! reconciled with the operator's own topic code, ingest and one worker per
//! partition run from the same binaries and flags the images carry, a process
//! that dies is started again, and a changed manifest is applied.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use hookline_contract::pipeline::PipelineManifest;

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
    let layout = Layout {
        pipeline: &args.pipeline.file,
        secrets: &args.pipeline.secrets_dir,
        logs: &args.logs,
        ingest_listen: &args.ingest_addr,
        first_worker_port: args.first_worker_port,
    };
    let mut running: HashMap<String, Process> = HashMap::new();
    let mut seen: Option<SystemTime> = None;
    // Why the manifest could not be applied (a broker not up yet, a file
    // caught half-written): it is tried again every tick, the error told once.
    let mut failed: Option<String> = None;
    let mut tick = tokio::time::interval(TICK);
    let mut announced = false;
    let mut sampled = false;
    // Partitions per topic, as the broker has them, and whether the workers
    // hold them all.
    let mut partitions: BTreeMap<String, i32> = BTreeMap::new();
    let mut watch = Watch::default();
    let mut checked = Instant::now();
    // One listener for the whole run, so a Ctrl-C that comes while the
    // manifest is applied or the sample sent is not lost.
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let modified = std::fs::metadata(&args.pipeline.file)
            .and_then(|m| m.modified())
            .ok();
        if modified != seen || failed.is_some() {
            match apply(&args.pipeline.file, &layout, &mut running).await {
                Ok(applied) => {
                    seen = modified;
                    failed = None;
                    announced = false;
                    partitions = applied;
                    watch.reset();
                }
                Err(error) => {
                    let error = format!("{error:#}");
                    if failed.as_ref() != Some(&error) {
                        eprintln!("hookline up: {error}");
                    }
                    failed = Some(error);
                }
            }
        }
        restart_exited(&mut running, &layout)?;
        if announced && checked.elapsed() >= ASSIGNMENT_CHECK {
            checked = Instant::now();
            let processes: Vec<&Process> = running.values().collect();
            let held = assignment::held(&processes).await;
            for notice in watch.observe(checked, assignment::shortfalls(&partitions, &held)) {
                tell(&notice);
            }
        }
        if !announced && all_ready(&running).await {
            println!(
                "pipeline running: ingest on http://{}, {} workers; Ctrl-C stops it",
                args.ingest_addr,
                running.len() - 1
            );
            announced = true;
            if args.sample_traffic && !sampled {
                sampled = true;
                let sent = tokio::select! {
                    sent = sample(&args, &running, &partitions) => sent,
                    _ = &mut stop => break,
                };
                if args.exit {
                    processes::stop(running.into_values().collect()).await;
                    println!("pipeline stopped");
                    return sent;
                }
                if let Err(error) = &sent {
                    eprintln!("hookline up: sample traffic: {error:#}");
                }
                print_endpoints(&args, &running);
            }
        }
    }
    processes::stop(running.into_values().collect()).await;
    println!("pipeline stopped");
    Ok(())
}

/// Sends the sample traffic. When its rows do not all arrive, partitions no
/// worker holds are the likeliest cause, and are told at once.
async fn sample(
    args: &Args,
    running: &HashMap<String, Process>,
    partitions: &BTreeMap<String, i32>,
) -> anyhow::Result<()> {
    let manifest = PipelineManifest::read(&args.pipeline.file)?;
    let processes: Vec<&Process> = running.values().collect();
    let sent = sample::send_and_report(
        &manifest,
        &args.pipeline.secrets_dir,
        &args.ingest_addr,
        &processes,
    )
    .await;
    if sent.is_err() {
        let held = assignment::held(&processes).await;
        for short in assignment::shortfalls(partitions, &held) {
            tell(&Notice::Stuck(short));
        }
    }
    sent
}

fn print_endpoints(args: &Args, running: &HashMap<String, Process>) {
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
    let mut workers: Vec<&Process> = running.values().filter(|p| p.name != "ingest").collect();
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

/// Reconciles the topics of the manifest and starts and stops processes so
/// that one worker runs per partition the broker has; returns the partitions
/// of each topic of the manifest.
async fn apply(
    file: &Path,
    layout: &Layout<'_>,
    running: &mut HashMap<String, Process>,
) -> anyhow::Result<BTreeMap<String, i32>> {
    let manifest = PipelineManifest::read(file)?;
    let partitions = topics::reconcile(&manifest.spec).await?;
    let wanted = processes::wanted(&manifest.spec, &partitions, layout);
    let names: Vec<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    let extra: Vec<String> = running
        .keys()
        .filter(|n| !names.contains(&n.as_str()))
        .cloned()
        .collect();
    let stopping: Vec<Process> = extra.iter().filter_map(|n| running.remove(n)).collect();
    processes::stop(stopping).await;
    // A changed manifest is read by the processes only at startup: the ones
    // whose flags did not change are restarted to read it.
    let restart: Vec<Process> = running.drain().map(|(_, p)| p).collect();
    processes::stop(restart).await;
    processes::stop_leftovers(&wanted, layout.logs).await;
    for w in &wanted {
        running.insert(w.name.clone(), processes::spawn(w, layout.logs)?);
    }
    Ok(manifest
        .spec
        .topics
        .iter()
        .map(|t| {
            let count = partitions.get(&t.name).copied().unwrap_or(t.partitions);
            (t.name.clone(), count)
        })
        .collect())
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

/// Starts again every process that died.
fn restart_exited(
    running: &mut HashMap<String, Process>,
    layout: &Layout<'_>,
) -> anyhow::Result<()> {
    let dead: Vec<String> = running
        .iter_mut()
        .filter_map(|(name, p)| p.has_exited().then(|| name.clone()))
        .collect();
    for name in dead {
        if let Some(process) = running.remove(&name) {
            eprintln!(
                "hookline up: {name} exited; starting it again (log: {})",
                process.log.display()
            );
            running.insert(name, processes::spawn(&process.wanted, layout.logs)?);
        }
    }
    Ok(())
}

/// Whether every process answers its readiness check.
async fn all_ready(running: &HashMap<String, Process>) -> bool {
    let client = reqwest::Client::new();
    for process in running.values() {
        let answer = client
            .get(&process.health)
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if !answer.is_ok_and(|a| a.status().is_success()) {
            return false;
        }
    }
    !running.is_empty()
}
