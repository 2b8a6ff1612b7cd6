//! What to do with each topic: a pure decision from the spec and what the
//! broker has, then the I/O that carries it out.

use std::collections::HashMap;

use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineSpec;

use crate::admin::{AdminError, KafkaAdmin};

/// Partitions of a dead-letter topic: it is read by people and tools, in order.
pub const DLQ_PARTITIONS: i32 = 1;

/// The decision for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPlan {
    /// Missing: create it.
    Create { topic: String, partitions: i32 },
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
/// their partition counts.
pub fn declared(spec: &PipelineSpec) -> Vec<(String, i32)> {
    spec.topics
        .iter()
        .flat_map(|t| {
            [
                (t.name.clone(), t.partitions),
                (dlq_topic(&t.name), DLQ_PARTITIONS),
            ]
        })
        .collect()
}

/// Decides for each `(topic, partitions)` declared, given the broker's counts.
///
/// Kafka cannot remove partitions, so a spec below the broker's count is never
/// a shrink: the broker's count stands ([`TopicPlan::Adopt`]).
pub fn plan(declared: &[(String, i32)], observed: &HashMap<String, i32>) -> Vec<TopicPlan> {
    declared
        .iter()
        .map(|(topic, spec)| {
            let topic = topic.clone();
            match observed.get(&topic).copied() {
                None => TopicPlan::Create {
                    topic,
                    partitions: *spec,
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
            TopicPlan::Create { topic, partitions } => match admin.create(topic, *partitions).await
            {
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

    fn counts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    #[test]
    fn a_pipeline_declares_each_topic_and_its_dlq() {
        let spec = hookline_contract::pipeline::PipelineManifest::from_yaml(
            "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {name: p}\nspec:\n  kafka: {bootstrapServers: \"k:9092\"}\n  topics:\n    - {name: o, eventType: orders, partitions: 4}\n    - {name: d, eventType: disputes, partitions: 2}\n  shards:\n    - {name: a, databaseUrlSecretRef: {name: pg, key: url}}\n  ingest: {signingSecretRef: {name: s}}\n",
        )
        .unwrap()
        .spec;
        let all = declared(&spec);
        assert_eq!(all.len(), 2 * spec.topics.len());
        for (pair, topic) in all.chunks(2).zip(&spec.topics) {
            assert_eq!(pair[0], (topic.name.clone(), topic.partitions));
            assert_eq!(pair[1], (dlq_topic(&topic.name), DLQ_PARTITIONS));
        }
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
                    partitions: 2
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
