//! Is this webhook authentic? Pure verification, no I/O.
//!
//! The default route knows two schemes, told apart by their headers:
//! Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`;
//! `v1` HMAC-SHA256 and `v1a` ed25519) and Stripe's `Stripe-Signature`
//! ([`Keys`]). A named source has one scheme ([`source::Verifier`]): those two,
//! or an HMAC of the body as GitHub ([`github`]), Shopify ([`shopify`]), Slack
//! ([`slack`]) or the manifest ([`configured`]) says. Several secrets may be
//! configured at once (rotation); a request is authentic when any of them
//! verifies any of its signatures. MACs are compared in constant time by
//! `hmac`'s `verify_slice`, which also refuses a signature of the wrong length.

pub mod configured;
pub mod github;
pub mod mac;
pub mod shopify;
pub mod slack;
pub mod source;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Default tolerance between the signed timestamp and now, both ways.
pub const DEFAULT_TOLERANCE_SECS: u32 = 300;
/// Signatures one header may carry; a header with more is refused (401)
/// before the body is read. The header is the caller's, and every candidate
/// costs work; providers send one, or two during a rotation.
pub const MAX_SIGNATURES: usize = 8;
/// ed25519 verifications one request may cost: its `v1a` signatures times the
/// trusted public keys. Each one hashes the whole signed body (SHA-512) and
/// then does a scalar multiplication, so this bounds what one anonymous
/// request can make the service compute; a request with more `v1a`
/// signatures than this allows for the configured keys is refused (401).
pub const MAX_ED25519_VERIFICATIONS: usize = 8;
/// Length of an HMAC-SHA256; a signature of another length never matches.
const MAC_BYTES: usize = 32;
/// Shortest secret accepted: anything shorter is a placeholder, not a key.
pub const MIN_SECRET_BYTES: usize = 16;

/// Header names of the schemes (lowercase, as `http` normalises them).
pub mod header {
    pub const WEBHOOK_ID: &str = "webhook-id";
    pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
    pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
    /// Svix's names of the same three headers, which named Standard Webhooks
    /// sources also take: svix signs as Standard Webhooks does.
    pub const SVIX_ID: &str = "svix-id";
    pub const SVIX_TIMESTAMP: &str = "svix-timestamp";
    pub const SVIX_SIGNATURE: &str = "svix-signature";
    pub const STRIPE_SIGNATURE: &str = "stripe-signature";
    pub const GITHUB_SIGNATURE: &str = "x-hub-signature-256";
    pub const GITHUB_DELIVERY: &str = "x-github-delivery";
    pub const SHOPIFY_HMAC: &str = "x-shopify-hmac-sha256";
    pub const SHOPIFY_WEBHOOK_ID: &str = "x-shopify-webhook-id";
    pub const SLACK_SIGNATURE: &str = "x-slack-signature";
    pub const SLACK_TIMESTAMP: &str = "x-slack-request-timestamp";
}

/// The scheme that authenticated a request. On the default route it names
/// the event's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    Stripe,
    Github,
    Shopify,
    Slack,
    Hmac,
}

