//! The running service: the state every request shares, the router around
//! the webhook route, and serving until shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::post;
use hookline_runtime::health::{self, Probe};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::produce::Producer;
use crate::routes;
use crate::{Error, Result};

/// How long shutdown waits for queued records to be delivered.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// The label of requests for an event type no topic serves: the path is the
/// caller's, and a label per path would be an unbounded series.
const UNKNOWN_EVENT_TYPE: &str = "unknown";

/// What every request shares.
pub struct App {
    pub config: Config,
    pub producer: Producer,
    pub metrics: Metrics,
    /// Webhook requests in progress; a request that finds none free is 503.
    /// Shared so that a request holds its slot without borrowing the state.
    pub admission: Arc<Semaphore>,
}

impl App {
    /// Creates the producer for `config`; it connects in the background.
    pub fn new(config: Config) -> Result<Arc<Self>> {
        let producer = Producer::new(&config.producer)?;
        let admission = Arc::new(Semaphore::new(config.settings.max_concurrent_requests));
        Ok(Arc::new(Self {
            config,
            producer,
            metrics: Metrics::new(),
            admission,
        }))
    }
}

/// Ready once the broker answers and every topic and DLQ has a partition
/// count: before, every webhook would be answered 503.
impl Probe for App {
    async fn ready(&self) -> Result<(), String> {
        self.producer.readiness(&self.config.topics()).await
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}

/// The router of the whole service: `POST /webhooks/{type}`, and `/healthz`,
/// `/readyz`, `/metrics` as every hookline binary serves them.
pub fn router(app: Arc<App>) -> Router {
    let timeout = app.config.settings.request_timeout;
    Router::new()
        .route("/webhooks/{event_type}", post(routes::webhook))
        .route_layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .with_state(app.clone())
        .merge(health::routes(app))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        // A 503 is an answer the service chose (broker slow, not ready yet), not
        // a failure of the service: a warning, not an error.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
        )
}

/// Counts every webhook answer by event type and status, the refusals of the
/// extractor (401, 404, 413, 503) included: they are what a provider sees.
async fn count_requests(
    State(app): State<Arc<App>>,
    Path(event_type): Path<String>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let label = if app.config.routes.contains_key(&event_type) {
        event_type.as_str()
    } else {
        UNKNOWN_EVENT_TYPE
    };
    app.metrics.request(label, response.status().as_u16());
    response
}

/// Serves until `shutdown` is cancelled: stops accepting, lets in-flight
/// requests finish, then flushes the producer.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let refresher = {
        let (app, shutdown) = (app.clone(), shutdown.clone());
        tokio::spawn(async move {
            let topics = app.config.topics();
            app.producer.keep_counts_fresh(&topics, shutdown).await;
        })
    };
    let served = axum::serve(listener, router(app.clone()))
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

/// Binds `addr`, naming it when that fails.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use hookline_contract::pipeline::InvalidPolicy;
    use tower::ServiceExt;

    use super::*;

    async fn post(app: &Arc<App>, path: &str, body: &'static str) -> StatusCode {
        let request = axum::http::Request::post(path)
            .body(Body::from(body))
            .unwrap();
        router(app.clone()).oneshot(request).await.unwrap().status()
    }

    fn counted(app: &App, event_type: &str, status: u16) -> bool {
        let line = format!(
            r#"hookline_ingest_requests_total{{event_type="{event_type}",status="{status}"}} 1"#
        );
        app.metrics.render().contains(&line)
    }

    #[tokio::test]
    async fn refusals_before_the_handler_are_counted_with_bounded_labels() {
        let app = App::new(crate::config::test(InvalidPolicy::Quarantine)).unwrap();

        assert_eq!(
            post(&app, "/webhooks/orders", "{}").await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            post(&app, "/webhooks/refunds", "{}").await,
            StatusCode::NOT_FOUND
        );

        assert!(counted(&app, "orders", 401), "{}", app.metrics.render());
        assert!(counted(&app, "unknown", 404), "{}", app.metrics.render());
    }

    #[tokio::test]
    async fn no_free_slot_is_503_before_the_body_is_read() {
        let app = App::new(crate::config::test(InvalidPolicy::Quarantine)).unwrap();
        let slots = app.config.settings.max_concurrent_requests as u32;
        let _all = app.admission.clone().try_acquire_many_owned(slots).unwrap();

        assert_eq!(
            post(&app, "/webhooks/orders", "{}").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(counted(&app, "orders", 503), "{}", app.metrics.render());
    }

    #[tokio::test]
    async fn health_is_served_beside_the_webhooks() {
        let app = App::new(crate::config::test(InvalidPolicy::Quarantine)).unwrap();
        let request = axum::http::Request::get("/healthz")
            .body(Body::empty())
            .unwrap();
        let response = router(app).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
