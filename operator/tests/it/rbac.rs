//! The chart's RBAC rules (`charts/hookline/files/rbac.yaml`, rendered verbatim
//! by the chart) against every request the operator makes. The operator is
//! driven through its whole life against the recording fake API: leader
//! election, reconciles that create, grow, put a manual scale back, prune and
//! clean up behind the finalizer, and then the `hookline-operator run` binary
//! itself, whose controller lists and watches. Each request is turned into
//! what the API server's authorizer sees (group, resource, verb, namespace,
//! name); each must be allowed, and each rule must be needed by one of them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use hookline_contract::pipeline::DeletionPolicy;
use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{AdminError, FakeAdmin, KafkaAdmin};
use hookline_operator::controller::{AdminFactory, Context, MANAGER, reconcile};
use hookline_operator::fence::Fence;
use hookline_operator::fixtures::{PipelineBuilder, pipeline};
use hookline_operator::lease::{Elector, Timings};
use hookline_operator::metrics::Metrics;
use hookline_operator::shard_limits::ShardLimits;
use hookline_operator::workloads::{Images, PullPolicy};
use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::json;

use crate::fake_api::{FakeApi, Recorded};

/// The rules as the chart grants them.
const RULES: &str = include_str!("../../../charts/hookline/files/rbac.yaml");
/// The release namespace: the Lease lives there, and the Role is granted there.
const OPERATOR_NAMESPACE: &str = "hookline-system";
const PIPELINES: &str = "/apis/hookline.dev/v1alpha1/namespaces/default/webhookpipelines";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const SECRETS: &str = "/api/v1/namespaces/default/secrets";

#[derive(serde::Deserialize)]
struct Rules {
    /// Granted by the ClusterRole, in every namespace.
    cluster: Vec<PolicyRule>,
    /// Granted by the Role, in the operator's namespace only.
    namespace: Vec<PolicyRule>,
}

fn rules() -> Rules {
    serde_saphyr::from_str(RULES).expect("files/rbac.yaml parses as rules")
}

/// A request as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    group: String,
    /// `plural` or `plural/subresource`.
    resource: String,
    verb: &'static str,
    namespace: Option<String>,
    name: Option<String>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}.{} in {} named {}",
            self.verb,
            self.resource,
            if self.group.is_empty() {
                "core"
            } else {
                &self.group
            },
            self.namespace.as_deref().unwrap_or("(cluster)"),
            self.name.as_deref().unwrap_or("(any)")
        )
    }
}

/// What `request` needs: usually one access; a server-side apply that creates
/// its object needs create as well as patch.
fn accesses(request: &Recorded) -> Vec<Access> {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest),
        _ => panic!("not a resource path: {}", request.path),
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
            (Some((*namespace).to_owned()), rest)
        }
        rest => (None, rest),
    };
    let (resource, name) = match rest {
        [plural] => ((*plural).to_owned(), None),
        [plural, name] => ((*plural).to_owned(), Some((*name).to_owned())),
        [plural, name, sub] => (format!("{plural}/{sub}"), Some((*name).to_owned())),
        _ => panic!("not a resource path: {}", request.path),
    };
    let watch = request.query.split('&').any(|p| p == "watch=true");
    let verbs: &[&'static str] = match (&request.method, name.is_some()) {
        (&Method::GET, true) => &["get"],
        (&Method::GET, false) if watch => &["watch"],
        (&Method::GET, false) => &["list"],
        (&Method::POST, _) => &["create"],
        (&Method::PUT, _) => &["update"],
        (&Method::PATCH, _)
            if request.content_type == "application/apply-patch+yaml" && !request.existed =>
        {
            &["patch", "create"]
        }
        (&Method::PATCH, _) => &["patch"],
        (&Method::DELETE, true) => &["delete"],
        (&Method::DELETE, false) => &["deletecollection"],
        (method, _) => panic!("unexpected method {method} {}", request.path),
    };
    verbs
        .iter()
        .map(|verb| Access {
            group: group.clone(),
            resource: resource.clone(),
            verb,
            namespace: namespace.clone(),
            // Create is authorized without a name: the name is in the body.
            name: name.clone().filter(|_| *verb != "create"),
        })
        .collect()
}

