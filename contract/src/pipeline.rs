//! The `WebhookPipeline` manifest: the configuration every binary reads.
//!
//! In Kubernetes the operator mounts the manifest from a ConfigMap; on one
//! machine it is a plain file. Either way the binaries parse the same YAML with
//! these types and refuse a spec that breaks the rules below before they serve
//! or consume anything.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub use crate::declared::{DeclaredType, FieldPointers};

/// API group and version of the resource.
pub const API_VERSION: &str = "hookline.dev/v1alpha1";
/// Kind of the resource.
pub const KIND: &str = "WebhookPipeline";

/// A whole manifest as `kubectl apply` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineManifest {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: PipelineSpec,
}

/// The part of `metadata` the binaries use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The pipeline's desired state; with the `kube` feature, the spec of the
/// `WebhookPipeline` custom resource, with its admission rules in CEL.
// Printer columns repeat `type_`, which the lint mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::CustomResource, kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    kube(
        group = "hookline.dev",
        version = "v1alpha1",
        kind = "WebhookPipeline",
        namespaced,
        status = "crate::status::WebhookPipelineStatus",
        shortname = "whp",
        derive = "PartialEq",
        cel,
        // Children are named `<name>-worker-<topic>`, `<name>-ingest`, and the
        // name is a label value: it must leave room within 63 characters.
        validation = Rule::new("self.metadata.name.size() <= 40").message("the pipeline's name must be at most 40 characters"),
        printcolumn(
            name = "Ready",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].status"
        ),
        printcolumn(
            name = "Reason",
            type_ = "string",
            json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
        ),
        printcolumn(
            name = "Topics",
            type_ = "string",
            json_path = ".spec.topics[*].name",
            priority = 1
        ),
        printcolumn(
            name = "Age",
            type_ = "date",
            json_path = ".metadata.creationTimestamp"
        ),
    )
)]
#[cfg_attr(
    feature = "kube",
    x_kube(validation = Rule::new("self.topics.all(t, t.partitions % size(self.shards) == 0)")
        .message("every topic's partitions must be a multiple of the shard count, so that each partition holds the users of one shard"))
)]
#[cfg_attr(
    feature = "kube",
    x_kube(validation = Rule::new("self.topics.all(t, t.eventType in ['orders', 'disputes'] || (has(self.eventTypes) && self.eventTypes.exists(e, e.name == t.eventType)))")
        .message("every topic's eventType must name a built-in type (orders, disputes) or one of spec.eventTypes"))
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    pub kafka: KafkaSpec,
    /// Topics, keyed by name.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 64)),
        schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])),
        x_kube(validation = Rule::new("self.all(t, self.exists_one(u, u.name == t.name))").message("topic names must be unique")),
        x_kube(validation = Rule::new("self.all(t, self.exists_one(u, u.eventType == t.eventType))").message("each event type may be served by one topic only")),
        // A topic's worker Deployment is named from the topic as a DNS label
        // (lowercase, every other character `-`, no `-` at either end): two names
        // equal that way would share one Deployment and one would get no
        // consumers. Kafka allows only `.`, `_` and `-` besides alphanumerics.
        x_kube(validation = Rule::new("self.all(t, self.all(u, t.name == u.name || t.name.lowerAscii().replace('.', '-').replace('_', '-').find('[^-](.*[^-])?') != u.name.lowerAscii().replace('.', '-').replace('_', '-').find('[^-](.*[^-])?')))").message(kube::core::Message::Expression("'topics ' + self.filter(t, self.exists(u, u.name != t.name && u.name.lowerAscii().replace('.', '-').replace('_', '-').find('[^-](.*[^-])?') == t.name.lowerAscii().replace('.', '-').replace('_', '-').find('[^-](.*[^-])?'))).map(t, t.name).join(' and ') + ' map to one Kubernetes name (lowercased, with . and _ as - and leading and trailing separators dropped), so they would share one worker Deployment: rename one'".to_owned())))
    )]
    pub topics: Vec<TopicSpec>,
    /// Shards, in order: a user's shard is `murmur2(user_id) % len`, so the list
    /// never changes once created.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 16)),
        // Names and databases only: a pool size or a connection hint is tuning,
        // and changing it moves no user.
        x_kube(validation = Rule::new("self.map(s, s.name) == oldSelf.map(s, s.name) && self.map(s, s.databaseUrlSecretRef) == oldSelf.map(s, s.databaseUrlSecretRef)").message("the shard list is immutable: changing it would move users between shards"))
    )]
    pub shards: Vec<ShardSpec>,
    /// Event types besides the built-in `orders` and `disputes`, keyed by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(max = 32)),
        schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))
    )]
    pub event_types: Vec<DeclaredType>,
    pub ingest: IngestSpec,
    /// The worker pods of every topic.
    #[serde(default, skip_serializing_if = "WorkersSpec::is_empty")]
    pub workers: WorkersSpec,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Providers besides the default source, each on
    /// `POST /webhooks/{source}/{type}` with its own scheme and secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(max = 32)),
        schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])),
        x_kube(validation = Rule::new("self.all(s, self.exists_one(u, u.name == s.name))").message("source names must be unique"))
    )]
    pub sources: Vec<SourceSpec>,
}

