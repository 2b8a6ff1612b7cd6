//! The published vectors of the Standard Webhooks reference libraries and the
//! negative cases they test, and Stripe's scheme.

use std::collections::HashMap;

use super::*;

const SECRET_1: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID_1: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const TS_1: i64 = 1_649_367_553;
const BODY_1: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const SIG_1: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

const SECRET_2: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID_2: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS_2: i64 = 1_614_265_330;
const BODY_2: &[u8] = br#"{"test": 2432232314}"#;
const SIG_2: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const PUBLIC_KEY: &str = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g=";
const SIG_ED25519: &str =
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";

const STRIPE_SECRET: &str = "whsec_test_secret";
const STRIPE_TS: i64 = 1_700_000_000;
const STRIPE_BODY: &[u8] = br#"{"id":"evt_1"}"#;
/// HMAC-SHA256 computed independently (Python's `hmac`).
const STRIPE_V1: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

fn standard_keys(lines: &str) -> Keys {
    let mut keys = Keys::default();
    keys.add_standard_webhooks(lines).unwrap();
    keys
}

fn stripe_keys(lines: &str) -> Keys {
    let mut keys = Keys::default();
    keys.add_stripe(lines).unwrap();
    keys
}

fn standard_headers(id: &str, ts: &str, sig: &str) -> HashMap<&'static str, String> {
    HashMap::from([
        (header::WEBHOOK_ID, id.to_owned()),
        (header::WEBHOOK_TIMESTAMP, ts.to_owned()),
        (header::WEBHOOK_SIGNATURE, sig.to_owned()),
    ])
}

fn verify(
    keys: &Keys,
    headers: &HashMap<&'static str, String>,
    body: &[u8],
    now: i64,
) -> Result<Scheme, AuthError> {
    keys.verify(
        |name| headers.get(name).map(String::as_str),
        body,
        now,
        DEFAULT_TOLERANCE_SECS,
    )
}

#[test]
fn published_v1_vectors_verify() {
    let h1 = standard_headers(ID_1, &TS_1.to_string(), SIG_1);
    assert_eq!(
        verify(&standard_keys(SECRET_1), &h1, BODY_1, TS_1),
        Ok(Scheme::StandardWebhooks)
    );
    let h2 = standard_headers(ID_2, &TS_2.to_string(), SIG_2);
    assert_eq!(
        verify(&standard_keys(SECRET_2), &h2, BODY_2, TS_2),
        Ok(Scheme::StandardWebhooks)
    );
}

#[test]
fn published_v1a_ed25519_vector_verifies() {
    let headers = standard_headers(ID_2, &TS_2.to_string(), SIG_ED25519);
    assert_eq!(
        verify(&standard_keys(PUBLIC_KEY), &headers, BODY_2, TS_2),
        Ok(Scheme::StandardWebhooks)
    );
}

#[test]
fn ed25519_signature_over_a_tampered_body_fails() {
    let headers = standard_headers(ID_2, &TS_2.to_string(), SIG_ED25519);
    assert_eq!(
        verify(
            &standard_keys(PUBLIC_KEY),
            &headers,
            br#"{"test": 2432232315}"#,
            TS_2
        ),
        Err(AuthError::NoMatchingSignature)
    );
}

#[test]
fn signer_reproduces_the_published_signature() {
    assert_eq!(
        sign::standard_v1(SECRET_1, ID_1, TS_1, BODY_1).as_deref(),
        Some(SIG_1)
    );
}

#[test]
fn tampered_body_fails() {
    let headers = standard_headers(ID_1, &TS_1.to_string(), SIG_1);
    let tampered = br#"{"email":"test@example.com","username":"test_user2"}"#;
    assert_eq!(
        verify(&standard_keys(SECRET_1), &headers, tampered, TS_1),
        Err(AuthError::NoMatchingSignature)
    );
}

#[test]
fn empty_v1_signature_fails() {
    let headers = standard_headers(ID_1, &TS_1.to_string(), "v1,");
    assert_eq!(
        verify(&standard_keys(SECRET_1), &headers, BODY_1, TS_1),
        Err(AuthError::NoMatchingSignature)
    );
}

