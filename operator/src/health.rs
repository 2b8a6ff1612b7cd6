//! Why a Deployment's pods are not ready, read from what Kubernetes says of
//! them: a pure function from the Deployment, its ReplicaSets and its pods to
//! the reason and message of `WorkersReady` or `IngestReady`.
//!
//! Counting ready replicas alone shows a crashlooping pod, an image that
//! cannot be pulled and a quota that refuses every pod all as `Progressing`,
//! which tells the person on call nothing; the kubelet, the scheduler and the
//! ReplicaSet controller each already said what went wrong.

use hookline_contract::status::WebhookPipelineStatus;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::status::{INGEST_READY, READY, WORKERS_READY, condition};

/// The container waiting reasons that do not go away by waiting: the kubelet
/// backs off and retries, but each needs a person (a fixed image, a fixed
/// Secret, a fixed command).
const STUCK: [&str; 7] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The status of a condition that is not `True`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Known to be wrong.
    False,
    /// Not known yet, e.g. a Deployment whose status its controller has not
    /// written.
    Unknown,
}

impl Standing {
    pub const fn as_str(self) -> &'static str {
        match self {
            Standing::False => "False",
            Standing::Unknown => "Unknown",
        }
    }
}

/// What is wrong with a workload, for its condition and a Warning Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub standing: Standing,
    /// The reason Kubernetes gave (`CrashLoopBackOff`, `Unschedulable`,
    /// `FailedCreate`, …), or `StatusUnknown`.
    pub reason: String,
    /// Names the object (pod and container, ReplicaSet, Deployment).
    pub message: String,
}

/// The one of `first` and `then` to report: a known failure before an
/// unknown, and `first` among equals.
pub fn worse(first: Option<Problem>, then: Option<Problem>) -> Option<Problem> {
    match (first, then) {
        (Some(first), Some(then))
            if first.standing == Standing::Unknown && then.standing == Standing::False =>
        {
            Some(then)
        }
        (Some(first), _) => Some(first),
        (None, then) => then,
    }
}

/// What is wrong with `deployment`, whose `replica_sets` and `pods` were
/// listed by its selector; `None` when nothing is beyond pods starting.
/// `applied_now`: the Deployment was written by this reconcile, so a missing
/// status is a rollout starting rather than something unknown.
///
/// In order: a ReplicaSet that cannot create pods (quota, admission), since
/// then there are no pods to look at; a container stuck waiting; a pod the
/// scheduler cannot place; a rollout past its deadline.
pub fn diagnose(
    deployment: &Deployment,
    applied_now: bool,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
) -> Option<Problem> {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    if let Some(problem) = replica_failure(replica_sets) {
        return Some(problem);
    }
    let mut pods: Vec<&Pod> = pods.iter().collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let stuck: Vec<Problem> = pods.iter().filter_map(|pod| stuck_container(pod)).collect();
    if let Some(first) = stuck.first() {
        return Some(with_others(first.clone(), stuck.len()));
    }
    let unschedulable: Vec<Problem> = pods.iter().filter_map(|pod| unschedulable(pod)).collect();
    if let Some(first) = unschedulable.first() {
        return Some(with_others(first.clone(), unschedulable.len()));
    }
    let Some(status) = &deployment.status else {
        return (!applied_now).then(|| Problem {
            standing: Standing::Unknown,
            reason: "StatusUnknown".to_owned(),
            message: format!("deployment {name} has no status yet"),
        });
    };
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| {
            (c.type_ == "ReplicaFailure" && c.status == "True")
                || (c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
        })
        .map(|c| Problem {
            standing: Standing::False,
            reason: c.reason.clone().unwrap_or_else(|| c.type_.clone()),
            message: format!(
                "deployment {name}: {}",
                c.message.as_deref().unwrap_or("no message")
            ),
        })
}

/// A ReplicaSet whose `ReplicaFailure` condition holds: the API server
/// refused its pods (a ResourceQuota, a LimitRange, an admission webhook).
fn replica_failure(replica_sets: &[ReplicaSet]) -> Option<Problem> {
    replica_sets.iter().find_map(|rs| {
        let condition = rs
            .status
            .as_ref()?
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")?;
        Some(Problem {
            standing: Standing::False,
            reason: condition
                .reason
                .clone()
                .unwrap_or_else(|| "ReplicaFailure".to_owned()),
            message: format!(
                "replicaset {} cannot create pods: {}",
                rs.metadata.name.as_deref().unwrap_or_default(),
                condition.message.as_deref().unwrap_or("no message")
            ),
        })
    })
}