/// How to reach the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct KafkaSpec {
    /// Comma-separated `host:port` list.
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 1024)))]
    pub bootstrap_servers: String,
    /// Settings of the topics the operator (or `hookline up`) creates.
    #[serde(default, skip_serializing_if = "TopicDefaults::is_empty")]
    pub topic_defaults: TopicDefaults,
    /// TLS to the brokers; absent: plaintext (or SASL over plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// SASL authentication; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<KafkaSasl>,
}

/// TLS to the brokers. Every reference is to a PEM file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    feature = "kube",
    x_kube(validation = Rule::new("has(self.certSecretRef) == has(self.keySecretRef)").message("tls.certSecretRef and tls.keySecretRef go together: a client certificate needs its key"))
)]
pub struct KafkaTls {
    /// The CA that signed the brokers' certificates; absent: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// A client certificate, for brokers that authenticate clients by TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeyRef>,
    /// The client certificate's private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeyRef>,
}

/// SASL authentication to the brokers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct KafkaSasl {
    pub mechanism: SaslMechanism,
    pub username_secret_ref: SecretKeyRef,
    pub password_secret_ref: SecretKeyRef,
}

/// The SASL mechanisms hookline's clients speak (librdkafka's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl KafkaSpec {
    /// Every Secret key the Kafka clients read (TLS material, SASL
    /// credentials): what the operator mounts for the pods and reads for its
    /// own admin client.
    pub fn secret_refs(&self) -> impl Iterator<Item = &SecretKeyRef> {
        let tls = self.tls.iter().flat_map(|tls| {
            [
                &tls.ca_secret_ref,
                &tls.cert_secret_ref,
                &tls.key_secret_ref,
            ]
            .into_iter()
            .flatten()
        });
        let sasl = self
            .sasl
            .iter()
            .flat_map(|sasl| [&sasl.username_secret_ref, &sasl.password_secret_ref]);
        tls.chain(sasl)
    }
}

impl SaslMechanism {
    /// The value of librdkafka's `sasl.mechanism`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Settings of the topics hookline creates; an existing (adopted) topic keeps
/// its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(validation = Rule::new("!has(self.replicationFactor) || !has(self.minInsyncReplicas) || self.minInsyncReplicas <= self.replicationFactor")
        .message("minInsyncReplicas must not exceed replicationFactor: no write could ever be acknowledged"))
)]
#[serde(rename_all = "camelCase")]
pub struct TopicDefaults {
    /// Replicas of each partition. Omitted: the broker's
    /// `default.replication.factor` (the only choice on a one-broker
    /// development broker such as tansu).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 32)))]
    pub replication_factor: Option<i32>,
    /// The topics' `min.insync.replicas`: replicas that must have a write
    /// before it is acknowledged (producers use `acks=all`). Omitted: the
    /// broker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 32)))]
    pub min_insync_replicas: Option<i32>,
}

