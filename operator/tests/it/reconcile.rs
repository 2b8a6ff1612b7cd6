//! The reconcile against a stateful in-memory Kubernetes API and a faithful fake
//! Kafka admin API: no cluster runs here.

use std::sync::Arc;

use hookline_contract::pipeline::{DeletionPolicy, WebhookPipeline};
use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{AdminError, FakeAdmin, KafkaAdmin};
use hookline_operator::controller::{AdminFactory, Context, reconcile};
use hookline_operator::fence::Fence;
use hookline_operator::fixtures::{PipelineBuilder, pipeline};
use hookline_operator::metrics::Metrics;
use hookline_operator::shard_limits::ShardLimits;
use hookline_operator::workloads::{Images, PullPolicy};
use kube::api::{Api, DeleteParams};
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

use crate::fake_api::FakeApi;

const PIPELINES: &str = "/apis/hookline.dev/v1alpha1/namespaces/default/webhookpipelines";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";
const CONFIG_MAPS: &str = "/api/v1/namespaces/default/configmaps";
const SERVICES: &str = "/api/v1/namespaces/default/services";

struct Admins(Arc<dyn KafkaAdmin>);

impl AdminFactory for Admins {
    fn admin(&self, _settings: &ClientSettings) -> Result<Arc<dyn KafkaAdmin>, AdminError> {
        Ok(self.0.clone())
    }
}

/// A cluster with pipelines in it, and the operator's context.
pub(crate) struct World {
    pub(crate) api: FakeApi,
    kafka: Arc<FakeAdmin>,
    ctx: Arc<Context>,
}

impl World {
    pub(crate) fn new(kafka: FakeAdmin) -> Self {
        let kafka = Arc::new(kafka);
        Self::with_admin(kafka.clone(), kafka)
    }

    /// A world whose Kafka is `admin`; `kafka` is only read by the fake tests.
    fn with_admin(admin: Arc<dyn KafkaAdmin>, kafka: Arc<FakeAdmin>) -> Self {
        let api = FakeApi::default();
        let client = api.client();
        let ctx = Arc::new(Context {
            client: client.clone(),
            admins: Arc::new(Admins(admin)),
            images: Images {
                ingest: "hookline-ingest:test".into(),
                worker: "hookline-worker:test".into(),
                pull_policy: PullPolicy::IfNotPresent,
            },
            recorder: Recorder::new(client, Reporter::from("hookline-operator")),
            metrics: Arc::new(Metrics::new()),
            fence: Fence::new(),
            shard_limits: ShardLimits::default(),
        });
        Self { api, kafka, ctx }
    }

    /// Creates (or replaces the spec of) a pipeline, as `kubectl apply` would.
    pub(crate) fn apply(&self, builder: PipelineBuilder, created_second: u32) {
        let pipeline = builder.build();
        let name = pipeline.metadata.name.clone().unwrap();
        let mut object = serde_json::to_value(&pipeline).unwrap();
        match self.api.get(PIPELINES, &name) {
            Some(mut existing) => {
                existing["spec"] = object["spec"].take();
                let generation = existing["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                existing["metadata"]["generation"] = generation.into();
                self.api.put(PIPELINES, &name, existing);
            }
            None => {
                object["metadata"]["creationTimestamp"] =
                    format!("2026-01-01T00:00:{created_second:02}Z").into();
                object["metadata"]["resourceVersion"] = "1".into();
                self.api.put(PIPELINES, &name, object);
            }
        }
    }

    /// Reconciles `name` as the controller would after a change.
    pub(crate) async fn reconcile(&self, name: &str) {
        let object = self
            .api
            .get(PIPELINES, name)
            .unwrap_or_else(|| panic!("{name} is gone"));
        let pipeline: WebhookPipeline = serde_json::from_value(object).unwrap();
        reconcile(Arc::new(pipeline), self.ctx.clone())
            .await
            .unwrap();
    }

    /// Reconciles until the finalizer is in place and the pipeline applied.
    pub(crate) async fn settle(&self, name: &str) {
        self.reconcile(name).await; // adds the finalizer
        self.reconcile(name).await;
    }

    /// The reasons of the Events recorded so far.
    fn events(&self) -> Vec<String> {
        let store = self.api.store.lock().unwrap();
        store
            .iter()
            .filter(|((collection, _), _)| collection.ends_with("/events"))
            .filter_map(|(_, event)| event["reason"].as_str().map(str::to_owned))
            .collect()
    }

    fn deployment(&self, name: &str) -> Value {
        self.api
            .get(DEPLOYMENTS, name)
            .unwrap_or_else(|| panic!("no deployment {name}"))
    }

    fn replicas(&self, name: &str) -> i64 {
        self.deployment(name)["spec"]["replicas"].as_i64().unwrap()
    }

    fn condition(&self, pipeline: &str, kind: &str) -> (String, String) {
        let object = self.api.get(PIPELINES, pipeline).unwrap();
        let conditions = object["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let found = conditions
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {object}"));
        (
            found["status"].as_str().unwrap().to_owned(),
            found["reason"].as_str().unwrap().to_owned(),
        )
    }

    /// Marks every replica of every Deployment ready, as the kubelet would.
    pub(crate) fn pods_ready(&self) {
        let mut store = self.api.store.lock().unwrap();
        for ((collection, _), object) in store.iter_mut() {
            if collection == DEPLOYMENTS {
                let replicas = object["spec"]["replicas"].clone();
                object["status"] = json!({"replicas": replicas, "readyReplicas": replicas});
            }
        }
    }
}

#[tokio::test]
async fn first_reconcile_creates_topics_workloads_and_status() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);

