//! The running service: the state every request shares, the public router
//! (webhooks and health), the metrics listener apart from it, and serving
//! until shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hookline_runtime::health::{self, Probe};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::body::Reading;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::produce::Producer;
use crate::routes;
use crate::signed::{EVENT_TYPE, SOURCE};
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
    /// Authenticated webhooks being produced; a webhook that finds none free
    /// is 503. Taken only once a request is authentic (see
    /// [`crate::signed`]). Shared so that a request holds its slot without
    /// borrowing the state.
    pub admission: Arc<Semaphore>,
    /// Bodies being read and verified, before anyone knows they are
    /// authentic: their own budget, apart from `admission`.
    pub reading: Reading,
}

impl App {
    /// Creates the producer for `config`; it connects in the background.
    pub fn new(config: Config) -> Result<Arc<Self>> {
        let producer = Producer::new(&config.producer)?;
        let admission = Arc::new(Semaphore::new(config.settings.max_concurrent_requests));
        let metrics = Metrics::new();
        let settings = &config.settings;
        let reading = Reading::new(
            settings.max_reading_bytes,
            settings.max_body_bytes,
            settings.body_timeout,
            metrics.reading_bodies(),
        );
        Ok(Arc::new(Self {
            config,
            producer,
            metrics,
            admission,
            reading,
        }))
    }
}

/// Ready once the broker answers and every topic and DLQ has a partition
/// count: before, every webhook would be answered 503. Answered from the
/// last background check ([`crate::produce`]), never by asking the broker.
impl Probe for App {
    async fn ready(&self) -> Result<(), String> {
        self.producer.readiness()
    }

    fn metrics(&self) -> String {
        self.metrics.render_with(self.reading.held_bytes())
    }
}

/// The public router: `POST /webhooks/{type}` (the default source),
/// `POST /webhooks/{source}/{type}` (a named one), and `/healthz` and `/readyz`
/// for the kubelet's probes, answered as every hookline binary answers them.
/// `/metrics` is not here: it is served by [`serve_metrics`] on its own
/// listener.
pub fn router(app: Arc<App>) -> Router {
    let timeout = app.config.settings.request_timeout;
    Router::new()
        .route("/webhooks/{event_type}", post(routes::webhook))
        .route("/webhooks/{source}/{event_type}", post(routes::webhook))
        .route_layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(app)
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

/// `/readyz` as [`health::routes`] answers it: 200 `{"status":"ready"}` or
/// 503 `{"code":"not_ready","detail":…}`.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.producer.readiness() {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
            .into_response(),
        Err(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"code": "not_ready", "detail": detail})),
        )
            .into_response(),
    }
}

/// Counts every webhook answer by event type and status, the refusals of the
/// extractor (401, 404, 413, 503) included: they are what a provider sees.
/// A request for a source the pipeline does not have counts as unknown.
async fn count_requests(
    State(app): State<Arc<App>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let known_source = params
        .get(SOURCE)
        .is_none_or(|source| app.config.signing.has_source(source));
    let label = match params.get(EVENT_TYPE) {
        Some(event_type) if known_source && app.config.routes.contains_key(event_type) => {
            event_type.as_str()
        }
        _ => UNKNOWN_EVENT_TYPE,
    };
    app.metrics.request(label, response.status().as_u16());
    response
}

/// Serves the public router until `shutdown` is cancelled, with the broker
/// checked in the background meanwhile: stops accepting, lets in-flight
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
            app.producer.keep_checking(&topics, shutdown).await;
        })
    };
    let reloader = app.config.reload.clone().map(|reload| {
        let (signing, shutdown) = (app.config.signing.clone(), shutdown.clone());
        tokio::spawn(reload.run(signing, shutdown))
    });
    let served = axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .map_err(Error::Serve);
    shutdown.cancel();
    let _ = refresher.await;
    if let Some(reloader) = reloader {
        let _ = reloader.await;
    }
    if let Err(error) = app.producer.flush(FLUSH_TIMEOUT).await {
        tracing::error!(error = %error, "records may still be queued at shutdown");
    }
    served
}

