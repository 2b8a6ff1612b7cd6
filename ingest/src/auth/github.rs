//! GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>`, keyed by
//! the webhook's secret. Only the body is signed: neither a time (so there is
//! no tolerance to check) nor `X-GitHub-Delivery`.

use hmac::{Hmac, Mac};

use super::mac::{self, Algorithm};
use super::{AuthError, Claim, Scheme, header};

/// What goes before the hex MAC.
const PREFIX: &str = "sha256=";

/// What a GitHub delivery's headers claim.
pub(super) fn claim<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Result<Claim, AuthError> {
    let value = header(header::GITHUB_SIGNATURE)
        .ok_or(AuthError::MissingHeader(header::GITHUB_SIGNATURE))?;
    let claim = mac::claim(
        Scheme::Github,
        Algorithm::Sha256,
        String::new(),
        value,
        |value| hex::decode(value.strip_prefix(PREFIX)?).ok(),
    )?;
    // `X-GitHub-Delivery` is not signed: whoever holds one delivery could
    // send it again under new ids, so it never names the event.
    Ok(claim)
}

/// The `X-Hub-Signature-256` value GitHub sends for `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> Option<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(format!(
        "{PREFIX}{}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::mac::Secrets;
    use super::super::source::Verifier;
    use super::*;

    // GitHub's docs, "Validating webhook deliveries" (docs.github.com,
    // section "Testing the webhook payload validation").
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    /// The `X-GitHub-Delivery` of the delivery headers shown in GitHub's docs,
    /// "Webhook events and payloads".
    const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

    fn verifier(lines: &str) -> Verifier {
        Verifier::Github(Secrets::parse(lines).unwrap())
    }

    fn verify(verifier: &Verifier, signature: &str, body: &[u8]) -> Result<Claim, AuthError> {
        let headers = HashMap::from([
            (header::GITHUB_SIGNATURE, signature),
            (header::GITHUB_DELIVERY, DELIVERY),
        ]);
        let claim = verifier.claim(|name| headers.get(name).copied(), 0, 300)?;
        verifier.verify_claim(&claim, &[claim.prefix(), body].concat())?;
        Ok(claim)
    }

    #[test]
    fn githubs_published_example_verifies_and_its_unsigned_delivery_id_is_not_carried() {
        let claim = verify(&verifier(SECRET), SIGNATURE, BODY).unwrap();
        assert_eq!(claim.scheme(), Scheme::Github);
        assert_eq!(claim.message_id(), None);
    }

    #[test]
    fn the_signer_reproduces_githubs_example() {
        assert_eq!(sign(SECRET, BODY).as_deref(), Some(SIGNATURE));
    }

    #[test]
    fn a_wrong_signature_or_body_fails() {
        let wrong = SIGNATURE.replace("e17", "e18");
        assert_eq!(
            verify(&verifier(SECRET), &wrong, BODY).unwrap_err(),
            AuthError::NoMatchingSignature
        );
        assert_eq!(
            verify(&verifier(SECRET), SIGNATURE, b"Hello, World?").unwrap_err(),
            AuthError::NoMatchingSignature
        );
    }

    #[test]
    fn a_signature_without_its_prefix_or_cut_short_fails_before_the_body() {
        let verifier = verifier(SECRET);
        let bare = SIGNATURE.trim_start_matches(PREFIX);
        let short = &SIGNATURE[..SIGNATURE.len() - 2];
        for signature in [bare, short, "sha256=", "sha1=757107ea"] {
            let headers = HashMap::from([(header::GITHUB_SIGNATURE, signature)]);
            assert_eq!(
                verifier
                    .claim(|name| headers.get(name).copied(), 0, 300)
                    .unwrap_err(),
                AuthError::NoMatchingSignature,
                "{signature}"
            );
        }
        let none = HashMap::<&str, &str>::new();
        assert_eq!(
            verifier
                .claim(|name| none.get(name).copied(), 0, 300)
                .unwrap_err(),
            AuthError::MissingHeader(header::GITHUB_SIGNATURE)
        );
    }

    #[test]
    fn a_signature_by_the_second_of_two_secrets_passes() {
        let rotated = verifier(&format!("the-previous-secret-0001\n{SECRET}\n"));
        assert!(verify(&rotated, SIGNATURE, BODY).is_ok());
    }
}