    world.settle("payments").await;

    let topics = world.kafka.topics();
    assert_eq!(topics["orders.webhooks"], 4);
    assert_eq!(topics["orders.webhooks.DLQ"], 1);
    assert_eq!(topics["disputes.webhooks"], 2);
    assert_eq!(topics["disputes.webhooks.DLQ"], 1);
    assert_eq!(world.replicas("payments-worker-orders-webhooks"), 4);
    assert_eq!(world.replicas("payments-worker-disputes-webhooks"), 2);
    assert_eq!(world.replicas("payments-ingest"), 2);
    assert!(world.api.get(CONFIG_MAPS, "payments-pipeline").is_some());
    assert!(world.api.get(SERVICES, "payments-ingest").is_some());
    let object = world.api.get(PIPELINES, "payments").unwrap();
    assert_eq!(
        object["metadata"]["finalizers"],
        json!(["hookline.dev/topics"])
    );
    assert_eq!(object["status"]["observedGeneration"], 1);
    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("True".into(), "TopicsReady".into())
    );
    assert_eq!(
        world.condition("payments", "WorkersReady"),
        ("False".into(), "Progressing".into())
    );

    world.pods_ready();
    world.reconcile("payments").await;
    assert_eq!(
        world.condition("payments", "Ready"),
        ("True".into(), "Ready".into())
    );
}

#[tokio::test]
async fn a_second_reconcile_makes_no_writes() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    world.pods_ready();
    world.reconcile("payments").await;
    let (kube_writes, kafka_requests) = (world.api.writes().len(), world.kafka.requests().len());

    world.reconcile("payments").await;

    assert_eq!(
        world.api.writes()[kube_writes..],
        [] as [String; 0],
        "Kubernetes writes"
    );
    assert_eq!(
        world.kafka.requests()[kafka_requests..],
        [] as [String; 0],
        "Kafka requests"
    );
}

#[tokio::test]
async fn growing_partitions_grows_the_topic_and_the_workers() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;

    world.apply(pipeline().with_partitions("orders.webhooks", 6), 1);
    world.reconcile("payments").await;

    assert_eq!(world.kafka.topics()["orders.webhooks"], 6);
    assert_eq!(world.replicas("payments-worker-orders-webhooks"), 6);
    assert!(
        world
            .kafka
            .requests()
            .contains(&"Grow orders.webhooks 6".to_owned())
    );
    let events = world.events();
    for reason in ["TopicCreated", "TopicGrown", "Scaled"] {
        assert!(
            events.iter().any(|e| e == reason),
            "no {reason} event in {events:?}"
        );
    }
    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("True".into(), "TopicsReady".into())
    );
}

#[tokio::test]
async fn a_partition_patch_writes_the_workers_and_never_the_ingest_deployment() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    let ingest = world.deployment("payments-ingest");
    let writes = world.api.writes().len();

    world.apply(pipeline().with_partitions("orders.webhooks", 8), 1);
    world.reconcile("payments").await;

    let writes = &world.api.writes()[writes..];
    assert!(
        writes
            .iter()
            .any(|w| w.ends_with("/deployments/payments-worker-orders-webhooks")),
        "{writes:?}"
    );
    // A new ingest pod would end every connection to the old one, a
    // `kubectl port-forward` among them; ingest asks the broker for the counts.
    assert!(
        !writes
            .iter()
            .any(|w| w.contains("/deployments/payments-ingest")),
        "{writes:?}"
    );
    assert_eq!(
        world.deployment("payments-ingest")["spec"]["template"],
        ingest["spec"]["template"]
    );
}

#[tokio::test]
async fn a_decrease_is_refused_with_its_condition_and_nothing_shrinks() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline().with_partitions("orders.webhooks", 6), 1);
    world.settle("payments").await;

    world.apply(pipeline().with_partitions("orders.webhooks", 4), 1);
    world.reconcile("payments").await;
    // And it stays refused: the next look must not take it for adopted partitions.
    world.reconcile("payments").await;

    assert_eq!(
        world.condition("payments", "Ready"),
        ("False".into(), "PartitionDecrease".into())
    );
    assert_eq!(world.kafka.topics()["orders.webhooks"], 6);
    assert_eq!(world.replicas("payments-worker-orders-webhooks"), 6);
}