impl Scheme {
    /// The source name carried in `hookline-source` and mixed into `event_id`
    /// for webhooks of the default route (a named source's name stands in
    /// for it on the source's route).
    pub const fn source(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Stripe => "stripe",
            Scheme::Github => "github",
            Scheme::Shopify => "shopify",
            Scheme::Slack => "slack",
            Scheme::Hmac => "hmac",
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
    /// The signature header a source's manifest names is missing.
    #[error("the {0} header is missing")]
    MissingConfiguredHeader(String),
    #[error("the signed timestamp is not a Unix time in seconds")]
    InvalidTimestamp,
    #[error("the signed timestamp is more than {tolerance} s from now")]
    TimestampOutOfTolerance { tolerance: u32 },
    #[error("no signature matched a configured secret")]
    NoMatchingSignature,
    #[error("the signature header carries more than {max} signatures")]
    TooManySignatures { max: usize },
    #[error("the webhook-signature header carries more than {max} v1a signatures")]
    TooManyEd25519Signatures { max: usize },
    /// Reported to the caller like a signature that did not match, so that an
    /// anonymous caller does not learn which schemes are configured.
    #[error("no signature matched a configured secret")]
    SchemeNotConfigured(&'static str),
}

impl AuthError {
    /// A stable code for the `{"code": …}` of the answer and for metrics.
    pub const fn code(&self) -> &'static str {
        match self {
            AuthError::MissingSignature
            | AuthError::MissingHeader(_)
            | AuthError::MissingConfiguredHeader(_) => "missing_signature",
            AuthError::InvalidTimestamp => "invalid_timestamp",
            AuthError::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            AuthError::NoMatchingSignature | AuthError::SchemeNotConfigured(_) => {
                "invalid_signature"
            }
            AuthError::TooManySignatures { .. } | AuthError::TooManyEd25519Signatures { .. } => {
                "too_many_signatures"
            }
        }
    }
}

/// A secret line that cannot be used, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no secret: every line is blank")]
    NoSecrets,
    #[error("scheme hmac needs its hmac block (header, algorithm, encoding)")]
    NoHmacSpec,
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
    #[error(
        "line {line}: more than {MAX_ED25519_VERIFICATIONS} whpk_ public keys; every v1a \
         signature is verified against each, and a request may cost at most \
         {MAX_ED25519_VERIFICATIONS} verifications"
    )]
    TooManyPublicKeys { line: usize },
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
                if self.ed25519.len() == MAX_ED25519_VERIFICATIONS {
                    return Err(KeyError::TooManyPublicKeys { line: n });
                }
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

    /// Verifies a request whole: [`Keys::claim`] on its headers, then
    /// [`Keys::verify_claim`] on the signed bytes. `header` looks a header up
    /// by lowercase name, `body` is the raw body, `now` the current Unix time.
    /// The service itself makes the two steps apart, reading the body between
    /// them; this is for callers that hold a body already.
    pub fn verify<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
        now: i64,
        tolerance: u32,
    ) -> Result<Scheme, AuthError> {
        let claim = self.claim(header, now, tolerance)?;
        let signed = [claim.prefix(), body].concat();
        self.verify_claim(&claim, &signed)
    }

    /// What the headers of a request claim, checked before its body is read:
    /// the scheme, the tolerance of the signed timestamp, and signatures that
    /// could match a configured secret. Cheap, so that a request these
    /// headers already condemn is refused without reading its body.
    pub fn claim<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        now: i64,
        tolerance: u32,
    ) -> Result<Claim, AuthError> {
        if header(header::WEBHOOK_SIGNATURE).is_some() {
            self.claim_standard_headers(header, now, tolerance)
        } else if let Some(signature) = header(header::STRIPE_SIGNATURE) {
            self.claim_stripe(signature, now, tolerance)
        } else if header(header::WEBHOOK_ID).is_some()
            || header(header::WEBHOOK_TIMESTAMP).is_some()
        {
            Err(AuthError::MissingHeader(header::WEBHOOK_SIGNATURE))
        } else {
            Err(AuthError::MissingSignature)
        }
    }

    /// [`Keys::claim`] of a request that can only be Standard Webhooks: its
    /// three headers, by the names `header` finds them under.
    pub(crate) fn claim_standard_headers<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        now: i64,
        tolerance: u32,
    ) -> Result<Claim, AuthError> {
        let signatures = header(header::WEBHOOK_SIGNATURE)
            .ok_or(AuthError::MissingHeader(header::WEBHOOK_SIGNATURE))?;
        let id = header(header::WEBHOOK_ID).ok_or(AuthError::MissingHeader(header::WEBHOOK_ID))?;
        let timestamp = header(header::WEBHOOK_TIMESTAMP)
            .ok_or(AuthError::MissingHeader(header::WEBHOOK_TIMESTAMP))?;
        let mut claim = self.claim_standard(id, timestamp, signatures, now, tolerance)?;
        claim.message_id = mac::message_id(id);
        Ok(claim)
    }

    fn claim_standard(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        now: i64,
        tolerance: u32,
    ) -> Result<Claim, AuthError> {
        if self.hmac.is_empty() && self.ed25519.is_empty() {
            return Err(AuthError::SchemeNotConfigured(
                Scheme::StandardWebhooks.source(),
            ));
        }
        check_timestamp(timestamp, now, tolerance)?;
        let candidates: Vec<&str> = signatures
            .split(' ')
            .filter(|candidate| !candidate.is_empty())
            .collect();
        if candidates.len() > MAX_SIGNATURES {
            return Err(AuthError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let mut claim = Claim::new(Scheme::StandardWebhooks, format!("{id}.{timestamp}."));
        for candidate in candidates {
            let Some((version, encoded)) = candidate.split_once(',') else {
                continue;
            };
            let Ok(signature) = BASE64.decode(encoded) else {
                continue;
            };
            match version {
                // Only a signature that could match is kept: one of another
                // length never does, nor one for a kind of key not configured.
                "v1" if !self.hmac.is_empty() && signature.len() == MAC_BYTES => {
                    claim.macs.push(signature);
                }
                "v1a" if !self.ed25519.is_empty() => {
                    if let Ok(signature) = Signature::from_slice(&signature) {
                        claim.ed25519.push(signature);
                    }
                }
                _ => {}
            }
        }
        let allowed = self.ed25519_signatures_allowed();
        if claim.ed25519.len() > allowed {
            return Err(AuthError::TooManyEd25519Signatures { max: allowed });
        }
        claim.could_match()
    }

    pub(crate) fn claim_stripe(
        &self,
        header: &str,
        now: i64,
        tolerance: u32,
    ) -> Result<Claim, AuthError> {
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
                Some(("v1", hex_signature)) => candidates.push(hex_signature),
                // v0 and unknown schemes are ignored.
                _ => {}
            }
        }
        if candidates.len() > MAX_SIGNATURES {
            return Err(AuthError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let timestamp = timestamp.ok_or(AuthError::InvalidTimestamp)?;
        check_timestamp(timestamp, now, tolerance)?;
        let mut claim = Claim::new(Scheme::Stripe, format!("{timestamp}."));
        claim.macs = candidates
            .iter()
            .filter_map(|candidate| hex::decode(candidate).ok())
            .filter(|signature| signature.len() == MAC_BYTES)
            .collect();
        claim.could_match()
    }

    /// `v1a` signatures one request may carry: each is verified against every
    /// public key, and the product is capped.
    fn ed25519_signatures_allowed(&self) -> usize {
        MAX_ED25519_VERIFICATIONS / self.ed25519.len().max(1)
    }

    /// Verifies `claim`'s signatures over `signed`, which is the claim's
    /// [`prefix`](Claim::prefix) followed by the raw body. Costs a hash of
    /// `signed` per secret of the scheme, plus one per ed25519 verification
    /// (at most [`MAX_ED25519_VERIFICATIONS`]): the caller decides where that
    /// runs.
    pub fn verify_claim(&self, claim: &Claim, signed: &[u8]) -> Result<Scheme, AuthError> {
        let secrets = match claim.scheme {
            Scheme::StandardWebhooks => &self.hmac,
            Scheme::Stripe => &self.stripe,
            // Claims of the other schemes are verified by their source's
            // secrets, never by these.
            Scheme::Github | Scheme::Shopify | Scheme::Slack | Scheme::Hmac => {
                return Err(AuthError::NoMatchingSignature);
            }
        };
        // The body is hashed once per secret, whatever the number of candidates.
        let macs: Vec<HmacSha256> = if claim.macs.is_empty() {
            Vec::new()
        } else {
            secrets
                .iter()
                .filter_map(|key| mac_of(key, signed))
                .collect()
        };
        let mac_matched = claim.macs.iter().any(|signature| {
            macs.iter()
                .any(|mac| mac.clone().verify_slice(signature).is_ok())
        });
        let matched = mac_matched
            || claim.ed25519.iter().any(|signature| {
                self.ed25519
                    .iter()
                    .any(|key| key.verify_strict(signed, signature).is_ok())
            });
        matched
            .then_some(claim.scheme)
            .ok_or(AuthError::NoMatchingSignature)
    }
}

/// What a request's headers claim, before its body is read: the scheme, the
/// bytes signed ahead of the body, and the signatures that could match.
#[derive(Debug, Clone)]
pub struct Claim {
    scheme: Scheme,
    /// `{id}.{timestamp}.` (Standard Webhooks), `{t}.` (Stripe),
    /// `v0:{ts}:` (Slack), or nothing (a MAC of the body alone).
    prefix: String,
    /// The hash of the HMACs in `macs`.
    algorithm: mac::Algorithm,
    /// HMAC signatures, decoded, of the algorithm's length.
    macs: Vec<Vec<u8>>,
    /// `v1a` signatures, at most [`MAX_ED25519_VERIFICATIONS`] per key.
    ed25519: Vec<Signature>,
    /// The provider's id of this delivery, when the scheme sends one and it
    /// is fit for a record header (see [`mac::message_id`]).
    message_id: Option<String>,
}

impl Claim {
    fn new(scheme: Scheme, prefix: String) -> Self {
        Self {
            scheme,
            prefix,
            algorithm: mac::Algorithm::Sha256,
            macs: Vec::new(),
            ed25519: Vec::new(),
            message_id: None,
        }
    }

    /// The id of the delivery, if the scheme sent a usable one.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// A claim without a signature that could match is refused before the
    /// body is read: reading it could change nothing.
    fn could_match(self) -> Result<Self, AuthError> {
        if self.macs.is_empty() && self.ed25519.is_empty() {
            Err(AuthError::NoMatchingSignature)
        } else {
            Ok(self)
        }
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bytes signed ahead of the body: a reader that puts them in front
    /// of the body in one buffer verifies without copying the body.
    pub fn prefix(&self) -> &[u8] {
        self.prefix.as_bytes()
    }

    /// Whether verifying costs ed25519 verifications, which take tens of
    /// microseconds each plus a SHA-512 of the body.
    pub fn has_ed25519(&self) -> bool {
        !self.ed25519.is_empty()
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
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
}

/// Signing helpers for tests, the load generator and the demo: the provider's
/// side of the schemes.
pub mod sign {
    use super::*;

    pub use super::github::sign as github;
    pub use super::shopify::sign as shopify;
    pub use super::slack::sign as slack;

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
