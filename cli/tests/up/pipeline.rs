//! A pipeline run by `hookline up` for one test, with its own topics, shard
//! databases, ports and folders, started, restarted and stopped as a user
//! would, and every process it started killed with it when a test fails.

use std::path::Path;

use hookline_testkit::{DEADLINE, eventually};
use sqlx::{Executor, PgPool};
use tokio::process::Command;

use crate::support::{SECRET, env, free_ports, healthy, write};

/// A pipeline run by `hookline up` for one test: its own topic, shard
/// databases, ports and folders.
pub struct Up {
    pub admin: PgPool,
    pub urls: Vec<String>,
    pub pools: [PgPool; 2],
    pub dir: tempfile::TempDir,
    pub run: String,
    pub topic: String,
    pub ingest: String,
    /// Ingest's, then each worker's.
    pub health: Vec<String>,
    pub logs: std::path::PathBuf,
    /// What `hookline up` writes to standard error, and to standard output.
    pub stderr: std::path::PathBuf,
    pub stdout: std::path::PathBuf,
    pub child: tokio::process::Child,
    /// The arguments of `hookline up`, to start it again.
    pub args: Vec<std::ffi::OsString>,
    /// Every `hookline up` started, and its processes.
    pub groups: Vec<ProcessGroup>,
}

/// Starts `hookline up <args>` in a process group of its own.
pub fn spawn_up(
    args: &[std::ffi::OsString],
    stdout: &Path,
    stderr: &Path,
) -> (tokio::process::Child, ProcessGroup) {
    let child = Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(args)
        .stdout(append(stdout))
        .stderr(append(stderr))
        // One connection per shard and worker: five pipelines run at once here,
        // within PostgreSQL's default 100 connections.
        .env("HOOKLINE_SHARD_CONNECTIONS", "1")
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let group = ProcessGroup(child.id().unwrap());
    (child, group)
}