#[tokio::test]
async fn a_broker_without_create_partitions_says_so_and_keeps_the_workers() {
    let world = World::new(FakeAdmin::new(false));
    world.apply(pipeline(), 1);
    world.settle("payments").await;

    world.apply(pipeline().with_partitions("orders.webhooks", 8), 1);
    world.reconcile("payments").await;

    let (status, reason) = world.condition("payments", "Ready");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "BrokerUnsupported")
    );
    let object = world.api.get(PIPELINES, "payments").unwrap();
    let message = object["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("CreatePartitions (KIP-195)"), "{message}");
    assert!(
        world.events().iter().any(|e| e == "TopicFailed"),
        "{:?}",
        world.events()
    );
    assert_eq!(world.replicas("payments-worker-orders-webhooks"), 4);
}

#[tokio::test]
async fn partitions_grown_outside_are_adopted_and_the_spec_is_behind() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;

    world.kafka.set_partitions("orders.webhooks", 8);
    world.reconcile("payments").await;

    assert_eq!(world.replicas("payments-worker-orders-webhooks"), 8);
    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("True".into(), "SpecBehind".into())
    );
}

#[tokio::test]
async fn the_workers_of_a_topic_removed_from_the_spec_are_deleted() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline().with_partitions("refunds.webhooks", 2), 1);
    world.settle("payments").await;
    assert!(
        world
            .api
            .get(DEPLOYMENTS, "payments-worker-refunds-webhooks")
            .is_some()
    );
    // Someone else's Deployment with the same labels is not ours to delete.
    let mut stranger = world.deployment("payments-worker-orders-webhooks");
    stranger["metadata"]["name"] = "stranger".into();
    stranger["metadata"]["ownerReferences"] = json!([]);
    world.api.put(DEPLOYMENTS, "stranger", stranger);

    world.apply(pipeline(), 1);
    world.reconcile("payments").await;

    assert!(
        world
            .api
            .get(DEPLOYMENTS, "payments-worker-refunds-webhooks")
            .is_none()
    );
    assert!(
        world
            .api
            .get(DEPLOYMENTS, "payments-worker-orders-webhooks")
            .is_some()
    );
    assert!(world.api.get(DEPLOYMENTS, "stranger").is_some());
    assert!(
        world.events().iter().any(|e| e == "Pruned"),
        "{:?}",
        world.events()
    );
}

#[tokio::test]
async fn a_manual_scale_is_put_back() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    let mut deployment = world.deployment("payments-worker-orders-webhooks");
    deployment["spec"]["replicas"] = 1.into();
    world
        .api
        .put(DEPLOYMENTS, "payments-worker-orders-webhooks", deployment);

    world.reconcile("payments").await;

    assert_eq!(world.replicas("payments-worker-orders-webhooks"), 4);
}

#[tokio::test]
async fn deletion_with_retain_keeps_the_topics() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;

    delete(&world, "payments").await;
    world.reconcile("payments").await;

    assert!(
        world.api.get(PIPELINES, "payments").is_none(),
        "finalizer released"
    );
    assert_eq!(world.kafka.topics().len(), 4);
}

#[tokio::test]
async fn deletion_with_delete_removes_the_topics_another_pipeline_does_not_claim() {
    let world = World::new(FakeAdmin::default());
    world.apply(
        pipeline()
            .with_deletion_policy(DeletionPolicy::Delete)
            .with_partitions("refunds.webhooks", 2),
        1,
    );
    world.settle("payments").await;
    // An older pipeline also lists orders.webhooks (it lost nothing: it is older).
    world.apply(pipeline().named("legacy", "uid-legacy"), 0);

    delete(&world, "payments").await;
    world.reconcile("payments").await;

    assert!(world.api.get(PIPELINES, "payments").is_none());
    let left: Vec<String> = world.kafka.topics().into_keys().collect();
    assert_eq!(
        left,
        vec![
            "disputes.webhooks",
            "disputes.webhooks.DLQ",
            "orders.webhooks",
            "orders.webhooks.DLQ"
        ],
        "refunds deleted, the shared topics kept"
    );
}

#[tokio::test]
async fn two_pipelines_claiming_one_topic_put_the_conflict_on_the_newer() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.apply(pipeline().named("copycat", "uid-copycat"), 2);

    world.settle("copycat").await;
    world.settle("payments").await;

    assert_eq!(
        world.condition("copycat", "Ready"),
        ("False".into(), "TopicConflict".into())
    );
    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("True".into(), "TopicsReady".into())
    );
    assert!(
        world
            .api
            .get(DEPLOYMENTS, "copycat-worker-orders-webhooks")
            .is_none(),
        "the loser starts no workers"
    );
}

