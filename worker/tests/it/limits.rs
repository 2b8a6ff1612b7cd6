//! What must never stop a partition for good or grow without bound: a dead
//! letter the broker refuses, an ack that comes late, a batch too slow for
//! its write deadline, a backlog of large records. Each against the real
//! broker, the real PostgreSQL and the `hookline-worker` binary, with the
//! worker's own flags (so its own small spawner here).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use hookline_contract::headers::dlq as cut_headers;
use hookline_contract::{headers as h, partition_for};
use hookline_kafka::admin::{KafkaAdmin, RdKafkaAdmin};
use hookline_kafka::offsets;
use hookline_kafka::produce::{Producer, Record};
use hookline_kafka::reader::{Range, Reader};
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedHeaders};
use serde_json::json;
use sqlx::Executor;
use tokio::process::{Child, Command};

use hookline_kafka::topics::TopicSettings;
use hookline_kafka::{ClientSettings, Envelope};
use hookline_testkit::PrivateBroker;

use crate::pipeline::{DEADLINE, Ev, PARTITIONS, Pipeline, ev, eventually, kafka};
use crate::support::TestDb;

/// Where a worker's manifest and secrets are, and its log goes.
struct Files {
    manifest: PathBuf,
    secrets: PathBuf,
    dir: PathBuf,
}

/// A `hookline-worker` pinned to one partition, with extra flags.
struct Worker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Worker {
    /// Starts a worker of `pipeline` pinned to `partition`, and waits until
    /// it is consuming.
    async fn start(pipeline: &Pipeline, partition: i32, extra: &[&str]) -> Self {
        let files = Files {
            manifest: pipeline.manifest(),
            secrets: pipeline.secrets(),
            dir: pipeline.dir.path().to_owned(),
        };
        Self::start_with(&files, &pipeline.topic, partition, extra).await
    }

