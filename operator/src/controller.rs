//! The reconcile of a `WebhookPipeline`: topics first, then the workloads that
//! follow the partitions Kafka has, then the status, each written only when it
//! changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::{DeletionPolicy, WebhookPipeline};
use hookline_contract::status::{TopicStatus, WebhookPipelineStatus};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::claims;
use crate::drift;
use crate::fence::{Fence, NotLeader};
use crate::health::{self, Problem};
use crate::metrics::Metrics;
use crate::ownership;
use crate::secrets::{self, SecretError};
use crate::shard_limits::ShardLimits;
use crate::status::{self, Observed, TopicProblem};
use crate::workloads::{self, Images};
use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{AdminError, KafkaAdmin};
use hookline_kafka::topics::{self, Change, TopicPlan};

/// The finalizer that lets `deletionPolicy: Delete` remove the topics.
pub const FINALIZER: &str = "hookline.dev/topics";
/// The field manager of every server-side apply.
pub const MANAGER: &str = "hookline-operator";
/// Annotation holding a digest of what was last applied: tells whoever reads
/// a child which apply it holds. Whether to apply again is decided by the
/// fields themselves ([`drift::holds`]).
const APPLIED: &str = "hookline.dev/applied";
/// How often a pipeline is looked at without a change: partitions may grow
/// outside the operator, and pods become ready.
const RESYNC: Duration = Duration::from_secs(60);

/// Opens the admin API of a pipeline's brokers.
pub trait AdminFactory: Send + Sync {
    fn admin(&self, settings: &ClientSettings) -> Result<Arc<dyn KafkaAdmin>, AdminError>;
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes API.
    pub client: Client,
    /// The Kafka admin API of each pipeline's brokers.
    pub admins: Arc<dyn AdminFactory>,
    /// Images of the ingest and worker pods.
    pub images: Images,
    /// Where Events about pipelines go.
    pub recorder: Recorder,
    /// Reconcile counts and durations.
    pub metrics: Arc<Metrics>,
    /// Lost with the leader lease: every reconcile runs under it, so that
    /// none makes a request once another replica may lead.
    pub fence: Fence,
    /// What each shard was last found to take, kept a few minutes: a
    /// reconcile a minute must not open a connection to every shard.
    pub shard_limits: ShardLimits,
}