async fn delete(world: &World, name: &str) {
    let api: Api<WebhookPipeline> = Api::namespaced(world.api.client(), "default");
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

/// The reconcile with the real broker of the stack (tansu): topics created,
/// and growth refused as the broker refuses it, with the condition a person
/// understands.
#[tokio::test]
async fn against_the_real_broker_topics_are_created_and_growth_is_broker_unsupported() {
    let bootstrap =
        std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let admin = Arc::new(
        hookline_kafka::admin::RdKafkaAdmin::new(
            &hookline_kafka::ClientSettings::new(bootstrap.clone()),
            "test",
        )
        .unwrap(),
    );
    let world = World::with_admin(admin.clone(), Arc::new(FakeAdmin::default()));
    let topic = format!("reconcile-{}.orders", uuid::Uuid::new_v4().simple());
    let spec = || {
        pipeline()
            .with_partitions(&topic, 2)
            .without_topic("orders.webhooks")
            .without_topic("disputes.webhooks")
    };
    world.apply(spec(), 1);

    world.settle("payments").await;

    let seen = admin
        .partitions(&[topic.clone(), format!("{topic}.DLQ")])
        .await
        .unwrap();
    assert_eq!(seen.get(&topic), Some(&2), "{seen:?}");
    assert_eq!(seen.get(&format!("{topic}.DLQ")), Some(&1), "{seen:?}");
    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("True".into(), "TopicsReady".into())
    );

    world.apply(spec().with_partitions(&topic, 4), 1);
    world.reconcile("payments").await;

    assert_eq!(
        world.condition("payments", "Ready"),
        ("False".into(), "BrokerUnsupported".into())
    );
    let worker = hookline_operator::workloads::worker_name("payments", &topic);
    assert_eq!(
        world.replicas(&worker),
        2,
        "workers follow the partitions Kafka has"
    );
}