    async fn start_with(files: &Files, topic: &str, partition: i32, extra: &[&str]) -> Self {
        let port = hookline_testkit::free_port();
        let log = files.dir.join(format!("limits-{partition}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hookline-worker"))
            .arg("--pipeline")
            .arg(&files.manifest)
            .arg("--secrets-dir")
            .arg(&files.secrets)
            .args(["--topic", topic])
            .args(["--partition", &partition.to_string()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--fetch-wait", "10ms", "--max-backoff", "500ms"])
            .args(["--commit-interval", "100ms", "--shard-connections", "1"])
            .args(extra)
            .env("RUST_LOG", "info,hookline_worker=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let worker = Self { child, port, log };
        eventually("the worker is ready", || async {
            worker.get("/readyz").await.is_some_and(|(s, _)| s == 200)
        })
        .await;
        worker
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = format!("127.0.0.1:{}", self.port);
        let mut stream = tokio::net::TcpStream::connect(&addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        let status = answer.split(' ').nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n")?.1.to_owned();
        Some((status, body))
    }

    /// The sum of the `/metrics` lines starting with `prefix` (0 when none).
    async fn metric(&self, prefix: &str) -> f64 {
        let Some((_, text)) = self.get("/metrics").await else {
            return 0.0;
        };
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// SIGTERM, and a clean exit.
    async fn terminate(mut self) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
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

fn partition_of(user: &str) -> i32 {
    partition_for(user.as_bytes(), PARTITIONS as u32).unwrap() as i32
}

/// A record of the DLQ: value and headers.
struct Letter {
    value: Vec<u8>,
    headers: HashMap<String, String>,
}

/// Every record of the one-partition DLQ `topic`.
async fn letters(kafka: &ClientSettings, topic: &str) -> Vec<Letter> {
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let group = format!("dlq-reader-{}", uuid::Uuid::new_v4().simple());
        let all = Range {
            partition: 0,
            start: 0,
            end: i64::MAX,
        };
        let mut reader = Reader::open(&kafka, &group, &topic, &[all], DEADLINE).unwrap();
        let mut letters = Vec::new();
        while let Some(message) = reader.next_record().unwrap() {
            let headers = message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            let value = h.value.unwrap_or_default();
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(value).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            letters.push(Letter {
                value: message.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        letters
    })
    .await
    .unwrap()
}

/// Waits until `partition`'s committed offset reaches its end.
async fn committed_to_the_end(kafka: &ClientSettings, topic: &str, partition: i32) {
    eventually("offsets committed to the end", || async {
        offsets::offsets(kafka, topic, topic)
            .await
            .unwrap()
            .iter()
            .any(|p| p.partition == partition && p.committed == Some(p.end))
    })
    .await;
}

/// The group's committed offset of `partition` (the next record to read).
async fn committed(kafka: &ClientSettings, topic: &str, partition: i32) -> Option<i64> {
    offsets::offsets(kafka, topic, topic)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.partition == partition)
        .and_then(|p| p.committed)
}

/// A topic of 4 partitions and no DLQ, on a broker of the test's own, with
/// two shards. A missing DLQ makes librdkafka give its records up and bump
/// its producer epoch, which tansu 0.6.0 answers by panicking and failing
/// every request after (see the design notes): never on the shared broker.
struct WithoutDlq {
    _broker: PrivateBroker,
    kafka: ClientSettings,
    topic: String,
    shards: [TestDb; 2],
    files: Files,
    _dir: tempfile::TempDir,
    producer: Producer,
}

impl WithoutDlq {
    async fn new() -> Self {
        let broker = PrivateBroker::start().await;
        let kafka = ClientSettings::new(&broker.bootstrap);
        let topic = format!("orders-{}", uuid::Uuid::new_v4().simple());
        let admin = RdKafkaAdmin::new(&kafka, "hookline-worker-test").unwrap();
        tokio::time::timeout(
            DEADLINE,
            admin.create(&topic, PARTITIONS, &TopicSettings::default()),
        )
        .await
        .unwrap()
        .unwrap();
        let shards = [TestDb::empty().await, TestDb::empty().await];
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        for (name, db) in [("pg-a", &shards[0]), ("pg-b", &shards[1])] {
            std::fs::create_dir_all(secrets.join(name)).unwrap();
            std::fs::write(secrets.join(name).join("url"), &db.url).unwrap();
        }
        let manifest = dir.path().join("pipeline.yaml");
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: t}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: orders, partitions: {PARTITIONS}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider}}}}\n",
                broker.bootstrap
            ),
        )
        .unwrap();
        let producer = Producer::new(&kafka.producer("hookline-worker-test"), DEADLINE).unwrap();
        let files = Files {
            manifest,
            secrets,
            dir: dir.path().to_owned(),
        };
        Self {
            _broker: broker,
            kafka,
            topic,
            shards,
            files,
            _dir: dir,
            producer,
        }
    }

    fn dlq(&self) -> String {
        format!("{}.DLQ", self.topic)
    }

    async fn create_dlq(&self) {
        let admin = RdKafkaAdmin::new(&self.kafka, "hookline-worker-test").unwrap();
        admin
            .create(&self.dlq(), 1, &TopicSettings::default())
            .await
            .unwrap();
    }

    /// Produces `value` on `user`'s partition, with a valid envelope or none.
    async fn produce(&self, user: &str, value: &[u8], envelope: Option<Envelope>) {
        self.producer
            .send(Record {
                topic: &self.topic,
                partition: Some(partition_of(user)),
                key: Some(user.as_bytes()),
                value: Some(value),
                headers: envelope.map_or_else(OwnedHeaders::new, |e| e.to_headers()),
            })
            .await
            .unwrap();
    }

    /// A valid `order.paid` event `id` of `user`.
    async fn produce_event(&self, user: &str, id: &str) {
        let payload = json!({
            "id": id, "type": "order.paid", "created": 1_700_000_000,
            "data": {"user_id": user, "order_id": id, "amount": 1250,
                     "currency": "eur", "status": "paid"}
        });
        let envelope = Envelope {
            event_id: hookline_contract::event_id("test", id),
            event_type: "order.paid".into(),
            source: "test".into(),
            received_at: chrono::Utc::now(),
            partition_count: PARTITIONS as u32,
            schema: "test".into(),
            message_id: None,
        };
        let value = serde_json::to_vec(&payload).unwrap();
        self.produce(user, &value, Some(envelope)).await;
    }

    async fn stored(&self) -> i64 {
        let mut total = 0;
        for shard in &self.shards {
            total += sqlx::query_scalar::<_, i64>("SELECT count(*) FROM order_events")
                .fetch_one(&shard.pool)
                .await
                .unwrap_or(0);
        }
        total
    }

    async fn drop_shards(self) {
        let [a, b] = self.shards;
        a.drop().await;
        b.drop().await;
    }
}

