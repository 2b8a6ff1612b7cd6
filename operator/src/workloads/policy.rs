//! What protects the ingest pods: a PodDisruptionBudget always, and the
//! NetworkPolicy the spec asks for.

use std::collections::BTreeMap;

use hookline_contract::pipeline::IngestNetworkPolicy;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A budget that keeps one ingest pod serving through a voluntary disruption
/// (a node drain) when there are several; with one replica, `minAvailable: 1`
/// would block every drain for good, so one pod may go (`maxUnavailable: 1`)
/// and the budget still counts it.
pub(super) fn disruption_budget(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    replicas: i32,
) -> PodDisruptionBudget {
    let (min_available, max_unavailable) = if replicas > 1 {
        (Some(IntOrString::Int(1)), None)
    } else {
        (None, Some(IntOrString::Int(1)))
    };
    PodDisruptionBudget {
        metadata: meta,
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            }),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// The NetworkPolicy of `policy` when it is enabled: webhooks on `port` from
/// its `from` peers (anyone when empty), `/metrics` on `metrics_port` from its
/// `metricsFrom` peers (nobody when empty), nothing else.
pub(super) fn network_policy(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    policy: Option<&IngestNetworkPolicy>,
    port: i32,
    metrics_port: i32,
) -> Option<NetworkPolicy> {
    let policy = policy.filter(|p| p.enabled)?;
    let rule = |peers: &[_], port: i32| NetworkPolicyIngressRule {
        from: (!peers.is_empty()).then(|| peers.to_vec()),
        ports: Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(port)),
            protocol: Some("TCP".into()),
            ..NetworkPolicyPort::default()
        }]),
    };
    let mut ingress = vec![rule(&policy.from, port)];
    if !policy.metrics_from.is_empty() {
        ingress.push(rule(&policy.metrics_from, metrics_port));
    }
    Some(NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(ingress),
            ..NetworkPolicySpec::default()
        }),
    })
}
