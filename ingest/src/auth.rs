//! Is this webhook authentic? Pure verification, no I/O.
//!
//! Two schemes: Standard Webhooks (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`; `v1` HMAC-SHA256 and `v1a` ed25519) and Stripe's
//! `Stripe-Signature`. Several secrets may be configured at once (rotation); a
//! request is authentic when any of them verifies any of its signatures. MACs
//! are compared in constant time by `hmac`'s `verify_slice`, which also refuses
//! a signature of the wrong length.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Default tolerance between the signed timestamp and now, both ways.
pub const DEFAULT_TOLERANCE_SECS: u32 = 300;
/// Signatures of one header that are checked at most: every candidate costs a
/// MAC comparison or an ed25519 verification, and the header is the caller's.
pub const MAX_CANDIDATES: usize = 16;
/// Shortest secret accepted: anything shorter is a placeholder, not a key.
pub const MIN_SECRET_BYTES: usize = 16;

/// Header names of the two schemes (lowercase, as `http` normalises them).
pub mod header {
    pub const WEBHOOK_ID: &str = "webhook-id";
    pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
    pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
    pub const STRIPE_SIGNATURE: &str = "stripe-signature";
}

/// The scheme that authenticated a request; it names the event's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    Stripe,
}

impl Scheme {
    /// The source name carried in `hookline-source` and mixed into `event_id`.
    pub const fn source(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Stripe => "stripe",
        }
    }
}

/// Why a request is not authentic. Every variant is a 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no webhook-signature or Stripe-Signature header")]
    MissingSignature,
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the signed timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    #[error("the signed timestamp is more than {tolerance} s from now")]
    TimestampOutOfTolerance { tolerance: u32 },
    #[error("no signature matched a configured secret")]
    NoMatchingSignature,
    /// Reported to the caller like a signature that did not match, so that an
    /// anonymous caller does not learn which schemes are configured.
    #[error("no signature matched a configured secret")]
    SchemeNotConfigured(&'static str),
}

impl AuthError {
    /// A stable code for the `{"code": …}` of the answer and for metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            AuthError::MissingSignature | AuthError::MissingHeader(_) => "missing_signature",
            AuthError::InvalidTimestamp => "invalid_timestamp",
            AuthError::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            AuthError::NoMatchingSignature | AuthError::SchemeNotConfigured(_) => {
                "invalid_signature"
            }
        }
    }
}

/// A secret line that cannot be used, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("line {line}: expected whsec_<base64> or whpk_<base64>")]
    UnknownPrefix { line: usize },
    #[error("line {line}: the part after the prefix is not base64")]
    NotBase64 { line: usize },
    #[error(
        "line {line}: an ed25519 public key must be 32 bytes and not a weak (small-order) point"
    )]
    BadPublicKey { line: usize },
    #[error("line {line}: a secret must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret { line: usize },
}

/// The secrets of one endpoint.
#[derive(Clone, Default)]
pub struct Keys {
    /// Standard Webhooks `whsec_` secrets, decoded.
    hmac: Vec<Vec<u8>>,
    /// Standard Webhooks `whpk_` public keys.
    ed25519: Vec<VerifyingKey>,
    /// Stripe endpoint secrets, used whole as HMAC keys.
    stripe: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Keys")
            .field("hmac", &self.hmac.len())
            .field("ed25519", &self.ed25519.len())
            .field("stripe", &self.stripe.len())
            .finish()
    }
}

