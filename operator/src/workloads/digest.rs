//! What each child reads of the manifest, as a digest for its pod template.
//!
//! The binaries read the mounted manifest once, at startup
//! (`ingest/src/config.rs`, `worker/src/config.rs`), so a change they read
//! must roll their pods, and a change they do not read must not: rolling
//! ingest drops every connection to it (a `kubectl port-forward` among them),
//! and rolling workers costs a rebalance. Each digest therefore covers what
//! its child reads and nothing else.
//!
//! Every spec struct is destructured field by field, without `..`: a field
//! added to the spec fails to compile here until someone decides which child
//! reads it.

use hookline_contract::pipeline::{
    DeclaredType, IngestSpec, InvalidPolicy, KafkaSasl, KafkaSpec, KafkaTls, PipelineSpec,
    Pointers, SecretRef, ShardSpec, SourceSpec, TopicSpec,
};
use serde::Serialize;

/// What ingest reads: the brokers, each topic's route, its signing Secret,
/// and each source (its route, scheme and Secret).
#[derive(Serialize)]
struct IngestReads<'a> {
    kafka: KafkaReads<'a>,
    routes: Vec<RouteReads<'a>>,
    signing_secret: &'a SecretRef,
    /// Left out when empty, so that the digest of a pipeline without
    /// sources is what it was before they existed, and upgrading the
    /// operator rolls no ingest.
    #[serde(skip_serializing_if = "<[SourceSpec]>::is_empty")]
    sources: &'a [SourceSpec],
}

/// One topic as ingest reads it. Not its partition count: ingest produces
/// with the count the broker reports (`hookline-partition-count` is what the
/// producer saw), so a partition patch leaves ingest running.
#[derive(Serialize)]
struct RouteReads<'a> {
    topic: &'a str,
    event_type: &'a str,
    /// The type's declaration, when the topic serves a declared type; left
    /// out otherwise, so that the digest of a pipeline without declared
    /// types is what it was before they existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    declared: Option<&'a DeclaredType>,
    pointers: &'a Pointers,
    invalid_policy: InvalidPolicy,
}

/// What a worker of one topic reads: the brokers, its own topic (never the
/// others), and the shards.
///
/// Not its topic's partition count either: a worker checks placement against
/// the count in each record's header, and the Deployment's replica count, not
/// the pod template, follows the partitions. The pods added by that scale-up
/// join the consumer group, and the group leader asks the broker for fresh
/// metadata before it assigns ("partition assignor" in librdkafka's
/// `rdkafka_cgrp.c`), so the running workers take their share of the new
/// partitions without a restart.
#[derive(Serialize)]
struct WorkerReads<'a> {
    kafka: KafkaReads<'a>,
    topic: &'a str,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    declared: Option<&'a DeclaredType>,
    pointers: &'a Pointers,
    shards: &'a [ShardSpec],
}

/// What a binary reads of `spec.kafka`: how to reach the brokers, not how the
/// operator creates topics.
#[derive(Serialize)]
struct KafkaReads<'a> {
    bootstrap_servers: &'a str,
    tls: &'a Option<KafkaTls>,
    sasl: &'a Option<KafkaSasl>,
}

impl<'a> KafkaReads<'a> {
    fn of(kafka: &'a KafkaSpec) -> Self {
        let KafkaSpec {
            bootstrap_servers,
            // The operator's alone, used when it creates topics.
            topic_defaults: _,
            // Which Secrets the binaries read their TLS and SASL settings
            // from: a change rolls ingest and the workers.
            tls,
            sasl,
        } = kafka;
        Self {
            bootstrap_servers,
            tls,
            sasl,
        }
    }
}

/// The digest of what ingest reads of `spec`.
pub(super) fn ingest(spec: &PipelineSpec) -> String {
    let PipelineSpec {
        kafka,
        topics,
        // The workers' alone.
        shards: _,
        // Those of its topics, with them.
        event_types,
        ingest,
        // The workers' pods'.
        workers: _,
        // The operator's alone.
        deletion_policy: _,
        sources,
    } = spec;
    let IngestSpec {
        // The Deployment's, not the pod's.
        replicas: _,
        signing_secret_ref,
        // Part of the pod template itself: a change to it rolls the pods
        // without a digest.
        template: _,
        // Its own object's.
        network_policy: _,
    } = ingest;
    let routes = topics
        .iter()
        .map(|topic| {
            let TopicSpec {
                name,
                event_type,
                partitions: _,
                pointers,
                invalid_policy,
                // The operator's alone.
                adopt: _,
            } = topic;
            RouteReads {
                topic: name,
                event_type,
                declared: declared(event_types, event_type),
                pointers,
                invalid_policy: *invalid_policy,
            }
        })
        .collect();
    digest(&IngestReads {
        kafka: KafkaReads::of(kafka),
        routes,
        signing_secret: signing_secret_ref,
        sources,
    })
}

/// The digest of what the workers of `topic` read of `spec`.
pub(super) fn worker(spec: &PipelineSpec, topic: &TopicSpec) -> String {
    let PipelineSpec {
        kafka,
        // Only `topic` of them.
        topics: _,
        shards,
        // Its topic's, with it.
        event_types,
        // Ingest's alone.
        ingest: _,
        // Part of the pod template itself: a change to it rolls the pods
        // without a digest.
        workers: _,
        // The operator's alone.
        deletion_policy: _,
        // Ingest's alone: a worker meets a source only as `hookline-source`.
        sources: _,
    } = spec;
    let TopicSpec {
        name,
        event_type,
        partitions: _,
        pointers,
        // Ingest's alone: a worker meets only what ingest let through.
        invalid_policy: _,
        // The operator's alone.
        adopt: _,
    } = topic;
    digest(&WorkerReads {
        kafka: KafkaReads::of(kafka),
        topic: name,
        event_type,
        declared: declared(event_types, event_type),
        pointers,
        shards,
    })
}

/// The declaration of `event_type`, when it is not built in.
fn declared<'a>(event_types: &'a [DeclaredType], event_type: &str) -> Option<&'a DeclaredType> {
    event_types.iter().find(|t| t.name == event_type)
}

/// Eight hex digits of murmur2 over the JSON of `reads`: short enough for an
/// annotation. A collision (about one change in four billion) would leave the
/// pods on the manifest they read until their next roll.
fn digest(reads: &impl Serialize) -> String {
    // Plain structs with string keys: serializing them cannot fail.
    let json = serde_json::to_vec(reads).unwrap_or_default();
    format!("{:08x}", hookline_contract::murmur2(&json) as u32)
}