/// A reconcile that failed; retried by [`error_policy`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Kubernetes API refused {operation}")]
    Kube {
        operation: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("the finalizer failed")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("opening the Kafka admin API failed")]
    Admin(#[source] AdminError),
    #[error("reading the Kafka TLS and SASL Secrets failed")]
    KafkaSecrets(#[source] SecretError),
    #[error("serialising {0} failed")]
    Serialize(&'static str, #[source] serde_json::Error),
    #[error("the reconcile stopped where it was")]
    NotLeader(#[source] NotLeader),
}

impl Error {
    /// A fixed label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Finalizer(_) => "finalizer",
            Error::Admin(_) => "kafka_admin",
            Error::KafkaSecrets(_) => "kafka_secrets",
            Error::Serialize(..) => "serialize",
            Error::NotLeader(_) => "not_leader",
        }
    }
}

fn kube(operation: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { operation, source }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Reconciles one pipeline, behind the finalizer.
#[tracing::instrument(skip(pipeline, ctx), fields(pipeline = %pipeline.name_any(), namespace = ?pipeline.namespace()))]
pub async fn reconcile(pipeline: Arc<WebhookPipeline>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let api: Api<WebhookPipeline> = Api::namespaced(
        ctx.client.clone(),
        &pipeline.namespace().unwrap_or_default(),
    );
    let work = finalizer(&api, FINALIZER, pipeline, |event| async {
        match event {
            Finalizer::Apply(pipeline) => apply(&pipeline, &ctx).await,
            Finalizer::Cleanup(pipeline) => cleanup(&pipeline, &ctx).await,
        }
    });
    // Every admin call and API write of the reconcile, the finalizer's
    // included, happens inside the guard.
    let result = match ctx.fence.guard(work).await {
        Ok(done) => done.map_err(|e| Error::Finalizer(Box::new(e))),
        Err(lost) => Err(Error::NotLeader(lost)),
    };
    ctx.metrics.reconciled(started.elapsed().as_secs_f64());
    result
}

/// Logs, counts, and retries a failed reconcile.
pub fn error_policy(pipeline: Arc<WebhookPipeline>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(pipeline = %pipeline.name_any(), error = %error, cause = ?error, "reconcile failed");
    ctx.metrics.failed(error.label());
    Action::requeue(Duration::from_secs(15))
}

async fn apply(pipeline: &WebhookPipeline, ctx: &Context) -> Result<Action> {
    let all = Api::<WebhookPipeline>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube("listing pipelines"))?
        .items;
    let previous = pipeline.status.clone().unwrap_or_default();
    // Bounded by its timeout, and never an error: a shard that cannot be
    // read is said so in the status, and holds up nothing else.
    let shard_limits = ctx.shard_limits.read(&ctx.client, pipeline).await;
    let mut observed = Observed {
        generation: pipeline.metadata.generation,
        // With the spec's partitions until the broker says how many it has.
        shards: status::shard_demand(&pipeline.spec, &BTreeMap::new(), &shard_limits),
        ..Observed::default()
    };

    // Admission checks what CEL can; a declared type's schema can only be
    // judged by compiling it.
    let invalid = pipeline.spec.problems();
    if !invalid.is_empty() {
        observed.invalid = invalid;
        observed.topics = previous.topics;
        observed.cluster_id = previous.cluster_id;
        write_status(pipeline, ctx, &observed).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let admin = admin(pipeline, ctx).await?;
    observed.cluster_id = match admin.cluster_id().await {
        Ok(id) => id,
        Err(error) => {
            // Which pipelines share this cluster is unknown: claims cannot be
            // decided, so nothing is touched.
            observed.problems.push(TopicProblem::Kafka {
                topic: claims::names(pipeline).collect::<Vec<_>>().join(", "),
                error,
            });
            observed.topics = previous.topics;
            observed.cluster_id = previous.cluster_id;
            write_status(pipeline, ctx, &observed).await?;
            return Ok(Action::requeue(RESYNC));
        }
    };
    let lost = claims::lost_topics(pipeline, observed.cluster_id.as_deref(), &all);
    if !lost.is_empty() {
        // The older pipeline owns these topics: touch neither them nor the
        // workers that would consume them.
        for lost in lost {
            observed.problems.push(TopicProblem::Conflict {
                topic: lost.topic,
                owner: lost.owner,
                cluster_known: lost.cluster_known,
            });
        }
        observed.topics = previous.topics;
        write_status(pipeline, ctx, &observed).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let Some(partitions) =
        reconcile_topics(pipeline, admin.as_ref(), &previous, ctx, &mut observed).await?
    else {
        // The broker did not answer, or a topic is not this pipeline's: what
        // the pipeline may use is unknown, so the workloads stay as they are
        // (scaling them to the spec would undo adopted partitions) and so
        // does what the status knew of the topics.
        observed.topics = previous.topics;
        write_status(pipeline, ctx, &observed).await?;
        return Ok(Action::requeue(RESYNC));
    };

    observed.shards = status::shard_demand(&pipeline.spec, &partitions, &shard_limits);
    let children = workloads::children(pipeline, &partitions, &ctx.images);
    let ns = pipeline.namespace().unwrap_or_default();
    apply_child::<_, ()>(
        &Api::namespaced(ctx.client.clone(), &ns),
        &children.config,
        None,
    )
    .await?;
    apply_child::<_, ()>(
        &Api::namespaced(ctx.client.clone(), &ns),
        &children.ingest_service,
        None,
    )
    .await?;
    apply_child::<_, ()>(
        &Api::namespaced(ctx.client.clone(), &ns),
        &children.ingest_budget,
        None,
    )
    .await?;
    let policies: Api<NetworkPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    match &children.ingest_network_policy {
        Some(policy) => {
            apply_child::<_, ()>(&policies, policy, None).await?;
        }
        None => prune_network_policy(&policies, pipeline).await?,
    }
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let (ready, wanted, problem) =
        apply_deployment(&deployments, &children.ingest, pipeline, ctx).await?;
    observed.ingest = (ready, wanted);
    observed.ingest_problem = problem;
    for (worker, topic) in children.workers.iter().zip(&pipeline.spec.topics) {
        let (ready, wanted, problem) =
            apply_deployment(&deployments, worker, pipeline, ctx).await?;
        observed.workers_problem = health::worse(observed.workers_problem.take(), problem);
        observed.workers.0 += ready;
        observed.workers.1 += wanted;
        if let Some(status) = observed.topics.iter_mut().find(|t| t.name == topic.name) {
            status.workers_ready = ready;
        }
    }
    let keep: Vec<String> = children
        .workers
        .iter()
        .filter_map(|w| w.metadata.name.clone())
        .collect();
    prune_workers(&deployments, pipeline, &keep, ctx).await?;
    write_status(pipeline, ctx, &observed).await?;
    Ok(Action::requeue(RESYNC))
}

/// Deletes the ingest's NetworkPolicy once the spec no longer enables it: left
/// in place, it would keep filtering what the spec says is open.
async fn prune_network_policy(
    policies: &Api<NetworkPolicy>,
    pipeline: &WebhookPipeline,
) -> Result<()> {
    let name = format!("{}-ingest", pipeline.name_any());
    let Some(existing) = policies
        .get_opt(&name)
        .await
        .map_err(kube("reading the ingest network policy"))?
    else {
        return Ok(());
    };
    let uid = pipeline.uid();
    let ours = existing
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref());
    if ours {
        policies
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(kube("deleting the ingest network policy"))?;
    }
    Ok(())
}

/// Deletes the worker Deployments of this pipeline whose topic left the spec;
/// left running, they would consume a topic no longer in their manifest.
async fn prune_workers(
    deployments: &Api<Deployment>,
    pipeline: &WebhookPipeline,
    keep: &[String],
    ctx: &Context,
) -> Result<()> {
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component=worker",
        pipeline.name_any()
    );
    let owned = deployments
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube("listing worker deployments"))?;
    let uid = pipeline.uid();
    for deployment in owned.items {
        let name = deployment.name_any();
        // Only this pipeline's own workers, whatever the selector let through.
        let worker = deployment
            .labels()
            .get("app.kubernetes.io/component")
            .map(String::as_str)
            == Some("worker");
        let ours = deployment
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref());
        let ours = ours && worker;
        if !ours || keep.contains(&name) {
            continue;
        }
        deployments
            .delete(&name, &DeleteParams::default())
            .await
            .map_err(kube("deleting a worker deployment"))?;
        publish(
            pipeline,
            ctx,
            EventType::Normal,
            "Pruned",
            format!("deleted {name}: its topic left the spec"),
        )
        .await;
    }
    Ok(())
}