/// Serves `/metrics` (and `/healthz`, `/readyz`) on `listener` until
/// `shutdown`: the listener for the operator's scraper, apart from the
/// public one.
pub async fn serve_metrics(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    health::serve(app, listener, shutdown)
        .await
        .map_err(Error::Serve)
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

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn metrics_are_not_served_on_the_public_router() {
        let app = App::new(crate::config::test(InvalidPolicy::Quarantine)).unwrap();
        assert_eq!(
            get(router(app.clone()), "/metrics").await.0,
            StatusCode::NOT_FOUND
        );
        let (status, text) = get(health::routes(app), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("hookline_ingest_reading_bytes 0"), "{text}");
    }

    #[tokio::test]
    async fn readiness_is_answered_from_the_last_check_without_the_broker() {
        // The broker of the test configuration never answers; the probe
        // answers at once all the same, from the (missing) last check.
        let app = App::new(crate::config::test(InvalidPolicy::Quarantine)).unwrap();
        let started = std::time::Instant::now();
        let (status, body) = get(router(app), "/readyz").await;
        // Asking the broker would take its 2 s timeout.
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            r#"{"code":"not_ready","detail":"the broker has not been checked yet"}"#
        );
    }

    #[tokio::test]
    async fn an_authentic_webhook_without_a_free_produce_slot_is_503() {
        use crate::auth::{header, sign};

        let app = App::new(crate::config::test(InvalidPolicy::Quarantine)).unwrap();
        let slots = app.config.settings.max_concurrent_requests as u32;
        let _all = app.admission.clone().try_acquire_many_owned(slots).unwrap();
        let now = chrono::Utc::now().timestamp();
        let signature = sign::standard_v1(crate::config::TEST_SECRET, "msg_1", now, b"{}").unwrap();
        let request = axum::http::Request::post("/webhooks/orders")
            .header(header::WEBHOOK_ID, "msg_1")
            .header(header::WEBHOOK_TIMESTAMP, now.to_string())
            .header(header::WEBHOOK_SIGNATURE, signature)
            .body(Body::from("{}"))
            .unwrap();

        let response = router(app.clone()).oneshot(request).await.unwrap();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(counted(&app, "orders", 503), "{}", app.metrics.render());
        // Nothing of the read budget stays held by the refused request.
        assert_eq!(app.reading.held_bytes(), 0);
    }

    /// The test configuration with a GitHub source `gh`.
    fn with_github_source() -> Arc<App> {
        use hookline_contract::pipeline::{SecretKeyRef, SourceScheme, SourceSpec};

        use crate::auth::source::Verifier;
        use crate::config::Source;

        let spec = SourceSpec {
            name: "gh".into(),
            scheme: SourceScheme::Github,
            secret_ref: SecretKeyRef {
                name: "gh".into(),
                key: "secret".into(),
            },
            hmac: None,
        };
        let source = Source {
            name: Arc::from("gh"),
            verifier: Verifier::new(&spec, "It's a Secret to Everybody").unwrap(),
        };
        let config = crate::config::test(InvalidPolicy::Quarantine)
            .with_sources(HashMap::from([("gh".to_owned(), Arc::new(source))]));
        App::new(config).unwrap()
    }

    async fn post_github(app: &Arc<App>, path: &str, signature: &str) -> StatusCode {
        let request = axum::http::Request::post(path)
            .header(crate::auth::header::GITHUB_SIGNATURE, signature)
            .body(Body::from("Hello, World!"))
            .unwrap();
        router(app.clone()).oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_named_source_is_routed_and_verified_by_its_own_scheme() {
        let app = with_github_source();
        // GitHub's published example ("Validating webhook deliveries").
        let valid = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let wrong = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18";

        assert_eq!(
            post_github(&app, "/webhooks/gh/orders", wrong).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            post_github(&app, "/webhooks/gitlab/orders", valid).await,
            StatusCode::NOT_FOUND
        );
        // The default route does not take GitHub's scheme.
        assert_eq!(
            post_github(&app, "/webhooks/orders", valid).await,
            StatusCode::UNAUTHORIZED
        );
        // Authentic, then not JSON: quarantined, which needs the broker this
        // configuration never reaches.
        assert_eq!(
            post_github(&app, "/webhooks/gh/orders", valid).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let metrics = app.metrics.render();
        assert!(
            metrics
                .contains(r#"hookline_ingest_requests_total{event_type="orders",status="401"} 2"#),
            "{metrics}"
        );
        assert!(counted(&app, "unknown", 404), "{metrics}");
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
