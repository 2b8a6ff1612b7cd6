use std::collections::BTreeMap;

use super::*;
use crate::fixtures::pipeline;
use hookline_contract::pipeline::WebhookPipeline;

fn images() -> Images {
    Images {
        ingest: "hookline-ingest:test".into(),
        worker: "hookline-worker:test".into(),
    }
}

fn pod(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

fn mount_paths(container: &Container) -> Vec<&str> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect()
}

fn args(deployment: &Deployment) -> Vec<String> {
    pod(deployment).containers[0].args.clone().unwrap()
}

#[test]
fn one_worker_deployment_per_topic_with_one_replica_per_partition() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    let replicas: Vec<(String, i32)> = children
        .workers
        .iter()
        .map(|d| {
            (
                d.metadata.name.clone().unwrap(),
                d.spec.as_ref().unwrap().replicas.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replicas,
        vec![
            ("payments-worker-orders-webhooks".to_owned(), 4),
            ("payments-worker-disputes-webhooks".to_owned(), 2)
        ]
    );
}

#[test]
fn workers_follow_the_partitions_kafka_has() {
    let observed = BTreeMap::from([("orders.webhooks".to_owned(), 8)]);
    let children = children(&pipeline().build(), &observed, &images());
    assert_eq!(children.workers[0].spec.as_ref().unwrap().replicas, Some(8));
}

#[test]
fn workers_get_the_worker_contract_and_static_membership_from_the_pod_name() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    let worker = &children.workers[0];
    assert_eq!(
        args(worker),
        vec![
            "--pipeline=/etc/hookline/pipeline/pipeline.yaml",
            "--secrets-dir=/etc/hookline/secrets",
            "--topic=orders.webhooks",
            "--listen=0.0.0.0:9090",
        ]
    );
    let container = &pod(worker).containers[0];
    let env = &container.env.as_ref().unwrap()[0];
    assert_eq!(env.name, "HOOKLINE_INSTANCE_ID");
    assert_eq!(
        env.value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.name"
    );
    let mounts = mount_paths(container);
    assert_eq!(
        mounts,
        vec![
            "/etc/hookline/pipeline",
            "/etc/hookline/secrets/pg-shard-0",
            "/etc/hookline/secrets/pg-shard-1"
        ]
    );
}

#[test]
fn ingest_mounts_the_signing_secret_and_is_served() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    assert_eq!(children.ingest.spec.as_ref().unwrap().replicas, Some(2));
    let container = &pod(&children.ingest).containers[0];
    let mounts = mount_paths(container);
    assert_eq!(
        mounts,
        vec![
            "/etc/hookline/pipeline",
            "/etc/hookline/secrets/provider-secrets"
        ]
    );
    assert!(container.env.is_none(), "ingest needs no instance id");
    let service = children.ingest_service.spec.as_ref().unwrap();
    assert_eq!(
        service.selector,
        children.ingest.spec.as_ref().unwrap().selector.match_labels
    );
}

#[test]
fn config_map_holds_the_manifest_the_binaries_read() {
    let pipeline = pipeline().build();
    let children = children(&pipeline, &BTreeMap::new(), &images());
    let text = &children.config.data.as_ref().unwrap()["pipeline.yaml"];
    let manifest = PipelineManifest::from_yaml(text).unwrap();
    assert_eq!(manifest.spec, pipeline.spec);
    assert_eq!(manifest.metadata.name, "payments");
}

#[test]
fn every_child_is_owned_by_the_pipeline() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    let metas = [
        &children.config.metadata,
        &children.ingest.metadata,
        &children.ingest_service.metadata,
    ]
    .into_iter()
    .chain(children.workers.iter().map(|w| &w.metadata));
    for meta in metas {
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("WebhookPipeline", "payments", Some(true))
        );
    }
}

#[test]
fn names_become_dns_labels_without_collisions() {
    assert_eq!(
        dns_label("payments-worker-orders.webhooks"),
        "payments-worker-orders-webhooks"
    );
    let long_a = dns_label(&format!("p-worker-{}", "a".repeat(80)));
    let long_b = dns_label(&format!("p-worker-{}b", "a".repeat(79)));
    assert!(long_a.len() <= 63 && long_b.len() <= 63);
    assert_ne!(long_a, long_b);
}

#[test]
fn a_changed_manifest_rolls_the_pods_and_an_unchanged_one_does_not() {
    let digest = |pipeline: &WebhookPipeline| {
        let children = children(pipeline, &BTreeMap::new(), &images());
        let template = |d: &Deployment| {
            d.spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()[CONFIG_DIGEST]
                .clone()
        };
        (template(&children.ingest), template(&children.workers[0]))
    };
    let before = digest(&pipeline().build());
    assert_eq!(digest(&pipeline().build()), before);
    let after = digest(&pipeline().with_partitions("refunds.webhooks", 2).build());
    assert_ne!(after.0, before.0, "ingest must learn the new topic");
    assert_ne!(after.1, before.1);
}

#[test]
fn every_pod_meets_the_restricted_pod_security_standard() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    let deployments = children.workers.iter().chain([&children.ingest]);
    for deployment in deployments {
        let name = deployment.metadata.name.clone().unwrap();
        let pod = pod(deployment);
        let security = pod.security_context.as_ref().unwrap();
        assert_eq!(security.run_as_non_root, Some(true), "{name}");
        assert_eq!(security.run_as_user, Some(65532), "{name}");
        assert_eq!(
            security.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault"),
            "{name}"
        );
        assert_eq!(pod.automount_service_account_token, Some(false), "{name}");
        for container in &pod.containers {
            let security = container.security_context.as_ref().unwrap();
            assert_eq!(security.allow_privilege_escalation, Some(false), "{name}");
            assert_eq!(security.read_only_root_filesystem, Some(true), "{name}");
            assert_eq!(
                security.capabilities.as_ref().and_then(|c| c.drop.clone()),
                Some(vec!["ALL".to_owned()]),
                "{name}"
            );
        }
    }
}