impl Keys {
    /// Adds Standard Webhooks secrets, one per line (`whsec_…` or `whpk_…`).
    pub fn add_standard_webhooks(&mut self, text: &str) -> Result<(), KeyError> {
        for (n, line) in lines(text) {
            if let Some(encoded) = line.strip_prefix("whsec_") {
                let key = BASE64
                    .decode(encoded)
                    .map_err(|_| KeyError::NotBase64 { line: n })?;
                if key.len() < MIN_SECRET_BYTES {
                    return Err(KeyError::ShortSecret { line: n });
                }
                self.hmac.push(key);
            } else if let Some(encoded) = line.strip_prefix("whpk_") {
                let bytes = BASE64
                    .decode(encoded)
                    .map_err(|_| KeyError::NotBase64 { line: n })?;
                let bytes: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| KeyError::BadPublicKey { line: n })?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .ok()
                    .filter(|key| !key.is_weak())
                    .ok_or(KeyError::BadPublicKey { line: n })?;
                self.ed25519.push(key);
            } else {
                return Err(KeyError::UnknownPrefix { line: n });
            }
        }
        Ok(())
    }

    /// Adds Stripe endpoint secrets, one per line, used whole as HMAC keys.
    pub fn add_stripe(&mut self, text: &str) -> Result<(), KeyError> {
        for (n, line) in lines(text) {
            if line.len() < MIN_SECRET_BYTES {
                return Err(KeyError::ShortSecret { line: n });
            }
            self.stripe.push(line.as_bytes().to_vec());
        }
        Ok(())
    }

    /// Whether any secret is configured.
    pub fn is_empty(&self) -> bool {
        self.hmac.is_empty() && self.ed25519.is_empty() && self.stripe.is_empty()
    }

    /// Verifies a request: `header` looks a header up by lowercase name, `body`
    /// is the raw body, `now` the current Unix time.
    pub fn verify<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
        now: i64,
        tolerance: u32,
    ) -> Result<Scheme, AuthError> {
        if let Some(signatures) = header(header::WEBHOOK_SIGNATURE) {
            let id =
                header(header::WEBHOOK_ID).ok_or(AuthError::MissingHeader(header::WEBHOOK_ID))?;
            let timestamp = header(header::WEBHOOK_TIMESTAMP)
                .ok_or(AuthError::MissingHeader(header::WEBHOOK_TIMESTAMP))?;
            self.verify_standard(id, timestamp, signatures, body, now, tolerance)?;
            Ok(Scheme::StandardWebhooks)
        } else if let Some(signature) = header(header::STRIPE_SIGNATURE) {
            self.verify_stripe(signature, body, now, tolerance)?;
            Ok(Scheme::Stripe)
        } else if header(header::WEBHOOK_ID).is_some()
            || header(header::WEBHOOK_TIMESTAMP).is_some()
        {
            Err(AuthError::MissingHeader(header::WEBHOOK_SIGNATURE))
        } else {
            Err(AuthError::MissingSignature)
        }
    }

    fn verify_standard(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
        tolerance: u32,
    ) -> Result<(), AuthError> {
        if self.hmac.is_empty() && self.ed25519.is_empty() {
            return Err(AuthError::SchemeNotConfigured(
                Scheme::StandardWebhooks.source(),
            ));
        }
        check_timestamp(timestamp, now, tolerance)?;
        let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
        signed.extend_from_slice(id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);

        // The body is hashed once per key, whatever the number of candidates.
        let macs: Vec<HmacSha256> = self
            .hmac
            .iter()
            .filter_map(|key| mac_of(key, &signed))
            .collect();
        let matched = signatures
            .split(' ')
            .filter(|candidate| !candidate.is_empty())
            .take(MAX_CANDIDATES)
            .any(|candidate| {
                let Some((version, encoded)) = candidate.split_once(',') else {
                    return false;
                };
                let Ok(signature) = BASE64.decode(encoded) else {
                    return false;
                };
                match version {
                    "v1" => macs
                        .iter()
                        .any(|mac| mac.clone().verify_slice(&signature).is_ok()),
                    "v1a" => Signature::from_slice(&signature).is_ok_and(|signature| {
                        self.ed25519
                            .iter()
                            .any(|key| key.verify_strict(&signed, &signature).is_ok())
                    }),
                    _ => false,
                }
            });
        matched.then_some(()).ok_or(AuthError::NoMatchingSignature)
    }

    fn verify_stripe(
        &self,
        header: &str,
        body: &[u8],
        now: i64,
        tolerance: u32,
    ) -> Result<(), AuthError> {
        if self.stripe.is_empty() {
            return Err(AuthError::SchemeNotConfigured(Scheme::Stripe.source()));
        }
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for item in header.split(',') {
            match item.trim().split_once('=') {
                // Two timestamps make the header ambiguous: refuse it.
                Some(("t", _)) if timestamp.is_some() => return Err(AuthError::InvalidTimestamp),
                Some(("t", t)) => timestamp = Some(t),
                Some(("v1", hex_signature)) if candidates.len() < MAX_CANDIDATES => {
                    candidates.push(hex_signature);
                }
                // v0, unknown schemes and candidates past the cap are ignored.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(AuthError::InvalidTimestamp)?;
        check_timestamp(timestamp, now, tolerance)?;
        let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);

        let macs: Vec<HmacSha256> = self
            .stripe
            .iter()
            .filter_map(|key| mac_of(key, &signed))
            .collect();
        let matched = candidates.iter().any(|candidate| {
            hex::decode(candidate).is_ok_and(|signature| {
                macs.iter()
                    .any(|mac| mac.clone().verify_slice(&signature).is_ok())
            })
        });
        matched.then_some(()).ok_or(AuthError::NoMatchingSignature)
    }
}

/// HMAC-SHA256 of `message` under `key`, ready to compare: `verify_slice` on a
/// clone compares in constant time and refuses a signature of another length.
fn mac_of(key: &[u8], message: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(message);
    Some(mac)
}

fn check_timestamp(timestamp: &str, now: i64, tolerance: u32) -> Result<(), AuthError> {
    let signed_at: i64 = timestamp.parse().map_err(|_| AuthError::InvalidTimestamp)?;
    if now.abs_diff(signed_at) > u64::from(tolerance) {
        return Err(AuthError::TimestampOutOfTolerance { tolerance });
    }
    Ok(())
}

/// Non-empty lines with their 1-based numbers, trimmed.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
}

/// Signing helpers for tests, the load generator and the demo: the provider's
/// side of both schemes.
pub mod sign {
    use super::*;

    /// The `webhook-signature` value for a `whsec_` secret.
    pub fn standard_v1(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        let key = BASE64.decode(secret.strip_prefix("whsec_")?).ok()?;
        let mut mac = HmacSha256::new_from_slice(&key).ok()?;
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
    }

    /// The `Stripe-Signature` value for a Stripe endpoint secret.
    pub fn stripe(secret: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        Some(format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        ))
    }
}

#[cfg(test)]
mod tests;