#[test]
fn truncated_signature_fails() {
    for cut in [4, 8, 20, SIG_1.len() - 1] {
        let headers = standard_headers(ID_1, &TS_1.to_string(), &SIG_1[..cut]);
        assert_eq!(
            verify(&standard_keys(SECRET_1), &headers, BODY_1, TS_1),
            Err(AuthError::NoMatchingSignature),
            "cut at {cut}"
        );
    }
}

#[test]
fn prefix_of_a_valid_mac_fails_even_when_it_decodes() {
    // 24 bytes of the real 32-byte MAC, validly encoded: only a length check
    // refuses it.
    let mac = BASE64.decode(&SIG_1[3..]).unwrap();
    let short = format!("v1,{}", BASE64.encode(&mac[..24]));
    let headers = standard_headers(ID_1, &TS_1.to_string(), &short);
    assert_eq!(
        verify(&standard_keys(SECRET_1), &headers, BODY_1, TS_1),
        Err(AuthError::NoMatchingSignature)
    );
}

#[test]
fn one_valid_signature_among_several_passes() {
    let several =
        format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc {SIG_1} v1a,bm9wZQ==");
    let headers = standard_headers(ID_1, &TS_1.to_string(), &several);
    assert_eq!(
        verify(&standard_keys(SECRET_1), &headers, BODY_1, TS_1),
        Ok(Scheme::StandardWebhooks)
    );
}

#[test]
fn rotated_secrets_each_verify() {
    let keys = standard_keys(&format!("{SECRET_2}\n\n{SECRET_1}\n{PUBLIC_KEY}\n"));
    let h1 = standard_headers(ID_1, &TS_1.to_string(), SIG_1);
    let h2 = standard_headers(ID_2, &TS_2.to_string(), SIG_2);
    assert!(verify(&keys, &h1, BODY_1, TS_1).is_ok());
    assert!(verify(&keys, &h2, BODY_2, TS_2).is_ok());
}

#[test]
fn timestamps_301_seconds_away_fail_and_300_pass() {
    let keys = standard_keys(SECRET_1);
    let headers = standard_headers(ID_1, &TS_1.to_string(), SIG_1);
    let out = Err(AuthError::TimestampOutOfTolerance { tolerance: 300 });
    assert_eq!(
        verify(&keys, &headers, BODY_1, TS_1 + 301),
        out,
        "301 s old"
    );
    assert_eq!(
        verify(&keys, &headers, BODY_1, TS_1 - 301),
        out,
        "301 s ahead"
    );
    assert!(verify(&keys, &headers, BODY_1, TS_1 + 300).is_ok());
    assert!(verify(&keys, &headers, BODY_1, TS_1 - 300).is_ok());
}

#[test]
fn each_missing_header_fails() {
    let keys = standard_keys(SECRET_1);
    for missing in [
        header::WEBHOOK_ID,
        header::WEBHOOK_TIMESTAMP,
        header::WEBHOOK_SIGNATURE,
    ] {
        let mut headers = standard_headers(ID_1, &TS_1.to_string(), SIG_1);
        headers.remove(missing);
        assert_eq!(
            verify(&keys, &headers, BODY_1, TS_1),
            Err(AuthError::MissingHeader(missing)),
            "{missing}"
        );
    }
    assert_eq!(
        verify(&keys, &HashMap::new(), BODY_1, TS_1),
        Err(AuthError::MissingSignature)
    );
}

#[test]
fn non_numeric_timestamp_fails() {
    let headers = standard_headers(ID_1, "1649367553a", SIG_1);
    assert_eq!(
        verify(&standard_keys(SECRET_1), &headers, BODY_1, TS_1),
        Err(AuthError::InvalidTimestamp)
    );
}

#[test]
fn wrong_secret_fails() {
    let headers = standard_headers(ID_1, &TS_1.to_string(), SIG_1);
    assert_eq!(
        verify(&standard_keys(SECRET_2), &headers, BODY_1, TS_1),
        Err(AuthError::NoMatchingSignature)
    );
}