pub fn append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// `hookline up` and every process it started: killed together when a test
/// fails, so that none outlives it holding ports and connections.
pub struct ProcessGroup(pub u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl Up {
    /// Runs the manifest `manifest(run)` makes, whose topics are named after
    /// `run` and which has `workers` partitions in all; returns once every
    /// process is ready.
    pub async fn start(manifest: impl FnOnce(&str) -> String, workers: u16) -> Self {
        let up = Self::launch(manifest, workers, &[]).await;
        up.ready().await;
        up
    }

    /// Starts `hookline up <extra>` on the manifest `manifest(run)` makes.
    pub async fn launch(
        manifest: impl FnOnce(&str) -> String,
        workers: u16,
        extra: &[&str],
    ) -> Self {
        let admin_url = env(
            "HOOKLINE_PG_ADMIN_URL",
            "postgres://hookline:hookline@127.0.0.1:5432/postgres",
        );
        let admin = PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is unreachable ({e}); run `scripts/stack up`")
        });
        let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let base = admin_url.rsplit_once('/').unwrap().0.to_owned();
        let mut urls = Vec::new();
        for shard in ["a", "b"] {
            let name = format!("hookline_up_{run}_{shard}");
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            urls.push(format!("{base}/{name}"));
        }
        let dir = tempfile::tempdir().unwrap();
        let topic = format!("up-{run}.orders");
        write(&dir.path().join("pipeline.yaml"), &manifest(&run));
        write(&dir.path().join("secrets/pg-shard-a/url"), &urls[0]);
        write(&dir.path().join("secrets/pg-shard-b/url"), &urls[1]);
        write(
            &dir.path()
                .join("secrets/provider-secrets/standard-webhooks"),
            SECRET,
        );
        // The GitHub source of examples/sources; other manifests name none.
        write(
            &dir.path().join("secrets/github/secret"),
            "a-github-webhook-secret-for-the-example\n",
        );
        let ingest = format!("127.0.0.1:{}", free_ports(1));
        let ingest_metrics = format!("127.0.0.1:{}", free_ports(1));
        let first_worker = free_ports(workers);
        let logs = dir.path().join("logs");
        let stderr = dir.path().join("up.stderr");
        let stdout = dir.path().join("up.stdout");
        let mut args: Vec<std::ffi::OsString> = vec!["up".into(), "-f".into()];
        args.push(dir.path().join("pipeline.yaml").into());
        args.push("--secrets-dir".into());
        args.push(dir.path().join("secrets").into());
        for arg in [
            "--ingest-addr",
            &ingest,
            "--ingest-metrics-addr",
            &ingest_metrics,
            "--first-worker-port",
        ] {
            args.push(arg.into());
        }
        args.push(first_worker.to_string().into());
        args.push("--logs".into());
        args.push(logs.clone().into());
        args.extend(extra.iter().map(Into::into));
        let (child, group) = spawn_up(&args, &stdout, &stderr);
        let pools = [
            PgPool::connect(&urls[0]).await.unwrap(),
            PgPool::connect(&urls[1]).await.unwrap(),
        ];
        let mut health = vec![format!("http://{ingest}/readyz")];
        health
            .extend((0..workers).map(|w| format!("http://127.0.0.1:{}/readyz", first_worker + w)));
        Self {
            admin,
            urls,
            pools,
            dir,
            run,
            topic,
            ingest,
            health,
            logs,
            stderr,
            stdout,
            child,
            args,
            groups: vec![group],
        }
    }

    pub async fn ready(&self) {
        eventually("ingest and every worker ready", || async {
            for url in &self.health {
                if !healthy(url).await {
                    return false;
                }
            }
            true
        })
        .await;
    }

    /// Runs `hookline <command> -f <manifest> --secrets-dir <dir> <extra>`:
    /// success and stdout.
    pub async fn hookline(&self, command: &[&str], extra: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(command)
            .arg("-f")
            .arg(self.dir.path().join("pipeline.yaml"))
            .arg("--secrets-dir")
            .arg(self.secrets())
            .args(extra)
            .output()
            .await
            .unwrap();
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            text.push_str(&String::from_utf8_lossy(&output.stderr));
        }
        (output.status.success(), text)
    }

    /// Waits until ingest has started `times` times (a changed manifest
    /// restarts every process), then until every process is ready.
    pub async fn restarted(&self, times: usize) {
        eventually(&format!("ingest started {times} times"), || async {
            let log = std::fs::read_to_string(self.logs.join("ingest.log")).unwrap_or_default();
            log.matches("hookline-ingest serving").count() >= times
        })
        .await;
        self.ready().await;
    }

    /// The pid file `up` keeps for the first worker of the topic.
    pub fn first_worker_pid_file(&self) -> std::path::PathBuf {
        self.logs.join(format!("worker-{}-0.pid", self.topic))
    }

    /// SIGKILLs the first worker of the topic, as a crash would; its pid.
    pub fn kill_first_worker(&self) -> String {
        let pid = std::fs::read_to_string(self.first_worker_pid_file()).unwrap();
        std::process::Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap();
        pid
    }

    /// What `hookline up` wrote to standard error so far.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn secrets(&self) -> String {
        self.dir.path().join("secrets").display().to_string()
    }

    /// Ctrl-C, and every process gone.
    pub async fn stop(mut self) {
        std::process::Command::new("kill")
            .args(["-INT", &self.child.id().unwrap().to_string()])
            .status()
            .unwrap();
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "hookline up exited with {status}");
        self.finish().await;
    }

    /// Checks that nothing `up` started still answers, and drops the
    /// databases.
    pub async fn finish(self) {
        for url in &self.health {
            assert!(!healthy(url).await, "{url} still answers after up stopped");
        }
        let [a, b] = self.pools;
        a.close().await;
        b.close().await;
        for url in &self.urls {
            let name = url.rsplit_once('/').unwrap().1;
            self.admin
                .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                .await
                .unwrap();
        }
    }
}
