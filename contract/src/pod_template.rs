//! What the spec may say about the pods the operator creates
//! (`spec.ingest.template`, `spec.workers.template`,
//! `spec.ingest.networkPolicy`), in Kubernetes' own types.
//!
//! Only the operator applies them, and only it builds the contract with the
//! `kube` feature (and k8s-openapi). The binaries read the same manifest
//! without it: for them these types are empty structs, which accept whatever
//! the fields hold and ignore it, so a manifest that shapes its pods still
//! parses everywhere. Every spec struct keeps the same fields either way, so
//! code that builds a spec compiles with and without the feature.

#[cfg(feature = "kube")]
mod kube_types {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
        TopologySpreadConstraint,
    };
    use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
    use serde::{Deserialize, Serialize};

    /// Shapes one kind of pod. Every field is optional; an absent
    /// `resources` gets the operator's defaults (modest requests and a
    /// memory limit), never none.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct PodTemplate {
        /// The container's requests and limits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub resources: Option<ResourceRequirements>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub node_selector: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub tolerations: Vec<Toleration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub affinity: Option<Affinity>,
        /// Their `labelSelector` should select the pods by the labels the
        /// operator sets (`app.kubernetes.io/instance`, `…/component`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub priority_class_name: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub image_pull_secrets: Vec<LocalObjectReference>,
        /// Added to the pods' annotations; the operator's own win.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub pod_annotations: BTreeMap<String, String>,
        /// Added to the pods' labels; never the labels that select the pods,
        /// which the operator's values win.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub pod_labels: BTreeMap<String, String>,
        /// Added to the container's environment (after the operator's own).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub env: Vec<EnvVar>,
    }

    /// A NetworkPolicy for the ingest pods: once it selects them, only what
    /// it allows reaches them.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct IngestNetworkPolicy {
        /// Whether the operator creates the policy.
        #[serde(default)]
        pub enabled: bool,
        /// Who may send webhooks (the ingest port). Empty: anyone (usually
        /// the ingress controller's pods are named here).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub from: Vec<NetworkPolicyPeer>,
        /// Who may scrape `/metrics` (the `metrics` port). Empty: nobody, the
        /// metrics port stays closed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub metrics_from: Vec<NetworkPolicyPeer>,
    }
}

#[cfg(feature = "kube")]
pub use kube_types::{IngestNetworkPolicy, PodTemplate};

#[cfg(not(feature = "kube"))]
mod opaque {
    use serde::{Deserialize, Serialize};

    /// A pod template, accepted and ignored: only the operator applies it.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct PodTemplate {}

    /// The ingest's NetworkPolicy, accepted and ignored: only the operator
    /// creates it.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct IngestNetworkPolicy {}
}

#[cfg(not(feature = "kube"))]
pub use opaque::{IngestNetworkPolicy, PodTemplate};
