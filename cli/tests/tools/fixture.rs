//! A pipeline's topics and shards for one test of the tools, without its
//! processes: the test writes the records, rows and committed offsets itself,
//! so that it decides exactly what the DLQ holds and where the workers stand.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineManifest;
use hookline_contract::reason::Stage;
use hookline_contract::{Reason, partition_for};
use hookline_kafka::produce::{Producer, Record};
use hookline_kafka::reader::{Range, Reader};
use hookline_kafka::{ClientSettings, DeadLetter, Envelope};
use rdkafka::Message;
use rdkafka::message::OwnedHeaders;
use sqlx::{Executor, PgPool};

use crate::support::{env, write};

/// The stack's broker; the tests never skip when it is missing.
pub fn bootstrap() -> String {
    env("HOOKLINE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
}

/// One test's orders topic (with its DLQ) and, when asked, its two shards.
pub struct Fixture {
    pub topic: Topic,
    pub dir: tempfile::TempDir,
    admin: PgPool,
    pub pools: Vec<PgPool>,
    urls: Vec<String>,
}

/// An orders topic on the stack's broker, written and read as the pipeline
/// writes and reads it.
pub struct Topic {
    pub name: String,
    pub partitions: u32,
    pub kafka: ClientSettings,
    /// One idempotent producer for every record of the test: a producer per
    /// record costs a producer id each, and the broker's patience.
    producer: Producer,
}

/// One record of the main topic, as a test checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainRecord {
    pub partition: i32,
    pub key: String,
    pub event_id: String,
    pub provider_event_id: String,
    pub message_id: Option<String>,
}

/// What `hookline` did: its exit code and standard output and error.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Standard output as the JSON document of `--output json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not one JSON document ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The order event `evt_<n>` of user `user-<n mod 5>` and order `ord_<n>`.
pub fn order(n: usize, event_type: &str, created: i64) -> serde_json::Value {
    serde_json::json!({
        "id": format!("evt_{n}"), "type": event_type, "created": created,
        "data": {"user_id": format!("user-{}", n % 5), "order_id": format!("ord_{n}"),
                 "amount": 100, "currency": "eur", "status": event_type.trim_start_matches("order.")}
    })
}

