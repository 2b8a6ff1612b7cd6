//! The running service: state shared by the handlers, the partition-count
//! refresher, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::produce::Producer;
use crate::routes;
use crate::{Error, Result};

/// How often partition counts are re-read, so that grown topics are used.
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// How long shutdown waits for queued records to be delivered.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler shares.
pub struct App {
    pub config: Config,
    pub producer: Producer,
    pub metrics: Metrics,
    /// Webhook requests in progress; a request that finds none free is 503.
    pub admission: tokio::sync::Semaphore,
}

impl App {
    /// Creates the producer for `config`.
    pub fn new(config: Config) -> Result<Arc<Self>> {
        let producer = Producer::new(&config.producer)?;
        let admission = tokio::sync::Semaphore::new(config.settings.max_concurrent_requests);
        Ok(Arc::new(Self {
            config,
            producer,
            metrics: Metrics::new(),
            admission,
        }))
    }
}

/// Serves until `shutdown` is cancelled: stops accepting, lets in-flight
/// requests finish, then flushes the producer.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let refresher = tokio::spawn(refresh_partition_counts(app.clone(), shutdown.clone()));
    let served = axum::serve(listener, routes::router(app.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .map_err(Error::Serve);
    shutdown.cancel();
    let _ = refresher.await;
    if let Err(error) = app.producer.flush(FLUSH_TIMEOUT).await {
        tracing::error!(error = %error, "records may still be queued at shutdown");
    }
    served
}

async fn refresh_partition_counts(app: Arc<App>, shutdown: CancellationToken) {
    let topics = app.config.topics();
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match app.producer.refresh_partition_counts(&topics).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => tracing::warn!(?missing, "topics not found on the broker"),
            Err(error) => tracing::warn!(error = %error, "refreshing partition counts failed"),
        }
    }
}

/// Binds `addr`, naming it when that fails.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}
