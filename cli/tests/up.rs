//! `hookline up` as a user runs it: a manifest, a secrets folder, the stack's
//! broker and PostgreSQL; signed webhooks in, rows out; a worker killed and
//! started again; Ctrl-C stops everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use hookline_ingest::auth::{header, sign};
use sqlx::{Executor, PgPool};
use tokio::process::Command;

const DEADLINE: Duration = Duration::from_secs(90);
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn eventually<F, Fut>(what: &str, mut condition: F)
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

/// Two consecutive ports nothing listens on.
fn free_ports() -> (u16, u16) {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX
            && let Ok(b) = std::net::TcpListener::bind(("127.0.0.1", port + 1))
        {
            drop((a, b));
            return (port, port + 1);
        }
    }
}

async fn rows(pools: &[PgPool]) -> i64 {
    let mut total = 0;
    for pool in pools {
        total += sqlx::query_scalar::<_, i64>("SELECT count(*) FROM order_events")
            .fetch_one(pool)
            .await
            .unwrap_or(0);
    }
    total
}

async fn healthy(url: &str) -> bool {
    reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
}

async fn send(client: &reqwest::Client, ingest: &str, from: usize, to: usize) {
    for i in from..to {
        let body = serde_json::to_vec(&serde_json::json!({
            "id": format!("evt_{i}"), "type": "order.paid", "created": 1_700_000_000 + i,
            "data": {"user_id": format!("user-{}", i % 7), "order_id": format!("ord_{i}"),
                     "amount": 100, "currency": "eur", "status": "paid"}
        }))
        .unwrap();
        let now = chrono::Utc::now().timestamp();
        let id = format!("msg_{i}");
        let answer = client
            .post(format!("http://{ingest}/webhooks/orders"))
            .header(header::WEBHOOK_ID, &id)
            .header(header::WEBHOOK_TIMESTAMP, now.to_string())
            .header(
                header::WEBHOOK_SIGNATURE,
                sign::standard_v1(SECRET, &id, now, &body).unwrap(),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "{}", answer.text().await.unwrap());
    }
}

