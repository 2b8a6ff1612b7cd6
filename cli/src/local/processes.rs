//! The pipeline's processes: one ingest, and one worker pinned to each
//! partition of each topic, each with its own log file, stopped together.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hookline_contract::pipeline::PipelineSpec;
use tokio::process::{Child, Command};

/// How long a process may take to become ready, and to stop.
const DEADLINE: Duration = Duration::from_secs(60);
/// The workers' fetch wait on this machine, unless `up --fetch-wait` says
/// otherwise. The local broker (tansu) holds every fetch for its whole wait
/// even when records arrive meanwhile, so the wait is the floor of every
/// event's latency; a short one costs the broker's CPU for idle fetches
/// (README, "One machine", has the figures).
pub const FETCH_WAIT: &str = "10ms";

/// A process the pipeline should have: what to run and where it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// `ingest`, or `worker <topic>-<n>`.
    pub name: String,
    /// The topic a worker consumes.
    pub topic: Option<String>,
    binary: &'static str,
    args: Vec<String>,
    listen: String,
    /// Where it serves `/metrics`: a worker on its health port, ingest on a
    /// listener of its own (its public port serves no metrics).
    metrics: String,
}

impl ProcessSpec {
    /// The process's health endpoint.
    pub fn health(&self) -> String {
        format!("http://{}/readyz", self.listen)
    }

    /// The process's metrics endpoint.
    pub fn metrics(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }
}

/// A started process and where to ask whether it is ready.
pub struct Process {
    pub name: String,
    pub health: String,
    pub log: PathBuf,
    pub spec: ProcessSpec,
    /// When it was started.
    pub started: Instant,
    child: Child,
}

/// Where the processes find their configuration and put their logs.
pub struct Layout<'a> {
    pub pipeline: &'a Path,
    pub secrets: &'a Path,
    pub logs: &'a Path,
    /// Ingest listens here; workers on the ports after `first_worker_port`.
    pub ingest_listen: &'a str,
    /// Ingest serves its metrics here.
    pub ingest_metrics: &'a str,
    pub first_worker_port: u16,
    /// The workers' `--fetch-wait`.
    pub fetch_wait: Duration,
}

/// Every process of `spec`: ingest, then one worker per partition of each
/// topic, with `partitions` (by topic) overriding the spec's counts.
pub fn specs(
    spec: &PipelineSpec,
    partitions: &std::collections::BTreeMap<String, i32>,
    layout: &Layout<'_>,
) -> Vec<ProcessSpec> {
    let mut args = common_args(layout);
    args.extend([
        "--listen".to_owned(),
        layout.ingest_listen.to_owned(),
        "--metrics-listen".to_owned(),
        layout.ingest_metrics.to_owned(),
    ]);
    let mut all = vec![ProcessSpec {
        name: "ingest".to_owned(),
        topic: None,
        binary: "hookline-ingest",
        args,
        listen: layout.ingest_listen.to_owned(),
        metrics: layout.ingest_metrics.to_owned(),
    }];
    all.extend(worker_specs(spec, partitions, layout));
    all
}

/// One worker pinned to each partition of each topic of `spec`: no consumer
/// group to form when one starts or dies, so a restarted worker is back at
/// its partition's committed offset at once.
pub fn worker_specs(
    spec: &PipelineSpec,
    partitions: &std::collections::BTreeMap<String, i32>,
    layout: &Layout<'_>,
) -> Vec<ProcessSpec> {
    let mut all = Vec::new();
    let mut port = layout.first_worker_port;
    for topic in &spec.topics {
        let count = partitions
            .get(&topic.name)
            .copied()
            .unwrap_or(topic.partitions);
        for partition in 0..count {
            let id = format!("{}-{partition}", topic.name);
            let listen = format!("127.0.0.1:{port}");
            port = port.saturating_add(1);
            let mut args = common_args(layout);
            args.extend([
                "--topic".to_owned(),
                topic.name.clone(),
                "--partition".to_owned(),
                partition.to_string(),
                "--fetch-wait".to_owned(),
                millis(layout.fetch_wait),
                "--listen".to_owned(),
                listen.clone(),
            ]);
            all.push(ProcessSpec {
                name: format!("worker {id}"),
                topic: Some(topic.name.clone()),
                binary: "hookline-worker",
                args,
                metrics: listen.clone(),
                listen,
            });
        }
    }
    all
}

/// Starts ingest and the workers of `spec`, with the spec's partition counts.
pub fn start(spec: &PipelineSpec, layout: &Layout<'_>) -> anyhow::Result<Vec<Process>> {
    let all = specs(spec, &Default::default(), layout);
    all.iter().map(|w| spawn(w, layout.logs)).collect()
}

/// Starts the workers of `spec` only.
pub fn start_workers(spec: &PipelineSpec, layout: &Layout<'_>) -> anyhow::Result<Vec<Process>> {
    let all = worker_specs(spec, &Default::default(), layout);
    all.iter().map(|w| spawn(w, layout.logs)).collect()
}