#[tokio::test]
async fn a_missing_dlq_stops_its_partition_loudly_until_it_exists() {
    let setup = WithoutDlq::new().await;
    let user = "user-1";
    let partition = partition_of(user);
    setup.produce_event(user, "evt_before").await;
    setup.produce(user, b"{}", None).await; // offset 1: no envelope
    setup.produce_event(user, "evt_after").await;
    let worker = Worker::start_with(&setup.files, &setup.topic, partition, &[]).await;

    // librdkafka gives up on a topic the broker does not know after
    // `topic.metadata.propagation.max.ms` (30 s): from then on, loudly.
    eventually("/readyz says why the partition stopped", || async {
        worker
            .get("/readyz")
            .await
            .is_some_and(|(status, body)| status == 503 && body.contains("stopped at offset 1"))
    })
    .await;
    assert_eq!(
        worker.metric("hookline_worker_dead_letter_blocked").await,
        1.0
    );
    let logged = worker.logged();
    assert!(
        // Text or JSON lines, whichever the worker writes.
        logged.contains("the DLQ refuses a dead letter")
            && (logged.contains("offset=1") || logged.contains("\"offset\":1")),
        "{logged}"
    );
    // Nothing committed past the record. (The event after it, in the same
    // batch, may be stored already: written again later, it is found stored.)
    let at = committed(&setup.kafka, &setup.topic, partition).await;
    assert!(at.is_none_or(|next| next <= 1), "committed {at:?}");

    setup.create_dlq().await;
    eventually("the partition moves again once the DLQ exists", || async {
        setup.stored().await == 2
    })
    .await;
    committed_to_the_end(&setup.kafka, &setup.topic, partition).await;
    eventually("ready again", || async {
        worker.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    assert_eq!(
        worker.metric("hookline_worker_dead_letter_blocked").await,
        0.0
    );
    // However many attempts and timeouts it took: one letter.
    let letters = letters(&setup.kafka, &setup.dlq()).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].headers[h::dlq::OFFSET], "1");
    worker.terminate().await;
    setup.drop_shards().await;
}

#[tokio::test]
async fn a_dead_letter_whose_ack_timed_out_is_waited_for_not_sent_again() {
    // Without its topic, the letter waits in the producer's queue and its ack
    // times out (10 s) while librdkafka still hopes for the topic (30 s).
    let setup = WithoutDlq::new().await;
    let user = "user-2";
    let partition = partition_of(user);
    setup.produce(user, b"not an envelope", None).await;
    setup.produce_event(user, "evt_after").await;
    let worker = Worker::start_with(&setup.files, &setup.topic, partition, &[]).await;
    eventually("two acks timed out", || async {
        worker
            .metric("hookline_worker_batch_retries_total{reason=\"dlq_ack_timeout\"}")
            .await
            >= 2.0
    })
    .await;

    setup.create_dlq().await;
    committed_to_the_end(&setup.kafka, &setup.topic, partition).await;
    assert_eq!(setup.stored().await, 1);
    // Letters sent before the one acked come first: all are in by now.
    let letters = letters(&setup.kafka, &setup.dlq()).await;
    assert_eq!(letters.len(), 1, "one letter, not one per attempt");
    assert_eq!(letters[0].value, b"not an envelope");
    assert_eq!(letters[0].headers[h::dlq::REASON], "undecodable");
    worker.terminate().await;
    setup.drop_shards().await;
}

