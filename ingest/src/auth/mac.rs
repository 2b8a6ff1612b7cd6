//! What the schemes that sign with an HMAC of the body share: the hash, the
//! secrets (used whole as keys), the claim of one signature header, the
//! constant-time check, and the message id a record may carry.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use hookline_contract::pipeline::{HmacAlgorithm, SignatureEncoding};

use super::{AuthError, Claim, KeyError, MIN_SECRET_BYTES, Scheme, lines};

/// Longest message id a record carries: provider ids are UUIDs or short
/// tokens, and the header must stay within the record's headroom
/// ([`crate::limits::RECORD_HEADROOM_BYTES`]).
pub const MAX_MESSAGE_ID_BYTES: usize = 256;

/// The hash under an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha1,
    Sha512,
}

impl Algorithm {
    /// Bytes of a MAC: a signature of another length never matches, and is
    /// dropped before the body is read.
    pub const fn mac_bytes(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
            Algorithm::Sha512 => 64,
        }
    }

    /// Whether any of `secrets` signs `signed` as one of `candidates`: one
    /// HMAC of `signed` per secret, whatever the number of candidates, each
    /// compared in constant time.
    pub fn any_matches(self, secrets: &Secrets, signed: &[u8], candidates: &[Vec<u8>]) -> bool {
        match self {
            Algorithm::Sha256 => any_matches::<Hmac<sha2::Sha256>>(secrets, signed, candidates),
            Algorithm::Sha1 => any_matches::<Hmac<sha1::Sha1>>(secrets, signed, candidates),
            Algorithm::Sha512 => any_matches::<Hmac<sha2::Sha512>>(secrets, signed, candidates),
        }
    }
}

impl From<HmacAlgorithm> for Algorithm {
    fn from(algorithm: HmacAlgorithm) -> Self {
        match algorithm {
            HmacAlgorithm::Sha256 => Algorithm::Sha256,
            HmacAlgorithm::Sha1 => Algorithm::Sha1,
            HmacAlgorithm::Sha512 => Algorithm::Sha512,
        }
    }
}

fn any_matches<M: Mac + KeyInit + Clone>(
    secrets: &Secrets,
    signed: &[u8],
    candidates: &[Vec<u8>],
) -> bool {
    if candidates.is_empty() {
        return false;
    }
    secrets.0.iter().any(|key| {
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
            return false;
        };
        mac.update(signed);
        // `verify_slice` on a clone: constant time, and a candidate of
        // another length is refused rather than compared as a prefix.
        candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
    })
}

/// The secrets of one source, one per line of its Secret key, each used
/// whole (its bytes, not decoded) as an HMAC key, as GitHub, Shopify and
/// Slack use theirs.
#[derive(Clone, Default)]
pub struct Secrets(Vec<Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Secrets({})", self.0.len())
    }
}

impl Secrets {
    /// Reads one secret per line; blank lines are skipped, and at least one
    /// secret is needed.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut secrets = Vec::new();
        for (line, secret) in lines(text) {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(KeyError::ShortSecret { line });
            }
            secrets.push(secret.as_bytes().to_vec());
        }
        if secrets.is_empty() {
            return Err(KeyError::NoSecrets);
        }
        Ok(Self(secrets))
    }

    /// Secrets taken as they are, for tests with published vectors whose
    /// secrets are placeholders shorter than [`MIN_SECRET_BYTES`].
    #[cfg(test)]
    pub(crate) fn unchecked(secrets: &[&str]) -> Self {
        Self(secrets.iter().map(|s| s.as_bytes().to_vec()).collect())
    }
}

/// Decodes a signature written in `encoding`; `None` when it is not.
pub fn decode(encoding: SignatureEncoding, text: &str) -> Option<Vec<u8>> {
    match encoding {
        SignatureEncoding::Hex => hex::decode(text).ok(),
        SignatureEncoding::Base64 => BASE64.decode(text).ok(),
    }
}

/// The claim of one signature header over `prefix` and the body: `value` is
/// the header's, `written` strips what goes before the encoded MAC and
/// decodes it. Refused before the body when it could never match.
pub(super) fn claim(
    scheme: Scheme,
    algorithm: Algorithm,
    prefix: String,
    value: &str,
    written: impl FnOnce(&str) -> Option<Vec<u8>>,
) -> Result<Claim, AuthError> {
    let mut claim = Claim::new(scheme, prefix);
    claim.algorithm = algorithm;
    claim.macs = written(value.trim())
        .filter(|signature| signature.len() == algorithm.mac_bytes())
        .into_iter()
        .collect();
    claim.could_match()
}

/// The delivery id `raw` as a record may carry it: 1 to
/// [`MAX_MESSAGE_ID_BYTES`] visible ASCII characters. Anything else is not
/// carried (the webhook is still authentic): a header value is the
/// caller's, and a record header must not grow with it nor carry control
/// characters into the logs of whoever reads it.
pub fn message_id(raw: &str) -> Option<String> {
    let fits = !raw.is_empty()
        && raw.len() <= MAX_MESSAGE_ID_BYTES
        && raw.bytes().all(|b| b.is_ascii_graphic());
    fits.then(|| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_one_per_line_blank_lines_skipped() {
        let secrets =
            Secrets::parse("\n  first-secret-0123456  \n\nsecond-secret-0123456\n").unwrap();
        assert_eq!(
            secrets.0,
            [
                b"first-secret-0123456".to_vec(),
                b"second-secret-0123456".to_vec()
            ]
        );
        assert_eq!(format!("{secrets:?}"), "Secrets(2)");
    }

    #[test]
    fn no_secret_or_a_short_one_is_refused_with_its_line() {
        assert_eq!(Secrets::parse("\n \n").unwrap_err(), KeyError::NoSecrets);
        assert_eq!(
            Secrets::parse("long-enough-secret-1\nshort\n").unwrap_err(),
            KeyError::ShortSecret { line: 2 }
        );
    }

    fn mac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn every_algorithm_checks_its_own_length_in_constant_time() {
        let secrets = Secrets::unchecked(&["key"]);
        for (algorithm, mac) in [
            (Algorithm::Sha256, mac::<Hmac<sha2::Sha256>>(b"key", b"msg")),
            (Algorithm::Sha1, mac::<Hmac<sha1::Sha1>>(b"key", b"msg")),
            (Algorithm::Sha512, mac::<Hmac<sha2::Sha512>>(b"key", b"msg")),
        ] {
            assert_eq!(mac.len(), algorithm.mac_bytes());
            assert!(algorithm.any_matches(&secrets, b"msg", std::slice::from_ref(&mac)));
            assert!(!algorithm.any_matches(&secrets, b"msg!", std::slice::from_ref(&mac)));
            let cut = mac[..mac.len() - 1].to_vec();
            assert!(!algorithm.any_matches(&secrets, b"msg", &[cut]));
            assert!(!algorithm.any_matches(&secrets, b"msg", &[Vec::new()]));
        }
    }

    #[test]
    fn a_message_id_is_carried_only_when_short_and_printable() {
        assert_eq!(message_id("msg_1").as_deref(), Some("msg_1"));
        assert_eq!(message_id(""), None);
        assert_eq!(message_id("a b"), None);
        assert_eq!(message_id("a\u{7}"), None);
        assert_eq!(message_id("é"), None);
        let longest = "x".repeat(MAX_MESSAGE_ID_BYTES);
        assert_eq!(message_id(&longest), Some(longest.clone()));
        assert_eq!(message_id(&format!("{longest}x")), None);
    }
}
