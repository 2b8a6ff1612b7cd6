//! `hookline-operator run`: leader election, the controller, and the health
//! and metrics endpoints, under one shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use futures_util::StreamExt;
use hookline_contract::pipeline::WebhookPipeline;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use tokio_util::sync::CancellationToken;

use hookline_kafka::ClientSettings;
use hookline_kafka::admin::{AdminError, KafkaAdmin, RdKafkaAdmin};
use hookline_runtime::health::{self, Probe};

use crate::controller::{self, AdminFactory, Context, MANAGER};
use crate::fence::Fence;
use crate::lease::{self, Elector, Timings};
use crate::metrics::Metrics;
use crate::shard_limits::ShardLimits;
use crate::workloads::{Images, PullPolicy};

/// The images of the pods the operator creates.
///
/// The defaults carry this operator's own version, which is the chart's
/// `appVersion` (`scripts/images` tags with it too): an operator runs the
/// binaries it was released with, never whatever `latest` is that day.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// Image of the ingest pods.
    #[arg(
        long,
        env = "HOOKLINE_INGEST_IMAGE",
        default_value = concat!("ghcr.io/hookline/hookline-ingest:", env!("CARGO_PKG_VERSION"))
    )]
    pub ingest_image: String,
    /// Image of the worker pods.
    #[arg(
        long,
        env = "HOOKLINE_WORKER_IMAGE",
        default_value = concat!("ghcr.io/hookline/hookline-worker:", env!("CARGO_PKG_VERSION"))
    )]
    pub worker_image: String,
    /// imagePullPolicy of the ingest and worker pods: IfNotPresent suits
    /// release tags and images loaded into the nodes (kind load); Always
    /// suits a tag that is pushed again.
    #[arg(
        long,
        env = "HOOKLINE_IMAGE_PULL_POLICY",
        value_enum,
        default_value_t = PullPolicy::IfNotPresent
    )]
    pub image_pull_policy: PullPolicy,
}

impl From<ImageArgs> for Images {
    fn from(args: ImageArgs) -> Self {
        Images {
            ingest: args.ingest_image,
            worker: args.worker_image,
            pull_policy: args.image_pull_policy,
        }
    }
}

/// Arguments of `hookline-operator run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    images: ImageArgs,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "HOOKLINE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the election: the pod name (two replicas
    /// with one identity would both lead, so there is no default).
    #[arg(long, env = "POD_NAME")]
    identity: String,
}

/// Opens an rdkafka admin client per broker list.
struct Brokers;

impl AdminFactory for Brokers {
    fn admin(&self, settings: &ClientSettings) -> Result<Arc<dyn KafkaAdmin>, AdminError> {
        let admin =
            RdKafkaAdmin::new(settings, "hookline-operator").map_err(|e| AdminError::Broker {
                operation: "connect",
                message: e.to_string(),
            })?;
        Ok(Arc::new(admin))
    }
}

struct Health {
    metrics: Arc<Metrics>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let pipelines: Api<WebhookPipeline> = Api::all(client.clone());
    if let Err(error) = pipelines.list(&ListParams::default().limit(1)).await {
        bail!(
            "cannot list WebhookPipelines ({error}): is the CRD installed? `kubectl apply -f crds/` (or install the Helm chart)"
        );
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(hookline_runtime::shutdown::on_signal(shutdown.clone()));
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health {
        metrics: metrics.clone(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let server = tokio::spawn(health::serve(health, listener, shutdown.clone()));

    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
    let mut elector = Elector::new(leases, MANAGER, &args.identity, Timings::DEFAULT);
    wait_for_lease(&mut elector, &shutdown).await?;
    tracing::info!(identity = %args.identity, "leading; reconciling WebhookPipelines");
    let fence = Fence::new();
    // Renewing goes on through a graceful shutdown, until the controller has
    // stopped: a reconcile still finishing must still be covered by the lease.
    let stop_renewing = CancellationToken::new();
    let renew = {
        let (fence, shutdown, stop) = (fence.clone(), shutdown.clone(), stop_renewing.clone());
        tokio::spawn(async move {
            let kept = lease::keep(&mut elector, &fence, &stop).await;
            if kept.is_err() {
                // The controller stops too; its reconciles already have.
                shutdown.cancel();
            }
            (elector, kept)
        })
    };

    let ctx = Arc::new(Context {
        client: client.clone(),
        admins: Arc::new(Brokers),
        images: args.images.into(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: Some(args.identity),
            },
        ),
        metrics,
        fence,
        shard_limits: ShardLimits::default(),
    });
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=hookline-operator");
    Controller::new(pipelines, watcher::Config::default())
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        // Edited or deleted by hand, they are put back.
        .owns(
            Api::<PodDisruptionBudget>::all(client.clone()),
            owned.clone(),
        )
        .owns(Api::<NetworkPolicy>::all(client), owned)
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(controller::reconcile, controller::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(%object, "reconciled"),
                Err(error) => tracing::warn!(error = %error, "reconcile failed"),
            }
        })
        .await;
    shutdown.cancel();
    stop_renewing.cancel();
    let (mut elector, kept) = renew.await?;
    if kept.is_ok() {
        // Nothing reconciles any more: the standby may start at once rather
        // than wait out the lease.
        if let Err(error) = elector.release().await {
            tracing::warn!(error = %error, "releasing the leader lease failed; it expires");
        }
    }
    server.await??;
    kept.context("leadership ended")
}

async fn wait_for_lease(elector: &mut Elector, shutdown: &CancellationToken) -> anyhow::Result<()> {
    loop {
        match elector.try_lead().await {
            Ok(true) => return Ok(()),
            Ok(false) => tracing::debug!("another replica leads; waiting"),
            Err(error) => {
                tracing::warn!(error = %error, cause = ?error, "looking at the leader lease failed; retrying")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => bail!("shut down before leading"),
            () = tokio::time::sleep(Timings::DEFAULT.retry) => {}
        }
    }
}

/// A standby replica is ready too: it serves, and takes over when the
/// leader goes.
impl Probe for Health {
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        images: ImageArgs,
    }

    /// The chart's `appVersion`, read from `charts/hookline/Chart.yaml`.
    fn chart_app_version() -> String {
        let chart = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../charts/hookline/Chart.yaml"
        ))
        .unwrap();
        let line = chart
            .lines()
            .find_map(|l| l.strip_prefix("appVersion:"))
            .unwrap();
        line.trim().trim_matches('"').to_owned()
    }

    #[test]
    fn default_images_are_the_charts_app_version_and_pulled_if_not_present() {
        let images: Images = Cli::try_parse_from(["operator"]).unwrap().images.into();
        let version = chart_app_version();
        assert_eq!(
            images.ingest,
            format!("ghcr.io/hookline/hookline-ingest:{version}")
        );
        assert_eq!(
            images.worker,
            format!("ghcr.io/hookline/hookline-worker:{version}")
        );
        assert_eq!(images.pull_policy, PullPolicy::IfNotPresent);
    }

    #[test]
    fn the_pull_policy_takes_the_kubernetes_spelling_only() {
        let parse = |policy: &str| {
            Cli::try_parse_from(["operator", "--image-pull-policy", policy])
                .map(|cli| cli.images.image_pull_policy)
        };
        assert_eq!(parse("Always").unwrap(), PullPolicy::Always);
        assert_eq!(parse("Never").unwrap(), PullPolicy::Never);
        assert_eq!(parse("IfNotPresent").unwrap(), PullPolicy::IfNotPresent);
        assert!(parse("if-not-present").is_err());
    }
}
