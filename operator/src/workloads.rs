//! What the cluster should hold for a pipeline: a pure function of the
//! resource and the partition counts observed in Kafka. The controller applies
//! it; `hookline-operator render` prints it.

use std::collections::BTreeMap;

use hookline_contract::pipeline::{
    API_VERSION, KIND, KafkaSpec, Metadata, PipelineManifest, WebhookPipeline,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

mod digest;
mod policy;
mod template;

pub use template::{DefaultResources, INGEST_RESOURCES, WORKER_RESOURCES};

/// Where the pods find the manifest and the Secrets.
const PIPELINE_DIR: &str = "/etc/hookline/pipeline";
const PIPELINE_FILE: &str = "pipeline.yaml";
const SECRETS_DIR: &str = "/etc/hookline/secrets";
const INGEST_PORT: i32 = 8080;
/// Where ingest serves `/metrics`, apart from the webhooks.
const INGEST_METRICS_PORT: i32 = 9091;
const WORKER_PORT: i32 = 9090;
/// How long the group waits for a worker that went silent (crashed, or cut
/// off) before its partitions move. Workers are dynamic members: a pod name
/// changes on every rollout, so as static ids they would leave members that
/// hold partitions until this runs out; dynamic members leave the group when
/// they stop, and a rollout moves partitions at once. Short, since only a
/// crash waits for it; within what a Kafka broker accepts (6 s and up).
const WORKER_SESSION_TIMEOUT: &str = "10s";
/// Pod-template annotation with a digest of what the pod reads of the
/// manifest (`workloads/digest.rs`): the binaries read it once at startup, so
/// a change they read must roll their pods, and only such a change.
pub const CONFIG_DIGEST: &str = "hookline.dev/config-digest";

/// Images of the pods the operator creates.
#[derive(Debug, Clone)]
pub struct Images {
    pub ingest: String,
    pub worker: String,
    /// The `imagePullPolicy` of their containers.
    pub pull_policy: PullPolicy,
}

/// When the kubelet pulls an image (Kubernetes' `imagePullPolicy`, spelled as
/// Kubernetes spells it on the command line too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// On every pod start.
    #[value(name = "Always")]
    Always,
    /// Only when the node lacks the image: release tags never change, and
    /// images loaded into the nodes (`kind load`) are used as they are.
    #[default]
    #[value(name = "IfNotPresent")]
    IfNotPresent,
    /// Never: the image must be on the node already.
    #[value(name = "Never")]
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The children of one pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub config: ConfigMap,
    pub ingest: Deployment,
    pub ingest_service: Service,
    /// Keeps an ingest pod serving through node drains.
    pub ingest_budget: PodDisruptionBudget,
    /// Present when `spec.ingest.networkPolicy.enabled`.
    pub ingest_network_policy: Option<NetworkPolicy>,
    /// One per topic, in the spec's order.
    pub workers: Vec<Deployment>,
}

