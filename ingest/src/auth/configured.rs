//! The `hmac` scheme: an HMAC of the raw body in a header the manifest names,
//! with its hash, its encoding and what goes before it there, for providers
//! without a scheme of their own. Nothing signed carries a time or an id.

use hookline_contract::pipeline::{HmacSpec, SignatureEncoding};

use super::mac::{self, Algorithm};
use super::{AuthError, Claim, Scheme};

/// How a source's manifest says its signature is written.
#[derive(Debug, Clone)]
pub struct Configured {
    /// Lowercase, as `http` normalises header names.
    header: String,
    algorithm: Algorithm,
    encoding: SignatureEncoding,
    prefix: String,
}

impl Configured {
    pub fn new(spec: &HmacSpec) -> Self {
        Self {
            header: spec.header.to_ascii_lowercase(),
            algorithm: spec.algorithm.into(),
            encoding: spec.encoding,
            prefix: spec.prefix.clone().unwrap_or_default(),
        }
    }

    /// What the configured header claims.
    pub(super) fn claim<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<Claim, AuthError> {
        let value = header(&self.header)
            .ok_or_else(|| AuthError::MissingConfiguredHeader(self.header.clone()))?;
        mac::claim(
            Scheme::Hmac,
            self.algorithm,
            String::new(),
            value,
            |value| mac::decode(self.encoding, value.strip_prefix(self.prefix.as_str())?),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use hookline_contract::pipeline::HmacAlgorithm;

    use super::super::mac::Secrets;
    use super::super::source::Verifier;
    use super::*;

    // GitHub's published example ("Validating webhook deliveries"): the
    // `hmac` scheme configured as GitHub signs must verify it too.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SHA256_HEX: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    /// The same secret and body, computed independently (Python's `hmac`).
    const SHA1_HEX: &str = "01dc10d0c83e72ed246219cdd91669667fe2ca59";
    const SHA512_BASE64: &str =
        "Ee01WmF+mBNOhCASp5RMz1nBAlbLGCNXvX46QgE/8Hw3b4wUz1zBkj2iC1HWQlay+4678QCqZ6YTJvYf6oERvA==";

    fn verifier(
        algorithm: HmacAlgorithm,
        encoding: SignatureEncoding,
        prefix: Option<&str>,
        secrets: &str,
    ) -> Verifier {
        let spec = HmacSpec {
            header: "X-Signature".into(),
            algorithm,
            encoding,
            prefix: prefix.map(str::to_owned),
        };
        Verifier::Hmac(Configured::new(&spec), Secrets::parse(secrets).unwrap())
    }

    fn verify(verifier: &Verifier, value: &str, body: &[u8]) -> Result<Scheme, AuthError> {
        let headers = HashMap::from([("x-signature", value)]);
        let claim = verifier.claim(|name| headers.get(name).copied(), 0, 300)?;
        verifier.verify_claim(&claim, &[claim.prefix(), body].concat())
    }

    #[test]
    fn githubs_example_verifies_as_configured_hex_with_a_prefix() {
        let verifier = verifier(
            HmacAlgorithm::Sha256,
            SignatureEncoding::Hex,
            Some("sha256="),
            SECRET,
        );
        let value = format!("sha256={SHA256_HEX}");
        assert_eq!(verify(&verifier, &value, BODY), Ok(Scheme::Hmac));
        // Without its prefix, the value is not what the manifest says.
        assert_eq!(
            verify(&verifier, SHA256_HEX, BODY),
            Err(AuthError::NoMatchingSignature)
        );
    }

    #[test]
    fn sha1_hex_and_sha512_base64_verify() {
        let sha1 = verifier(HmacAlgorithm::Sha1, SignatureEncoding::Hex, None, SECRET);
        assert_eq!(verify(&sha1, SHA1_HEX, BODY), Ok(Scheme::Hmac));
        let sha512 = verifier(
            HmacAlgorithm::Sha512,
            SignatureEncoding::Base64,
            None,
            SECRET,
        );
        assert_eq!(verify(&sha512, SHA512_BASE64, BODY), Ok(Scheme::Hmac));
        // A MAC of another hash has another length: refused before the body.
        assert_eq!(
            verify(&sha512, SHA1_HEX, BODY),
            Err(AuthError::NoMatchingSignature)
        );
    }

    #[test]
    fn a_wrong_signature_or_a_missing_header_fails() {
        let verifier = verifier(HmacAlgorithm::Sha1, SignatureEncoding::Hex, None, SECRET);
        let wrong = SHA1_HEX.replace("ca59", "ca5a");
        assert_eq!(
            verify(&verifier, &wrong, BODY),
            Err(AuthError::NoMatchingSignature)
        );
        let none = HashMap::<&str, &str>::new();
        assert_eq!(
            verifier
                .claim(|name| none.get(name).copied(), 0, 300)
                .unwrap_err(),
            AuthError::MissingConfiguredHeader("x-signature".into())
        );
    }

    #[test]
    fn a_signature_by_the_second_of_two_secrets_passes() {
        let rotated = verifier(
            HmacAlgorithm::Sha256,
            SignatureEncoding::Hex,
            None,
            &format!("the-retired-secret-00000\n{SECRET}"),
        );
        assert_eq!(verify(&rotated, SHA256_HEX, BODY), Ok(Scheme::Hmac));
    }
}
