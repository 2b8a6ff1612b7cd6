//! The HTTP surface: `POST /webhooks/{type}`, `GET /healthz`, `GET /readyz`,
//! `GET /metrics`.
//!
//! A webhook is answered 202 only after the broker acknowledged its record. The
//! checks run cheapest first: unknown type (404) before reading the body, the
//! body's size (413) before authenticating, the signature (401) before parsing.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use hookline_contract::headers::{self as h, dlq};
use hookline_contract::reason::Stage;
use hookline_contract::{Envelope, Reason, event_id, partition_for};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rdkafka::message::{Header, OwnedHeaders};
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use uuid::Uuid;

use crate::App;
use crate::auth::AuthError;
use crate::config::TopicRoute;
use crate::produce::{Outgoing, Verdict};
use hookline_contract::payload::{Inspected, Invalid};
use hookline_contract::pipeline::InvalidPolicy;

/// The router of the whole service.
pub fn router(app: Arc<App>) -> Router {
    let timeout = app.config.settings.request_timeout;
    Router::new()
        .route("/webhooks/{event_type}", post(webhook))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
        .with_state(app)
}

/// How a webhook request ends.
#[derive(Debug)]
enum Answer {
    Accepted {
        event_id: Uuid,
    },
    Quarantined {
        event_id: Uuid,
        reason: Reason,
    },
    Rejected {
        reason: Reason,
        detail: String,
    },
    Unauthenticated(AuthError),
    TooLarge {
        limit: usize,
    },
    UnreadableBody,
    UnknownType(String),
    /// Nothing was acknowledged; the provider should retry.
    Unavailable {
        retry_after_secs: u64,
    },
    /// The broker refuses this deployment's records for good; details are in
    /// the log, not in the answer.
    Internal,
}

