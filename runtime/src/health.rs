//! `/healthz`, `/readyz` and `/metrics`: the same three endpoints, with the
//! same answers, in every binary.
//!
//! `/healthz` says the process serves; `/readyz` asks the binary's [`Probe`]
//! and answers 200 `{"status":"ready"}` or 503 `{"code":"not_ready",
//! "detail":…}`; `/metrics` is the probe's Prometheus text.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The content type of the Prometheus text exposition `prometheus-client` writes.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Prometheus text exposition of `registry`.
pub fn exposition(registry: &prometheus_client::registry::Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// What a binary says about itself.
pub trait Probe: Send + Sync + 'static {
    /// `Ok` when ready for work, or why not, in words for an operator.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// The Prometheus text exposition of the binary's metrics.
    fn metrics(&self) -> String;
}

/// The three routes, for a binary to serve alone or beside its own.
pub fn routes<P: Probe, S>(probe: Arc<P>) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz::<P>))
        .route("/metrics", get(metrics::<P>))
        .with_state(probe)
}

/// Serves the three routes on `listener` until `shutdown`.
pub async fn serve<P: Probe>(
    probe: Arc<P>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, routes::<P, ()>(probe))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn readyz<P: Probe>(State(probe): State<Arc<P>>) -> Response {
    match probe.ready().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response(),
        Err(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"code": "not_ready", "detail": detail})),
        )
            .into_response(),
    }
}

async fn metrics<P: Probe>(State(probe): State<Arc<P>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        probe.metrics(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    struct Fake(AtomicBool);

    impl Probe for Fake {
        async fn ready(&self) -> Result<(), String> {
            if self.0.load(Ordering::Acquire) {
                Ok(())
            } else {
                Err("migrating".into())
            }
        }
        fn metrics(&self) -> String {
            "up 1\n".into()
        }
    }

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn readiness_follows_the_probe_and_says_why_not() {
        let probe = Arc::new(Fake(AtomicBool::new(false)));
        let (status, body) = get(routes(probe.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, r#"{"code":"not_ready","detail":"migrating"}"#);
        probe.0.store(true, Ordering::Release);
        assert_eq!(
            get(routes(probe.clone()), "/readyz").await,
            (StatusCode::OK, r#"{"status":"ready"}"#.to_owned())
        );
        assert_eq!(
            get(routes(probe.clone()), "/metrics").await,
            (StatusCode::OK, "up 1\n".to_owned())
        );
        assert_eq!(
            get(routes(probe), "/healthz").await,
            (StatusCode::OK, "ok".to_owned())
        );
    }
}
