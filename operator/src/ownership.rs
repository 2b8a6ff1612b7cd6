//! Which topics are the pipeline's to change: a pure decision from the spec,
//! what the broker has, and what the status records the operator created.
//!
//! A topic that existed before the pipeline named it belongs to someone else:
//! it is refused unless the spec adopts it, and an adopted topic is used as it
//! is, never grown and never deleted. Only a topic the status records as
//! created by the operator (`owned`, `dlqOwned`) is grown and, with
//! `deletionPolicy: Delete`, deleted.

use std::collections::{BTreeSet, HashMap};

use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::PipelineSpec;
use hookline_contract::status::{TopicStatus, WebhookPipelineStatus};
use hookline_kafka::topics::{Declared, Outcome, TopicPlan};

/// What the operator may do with each declared topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Topics the operator created, or is about to create: planned as the
    /// spec says (created, grown, or adopted partitions grown outside).
    pub managed: Vec<Declared>,
    /// Topics the spec adopts, with the partitions the broker has: no request
    /// is ever made for them.
    pub adopted: Vec<(String, i32)>,
    /// Topics that existed before the pipeline named them, without `adopt`.
    pub refused: Vec<String>,
}

/// Decides for each of `declared` (the spec's topics and DLQs) given the
/// broker's partition counts and the `previous` status.
pub fn decide(
    spec: &PipelineSpec,
    declared: &[Declared],
    broker: &HashMap<String, i32>,
    previous: &[TopicStatus],
) -> Ownership {
    let recorded = recorded(previous);
    let mut ownership = Ownership::default();
    for topic in declared {
        let existing = broker.get(&topic.name).copied();
        match existing {
            _ if recorded.contains(topic.name.as_str()) => {
                ownership.managed.push(topic.clone());
            }
            None => ownership.managed.push(topic.clone()),
            Some(partitions) if adopts(spec, &topic.name) => {
                ownership.adopted.push((topic.name.clone(), partitions));
            }
            Some(_) => ownership.refused.push(topic.name.clone()),
        }
    }
    ownership
}

/// Whether the spec adopts `topic` (a main topic or its DLQ).
fn adopts(spec: &PipelineSpec, topic: &str) -> bool {
    spec.topics
        .iter()
        .any(|t| t.adopt && (t.name == topic || dlq_topic(&t.name) == topic))
}

/// The topics `status` records as created by the operator.
fn recorded(status: &[TopicStatus]) -> BTreeSet<&str> {
    status
        .iter()
        .flat_map(|t| {
            [
                t.owned.then_some(t.name.as_str()),
                t.dlq_owned.then_some(t.dlq.as_str()),
            ]
        })
        .flatten()
        .collect()
}

/// The status entries to write before creating anything, when a topic is to
/// be created that the status does not yet record as the operator's; `None`
/// when there is none.
///
/// Why before: were the operator to stop between CreateTopics and the status
/// write, its next reconcile would find a topic it made, not recorded, and
/// refuse it as someone else's. Recording the intent first makes the status
/// the record in every order of events; a creation that then fails leaves a
/// record of a topic that does not exist, which the next reconcile creates.
pub fn intent(
    spec: &PipelineSpec,
    ownership: &Ownership,
    broker: &HashMap<String, i32>,
    previous: &[TopicStatus],
) -> Option<Vec<TopicStatus>> {
    let recorded = recorded(previous);
    let to_create: BTreeSet<&str> = ownership
        .managed
        .iter()
        .map(|d| d.name.as_str())
        .filter(|name| !broker.contains_key(*name) && !recorded.contains(name))
        .collect();
    if to_create.is_empty() {
        return None;
    }
    let mut entries = previous.to_vec();
    for topic in &spec.topics {
        let dlq = dlq_topic(&topic.name);
        let index = match entries.iter().position(|e| e.name == topic.name) {
            Some(index) => index,
            None => {
                entries.push(TopicStatus {
                    name: topic.name.clone(),
                    spec_partitions: topic.partitions,
                    dlq: dlq.clone(),
                    ..TopicStatus::default()
                });
                entries.len() - 1
            }
        };
        let entry = &mut entries[index];
        entry.owned |= to_create.contains(topic.name.as_str());
        entry.dlq_owned |= to_create.contains(dlq.as_str());
    }
    Some(entries)
}

/// The topics of `managed` that are the operator's after `plans` were carried
/// out as `outcomes` say, and those found to be someone else's: a creation
/// answered "already exists" means another client created the topic between
/// the operator's look and its request, so the topic is not the operator's.
pub fn settle(
    ownership: &Ownership,
    plans: &[TopicPlan],
    outcomes: &[Outcome],
) -> (BTreeSet<String>, Vec<String>) {
    let raced: BTreeSet<&str> = plans
        .iter()
        .zip(outcomes)
        .filter(|(plan, outcome)| {
            matches!(plan, TopicPlan::Create { .. })
                && outcome.change.is_none()
                && outcome.problem.is_none()
        })
        .map(|(plan, _)| plan.topic())
        .collect();
    let owned = ownership
        .managed
        .iter()
        .map(|d| d.name.as_str())
        .filter(|name| !raced.contains(name))
        .map(str::to_owned)
        .collect();
    (owned, raced.into_iter().map(str::to_owned).collect())
}

