//! Test support shared by the crates' integration tests.
//!
//! [`PrivateBroker`] is a broker process of the test's own, for tests that stop
//! and restart the broker, or that do what must not touch a shared broker.
//! [`proxy::Proxy`] stands between a client and a server that must go away
//! for a while: a shard stopped under a running worker, or under a benchmark.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;
pub mod tls;

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// How long any condition a test awaits may take.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Waits until `condition` holds, looking every 100 ms; fails the test with
/// `what` after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long the broker may take to listen.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// tansu's log filter, whatever the test's environment says: at `info` it
/// logs every span of every SQL statement, as `scripts/stack` notes.
const TANSU_LOG_FILTER: &str = "warn";

/// A `tansu` broker on a free port of 127.0.0.1, with its data in a temporary
/// folder, killed when dropped.
pub struct PrivateBroker {
    pub bootstrap: String,
    port: u16,
    /// The `host:port` the broker tells clients to connect to, when that is
    /// not its own listener (a TLS terminator in front of it).
    advertised: Option<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateBroker {
    /// Starts a broker; fails the test loudly when `tansu` cannot run.
    pub async fn start() -> Self {
        Self::start_advertising(None).await
    }

    /// Starts a broker that tells clients to connect to `advertised`
    /// (`host:port`) instead of its own listener.
    pub async fn start_advertising(advertised: Option<String>) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut broker = Self {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            advertised,
            dir,
            child: None,
        };
        broker.restart().await;
        broker
    }

    /// Kills the broker at once, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Starts the broker again on the same port and data.
    pub async fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = match &self.advertised {
            Some(advertised) => format!("tcp://{advertised}"),
            None => url.clone(),
        };
        let child = broker_command(&url, &advertised, self.dir.path())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting `tansu broker` failed ({e}); run `scripts/stack up`, which installs it")
            });
        self.child = Some(child);
        wait_for_port(self.port, "private broker").await;
    }
}

/// `tansu broker` listening on `url`, sending clients to `advertised`, with
/// its data and log in `dir`.
fn broker_command(url: &str, advertised: &str, dir: &Path) -> Command {
    let mut command = Command::new("tansu");
    command
        .args(["broker", "--listener-url", url])
        .args(["--advertised-listener-url", advertised])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .env("RUST_LOG", TANSU_LOG_FILTER)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(dir))
        .kill_on_drop(true);
    command
}

/// Waits until something accepts connections on 127.0.0.1:`port`, failing
/// the test with `what` after [`START_DEADLINE`].
pub async fn wait_for_port(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not listen on {port} within {START_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_file(dir: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn the_broker_gets_its_own_log_filter_whatever_the_environment_says() {
        let dir = tempfile::tempdir().unwrap();
        let command = broker_command("tcp://127.0.0.1:1", "tcp://127.0.0.1:1", dir.path());
        let rust_log = command
            .as_std()
            .get_envs()
            .find(|(name, _)| *name == "RUST_LOG")
            .map(|(_, value)| value);
        assert_eq!(rust_log, Some(Some(OsStr::new(TANSU_LOG_FILTER))));
    }
}