/// The admin API of `pipeline`'s brokers, with its TLS and SASL Secrets.
async fn admin(pipeline: &WebhookPipeline, ctx: &Context) -> Result<Arc<dyn KafkaAdmin>> {
    let settings = secrets::kafka_settings(pipeline, &ctx.client)
        .await
        .map_err(Error::KafkaSecrets)?;
    ctx.admins.admin(&settings).map_err(Error::Admin)
}

/// Creates and grows the topics the pipeline owns; returns the partitions
/// each main topic has, or `None` when the broker could not say or a topic is
/// not the pipeline's to use.
async fn reconcile_topics(
    pipeline: &WebhookPipeline,
    admin: &dyn KafkaAdmin,
    previous: &WebhookPipelineStatus,
    ctx: &Context,
    observed: &mut Observed,
) -> Result<Option<BTreeMap<String, i32>>> {
    let declared = topics::declared(&pipeline.spec);
    let names: Vec<String> = declared.iter().map(|d| d.name.clone()).collect();
    let before = match admin.partitions(&names).await {
        Ok(before) => before,
        Err(error) => {
            observed.problems.push(TopicProblem::Kafka {
                topic: names.join(", "),
                error,
            });
            return Ok(None);
        }
    };
    let ownership = ownership::decide(&pipeline.spec, &declared, &before, &previous.topics);
    if !ownership.refused.is_empty() {
        for topic in ownership.refused {
            observed.problems.push(TopicProblem::Exists { topic });
        }
        return Ok(None);
    }
    if let Some(entries) = ownership::intent(&pipeline.spec, &ownership, &before, &previous.topics)
    {
        let intent = WebhookPipelineStatus {
            topics: entries,
            cluster_id: observed.cluster_id.clone(),
            ..previous.clone()
        };
        write_intent(pipeline, ctx, &intent).await?;
    }
    let plans = topics::plan(&ownership.managed, &before);
    let outcomes = topics::apply(admin, &plans).await;
    let (owned, raced) = ownership::settle(&ownership, &plans, &outcomes);
    let adopted: Vec<topics::Outcome> = ownership
        .adopted
        .iter()
        .map(|(topic, partitions)| topics::Outcome {
            topic: topic.clone(),
            partitions: *partitions,
            change: None,
            problem: None,
        })
        .collect();
    let after: HashMap<&str, &topics::Outcome> = outcomes
        .iter()
        .chain(&adopted)
        .map(|o| (o.topic.as_str(), o))
        .collect();

    let mut partitions = BTreeMap::new();
    for topic in &pipeline.spec.topics {
        let Some(outcome) = after.get(topic.name.as_str()) else {
            continue;
        };
        partitions.insert(topic.name.clone(), outcome.partitions);
        let asked_before = previous
            .topics
            .iter()
            .find(|p| p.name == topic.name)
            .map(|p| p.spec_partitions);
        // What the spec has asked for at most: a decrease stays a decrease on
        // every later reconcile until the spec is raised again.
        let mut asked = topic.partitions;
        if let Some(TopicPlan::Adopt {
            observed: have,
            spec,
            ..
        }) = plans.iter().find(|p| p.topic() == topic.name)
        {
            match asked_before {
                Some(before) if *spec < before => {
                    asked = before;
                    observed.problems.push(TopicProblem::Decrease {
                        topic: topic.name.clone(),
                        from: *have,
                        to: *spec,
                    });
                }
                _ => observed.adopted.push(topic.name.clone()),
            }
        }
        let dlq = dlq_topic(&topic.name);
        observed.topics.push(TopicStatus {
            name: topic.name.clone(),
            partitions: outcome.partitions,
            spec_partitions: asked,
            owned: owned.contains(&topic.name),
            dlq_owned: owned.contains(&dlq),
            dlq,
            workers_ready: 0,
        });
    }
    for topic in raced {
        observed.problems.push(TopicProblem::Exists { topic });
    }
    for outcome in &outcomes {
        announce(pipeline, ctx, outcome).await;
        match &outcome.problem {
            Some(AdminError::Unsupported(_)) => {
                let want = declared
                    .iter()
                    .find(|d| d.name == outcome.topic)
                    .map_or(0, |d| d.partitions);
                observed.problems.push(TopicProblem::Unsupported {
                    topic: outcome.topic.clone(),
                    have: outcome.partitions,
                    want,
                });
            }
            Some(error) => observed.problems.push(TopicProblem::Kafka {
                topic: outcome.topic.clone(),
                error: error.clone(),
            }),
            None => {}
        }
    }
    // A problem found now outranks a decrease found in the plan.
    observed.problems.sort_by_key(|p| match p {
        TopicProblem::Conflict { .. } => 0,
        TopicProblem::Exists { .. } => 1,
        TopicProblem::Decrease { .. } => 2,
        TopicProblem::Unsupported { .. } => 3,
        TopicProblem::Kafka { .. } => 4,
    });
    Ok(Some(partitions))
}

