use std::collections::BTreeMap;

use super::*;
use crate::fixtures::pipeline;
use hookline_contract::pipeline::{DeletionPolicy, InvalidPolicy, SourceScheme, WebhookPipeline};

fn images() -> Images {
    Images {
        ingest: "hookline-ingest:test".into(),
        worker: "hookline-worker:test".into(),
        pull_policy: PullPolicy::IfNotPresent,
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

/// The digest annotation of a Deployment's pod template.
fn template_digest(deployment: &Deployment) -> String {
    deployment
        .spec
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
fn workers_get_the_worker_contract() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    let worker = &children.workers[0];
    assert_eq!(
        args(worker),
        vec![
            "--pipeline=/etc/hookline/pipeline/pipeline.yaml",
            "--secrets-dir=/etc/hookline/secrets",
            "--topic=orders.webhooks",
            "--listen=0.0.0.0:9090",
            "--session-timeout=10s",
        ]
    );
    let container = &pod(worker).containers[0];
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
fn ingest_mounts_each_sources_secret_beside_the_signing_secret_and_workers_do_not() {
    let mut pipeline = pipeline()
        .with_source("gh", SourceScheme::Github)
        .with_source("chat", SourceScheme::Slack)
        .build();
    // A source may share the signing Secret: mounted once.
    pipeline.spec.sources[1].secret_ref.name = "provider-secrets".into();
    let children = children(&pipeline, &BTreeMap::new(), &images());
    assert_eq!(
        mount_paths(&pod(&children.ingest).containers[0]),
        vec![
            "/etc/hookline/pipeline",
            "/etc/hookline/secrets/provider-secrets",
            "/etc/hookline/secrets/gh-secrets",
        ]
    );
    for worker in &children.workers {
        assert!(
            !mount_paths(&pod(worker).containers[0]).contains(&"/etc/hookline/secrets/gh-secrets"),
            "workers never verify signatures"
        );
    }
}

#[test]
fn kafka_and_shard_tls_secrets_are_mounted_where_the_binaries_read_them() {
    let mut pipeline = pipeline().with_kafka_security().build();
    pipeline.spec.shards[0].ca_secret_ref = Some(hookline_contract::pipeline::SecretKeyRef {
        name: "pg-ca".into(),
        key: "ca.crt".into(),
    });
    // The second shard shares the CA Secret: mounted once.
    pipeline.spec.shards[1].ca_secret_ref = pipeline.spec.shards[0].ca_secret_ref.clone();
    let children = children(&pipeline, &BTreeMap::new(), &images());
    assert_eq!(
        mount_paths(&pod(&children.ingest).containers[0]),
        vec![
            "/etc/hookline/pipeline",
            "/etc/hookline/secrets/provider-secrets",
            "/etc/hookline/secrets/kafka-ca",
            "/etc/hookline/secrets/kafka-user",
        ]
    );
    for worker in &children.workers {
        assert_eq!(
            mount_paths(&pod(worker).containers[0]),
            vec![
                "/etc/hookline/pipeline",
                "/etc/hookline/secrets/pg-shard-0",
                "/etc/hookline/secrets/pg-ca",
                "/etc/hookline/secrets/pg-shard-1",
                "/etc/hookline/secrets/kafka-ca",
                "/etc/hookline/secrets/kafka-user",
            ]
        );
    }
}

#[test]
fn kafka_security_rolls_ingest_and_workers() {
    let plain = children(&pipeline().build(), &BTreeMap::new(), &images());
    let secure = children(
        &pipeline().with_kafka_security().build(),
        &BTreeMap::new(),
        &images(),
    );
    assert_ne!(
        template_digest(&plain.ingest),
        template_digest(&secure.ingest)
    );
    assert_ne!(
        template_digest(&plain.workers[0]),
        template_digest(&secure.workers[0])
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

/// Which of (ingest, the orders workers, the disputes workers) a change of
/// the fixture pipeline rolls: whose pod-template digest differs.
fn rolled_by(change: impl FnOnce(&mut WebhookPipeline)) -> (bool, bool, bool) {
    let digests = |pipeline: &WebhookPipeline| {
        let children = children(pipeline, &BTreeMap::new(), &images());
        let worker = |topic: &str| {
            children
                .workers
                .iter()
                .find(|w| w.metadata.name.as_deref() == Some(&worker_name("payments", topic)))
                .map(template_digest)
                .unwrap()
        };
        (
            template_digest(&children.ingest),
            worker("orders.webhooks"),
            worker("disputes.webhooks"),
        )
    };
    let before = pipeline().build();
    let mut after = before.clone();
    change(&mut after);
    let (before, after) = (digests(&before), digests(&after));
    (
        before.0 != after.0,
        before.1 != after.1,
        before.2 != after.2,
    )
}

#[test]
fn an_unchanged_manifest_rolls_nothing() {
    assert_eq!(rolled_by(|_| {}), (false, false, false));
}

#[test]
fn each_child_rolls_for_what_it_reads_and_for_nothing_else() {
    // (ingest, orders workers, disputes workers)
    let topic = |p: &mut WebhookPipeline, name: &str| -> usize {
        p.spec.topics.iter().position(|t| t.name == name).unwrap()
    };
    assert_eq!(
        rolled_by(|p| p.spec.kafka.bootstrap_servers = "kafka-2:9092".into()),
        (true, true, true),
        "every binary connects to the brokers"
    );
    assert_eq!(
        rolled_by(|p| {
            let i = topic(p, "orders.webhooks");
            p.spec.topics[i].pointers.user_id = "/data/customer_id".into();
        }),
        (true, true, false),
        "ingest and the orders workers read the orders pointers"
    );
    assert_eq!(
        rolled_by(|p| {
            let i = topic(p, "orders.webhooks");
            p.spec.topics[i].invalid_policy = InvalidPolicy::Reject;
        }),
        (true, false, false),
        "only ingest applies the invalid policy"
    );
    assert_eq!(
        rolled_by(|p| *p = pipeline().with_partitions("refunds.webhooks", 2).build()),
        (true, false, false),
        "ingest routes the new topic; a worker reads its own topic only"
    );
    assert_eq!(
        rolled_by(|p| p.spec.ingest.signing_secret_ref.name = "provider-secrets-2".into()),
        (true, false, false)
    );
    assert_eq!(
        rolled_by(|p| *p = pipeline().with_source("gh", SourceScheme::Github).build()),
        (true, false, false),
        "ingest serves and verifies the sources; the workers never read them"
    );
    assert_eq!(
        rolled_by(|p| {
            *p = pipeline().with_source("gh", SourceScheme::Github).build();
            p.spec.sources[0].secret_ref.key = "rotated".into();
        }),
        (true, false, false),
        "a source's secret key is read at startup"
    );
    // Admission refuses a changed shard list; who reads it is what counts here.
    assert_eq!(
        rolled_by(|p| *p = pipeline().with_shards(4).build()),
        (false, true, true),
        "the workers write to the shards; ingest never does"
    );
    assert_eq!(
        rolled_by(|p| p.spec.ingest.replicas = 5),
        (false, false, false),
        "replicas are the Deployment's, not the pod's"
    );
    assert_eq!(
        rolled_by(|p| p.spec.deletion_policy = DeletionPolicy::Delete),
        (false, false, false),
        "the deletion policy is the operator's alone"
    );
}

#[test]
fn a_partition_patch_leaves_the_ingest_pods_running() {
    let before = children(&pipeline().build(), &BTreeMap::new(), &images());
    let grown = pipeline().with_partitions("orders.webhooks", 8).build();
    let observed = BTreeMap::from([("orders.webhooks".to_owned(), 8)]);
    let after = children(&grown, &observed, &images());
    assert_eq!(
        template_digest(&after.ingest),
        template_digest(&before.ingest),
        "ingest learns partition counts from the broker: a partition patch must not roll it"
    );
    assert_eq!(after.ingest, before.ingest);
}

#[test]
fn a_partition_patch_scales_the_topics_workers_and_restarts_none() {
    let before = children(&pipeline().build(), &BTreeMap::new(), &images());
    let grown = pipeline().with_partitions("orders.webhooks", 8).build();
    let observed = BTreeMap::from([("orders.webhooks".to_owned(), 8)]);
    let after = children(&grown, &observed, &images());
    let (orders_before, orders_after) = (&before.workers[0], &after.workers[0]);
    assert_eq!(orders_after.spec.as_ref().unwrap().replicas, Some(8));
    assert_eq!(
        orders_after.spec.as_ref().unwrap().template,
        orders_before.spec.as_ref().unwrap().template,
        "the new partitions go to the pods that join: the running workers keep theirs"
    );
    assert_eq!(
        after.workers[1], before.workers[1],
        "the disputes workers do not read the orders topic"
    );
    assert_ne!(after.config, before.config, "the manifest itself changed");
}

#[test]
fn pods_are_pulled_as_the_operator_is_told() {
    let images = Images {
        pull_policy: PullPolicy::Never,
        ..images()
    };
    let children = children(&pipeline().build(), &BTreeMap::new(), &images);
    for deployment in children.workers.iter().chain([&children.ingest]) {
        assert_eq!(
            pod(deployment).containers[0].image_pull_policy.as_deref(),
            Some("Never")
        );
    }
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

fn labels_of(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap()
}

#[test]
fn pods_without_a_template_get_modest_requests_and_a_memory_limit() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    for (deployment, defaults) in std::iter::once((&children.ingest, &INGEST_RESOURCES))
        .chain(children.workers.iter().map(|w| (w, &WORKER_RESOURCES)))
    {
        let resources = pod(deployment).containers[0].resources.clone().unwrap();
        let requests = resources.requests.unwrap();
        assert_eq!(requests["cpu"].0, defaults.cpu_request);
        assert_eq!(requests["memory"].0, defaults.memory_request);
        assert_eq!(resources.limits.unwrap()["memory"].0, defaults.memory_limit);
    }
}

#[test]
fn a_template_shapes_the_pods_but_never_their_selector_labels() {
    let mut pipeline = pipeline().build();
    let template: hookline_contract::pipeline::PodTemplate = serde_json::from_value(serde_json::json!({
        "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
        "nodeSelector": {"pool": "webhooks"},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "priorityClassName": "high",
        "imagePullSecrets": [{"name": "registry"}],
        "podAnnotations": {"team": "payments", CONFIG_DIGEST: "forged"},
        "podLabels": {
            "team": "payments",
            "app.kubernetes.io/instance": "someone-else",
            "app.kubernetes.io/component": "other",
            "hookline.dev/topic": "other"
        },
        "env": [{"name": "EXTRA", "value": "1"}, {"name": "HOOKLINE_INSTANCE_ID", "value": "forged"}]
    }))
    .unwrap();
    pipeline.spec.ingest.template = Some(template.clone());
    pipeline.spec.workers.template = Some(template);
    let children = children(&pipeline, &BTreeMap::new(), &images());
    for deployment in std::iter::once(&children.ingest).chain(&children.workers) {
        let labels = labels_of(deployment);
        let selector = deployment
            .spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .clone()
            .unwrap();
        for (key, value) in &selector {
            assert_eq!(labels.get(key), Some(value), "{key} is the selector's");
        }
        assert_eq!(labels["team"], "payments");
        let meta = deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap();
        let annotations = meta.annotations.as_ref().unwrap();
        assert_eq!(annotations["team"], "payments");
        assert_ne!(annotations[CONFIG_DIGEST], "forged");
        let pod = pod(deployment);
        assert_eq!(pod.node_selector.as_ref().unwrap()["pool"], "webhooks");
        assert_eq!(pod.tolerations.as_ref().unwrap().len(), 1);
        assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
        assert_eq!(pod.image_pull_secrets.as_ref().unwrap()[0].name, "registry");
        let container = &pod.containers[0];
        assert_eq!(
            container
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()["memory"]
                .0,
            "1Gi"
        );
        let env = container.env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "EXTRA"));
        let ids: Vec<_> = env
            .iter()
            .filter(|e| e.name == "HOOKLINE_INSTANCE_ID")
            .collect();
        assert_eq!(ids.len(), 1, "never set twice");
    }
}

#[test]
fn ingest_keeps_one_pod_through_drains_when_it_has_several() {
    let two = children(&pipeline().build(), &BTreeMap::new(), &images());
    let spec = two.ingest_budget.spec.unwrap();
    assert_eq!(spec.min_available, Some(IntOrString::Int(1)));
    assert_eq!(spec.max_unavailable, None);
    assert_eq!(
        spec.selector.unwrap().match_labels,
        two.ingest.spec.unwrap().selector.match_labels
    );
    let mut one = pipeline().build();
    one.spec.ingest.replicas = 1;
    let one = children(&one, &BTreeMap::new(), &images())
        .ingest_budget
        .spec
        .unwrap();
    assert_eq!(
        (one.min_available, one.max_unavailable),
        (None, Some(IntOrString::Int(1)))
    );
}

#[test]
fn the_network_policy_exists_only_when_enabled_and_opens_the_webhook_port() {
    let off = children(&pipeline().build(), &BTreeMap::new(), &images());
    assert!(off.ingest_network_policy.is_none());
    let on = children(
        &pipeline().with_network_policy(true).build(),
        &BTreeMap::new(),
        &images(),
    );
    let policy = on.ingest_network_policy.unwrap().spec.unwrap();
    let ingress = policy.ingress.unwrap();
    assert_eq!(ingress.len(), 1, "metrics stay closed without metricsFrom");
    assert_eq!(ingress[0].from, None, "webhooks from anyone without from");
    assert_eq!(
        ingress[0].ports.as_ref().unwrap()[0].port,
        Some(IntOrString::Int(INGEST_PORT))
    );
}

#[test]
fn topic_defaults_roll_nothing_and_a_pool_size_rolls_only_the_workers() {
    assert_eq!(
        rolled_by(|p| p.spec.kafka.topic_defaults.replication_factor = Some(3)),
        (false, false, false),
        "only the operator reads them, when it creates topics"
    );
    assert_eq!(
        rolled_by(|p| p.spec.shards[0].pool_size = Some(8)),
        (false, true, true),
        "every worker opens a pool to every shard, at startup"
    );
}

#[test]
fn worker_pods_are_dynamic_group_members_with_a_short_session_timeout() {
    let children = children(&pipeline().build(), &BTreeMap::new(), &images());
    for worker in &children.workers {
        let container = &pod(worker).containers[0];
        // A pod name changes on every rollout: as a static id it would leave
        // a member holding partitions until its session ran out.
        let from_pod_name = container.env.iter().flatten().any(|e| {
            e.name == "HOOKLINE_INSTANCE_ID"
                || e.value_from
                    .as_ref()
                    .and_then(|v| v.field_ref.as_ref())
                    .is_some_and(|f| f.field_path == "metadata.name")
        });
        assert!(!from_pod_name, "{:?}", container.env);
        let args = args(worker);
        assert!(
            !args.iter().any(|a| a.starts_with("--instance-id")),
            "{args:?}"
        );
        assert!(
            args.contains(&"--session-timeout=10s".to_owned()),
            "{args:?}"
        );
    }
}