impl Fixture {
    /// Creates the topics (an orders topic of `partitions` partitions and its
    /// DLQ) on the stack's broker, and two migrated shard databases when
    /// `shards`.
    pub async fn new(partitions: u32, shards: bool) -> Self {
        let admin_url = env(
            "HOOKLINE_PG_ADMIN_URL",
            "postgres://hookline:hookline@127.0.0.1:5432/postgres",
        );
        let admin = PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is unreachable ({e}); run `scripts/stack up`")
        });
        let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let base = admin_url.rsplit_once('/').unwrap().0.to_owned();
        let (mut urls, mut pools) = (Vec::new(), Vec::new());
        for shard in ["a", "b"] {
            let name = format!("hookline_tools_{run}_{shard}");
            if shards {
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
            }
            urls.push(format!("{base}/{name}"));
        }
        if shards {
            for url in &urls {
                let pool = PgPool::connect(url).await.unwrap();
                hookline_worker::store::migrate(&pool, chrono::Utc::now())
                    .await
                    .unwrap();
                pools.push(pool);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let fixture = Self {
            topic: Topic::new(&format!("tools-{run}.orders"), partitions),
            dir,
            admin,
            pools,
            urls,
        };
        fixture.write_manifest(&bootstrap());
        write(&fixture.secrets().join("pg-shard-a/url"), &fixture.urls[0]);
        write(&fixture.secrets().join("pg-shard-b/url"), &fixture.urls[1]);
        write(
            &fixture.secrets().join("provider-secrets/standard-webhooks"),
            crate::support::SECRET,
        );
        let manifest = PipelineManifest::read(&fixture.manifest()).unwrap();
        let kafka = ClientSettings::new(manifest.spec.kafka.bootstrap_servers.clone());
        let created = hookline::local::topics::reconcile(&manifest.spec, &kafka)
            .await
            .unwrap();
        assert_eq!(created.get(&fixture.topic.name), Some(&(partitions as i32)));
        fixture
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("pipeline.yaml")
    }

    pub fn secrets(&self) -> PathBuf {
        self.dir.path().join("secrets")
    }

    /// Adds the declared type `refunds` (and its topic `<orders>.refunds`,
    /// created on the broker) to the manifest.
    pub async fn declare_refunds(&self) -> String {
        self.declare(
            "refunds",
            "{providerEventId: /id, eventType: /type, eventTime: /created, userId: /data/user_id, entityId: /data/refund_id, status: /data/status}",
            "[refund.created, refund.updated, refund.succeeded]",
        )
        .await
    }

    /// Adds the declared type `issues`, GitHub's issue events, whose event id
    /// is the signed delivery id (no pointer), and its topic.
    pub async fn declare_issues(&self) -> String {
        self.declare(
            "issues",
            "{eventType: /action, eventTime: /issue/updated_at, userId: /repository/id, entityId: /issue/id}",
            "[opened, edited, closed]",
        )
        .await
    }

    /// Adds the declared type `name` with `fields` and `lifecycle` (YAML) and
    /// its topic `<orders>.<name>`, created on the broker; the topic's name.
    async fn declare(&self, name: &str, fields: &str, lifecycle: &str) -> String {
        let topic = format!("{}.{name}", self.topic.name);
        let partitions = self.topic.partitions;
        let text = std::fs::read_to_string(self.manifest()).unwrap();
        let (head, tail) = text.split_once("  shards:\n").unwrap();
        let head = head.replacen(
            "}]\n",
            &format!("}}, {{name: {topic}, eventType: {name}, partitions: {partitions}}}]\n"),
            1,
        );
        let declared = if head.contains("  eventTypes:\n") {
            String::new()
        } else {
            "  eventTypes:\n".to_owned()
        };
        write(
            &self.manifest(),
            &format!(
                "{head}{declared}    - name: {name}\n      schema: {{type: object}}\n      fields: {fields}\n      lifecycle: {lifecycle}\n  shards:\n{tail}"
            ),
        );
        let manifest = PipelineManifest::read(&self.manifest()).unwrap();
        hookline::local::topics::reconcile(&manifest.spec, &self.topic.kafka)
            .await
            .unwrap();
        topic
    }

    /// (Re)writes the manifest, its broker at `bootstrap`.
    pub fn write_manifest(&self, bootstrap: &str) {
        let text = format!(
            "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: tools}}\nspec:\n  kafka: {{bootstrapServers: \"{bootstrap}\"}}\n  topics: [{{name: {}, eventType: orders, partitions: {}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-shard-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-shard-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider-secrets}}}}\n",
            self.topic.name, self.topic.partitions
        );
        write(&self.manifest(), &text);
    }

    /// Runs `hookline <args> -f <manifest> --secrets-dir <secrets>`.
    pub async fn hookline(&self, args: &[&str]) -> Ran {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(args)
            .arg("-f")
            .arg(self.manifest())
            .arg("--secrets-dir")
            .arg(self.secrets())
            .output()
            .await
            .unwrap()
            .into()
    }

    /// Stores the event `payload` on its user's shard as a worker would (its
    /// row in `order_events`), without touching the order's state.
    pub async fn store_event(&self, payload: &serde_json::Value) {
        store_event(self.shard_of(user_of(payload)), payload).await;
    }

    /// Makes `payload` the order's state on its user's shard, whatever the
    /// state was: the test says which event the state names.
    pub async fn set_state(&self, payload: &serde_json::Value) {
        set_state(self.shard_of(user_of(payload)), payload).await;
    }

    /// The pool of `user`'s shard.
    pub fn shard_of(&self, user: &str) -> &PgPool {
        &self.pools[hookline_contract::shard_for(user, 2).unwrap() as usize]
    }

    /// Drops the shard databases.
    pub async fn finish(self) {
        for pool in self.pools {
            pool.close().await;
        }
        for url in &self.urls {
            let name = url.rsplit_once('/').unwrap().1;
            self.admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .unwrap();
        }
    }
}

impl Topic {
    pub fn new(name: &str, partitions: u32) -> Self {
        let kafka = ClientSettings::new(bootstrap());
        let producer =
            Producer::new(&kafka.producer("tools-test"), Duration::from_secs(10)).unwrap();
        Self {
            name: name.to_owned(),
            partitions,
            kafka,
            producer,
        }
    }

    pub fn dlq(&self) -> String {
        dlq_topic(&self.name)
    }

