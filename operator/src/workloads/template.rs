//! The spec's pod templates (`spec.ingest.template`, `spec.workers.template`)
//! laid over the pods the operator builds, and the defaults when they say
//! nothing.
//!
//! What the operator sets for its own reasons wins over a template: the
//! labels that select the pods (a Deployment's selector is immutable, and a
//! pod relabelled away from it would be orphaned and replaced forever), the
//! config-digest annotation that rolls the pods, and the environment
//! variables the binaries are given (a template's `env` is appended, so a
//! name the operator sets is not set twice).

use std::collections::BTreeMap;

use hookline_contract::pipeline::PodTemplate;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// What a pod asks for when its template has no `resources`.
///
/// Requests are modest (an idle ingest or worker uses a few MiB and almost no
/// CPU) so that a pipeline fits a namespace's ResourceQuota; there is no CPU
/// limit, since throttling a webhook receiver shows as latency, while the
/// memory limit bounds what a leak or a backlog can take from the node.
pub struct DefaultResources {
    pub cpu_request: &'static str,
    pub memory_request: &'static str,
    pub memory_limit: &'static str,
}

/// Ingest's memory limit covers its own bounds at their defaults: 64 MiB of
/// bodies being read (`--max-reading-bytes`) plus 256 MiB of records waiting
/// for the broker (`--producer-queue-kbytes`), with room for the runtime;
/// below that, a broker outage would turn a full queue (503s) into an OOM kill.
pub const INGEST_RESOURCES: DefaultResources = DefaultResources {
    cpu_request: "50m",
    memory_request: "64Mi",
    memory_limit: "512Mi",
};

/// A worker holds about three batches (`--batch-bytes`, 8 MiB: one in the
/// fetch queue, one arriving, one being written) and one DLQ batch (4 MiB):
/// 256 MiB is several times that.
pub const WORKER_RESOURCES: DefaultResources = DefaultResources {
    cpu_request: "50m",
    memory_request: "64Mi",
    memory_limit: "256Mi",
};

impl DefaultResources {
    fn requirements(&self) -> ResourceRequirements {
        ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity(self.cpu_request.to_owned())),
                (
                    "memory".to_owned(),
                    Quantity(self.memory_request.to_owned()),
                ),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity(self.memory_limit.to_owned()),
            )])),
            ..ResourceRequirements::default()
        }
    }
}

/// Lays `template` over the pods of `deployment`, whose labels, annotations
/// and environment are the operator's; without a template's `resources`,
/// `defaults` apply.
pub(super) fn shape(
    deployment: &mut Deployment,
    template: Option<&PodTemplate>,
    defaults: &DefaultResources,
) {
    let Some(spec) = deployment.spec.as_mut() else {
        return;
    };
    let empty = PodTemplate::default();
    let template = template.unwrap_or(&empty);
    let meta = spec.template.metadata.get_or_insert_with(Default::default);
    merge_under(
        meta.labels.get_or_insert_with(BTreeMap::new),
        &template.pod_labels,
    );
    merge_under(
        meta.annotations.get_or_insert_with(BTreeMap::new),
        &template.pod_annotations,
    );
    let Some(pod) = spec.template.spec.as_mut() else {
        return;
    };
    if !template.node_selector.is_empty() {
        pod.node_selector = Some(template.node_selector.clone());
    }
    if !template.tolerations.is_empty() {
        pod.tolerations = Some(template.tolerations.clone());
    }
    pod.affinity.clone_from(&template.affinity);
    if !template.topology_spread_constraints.is_empty() {
        pod.topology_spread_constraints = Some(template.topology_spread_constraints.clone());
    }
    pod.priority_class_name
        .clone_from(&template.priority_class_name);
    if !template.image_pull_secrets.is_empty() {
        pod.image_pull_secrets = Some(template.image_pull_secrets.clone());
    }
    for container in &mut pod.containers {
        container.resources = Some(
            template
                .resources
                .clone()
                .unwrap_or_else(|| defaults.requirements()),
        );
        let env = container.env.get_or_insert_with(Vec::new);
        for var in &template.env {
            if !env.iter().any(|own| own.name == var.name) {
                env.push(var.clone());
            }
        }
        if env.is_empty() {
            container.env = None;
        }
    }
}

/// Adds the entries of `extra` whose keys `own` does not have.
fn merge_under(own: &mut BTreeMap<String, String>, extra: &BTreeMap<String, String>) {
    for (key, value) in extra {
        own.entry(key.clone()).or_insert_with(|| value.clone());
    }
}