#[tokio::test]
async fn a_declared_type_whose_schema_cannot_compile_is_refused_and_nothing_is_applied() {
    let world = World::new(FakeAdmin::default());
    let mut broken = hookline_operator::fixtures::declared("refunds");
    broken.schema = json!({"type": "objekt"});
    world.apply(pipeline().with_declared_type(broken, 2), 1);

    world.settle("payments").await;

    let (status, reason) = world.condition("payments", "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    let object = world.api.get(PIPELINES, "payments").unwrap();
    let ready = object["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("eventTypes refunds: schema does not compile"),
        "{ready}"
    );
    assert_eq!(
        world.kafka.requests(),
        Vec::<String>::new(),
        "Kafka requests"
    );
    assert!(world.api.get(DEPLOYMENTS, "payments-ingest").is_none());
    assert!(
        world.events().iter().any(|r| r == "InvalidSpec"),
        "{:?}",
        world.events()
    );
}

#[tokio::test]
async fn a_declared_type_gets_its_topic_and_workers_like_a_built_in() {
    let world = World::new(FakeAdmin::default());
    world.apply(
        pipeline().with_declared_type(hookline_operator::fixtures::declared("refunds"), 2),
        1,
    );

    world.settle("payments").await;

    assert_eq!(world.kafka.topics()["refunds.webhooks"], 2);
    assert_eq!(world.replicas("payments-worker-refunds-webhooks"), 2);
    let config = world.api.get(CONFIG_MAPS, "payments-pipeline").unwrap();
    assert!(
        config.to_string().contains("eventTypes"),
        "the mounted manifest carries the declaration: {config}"
    );
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const REPLICA_SETS: &str = "/apis/apps/v1/namespaces/default/replicasets";

impl World {
    /// The labels `deployment` selects its pods by.
    fn selector(&self, deployment: &str) -> Value {
        self.deployment(deployment)["spec"]["selector"]["matchLabels"].clone()
    }

    /// A pod of `deployment` with `status`, as the kubelet reports it.
    fn put_pod(&self, deployment: &str, name: &str, status: Value) {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": self.selector(deployment)},
            "spec": {"containers": [{"name": "main", "image": "x"}]},
            "status": status,
        });
        self.api.put(PODS, name, pod);
    }

    /// The condition `kind` of `pipeline`: status, reason and message.
    pub(crate) fn condition_with_message(
        &self,
        pipeline: &str,
        kind: &str,
    ) -> (String, String, String) {
        let object = self.api.get(PIPELINES, pipeline).unwrap();
        let found = object["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == kind).cloned())
            .unwrap_or_else(|| panic!("no {kind} in {object}"));
        let text = |field: &str| found[field].as_str().unwrap_or_default().to_owned();
        (text("status"), text("reason"), text("message"))
    }

    /// The notes of the Warning Events recorded with `reason`.
    fn warnings(&self, reason: &str) -> Vec<String> {
        let store = self.api.store.lock().unwrap();
        store
            .iter()
            .filter(|((collection, _), _)| collection.ends_with("/events"))
            .filter(|(_, event)| event["type"] == "Warning" && event["reason"] == reason)
            .map(|(_, event)| event["note"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn waiting(container: &str, reason: &str, message: &str, last: Value) -> Value {
    json!({"phase": "Running", "containerStatuses": [{
        "name": container, "image": "x", "imageID": "", "ready": false, "restartCount": 4,
        "state": {"waiting": {"reason": reason, "message": message}},
        "lastState": last,
    }]})
}

#[tokio::test]
async fn a_crashlooping_worker_pod_is_the_reason_of_workers_ready_with_a_warning() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    world.pods_ready();
    let worker = "payments-worker-orders-webhooks";
    world.put_pod(
        worker,
        "payments-worker-orders-webhooks-5f7-x2x",
        waiting(
            "worker",
            "CrashLoopBackOff",
            "back-off 40s restarting failed container",
            json!({"terminated": {"exitCode": 1, "reason": "Error",
                                  "message": "shard a: password authentication failed"}}),
        ),
    );
    // A pod of another Deployment, crashlooping too, is not this one's.
    world.put_pod(
        "payments-ingest",
        "payments-ingest-9c-aaaa",
        json!({"phase": "Running"}),
    );

    world.reconcile("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "WorkersReady");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "CrashLoopBackOff")
    );
    for part in [
        "pod payments-worker-orders-webhooks-5f7-x2x",
        "container worker",
        "exit code 1",
        "password authentication failed",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    assert_eq!(
        world.condition("payments", "IngestReady"),
        ("True".into(), "Available".into())
    );
    let warned = world.warnings("CrashLoopBackOff");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("payments-worker-orders-webhooks-5f7-x2x"),
        "{warned:?}"
    );
}

#[tokio::test]
async fn an_ingest_image_that_cannot_be_pulled_is_the_reason_of_ingest_ready() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    world.put_pod(
        "payments-ingest",
        "payments-ingest-9c-abcd",
        waiting(
            "ingest",
            "ImagePullBackOff",
            "Back-off pulling image \"hookline-ingest:typo\"",
            json!({}),
        ),
    );

    world.reconcile("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "IngestReady");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ImagePullBackOff")
    );
    assert!(message.contains("hookline-ingest:typo"), "{message}");
    assert!(
        !world.warnings("ImagePullBackOff").is_empty(),
        "{:?}",
        world.events()
    );
}

#[tokio::test]
async fn an_unschedulable_worker_pod_says_why_the_scheduler_refused() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    world.put_pod(
        "payments-worker-disputes-webhooks",
        "payments-worker-disputes-webhooks-1-zz",
        json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory.",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
    );

    world.reconcile("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "WorkersReady");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "Unschedulable")
    );
    assert!(message.contains("Insufficient memory"), "{message}");
    assert!(
        !world.warnings("Unschedulable").is_empty(),
        "{:?}",
        world.events()
    );
}

#[tokio::test]
async fn a_quota_refusing_the_worker_pods_is_read_from_its_replica_set() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    let worker = "payments-worker-orders-webhooks";
    let replica_set = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "payments-worker-orders-webhooks-5f7", "namespace": "default",
                     "labels": world.selector(worker)},
        "spec": {"selector": {"matchLabels": world.selector(worker)}},
        "status": {"replicas": 0, "conditions": [{
            "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "message": "pods \"payments-worker-orders-webhooks-5f7-q\" is forbidden: exceeded quota: compute, requested: memory=512Mi, used: memory=2Gi, limited: memory=2Gi"}]},
    });
    world.api.put(
        REPLICA_SETS,
        "payments-worker-orders-webhooks-5f7",
        replica_set,
    );

    world.reconcile("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "WorkersReady");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "FailedCreate")
    );
    assert!(message.contains("exceeded quota: compute"), "{message}");
    assert_eq!(
        world.condition("payments", "Ready"),
        ("False".into(), "FailedCreate".into())
    );
    assert!(
        !world.warnings("FailedCreate").is_empty(),
        "{:?}",
        world.events()
    );
}

#[tokio::test]
async fn a_deployment_without_status_is_unknown_rather_than_progressing() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;

    // Nothing changed and no controller wrote the Deployments' status.
    world.reconcile("payments").await;

    let (status, reason, message) = world.condition_with_message("payments", "WorkersReady");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("Unknown", "StatusUnknown")
    );
    assert!(message.contains("has no status yet"), "{message}");
    assert_eq!(world.condition("payments", "Ready").0, "Unknown");
}