/// One worker for every partition of `topic`, as the only member of its
/// consumer group (the way a Kubernetes worker runs), on the first worker
/// port.
pub fn group_worker(topic: &str, layout: &Layout<'_>) -> ProcessSpec {
    let listen = format!("127.0.0.1:{}", layout.first_worker_port);
    let mut args = common_args(layout);
    args.extend([
        "--topic".to_owned(),
        topic.to_owned(),
        "--instance-id".to_owned(),
        format!("{topic}-group"),
        "--fetch-wait".to_owned(),
        millis(layout.fetch_wait),
        "--listen".to_owned(),
        listen.clone(),
    ]);
    ProcessSpec {
        name: format!("worker {topic}"),
        topic: Some(topic.to_owned()),
        binary: "hookline-worker",
        args,
        metrics: listen.clone(),
        listen,
    }
}

/// A duration as a flag's value, to the millisecond.
fn millis(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

fn common_args(layout: &Layout<'_>) -> Vec<String> {
    vec![
        "--pipeline".to_owned(),
        layout.pipeline.display().to_string(),
        "--secrets-dir".to_owned(),
        layout.secrets.display().to_string(),
    ]
}

/// Starts `spec`, its output appended to its log, its pid written beside it
/// (`<name>.pid`), so that tools and tests can find it.
pub fn spawn(spec: &ProcessSpec, logs: &Path) -> anyhow::Result<Process> {
    std::fs::create_dir_all(logs)?;
    let program = sibling(spec.binary)?;
    let file_name = spec.name.replace(' ', "-");
    let log = logs.join(format!("{file_name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let child = Command::new(&program)
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    if let Some(pid) = child.id() {
        std::fs::write(logs.join(format!("{file_name}.pid")), pid.to_string())?;
    }
    Ok(Process {
        name: spec.name.clone(),
        health: spec.health(),
        log,
        spec: spec.clone(),
        started: Instant::now(),
        child,
    })
}

/// Stops what an earlier run left behind: a process of `specs` whose pid file
/// is in `logs` and that still runs its binary (the run that started it
/// was killed before it could stop its children). Two workers must never
/// share a static member id, nor two processes a port.
pub async fn stop_leftovers(specs: &[ProcessSpec], logs: &Path) {
    let mut leftovers = Vec::new();
    for w in specs {
        let pid_file = logs.join(format!("{}.pid", w.name.replace(' ', "-")));
        let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if runs(pid, w.binary) {
            eprintln!(
                "{} (pid {pid}) was left running by an earlier run; stopping it",
                w.name
            );
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            leftovers.push((pid, w.binary));
        }
    }
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while leftovers.iter().any(|(pid, binary)| runs(*pid, binary)) {
        if tokio::time::Instant::now() > deadline {
            for (pid, _) in &leftovers {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether process `pid` exists and runs `binary` (a pid may have been given
/// to another program since; a zombie has no command line).
fn runs(pid: u32, binary: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|cmdline| {
            let program = cmdline.split(|b| *b == 0).next()?.to_vec();
            String::from_utf8(program).ok()
        })
        .is_some_and(|program| Path::new(&program).file_name() == Some(binary.as_ref()))
}

/// A binary of the workspace, built beside this one.
fn sibling(binary: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(binary);
    if !path.is_file() {
        bail!(
            "{} not found: build the workspace's binaries first (cargo build --bins)",
            path.display()
        );
    }
    Ok(path)
}

/// Waits until every process answers ready; fails with the first one's log
/// when it exits or does not become ready in time.
pub async fn wait_ready(processes: &mut [Process]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    for process in processes.iter_mut() {
        loop {
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "{} exited ({status}); see {}",
                    process.name,
                    process.log.display()
                );
            }
            let ready = client.get(&process.health).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{} not ready within {DEADLINE:?}; see {}",
                    process.name,
                    process.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Asks every process to stop (SIGTERM: ingest flushes, workers commit) and
/// waits for them; kills what has not stopped by the deadline.
pub async fn stop(processes: Vec<Process>) {
    for process in &processes {
        if let Some(pid) = process.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for mut process in processes {
        match tokio::time::timeout(DEADLINE, process.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => eprintln!(
                "{} exited with {status}; see {}",
                process.name,
                process.log.display()
            ),
            _ => {
                eprintln!("{} did not stop in time; killing it", process.name);
                let _ = process.child.kill().await;
            }
        }
    }
}

/// The sum over every process of the metric lines starting with `prefix`.
pub async fn metric_sum(processes: &[&Process], prefix: &str) -> f64 {
    let client = reqwest::Client::new();
    let mut total = 0.0;
    for process in processes {
        total += metric(&client, process, prefix).await;
    }
    total
}

/// The sum of `process`'s metric lines starting with `prefix`; 0 when it
/// does not answer within a second.
pub async fn metric(client: &reqwest::Client, process: &Process, prefix: &str) -> f64 {
    let url = process.spec.metrics();
    let text = match client.get(url).timeout(Duration::from_secs(1)).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => return 0.0,
    };
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Process {
    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process is gone.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

#[cfg(test)]
mod tests;
