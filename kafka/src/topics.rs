//! What to do with each topic: a pure decision from the spec and what the
//! broker has, then the I/O that carries it out.

use std::collections::{BTreeMap, HashMap};

use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::{PipelineSpec, TopicDefaults};

use crate::admin::{AdminError, KafkaAdmin};

/// Partitions of a dead-letter topic: it is read by people and tools, in order.
pub const DLQ_PARTITIONS: i32 = 1;

/// Kafka's default `message.max.bytes` (1 MiB + 12 bytes), which is also a
/// topic's default `max.message.bytes` and ingest's default
/// `--max-message-bytes`.
pub const KAFKA_DEFAULT_MESSAGE_MAX_BYTES: usize = 1_048_588;

/// The `max.message.bytes` of a dead-letter topic: twice Kafka's default.
///
/// Ingest sizes bodies so that the dead letter of any record it produces fits
/// its `--max-message-bytes` (`ingest/src/limits.rs`, whose tests build the
/// largest such dead letter). With ingest at its default, a dead letter is at
/// most [`KAFKA_DEFAULT_MESSAGE_MAX_BYTES`], and the other 1 MiB is headroom:
/// for dead-letter headers that grow, and for an ingest whose limit was raised
/// up to that much. A dead letter the DLQ refused would leave the worker no
/// place for the record and hold its partition, so the DLQ is the one topic
/// that must never be the tighter limit.
pub const DLQ_MAX_MESSAGE_BYTES: usize = 2 * KAFKA_DEFAULT_MESSAGE_MAX_BYTES;

/// Replication factor that asks for the broker's `default.replication.factor`
/// (KIP-464).
pub const BROKER_DEFAULT_REPLICATION: i32 = -1;

/// How a topic is created: its replication and its topic configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    /// Replicas per partition; [`BROKER_DEFAULT_REPLICATION`] for the broker's.
    pub replication_factor: i32,
    /// Topic configs (`retention.ms`, …); absent ones are the broker's.
    pub configs: BTreeMap<String, String>,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self {
            replication_factor: BROKER_DEFAULT_REPLICATION,
            configs: BTreeMap::new(),
        }
    }
}

impl TopicSettings {
    /// A main topic's settings under `defaults`.
    pub fn main(defaults: &TopicDefaults) -> Self {
        let mut configs = BTreeMap::new();
        if let Some(min) = defaults.min_insync_replicas {
            configs.insert("min.insync.replicas".to_owned(), min.to_string());
        }
        Self {
            replication_factor: defaults
                .replication_factor
                .unwrap_or(BROKER_DEFAULT_REPLICATION),
            configs,
        }
    }

    /// A dead-letter topic's settings under `defaults`: replicated as the
    /// main topics, kept until someone replays or deletes its records
    /// (`retention.ms=-1`; a broker's default is typically 7 days), and taking
    /// the dead letter of the largest webhook ingest accepts.
    pub fn dlq(defaults: &TopicDefaults) -> Self {
        let mut settings = Self::main(defaults);
        settings
            .configs
            .insert("retention.ms".to_owned(), "-1".to_owned());
        settings.configs.insert(
            "max.message.bytes".to_owned(),
            DLQ_MAX_MESSAGE_BYTES.to_string(),
        );
        settings
    }
}

/// A topic a pipeline declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: String,
    pub partitions: i32,
    /// Used only when the topic is created: an existing topic keeps its own.
    pub settings: TopicSettings,
}

/// The decision for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPlan {
    /// Missing: create it.
    Create {
        topic: String,
        partitions: i32,
        settings: TopicSettings,
    },
    /// Fewer partitions than the spec asks: grow it.
    Grow { topic: String, from: i32, to: i32 },
    /// As the spec says: nothing to do.
    Keep { topic: String, partitions: i32 },
    /// More partitions than the spec (grown by someone else): adopt them; the
    /// workers follow the broker and a condition says the spec is behind.
    Adopt {
        topic: String,
        observed: i32,
        spec: i32,
    },
}

impl TopicPlan {
    pub fn topic(&self) -> &str {
        match self {
            TopicPlan::Create { topic, .. }
            | TopicPlan::Grow { topic, .. }
            | TopicPlan::Keep { topic, .. }
            | TopicPlan::Adopt { topic, .. } => topic,
        }
    }
}

/// The topics a pipeline declares, each main topic followed by its DLQ, with
/// their partition counts and creation settings.
pub fn declared(spec: &PipelineSpec) -> Vec<Declared> {
    let defaults = &spec.kafka.topic_defaults;
    spec.topics
        .iter()
        .flat_map(|t| {
            [
                Declared {
                    name: t.name.clone(),
                    partitions: t.partitions,
                    settings: TopicSettings::main(defaults),
                },
                Declared {
                    name: dlq_topic(&t.name),
                    partitions: DLQ_PARTITIONS,
                    settings: TopicSettings::dlq(defaults),
                },
            ]
        })
        .collect()
}