/// The desired children of `pipeline`, with one worker replica per partition
/// Kafka has (`observed`, by topic; the spec's count where none was seen).
pub fn children(
    pipeline: &WebhookPipeline,
    observed: &BTreeMap<String, i32>,
    images: &Images,
) -> Children {
    let name = pipeline.metadata.name.clone().unwrap_or_default();
    let namespace = pipeline.metadata.namespace.clone();
    let manifest = PipelineManifest {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
        metadata: Metadata {
            name: name.clone(),
            namespace: namespace.clone(),
        },
        spec: pipeline.spec.clone(),
    };
    let manifest = serde_saphyr::to_string(&manifest).unwrap_or_default();
    let base = Base {
        name: &name,
        namespace: namespace.as_deref(),
        pull_policy: images.pull_policy,
        owner: pipeline.controller_owner_ref(&()),
    };
    let config = ConfigMap {
        metadata: base.meta(&format!("{name}-pipeline"), "config", None),
        data: Some(BTreeMap::from([(PIPELINE_FILE.to_owned(), manifest)])),
        ..ConfigMap::default()
    };

    let kafka_secrets = kafka_secrets(&pipeline.spec.kafka);
    let mut ingest_secrets = vec![pipeline.spec.ingest.signing_secret_ref.name.clone()];
    // Each source's secrets are mounted like the signing Secret's: ingest
    // reads them at startup from the same directory.
    ingest_secrets.extend(
        pipeline
            .spec
            .sources
            .iter()
            .map(|source| source.secret_ref.name.clone()),
    );
    ingest_secrets.extend(kafka_secrets.iter().cloned());
    let mut ingest = base.deployment(
        "ingest",
        None,
        pipeline.spec.ingest.replicas,
        &images.ingest,
        vec![
            format!("--listen=0.0.0.0:{INGEST_PORT}"),
            // Metrics stay off the public port, on one the Service does not
            // expose; a scraper reaches the pods directly.
            format!("--metrics-listen=0.0.0.0:{INGEST_METRICS_PORT}"),
        ],
        INGEST_PORT,
        &ingest_secrets,
        digest::ingest(&pipeline.spec),
    );
    add_port(&mut ingest, "metrics", INGEST_METRICS_PORT);
    template::shape(
        &mut ingest,
        pipeline.spec.ingest.template.as_ref(),
        &INGEST_RESOURCES,
    );
    let ingest_selector = selector(&base.labels("ingest", None));
    let ingest_budget = policy::disruption_budget(
        base.meta(&format!("{name}-ingest"), "ingest", None),
        ingest_selector.clone(),
        pipeline.spec.ingest.replicas,
    );
    let ingest_network_policy = policy::network_policy(
        base.meta(&format!("{name}-ingest"), "ingest", None),
        ingest_selector,
        pipeline.spec.ingest.network_policy.as_ref(),
        INGEST_PORT,
        INGEST_METRICS_PORT,
    );
    let ingest_service = Service {
        metadata: base.meta(&format!("{name}-ingest"), "ingest", None),
        spec: Some(ServiceSpec {
            selector: Some(selector(&base.labels("ingest", None))),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(INGEST_PORT)),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let mut shard_secrets: Vec<String> = Vec::new();
    for shard in &pipeline.spec.shards {
        shard_secrets.push(shard.database_url_secret_ref.name.clone());
        shard_secrets.extend(shard.ca_secret_ref.as_ref().map(|ca| ca.name.clone()));
    }
    shard_secrets.extend(kafka_secrets);
    let workers = pipeline
        .spec
        .topics
        .iter()
        .map(|topic| {
            let replicas = observed
                .get(&topic.name)
                .copied()
                .unwrap_or(topic.partitions);
            let mut worker = base.deployment(
                "worker",
                Some(&topic.name),
                replicas,
                &images.worker,
                vec![
                    format!("--topic={}", topic.name),
                    format!("--listen=0.0.0.0:{WORKER_PORT}"),
                    format!("--session-timeout={WORKER_SESSION_TIMEOUT}"),
                ],
                WORKER_PORT,
                &shard_secrets,
                digest::worker(&pipeline.spec, topic),
            );
            template::shape(
                &mut worker,
                pipeline.spec.workers.template.as_ref(),
                &WORKER_RESOURCES,
            );
            worker
        })
        .collect();
    Children {
        config,
        ingest,
        ingest_service,
        ingest_budget,
        ingest_network_policy,
        workers,
    }
}

/// The Secrets the Kafka clients read: TLS material and SASL credentials.
fn kafka_secrets(kafka: &KafkaSpec) -> Vec<String> {
    kafka.secret_refs().map(|r| r.name.clone()).collect()
}

/// The name of the worker Deployment of `topic` in pipeline `pipeline`.
pub fn worker_name(pipeline: &str, topic: &str) -> String {
    dns_label(&format!("{pipeline}-worker-{topic}"))
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, at most 63 characters
/// (a long name keeps a hash of the whole so that two never collide).
pub fn dns_label(name: &str) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if label.len() > 63 {
        let hash = format!("{:08x}", hookline_contract::murmur2(name.as_bytes()) as u32);
        label.truncate(54);
        label = format!("{label}-{hash}");
    }
    label.trim_matches('-').to_owned()
}

/// The labels of `labels` that select a workload's pods.
fn selector(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(key, _)| {
            matches!(
                key.as_str(),
                "app.kubernetes.io/instance" | "app.kubernetes.io/component" | "hookline.dev/topic"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

struct Base<'a> {
    name: &'a str,
    namespace: Option<&'a str>,
    pull_policy: PullPolicy,
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
}

impl Base<'_> {
    fn labels(&self, component: &str, topic: Option<&str>) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "hookline".to_owned()),
            (
                "app.kubernetes.io/instance".to_owned(),
                self.name.to_owned(),
            ),
            (
                "app.kubernetes.io/component".to_owned(),
                component.to_owned(),
            ),
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "hookline-operator".to_owned(),
            ),
        ]);
        if let Some(topic) = topic {
            labels.insert("hookline.dev/topic".to_owned(), dns_label(topic));
        }
        labels
    }

    fn meta(&self, name: &str, component: &str, topic: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: self.namespace.map(str::to_owned),
            labels: Some(self.labels(component, topic)),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deployment(
        &self,
        component: &str,
        topic: Option<&str>,
        replicas: i32,
        image: &str,
        mut args: Vec<String>,
        port: i32,
        secrets: &[String],
        config_digest: String,
    ) -> Deployment {
        let name = match topic {
            Some(topic) => worker_name(self.name, topic),
            None => dns_label(&format!("{}-{component}", self.name)),
        };
        let labels = self.labels(component, topic);
        args.splice(
            0..0,
            [
                format!("--pipeline={PIPELINE_DIR}/{PIPELINE_FILE}"),
                format!("--secrets-dir={SECRETS_DIR}"),
            ],
        );
        let mut volumes = vec![Volume {
            name: "pipeline".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: format!("{}-pipeline", self.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        }];
        let mut mounts = vec![VolumeMount {
            name: "pipeline".into(),
            mount_path: PIPELINE_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }];
        let mut seen = std::collections::BTreeSet::new();
        for secret in secrets.iter().filter(|s| seen.insert(s.as_str())) {
            let volume = dns_label(&format!("secret-{secret}"));
            volumes.push(Volume {
                name: volume.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
            mounts.push(VolumeMount {
                name: volume,
                mount_path: format!("{SECRETS_DIR}/{secret}"),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
        let probe = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        Deployment {
            metadata: self.meta(&name, component, topic),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                // A Deployment's selector is immutable: it holds only what
                // identifies the pods, never labels that may be added later.
                selector: LabelSelector {
                    match_labels: Some(selector(&labels)),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        annotations: Some(BTreeMap::from([(
                            CONFIG_DIGEST.to_owned(),
                            config_digest,
                        )])),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: component.into(),
                            image: Some(image.into()),
                            image_pull_policy: Some(self.pull_policy.as_str().into()),
                            args: Some(args),
                            ports: Some(vec![ContainerPort {
                                container_port: port,
                                name: Some("http".into()),
                                ..ContainerPort::default()
                            }]),
                            readiness_probe: Some(probe("/readyz")),
                            liveness_probe: Some(probe("/healthz")),
                            volume_mounts: Some(mounts),
                            security_context: Some(container_security()),
                            ..Container::default()
                        }],
                        volumes: Some(volumes),
                        security_context: Some(pod_security()),
                        // Neither binary calls the Kubernetes API.
                        automount_service_account_token: Some(false),
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }
}

/// The user of the images (distroless `nonroot`).
const NONROOT_UID: i64 = 65532;

/// The pod half of the "restricted" Pod Security Standard: the binaries run
/// as the images' non-root user and need no system calls beyond the runtime's
/// default profile.
fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        // The images' user; numeric, so runAsNonRoot holds for any image.
        run_as_user: Some(NONROOT_UID),
        run_as_group: Some(NONROOT_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The container half: no privilege, no capability, and a read-only root
/// filesystem (configuration and Secrets are mounted; nothing is written).
fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// Adds a named port to the first container of `deployment`'s pods.
fn add_port(deployment: &mut Deployment, name: &str, port: i32) {
    let container = deployment
        .spec
        .as_mut()
        .and_then(|spec| spec.template.spec.as_mut())
        .and_then(|pod| pod.containers.first_mut());
    if let Some(container) = container {
        container
            .ports
            .get_or_insert_with(Vec::new)
            .push(ContainerPort {
                container_port: port,
                name: Some(name.into()),
                ..ContainerPort::default()
            });
    }
}

#[cfg(test)]
mod tests;
