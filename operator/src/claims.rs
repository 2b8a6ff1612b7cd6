//! Which pipeline owns a topic when two claim it: a pure, deterministic rule.
//!
//! Two pipelines claim one topic when they name it on one cluster. One
//! cluster is known by the id its brokers report (recorded in each
//! pipeline's `status.clusterId`), not by bootstrap strings, which spell one
//! cluster in many ways (`kafka:9092`, `kafka.ns.svc:9092`). A pipeline
//! whose id is not known (not reconciled yet, or brokers that report none)
//! may be on the same cluster, so it is counted as if it were: the cost is a
//! conflict that clears once its id is known, never a topic touched by two.

use hookline_contract::pipeline::WebhookPipeline;
use kube::ResourceExt;

/// A topic of this pipeline that an older pipeline claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub topic: String,
    /// The older pipeline, as `namespace/name`.
    pub owner: String,
    /// Whether the owner's cluster id is known (and so is this cluster's).
    pub cluster_known: bool,
}

/// The topics of `pipeline`, whose brokers report `cluster_id`, that an
/// older pipeline on the same cluster also claims. The older pipeline (by
/// creation time, then namespace and name) keeps the topic; the newer one
/// gets the conflict, whatever order the operator sees them in.
pub fn lost_topics(
    pipeline: &WebhookPipeline,
    cluster_id: Option<&str>,
    all: &[WebhookPipeline],
) -> Vec<Lost> {
    let mut lost = Vec::new();
    for topic in names(pipeline) {
        let winner = all
            .iter()
            .filter(|other| {
                precedence(other) == precedence(pipeline) || same_cluster(cluster_id, other)
            })
            .filter(|other| other.metadata.deletion_timestamp.is_none())
            .filter(|other| names(other).any(|t| t == topic))
            .min_by_key(|other| precedence(other));
        if let Some(winner) = winner
            && precedence(winner) != precedence(pipeline)
        {
            lost.push(Lost {
                topic,
                owner: format!(
                    "{}/{}",
                    winner.namespace().unwrap_or_default(),
                    winner.name_any()
                ),
                cluster_known: cluster_id.is_some() && recorded_cluster(winner).is_some(),
            });
        }
    }
    lost
}

/// Whether another live pipeline that may be on the same cluster claims
/// `topic`.
pub fn claimed_by_another(
    pipeline: &WebhookPipeline,
    cluster_id: Option<&str>,
    topic: &str,
    all: &[WebhookPipeline],
) -> bool {
    all.iter()
        .filter(|other| precedence(other) != precedence(pipeline))
        .filter(|other| other.metadata.deletion_timestamp.is_none())
        .filter(|other| same_cluster(cluster_id, other))
        .any(|other| names(other).any(|t| t == topic))
}

/// Whether `other` is, or may be, on the cluster whose id is `cluster_id`:
/// two known ids decide; an unknown one may be anything.
fn same_cluster(cluster_id: Option<&str>, other: &WebhookPipeline) -> bool {
    match (cluster_id, recorded_cluster(other)) {
        (Some(ours), Some(theirs)) => ours == theirs,
        _ => true,
    }
}

fn recorded_cluster(pipeline: &WebhookPipeline) -> Option<&str> {
    pipeline.status.as_ref()?.cluster_id.as_deref()
}

/// A pipeline's topics and their DLQs.
pub fn names(pipeline: &WebhookPipeline) -> impl Iterator<Item = String> + '_ {
    pipeline.spec.topics.iter().flat_map(|t| {
        [
            t.name.clone(),
            hookline_contract::headers::dlq_topic(&t.name),
        ]
    })
}