/// Decides for each `(topic, partitions)` declared, given the broker's counts.
///
/// Kafka cannot remove partitions, so a spec below the broker's count is never
/// a shrink: the broker's count stands ([`TopicPlan::Adopt`]).
pub fn plan(declared: &[Declared], observed: &HashMap<String, i32>) -> Vec<TopicPlan> {
    declared
        .iter()
        .map(|declared| {
            let topic = declared.name.clone();
            let spec = &declared.partitions;
            match observed.get(&topic).copied() {
                None => TopicPlan::Create {
                    topic,
                    partitions: *spec,
                    settings: declared.settings.clone(),
                },
                Some(have) if have < *spec => TopicPlan::Grow {
                    topic,
                    from: have,
                    to: *spec,
                },
                Some(have) if have > *spec => TopicPlan::Adopt {
                    topic,
                    observed: have,
                    spec: *spec,
                },
                Some(have) => TopicPlan::Keep {
                    topic,
                    partitions: have,
                },
            }
        })
        .collect()
}

/// What carrying out a plan left on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub topic: String,
    /// Partitions the broker has now (after creating or growing).
    pub partitions: i32,
    /// What was done, for events.
    pub change: Option<Change>,
    /// Why the topic is not as the spec asks, if it is not.
    pub problem: Option<AdminError>,
}

/// A change made to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created(i32),
    Grown { from: i32, to: i32 },
}

/// Carries out `plans`, one topic after the other; a failure on one topic is
/// recorded and the others still proceed.
pub async fn apply(admin: &dyn KafkaAdmin, plans: &[TopicPlan]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(plans.len());
    for plan in plans {
        let outcome = match plan {
            TopicPlan::Create {
                topic,
                partitions,
                settings,
            } => match admin.create(topic, *partitions, settings).await {
                Ok(()) => done(topic, *partitions, Some(Change::Created(*partitions))),
                // Created meanwhile (by another reconcile or a tool): adopt it
                // as it is; the next reconcile sees its count.
                Err(AdminError::TopicAlreadyExists(_)) => done(topic, *partitions, None),
                Err(error) => failed(topic, 0, error),
            },
            TopicPlan::Grow { topic, from, to } => match admin.grow(topic, *to).await {
                Ok(()) => done(
                    topic,
                    *to,
                    Some(Change::Grown {
                        from: *from,
                        to: *to,
                    }),
                ),
                Err(error) => failed(topic, *from, error),
            },
            TopicPlan::Keep { topic, partitions } => done(topic, *partitions, None),
            TopicPlan::Adopt {
                topic, observed, ..
            } => done(topic, *observed, None),
        };
        outcomes.push(outcome);
    }
    outcomes
}

fn done(topic: &str, partitions: i32, change: Option<Change>) -> Outcome {
    Outcome {
        topic: topic.to_owned(),
        partitions,
        change,
        problem: None,
    }
}