    fn envelope(&self, payload: &serde_json::Value) -> Envelope {
        Envelope {
            event_id: hookline_contract::event_id("shop", payload["id"].as_str().unwrap_or("")),
            event_type: payload["type"].as_str().unwrap_or("issue").to_owned(),
            source: "shop".into(),
            received_at: chrono::Utc::now(),
            partition_count: self.partitions,
            schema: "orders".into(),
            message_id: None,
        }
    }

    /// Produces `payload` to its user's partition of the main topic, as
    /// ingest does; the partition and offset.
    pub async fn produce(&self, payload: &serde_json::Value) -> (i32, i64) {
        let user = payload["data"]["user_id"].as_str().unwrap();
        let value = serde_json::to_vec(payload).unwrap();
        let acked = self
            .producer
            .send(Record {
                topic: &self.name,
                partition: partition_for(user.as_bytes(), self.partitions).map(|p| p as i32),
                key: Some(user.as_bytes()),
                value: Some(&value),
                headers: self.envelope(payload).to_headers(),
            })
            .await
            .unwrap();
        (acked.partition, acked.offset)
    }

    /// Dead-letters `payload` for `reason` as a worker does: its envelope,
    /// then the dead-letter context; the DLQ offset. No origin: these letters
    /// never came from the main topic, and an origin would make verify count
    /// the record there as dead-lettered.
    pub async fn dead_letter(&self, payload: &serde_json::Value, reason: Reason) -> i64 {
        self.send_dead_letter(payload, reason, None).await
    }

    /// Dead-letters the main topic's record at `origin` (partition, offset)
    /// with `payload`, as a worker does.
    pub async fn dead_letter_from(
        &self,
        payload: &serde_json::Value,
        reason: Reason,
        origin: (i32, i64),
    ) -> i64 {
        self.send_dead_letter(payload, reason, Some(origin)).await
    }

    /// Dead-letters `payload` of a delivery its source signed as
    /// `message_id`, keyed by `user`.
    pub async fn dead_letter_delivery(
        &self,
        payload: &serde_json::Value,
        reason: Reason,
        (message_id, user): (&str, &str),
    ) -> i64 {
        let mut envelope = self.envelope(payload);
        envelope.event_id = hookline_contract::event_id("gh", message_id);
        envelope.message_id = Some(message_id.to_owned());
        self.send(payload, reason, None, envelope, user).await
    }

    async fn send_dead_letter(
        &self,
        payload: &serde_json::Value,
        reason: Reason,
        origin: Option<(i32, i64)>,
    ) -> i64 {
        let user = payload["data"]["user_id"].as_str().unwrap_or("nobody");
        self.send(payload, reason, origin, self.envelope(payload), user)
            .await
    }

    async fn send(
        &self,
        payload: &serde_json::Value,
        reason: Reason,
        origin: Option<(i32, i64)>,
        envelope: Envelope,
        user: &str,
    ) -> i64 {
        let value = serde_json::to_vec(payload).unwrap();
        let letter = DeadLetter {
            topic: self.name.clone(),
            origin,
            stage: Stage::Write,
            reason,
            message: format!("refused as {reason} by the test"),
            at: chrono::Utc::now(),
        };
        let headers: OwnedHeaders = letter.append_to(envelope.to_headers());
        self.producer
            .send(Record {
                topic: &self.dlq(),
                partition: Some(0),
                key: Some(user.as_bytes()),
                value: Some(&value),
                headers,
            })
            .await
            .unwrap()
            .offset
    }

    /// Every record of the main topic.
    pub async fn main_records(&self) -> Vec<MainRecord> {
        let (kafka, topic, partitions) = (self.kafka.clone(), self.name.clone(), self.partitions);
        tokio::task::spawn_blocking(move || {
            let ranges: Vec<Range> = (0..partitions as i32)
                .map(|partition| Range {
                    partition,
                    start: 0,
                    end: i64::MAX,
                })
                .collect();
            let mut reader = Reader::open(
                &kafka,
                "tools-test",
                &topic,
                &ranges,
                Duration::from_secs(60),
            )
            .unwrap();
            let mut records = Vec::new();
            while let Some(message) = reader.next_record().unwrap() {
                let payload: serde_json::Value =
                    serde_json::from_slice(message.payload().unwrap()).unwrap();
                let header = |name: &str| {
                    hookline_kafka::envelope::header(message.headers(), name).map(str::to_owned)
                };
                records.push(MainRecord {
                    partition: message.partition(),
                    key: String::from_utf8_lossy(message.key().unwrap()).into_owned(),
                    event_id: header(hookline_contract::headers::EVENT_ID).unwrap(),
                    provider_event_id: payload["id"].as_str().unwrap_or_default().to_owned(),
                    message_id: header(hookline_contract::headers::MESSAGE_ID),
                });
            }
            records
        })
        .await
        .unwrap()
    }