fn lists(values: &Option<Vec<String>>) -> &[String] {
    values.as_deref().unwrap_or_default()
}

/// Whether `rule` grants `access`, by RBAC's matching rules.
fn grants(rule: &PolicyRule, access: &Access) -> bool {
    let has = |values: &[String], value: &str| values.iter().any(|v| v == value || v == "*");
    let names = lists(&rule.resource_names);
    has(lists(&rule.api_groups), &access.group)
        && has(lists(&rule.resources), &access.resource)
        && has(&rule.verbs, access.verb)
        && (names.is_empty() || access.name.as_ref().is_some_and(|n| names.contains(n)))
}

fn allowed(rules: &Rules, access: &Access) -> bool {
    rules.cluster.iter().any(|r| grants(r, access))
        || (access.namespace.as_deref() == Some(OPERATOR_NAMESPACE)
            && rules.namespace.iter().any(|r| grants(r, access)))
}

/// Each (group, resource, verb, name) a rule grants, as text, for the rules
/// that grant nothing any access needed.
fn unused(rules: &[PolicyRule], needed: &[Access]) -> Vec<String> {
    let mut unused = Vec::new();
    for rule in rules {
        let names = lists(&rule.resource_names);
        let names: Vec<Option<&String>> = if names.is_empty() {
            vec![None]
        } else {
            names.iter().map(Some).collect()
        };
        for group in lists(&rule.api_groups) {
            for resource in lists(&rule.resources) {
                for verb in &rule.verbs {
                    for name in &names {
                        let used = needed.iter().any(|a| {
                            &a.group == group
                                && &a.resource == resource
                                && a.verb == verb
                                && name.is_none_or(|n| a.name.as_ref() == Some(n))
                        });
                        if !used {
                            unused.push(format!("{verb} {resource}.{group} {name:?}"));
                        }
                    }
                }
            }
        }
    }
    unused
}

struct Admins(Arc<dyn KafkaAdmin>);

impl AdminFactory for Admins {
    fn admin(&self, _settings: &ClientSettings) -> Result<Arc<dyn KafkaAdmin>, AdminError> {
        Ok(self.0.clone())
    }
}

/// The fake API and an operator context on it. The test changes the cluster
/// through the store, never through the client, so that every recorded
/// request is the operator's.
struct Cluster {
    api: FakeApi,
    ctx: Arc<Context>,
}