#[test]
fn unusable_secret_lines_are_refused_with_their_line() {
    let mut keys = Keys::default();
    assert_eq!(
        keys.add_standard_webhooks(&format!("{SECRET_1}\nsecret")),
        Err(KeyError::UnknownPrefix { line: 2 })
    );
    assert_eq!(
        keys.add_standard_webhooks("whsec_%%%"),
        Err(KeyError::NotBase64 { line: 1 })
    );
    assert_eq!(
        keys.add_standard_webhooks("whpk_AAAA"),
        Err(KeyError::BadPublicKey { line: 1 })
    );
}

fn stripe_headers(value: &str) -> HashMap<&'static str, String> {
    HashMap::from([(header::STRIPE_SIGNATURE, value.to_owned())])
}

#[test]
fn stripe_signature_verifies() {
    let headers = stripe_headers(&format!("t={STRIPE_TS},v1={STRIPE_V1}"));
    assert_eq!(
        verify(
            &stripe_keys(STRIPE_SECRET),
            &headers,
            STRIPE_BODY,
            STRIPE_TS
        ),
        Ok(Scheme::Stripe)
    );
    assert_eq!(
        sign::stripe(STRIPE_SECRET, STRIPE_TS, STRIPE_BODY),
        Some(format!("t={STRIPE_TS},v1={STRIPE_V1}"))
    );
}

#[test]
fn stripe_any_v1_may_match() {
    let headers = stripe_headers(&format!(
        "t={STRIPE_TS},v1={},v1={STRIPE_V1},v0=abc",
        "0".repeat(64)
    ));
    assert!(
        verify(
            &stripe_keys(STRIPE_SECRET),
            &headers,
            STRIPE_BODY,
            STRIPE_TS
        )
        .is_ok()
    );
}

#[test]
fn stripe_tampered_body_fails() {
    let headers = stripe_headers(&format!("t={STRIPE_TS},v1={STRIPE_V1}"));
    assert_eq!(
        verify(
            &stripe_keys(STRIPE_SECRET),
            &headers,
            br#"{"id":"evt_2"}"#,
            STRIPE_TS
        ),
        Err(AuthError::NoMatchingSignature)
    );
}

#[test]
fn stripe_v0_only_fails() {
    let headers = stripe_headers(&format!("t={STRIPE_TS},v0={STRIPE_V1}"));
    assert_eq!(
        verify(
            &stripe_keys(STRIPE_SECRET),
            &headers,
            STRIPE_BODY,
            STRIPE_TS
        ),
        Err(AuthError::NoMatchingSignature)
    );
}

#[test]
fn stripe_stale_and_missing_timestamps_fail() {
    let keys = stripe_keys(STRIPE_SECRET);
    let headers = stripe_headers(&format!("t={STRIPE_TS},v1={STRIPE_V1}"));
    assert_eq!(
        verify(&keys, &headers, STRIPE_BODY, STRIPE_TS + 301),
        Err(AuthError::TimestampOutOfTolerance { tolerance: 300 })
    );
    let headers = stripe_headers(&format!("v1={STRIPE_V1}"));
    assert_eq!(
        verify(&keys, &headers, STRIPE_BODY, STRIPE_TS),
        Err(AuthError::InvalidTimestamp)
    );
}

#[test]
fn a_scheme_without_secrets_refuses_everything() {
    let headers = stripe_headers(&format!("t={STRIPE_TS},v1={STRIPE_V1}"));
    assert_eq!(
        verify(&standard_keys(SECRET_1), &headers, STRIPE_BODY, STRIPE_TS),
        Err(AuthError::SchemeNotConfigured("stripe"))
    );
}

#[test]
fn more_signatures_than_the_cap_are_refused_before_the_body() {
    let keys = standard_keys(SECRET_1);
    let many = [SIG_1; MAX_SIGNATURES + 1].join(" ");
    let headers = standard_headers(ID_1, &TS_1.to_string(), &many);
    let claim = keys.claim(
        |name| headers.get(name).map(String::as_str),
        TS_1,
        DEFAULT_TOLERANCE_SECS,
    );
    assert_eq!(
        claim.err(),
        Some(AuthError::TooManySignatures {
            max: MAX_SIGNATURES
        })
    );
    // At the cap, the valid one among them is found.
    let enough = [SIG_1; MAX_SIGNATURES].join(" ");
    let headers = standard_headers(ID_1, &TS_1.to_string(), &enough);
    assert_eq!(
        verify(&keys, &headers, BODY_1, TS_1),
        Ok(Scheme::StandardWebhooks)
    );
}

