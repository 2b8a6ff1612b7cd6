//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(body)>`, keyed by the
//! app's secret. Only the body is signed: neither a time nor
//! `X-Shopify-Webhook-Id`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};

use super::mac::{self, Algorithm};
use super::{AuthError, Claim, Scheme, header};

/// What a Shopify delivery's headers claim.
pub(super) fn claim<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Result<Claim, AuthError> {
    let value =
        header(header::SHOPIFY_HMAC).ok_or(AuthError::MissingHeader(header::SHOPIFY_HMAC))?;
    let claim = mac::claim(
        Scheme::Shopify,
        Algorithm::Sha256,
        String::new(),
        value,
        |value| BASE64.decode(value).ok(),
    )?;
    // `X-Shopify-Webhook-Id` is not signed: it never names the event.
    Ok(claim)
}

/// The `X-Shopify-Hmac-Sha256` value Shopify sends for `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::mac::Secrets;
    use super::super::source::Verifier;
    use super::*;

    // Shopify/shopify-api-js, packages/shopify-api/lib/webhooks/__tests__/
    // validate.test.ts ("returns true for valid request"): the secret is
    // `apiSecretKey` of lib/__tests__/test-config.ts, the id the default of
    // `headers()` in webhooks/__tests__/utils.ts.
    const SECRET: &str = "test_secret_key";
    const BODY: &[u8] = br#"{"foo": "bar"}"#;
    const HMAC: &str = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=";
    const WEBHOOK_ID: &str = "123456789";

    fn headers(hmac: &str) -> HashMap<&'static str, String> {
        HashMap::from([
            (header::SHOPIFY_HMAC, hmac.to_owned()),
            (header::SHOPIFY_WEBHOOK_ID, WEBHOOK_ID.to_owned()),
        ])
    }

    fn verify(verifier: &Verifier, hmac: &str, body: &[u8]) -> Result<Claim, AuthError> {
        let headers = headers(hmac);
        let claim = verifier.claim(|name| headers.get(name).map(String::as_str), 0, 300)?;
        verifier.verify_claim(&claim, &[claim.prefix(), body].concat())?;
        Ok(claim)
    }

    /// The published secret is a 15-byte placeholder, under the minimum a
    /// secret file may hold.
    fn published() -> Verifier {
        Verifier::Shopify(Secrets::unchecked(&[SECRET]))
    }

    #[test]
    fn shopifys_published_vector_verifies_and_its_unsigned_webhook_id_is_not_carried() {
        let claim = verify(&published(), HMAC, BODY).unwrap();
        assert_eq!(claim.scheme(), Scheme::Shopify);
        assert_eq!(claim.message_id(), None);
        assert_eq!(sign(SECRET, BODY).as_deref(), Some(HMAC));
    }

    #[test]
    fn a_wrong_signature_or_body_fails() {
        let wrong = HMAC.replace("a7g=", "a7w=");
        assert_eq!(
            verify(&published(), &wrong, BODY).unwrap_err(),
            AuthError::NoMatchingSignature
        );
        assert_eq!(
            verify(&published(), HMAC, br#"{"foo": "baz"}"#).unwrap_err(),
            AuthError::NoMatchingSignature
        );
        assert_eq!(
            verify(&published(), "fake", BODY).unwrap_err(),
            AuthError::NoMatchingSignature
        );
    }

    #[test]
    fn a_signature_by_the_second_of_two_secrets_passes() {
        let second = "shpss_0123456789abcdef0123456789abcdef";
        let rotated = Verifier::Shopify(
            Secrets::parse(&format!("shpss_the_previous_secret_000000\n\n{second}\n")).unwrap(),
        );
        let hmac = sign(second, BODY).unwrap();
        assert!(verify(&rotated, &hmac, BODY).is_ok());
        assert_eq!(
            verify(&rotated, HMAC, BODY).unwrap_err(),
            AuthError::NoMatchingSignature
        );
    }
}
