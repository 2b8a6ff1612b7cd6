//! Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256("v0:{ts}:{body}")>`, keyed
//! by the app's signing secret, with `X-Slack-Request-Timestamp` as `ts`,
//! which must be within the tolerance of now (Slack's own libraries allow
//! five minutes, the default tolerance). Slack sends no delivery id.

use hmac::{Hmac, Mac};

use super::mac::{self, Algorithm};
use super::{AuthError, Claim, Scheme, check_timestamp, header};

/// The only version of the scheme: it prefixes both the signed bytes and
/// the signature.
const VERSION: &str = "v0";

/// What a Slack request's headers claim.
pub(super) fn claim<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    now: i64,
    tolerance: u32,
) -> Result<Claim, AuthError> {
    let value =
        header(header::SLACK_SIGNATURE).ok_or(AuthError::MissingHeader(header::SLACK_SIGNATURE))?;
    let timestamp =
        header(header::SLACK_TIMESTAMP).ok_or(AuthError::MissingHeader(header::SLACK_TIMESTAMP))?;
    check_timestamp(timestamp, now, tolerance)?;
    mac::claim(
        Scheme::Slack,
        Algorithm::Sha256,
        format!("{VERSION}:{timestamp}:"),
        value,
        |value| hex::decode(value.strip_prefix(VERSION)?.strip_prefix('=')?).ok(),
    )
}

/// The `X-Slack-Signature` value Slack sends for `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(format!("{VERSION}:{timestamp}:").as_bytes());
    mac.update(body);
    Some(format!(
        "{VERSION}={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::DEFAULT_TOLERANCE_SECS;
    use super::super::mac::Secrets;
    use super::super::source::Verifier;
    use super::*;

    // Slack's docs, "Verifying requests from Slack", as the tests of
    // slackapi/python-slack-sdk hold them
    // (tests/slack_sdk/signature/test_signature_verifier.py).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: i64 = 1_531_420_618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn verifier(lines: &str) -> Verifier {
        Verifier::Slack(Secrets::parse(lines).unwrap())
    }

    /// Verifies with the clock at `now`, as the published vector's clock is
    /// pinned.
    fn verify(
        verifier: &Verifier,
        signature: &str,
        timestamp: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Scheme, AuthError> {
        let headers = HashMap::from([
            (header::SLACK_SIGNATURE, signature),
            (header::SLACK_TIMESTAMP, timestamp),
        ]);
        let claim = verifier.claim(
            |name| headers.get(name).copied(),
            now,
            DEFAULT_TOLERANCE_SECS,
        )?;
        assert_eq!(claim.message_id(), None);
        verifier.verify_claim(&claim, &[claim.prefix(), body].concat())
    }

    #[test]
    fn slacks_published_example_verifies_at_its_time() {
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(&verifier(SECRET), SIGNATURE, &ts, BODY, TIMESTAMP),
            Ok(Scheme::Slack)
        );
        assert_eq!(sign(SECRET, TIMESTAMP, BODY).as_deref(), Some(SIGNATURE));
    }

    #[test]
    fn a_wrong_signature_a_changed_body_or_timestamp_fails() {
        let ts = TIMESTAMP.to_string();
        let wrong = SIGNATURE.replace("b503", "b504");
        let verifier = verifier(SECRET);
        assert_eq!(
            verify(&verifier, &wrong, &ts, BODY, TIMESTAMP),
            Err(AuthError::NoMatchingSignature)
        );
        let changed = [BODY, b"------"].concat();
        assert_eq!(
            verify(&verifier, SIGNATURE, &ts, &changed, TIMESTAMP),
            Err(AuthError::NoMatchingSignature)
        );
        // Signed at another second: within tolerance, but not what was signed.
        let next = (TIMESTAMP + 1).to_string();
        assert_eq!(
            verify(&verifier, SIGNATURE, &next, BODY, TIMESTAMP),
            Err(AuthError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_301_seconds_away_fail_and_300_pass() {
        let ts = TIMESTAMP.to_string();
        let verifier = verifier(SECRET);
        for now in [TIMESTAMP - 300, TIMESTAMP + 300] {
            assert_eq!(
                verify(&verifier, SIGNATURE, &ts, BODY, now),
                Ok(Scheme::Slack)
            );
        }
        for now in [TIMESTAMP - 301, TIMESTAMP + 301] {
            assert_eq!(
                verify(&verifier, SIGNATURE, &ts, BODY, now),
                Err(AuthError::TimestampOutOfTolerance { tolerance: 300 })
            );
        }
        assert_eq!(
            verify(&verifier, SIGNATURE, "soon", BODY, TIMESTAMP),
            Err(AuthError::InvalidTimestamp)
        );
    }

    #[test]
    fn a_missing_header_or_another_version_fails_before_the_body() {
        let verifier = verifier(SECRET);
        let ts = TIMESTAMP.to_string();
        let only_signature = HashMap::from([(header::SLACK_SIGNATURE, SIGNATURE)]);
        assert_eq!(
            verifier
                .claim(|n| only_signature.get(n).copied(), TIMESTAMP, 300)
                .unwrap_err(),
            AuthError::MissingHeader(header::SLACK_TIMESTAMP)
        );
        let v1 = SIGNATURE.replace("v0=", "v1=");
        let headers = HashMap::from([
            (header::SLACK_SIGNATURE, v1.as_str()),
            (header::SLACK_TIMESTAMP, ts.as_str()),
        ]);
        assert_eq!(
            verifier
                .claim(|n| headers.get(n).copied(), TIMESTAMP, 300)
                .unwrap_err(),
            AuthError::NoMatchingSignature
        );
    }

    #[test]
    fn a_signature_by_the_second_of_two_secrets_passes() {
        let rotated = verifier(&format!("an-older-signing-secret-0000\n{SECRET}\n"));
        let ts = TIMESTAMP.to_string();
        assert_eq!(
            verify(&rotated, SIGNATURE, &ts, BODY, TIMESTAMP),
            Ok(Scheme::Slack)
        );
    }
}
