//! A topic and two shard databases per test, with the worker processes of
//! [`crate::workers`]: the real broker, the real PostgreSQL, the real
//! `hookline-worker` binary.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use hookline_contract::{event_id, partition_for};
use hookline_kafka::admin::{KafkaAdmin, RdKafkaAdmin};
use hookline_kafka::offsets::{self, PartitionOffsets};
use hookline_kafka::produce::{Producer, Record};
use hookline_kafka::{ClientSettings, Envelope};
use rdkafka::message::OwnedHeaders;
use serde_json::{Value, json};

use crate::support::TestDb;
use crate::workers::{Membership, WorkerProcess, Workers};

pub use hookline_testkit::{DEADLINE, eventually};
pub const PARTITIONS: i32 = 4;

pub fn bootstrap() -> String {
    std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The clients of the tests reach the broker as the worker does.
pub fn kafka() -> ClientSettings {
    ClientSettings::new(bootstrap())
}

/// One event to produce.
#[derive(Debug, Clone)]
pub struct Ev {
    pub user: String,
    pub id: String,
    pub entity: String,
    pub status: String,
    pub at: i64,
    pub currency: String,
    /// The provider's event type, for a declared type's events.
    pub event_type: Option<String>,
}

/// An order event `id` of order `entity` for `user`.
pub fn ev(user: &str, id: &str, entity: &str) -> Ev {
    Ev {
        user: user.into(),
        id: id.into(),
        entity: entity.into(),
        status: "paid".into(),
        at: 1_700_000_000,
        currency: "eur".into(),
        event_type: None,
    }
}

impl Ev {
    pub fn at(mut self, at: i64) -> Self {
        self.at = at;
        self
    }
    pub fn status(mut self, status: &str) -> Self {
        self.status = status.into();
        self
    }
    pub fn typed(mut self, event_type: &str) -> Self {
        self.event_type = Some(event_type.into());
        self
    }
}

/// The declared type of the `refunds` pipelines, as a manifest declares it.
pub const REFUNDS_TYPE: &str = "  eventTypes:
    - name: refunds
      schema: {type: object, required: [id, type, created, data], properties: {data: {type: object, required: [refund_id]}}}
      fields: {providerEventId: /id, eventType: /type, eventTime: /created, userId: /data/user_id, entityId: /data/refund_id, status: /data/status}
      lifecycle: [refund.created, refund.updated, refund.succeeded, refund.failed]
";

/// A pipeline of one topic and two shards, private to a test.
pub struct Pipeline {
    pub topic: String,
    pub event_type: &'static str,
    pub shards: [TestDb; 2],
    pub dir: tempfile::TempDir,
    producer: Producer,
}

impl Pipeline {
    /// Orders, with the shards reached directly.
    pub async fn orders() -> Self {
        Self::new("orders", None).await
    }

    /// A pipeline of `event_type`; shard b is reached through `shard_b_url`
    /// when given (a proxy a test can stop).
    pub async fn new(event_type: &'static str, shard_b_via: Option<u16>) -> Self {
        let topic = format!("{event_type}-{}", uuid::Uuid::new_v4().simple());
        create_topics(&[(&topic, PARTITIONS), (&format!("{topic}.DLQ"), 1)]).await;
        let shards = [TestDb::empty().await, TestDb::empty().await];
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        let shard_b_url = match shard_b_via {
            Some(port) => shards[1]
                .url
                .replace("127.0.0.1:5432", &format!("127.0.0.1:{port}")),
            None => shards[1].url.clone(),
        };
        for (name, url) in [("pg-a", shards[0].url.clone()), ("pg-b", shard_b_url)] {
            std::fs::create_dir_all(secrets.join(name)).unwrap();
            std::fs::write(secrets.join(name).join("url"), url).unwrap();
        }
        let manifest = format!(
            "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {{name: t}}\nspec:\n  kafka: {{bootstrapServers: \"{}\"}}\n  topics: [{{name: {topic}, eventType: {event_type}, partitions: {PARTITIONS}}}]\n  shards:\n    - {{name: a, databaseUrlSecretRef: {{name: pg-a, key: url}}}}\n    - {{name: b, databaseUrlSecretRef: {{name: pg-b, key: url}}}}\n  ingest: {{signingSecretRef: {{name: provider}}}}\n{}",
            bootstrap(),
            if event_type == "refunds" {
                REFUNDS_TYPE
            } else {
                ""
            },
        );
        std::fs::write(dir.path().join("pipeline.yaml"), manifest).unwrap();
        let producer = Producer::new(&kafka().producer("hookline-worker-test"), DEADLINE).unwrap();
        Self {
            topic,
            event_type,
            shards,
            dir,
            producer,
        }
    }

    /// One worker pinned to each partition, as `hookline up` runs them.
    pub async fn workers(&self) -> Workers {
        Workers::start(self, 100).await
    }

    /// Pinned workers writing batches of at most `batch_size` records: small
    /// batches make a stream last long enough to interrupt it.
    pub async fn workers_with_batch(&self, batch_size: usize) -> Workers {
        Workers::start(self, batch_size).await
    }

    /// A worker pinned to `partition` alone.
    pub async fn pinned(&self, partition: i32, batch_size: usize) -> WorkerProcess {
        WorkerProcess::start(self, Membership::Pinned(partition), batch_size).await
    }

    /// A member of the topic's consumer group with static membership id
    /// `instance`, as the Kubernetes workers run.
    pub async fn group_worker(&self, instance: &str) -> WorkerProcess {
        WorkerProcess::start(self, Membership::Group(instance.to_owned()), 100).await
    }

    /// A dynamic member of the topic's consumer group, as the Kubernetes
    /// workers run; `name` names its log.
    pub async fn dynamic_worker(&self, name: &str) -> WorkerProcess {
        WorkerProcess::start(self, Membership::Dynamic(name.to_owned()), 100).await
    }

    pub fn manifest(&self) -> std::path::PathBuf {
        self.dir.path().join("pipeline.yaml")
    }

    pub fn secrets(&self) -> std::path::PathBuf {
        self.dir.path().join("secrets")
    }

    /// The payload of `ev` for this pipeline's event type.
    pub fn payload(&self, ev: &Ev) -> Value {
        match self.event_type {
            "orders" => json!({
                "id": ev.id, "type": "order.paid", "created": ev.at,
                "data": {"user_id": ev.user, "order_id": ev.entity, "amount": 1250,
                         "currency": ev.currency, "status": ev.status}
            }),
            "refunds" => json!({
                "id": ev.id, "type": ev.event_type.as_deref().unwrap_or("refund.updated"),
                "created": ev.at,
                "data": {"user_id": ev.user, "refund_id": ev.entity, "status": ev.status}
            }),
            _ => json!({
                "id": ev.id, "type": "dispute.updated", "created": ev.at,
                "data": {"user_id": ev.user, "dispute_id": ev.entity, "order_id": "o1",
                         "amount": 1250, "currency": ev.currency, "status": ev.status}
            }),
        }
    }

    /// Produces `ev` as ingest would: on its user's partition, with the envelope.
    pub async fn produce(&self, ev: &Ev) {
        let value = serde_json::to_vec(&self.payload(ev)).unwrap();
        let partition = partition_for(ev.user.as_bytes(), PARTITIONS as u32).unwrap() as i32;
        self.produce_raw(
            Some(&ev.user),
            &value,
            Some(partition),
            Some(self.envelope(ev)),
        )
        .await;
    }

    pub fn envelope(&self, ev: &Ev) -> Envelope {
        Envelope {
            event_id: event_id("test", &ev.id),
            event_type: "order.paid".into(),
            source: "test".into(),
            received_at: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap(),
            partition_count: PARTITIONS as u32,
            schema: "test".into(),
            message_id: None,
        }
    }

    /// Produces a record exactly as given.
    pub async fn produce_raw(
        &self,
        key: Option<&str>,
        value: &[u8],
        partition: Option<i32>,
        envelope: Option<Envelope>,
    ) {
        let sent = self
            .producer
            .send(Record {
                topic: &self.topic,
                partition,
                key: key.map(str::as_bytes),
                value: Some(value),
                headers: envelope.map_or_else(OwnedHeaders::new, |e| e.to_headers()),
            })
            .await;
        if let Err(error) = sent {
            panic!("producing to {} failed: {error}", self.topic);
        }
    }

    /// Rows of `table` on shard `shard` (0 = a, 1 = b).
    pub async fn count(&self, shard: usize, table: &str) -> i64 {
        // Before the worker migrated the shard the table does not exist yet.
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.shards[shard].pool)
            .await
            .unwrap_or(0)
    }

    pub async fn total(&self, table: &str) -> i64 {
        self.count(0, table).await + self.count(1, table).await
    }

    /// The group's committed offset per partition (absent when none).
    pub async fn committed(&self) -> HashMap<i32, i64> {
        self.offsets()
            .await
            .into_iter()
            .filter_map(|p| Some((p.partition, p.committed?)))
            .collect()
    }

    /// The end offset of each partition of the topic.
    pub async fn ends(&self) -> HashMap<i32, i64> {
        self.offsets()
            .await
            .into_iter()
            .map(|p| (p.partition, p.end))
            .collect()
    }

    async fn offsets(&self) -> Vec<PartitionOffsets> {
        offsets::offsets(&kafka(), &self.topic, &self.topic)
            .await
            .unwrap_or_else(|e| panic!("offsets of {}: {e}", self.topic))
    }

    pub fn dlq(&self) -> String {
        format!("{}.DLQ", self.topic)
    }

    pub async fn drop_shards(self) {
        let [a, b] = self.shards;
        a.drop().await;
        b.drop().await;
    }
}

pub async fn create_topics(topics: &[(&str, i32)]) {
    let admin = RdKafkaAdmin::new(&kafka(), "hookline-worker-test").unwrap();
    for (name, partitions) in topics {
        let created = tokio::time::timeout(
            DEADLINE,
            admin.create(name, *partitions, &Default::default()),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the broker at {} did not answer; run `scripts/stack up`",
                bootstrap()
            )
        });
        if let Err(error) = created {
            panic!("creating {name}: {error}");
        }
    }
}