fn failed(topic: &str, partitions: i32, error: AdminError) -> Outcome {
    Outcome {
        topic: topic.to_owned(),
        partitions,
        change: None,
        problem: Some(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::FakeAdmin;

    fn counts(list: &[(&str, i32)]) -> Vec<Declared> {
        list.iter()
            .map(|(t, p)| Declared {
                name: (*t).to_owned(),
                partitions: *p,
                settings: TopicSettings::default(),
            })
            .collect()
    }

    const MANIFEST: &str = "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {name: p}\nspec:\n  kafka: {bootstrapServers: \"k:9092\"}\n  topics:\n    - {name: o, eventType: orders, partitions: 4}\n    - {name: d, eventType: disputes, partitions: 2}\n  shards:\n    - {name: a, databaseUrlSecretRef: {name: pg, key: url}}\n  ingest: {signingSecretRef: {name: s}}\n";

    fn spec(text: &str) -> PipelineSpec {
        hookline_contract::pipeline::PipelineManifest::from_yaml(text)
            .unwrap()
            .spec
    }

    #[test]
    fn a_pipeline_declares_each_topic_and_its_dlq() {
        let spec = spec(MANIFEST);
        let all = declared(&spec);
        assert_eq!(all.len(), 2 * spec.topics.len());
        for (pair, topic) in all.chunks(2).zip(&spec.topics) {
            assert_eq!(
                (pair[0].name.clone(), pair[0].partitions),
                (topic.name.clone(), topic.partitions)
            );
            assert_eq!(
                (pair[1].name.clone(), pair[1].partitions),
                (dlq_topic(&topic.name), DLQ_PARTITIONS)
            );
        }
    }

    #[test]
    fn without_topic_defaults_topics_take_the_brokers_replication_and_dlqs_keep_forever() {
        let all = declared(&spec(MANIFEST));
        let (main, dlq) = (&all[0].settings, &all[1].settings);
        assert_eq!(*main, TopicSettings::default());
        assert_eq!(main.replication_factor, BROKER_DEFAULT_REPLICATION);
        assert_eq!(dlq.replication_factor, BROKER_DEFAULT_REPLICATION);
        assert_eq!(dlq.configs["retention.ms"], "-1");
        assert_eq!(
            dlq.configs["max.message.bytes"],
            DLQ_MAX_MESSAGE_BYTES.to_string()
        );
        assert!(!dlq.configs.contains_key("min.insync.replicas"));
    }

    #[test]
    fn topic_defaults_reach_every_topic_and_dlq() {
        let text = MANIFEST.replace(
            "{bootstrapServers: \"k:9092\"}",
            "{bootstrapServers: \"k:9092\", topicDefaults: {replicationFactor: 3, minInsyncReplicas: 2}}",
        );
        for topic in declared(&spec(&text)) {
            assert_eq!(topic.settings.replication_factor, 3, "{}", topic.name);
            assert_eq!(topic.settings.configs["min.insync.replicas"], "2");
        }
    }

    #[tokio::test]
    async fn created_topics_carry_their_settings_to_the_broker() {
        let text = MANIFEST.replace(
            "{bootstrapServers: \"k:9092\"}",
            "{bootstrapServers: \"k:9092\", topicDefaults: {replicationFactor: 3, minInsyncReplicas: 2}}",
        );
        let declared = declared(&spec(&text));
        let admin = FakeAdmin::default().with_brokers(3);
        let outcomes = apply(&admin, &plan(&declared, &HashMap::new())).await;
        assert!(outcomes.iter().all(|o| o.problem.is_none()), "{outcomes:?}");
        for topic in &declared {
            assert_eq!(admin.settings(&topic.name).as_ref(), Some(&topic.settings));
        }
        let dlq = admin.settings("o.DLQ").unwrap();
        assert_eq!(dlq.configs["retention.ms"], "-1");
    }

    #[tokio::test]
    async fn a_replication_factor_the_cluster_cannot_place_is_reported_per_topic() {
        let text = MANIFEST.replace(
            "{bootstrapServers: \"k:9092\"}",
            "{bootstrapServers: \"k:9092\", topicDefaults: {replicationFactor: 3}}",
        );
        let admin = FakeAdmin::default();
        let outcomes = apply(&admin, &plan(&declared(&spec(&text)), &HashMap::new())).await;
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o.problem, Some(AdminError::InvalidReplicationFactor { .. })))
        );
        assert!(admin.topics().is_empty());
    }

    #[test]
    fn missing_topics_are_created_and_smaller_ones_grown() {
        let observed = HashMap::from([
            ("a".to_owned(), 4),
            ("b".to_owned(), 2),
            ("c".to_owned(), 8),
        ]);
        let plans = plan(
            &counts(&[("a", 4), ("b", 6), ("c", 4), ("d", 2)]),
            &observed,
        );
        assert_eq!(
            plans,
            vec![
                TopicPlan::Keep {
                    topic: "a".into(),
                    partitions: 4
                },
                TopicPlan::Grow {
                    topic: "b".into(),
                    from: 2,
                    to: 6
                },
                TopicPlan::Adopt {
                    topic: "c".into(),
                    observed: 8,
                    spec: 4
                },
                TopicPlan::Create {
                    topic: "d".into(),
                    partitions: 2,
                    settings: TopicSettings::default(),
                },
            ]
        );
    }

    #[tokio::test]
    async fn applying_a_plan_reaches_the_spec_and_a_second_pass_changes_nothing() {
        let admin = FakeAdmin::default();
        admin.set_partitions("b", 2);
        let declared = counts(&[("a", 4), ("b", 6)]);
        let first = apply(
            &admin,
            &plan(
                &declared,
                &admin.partitions(&["a".into(), "b".into()]).await.unwrap(),
            ),
        )
        .await;
        assert_eq!(
            first.iter().map(|o| o.change).collect::<Vec<_>>(),
            vec![
                Some(Change::Created(4)),
                Some(Change::Grown { from: 2, to: 6 })
            ]
        );
        let requests = admin.requests().len();
        let observed = admin.partitions(&["a".into(), "b".into()]).await.unwrap();
        let second = apply(&admin, &plan(&declared, &observed)).await;
        assert!(
            second
                .iter()
                .all(|o| o.change.is_none() && o.problem.is_none())
        );
        assert_eq!(
            admin.requests().len(),
            requests,
            "no request the second time"
        );
    }

    #[tokio::test]
    async fn a_broker_without_create_partitions_leaves_the_count_and_says_why() {
        let admin = FakeAdmin::new(false);
        admin.set_partitions("t", 2);
        let outcomes = apply(
            &admin,
            &[TopicPlan::Grow {
                topic: "t".into(),
                from: 2,
                to: 4,
            }],
        )
        .await;
        assert_eq!(outcomes[0].partitions, 2);
        assert_eq!(
            outcomes[0].problem,
            Some(AdminError::Unsupported("CreatePartitions"))
        );
    }
}
