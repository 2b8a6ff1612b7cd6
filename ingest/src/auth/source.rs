//! How a named source (`spec.sources[]`) authenticates: its one scheme and
//! its secrets. Unlike the default route, which tells Standard Webhooks and
//! Stripe apart by their headers, a source's route takes its own scheme's
//! headers only.

use hookline_contract::pipeline::{SourceScheme, SourceSpec};

use super::configured::Configured;
use super::mac::Secrets;
use super::{AuthError, Claim, KeyError, Keys, Scheme, github, header, shopify, slack};

/// A source's scheme with its secrets.
#[derive(Debug, Clone)]
pub enum Verifier {
    StandardWebhooks(Keys),
    Stripe(Keys),
    Github(Secrets),
    Shopify(Secrets),
    Slack(Secrets),
    Hmac(Configured, Secrets),
}

impl Verifier {
    /// The verifier of `source`, whose secret file holds `text`: one secret
    /// per line, blank lines skipped.
    pub fn new(source: &SourceSpec, text: &str) -> Result<Self, KeyError> {
        Ok(match source.scheme {
            SourceScheme::StandardWebhooks => {
                let mut keys = Keys::default();
                keys.add_standard_webhooks(text)?;
                Self::StandardWebhooks(non_empty(keys)?)
            }
            SourceScheme::Stripe => {
                let mut keys = Keys::default();
                keys.add_stripe(text)?;
                Self::Stripe(non_empty(keys)?)
            }
            SourceScheme::Github => Self::Github(Secrets::parse(text)?),
            SourceScheme::Shopify => Self::Shopify(Secrets::parse(text)?),
            SourceScheme::Slack => Self::Slack(Secrets::parse(text)?),
            SourceScheme::Hmac => {
                // The manifest's checks refuse an hmac source without its
                // block before any secret is read.
                let spec = source.hmac.as_ref().ok_or(KeyError::NoHmacSpec)?;
                Self::Hmac(Configured::new(spec), Secrets::parse(text)?)
            }
        })
    }

    /// What the request's headers claim under this source's scheme, checked
    /// before its body is read (as [`Keys::claim`] does for the default
    /// route). `now` is the current Unix time; `tolerance` bounds the
    /// distance of a signed timestamp from it.
    pub fn claim<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        now: i64,
        tolerance: u32,
    ) -> Result<Claim, AuthError> {
        match self {
            Self::StandardWebhooks(keys) => {
                keys.claim_standard_headers(|name| svix_or(&header, name), now, tolerance)
            }
            Self::Stripe(keys) => {
                let signature = header(header::STRIPE_SIGNATURE)
                    .ok_or(AuthError::MissingHeader(header::STRIPE_SIGNATURE))?;
                keys.claim_stripe(signature, now, tolerance)
            }
            Self::Github(_) => github::claim(header),
            Self::Shopify(_) => shopify::claim(header),
            Self::Slack(_) => slack::claim(header, now, tolerance),
            Self::Hmac(configured, _) => configured.claim(header),
        }
    }

    /// Verifies `claim` over `signed` (the claim's prefix, then the body):
    /// one HMAC of `signed` per secret, plus the ed25519 verifications of a
    /// Standard Webhooks claim (see [`Keys::verify_claim`]).
    pub fn verify_claim(&self, claim: &Claim, signed: &[u8]) -> Result<Scheme, AuthError> {
        let secrets = match self {
            Self::StandardWebhooks(keys) | Self::Stripe(keys) => {
                return keys.verify_claim(claim, signed);
            }
            Self::Github(secrets)
            | Self::Shopify(secrets)
            | Self::Slack(secrets)
            | Self::Hmac(_, secrets) => secrets,
        };
        claim
            .algorithm
            .any_matches(secrets, signed, &claim.macs)
            .then_some(claim.scheme)
            .ok_or(AuthError::NoMatchingSignature)
    }
}

/// A source whose file holds no secret at all is a mistake of its Secret,
/// refused at startup rather than answering 401 to everything.
fn non_empty(keys: Keys) -> Result<Keys, KeyError> {
    if keys.is_empty() {
        Err(KeyError::NoSecrets)
    } else {
        Ok(keys)
    }
}

/// The Standard Webhooks header `name`, or svix's name for it: svix sends
/// `svix-id`, `svix-timestamp` and `svix-signature` and signs them alike.
fn svix_or<'h>(header: &impl Fn(&str) -> Option<&'h str>, name: &str) -> Option<&'h str> {
    header(name).or_else(|| {
        let svix = match name {
            header::WEBHOOK_ID => header::SVIX_ID,
            header::WEBHOOK_TIMESTAMP => header::SVIX_TIMESTAMP,
            header::WEBHOOK_SIGNATURE => header::SVIX_SIGNATURE,
            _ => return None,
        };
        header(svix)
    })
}

#[cfg(test)]
mod tests;
