//! Pipelines for tests and examples, as builders:
//! `fixtures::pipeline().with_partitions("orders.webhooks", 6).build()`.

use hookline_contract::pipeline::{
    DeclaredType, DeletionPolicy, FieldPointers, IngestNetworkPolicy, IngestSpec, KafkaSasl,
    KafkaSpec, KafkaTls, PipelineSpec, SaslMechanism, SecretKeyRef, SecretRef, ShardSpec,
    SourceScheme, SourceSpec, TopicSpec, WebhookPipeline,
};

/// A valid pipeline `payments` in namespace `default`: `orders.webhooks` (4
/// partitions) and `disputes.webhooks` (2), two shards.
pub fn pipeline() -> PipelineBuilder {
    PipelineBuilder {
        name: "payments".into(),
        topics: vec![
            topic("orders.webhooks", "orders", 4),
            topic("disputes.webhooks", "disputes", 2),
        ],
        shards: 2,
        shard_pool: None,
        shard_max_connections: None,
        shard_ca: None,
        deletion_policy: DeletionPolicy::Retain,
        network_policy: false,
        kafka_tls: None,
        kafka_sasl: None,
        bootstrap: "kafka:9092".into(),
        event_types: Vec::new(),
        sources: Vec::new(),
        uid: "6c0f6b1e-0000-4000-8000-000000000001".into(),
    }
}

fn topic(name: &str, event_type: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        event_type: event_type.into(),
        partitions,
        pointers: Default::default(),
        invalid_policy: Default::default(),
        adopt: false,
    }
}

/// A declared type `name` read at the usual pointers, with a lifecycle.
pub fn declared(name: &str) -> DeclaredType {
    DeclaredType {
        name: name.into(),
        schema: serde_json::json!({"type": "object", "required": ["id", "data"]}),
        fields: FieldPointers {
            provider_event_id: Some("/id".into()),
            event_type: "/type".into(),
            event_time: "/created".into(),
            user_id: "/data/user_id".into(),
            entity_id: "/data/id".into(),
            status: Some("/data/status".into()),
        },
        lifecycle: vec![format!("{name}.created"), format!("{name}.updated")],
    }
}

/// Changes one thing at a time of a valid pipeline.
#[derive(Debug, Clone)]
pub struct PipelineBuilder {
    name: String,
    topics: Vec<TopicSpec>,
    shards: usize,
    shard_pool: Option<i32>,
    shard_max_connections: Option<i32>,
    shard_ca: Option<SecretKeyRef>,
    deletion_policy: DeletionPolicy,
    network_policy: bool,
    kafka_tls: Option<KafkaTls>,
    kafka_sasl: Option<KafkaSasl>,
    bootstrap: String,
    event_types: Vec<DeclaredType>,
    sources: Vec<SourceSpec>,
    uid: String,
}

impl PipelineBuilder {
    pub fn named(mut self, name: &str, uid: &str) -> Self {
        self.name = name.into();
        self.uid = uid.into();
        self
    }

    /// Sets the partitions of `topic`, adding the topic if it is new; a new
    /// topic's event type is the name's first part (`refunds.webhooks`:
    /// `refunds`), declared when it is not built in.
    pub fn with_partitions(mut self, topic_name: &str, partitions: i32) -> Self {
        match self.topics.iter_mut().find(|t| t.name == topic_name) {
            Some(t) => t.partitions = partitions,
            None => {
                let event_type = topic_name
                    .split('.')
                    .next()
                    .unwrap_or(topic_name)
                    .to_owned();
                if hookline_contract::event_types::lookup(&event_type).is_none()
                    && !self.event_types.iter().any(|t| t.name == event_type)
                {
                    self.event_types.push(declared(&event_type));
                }
                self.topics.push(topic(topic_name, &event_type, partitions));
            }
        }
        self
    }

    pub fn without_topic(mut self, topic_name: &str) -> Self {
        self.topics.retain(|t| t.name != topic_name);
        self
    }

    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Every shard's `poolSize` and `maxConnections`.
    pub fn with_shard_pools(mut self, pool_size: i32, max_connections: Option<i32>) -> Self {
        self.shard_pool = Some(pool_size);
        self.shard_max_connections = max_connections;
        self
    }

