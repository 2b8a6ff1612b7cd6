//! A signed webhook: the extractor that admits a request before the handler
//! sees it.
//!
//! The checks run cheapest first, and each refuses with its own answer:
//!
//! 1. the route of `{type}` and, on `/webhooks/{source}/{type}`, of
//!    `{source}` (404), before anything is read;
//! 2. what the headers claim (401): a scheme (the source's, or on the
//!    default route Standard Webhooks or Stripe), a signed timestamp within
//!    tolerance, at most a few signatures that could match a configured
//!    secret ([`crate::auth::Keys::claim`],
//!    [`crate::auth::source::Verifier::claim`]), still before the body;
//! 3. the declared size (413);
//! 4. the body, read within the body timeout (408) and the read budget
//!    (503) that every unverified body shares ([`crate::body`]);
//! 5. the signature over it (401), off the async threads when it is costly;
//! 6. only then a produce slot (503), which bounds the authentic webhooks
//!    held in memory while the broker acks them.
//!
//! So a caller without a secret can spend read budget for at most the body
//! timeout, and never a produce slot: slow or forged requests cannot starve
//! authentic ones.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use tokio::sync::OwnedSemaphorePermit;

use crate::App;
use crate::answer::Refusal;
use crate::auth::{AuthError, Claim, Keys};
use crate::body::ReadError;
use crate::config::{Source, TopicRoute};

/// Bodies up to this size are verified on the async thread that read them:
/// an HMAC of 16 KiB takes tens of microseconds, less than handing it to
/// another thread. Larger bodies, and any ed25519 verification, go to the
/// blocking pool (see [`verify`]).
const INLINE_VERIFY_MAX_BYTES: usize = 16 * 1024;

/// An authentic webhook, its body read whole, holding one produce slot until
/// it is answered.
pub struct SignedWebhook {
    /// Where webhooks of its `{type}` go.
    pub route: Arc<TopicRoute>,
    /// Its source: `hookline-source`, and part of the event id. The named
    /// source's name, or on the default route the scheme that authenticated
    /// it (`standard-webhooks`, `stripe`).
    pub source: Arc<str>,
    /// The provider's id of this delivery, when its scheme sends one that
    /// fits a record header (`hookline-message-id`).
    pub message_id: Option<String>,
    /// The provider's bytes, as signed; they become the record's value
    /// without a copy (a slice of the buffer they were read into).
    pub body: Bytes,
    pub received_at: DateTime<Utc>,
    /// Released when the answer is sent: the slot bounds the bodies in memory.
    _admitted: OwnedSemaphorePermit,
}

impl FromRequest<Arc<App>> for SignedWebhook {
    type Rejection = Refusal;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, Refusal> {
        let (mut parts, body) = request.into_parts();
        let mut params =
            match Path::<HashMap<String, String>>::from_request_parts(&mut parts, app).await {
                Ok(Path(params)) => params,
                // Not reached behind the request counter, which refuses such
                // a path (not UTF-8) first; no topic serves it in any case.
                Err(_) => return Err(Refusal::UnknownType(parts.uri.path().to_owned())),
            };
        let event_type = params.remove(EVENT_TYPE).unwrap_or_default();
        let Some(route) = app.config.routes.get(&event_type).cloned() else {
            return Err(Refusal::UnknownType(event_type));
        };
        // The keys as they are now: claimed and verified against one set,
        // whatever a reload does meanwhile.
        let endpoint = match params.remove(SOURCE) {
            None => Endpoint::Default(app.config.signing.keys()),
            Some(name) => match app.config.signing.source(&name) {
                Some(source) => Endpoint::Named(source),
                None => return Err(Refusal::UnknownSource(name)),
            },
        };
        let settings = &app.config.settings;
        let unauthenticated = |error: AuthError| {
            tracing::info!(
                event_type = %route.event_type, source = endpoint.name(), code = error.code(),
                "unauthenticated webhook"
            );
            Refusal::Unauthenticated(error)
        };
        let claim = endpoint
            .claim(
                |name| parts.headers.get(name).and_then(|v| v.to_str().ok()),
                Utc::now().timestamp(),
                settings.tolerance_secs,
            )
            .map_err(unauthenticated)?;
        let message_id = claim.message_id().map(str::to_owned);
        // No produce slot free: this webhook could only be refused once read,
        // so it is refused before. A slot freed meanwhile is taken below.
        if app.admission.available_permits() == 0 {
            tracing::warn!(event_type = %route.event_type, "too many webhooks being produced");
            return Err(Refusal::unavailable(settings));
        }
        let read = app
            .reading
            .read(claim.prefix(), declared_length(&parts.headers), body)
            .await
            .map_err(|error| match error {
                ReadError::Busy => {
                    // A flood lands here: debug, the refusals are counted.
                    tracing::debug!(event_type = %route.event_type, "the read budget is spent");
                    Refusal::unavailable(settings)
                }
                ReadError::TooLarge => Refusal::TooLarge {
                    limit: settings.max_body_bytes,
                },
                ReadError::TimedOut => Refusal::BodyTimeout {
                    timeout: settings.body_timeout,
                },
                ReadError::Unreadable => Refusal::UnreadableBody,
            })?;
        let received_at = Utc::now();
        let source = verify(&endpoint, claim, read.signed().clone())
            .await?
            .map_err(unauthenticated)?;
        let Ok(admitted) = app.admission.clone().try_acquire_owned() else {
            tracing::warn!(event_type = %route.event_type, "too many webhooks being produced");
            return Err(Refusal::unavailable(settings));
        };
        // The read budget is given back here (`read` drops): the body is now
        // an authentic webhook's, held under its produce slot.
        Ok(Self {
            route,
            source,
            message_id,
            body: read.body(),
            received_at,
            _admitted: admitted,
        })
    }
}