/// The topics `deletionPolicy: Delete` may delete: those the status records
/// as created by the operator, and nothing else.
pub fn deletable(status: Option<&WebhookPipelineStatus>) -> Vec<String> {
    status
        .map(|s| recorded(&s.topics).into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pipeline;
    use hookline_kafka::topics::{self, Change};

    fn broker(list: &[(&str, i32)]) -> HashMap<String, i32> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    fn owned(name: &str, dlq: bool) -> TopicStatus {
        TopicStatus {
            name: name.into(),
            partitions: 4,
            spec_partitions: 4,
            dlq: dlq_topic(name),
            workers_ready: 0,
            owned: true,
            dlq_owned: dlq,
        }
    }

    fn names(declared: &[Declared]) -> Vec<&str> {
        declared.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn a_topic_that_existed_before_is_refused_and_missing_ones_are_managed() {
        let spec = pipeline().without_topic("disputes.webhooks").build().spec;
        let declared = topics::declared(&spec);
        let found = decide(&spec, &declared, &broker(&[("orders.webhooks", 4)]), &[]);
        assert_eq!(found.refused, vec!["orders.webhooks"]);
        assert_eq!(names(&found.managed), vec!["orders.webhooks.DLQ"]);
        assert!(found.adopted.is_empty());
    }

    #[test]
    fn an_adopted_topic_and_its_existing_dlq_are_used_as_they_are() {
        let spec = pipeline()
            .without_topic("disputes.webhooks")
            .adopting("orders.webhooks")
            .build()
            .spec;
        let declared = topics::declared(&spec);
        let have = broker(&[("orders.webhooks", 2), ("orders.webhooks.DLQ", 1)]);
        let found = decide(&spec, &declared, &have, &[]);
        assert_eq!(
            found.adopted,
            vec![
                ("orders.webhooks".to_owned(), 2),
                ("orders.webhooks.DLQ".to_owned(), 1)
            ]
        );
        assert!(found.refused.is_empty() && found.managed.is_empty());
        assert_eq!(intent(&spec, &found, &have, &[]), None, "nothing to create");
    }

    #[test]
    fn a_topic_recorded_as_created_stays_managed_across_reconciles() {
        let spec = pipeline().without_topic("disputes.webhooks").build().spec;
        let declared = topics::declared(&spec);
        let have = broker(&[("orders.webhooks", 8), ("orders.webhooks.DLQ", 1)]);
        let found = decide(&spec, &declared, &have, &[owned("orders.webhooks", true)]);
        assert_eq!(
            names(&found.managed),
            vec!["orders.webhooks", "orders.webhooks.DLQ"]
        );
        // The DLQ not recorded as created is someone else's.
        let found = decide(&spec, &declared, &have, &[owned("orders.webhooks", false)]);
        assert_eq!(found.refused, vec!["orders.webhooks.DLQ"]);
    }

    #[test]
    fn the_intent_to_create_is_recorded_before_anything_is_created() {
        let spec = pipeline().without_topic("disputes.webhooks").build().spec;
        let declared = topics::declared(&spec);
        let found = decide(&spec, &declared, &HashMap::new(), &[]);
        let entries = intent(&spec, &found, &HashMap::new(), &[]).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].owned && entries[0].dlq_owned, "{entries:?}");
        // Once recorded, a topic found on the broker is the operator's: the
        // crash between CreateTopics and the status write is covered.
        let have = broker(&[("orders.webhooks", 4)]);
        let found = decide(&spec, &declared, &have, &entries);
        assert!(found.refused.is_empty(), "{found:?}");
        assert_eq!(intent(&spec, &found, &have, &entries), None);
    }

    #[test]
    fn a_creation_answered_already_exists_is_not_the_operators() {
        let spec = pipeline().without_topic("disputes.webhooks").build().spec;
        let declared = topics::declared(&spec);
        let found = decide(&spec, &declared, &HashMap::new(), &[]);
        let plans = topics::plan(&found.managed, &HashMap::new());
        let outcomes = vec![
            Outcome {
                topic: "orders.webhooks".into(),
                partitions: 4,
                change: None,
                problem: None,
            },
            Outcome {
                topic: "orders.webhooks.DLQ".into(),
                partitions: 1,
                change: Some(Change::Created(1)),
                problem: None,
            },
        ];
        let (owned, raced) = settle(&found, &plans, &outcomes);
        assert_eq!(raced, vec!["orders.webhooks"]);
        assert_eq!(
            owned.into_iter().collect::<Vec<_>>(),
            vec!["orders.webhooks.DLQ"]
        );
    }

    #[test]
    fn only_what_the_status_records_as_created_is_deletable() {
        let status = WebhookPipelineStatus {
            topics: vec![
                owned("orders.webhooks", false),
                TopicStatus {
                    owned: false,
                    ..owned("payments.ledger", false)
                },
            ],
            ..WebhookPipelineStatus::default()
        };
        assert_eq!(deletable(Some(&status)), vec!["orders.webhooks"]);
        assert!(deletable(None).is_empty());
    }
}
