//! A signed webhook: the extractor that admits a request before the handler
//! sees it.
//!
//! The checks run cheapest first, and each refuses with its own answer:
//! the route of `{type}` (404) before anything is read, a free admission slot
//! (503) before the body is held in memory, the body's size (413) while it is
//! read, the signature (401) before the payload is parsed.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::OwnedSemaphorePermit;

use crate::App;
use crate::answer::Refusal;
use crate::config::TopicRoute;

/// An authentic webhook, its body read whole, holding one admission slot
/// until it is answered.
pub struct SignedWebhook {
    /// Where webhooks of its `{type}` go.
    pub route: Arc<TopicRoute>,
    /// The scheme that authenticated it: `hookline-source`, and part of the
    /// event id.
    pub source: &'static str,
    /// The provider's bytes, as signed; they become the record's value.
    pub body: Bytes,
    pub received_at: DateTime<Utc>,
    /// Released when the answer is sent: the slot bounds the bodies in memory.
    _admitted: OwnedSemaphorePermit,
}

impl FromRequest<Arc<App>> for SignedWebhook {
    type Rejection = Refusal;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, Refusal> {
        let (mut parts, body) = request.into_parts();
        let event_type = match Path::<String>::from_request_parts(&mut parts, app).await {
            Ok(Path(event_type)) => event_type,
            // Not reached behind the request counter, which refuses such a
            // path (not UTF-8) first; no topic serves it in any case.
            Err(_) => return Err(Refusal::UnknownType(parts.uri.path().to_owned())),
        };
        let Some(route) = app.config.routes.get(&event_type).cloned() else {
            return Err(Refusal::UnknownType(event_type));
        };
        let settings = &app.config.settings;
        let Ok(admitted) = app.admission.clone().try_acquire_owned() else {
            tracing::warn!(event_type = %route.event_type, "too many webhook requests in progress");
            return Err(Refusal::unavailable(settings));
        };
        let body = read_body(&parts.headers, body, settings.max_body_bytes).await?;
        let received_at = Utc::now();
        let verified = app.config.keys.verify(
            |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
            &body,
            received_at.timestamp(),
            settings.tolerance_secs,
        );
        let scheme = verified.map_err(|error| {
            tracing::info!(event_type = %route.event_type, code = error.code(), "unauthenticated webhook");
            Refusal::Unauthenticated(error)
        })?;
        Ok(Self {
            route,
            source: scheme.source(),
            body,
            received_at,
            _admitted: admitted,
        })
    }
}

/// Reads at most `limit` bytes; a declared or actual larger body is 413, and
/// a declared one is refused without reading any of it.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(Refusal::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Refusal::TooLarge { limit })
        }
        Err(error) => {
            tracing::info!(error = %error, "reading a webhook body failed");
            Err(Refusal::UnreadableBody)
        }
    }
}

#[cfg(test)]
impl SignedWebhook {
    /// A webhook as the extractor would admit it, with a slot of its own.
    pub(crate) fn test(route: Arc<TopicRoute>, source: &'static str, body: &[u8]) -> Self {
        let slot = Arc::new(tokio::sync::Semaphore::new(1));
        Self {
            route,
            source,
            body: Bytes::copy_from_slice(body),
            received_at: Utc::now(),
            _admitted: slot.try_acquire_owned().unwrap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn declaring(length: usize) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        headers
    }

    /// A body that fails after `good`, as a connection reset mid-body does.
    fn broken(good: &'static [u8]) -> Body {
        Body::from_stream(futures_util::stream::iter([
            Ok(Bytes::from_static(good)),
            Err(std::io::Error::other("connection reset")),
        ]))
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_read_whole() {
        let body = read_body(&declaring(4), Body::from("abcd"), 4).await;
        assert_eq!(body.ok(), Some(Bytes::from_static(b"abcd")));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        // The body itself is short: only the declaration is looked at.
        let body = read_body(&declaring(5), Body::from("ab"), 4).await;
        assert!(matches!(body, Err(Refusal::TooLarge { limit: 4 })));
    }

    #[tokio::test]
    async fn an_undeclared_body_is_refused_once_it_passes_the_limit() {
        let body = read_body(&HeaderMap::new(), Body::from("abcde"), 4).await;
        assert!(matches!(body, Err(Refusal::TooLarge { limit: 4 })));
    }

    #[tokio::test]
    async fn a_body_cut_short_is_unreadable() {
        let body = read_body(&HeaderMap::new(), broken(b"ab"), 4).await;
        assert!(matches!(body, Err(Refusal::UnreadableBody)));
    }
}