#[test]
fn stripe_headers_with_more_v1_than_the_cap_are_refused() {
    let keys = stripe_keys(STRIPE_SECRET);
    let many: Vec<String> = (0..=MAX_SIGNATURES)
        .map(|_| format!("v1={STRIPE_V1}"))
        .collect();
    let headers = stripe_headers(&format!("t={STRIPE_TS},{}", many.join(",")));
    assert_eq!(
        verify(&keys, &headers, STRIPE_BODY, STRIPE_TS),
        Err(AuthError::TooManySignatures {
            max: MAX_SIGNATURES
        })
    );
}

/// `count` distinct valid ed25519 public keys, as `whpk_` lines.
fn public_keys(count: u8) -> String {
    (1..=count)
        .map(|seed| {
            let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
            format!("whpk_{}\n", BASE64.encode(key.as_bytes()))
        })
        .collect()
}

#[test]
fn ed25519_verifications_per_request_are_capped_by_signatures_times_keys() {
    // Two keys: at most MAX_ED25519_VERIFICATIONS / 2 v1a signatures.
    let keys = standard_keys(&format!("{PUBLIC_KEY}\n{}", public_keys(1)));
    let allowed = MAX_ED25519_VERIFICATIONS / 2;
    let over = vec![SIG_ED25519; allowed + 1].join(" ");
    let headers = standard_headers(ID_2, &TS_2.to_string(), &over);
    assert_eq!(
        verify(&keys, &headers, BODY_2, TS_2),
        Err(AuthError::TooManyEd25519Signatures { max: allowed })
    );
    let at_cap = vec![SIG_ED25519; allowed].join(" ");
    let headers = standard_headers(ID_2, &TS_2.to_string(), &at_cap);
    assert_eq!(
        verify(&keys, &headers, BODY_2, TS_2),
        Ok(Scheme::StandardWebhooks)
    );
}

#[test]
fn more_public_keys_than_verifications_allowed_are_refused_at_load() {
    let mut keys = Keys::default();
    let lines = public_keys(u8::try_from(MAX_ED25519_VERIFICATIONS).unwrap() + 1);
    assert_eq!(
        keys.add_standard_webhooks(&lines),
        Err(KeyError::TooManyPublicKeys {
            line: MAX_ED25519_VERIFICATIONS + 1
        })
    );
}

#[test]
fn signatures_that_could_never_match_are_refused_before_the_body() {
    let keys = standard_keys(SECRET_1);
    // Not base64, the wrong length, a scheme with no key configured.
    let hopeless = "v1,!!! v1,AAAA v1a,bm9wZQ== v9,abc";
    let headers = standard_headers(ID_1, &TS_1.to_string(), hopeless);
    let claim = keys.claim(
        |name| headers.get(name).map(String::as_str),
        TS_1,
        DEFAULT_TOLERANCE_SECS,
    );
    assert_eq!(claim.err(), Some(AuthError::NoMatchingSignature));
}

#[test]
fn a_claim_verifies_over_its_prefix_and_the_body_in_one_buffer() {
    let keys = standard_keys(SECRET_1);
    let headers = standard_headers(ID_1, &TS_1.to_string(), SIG_1);
    let claim = keys
        .claim(
            |name| headers.get(name).map(String::as_str),
            TS_1,
            DEFAULT_TOLERANCE_SECS,
        )
        .unwrap();
    assert_eq!(claim.prefix(), format!("{ID_1}.{TS_1}.").as_bytes());
    assert!(!claim.has_ed25519());
    let signed = [claim.prefix(), BODY_1].concat();
    assert_eq!(
        keys.verify_claim(&claim, &signed),
        Ok(Scheme::StandardWebhooks)
    );
    assert_eq!(
        keys.verify_claim(&claim, BODY_1),
        Err(AuthError::NoMatchingSignature)
    );
}