impl Answer {
    fn status(&self) -> StatusCode {
        match self {
            Answer::Accepted { .. } | Answer::Quarantined { .. } => StatusCode::ACCEPTED,
            Answer::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Answer::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Answer::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Answer::UnreadableBody => StatusCode::BAD_REQUEST,
            Answer::UnknownType(_) => StatusCode::NOT_FOUND,
            Answer::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Answer::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = self.status();
        let problem = |code: &str, detail: String| json!({"code": code, "detail": detail});
        let body = match self {
            Answer::Accepted { event_id } => json!({"event_id": event_id}),
            Answer::Quarantined { event_id, reason } => {
                json!({"event_id": event_id, "quarantined": true, "reason": reason.as_str()})
            }
            Answer::Rejected { reason, detail } => problem(reason.as_str(), detail),
            Answer::Unauthenticated(error) => problem(error.code(), error.to_string()),
            Answer::TooLarge { limit } => {
                problem("body_too_large", format!("the body exceeds {limit} bytes"))
            }
            Answer::UnreadableBody => {
                problem("unreadable_body", "the body could not be read".into())
            }
            Answer::Internal => problem("internal", "the event was not accepted".into()),
            Answer::UnknownType(event_type) => problem(
                "unknown_event_type",
                format!("no topic serves event type {event_type:?}"),
            ),
            Answer::Unavailable { retry_after_secs } => {
                let body = problem(
                    "unavailable",
                    "the event was not accepted; retry later".into(),
                );
                let mut response = (status, axum::Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                return response;
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

async fn webhook(
    State(app): State<Arc<App>>,
    Path(event_type): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = match app.config.routes.get(&event_type) {
        Some(route) => handle(&app, route, &headers, body).await,
        None => Answer::UnknownType(event_type.clone()),
    };
    let label = if app.config.routes.contains_key(&event_type) {
        event_type.as_str()
    } else {
        "unknown"
    };
    app.metrics.request(label, answer.status().as_u16());
    answer.into_response()
}

async fn handle(app: &App, route: &TopicRoute, headers: &HeaderMap, body: Body) -> Answer {
    // Bounded before anything is read: each request may hold a whole body.
    let Ok(_admitted) = app.admission.try_acquire() else {
        tracing::warn!(event_type = %route.event_type, "too many webhook requests in progress");
        return Answer::Unavailable {
            retry_after_secs: app.config.settings.retry_after_secs,
        };
    };
    let limit = app.config.settings.max_body_bytes;
    let body = match read_body(headers, body, limit).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let received_at = Utc::now();
    let scheme = match app.config.keys.verify(
        |name| headers.get(name).and_then(|v| v.to_str().ok()),
        &body,
        received_at.timestamp(),
        app.config.settings.tolerance_secs,
    ) {
        Ok(scheme) => scheme,
        Err(error) => {
            tracing::info!(event_type = %route.event_type, code = error.code(), "unauthenticated webhook");
            return Answer::Unauthenticated(error);
        }
    };
    let webhook = Webhook {
        route,
        source: scheme.source(),
        body: &body,
        received_at,
    };
    match route.inspector.inspect(&body) {
        Ok(inspected) => webhook.accept(app, inspected).await,
        Err(invalid) => webhook.refuse(app, invalid).await,
    }
}

/// Reads at most `limit` bytes; a declared or actual larger body is 413.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Answer> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Answer::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Answer::TooLarge { limit })
        }
        Err(error) => {
            tracing::info!(error = %error, "reading a webhook body failed");
            Err(Answer::UnreadableBody)
        }
    }
}

/// An authentic webhook on its way to Kafka.
struct Webhook<'a> {
    route: &'a TopicRoute,
    source: &'static str,
    body: &'a [u8],
    received_at: DateTime<Utc>,
}

impl Webhook<'_> {
    /// Produces a valid webhook to its topic, on the partition of its user.
    async fn accept(&self, app: &App, inspected: Inspected) -> Answer {
        let event_id = event_id(self.source, &inspected.provider_event_id);
        let topic = &self.route.topic;
        let Some(count) = app.producer.partition_count(topic) else {
            tracing::error!(%event_id, topic, "partition count unknown: is the topic created?");
            return self.unavailable(app);
        };
        // Placing the record ourselves keeps the placement and the count in
        // `hookline-partition-count` consistent even while partitions grow.
        let partition =
            partition_for(inspected.user_id.as_bytes(), count.unsigned_abs()).map(|p| p as i32);
        let envelope = Envelope {
            event_id,
            event_type: inspected.event_type.clone(),
            source: self.source.to_owned(),
            received_at: self
                .received_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            partition_count: count.unsigned_abs(),
            schema: self.route.inspector.schema_id().to_owned(),
        };
        let headers = envelope
            .to_headers()
            .iter()
            .fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(header_of(key, value))
            });
        let record = Outgoing {
            topic,
            partition,
            key: Some(&inspected.user_id),
            value: self.body,
            headers,
        };
        match self.produce(app, record, &event_id).await {
            Ok(()) => Answer::Accepted { event_id },
            Err(verdict) => self.failed(app, verdict),
        }
    }

    /// Quarantines (202, DLQ) or rejects (422) an authentic, invalid webhook.
    async fn refuse(&self, app: &App, invalid: Invalid) -> Answer {
        // Without a provider event id, the body's hash stands in, so that a
        // provider's retry of the same body still gets the same id.
        let provider_event_id = invalid
            .provider_event_id
            .clone()
            .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(self.body))));
        let event_id = event_id(self.source, &provider_event_id);
        tracing::info!(
            %event_id, event_type = %self.route.event_type, reason = %invalid.reason,
            message = %invalid.message, "invalid webhook"
        );
        if self.route.policy == InvalidPolicy::Reject {
            return Answer::Rejected {
                reason: invalid.reason,
                detail: invalid.message,
            };
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let headers = self
            .envelope(&event_id)
            .insert(header_of(dlq::TOPIC, &self.route.topic))
            .insert(header_of(dlq::STAGE, Stage::Ingest.as_str()))
            .insert(header_of(dlq::REASON, invalid.reason.as_str()))
            .insert(header_of(dlq::MESSAGE, &invalid.message))
            .insert(header_of(dlq::TIMESTAMP, &now));
        let record = Outgoing {
            topic: &self.route.dlq,
            partition: None,
            key: invalid.user_id.as_deref(),
            value: self.body,
            headers,
        };
        if let Err(verdict) = self.produce(app, record, &event_id).await {
            return self.failed(app, verdict);
        }
        app.metrics
            .dead_lettered(&self.route.event_type, invalid.reason.as_str());
        Answer::Quarantined {
            event_id,
            reason: invalid.reason,
        }
    }

    /// The headers a quarantined record carries: what is known of an invalid
    /// webhook (its type and placement are not).
    fn envelope(&self, event_id: &Uuid) -> OwnedHeaders {
        let received_at = self
            .received_at
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        OwnedHeaders::new()
            .insert(header_of(h::EVENT_ID, &event_id.to_string()))
            .insert(header_of(h::SOURCE, self.source))
            .insert(header_of(h::RECEIVED_AT, &received_at))
            .insert(header_of(h::SCHEMA, self.route.inspector.schema_id()))
    }

    /// Produces `record`: Ok once the broker acknowledged it.
    async fn produce(
        &self,
        app: &App,
        record: Outgoing<'_>,
        event_id: &Uuid,
    ) -> Result<(), Verdict> {
        let topic = record.topic.to_owned();
        let started = Instant::now();
        let result = app.producer.send(record).await;
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok(acked) => {
                app.metrics.produced(&topic, "acked", seconds);
                tracing::debug!(%event_id, topic, partition = acked.partition, offset = acked.offset, "acked");
                Ok(())
            }
            Err(error) => {
                app.metrics.produced(&topic, error.label(), seconds);
                let verdict = error.verdict();
                if verdict == Verdict::Misconfigured {
                    tracing::error!(%event_id, topic, error = %error, "the broker refuses this record for good");
                } else {
                    tracing::warn!(%event_id, topic, error = %error, "not acknowledged");
                }
                Err(verdict)
            }
        }
    }

    fn failed(&self, app: &App, verdict: Verdict) -> Answer {
        match verdict {
            Verdict::RetryLater => self.unavailable(app),
            Verdict::TooLarge => Answer::TooLarge {
                limit: app.config.settings.max_body_bytes,
            },
            Verdict::Misconfigured => Answer::Internal,
        }
    }

    fn unavailable(&self, app: &App) -> Answer {
        Answer::Unavailable {
            retry_after_secs: app.config.settings.retry_after_secs,
        }
    }
}

fn header_of<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if !app.producer.broker_reachable().await {
        return not_ready("the broker does not answer");
    }
    let unknown: Vec<&str> = app
        .config
        .routes
        .values()
        .flat_map(|r| [r.topic.as_str(), r.dlq.as_str()])
        .filter(|topic| app.producer.partition_count(topic).is_none())
        .collect();
    if !unknown.is_empty() {
        return not_ready(&format!("topics not seen yet: {}", unknown.join(", ")));
    }
    (StatusCode::OK, axum::Json(json!({"status": "ready"}))).into_response()
}

fn not_ready(detail: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"code": "not_ready", "detail": detail})),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
