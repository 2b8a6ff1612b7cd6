//! Which pipeline owns a topic when two claim it: a pure, deterministic rule.

use hookline_contract::pipeline::WebhookPipeline;
use kube::ResourceExt;

/// The topics of `pipeline` that an older pipeline on the same brokers also
/// claims, each with that pipeline's `namespace/name`. The older pipeline (by
/// creation time, then namespace and name) keeps the topic; the newer one gets
/// the conflict, whatever order the operator sees them in.
pub fn lost_topics(pipeline: &WebhookPipeline, all: &[WebhookPipeline]) -> Vec<(String, String)> {
    let mut lost = Vec::new();
    for topic in names(pipeline) {
        let winner = all
            .iter()
            .filter(|other| {
                other.spec.kafka.bootstrap_servers == pipeline.spec.kafka.bootstrap_servers
            })
            .filter(|other| other.metadata.deletion_timestamp.is_none())
            .filter(|other| names(other).any(|t| t == topic))
            .min_by_key(|other| precedence(other));
        if let Some(winner) = winner
            && precedence(winner) != precedence(pipeline)
        {
            lost.push((
                topic,
                format!(
                    "{}/{}",
                    winner.namespace().unwrap_or_default(),
                    winner.name_any()
                ),
            ));
        }
    }
    lost
}

/// Whether another live pipeline on the same brokers claims `topic`.
pub fn claimed_by_another(
    pipeline: &WebhookPipeline,
    topic: &str,
    all: &[WebhookPipeline],
) -> bool {
    all.iter()
        .filter(|other| precedence(other) != precedence(pipeline))
        .filter(|other| other.metadata.deletion_timestamp.is_none())
        .filter(|other| other.spec.kafka.bootstrap_servers == pipeline.spec.kafka.bootstrap_servers)
        .any(|other| names(other).any(|t| t == topic))
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
        p
    }

    #[test]
    fn the_newer_pipeline_loses_a_shared_topic_whatever_the_order() {
        let old = created(pipeline().build(), 100);
        let new = created(pipeline().named("copycat", "uid-2").build(), 200);
        let all = [new.clone(), old.clone()];
        assert!(lost_topics(&old, &all).is_empty());
        let lost = lost_topics(&new, &all);
        assert!(
            lost.contains(&("orders.webhooks".to_owned(), "default/payments".to_owned())),
            "{lost:?}"
        );
        assert_eq!(lost_topics(&new, &[old, new.clone()]), lost);
    }

    #[test]
    fn pipelines_on_other_brokers_do_not_conflict() {
        let old = created(pipeline().build(), 100);
        let mut elsewhere = created(pipeline().named("elsewhere", "uid-3").build(), 200);
        elsewhere.spec.kafka.bootstrap_servers = "other-kafka:9092".into();
        assert!(lost_topics(&elsewhere, &[old, elsewhere.clone()]).is_empty());
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
        assert!(claimed_by_another(
            &b,
            "orders.webhooks",
            &[a.clone(), b.clone()]
        ));
        assert!(!claimed_by_another(&b, "refunds.webhooks", &[a, b.clone()]));
    }
}