/// A manifest of one orders topic with 2 partitions on two shards, reading the
/// provider's event id at `event_id_pointer`.
fn manifest(topic: &str, event_id_pointer: &str) -> String {
    format!(
        "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: up}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: 2, pointers: {{eventId: \"{event_id_pointer}\"}}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider}}}}\n",
        env("HOOKLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A pipeline run by `hookline up` for one test: its own topic, shard
/// databases, ports and folders.
struct Up {
    admin: PgPool,
    urls: Vec<String>,
    pools: [PgPool; 2],
    dir: tempfile::TempDir,
    topic: String,
    ingest: String,
    health: [String; 3],
    logs: std::path::PathBuf,
    child: tokio::process::Child,
}

impl Up {
    async fn start(event_id_pointer: &str) -> Self {
        let admin_url = env(
            "HOOKLINE_PG_ADMIN_URL",
            "postgres://hookline:hookline@127.0.0.1:5432/postgres",
        );
        let admin = PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is unreachable ({e}); run `scripts/stack up`")
        });
        let run = uuid::Uuid::new_v4().simple().to_string();
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
        write(
            &dir.path().join("pipeline.yaml"),
            &manifest(&topic, event_id_pointer),
        );
        write(&dir.path().join("secrets/pg-a/url"), &urls[0]);
        write(&dir.path().join("secrets/pg-b/url"), &urls[1]);
        write(
            &dir.path().join("secrets/provider/standard-webhooks"),
            SECRET,
        );
        let (ingest_port, _) = free_ports();
        let (first_worker, second_worker) = free_ports();
        let ingest = format!("127.0.0.1:{ingest_port}");
        let logs = dir.path().join("logs");
        let child = Command::new(env!("CARGO_BIN_EXE_hookline"))
            .arg("up")
            .arg("-f")
            .arg(dir.path().join("pipeline.yaml"))
            .arg("--secrets-dir")
            .arg(dir.path().join("secrets"))
            .args([
                "--ingest-addr",
                &ingest,
                "--first-worker-port",
                &first_worker.to_string(),
            ])
            .arg("--logs")
            .arg(&logs)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pools = [
            PgPool::connect(&urls[0]).await.unwrap(),
            PgPool::connect(&urls[1]).await.unwrap(),
        ];
        let health = [
            format!("http://{ingest}/readyz"),
            format!("http://127.0.0.1:{first_worker}/readyz"),
            format!("http://127.0.0.1:{second_worker}/readyz"),
        ];
        let up = Self {
            admin,
            urls,
            pools,
            dir,
            topic,
            ingest,
            health,
            logs,
            child,
        };
        up.ready().await;
        up
    }

    async fn ready(&self) {
        eventually("ingest and both workers ready", || async {
            for url in &self.health {
                if !healthy(url).await {
                    return false;
                }
            }
            true
        })
        .await;
    }

    /// Runs `hookline <command> -f <manifest> <extra>`: success and stdout.
    async fn hookline(&self, command: &[&str], extra: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(command)
            .arg("-f")
            .arg(self.dir.path().join("pipeline.yaml"))
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

    fn secrets(&self) -> String {
        self.dir.path().join("secrets").display().to_string()
    }

    /// Ctrl-C, and every process gone.
    async fn stop(mut self) {
        std::process::Command::new("kill")
            .args(["-INT", &self.child.id().unwrap().to_string()])
            .status()
            .unwrap();
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "hookline up exited with {status}");
        for url in &self.health {
            assert!(!healthy(url).await, "{url} still answers after Ctrl-C");
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

#[tokio::test]
async fn up_runs_the_manifest_restarts_a_killed_worker_and_stops_on_ctrl_c() {
    let up = Up::start("/id").await;
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 20).await;
    eventually("20 rows", || async { rows(&up.pools).await == 20 }).await;

    let pid_file = up.logs.join(format!("worker-{}-0.pid", up.topic));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    eventually("the killed worker started again", || async {
        std::fs::read_to_string(&pid_file).is_ok_and(|p| p != pid) && healthy(&up.health[1]).await
    })
    .await;

    send(&client, &up.ingest, 20, 40).await;
    eventually("40 rows", || async { rows(&up.pools).await == 40 }).await;

    // The audit: every committed record has its row ...
    let secrets = up.secrets();
    eventually(
        "verify counts all 40 committed events as stored",
        || async {
            let (ok, out) = up.hookline(&["verify"], &["--secrets-dir", &secrets]).await;
            ok && out.contains("40 stored, 0 in the DLQ, 0 missing")
        },
    )
    .await;
    let (_, status) = up.hookline(&["status"], &["--secrets-dir", &secrets]).await;
    assert!(
        status.contains(&format!(
            "topic {}: 2 partitions, 40 records, lag 0, DLQ 0",
            up.topic
        )),
        "{status}"
    );
    let stored: i64 = status
        .lines()
        .filter(|l| l.starts_with("shard "))
        .filter_map(|l| {
            l.split("order_events ")
                .nth(1)?
                .split(',')
                .next()?
                .trim()
                .parse::<i64>()
                .ok()
        })
        .sum();
    assert_eq!(stored, 40, "{status}");
    // ... and names the event whose row went missing behind its back.
    let mut deleted = 0;
    for pool in &up.pools {
        deleted += sqlx::query("DELETE FROM order_events WHERE order_id = 'ord_3'")
            .execute(pool)
            .await
            .unwrap()
            .rows_affected();
    }
    assert_eq!(deleted, 1);
    let (ok, out) = up.hookline(&["verify"], &["--secrets-dir", &secrets]).await;
    assert!(!ok, "verify passed with a row missing: {out}");
    assert!(
        out.contains("1 missing") && out.contains("event evt_3 of user user-3"),
        "{out}"
    );
    assert_eq!(
        rows(&up.pools).await,
        39,
        "nothing doubled (one row deleted by the test)"
    );
    up.stop().await;
}

#[tokio::test]
async fn replay_after_fixing_the_cause_stores_the_quarantined_events_once() {
    // A wrong pointer: every webhook is quarantined as missing its event id.
    let up = Up::start("/event_id").await;
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 10).await;
    let (_, listed) = up.hookline(&["dlq", "list"], &[]).await;
    assert!(listed.contains("10 missing_event_id"), "{listed}");
    assert_eq!(rows(&up.pools).await, 0);

    // The fix: the manifest points at the provider's id; `up` applies it.
    write(
        &up.dir.path().join("pipeline.yaml"),
        &manifest(&up.topic, "/id"),
    );
    eventually(
        "up restarted its processes with the new manifest",
        || async {
            let log = std::fs::read_to_string(up.logs.join("ingest.log")).unwrap_or_default();
            log.matches("hookline-ingest serving").count() >= 2
        },
    )
    .await;
    up.ready().await;
    let (ok, dry) = up.hookline(&["dlq", "replay"], &["--dry-run"]).await;
    assert!(ok && dry.contains("would replay 10"), "{dry}");
    assert_eq!(rows(&up.pools).await, 0, "a dry run changes nothing");

    let (ok, out) = up.hookline(&["dlq", "replay"], &[]).await;
    assert!(ok && out.contains("replayed 10, still invalid 0"), "{out}");
    eventually("the replayed events stored", || async {
        rows(&up.pools).await == 10
    })
    .await;
    let (ok, again) = up.hookline(&["dlq", "replay"], &[]).await;
    assert!(ok && again.contains("replayed 0"), "{again}");
    let secrets = up.secrets();
    eventually("verify sees the 10 replayed events stored", || async {
        let (ok, out) = up.hookline(&["verify"], &["--secrets-dir", &secrets]).await;
        ok && out.contains("10 stored")
    })
    .await;
    assert_eq!(rows(&up.pools).await, 10, "stored once");
    up.stop().await;
}