impl TopicDefaults {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One topic of webhooks of one event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// Kafka topic name; its DLQ is `<name>.DLQ`.
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 245)))]
    pub name: String,
    /// The `{type}` of `POST /webhooks/{type}`, and the payload schema's name.
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 63)))]
    pub event_type: String,
    /// Partition count: at least 1, a multiple of the shard count, never lowered.
    #[cfg_attr(
        feature = "kube",
        schemars(range(max = 1024)),
        x_kube(validation = Rule::new("self >= 1").message("partitions must be at least 1")),
        x_kube(validation = Rule::new("self >= oldSelf").message("partitions can never decrease: Kafka cannot remove partitions"))
    )]
    pub partitions: i32,
    /// Where the values hookline reads live in the payload.
    #[serde(default)]
    pub pointers: Pointers,
    /// What ingest does with an authentic webhook that is invalid.
    #[serde(default)]
    pub invalid_policy: InvalidPolicy,
    /// Use the topic (and its DLQ) though it existed before this pipeline
    /// named it: such a topic is never grown and never deleted. Without it,
    /// a topic the operator did not create is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

/// JSON Pointers (RFC 6901) into the provider's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", default)]
pub struct Pointers {
    #[cfg_attr(feature = "kube", schemars(length(max = 256)))]
    pub user_id: String,
    #[cfg_attr(feature = "kube", schemars(length(max = 256)))]
    pub event_id: String,
    #[cfg_attr(feature = "kube", schemars(length(max = 256)))]
    pub event_time: String,
    #[cfg_attr(feature = "kube", schemars(length(max = 256)))]
    pub event_type: String,
}

impl Default for Pointers {
    fn default() -> Self {
        Self {
            user_id: "/data/user_id".to_owned(),
            event_id: "/id".to_owned(),
            event_time: "/created".to_owned(),
            event_type: "/type".to_owned(),
        }
    }
}

/// What ingest does with an authentic but invalid webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum InvalidPolicy {
    /// Accept it (202) and put it in the topic's DLQ with its reason.
    #[default]
    Quarantine,
    /// Refuse it (422); nothing reaches Kafka.
    Reject,
}

/// One Postgres shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ShardSpec {
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 63)))]
    pub name: String,
    pub database_url_secret_ref: SecretKeyRef,
    /// Connections each worker pod opens to this shard (its pool's size).
    /// Omitted: the worker's `--shard-connections` (4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 256)))]
    pub pool_size: Option<i32>,
    /// The connections this shard can give hookline (its `max_connections`
    /// less `superuser_reserved_connections` and what other clients use),
    /// used only when the operator cannot read that from the shard itself:
    /// what the shard says is the truth, this the fallback. Either way, the
    /// status warns when the workers' pools could together ask for more
    /// (`ShardConnections`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(range(min = 1, max = 262143)))]
    pub max_connections: Option<i32>,
    /// A PEM root certificate for the shard's TLS: the `sslrootcert` of its URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
}

/// Connections a worker pod opens to a shard when the spec does not say: the
/// worker's own `--shard-connections` default.
pub const DEFAULT_POOL_SIZE: i32 = 4;

impl ShardSpec {
    /// Connections each worker pod opens to this shard.
    pub fn pool_size(&self) -> i32 {
        self.pool_size.unwrap_or(DEFAULT_POOL_SIZE)
    }
}

/// The ingest service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct IngestSpec {
    #[serde(default = "one")]
    #[cfg_attr(feature = "kube", schemars(range(min = 0, max = 64)))]
    pub replicas: i32,
    /// The Secret whose keys `standard-webhooks` and `stripe` hold the signing
    /// secrets, one per line.
    pub signing_secret_ref: SecretRef,
    /// Shapes the ingest pods (requests and limits, scheduling, pull
    /// secrets, extra labels, annotations and environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
    /// A NetworkPolicy in front of the ingest pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<IngestNetworkPolicy>,
}

