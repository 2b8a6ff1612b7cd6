//! `hookline-worker` processes of a test: pinned to a partition each, as
//! `hookline up` runs them, or members of the topic's consumer group, as the
//! Kubernetes workers run.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::pipeline::{DEADLINE, PARTITIONS, Pipeline, eventually};

/// How a test worker gets its partitions.
pub enum Membership {
    Pinned(i32),
    /// Static membership with this instance id.
    Group(String),
    /// Dynamic membership, as the Kubernetes workers run; the name only
    /// names the log.
    Dynamic(String),
}

/// The fetch wait of the one-machine runtime: the broker holds a fetch this
/// long before it answers with records that arrived meanwhile.
pub const FETCH_WAIT: &str = "10ms";

/// How often the test workers commit at most while records flow.
pub const COMMIT_INTERVAL: &str = "100ms";

/// One pinned worker per partition of a pipeline.
pub struct Workers(Vec<WorkerProcess>);

impl Workers {
    pub async fn start(pipeline: &Pipeline, batch_size: usize) -> Self {
        let mut all = Vec::new();
        for partition in 0..PARTITIONS {
            all.push(
                WorkerProcess::start(pipeline, Membership::Pinned(partition), batch_size).await,
            );
        }
        Self(all)
    }

    /// The sum over the workers of a counter or gauge line of `/metrics`.
    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let mut total = 0.0;
        for worker in &self.0 {
            total += worker.metric(line_prefix).await;
        }
        total
    }

    /// SIGKILL to every worker at once.
    pub async fn kill(&mut self) {
        for worker in &mut self.0 {
            worker.kill().await;
        }
    }

    pub async fn restart(&mut self) {
        for worker in &mut self.0 {
            worker.restart().await;
        }
    }

    pub async fn terminate(&mut self) {
        for worker in &mut self.0 {
            worker.terminate().await;
        }
    }
}

/// A running `hookline-worker`.
pub struct WorkerProcess {
    child: Option<Child>,
    pub metrics_url: String,
    pub log: PathBuf,
    args: Vec<String>,
}

impl WorkerProcess {
    /// Starts a worker and waits until it is consuming.
    pub async fn start(pipeline: &Pipeline, membership: Membership, batch_size: usize) -> Self {
        let mut worker = Self::prepare(pipeline, membership, batch_size);
        worker.restart().await;
        worker
    }

    /// A worker's arguments, log and port, not started yet.
    pub fn prepare(pipeline: &Pipeline, membership: Membership, batch_size: usize) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (flag, name) = match membership {
            Membership::Pinned(partition) => (Some("--partition"), partition.to_string()),
            Membership::Group(instance) => (Some("--instance-id"), instance),
            Membership::Dynamic(name) => (None, name),
        };
        let mut args: Vec<String> = vec![
            "--pipeline".into(),
            pipeline.manifest().display().to_string(),
        ];
        args.extend([
            "--secrets-dir".into(),
            pipeline.secrets().display().to_string(),
        ]);
        args.extend(["--topic".into(), pipeline.topic.clone()]);
        if let Some(flag) = flag {
            args.extend([flag.into(), name.clone()]);
        }
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
        args.extend(["--batch-size".into(), batch_size.to_string()]);
        args.extend([
            "--fetch-wait".into(),
            FETCH_WAIT.into(),
            "--max-backoff".into(),
            "500ms".into(),
        ]);
        // Commits every tenth of a second at most, not every second: a stream
        // of a few seconds is committed often enough to be cut in between.
        args.extend(["--commit-interval".into(), COMMIT_INTERVAL.into()]);
        // Tests run side by side within PostgreSQL's 100 connections; a
        // pinned worker writes one batch at a time, one connection per shard.
        args.extend(["--shard-connections".into(), "1".into()]);
        let log = pipeline
            .dir
            .path()
            .join(format!("worker-{}.log", name.replace('/', "-")));
        Self {
            child: None,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
            log,
            args,
        }
    }

    /// Starts the process (again, after [`WorkerProcess::kill`]) with the same
    /// arguments, and waits until it is consuming.
    pub async fn restart(&mut self) {
        self.spawn();
        let ready = self.metrics_url.replace("/metrics", "/readyz");
        eventually("the worker is ready", || async {
            get(&ready).await.is_some_and(|(status, _)| status == 200)
        })
        .await;
    }

    /// Starts the process without waiting for it.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hookline-worker"))
            .args(&self.args)
            .env("RUST_LOG", "info,hookline_worker=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown, no commit, no goodbye to the group.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// SIGTERM, and waits for a clean exit.
    pub async fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().unwrap().to_string();
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            let status = tokio::time::timeout(DEADLINE, child.wait())
                .await
                .unwrap()
                .unwrap();
            assert!(
                status.success(),
                "worker exited with {status}; log: {}",
                self.log.display()
            );
        }
    }

    /// Waits for the process to exit by itself; whether it succeeded.
    pub async fn exited(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        tokio::time::timeout(DEADLINE, child.wait())
            .await
            .unwrap()
            .unwrap()
            .success()
    }

    /// What the process logged so far, without colours.
    pub fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of a counter or gauge line of `/metrics` (0 when absent).
    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let Some((_, text)) = get(&self.metrics_url).await else {
            return 0.0;
        };
        text.lines()
            .filter(|l| l.starts_with(line_prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// A plain HTTP GET over TCP: status and body.
async fn get(url: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_once('/')?;
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}