#[tokio::test]
async fn hand_edits_of_the_children_are_put_back_at_the_next_reconcile() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    world.pods_ready();
    world.reconcile("payments").await;
    let ingest = world.deployment("payments-ingest");
    let config = world.api.get(CONFIG_MAPS, "payments-pipeline").unwrap();
    let service = world.api.get(SERVICES, "payments-ingest").unwrap();

    let mut edited = ingest.clone();
    let container = &mut edited["spec"]["template"]["spec"]["containers"][0];
    container["image"] = "hookline-ingest:by-hand".into();
    let mut env = container["env"].as_array().cloned().unwrap_or_default();
    env.push(json!({"name": "RUST_LOG", "value": "trace"}));
    container["env"] = env.into();
    world.api.put(DEPLOYMENTS, "payments-ingest", edited);
    let mut edited = config.clone();
    let key = edited["data"]
        .as_object()
        .and_then(|d| d.keys().next().cloned())
        .unwrap();
    edited["data"][&key] = "edited: by hand".into();
    world.api.put(CONFIG_MAPS, "payments-pipeline", edited);
    let mut edited = service.clone();
    edited["spec"]["ports"][0]["port"] = 9999.into();
    world.api.put(SERVICES, "payments-ingest", edited);

    world.reconcile("payments").await;

    let restored = world.deployment("payments-ingest");
    assert_eq!(
        restored["spec"]["template"], ingest["spec"]["template"],
        "the ingest pod template"
    );
    let restored = world.api.get(CONFIG_MAPS, "payments-pipeline").unwrap();
    assert_eq!(restored["data"], config["data"], "the ConfigMap's data");
    let restored = world.api.get(SERVICES, "payments-ingest").unwrap();
    assert_eq!(
        restored["spec"]["ports"], service["spec"]["ports"],
        "the Service's ports"
    );

    // Put back, they stay put: the next reconcile writes nothing.
    let writes = world.api.writes().len();
    world.reconcile("payments").await;
    assert_eq!(world.api.writes()[writes..], [] as [String; 0]);
}

#[tokio::test]
async fn a_settled_pipeline_lists_no_pods_and_a_starting_one_does() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline(), 1);
    world.settle("payments").await;
    let pod_lists = |from: usize| {
        world.api.requests()[from..]
            .iter()
            .filter(|r| r.path == PODS || r.path == REPLICA_SETS)
            .count()
    };
    let before = world.api.requests().len();
    world.reconcile("payments").await;
    // Three Deployments not ready yet: their pods and ReplicaSets are read.
    assert_eq!(pod_lists(before), 6);

    {
        let mut store = world.api.store.lock().unwrap();
        for ((collection, _), object) in store.iter_mut() {
            if collection == DEPLOYMENTS {
                let n = object["spec"]["replicas"].clone();
                let generation = object["metadata"]["generation"].clone();
                object["status"] = json!({
                    "observedGeneration": if generation.is_null() { 1.into() } else { generation },
                    "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                });
            }
        }
    }
    let before = world.api.requests().len();
    world.reconcile("payments").await;

    assert_eq!(pod_lists(before), 0);
    assert_eq!(
        world.condition("payments", "Ready"),
        ("True".into(), "Ready".into())
    );
}

/// The pipeline's own topic, of `partitions`, and nothing else.
fn ledger(partitions: i32) -> PipelineBuilder {
    pipeline()
        .with_partitions("payments.ledger", partitions)
        .without_topic("orders.webhooks")
        .without_topic("disputes.webhooks")
        .with_deletion_policy(DeletionPolicy::Delete)
}

/// The Kafka requests made for `topic` itself (not its DLQ).
fn requests_for(world: &World, topic: &str) -> Vec<String> {
    world
        .kafka
        .requests()
        .into_iter()
        .filter(|r| r.split(' ').nth(1) == Some(topic))
        .collect()
}

fn message(world: &World, pipeline: &str, kind: &str) -> String {
    let object = world.api.get(PIPELINES, pipeline).unwrap();
    object["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["message"].as_str())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_topic_that_existed_before_is_refused_and_neither_grown_nor_deleted() {
    let world = World::new(FakeAdmin::default());
    // Created outside the operator, with fewer partitions than the spec asks.
    world.kafka.set_partitions("payments.ledger", 2);
    world.apply(ledger(4), 1);

    world.settle("payments").await;

    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("False".into(), "TopicExists".into())
    );
    let why = message(&world, "payments", "TopicsReady");
    assert!(why.contains("payments.ledger"), "{why}");
    assert!(
        world
            .api
            .get(DEPLOYMENTS, "payments-worker-payments-ledger")
            .is_none(),
        "no workers for a topic that is not the pipeline's"
    );

    delete(&world, "payments").await;
    world.reconcile("payments").await;

    assert!(world.api.get(PIPELINES, "payments").is_none());
    assert_eq!(world.kafka.topics().get("payments.ledger"), Some(&2));
    assert_eq!(
        requests_for(&world, "payments.ledger"),
        Vec::<String>::new(),
        "no CreatePartitions or DeleteTopics for a topic that is not the pipeline's"
    );
}

#[tokio::test]
async fn an_adopted_topic_is_used_as_it_is_and_outlives_the_pipeline() {
    let world = World::new(FakeAdmin::default());
    world.kafka.set_partitions("payments.ledger", 2);
    world.apply(ledger(4).adopting("payments.ledger"), 1);

    world.settle("payments").await;

    assert_eq!(
        world.condition("payments", "TopicsReady").0,
        "True",
        "{}",
        message(&world, "payments", "TopicsReady")
    );
    assert_eq!(
        world.replicas("payments-worker-payments-ledger"),
        2,
        "workers follow the adopted topic's partitions"
    );
    let object = world.api.get(PIPELINES, "payments").unwrap();
    let status = &object["status"]["topics"][0];
    assert_eq!(
        (&status["owned"], &status["dlqOwned"]),
        (&json!(false), &json!(true))
    );

    delete(&world, "payments").await;
    world.reconcile("payments").await;

    assert_eq!(world.kafka.topics().get("payments.ledger"), Some(&2));
    assert_eq!(
        requests_for(&world, "payments.ledger"),
        Vec::<String>::new(),
        "an adopted topic is never grown nor deleted"
    );
    assert!(
        !world.kafka.topics().contains_key("payments.ledger.DLQ"),
        "the DLQ the operator created goes"
    );
}

#[tokio::test]
async fn a_topic_the_operator_created_stays_its_own_and_goes_with_the_pipeline() {
    let world = World::new(FakeAdmin::default());
    world.apply(ledger(2), 1);
    world.settle("payments").await;

    // Later reconciles find the topic on the broker: it is still the
    // operator's, grown with the spec.
    world.apply(ledger(4), 1);
    world.reconcile("payments").await;
    world.reconcile("payments").await;

    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("True".into(), "TopicsReady".into())
    );
    assert_eq!(world.kafka.topics()["payments.ledger"], 4);
    delete(&world, "payments").await;
    world.reconcile("payments").await;
    assert_eq!(
        world.kafka.topics().into_keys().collect::<Vec<_>>(),
        Vec::<String>::new()
    );
}