/// The worker pods (one Deployment per topic, all shaped alike).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WorkersSpec {
    /// Shapes the worker pods, as `ingest.template` does the ingest's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplate>,
}

impl WorkersSpec {
    fn is_empty(&self) -> bool {
        self.template.is_none()
    }
}

fn one() -> i32 {
    1
}

pub use crate::pod_template::{IngestNetworkPolicy, PodTemplate};
pub use crate::sources::{HmacAlgorithm, HmacSpec, SignatureEncoding, SourceScheme, SourceSpec};

/// What happens to the topics when the pipeline is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// A whole Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct SecretRef {
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 253)))]
    pub name: String,
}

/// One key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
pub struct SecretKeyRef {
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 253)))]
    pub name: String,
    #[cfg_attr(feature = "kube", schemars(length(min = 1, max = 253)))]
    pub key: String,
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading the pipeline manifest {path} failed")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the manifest is not valid YAML for a WebhookPipeline: {0}")]
    Parse(String),
    #[error("expected apiVersion {API_VERSION} and kind {KIND}, found {api_version} {kind}")]
    WrongKind { api_version: String, kind: String },
    #[error("the pipeline spec is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl PipelineManifest {
    /// Reads a manifest file, parses it and checks its spec.
    pub fn read(path: &std::path::Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses a manifest and checks its spec.
    pub fn from_yaml(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self =
            serde_saphyr::from_str(text).map_err(|e| ManifestError::Parse(e.to_string()))?;
        if manifest.api_version != API_VERSION || manifest.kind != KIND {
            return Err(ManifestError::WrongKind {
                api_version: manifest.api_version,
                kind: manifest.kind,
            });
        }
        let problems = manifest.spec.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError::Invalid(problems))
        }
    }
}