#[tokio::test]
async fn a_dead_letter_too_large_for_the_dlq_is_kept_as_a_cut_copy() {
    let pipeline = Pipeline::orders().await;
    let user = "user-3";
    let partition = partition_of(user);
    // 1.5 MiB for a DLQ that takes 1 MiB (`--dlq-max-bytes`, as a DLQ topic's
    // max.message.bytes would be). tansu enforces no size limit of its own
    // (not even a topic's max.message.bytes), so the producer's limit is the
    // refusal a real run can see here; a broker's MESSAGE_TOO_LARGE is the
    // same error code and takes the same path.
    let value: Vec<u8> = (0..3 << 19).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let mut settings = kafka().producer("hookline-worker-test-large");
    settings.set("message.max.bytes", (8 << 20).to_string());
    let producer = Producer::new(&settings, DEADLINE).unwrap();
    producer
        .send(Record {
            topic: &pipeline.topic,
            partition: Some(partition),
            key: Some(user.as_bytes()),
            value: Some(&value),
            headers: OwnedHeaders::new(),
        })
        .await
        .unwrap();
    pipeline.produce(&ev(user, "evt_after", "ord_1")).await;
    let worker = Worker::start(&pipeline, partition, &["--dlq-max-bytes", "1048576"]).await;

    eventually("the event after the large record stored", || async {
        pipeline.total("order_events").await == 1
    })
    .await;
    committed_to_the_end(&kafka(), &pipeline.topic, partition).await;
    let letters = letters(&kafka(), &pipeline.dlq()).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    let headers = &letter.headers;
    assert_eq!(headers[h::dlq::REASON], "dead_letter_too_large");
    assert_eq!(headers[cut_headers::ORIGINAL_REASON], "undecodable");
    assert_eq!(
        headers[cut_headers::ORIGINAL_BYTES],
        value.len().to_string()
    );
    assert_eq!(
        headers[cut_headers::ORIGINAL_SHA256],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&value))
    );
    assert_eq!(headers[h::dlq::TOPIC], pipeline.topic);
    assert_eq!(headers[h::dlq::PARTITION], partition.to_string());
    assert_eq!(headers[h::dlq::OFFSET], "0");
    assert!(letter.value.len() > 1000 << 10 && letter.value.len() < 1 << 20);
    assert!(
        value.starts_with(&letter.value),
        "the copy is the value's beginning"
    );
    assert_eq!(
        worker
            .metric("hookline_worker_dead_lettered_total{reason=\"dead_letter_too_large\"}")
            .await,
        1.0
    );
    worker.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn a_batch_too_slow_for_its_write_deadline_is_split_until_it_fits() {
    let pipeline = Pipeline::orders().await;
    let user = "user-4";
    let partition = partition_of(user);
    // Every row of `orders` takes 20 ms: 200 events take 4 s in one
    // transaction, past the 1 s deadline; 25 take half a second.
    for shard in &pipeline.shards {
        hookline_worker::store::migrate(&shard.pool, chrono::Utc::now())
            .await
            .unwrap();
        shard
            .pool
            .execute(
                "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$; \
                 CREATE TRIGGER slow BEFORE INSERT ON orders \
                 FOR EACH ROW EXECUTE FUNCTION slow_row();",
            )
            .await
            .unwrap();
    }
    let total = 200;
    for i in 0..total {
        let event: Ev = ev(user, &format!("evt_{i}"), &format!("ord_{i}"));
        pipeline.produce(&event).await;
    }
    // Produced before the worker starts: its first fetch makes one batch.
    let worker = Worker::start(
        &pipeline,
        partition,
        &["--write-timeout", "1s", "--batch-size", "500"],
    )
    .await;
    eventually("every event stored", || async {
        pipeline.total("order_events").await == total
    })
    .await;
    committed_to_the_end(&kafka(), &pipeline.topic, partition).await;
    assert!(worker.metric("hookline_worker_batch_splits_total").await >= 1.0);
    assert_eq!(pipeline.total("orders").await, total);
    worker.terminate().await;
    pipeline.drop_shards().await;
}

#[tokio::test]
async fn worker_memory_is_bounded_by_batch_bytes_not_by_the_backlog() {
    let _alone = crate::support::BROKER_HEAVY_OR_TIMED.lock().await;
    let pipeline = Pipeline::orders().await;
    let user = "user-5";
    let partition = partition_of(user);
    let batch_bytes: u64 = 4 << 20;
    // 500 events of 900 KiB (450 MB) waiting before the worker starts: the
    // backlog is a hundred times the batch.
    let filler: String = (0..900 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let events = 500;
    for i in 0..events {
        let event = ev(user, &format!("evt_{i}"), &format!("ord_{i}"));
        let mut payload = pipeline.payload(&event);
        payload["notes"] = json!(filler);
        let value = serde_json::to_vec(&payload).unwrap();
        pipeline
            .produce_raw(
                Some(user),
                &value,
                Some(partition),
                Some(pipeline.envelope(&event)),
            )
            .await;
    }
    let worker = Worker::start(
        &pipeline,
        partition,
        &[
            "--batch-bytes",
            &batch_bytes.to_string(),
            "--batch-size",
            "500",
        ],
    )
    .await;
    // 450 MB through two jsonb columns takes a while on a busy machine: a
    // deadline of its own, longer than the usual one.
    let deadline = tokio::time::Instant::now() + 5 * DEADLINE;
    while pipeline.total("order_events").await < events {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every event stored within {:?}",
            5 * DEADLINE
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    committed_to_the_end(&kafka(), &pipeline.topic, partition).await;
    let peak = worker.peak_rss();
    println!(
        "peak resident memory with {events} events of 900 KiB and --batch-bytes {batch_bytes}: {} MiB",
        peak >> 20
    );
    // What the worker holds at most: about one batch queued in librdkafka
    // and one more in its fetch; the batch as records, as parsed payloads,
    // and as the statement's parameters on their way to PostgreSQL; with a
    // record of slack each. Eight batches over the worker's own footprint
    // (code, runtimes, pools: about 40 MiB idle).
    let bound = (64 << 20) + 8 * batch_bytes;
    assert!(
        peak < bound,
        "peak resident memory {} MiB, over the bound of {} MiB",
        peak >> 20,
        bound >> 20
    );
    worker.terminate().await;
    pipeline.drop_shards().await;
}