/// A broker whose first successful CreateTopics is followed by the operator
/// stopping: the topic exists, the reconcile never finished.
struct StopsAfterCreate {
    kafka: Arc<FakeAdmin>,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl KafkaAdmin for StopsAfterCreate {
    async fn partitions(
        &self,
        topics: &[String],
    ) -> Result<std::collections::HashMap<String, i32>, AdminError> {
        self.kafka.partitions(topics).await
    }
    async fn create(
        &self,
        topic: &str,
        partitions: i32,
        settings: &hookline_kafka::topics::TopicSettings,
    ) -> Result<(), AdminError> {
        let created = self.kafka.create(topic, partitions, settings).await;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("the operator stops after CreateTopics");
        }
        created
    }
    async fn grow(&self, topic: &str, partitions: i32) -> Result<(), AdminError> {
        self.kafka.grow(topic, partitions).await
    }
    async fn delete(&self, topic: &str) -> Result<(), AdminError> {
        self.kafka.delete(topic).await
    }
    async fn cluster_id(&self) -> Result<Option<String>, AdminError> {
        self.kafka.cluster_id().await
    }
}

#[tokio::test]
async fn a_stop_between_creating_a_topic_and_writing_the_status_leaves_the_topic_owned() {
    let kafka = Arc::new(FakeAdmin::default());
    let admin = Arc::new(StopsAfterCreate {
        kafka: kafka.clone(),
        armed: false.into(),
    });
    let world = World::with_admin(admin.clone(), kafka);
    world.apply(ledger(2), 1);
    world.reconcile("payments").await; // adds the finalizer
    admin.armed.store(true, std::sync::atomic::Ordering::SeqCst);

    let object = world.api.get(PIPELINES, "payments").unwrap();
    let pipeline: WebhookPipeline = serde_json::from_value(object).unwrap();
    let stopped = tokio::spawn(reconcile(Arc::new(pipeline), world.ctx.clone())).await;
    assert!(stopped.is_err(), "the reconcile stopped midway");
    assert!(world.kafka.topics().contains_key("payments.ledger"));

    world.reconcile("payments").await;

    assert_eq!(
        world.condition("payments", "TopicsReady"),
        ("True".into(), "TopicsReady".into())
    );
    delete(&world, "payments").await;
    world.reconcile("payments").await;
    assert!(
        world.kafka.topics().is_empty(),
        "the topic the operator created is its own: {:?}",
        world.kafka.topics()
    );
}

#[tokio::test]
async fn two_spellings_of_one_cluster_conflict_and_deleting_one_keeps_the_others_topics() {
    // One cluster, reached as `kafka:9092` by one pipeline and by its
    // Service's full name by the other.
    let world = World::new(FakeAdmin::default().with_cluster_id(Some("cluster-1")));
    world.apply(pipeline().with_deletion_policy(DeletionPolicy::Delete), 1);
    world.settle("payments").await;
    world.apply(
        pipeline()
            .named("copycat", "uid-copycat")
            .with_bootstrap("kafka.default.svc.cluster.local:9092")
            .adopting("orders.webhooks")
            .adopting("disputes.webhooks")
            .with_deletion_policy(DeletionPolicy::Delete),
        2,
    );

    world.settle("copycat").await;

    assert_eq!(
        world.condition("copycat", "Ready"),
        ("False".into(), "TopicConflict".into())
    );
    let object = world.api.get(PIPELINES, "payments").unwrap();
    assert_eq!(object["status"]["clusterId"], "cluster-1");

    // The older pipeline goes while the newer still names its topics.
    delete(&world, "payments").await;
    world.reconcile("payments").await;

    assert!(world.api.get(PIPELINES, "payments").is_none());
    assert_eq!(world.kafka.topics().len(), 4, "{:?}", world.kafka.topics());
    assert!(
        !world
            .kafka
            .requests()
            .iter()
            .any(|r| r.starts_with("Delete")),
        "{:?}",
        world.kafka.requests()
    );
}