impl PipelineSpec {
    /// Every rule the spec breaks, in words a person can act on; empty when the
    /// spec is usable. The CRD's admission rules enforce the same in a cluster.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kafka.bootstrap_servers.trim().is_empty() {
            problems.push("kafka.bootstrapServers is empty".to_owned());
        }
        if let Some(tls) = &self.kafka.tls
            && tls.cert_secret_ref.is_some() != tls.key_secret_ref.is_some()
        {
            problems.push(
                "kafka.tls: certSecretRef and keySecretRef go together (a client certificate needs its key)"
                    .to_owned(),
            );
        }
        if self.shards.is_empty() {
            problems.push("shards is empty: at least one shard is needed".to_owned());
        }
        if self.topics.is_empty() {
            problems.push("topics is empty: at least one topic is needed".to_owned());
        }
        let mut names = HashSet::new();
        let mut event_types = HashSet::new();
        let shards = self.shards.len() as i32;
        for topic in &self.topics {
            if !names.insert(&topic.name) {
                problems.push(format!("topic {} is listed twice", topic.name));
            }
            if !event_types.insert(&topic.event_type) {
                problems.push(format!(
                    "event type {} is served by more than one topic",
                    topic.event_type
                ));
            }
            if topic.partitions < 1 {
                problems.push(format!(
                    "topic {}: partitions must be at least 1",
                    topic.name
                ));
            } else if shards > 0 && topic.partitions % shards != 0 {
                problems.push(format!(
                    "topic {}: partitions ({}) must be a multiple of the shard count ({shards})",
                    topic.name, topic.partitions
                ));
            }
            for (field, pointer) in topic.pointers.iter() {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    problems.push(format!(
                        "topic {}: pointers.{field} {pointer:?} is not a JSON Pointer (it must start with /)",
                        topic.name
                    ));
                }
            }
        }
        problems.extend(self.event_type_problems());
        problems.extend(self.kubernetes_name_problems());
        let mut shard_names = HashSet::new();
        for shard in &self.shards {
            if !shard_names.insert(&shard.name) {
                problems.push(format!("shard {} is listed twice", shard.name));
            }
            if shard.pool_size.is_some_and(|size| size < 1) {
                problems.push(format!("shard {}: poolSize must be at least 1", shard.name));
            }
        }
        let defaults = &self.kafka.topic_defaults;
        if defaults.replication_factor.is_some_and(|rf| rf < 1) {
            problems.push("kafka.topicDefaults.replicationFactor must be at least 1".to_owned());
        }
        if defaults.min_insync_replicas.is_some_and(|min| min < 1) {
            problems.push("kafka.topicDefaults.minInsyncReplicas must be at least 1".to_owned());
        }
        if let (Some(rf), Some(min)) = (defaults.replication_factor, defaults.min_insync_replicas)
            && min > rf
        {
            problems.push(format!(
                "kafka.topicDefaults.minInsyncReplicas ({min}) exceeds replicationFactor ({rf}): no write could ever be acknowledged"
            ));
        }
        crate::sources::problems(&self.sources, &mut problems);
        problems
    }

    /// What is wrong with the declared types and the topics' `eventType`s.
    fn event_type_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.event_types.len() > crate::declared::MAX_DECLARED_TYPES {
            problems.push(format!(
                "eventTypes lists {} types, more than {}",
                self.event_types.len(),
                crate::declared::MAX_DECLARED_TYPES
            ));
        }
        let mut declared = HashSet::new();
        for event_type in &self.event_types {
            if !declared.insert(event_type.name.as_str()) {
                problems.push(format!("eventTypes {} is listed twice", event_type.name));
            }
            problems.extend(event_type.problems());
        }
        for topic in &self.topics {
            if crate::event_types::lookup(&topic.event_type).is_none()
                && !declared.contains(topic.event_type.as_str())
            {
                problems.push(format!(
                    "topic {}: eventType {} names no type (built in: {}; declared: {})",
                    topic.name,
                    topic.event_type,
                    crate::event_types::names(),
                    if declared.is_empty() {
                        "none".to_owned()
                    } else {
                        self.event_types
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ));
            }
        }
        problems
    }

    /// Topics whose names are one name to Kubernetes (see [`kubernetes_name`]):
    /// they would share one worker Deployment.
    fn kubernetes_name_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, topic) in self.topics.iter().enumerate() {
            let key = kubernetes_name(&topic.name);
            for other in &self.topics[..i] {
                if other.name != topic.name && kubernetes_name(&other.name) == key {
                    problems.push(format!(
                        "topics {} and {} map to the same Kubernetes name ({key}), so they would share one worker Deployment: rename one",
                        other.name, topic.name
                    ));
                }
            }
        }
        problems
    }

    /// The declared type named `name`, if the spec declares one.
    pub fn declared_type(&self, name: &str) -> Option<&DeclaredType> {
        self.event_types.iter().find(|t| t.name == name)
    }

    /// The topic serving `event_type`.
    pub fn topic_for_event_type(&self, event_type: &str) -> Option<&TopicSpec> {
        self.topics.iter().find(|t| t.event_type == event_type)
    }
}

/// A topic's name as the operator spells it in the names of Kubernetes objects
/// (a DNS label): lowercase ASCII, every other character `-`, no `-` at
/// either end.
/// Two topics with one such name would share one worker Deployment. (A name
/// too long for a label also gets a hash; this ignores that, and so refuses a
/// little more than collides.)
pub fn kubernetes_name(topic: &str) -> String {
    let mapped: String = topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    mapped.trim_matches('-').to_owned()
}

impl Pointers {
    /// Each pointer with its field name, for messages.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("userId", self.user_id.as_str()),
            ("eventId", self.event_id.as_str()),
            ("eventTime", self.event_time.as_str()),
            ("eventType", self.event_type.as_str()),
        ]
        .into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
