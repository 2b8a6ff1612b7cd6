//! `hookline up` as a user runs it: the example manifest (its topics renamed
//! for the test), a secrets folder, the stack's broker and PostgreSQL; signed
//! webhooks in, with provider retries and invalid ones among them, rows out; a
//! worker killed and started again; a changed manifest applied or refused as
//! the operator would; Ctrl-C stops everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use hookline_ingest::auth::{header, sign};
use hookline_testkit::{DEADLINE, eventually};
use sqlx::{Executor, PgPool};
use tokio::process::Command;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `n` consecutive ports nothing listens on.
fn free_ports(n: u16) -> u16 {
    loop {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port.checked_add(n).is_none() {
            continue;
        }
        let rest: Vec<_> = (1..n)
            .map_while(|i| std::net::TcpListener::bind(("127.0.0.1", port + i)).ok())
            .collect();
        if rest.len() == usize::from(n - 1) {
            return port;
        }
    }
}

async fn rows(pools: &[PgPool]) -> i64 {
    let mut total = 0;
    for pool in pools {
        total += rows_in(pool, "order_events").await;
    }
    total
}

async fn rows_in(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

/// Partitions the workers answering at `health` (their readiness URLs) say
/// they hold.
async fn assigned(health: &[String]) -> i64 {
    let mut total = 0;
    for url in health {
        let Ok(answer) = reqwest::get(url.replace("/readyz", "/metrics")).await else {
            continue;
        };
        total += answer
            .text()
            .await
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.strip_prefix("hookline_worker_assigned_partitions ")?
                    .parse::<i64>()
                    .ok()
            })
            .sum::<i64>();
    }
    total
}