fn precedence(pipeline: &WebhookPipeline) -> (Option<String>, String, String) {
    (
        pipeline
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
        pipeline.namespace().unwrap_or_default(),
        pipeline.name_any(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pipeline;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn created(mut p: WebhookPipeline, second: i64) -> WebhookPipeline {
        p.metadata.creation_timestamp = Some(Time(Timestamp::from_second(second).unwrap()));
        on(p, "cluster-a")
    }

    /// `p` as reconciled against brokers reporting `cluster`.
    fn on(mut p: WebhookPipeline, cluster: &str) -> WebhookPipeline {
        p.status = Some(hookline_contract::status::WebhookPipelineStatus {
            cluster_id: Some(cluster.to_owned()),
            ..Default::default()
        });
        p
    }

    fn topics(lost: &[Lost]) -> Vec<(&str, &str)> {
        lost.iter()
            .map(|l| (l.topic.as_str(), l.owner.as_str()))
            .collect()
    }

    #[test]
    fn the_newer_pipeline_loses_a_shared_topic_whatever_the_order() {
        let old = created(pipeline().build(), 100);
        let new = created(pipeline().named("copycat", "uid-2").build(), 200);
        let all = [new.clone(), old.clone()];
        let a = Some("cluster-a");
        assert!(lost_topics(&old, a, &all).is_empty());
        let lost = lost_topics(&new, a, &all);
        assert!(
            topics(&lost).contains(&("orders.webhooks", "default/payments")),
            "{lost:?}"
        );
        assert!(lost.iter().all(|l| l.cluster_known));
        assert_eq!(lost_topics(&new, a, &[old, new.clone()]), lost);
    }

    #[test]
    fn pipelines_on_other_brokers_do_not_conflict() {
        let old = created(pipeline().build(), 100);
        // The same bootstrap string, another cluster (another namespace's
        // `kafka` Service): no conflict.
        let elsewhere = on(
            created(pipeline().named("elsewhere", "uid-3").build(), 200),
            "cluster-b",
        );
        assert!(lost_topics(&elsewhere, Some("cluster-b"), &[old, elsewhere.clone()]).is_empty());
    }

    #[test]
    fn a_topic_is_claimed_by_another_only_if_another_lists_it() {
        let a = created(pipeline().build(), 100);
        let b = created(
            pipeline()
                .named("b", "uid-b")
                .with_partitions("refunds.webhooks", 2)
                .build(),
            200,
        );
        let id = Some("cluster-a");
        assert!(claimed_by_another(
            &b,
            id,
            "orders.webhooks",
            &[a.clone(), b.clone()]
        ));
        assert!(!claimed_by_another(
            &b,
            id,
            "refunds.webhooks",
            &[a, b.clone()]
        ));
    }

    #[test]
    fn two_spellings_of_one_cluster_are_one_cluster() {
        let old = created(pipeline().build(), 100);
        let new = created(
            pipeline()
                .named("copycat", "uid-4")
                .with_bootstrap("kafka.default.svc:9092")
                .build(),
            200,
        );
        let all = [old.clone(), new.clone()];
        let lost = lost_topics(&new, Some("cluster-a"), &all);
        assert!(
            topics(&lost).contains(&("orders.webhooks", "default/payments")),
            "{lost:?}"
        );
        assert!(claimed_by_another(
            &old,
            Some("cluster-a"),
            "orders.webhooks",
            &all
        ));
    }

    #[test]
    fn a_pipeline_whose_cluster_is_unknown_may_be_on_this_one() {
        let mut old = created(pipeline().build(), 100);
        old.status = None;
        let new = created(pipeline().named("copycat", "uid-5").build(), 200);
        let all = [old.clone(), new.clone()];
        let lost = lost_topics(&new, Some("cluster-a"), &all);
        assert!(
            !lost.is_empty() && lost.iter().all(|l| !l.cluster_known),
            "{lost:?}"
        );
        assert!(claimed_by_another(
            &new,
            Some("cluster-a"),
            "orders.webhooks",
            &all
        ));
        // Brokers that report no id: the same caution.
        assert!(claimed_by_another(&old, None, "orders.webhooks", &all));
    }
}
