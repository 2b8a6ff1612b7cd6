//! The status of a `WebhookPipeline`, written by the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

/// What the operator last saw and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPipelineStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `TopicsReady`, `WorkersReady`, `IngestReady`.
    #[serde(default)]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// Per topic: what Kafka has and how many workers are ready.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub topics: Vec<TopicStatus>,
    /// The cluster id the brokers reported: pipelines are on one cluster when
    /// their ids match, however their bootstrap strings spell the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub cluster_id: Option<String>,
}

/// One topic as observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    #[schemars(length(max = 245))]
    pub name: String,
    /// Partitions the broker has.
    pub partitions: i32,
    /// Partitions the spec asked for when this status was written: a later
    /// spec below it is a decrease, a broker above it grew outside the operator.
    pub spec_partitions: i32,
    /// The topic's dead-letter topic.
    #[schemars(length(max = 249))]
    pub dlq: String,
    /// Worker replicas ready.
    pub workers_ready: i32,
    /// Whether the operator created the topic: only such a topic is grown
    /// and, with `deletionPolicy: Delete`, deleted.
    #[serde(default)]
    pub owned: bool,
    /// Whether the operator created the DLQ, with the same consequences.
    #[serde(default)]
    pub dlq_owned: bool,
}