/// Writes the topics the operator is about to create into the status before
/// it creates them (see [`ownership::intent`]), keeping every condition.
async fn write_intent(
    pipeline: &WebhookPipeline,
    ctx: &Context,
    status: &WebhookPipelineStatus,
) -> Result<()> {
    patch_status(pipeline, ctx, status)
        .await
        .map_err(kube("recording the topics about to be created"))
}

/// Server-side applies `status` as the pipeline's status.
async fn patch_status(
    pipeline: &WebhookPipeline,
    ctx: &Context,
    status: &WebhookPipelineStatus,
) -> Result<(), kube::Error> {
    let api: Api<WebhookPipeline> = Api::namespaced(
        ctx.client.clone(),
        &pipeline.namespace().unwrap_or_default(),
    );
    let patch = serde_json::json!({
        "apiVersion": WebhookPipeline::api_version(&()),
        "kind": WebhookPipeline::kind(&()),
        "status": status,
    });
    api.patch_status(
        &pipeline.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// An Event for each change made to a topic, and each failure.
async fn announce(pipeline: &WebhookPipeline, ctx: &Context, outcome: &topics::Outcome) {
    let event = match (&outcome.change, &outcome.problem) {
        (Some(Change::Created(n)), _) => (
            EventType::Normal,
            "TopicCreated",
            format!("created topic {} with {n} partitions", outcome.topic),
        ),
        (Some(Change::Grown { from, to }), _) => (
            EventType::Normal,
            "TopicGrown",
            format!(
                "grew topic {} from {from} to {to} partitions",
                outcome.topic
            ),
        ),
        (None, Some(error)) => (
            EventType::Warning,
            "TopicFailed",
            format!("topic {}: {error}", outcome.topic),
        ),
        (None, None) => return,
    };
    publish(pipeline, ctx, event.0, event.1, event.2).await;
}

async fn publish(
    pipeline: &WebhookPipeline,
    ctx: &Context,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    // An Event is a courtesy: failing to record one must not fail the reconcile.
    if let Err(error) = ctx
        .recorder
        .publish(&event, &pipeline.object_ref(&()))
        .await
    {
        tracing::debug!(error = %error, reason, "recording an event failed");
    }
}

/// Applies a Deployment; returns its (ready, wanted) replicas and what
/// Kubernetes says is wrong with its pods.
async fn apply_deployment(
    api: &Api<Deployment>,
    desired: &Deployment,
    pipeline: &WebhookPipeline,
    ctx: &Context,
) -> Result<(i32, i32, Option<Problem>)> {
    let wanted = desired.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let current: fn(&Deployment) -> Option<i32> = |d| d.spec.as_ref().and_then(|s| s.replicas);
    let (applied, before, written) = apply_child(api, desired, Some(current)).await?;
    let name = desired.metadata.name.clone().unwrap_or_default();
    if let Some(before) = before.flatten()
        && before != wanted
    {
        publish(
            pipeline,
            ctx,
            EventType::Normal,
            "Scaled",
            format!("scaled {name} from {before} to {wanted} replicas"),
        )
        .await;
    }
    let ready = applied
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let problem = pod_health(&applied, written, ctx).await;
    Ok((ready, wanted, problem))
}

/// What Kubernetes says of `deployment`'s pods and ReplicaSets, listed by its
/// selector on a reconcile that finds it not settled: the resync reads them,
/// so the operator holds no watch (and no cache) of every pod in the cluster.
async fn pod_health(deployment: &Deployment, applied_now: bool, ctx: &Context) -> Option<Problem> {
    if health::settled(deployment) {
        return None;
    }
    let ns = deployment.namespace().unwrap_or_default();
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .filter(|labels| !labels.is_empty())?
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let listed = ListParams::default().labels(&selector);
    let read = futures_util::future::try_join(
        Api::<ReplicaSet>::namespaced(ctx.client.clone(), &ns).list(&listed),
        Api::<Pod>::namespaced(ctx.client.clone(), &ns).list(&listed),
    )
    .await;
    match read {
        Ok((replica_sets, pods)) => {
            health::diagnose(deployment, applied_now, &replica_sets.items, &pods.items)
        }
        // Saying why pods fail is a courtesy, like an Event: without it (an
        // RBAC rule missing after an upgrade of the operator alone) the
        // ready counts still stand, and the children are still applied.
        Err(error) => {
            tracing::warn!(deployment = %deployment.name_any(), error = %error, "reading the pods failed");
            None
        }
    }
}

/// Applies `desired` by server-side apply unless the live object already
/// holds every field the operator sets ([`drift::holds`]): a hand edit of any
/// of them (replicas scaled by hand, an image, an env var, a port, a
/// ConfigMap's data) is put back at the next reconcile, and an unchanged
/// child costs no write. Returns the object, the `drift` value it had when
/// it was written over an existing one, and whether it was written.
async fn apply_child<K, D>(
    api: &Api<K>,
    desired: &K,
    drift: Option<fn(&K) -> D>,
) -> Result<(K, Option<D>, bool)>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = desired.meta().name.clone().unwrap_or_default();
    let digest = digest(desired)?;
    let mut desired = desired.clone();
    desired.annotations_mut().insert(APPLIED.to_owned(), digest);
    let existing = api.get_opt(&name).await.map_err(kube("reading a child"))?;
    if let Some(existing) = &existing {
        let live = serde_json::to_value(existing).map_err(|e| Error::Serialize("a child", e))?;
        let want = serde_json::to_value(&desired).map_err(|e| Error::Serialize("a child", e))?;
        if drift::holds(&live, &want) {
            return Ok((existing.clone(), None, false));
        }
    }
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(kube("applying a child"))?;
    let before = existing.as_ref().and_then(|e| drift.map(|f| f(e)));
    Ok((applied, before, true))
}

/// A digest of an object as it would be applied.
fn digest<K: Serialize>(object: &K) -> Result<String> {
    let bytes = serde_json::to_vec(object).map_err(|e| Error::Serialize("a child", e))?;
    Ok(format!("{:08x}", hookline_contract::murmur2(&bytes) as u32))
}

/// Writes the status when it differs from the one stored.
async fn write_status(
    pipeline: &WebhookPipeline,
    ctx: &Context,
    observed: &Observed,
) -> Result<()> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = status::build(observed, pipeline.status.as_ref(), now);
    if pipeline.status.as_ref() == Some(&status) {
        return Ok(());
    }
    patch_status(pipeline, ctx, &status)
        .await
        .map_err(kube("writing the status"))?;
    for warning in health::warnings(&status, pipeline.status.as_ref()) {
        publish(
            pipeline,
            ctx,
            EventType::Warning,
            &warning.reason,
            warning.message.clone(),
        )
        .await;
    }
    Ok(())
}