/// The path parameters of the two webhook routes ([`crate::server::router`]).
pub const EVENT_TYPE: &str = "event_type";
pub const SOURCE: &str = "source";

/// Who verifies a request: the default source's keys, or a named source.
#[derive(Clone)]
enum Endpoint {
    Default(Arc<Keys>),
    Named(Arc<Source>),
}

impl Endpoint {
    /// For the logs: the named source, or the default one.
    fn name(&self) -> &str {
        match self {
            Endpoint::Default(_) => "default",
            Endpoint::Named(source) => &source.name,
        }
    }

    fn claim<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        now: i64,
        tolerance: u32,
    ) -> Result<Claim, AuthError> {
        match self {
            Endpoint::Default(keys) => keys.claim(header, now, tolerance),
            Endpoint::Named(source) => source.verifier.claim(header, now, tolerance),
        }
    }

    /// The webhook's source name once `claim` verified over `signed`.
    fn verify_claim(&self, claim: &Claim, signed: &[u8]) -> Result<Arc<str>, AuthError> {
        match self {
            Endpoint::Default(keys) => keys
                .verify_claim(claim, signed)
                .map(|scheme| Arc::from(scheme.source())),
            Endpoint::Named(source) => source
                .verifier
                .verify_claim(claim, signed)
                .map(|_| source.name.clone()),
        }
    }
}

/// The declared Content-Length, if any and readable.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Verifies `claim` over `signed`. ed25519 verifications (up to
/// [`crate::auth::MAX_ED25519_VERIFICATIONS`], each a SHA-512 of the body and
/// a scalar multiplication) and HMACs of large bodies take milliseconds, and
/// an async thread busy that long stalls every connection it serves; they go
/// to tokio's blocking pool. That pool rather than a rayon pool: tokio is
/// there already, and the number of verifications at once is bounded anyway
/// by the read budget each request holds while it is verified.
async fn verify(
    endpoint: &Endpoint,
    claim: Claim,
    signed: Bytes,
) -> Result<Result<Arc<str>, AuthError>, Refusal> {
    if !claim.has_ed25519() && signed.len() <= INLINE_VERIFY_MAX_BYTES {
        return Ok(endpoint.verify_claim(&claim, &signed));
    }
    let endpoint = endpoint.clone();
    tokio::task::spawn_blocking(move || endpoint.verify_claim(&claim, &signed))
        .await
        .map_err(|error| {
            tracing::error!(error = %error, "verifying a signature failed to run");
            Refusal::Internal
        })
}

#[cfg(test)]
impl SignedWebhook {
    /// A webhook as the extractor would admit it, with a slot of its own.
    pub(crate) fn test(route: Arc<TopicRoute>, source: &str, body: &[u8]) -> Self {
        let slot = Arc::new(tokio::sync::Semaphore::new(1));
        Self {
            route,
            source: Arc::from(source),
            message_id: None,
            body: Bytes::copy_from_slice(body),
            received_at: Utc::now(),
            _admitted: slot.try_acquire_owned().unwrap(),
        }
    }
}