apiVersion: hookline.dev/v1alpha1
kind: WebhookPipeline
metadata: {name: payments}
spec:
  kafka:
    bootstrapServers: "127.0.0.1:9092"
  topics:
    - {name: orders.webhooks,   eventType: orders,   partitions: 4}
    - {name: disputes.webhooks, eventType: disputes, partitions: 2, invalidPolicy: reject}
  shards:
    - {name: a, databaseUrlSecretRef: {name: pg-shard-a, key: url}}
    - {name: b, databaseUrlSecretRef: {name: pg-shard-b, key: url}}
  ingest: {replicas: 2, signingSecretRef: {name: provider-secrets}}
  deletionPolicy: Retain
"#;

    fn example() -> PipelineManifest {
        PipelineManifest::from_yaml(EXAMPLE).unwrap()
    }

    #[test]
    fn kafka_security_parses_with_the_designs_field_names() {
        let text = EXAMPLE.replace(
            "bootstrapServers: \"127.0.0.1:9092\"",
            r#"bootstrapServers: "kafka:9093"
    tls:
      caSecretRef: {name: kafka-ca, key: ca.crt}
    sasl:
      mechanism: SCRAM-SHA-512
      usernameSecretRef: {name: kafka-user, key: username}
      passwordSecretRef: {name: kafka-user, key: password}"#,
        );
        let spec = PipelineManifest::from_yaml(&text).unwrap().spec;
        let tls = spec.kafka.tls.unwrap();
        assert_eq!(tls.ca_secret_ref.unwrap().name, "kafka-ca");
        assert_eq!(tls.cert_secret_ref, None);
        let sasl = spec.kafka.sasl.unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.password_secret_ref.key, "password");
    }

    #[test]
    fn a_client_certificate_without_its_key_is_refused() {
        let mut spec = example().spec;
        spec.kafka.tls = Some(KafkaTls {
            cert_secret_ref: Some(SecretKeyRef {
                name: "c".into(),
                key: "tls.crt".into(),
            }),
            ..KafkaTls::default()
        });
        let problems = spec.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("certSecretRef and keySecretRef")),
            "{problems:?}"
        );
    }

    #[test]
    fn design_example_parses_with_defaults() {
        let manifest = example();
        assert_eq!(manifest.metadata.name, "payments");
        let orders = manifest.spec.topic_for_event_type("orders").unwrap();
        assert_eq!(orders.partitions, 4);
        assert_eq!(orders.pointers.user_id, "/data/user_id");
        assert_eq!(orders.invalid_policy, InvalidPolicy::Quarantine);
        let disputes = manifest.spec.topic_for_event_type("disputes").unwrap();
        assert_eq!(disputes.invalid_policy, InvalidPolicy::Reject);
        assert_eq!(
            manifest.spec.ingest.signing_secret_ref.name,
            "provider-secrets"
        );
        assert_eq!(manifest.spec.deletion_policy, DeletionPolicy::Retain);
    }

    #[test]
    fn partitions_not_a_multiple_of_shards_are_refused() {
        let text = EXAMPLE.replace("partitions: 4", "partitions: 3");
        let err = PipelineManifest::from_yaml(&text).unwrap_err();
        assert!(
            err.to_string()
                .contains("partitions (3) must be a multiple of the shard count (2)"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_topics_and_bad_pointers_are_all_reported() {
        let mut spec = example().spec;
        spec.topics.push(spec.topics[0].clone());
        spec.topics[1].pointers.user_id = "data.user_id".to_owned();
        let problems = spec.problems();
        assert!(
            problems
                .iter()
                .any(|p| p == "topic orders.webhooks is listed twice")
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("event type orders is served by more than one topic"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("pointers.userId \"data.user_id\" is not a JSON Pointer"))
        );
    }

    /// The production-shaped fields of the design's "Second wave".
    fn shaped() -> String {
        EXAMPLE.replace(
            "    bootstrapServers: \"127.0.0.1:9092\"\n",
            "    bootstrapServers: \"127.0.0.1:9092\"\n    topicDefaults: {replicationFactor: 3, minInsyncReplicas: 2}\n",
        )
        .replace(
            "{name: a, databaseUrlSecretRef: {name: pg-shard-a, key: url}}",
            "{name: a, databaseUrlSecretRef: {name: pg-shard-a, key: url}, poolSize: 8, maxConnections: 100}",
        )
        .replace(
            "  ingest: {replicas: 2, signingSecretRef: {name: provider-secrets}}\n",
            "  ingest:\n    replicas: 2\n    signingSecretRef: {name: provider-secrets}\n    networkPolicy: {enabled: true, from: [{podSelector: {matchLabels: {app: ingress}}}]}\n    template:\n      resources: {requests: {cpu: 100m}}\n      podLabels: {team: payments}\n      tolerations: [{key: dedicated, operator: Exists}]\n  workers:\n    template: {priorityClassName: high, env: [{name: TZ, value: UTC}]}\n",
        )
    }

    #[test]
    fn pod_templates_topic_defaults_and_pool_sizes_parse() {
        let manifest = PipelineManifest::from_yaml(&shaped()).unwrap();
        let spec = &manifest.spec;
        assert_eq!(spec.kafka.topic_defaults.replication_factor, Some(3));
        assert_eq!(spec.kafka.topic_defaults.min_insync_replicas, Some(2));
        assert_eq!(spec.shards[0].pool_size(), 8);
        assert_eq!(spec.shards[0].max_connections, Some(100));
        assert_eq!(spec.shards[1].pool_size(), DEFAULT_POOL_SIZE);
        // Without the `kube` feature the templates are accepted and ignored;
        // with it they hold Kubernetes' types.
        assert!(spec.ingest.template.is_some());
        assert!(spec.ingest.network_policy.is_some());
        assert!(spec.workers.template.is_some());
        #[cfg(feature = "kube")]
        {
            let ingest = spec.ingest.template.as_ref().unwrap();
            assert_eq!(ingest.pod_labels["team"], "payments");
            assert_eq!(ingest.tolerations.len(), 1);
            assert!(spec.ingest.network_policy.as_ref().unwrap().enabled);
            let workers = spec.workers.template.as_ref().unwrap();
            assert_eq!(workers.priority_class_name.as_deref(), Some("high"));
        }
    }

    #[test]
    fn a_min_insync_above_the_replication_factor_is_refused() {
        let text = shaped().replace("minInsyncReplicas: 2", "minInsyncReplicas: 4");
        let err = PipelineManifest::from_yaml(&text).unwrap_err();
        assert!(
            err.to_string()
                .contains("minInsyncReplicas (4) exceeds replicationFactor (3)"),
            "{err}"
        );
        let text = shaped().replace("poolSize: 8", "poolSize: 0");
        let err = PipelineManifest::from_yaml(&text).unwrap_err();
        assert!(
            err.to_string().contains("poolSize must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn wrong_kind_is_refused() {
        let text = EXAMPLE.replace("kind: WebhookPipeline", "kind: ConfigMap");
        assert!(matches!(
            PipelineManifest::from_yaml(&text),
            Err(ManifestError::WrongKind { .. })
        ));
    }

    #[test]
    fn unparsable_yaml_says_so() {
        let err = PipelineManifest::from_yaml("spec: [").unwrap_err();
        assert!(matches!(err, ManifestError::Parse(_)), "{err}");
    }

    #[test]
    fn topics_that_share_a_kubernetes_name_are_refused_naming_both() {
        let mut spec = example().spec;
        spec.topics[1].name = "orders_webhooks".to_owned();
        let problems = spec.problems();
        assert!(
            problems.iter().any(|p| p.contains("topics orders.webhooks and orders_webhooks map to the same Kubernetes name (orders-webhooks)")),
            "{problems:?}"
        );
        for (a, b) in [
            ("Orders.Webhooks", "orders-webhooks"),
            ("orders.", "orders"),
        ] {
            assert_eq!(kubernetes_name(a), kubernetes_name(b), "{a} {b}");
        }
        assert_ne!(
            kubernetes_name("orders.webhooks"),
            kubernetes_name("orders.webhook")
        );
        assert!(example().spec.problems().is_empty());
    }
}