#[tokio::test]
async fn topics_that_share_a_worker_name_are_refused_naming_both() {
    let world = World::new(FakeAdmin::default());
    world.apply(pipeline().with_partitions("orders_webhooks", 2), 1);

    world.settle("payments").await;

    assert_eq!(
        world.condition("payments", "Ready"),
        ("False".into(), "InvalidSpec".into())
    );
    let why = message(&world, "payments", "Ready");
    assert!(
        why.contains("orders.webhooks") && why.contains("orders_webhooks"),
        "{why}"
    );
    assert_eq!(world.kafka.requests(), Vec::<String>::new());
}

/// A deletion in flight across a failover: the old leader's cleanup deletes
/// one topic slowly, and while the broker takes its time another replica
/// takes the lease. The old leader must not send the next deletion (nor write
/// an Event or the finalizer): the new leader may be re-creating the topics.
#[tokio::test(start_paused = true)]
async fn a_lease_lost_during_a_slow_deletion_stops_the_cleanup_before_its_next_request() {
    use hookline_operator::controller::Error;
    use hookline_operator::lease::{Elector, Timings, keep};
    use k8s_openapi::api::coordination::v1::Lease;
    use std::time::Duration;
    use tokio::time::Instant;

    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    let world = World::new(FakeAdmin::default());
    world.apply(
        pipeline()
            .with_deletion_policy(DeletionPolicy::Delete)
            .with_partitions("refunds.webhooks", 2),
        1,
    );
    world.settle("payments").await;
    let leases: Api<Lease> = Api::namespaced(world.api.client(), "default");
    let mut elector = Elector::new(leases, "hookline-operator", "a", Timings::DEFAULT);
    assert!(elector.try_lead().await.unwrap());
    let keeper = tokio::spawn({
        let fence = world.ctx.fence.clone();
        async move {
            keep(
                &mut elector,
                &fence,
                &tokio_util::sync::CancellationToken::new(),
            )
            .await
        }
    });
    // What the settling did happened at the start; the cleanup comes later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    delete(&world, "payments").await;
    world.kafka.set_delay(Duration::from_secs(30));
    let deleting = {
        let object = world.api.get(PIPELINES, "payments").unwrap();
        let pipeline: WebhookPipeline = serde_json::from_value(object).unwrap();
        tokio::spawn(reconcile(Arc::new(pipeline), world.ctx.clone()))
    };

    let mut first_delete = None;
    for _ in 0..1000 {
        first_delete = world
            .kafka
            .requests_at()
            .into_iter()
            .find(|(_, r)| r.starts_with("Delete"));
        if first_delete.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (deletion_sent, deletion) = first_delete.expect("the cleanup deletes a topic");
    // Another replica takes the lease while the broker works.
    let mut lease = world.api.get(LEASES, "hookline-operator").unwrap();
    lease["spec"]["holderIdentity"] = "b".into();
    world.api.put(LEASES, "hookline-operator", lease);
    world.ctx.fence.lost().await;
    let lost = Instant::now();
    assert!(
        lost < deletion_sent + Duration::from_secs(30),
        "lost while the deletion was in flight"
    );

    let result = deleting.await.unwrap();
    assert!(matches!(result, Err(Error::NotLeader(_))), "{result:?}");
    keeper.await.unwrap().unwrap_err();
    // Long after the slow answer would have come.
    tokio::time::sleep(Duration::from_secs(120)).await;

    let admin_after: Vec<_> = world
        .kafka
        .requests_at()
        .into_iter()
        .filter(|(at, _)| *at >= deletion_sent)
        .map(|(at, r)| (at - deletion_sent, r))
        .collect();
    assert_eq!(
        admin_after,
        vec![(Duration::ZERO, deletion)],
        "one deletion, in flight at the loss, and nothing after"
    );
    let api_after: Vec<_> = world
        .api
        .requests_at()
        .into_iter()
        .filter(|(at, r)| *at > deletion_sent && !r.path.starts_with(LEASES))
        .map(|(at, r)| (at - deletion_sent, r.method, r.path))
        .collect();
    assert_eq!(
        api_after,
        vec![],
        "no API request once the deletion was sent"
    );
    let api_after_loss: Vec<_> = world
        .api
        .requests_at()
        .into_iter()
        .filter(|(at, _)| *at > lost)
        .map(|(_, r)| (r.method, r.path))
        .collect();
    assert_eq!(api_after_loss, vec![], "not even the lease");
    assert!(
        world.api.get(PIPELINES, "payments").is_some(),
        "the finalizer stays for the new leader"
    );
}