impl Cluster {
    fn new() -> Self {
        let api = FakeApi::default();
        let client = api.client();
        let ctx = Arc::new(Context {
            client: client.clone(),
            admins: Arc::new(Admins(Arc::new(FakeAdmin::default()))),
            images: Images {
                ingest: "hookline-ingest:test".into(),
                worker: "hookline-worker:test".into(),
                pull_policy: PullPolicy::IfNotPresent,
            },
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: MANAGER.into(),
                    instance: Some("hookline-operator-0".into()),
                },
            ),
            metrics: Arc::new(Metrics::new()),
            fence: Fence::new(),
            shard_limits: ShardLimits::default(),
        });
        Self { api, ctx }
    }

    /// What `kubectl apply` of the pipeline would leave in the store.
    fn apply(&self, builder: PipelineBuilder) {
        let mut object = serde_json::to_value(builder.build()).unwrap();
        match self.api.get(PIPELINES, "payments") {
            Some(mut existing) => {
                existing["spec"] = object["spec"].take();
                let generation = existing["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                existing["metadata"]["generation"] = generation.into();
                self.api.put(PIPELINES, "payments", existing);
            }
            None => {
                object["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z".into();
                object["metadata"]["resourceVersion"] = "1".into();
                self.api.put(PIPELINES, "payments", object);
            }
        }
    }

    async fn reconcile(&self) {
        let object = self.api.get(PIPELINES, "payments").expect("the pipeline");
        reconcile(
            Arc::new(serde_json::from_value(object).unwrap()),
            self.ctx.clone(),
        )
        .await
        .unwrap();
    }

    fn edit(&self, collection: &str, name: &str, change: impl FnOnce(&mut serde_json::Value)) {
        let mut object = self.api.get(collection, name).unwrap();
        change(&mut object);
        self.api.put(collection, name, object);
    }
}

/// Leader election as two replicas do it: a create, a refusal, renewals, a
/// takeover once the lease went unrenewed, and a release.
async fn elect(api: &FakeApi) {
    let leases: Api<Lease> = Api::namespaced(api.client(), OPERATOR_NAMESPACE);
    let timings = Timings {
        duration: Duration::from_secs(1),
        renew_deadline: Duration::from_millis(500),
        retry: Duration::from_millis(100),
        call_timeout: Duration::from_millis(500),
    };
    let mut a = Elector::new(leases.clone(), MANAGER, "a", timings);
    let mut b = Elector::new(leases, MANAGER, "b", timings);
    assert!(a.try_lead().await.unwrap());
    assert!(!b.try_lead().await.unwrap());
    assert!(a.try_lead().await.unwrap());
    assert!(!b.try_lead().await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(b.try_lead().await.unwrap());
    b.release().await.unwrap();
}

/// A pipeline's whole life, reconcile by reconcile.
async fn live_and_die(cluster: &Cluster) {
    // Kafka over TLS with SCRAM: the operator reads the pipeline's Secrets
    // for its own admin client.
    for (name, data) in [
        ("kafka-ca", json!({"ca.crt": "LS0tLS1CRUdJTg=="})),
        (
            "kafka-user",
            json!({"username": "aG9va2xpbmU=", "password": "c2VjcmV0"}),
        ),
    ] {
        cluster.api.put(
            SECRETS,
            name,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": "default"}, "data": data}),
        );
    }
    let payments = || {
        pipeline()
            .with_kafka_security()
            .with_deletion_policy(DeletionPolicy::Delete)
            .with_partitions("refunds.webhooks", 2)
            .with_network_policy(true)
    };
    cluster.apply(payments());
    cluster.reconcile().await; // the finalizer
    cluster.reconcile().await; // topics, children, status, events

    // Pods become ready; the status follows.
    for (name, replicas) in [
        ("payments-ingest", 2),
        ("payments-worker-orders-webhooks", 4),
    ] {
        cluster.edit(DEPLOYMENTS, name, |d| {
            d["status"] = json!({"replicas": replicas, "readyReplicas": replicas});
        });
    }
    cluster.reconcile().await;

    // Grown partitions, then a manual scale that is put back.
    cluster.apply(payments().with_partitions("orders.webhooks", 6));
    cluster.reconcile().await;
    cluster.edit(DEPLOYMENTS, "payments-worker-orders-webhooks", |d| {
        d["spec"]["replicas"] = 1.into();
    });
    cluster.reconcile().await;

    // A topic leaves the spec: its workers are pruned; the NetworkPolicy is
    // disabled: it is deleted.
    cluster.apply(
        payments()
            .with_partitions("orders.webhooks", 6)
            .without_topic("refunds.webhooks")
            .with_network_policy(false),
    );
    cluster.reconcile().await;
    assert!(
        cluster
            .api
            .get(
                "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
                "payments-ingest"
            )
            .is_none()
    );
    assert!(
        cluster
            .api
            .get(DEPLOYMENTS, "payments-worker-refunds-webhooks")
            .is_none()
    );

    // Deleted (as the API server marks it): the topics go, then the finalizer.
    cluster.edit(PIPELINES, "payments", |p| {
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:10:00Z".into();
    });
    cluster.reconcile().await;
    assert!(cluster.api.get(PIPELINES, "payments").is_none());
}

/// A kubeconfig for the fake API served at `addr`.
fn kubeconfig(addr: std::net::SocketAddr, dir: &std::path::Path) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters: [{{name: fake, cluster: {{server: \"http://{addr}\"}}}}]\n\
             users: [{{name: fake, user: {{}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n"
        ),
    )
    .unwrap();
    path
}

/// The accesses the controller of `hookline-operator run` makes whatever the
/// broker does: the startup check, leader election and its renewal, the
/// watches, and the finalizer of the first reconcile.
fn run_needs() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("hookline.dev", "webhookpipelines", "list"),
        ("hookline.dev", "webhookpipelines", "watch"),
        ("hookline.dev", "webhookpipelines", "patch"),
        ("apps", "deployments", "list"),
        ("apps", "deployments", "watch"),
        ("policy", "poddisruptionbudgets", "list"),
        ("policy", "poddisruptionbudgets", "watch"),
        ("networking.k8s.io", "networkpolicies", "list"),
        ("networking.k8s.io", "networkpolicies", "watch"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "patch"),
    ]
}

/// Runs `hookline-operator run` against the fake API over HTTP until it has
/// made every access of [`run_needs`] (the lease renewal comes after 5 s).
async fn run_the_binary(api: &FakeApi) {
    let bootstrap =
        std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let topic = format!("rbac-{}.orders", uuid::Uuid::new_v4().simple());
    let mut object = serde_json::to_value(
        pipeline()
            .with_partitions(&topic, 2)
            .without_topic("orders.webhooks")
            .without_topic("disputes.webhooks")
            .build(),
    )
    .unwrap();
    object["spec"]["kafka"]["bootstrapServers"] = bootstrap.into();
    object["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z".into();
    object["metadata"]["resourceVersion"] = "1".into();
    api.put(PIPELINES, "payments", object);

    let (addr, server) = api.serve().await;
    let dir = std::env::temp_dir().join(format!("hookline-rbac-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("operator.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookline-operator"))
        .arg("run")
        .env("KUBECONFIG", kubeconfig(addr, &dir))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("POD_NAME", "hookline-operator-0")
        .env("POD_NAMESPACE", OPERATOR_NAMESPACE)
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    let seen = |api: &FakeApi| -> BTreeSet<(String, String, &'static str)> {
        api.requests()
            .iter()
            .flat_map(accesses)
            .map(|a| (a.group, a.resource, a.verb))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let seen = seen(api);
        let missing: Vec<_> = run_needs()
            .into_iter()
            .filter(|(g, r, v)| !seen.contains(&((*g).to_owned(), (*r).to_owned(), *v)))
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    server.abort();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        missing.is_empty(),
        "the operator never made {missing:?}; its log:\n{output}"
    );
}

#[tokio::test]
async fn the_chart_grants_every_request_the_operator_makes_and_nothing_more() {
    let rules = rules();
    let cluster = Cluster::new();
    elect(&cluster.api).await;
    live_and_die(&cluster).await;
    let binary = FakeApi::default();
    run_the_binary(&binary).await;

    let needed: Vec<Access> = cluster
        .api
        .requests()
        .iter()
        .chain(binary.requests().iter())
        .flat_map(accesses)
        .collect();
    let refused: BTreeSet<String> = needed
        .iter()
        .filter(|a| !allowed(&rules, a))
        .map(ToString::to_string)
        .collect();
    assert!(
        refused.is_empty(),
        "files/rbac.yaml does not allow:\n{}",
        refused.into_iter().collect::<Vec<_>>().join("\n")
    );
    let unused: Vec<String> = unused(&rules.cluster, &needed)
        .into_iter()
        .chain(unused(&rules.namespace, &needed))
        .collect();
    assert!(
        unused.is_empty(),
        "files/rbac.yaml grants what no request needs: {unused:?}"
    );
}

#[test]
fn a_server_side_apply_that_creates_needs_create_and_the_lease_rule_is_bound_to_its_namespace() {
    let rules = rules();
    let request = |method: Method, path: &str, existed: bool| Recorded {
        method,
        path: path.into(),
        query: String::new(),
        content_type: "application/apply-patch+yaml".into(),
        existed,
    };
    let created = accesses(&request(
        Method::PATCH,
        "/apis/apps/v1/namespaces/default/deployments/x",
        false,
    ));
    let verbs: Vec<&str> = created.iter().map(|a| a.verb).collect();
    assert_eq!(verbs, ["patch", "create"]);

    let lease = |namespace: &str, name: &str| {
        accesses(&request(
            Method::PATCH,
            &format!("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"),
            true,
        ))
        .remove(0)
    };
    assert!(allowed(&rules, &lease(OPERATOR_NAMESPACE, MANAGER)));
    assert!(!allowed(&rules, &lease(OPERATOR_NAMESPACE, "someone-else")));
    assert!(!allowed(&rules, &lease("default", MANAGER)));
}