async fn healthy(url: &str) -> bool {
    reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Posts one signed webhook; its status and answer.
async fn post(
    client: &reqwest::Client,
    ingest: &str,
    event_type: &str,
    payload: &serde_json::Value,
    id: &str,
) -> (u16, String) {
    let body = serde_json::to_vec(payload).unwrap();
    let now = chrono::Utc::now().timestamp();
    let answer = client
        .post(format!("http://{ingest}/webhooks/{event_type}"))
        .header(header::WEBHOOK_ID, id)
        .header(header::WEBHOOK_TIMESTAMP, now.to_string())
        .header(
            header::WEBHOOK_SIGNATURE,
            sign::standard_v1(SECRET, id, now, &body).unwrap(),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The order event `i`: user `user-<i mod 7>`, order `ord_<i>`.
fn order(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": format!("evt_{i}"), "type": "order.paid", "created": 1_700_000_000 + i,
        "data": {"user_id": format!("user-{}", i % 7), "order_id": format!("ord_{i}"),
                 "amount": 100, "currency": "eur", "status": "paid"}
    })
}

/// The dispute event `i`: user `user-<i mod 5>`.
fn dispute(i: usize) -> serde_json::Value {
    serde_json::json!({
        "id": format!("evt_d{i}"), "type": "dispute.created", "created": 1_700_000_000 + i,
        "data": {"user_id": format!("user-{}", i % 5), "dispute_id": format!("dp_{i}"),
                 "order_id": format!("ord_{i}"), "amount": 500, "currency": "usd",
                 "status": "needs_response"}
    })
}

async fn send(client: &reqwest::Client, ingest: &str, from: usize, to: usize) {
    for i in from..to {
        let (status, text) = post(client, ingest, "orders", &order(i), &format!("msg_{i}")).await;
        assert_eq!(status, 202, "{text}");
    }
}

/// The example manifest of examples/local/, its topics named for one test run
/// and pointed at the stack's broker.
fn example_manifest(run: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/local/pipeline.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    for name in ["orders.webhooks", "disputes.webhooks", "127.0.0.1:9092"] {
        assert!(
            text.contains(name),
            "{} no longer names {name}",
            path.display()
        );
    }
    text.replace("orders.webhooks", &format!("up-{run}.orders"))
        .replace("disputes.webhooks", &format!("up-{run}.disputes"))
        .replace(
            "127.0.0.1:9092",
            &env("HOOKLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        )
}

/// A manifest of one orders topic with `partitions` partitions on two shards,
/// reading the provider's event id at `event_id_pointer`, with the example's
/// secret names.
fn manifest(topic: &str, partitions: u16, event_id_pointer: &str) -> String {
    format!(
        "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: up}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: {partitions}, pointers: {{eventId: \"{event_id_pointer}\"}}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-shard-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-shard-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider-secrets}}}}\n",
        env("HOOKLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    )
}

/// Writes `path` whole at once (a rename), as an editor saving the file
/// would, so that `up` never reads it half-written.
fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// A pipeline run by `hookline up` for one test: its own topic, shard
/// databases, ports and folders.
struct Up {
    admin: PgPool,
    urls: Vec<String>,
    pools: [PgPool; 2],
    dir: tempfile::TempDir,
    run: String,
    topic: String,
    ingest: String,
    /// Ingest's, then each worker's.
    health: Vec<String>,
    logs: std::path::PathBuf,
    /// What `hookline up` writes to standard error, and to standard output.
    stderr: std::path::PathBuf,
    stdout: std::path::PathBuf,
    child: tokio::process::Child,
    /// The arguments of `hookline up`, to start it again.
    args: Vec<std::ffi::OsString>,
    /// Every `hookline up` started, and its processes.
    groups: Vec<ProcessGroup>,
}

/// Starts `hookline up <args>` in a process group of its own.
fn spawn_up(
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

fn append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// `hookline up` and every process it started: killed together when a test
/// fails, so that none outlives it holding ports and connections.
struct ProcessGroup(u32);

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
    async fn start(manifest: impl FnOnce(&str) -> String, workers: u16) -> Self {
        let up = Self::launch(manifest, workers, &[]).await;
        up.ready().await;
        up
    }

    /// Starts `hookline up <extra>` on the manifest `manifest(run)` makes.
    async fn launch(manifest: impl FnOnce(&str) -> String, workers: u16, extra: &[&str]) -> Self {
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
        let ingest = format!("127.0.0.1:{}", free_ports(1));
        let first_worker = free_ports(workers);
        let logs = dir.path().join("logs");
        let stderr = dir.path().join("up.stderr");
        let stdout = dir.path().join("up.stdout");
        let mut args: Vec<std::ffi::OsString> = vec!["up".into(), "-f".into()];
        args.push(dir.path().join("pipeline.yaml").into());
        args.push("--secrets-dir".into());
        args.push(dir.path().join("secrets").into());
        for arg in ["--ingest-addr", &ingest, "--first-worker-port"] {
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

    async fn ready(&self) {
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
    async fn hookline(&self, command: &[&str], extra: &[&str]) -> (bool, String) {
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
    async fn restarted(&self, times: usize) {
        eventually(&format!("ingest started {times} times"), || async {
            let log = std::fs::read_to_string(self.logs.join("ingest.log")).unwrap_or_default();
            log.matches("hookline-ingest serving").count() >= times
        })
        .await;
        self.ready().await;
    }

    /// What `hookline up` wrote to standard error so far.
    fn errors(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
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
        self.finish().await;
    }

    /// Checks that nothing `up` started still answers, and drops the
    /// databases.
    async fn finish(self) {
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

/// Sends orders `from..to` and disputes `from/4..to/4`, every tenth of them
/// again (a provider's retry, with a new delivery id) and, when `invalid`, one
/// invalid webhook of each type; checks every answer is 202.
async fn traffic(client: &reqwest::Client, ingest: &str, from: usize, to: usize, invalid: bool) {
    let mut webhooks: Vec<(&str, serde_json::Value)> = Vec::new();
    for i in from..to {
        webhooks.push(("orders", order(i)));
    }
    for i in from / 4..to / 4 {
        webhooks.push(("disputes", dispute(i)));
    }
    let retries: Vec<_> = webhooks.iter().step_by(10).cloned().collect();
    webhooks.extend(retries);
    if invalid {
        let mut invalid_order = order(to);
        invalid_order["data"]
            .as_object_mut()
            .unwrap()
            .remove("user_id");
        let mut invalid_dispute = dispute(to);
        invalid_dispute["data"]["amount"] = serde_json::json!("five hundred");
        webhooks.push(("orders", invalid_order));
        webhooks.push(("disputes", invalid_dispute));
    }
    for (n, (event_type, payload)) in webhooks.iter().enumerate() {
        let id = format!("msg_{from}_{n}");
        let (status, text) = post(client, ingest, event_type, payload, &id).await;
        assert_eq!(status, 202, "{event_type} {payload}: {text}");
    }
}

/// Rows of `table` on each shard.
async fn rows_per_shard(up: &Up, table: &str) -> [i64; 2] {
    [
        rows_in(&up.pools[0], table).await,
        rows_in(&up.pools[1], table).await,
    ]
}

/// How many of `users` (user ids, one per event) live on each shard.
fn expected_per_shard(users: impl Iterator<Item = String>) -> [i64; 2] {
    let mut expected = [0; 2];
    for user in users {
        expected[hookline_contract::shard_for(&user, 2).unwrap() as usize] += 1;
    }
    expected
}

#[tokio::test]
async fn up_runs_the_example_manifest_through_retries_invalid_webhooks_and_a_killed_worker() {
    // The example: orders with 4 partitions, disputes with 2.
    let up = Up::start(example_manifest, 6).await;
    let client = reqwest::Client::new();
    // 222 webhooks: 200 unique events (160 orders, 40 disputes), 20 retries
    // (10%) and 2 invalid ones (1%), in two halves with a worker killed between.
    traffic(&client, &up.ingest, 0, 80, false).await;
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
    traffic(&client, &up.ingest, 80, 160, true).await;

    let orders = expected_per_shard((0..160).map(|i| format!("user-{}", i % 7)));
    let disputes = expected_per_shard((0..40).map(|i| format!("user-{}", i % 5)));
    assert_eq!(orders[0] + orders[1], 160);
    eventually(
        "a row per unique valid event on its user's shard",
        || async {
            rows_per_shard(&up, "order_events").await == orders
                && rows_per_shard(&up, "dispute_events").await == disputes
        },
    )
    .await;

    // Every partition is held by a worker again after the kill.
    eventually("the workers hold all 6 partitions", || async {
        assigned(&up.health[1..]).await == 6
    })
    .await;

    let orders_topic = up.topic.clone();
    let disputes_topic = format!("up-{}.disputes", up.run);
    // The audit: every committed record (retries included) has its row ...
    eventually(
        "verify counts all 220 committed records as stored",
        || async {
            let (ok, out) = up.hookline(&["verify"], &[]).await;
            ok && out.contains("220 stored, 0 in the DLQ, 0 missing")
        },
    )
    .await;
    // ... and the DLQs hold exactly the two invalid webhooks, with their reasons.
    let (_, status) = up.hookline(&["status"], &[]).await;
    for (topic, records) in [(&orders_topic, 176), (&disputes_topic, 44)] {
        let line = format!("topic {topic}: ");
        let line = status
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("{status}"));
        assert!(
            line.ends_with(&format!("{records} records, lag 0, DLQ 1")),
            "{status}"
        );
    }
    let (_, listed) = up.hookline(&["dlq", "list"], &[]).await;
    assert!(
        listed.contains(&format!("{orders_topic}.DLQ: 1 missing_user_id\n"))
            && listed.contains(&format!("{disputes_topic}.DLQ: 1 schema_invalid\n")),
        "{listed}"
    );
    assert_eq!(
        rows_per_shard(&up, "order_events").await,
        orders,
        "nothing doubled"
    );
    assert_eq!(
        rows_per_shard(&up, "dispute_events").await,
        disputes,
        "nothing doubled"
    );

    // A row deleted behind the audit's back is named.
    let mut deleted = 0;
    for pool in &up.pools {
        deleted += sqlx::query("DELETE FROM order_events WHERE order_id = 'ord_3'")
            .execute(pool)
            .await
            .unwrap()
            .rows_affected();
    }
    assert_eq!(deleted, 1);
    let (ok, out) = up.hookline(&["verify"], &[]).await;
    assert!(!ok, "verify passed with a row missing: {out}");
    assert!(
        out.contains("1 missing") && out.contains("event evt_3 of user user-3"),
        "{out}"
    );
    up.stop().await;
}

#[tokio::test]
async fn sample_traffic_reports_where_the_webhooks_went_and_exit_stops_everything() {
    let mut up = Up::launch(example_manifest, 6, &["--sample-traffic", "--exit"]).await;
    let status = tokio::time::timeout(2 * DEADLINE, up.child.wait())
        .await
        .unwrap()
        .unwrap();
    let (out, errors) = (std::fs::read_to_string(&up.stdout).unwrap(), up.errors());
    assert!(status.success(), "up exited with {status}: {out}{errors}");
    for line in [
        "sent 295 webhooks: 295 × 202",
        "25 duplicate deliveries recognised by the workers; 10 invalid webhooks quarantined to the DLQs (10 in all)",
        "pipeline stopped",
    ] {
        assert!(out.contains(line), "{line:?} not in {out}");
    }
    let orders = rows_per_shard(&up, "order_events").await;
    let disputes = rows_per_shard(&up, "dispute_events").await;
    assert_eq!(
        (orders[0] + orders[1], disputes[0] + disputes[1]),
        (200, 60)
    );
    assert!(
        out.contains(&format!(
            "  {:<16} {:>16} {:>16}",
            "order_events",
            format!("{0} / {0}", orders[0]),
            format!("{0} / {0}", orders[1])
        )),
        "{out}"
    );
    up.finish().await;
}

#[tokio::test]
async fn a_new_up_stops_the_processes_a_killed_up_left_behind() {
    let mut up = Up::start(|run| manifest(&format!("up-{run}.orders"), 2, "/id"), 2).await;
    let pid_file = up.logs.join(format!("worker-{}-0.pid", up.topic));
    let left = std::fs::read_to_string(&pid_file).unwrap();
    // `up` alone is killed: its workers and ingest run on, orphaned.
    std::process::Command::new("kill")
        .args(["-KILL", &up.child.id().unwrap().to_string()])
        .status()
        .unwrap();
    up.child.wait().await.unwrap();
    assert!(Path::new(&format!("/proc/{}", left.trim())).exists());

    let (child, group) = spawn_up(&up.args, &up.stdout, &up.stderr);
    up.child = child;
    up.groups.push(group);
    eventually("the left-behind worker stopped and replaced", || async {
        !Path::new(&format!("/proc/{}/cmdline", left.trim())).exists()
            || std::fs::read(format!("/proc/{}/cmdline", left.trim())).is_ok_and(|c| c.is_empty())
    })
    .await;
    assert!(
        up.errors()
            .contains("was left running by an earlier run; stopping it"),
        "{}",
        up.errors()
    );
    up.restarted(2).await;
    assert_ne!(std::fs::read_to_string(&pid_file).unwrap(), left);
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 10).await;
    eventually("10 rows", || async { rows(&up.pools).await == 10 }).await;
    up.stop().await;
}

#[tokio::test]
async fn a_changed_partition_count_is_applied_as_the_operator_would() {
    let up = Up::start(|run| manifest(&format!("up-{run}.orders"), 4, "/id"), 4).await;
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 10).await;
    eventually("10 rows", || async { rows(&up.pools).await == 10 }).await;

    // Fewer partitions than the broker has: the broker's count stands and the
    // four workers keep running, as the operator adopts it.
    write(
        &up.dir.path().join("pipeline.yaml"),
        &manifest(&up.topic, 2, "/id"),
    );
    eventually("up reports the decrease", || async {
        up.errors().contains(&format!(
            "topic {} has 4 partitions, more than the 2 of the manifest",
            up.topic
        ))
    })
    .await;
    up.restarted(2).await;

    // More partitions: this broker cannot grow a topic; up says so and runs on.
    write(
        &up.dir.path().join("pipeline.yaml"),
        &manifest(&up.topic, 6, "/id"),
    );
    eventually(
        "up reports that the broker cannot grow the topic",
        || async {
            up.errors().contains(&format!(
                "topic {} stays at 4 partitions: this broker does not implement CreatePartitions",
                up.topic
            ))
        },
    )
    .await;
    up.restarted(3).await;
    let (_, status) = up.hookline(&["status"], &[]).await;
    assert!(
        status.contains(&format!("topic {}: 4 partitions", up.topic)),
        "{status}"
    );
    send(&client, &up.ingest, 10, 20).await;
    eventually("20 rows", || async { rows(&up.pools).await == 20 }).await;
    up.stop().await;
}

#[tokio::test]
async fn replay_after_fixing_the_cause_stores_the_quarantined_events_once() {
    // A wrong pointer: every webhook is quarantined as missing its event id.
    let up = Up::start(
        |run| manifest(&format!("up-{run}.orders"), 2, "/event_id"),
        2,
    )
    .await;
    let client = reqwest::Client::new();
    send(&client, &up.ingest, 0, 10).await;
    let (_, listed) = up.hookline(&["dlq", "list"], &[]).await;
    assert!(listed.contains("10 missing_event_id"), "{listed}");
    assert_eq!(rows(&up.pools).await, 0);

    // The fix: the manifest points at the provider's id; `up` applies it.
    write(
        &up.dir.path().join("pipeline.yaml"),
        &manifest(&up.topic, 2, "/id"),
    );
    up.restarted(2).await;
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
    eventually("verify sees the 10 replayed events stored", || async {
        let (ok, out) = up.hookline(&["verify"], &[]).await;
        ok && out.contains("10 stored")
    })
    .await;
    assert_eq!(rows(&up.pools).await, 10, "stored once");
    up.stop().await;
}
