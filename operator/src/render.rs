//! `hookline-operator render -f pipeline.yaml`: every object the operator
//! would apply for a pipeline, from the same code the controller uses, taking
//! the spec's partition counts as observed.

use std::collections::BTreeMap;
use std::path::Path;

use hookline_contract::pipeline::{PipelineManifest, WebhookPipeline};
use serde::Serialize;

use crate::workloads::{Images, children};

/// The YAML documents of the children of the pipeline in `file`.
pub fn render(file: &Path, images: &Images) -> anyhow::Result<String> {
    let manifest = PipelineManifest::read(file)?;
    let mut pipeline = WebhookPipeline::new(&manifest.metadata.name, manifest.spec);
    pipeline.metadata.namespace = Some(
        manifest
            .metadata
            .namespace
            .unwrap_or_else(|| "default".into()),
    );
    let observed: BTreeMap<String, i32> = pipeline
        .spec
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions))
        .collect();
    let children = children(&pipeline, &observed, images);
    let mut out = String::new();
    push(&mut out, &children.config)?;
    push(&mut out, &children.ingest)?;
    push(&mut out, &children.ingest_service)?;
    push(&mut out, &children.ingest_budget)?;
    if let Some(policy) = &children.ingest_network_policy {
        push(&mut out, policy)?;
    }
    for worker in &children.workers {
        push(&mut out, worker)?;
    }
    Ok(out)
}

fn push(out: &mut String, object: &impl Serialize) -> anyhow::Result<()> {
    out.push_str("---\n");
    out.push_str(&serde_saphyr::to_string(object)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::PullPolicy;

    #[test]
    fn renders_every_child_as_yaml_documents() {
        let dir = std::env::temp_dir().join(format!("hookline-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pipeline.yaml");
        std::fs::write(
            &file,
            "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {name: payments}\nspec:\n  kafka: {bootstrapServers: kafka:9092}\n  topics: [{name: orders.webhooks, eventType: orders, partitions: 4}]\n  shards: [{name: a, databaseUrlSecretRef: {name: pg-a, key: url}}, {name: b, databaseUrlSecretRef: {name: pg-b, key: url}}]\n  ingest: {replicas: 2, signingSecretRef: {name: provider}}\n",
        )
        .unwrap();
        let images = Images {
            ingest: "i:1".into(),
            worker: "w:1".into(),
            pull_policy: PullPolicy::IfNotPresent,
        };
        let text = render(&file, &images).unwrap();
        let kinds: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("kind: "))
            .collect();
        assert_eq!(
            kinds,
            vec![
                "ConfigMap",
                "Deployment",
                "Service",
                "PodDisruptionBudget",
                "Deployment"
            ]
        );
        assert!(
            text.contains("name: payments-worker-orders-webhooks"),
            "{text}"
        );
        assert!(text.contains("replicas: 4"), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