/// The pipeline is going: with `deletionPolicy: Delete`, the topics the
/// operator created for it go too, except those another pipeline on the same
/// cluster also claims. Adopted topics stay. Children go with their owner.
async fn cleanup(pipeline: &WebhookPipeline, ctx: &Context) -> Result<Action> {
    if pipeline.spec.deletion_policy != DeletionPolicy::Delete {
        return Ok(Action::await_change());
    }
    let all = Api::<WebhookPipeline>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await
        .map_err(kube("listing pipelines"))?
        .items;
    let admin = admin(pipeline, ctx).await?;
    // The finalizer stays until the broker says which cluster it is: without
    // it, another pipeline's claim could not be told apart.
    let cluster_id = admin.cluster_id().await.map_err(Error::Admin)?;
    for topic in ownership::deletable(pipeline.status.as_ref()) {
        if claims::claimed_by_another(pipeline, cluster_id.as_deref(), &topic, &all) {
            publish(
                pipeline,
                ctx,
                EventType::Normal,
                "TopicKept",
                format!("kept topic {topic}: another pipeline claims it"),
            )
            .await;
            continue;
        }
        match admin.delete(&topic).await {
            Ok(()) => {
                publish(
                    pipeline,
                    ctx,
                    EventType::Normal,
                    "TopicDeleted",
                    format!("deleted topic {topic}"),
                )
                .await
            }
            Err(AdminError::UnknownTopic(_)) => {}
            // The finalizer stays until the broker answers: no topic is left
            // behind silently.
            Err(error) => return Err(Error::Admin(error)),
        }
    }
    Ok(Action::await_change())
}