    /// Every shard's TLS root from Secret `pg-ca`, key `ca.crt`.
    pub fn with_shard_ca(mut self) -> Self {
        self.shard_ca = Some(SecretKeyRef {
            name: "pg-ca".into(),
            key: "ca.crt".into(),
        });
        self
    }

    /// Kafka over TLS with the pipeline's CA (Secret `kafka-ca`, key
    /// `ca.crt`) and SCRAM-SHA-512 (Secret `kafka-user`, keys `username` and
    /// `password`).
    pub fn with_kafka_security(mut self) -> Self {
        let key = |name: &str, key: &str| SecretKeyRef {
            name: name.into(),
            key: key.into(),
        };
        self.kafka_tls = Some(KafkaTls {
            ca_secret_ref: Some(key("kafka-ca", "ca.crt")),
            ..KafkaTls::default()
        });
        self.kafka_sasl = Some(KafkaSasl {
            mechanism: SaslMechanism::ScramSha512,
            username_secret_ref: key("kafka-user", "username"),
            password_secret_ref: key("kafka-user", "password"),
        });
        self
    }

    /// Adds the declared type `declared` and a topic `<name>.webhooks` of
    /// `partitions` serving it.
    pub fn with_declared_type(mut self, declared: DeclaredType, partitions: i32) -> Self {
        self.topics.push(topic(
            &format!("{}.webhooks", declared.name),
            &declared.name,
            partitions,
        ));
        self.event_types.push(declared);
        self
    }

    /// Marks `topic` (which must be listed) `adopt: true`.
    pub fn adopting(mut self, topic_name: &str) -> Self {
        for topic in self.topics.iter_mut().filter(|t| t.name == topic_name) {
            topic.adopt = true;
        }
        self
    }

    /// Reaches Kafka as `servers` (`kafka:9092` unless set).
    pub fn with_bootstrap(mut self, servers: &str) -> Self {
        self.bootstrap = servers.into();
        self
    }

    pub fn with_deletion_policy(mut self, policy: DeletionPolicy) -> Self {
        self.deletion_policy = policy;
        self
    }

    /// Enables (or not) the ingest's NetworkPolicy.
    pub fn with_network_policy(mut self, enabled: bool) -> Self {
        self.network_policy = enabled;
        self
    }

    /// Adds a source `name` of `scheme` whose secrets are the key `secret`
    /// of Secret `<name>-secrets`.
    pub fn with_source(mut self, name: &str, scheme: SourceScheme) -> Self {
        self.sources.push(SourceSpec {
            name: name.into(),
            scheme,
            secret_ref: SecretKeyRef {
                name: format!("{name}-secrets"),
                key: "secret".into(),
            },
            hmac: None,
        });
        self
    }

    pub fn build(self) -> WebhookPipeline {
        let spec = PipelineSpec {
            kafka: KafkaSpec {
                bootstrap_servers: self.bootstrap,
                topic_defaults: Default::default(),
                tls: self.kafka_tls,
                sasl: self.kafka_sasl,
            },
            topics: self.topics,
            shards: (0..self.shards)
                .map(|i| ShardSpec {
                    name: format!("s{i}"),
                    database_url_secret_ref: SecretKeyRef {
                        name: format!("pg-shard-{i}"),
                        key: "url".into(),
                    },
                    pool_size: self.shard_pool,
                    max_connections: self.shard_max_connections,
                    ca_secret_ref: self.shard_ca.clone(),
                })
                .collect(),
            event_types: self.event_types,
            ingest: IngestSpec {
                replicas: 2,
                signing_secret_ref: SecretRef {
                    name: "provider-secrets".into(),
                },
                template: None,
                network_policy: self.network_policy.then(|| IngestNetworkPolicy {
                    enabled: true,
                    ..IngestNetworkPolicy::default()
                }),
            },
            workers: Default::default(),
            deletion_policy: self.deletion_policy,
            sources: self.sources,
        };
        let mut pipeline = WebhookPipeline::new(&self.name, spec);
        pipeline.metadata.namespace = Some("default".into());
        pipeline.metadata.uid = Some(self.uid);
        pipeline.metadata.generation = Some(1);
        pipeline
    }
}