    /// Commits `next` for `partition` in the workers' group, as a worker
    /// that has stored everything before it would.
    pub async fn commit(&self, partition: i32, next: i64) {
        hookline_kafka::offsets::commit(&self.kafka, &self.name, &self.name, partition, next)
            .await
            .unwrap();
    }
}

fn user_of(payload: &serde_json::Value) -> &str {
    payload["data"]["user_id"].as_str().unwrap()
}

/// Stores the order event `payload` in `order_events` of `pool`.
pub async fn store_event(pool: &PgPool, payload: &serde_json::Value) {
    sqlx::query(
        "INSERT INTO order_events (order_id, provider_event_id, event_id, user_id, event_type, created_at, received_at, payload)
         VALUES ($1, $2, $3, $4, $5, to_timestamp($6), now(), $7)",
    )
    .bind(payload["data"]["order_id"].as_str().unwrap())
    .bind(payload["id"].as_str().unwrap())
    .bind(hookline_contract::event_id("shop", payload["id"].as_str().unwrap()))
    .bind(user_of(payload))
    .bind(payload["type"].as_str().unwrap())
    .bind(payload["created"].as_i64().unwrap() as f64)
    .bind(payload)
    .execute(pool)
    .await
    .unwrap();
}

/// Makes the order event `payload` its order's state in `orders` of `pool`.
pub async fn set_state(pool: &PgPool, payload: &serde_json::Value) {
    sqlx::query(
        "INSERT INTO orders (order_id, user_id, status, amount, currency, last_event_id, last_event_type, last_event_at)
         VALUES ($1, $2, $3, 100, 'eur', $4, $5, to_timestamp($6))
         ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status,
             last_event_id = EXCLUDED.last_event_id, last_event_type = EXCLUDED.last_event_type,
             last_event_at = EXCLUDED.last_event_at",
    )
    .bind(payload["data"]["order_id"].as_str().unwrap())
    .bind(user_of(payload))
    .bind(payload["data"]["status"].as_str().unwrap())
    .bind(payload["id"].as_str().unwrap())
    .bind(payload["type"].as_str().unwrap())
    .bind(payload["created"].as_i64().unwrap() as f64)
    .execute(pool)
    .await
    .unwrap();
}

/// Stores the event of the declared type `type_` of `entity` in `events` of
/// `pool`, as a worker would.
pub async fn store_declared(
    pool: &PgPool,
    type_: &str,
    entity: &str,
    id: &str,
    event_type: &str,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO events (type, entity_id, provider_event_id, event_id, user_id, event_type, created_at, received_at, payload)
         VALUES ($1, $2, $3, $4, 'user-0', $5, to_timestamp($6), now(), '{}')",
    )
    .bind(type_)
    .bind(entity)
    .bind(id)
    .bind(hookline_contract::event_id("shop", id))
    .bind(event_type)
    .bind(at as f64)
    .execute(pool)
    .await
    .unwrap();
}

/// Makes the event `id` of the declared type `type_` the state of `entity`
/// in `entities` of `pool`, whatever the state was.
pub async fn set_declared_state(
    pool: &PgPool,
    type_: &str,
    entity: &str,
    id: &str,
    event_type: &str,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO entities (type, entity_id, user_id, status, last_event_id, last_event_type, last_event_at, state)
         VALUES ($1, $2, 'user-0', NULL, $3, $4, to_timestamp($5), '{}')
         ON CONFLICT (type, entity_id) DO UPDATE SET last_event_id = EXCLUDED.last_event_id,
             last_event_type = EXCLUDED.last_event_type, last_event_at = EXCLUDED.last_event_at",
    )
    .bind(type_)
    .bind(entity)
    .bind(id)
    .bind(event_type)
    .bind(at as f64)
    .execute(pool)
    .await
    .unwrap();
}
