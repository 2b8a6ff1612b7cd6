//! What the provider is told: the answers table of the design, and what a
//! failed produce means in HTTP.
//!
//! 4xx answers carry a stable `{"code": …, "detail": …}` the provider can act
//! on; 5xx answers say nothing about internals, whose details are in the log
//! with the event id. Only 503 asks for a retry, with `Retry-After`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hookline_contract::Reason;
use hookline_kafka::produce::Failure;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::AuthError;
use crate::config::Settings;

/// A webhook the broker acknowledged: 202.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// On its topic.
    Produced { event_id: Uuid },
    /// Authentic but invalid, on its topic's DLQ with `reason`.
    Quarantined { event_id: Uuid, reason: Reason },
}

/// A webhook that was not accepted; nothing of it was acknowledged.
#[derive(Debug)]
pub enum Refusal {
    /// Authentic but invalid, under the `reject` policy: 422.
    Rejected { reason: Reason, detail: String },
    /// 401.
    Unauthenticated(AuthError),
    /// The body exceeds the limit, or the broker refuses it as too large: 413.
    TooLarge { limit: usize },
    /// The body could not be read whole: 400.
    UnreadableBody,
    /// The body did not arrive within the body timeout: 408.
    BodyTimeout { timeout: Duration },
    /// No topic serves the event type: 404.
    UnknownType(String),
    /// No source of the pipeline has this name: 404.
    UnknownSource(String),
    /// Nothing was acknowledged but a retry may succeed: 503.
    Unavailable { retry_after: Duration },
    /// The broker refuses this deployment's records for good: 500. The
    /// details are in the log, not in the answer.
    Internal,
}

impl Refusal {
    /// 503, asking for a retry after the configured wait.
    pub fn unavailable(settings: &Settings) -> Self {
        Refusal::Unavailable {
            retry_after: settings.retry_after,
        }
    }

    /// What a failed produce means for the provider: retry (503), never
    /// retry this body (413), or a fault of the deployment (500).
    pub fn of_failure(failure: Failure, settings: &Settings) -> Self {
        match failure {
            Failure::Transient => Refusal::unavailable(settings),
            Failure::TooLarge => Refusal::TooLarge {
                limit: settings.max_body_bytes,
            },
            Failure::Refused => Refusal::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::UnreadableBody => StatusCode::BAD_REQUEST,
            Refusal::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Refusal::UnknownType(_) | Refusal::UnknownSource(_) => StatusCode::NOT_FOUND,
            Refusal::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let body = match self {
            Accepted::Produced { event_id } => json!({"event_id": event_id}),
            Accepted::Quarantined { event_id, reason } => {
                json!({"event_id": event_id, "quarantined": true, "reason": reason.as_str()})
            }
        };
        (StatusCode::ACCEPTED, Json(body)).into_response()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Refusal::Unavailable { retry_after } => Some(whole_seconds(*retry_after)),
            _ => None,
        };
        let body = match self {
            Refusal::Rejected { reason, detail } => problem(reason.as_str(), detail),
            Refusal::Unauthenticated(error) => problem(error.code(), error.to_string()),
            Refusal::TooLarge { limit } => {
                problem("body_too_large", format!("the body exceeds {limit} bytes"))
            }
            Refusal::UnreadableBody => problem("unreadable_body", "the body could not be read"),
            Refusal::BodyTimeout { timeout } => problem(
                "body_timeout",
                format!("the body did not arrive within {}", humantime(timeout)),
            ),
            Refusal::UnknownType(event_type) => problem(
                "unknown_event_type",
                format!("no topic serves event type {event_type:?}"),
            ),
            Refusal::UnknownSource(source) => problem(
                "unknown_source",
                format!("the pipeline has no source {source:?}"),
            ),
            Refusal::Unavailable { .. } => {
                problem("unavailable", "the event was not accepted; retry later")
            }
            Refusal::Internal => problem("internal", "the event was not accepted"),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn problem(code: &str, detail: impl Into<String>) -> Value {
    json!({"code": code, "detail": detail.into()})
}

/// A duration as the flags take it: `5s`, `1500ms`.
fn humantime(wait: Duration) -> String {
    if wait.subsec_millis() == 0 {
        format!("{}s", wait.as_secs())
    } else {
        format!("{}ms", wait.as_millis())
    }
}

/// `Retry-After` counts whole seconds; a fraction rounds up, so that the
/// provider never comes back sooner than asked.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            max_body_bytes: 1024,
            tolerance_secs: 300,
            max_concurrent_requests: 4,
            max_reading_bytes: 1 << 20,
            body_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            retry_after: Duration::from_secs(7),
        }
    }

    async fn read(response: Response) -> (StatusCode, Option<String>, Value) {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn a_failed_produce_is_a_retry_a_413_or_a_500() {
        let settings = settings();
        let status = |failure| Refusal::of_failure(failure, &settings).status();
        assert_eq!(status(Failure::Transient), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(Failure::TooLarge), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status(Failure::Refused), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn only_503_asks_for_a_retry_in_whole_seconds() {
        let (status, retry_after, body) =
            read(Refusal::unavailable(&settings()).into_response()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("7"));
        assert_eq!(body["code"], "unavailable");

        let (_, retry_after, _) = read(Refusal::UnreadableBody.into_response()).await;
        assert_eq!(retry_after, None);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(5)), 5);
    }

    #[tokio::test]
    async fn a_500_says_nothing_about_internals() {
        let (status, _, body) = read(Refusal::Internal.into_response()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"code": "internal", "detail": "the event was not accepted"})
        );
    }

    #[tokio::test]
    async fn a_quarantined_webhook_is_202_with_its_reason() {
        let event_id = Uuid::nil();
        let accepted = Accepted::Quarantined {
            event_id,
            reason: Reason::SchemaInvalid,
        };
        let (status, _, body) = read(accepted.into_response()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            body,
            json!({"event_id": event_id, "quarantined": true, "reason": "schema_invalid"})
        );
    }

    #[tokio::test]
    async fn a_body_that_did_not_arrive_in_time_is_408_with_its_bound() {
        let refusal = Refusal::BodyTimeout {
            timeout: Duration::from_millis(1500),
        };
        let (status, retry_after, body) = read(refusal.into_response()).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(retry_after, None);
        assert_eq!(
            body,
            json!({"code": "body_timeout", "detail": "the body did not arrive within 1500ms"})
        );
    }

    #[tokio::test]
    async fn too_many_signatures_is_401_saying_the_bound() {
        let refusal = Refusal::Unauthenticated(AuthError::TooManySignatures { max: 8 });
        let (status, _, body) = read(refusal.into_response()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"code": "too_many_signatures",
                   "detail": "the signature header carries more than 8 signatures"})
        );
    }

    #[tokio::test]
    async fn an_unauthenticated_webhook_gets_the_stable_code() {
        let refusal = Refusal::Unauthenticated(AuthError::MissingSignature);
        let (status, _, body) = read(refusal.into_response()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["code"], "missing_signature");
    }
}