/// The first container of `pod` (init containers first) waiting for a
/// reason in [`STUCK`], with how it last ended.
fn stuck_container(pod: &Pod) -> Option<Problem> {
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    containers.into_iter().find_map(|container| {
        let waiting = container.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        STUCK.contains(&reason).then(|| Problem {
            standing: Standing::False,
            reason: reason.to_owned(),
            message: container_message(pod, container, reason, waiting.message.as_deref()),
        })
    })
}

fn container_message(
    pod: &Pod,
    container: &ContainerStatus,
    reason: &str,
    waiting: Option<&str>,
) -> String {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut message = format!("pod {pod_name} container {}: {reason}", container.name);
    if let Some(waiting) = waiting.filter(|m| !m.is_empty()) {
        message.push_str(&format!(" ({waiting})"));
    }
    let last = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    if let Some(last) = last {
        message.push_str(&format!("; last exit code {}", last.exit_code));
        if let Some(why) = last.reason.as_deref() {
            message.push_str(&format!(" ({why})"));
        }
        // The container's own last words (terminationMessagePath): usually
        // the error it died of.
        if let Some(said) = last
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            message.push_str(&format!(": {said}"));
        }
    }
    message
}

/// A pod the scheduler could not place, with the scheduler's reasons.
fn unschedulable(pod: &Pod) -> Option<Problem> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    (condition.reason.as_deref() == Some("Unschedulable")).then(|| Problem {
        standing: Standing::False,
        reason: "Unschedulable".to_owned(),
        message: format!(
            "pod {} cannot be scheduled: {}",
            pod.metadata.name.as_deref().unwrap_or_default(),
            condition.message.as_deref().unwrap_or("no message")
        ),
    })
}

/// `problem`, saying how many other pods have the same kind of trouble.
fn with_others(mut problem: Problem, count: usize) -> Problem {
    if count > 1 {
        problem
            .message
            .push_str(&format!(" (and {} more pods)", count - 1));
    }
    problem
}

/// Whether `deployment`'s status shows every wanted replica updated, ready
/// and available, for the spec its controller has seen: nothing to diagnose,
/// so its pods need not be listed. Keeps a cluster at rest at one read per
/// Deployment per resync.
pub fn settled(deployment: &Deployment) -> bool {
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas);
    let Some(status) = &deployment.status else {
        return false;
    };
    let seen = status.observed_generation.is_some()
        && status.observed_generation >= deployment.metadata.generation;
    let all = |count: Option<i32>| count.unwrap_or(0) == wanted.unwrap_or(1);
    seen && all(status.replicas)
        && all(status.updated_replicas)
        && all(status.ready_replicas)
        && all(status.available_replicas)
        && status.unavailable_replicas.unwrap_or(0) == 0
}

/// The conditions of `status` to announce as Warning Events: `Ready`,
/// `WorkersReady` and `IngestReady` when False for a reason they did not have
/// in `previous`, each (reason, message) once. Pods starting is the normal
/// course of things, not a warning; a reason that stays is announced once.
pub fn warnings<'a>(
    status: &'a WebhookPipelineStatus,
    previous: Option<&WebhookPipelineStatus>,
) -> Vec<&'a Condition> {
    let mut warnings: Vec<&Condition> = Vec::new();
    for kind in [READY, WORKERS_READY, INGEST_READY] {
        let Some(now) = condition(status, kind) else {
            continue;
        };
        let before = previous.and_then(|p| condition(p, kind));
        let new = now.status == "False"
            && now.reason != "Progressing"
            && before.map(|c| &c.reason) != Some(&now.reason);
        let said = warnings
            .iter()
            .any(|w| w.reason == now.reason && w.message == now.message);
        if new && !said {
            warnings.push(now);
        }
    }
    warnings
}

#[cfg(test)]
#[path = "health/tests.rs"]
mod tests;
