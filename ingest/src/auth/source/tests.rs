//! Named Standard Webhooks and Stripe sources: their published vectors under
//! both header spellings, and a route that takes its own scheme only.

use std::collections::HashMap;

use hookline_contract::pipeline::SecretKeyRef;

use super::*;
use crate::auth::{DEFAULT_TOLERANCE_SECS, sign};

// svix/svix-webhooks, python/tests/test_webhooks.py (`test_sign_function`,
// and `PayloadForTesting` for the svix-* header names); the same vector is
// VECTORS.md's second Standard Webhooks row.
const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SVIX_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SVIX_TS: i64 = 1_614_265_330;
const SVIX_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SVIX_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
/// `test_invalid_signature_raises_error` of the same file: one character off.
const SVIX_WRONG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";

// VECTORS.md, Standard Webhooks `v1`, first row.
const SECRET_1: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID_1: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const TS_1: i64 = 1_649_367_553;
const BODY_1: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const SIGNATURE_1: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

const STRIPE_SECRET: &str = "whsec_test_secret";
const STRIPE_TS: i64 = 1_700_000_000;
const STRIPE_BODY: &[u8] = br#"{"id":"evt_1"}"#;
/// HMAC-SHA256 computed independently (Python's `hmac`), as in the default
/// route's tests.
const STRIPE_V1: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

fn source(scheme: SourceScheme) -> SourceSpec {
    SourceSpec {
        name: "shop".into(),
        scheme,
        secret_ref: SecretKeyRef {
            name: "shop".into(),
            key: "secret".into(),
        },
        hmac: None,
    }
}

fn verify(
    verifier: &Verifier,
    headers: &[(&str, &str)],
    body: &[u8],
    now: i64,
) -> Result<Claim, AuthError> {
    let headers: HashMap<&str, &str> = headers.iter().copied().collect();
    let claim = verifier.claim(
        |name| headers.get(name).copied(),
        now,
        DEFAULT_TOLERANCE_SECS,
    )?;
    verifier.verify_claim(&claim, &[claim.prefix(), body].concat())?;
    Ok(claim)
}

fn svix_headers<'a>(id: &'a str, ts: &'a str, signature: &'a str) -> [(&'a str, &'a str); 3] {
    [
        (header::SVIX_ID, id),
        (header::SVIX_TIMESTAMP, ts),
        (header::SVIX_SIGNATURE, signature),
    ]
}

#[test]
fn svixs_published_vector_verifies_under_svix_header_names() {
    let verifier = Verifier::new(&source(SourceScheme::StandardWebhooks), SVIX_SECRET).unwrap();
    let ts = SVIX_TS.to_string();
    let claim = verify(
        &verifier,
        &svix_headers(SVIX_ID, &ts, SVIX_SIGNATURE),
        SVIX_BODY,
        SVIX_TS,
    )
    .unwrap();
    assert_eq!(claim.scheme(), Scheme::StandardWebhooks);
    assert_eq!(claim.message_id(), Some(SVIX_ID));
    assert_eq!(
        verify(
            &verifier,
            &svix_headers(SVIX_ID, &ts, SVIX_WRONG),
            SVIX_BODY,
            SVIX_TS
        )
        .unwrap_err(),
        AuthError::NoMatchingSignature
    );
}

#[test]
fn standard_webhooks_vector_verifies_on_a_named_source_and_a_stale_one_fails() {
    let verifier = Verifier::new(&source(SourceScheme::StandardWebhooks), SECRET_1).unwrap();
    let ts = TS_1.to_string();
    let headers = [
        (header::WEBHOOK_ID, ID_1),
        (header::WEBHOOK_TIMESTAMP, ts.as_str()),
        (header::WEBHOOK_SIGNATURE, SIGNATURE_1),
    ];
    let claim = verify(&verifier, &headers, BODY_1, TS_1).unwrap();
    assert_eq!(claim.message_id(), Some(ID_1));
    assert_eq!(
        verify(&verifier, &headers, BODY_1, TS_1 + 301).unwrap_err(),
        AuthError::TimestampOutOfTolerance { tolerance: 300 }
    );
    let ts = SVIX_TS.to_string();
    assert_eq!(
        verify(
            &verifier,
            &svix_headers(SVIX_ID, &ts, SVIX_SIGNATURE),
            SVIX_BODY,
            SVIX_TS
        )
        .unwrap_err(),
        AuthError::NoMatchingSignature,
        "another endpoint's secret"
    );
}

#[test]
fn a_standard_webhooks_signature_by_the_second_of_two_secrets_passes() {
    let verifier = Verifier::new(
        &source(SourceScheme::StandardWebhooks),
        &format!("{SECRET_1}\n\n{SVIX_SECRET}\n"),
    )
    .unwrap();
    let ts = SVIX_TS.to_string();
    assert!(
        verify(
            &verifier,
            &svix_headers(SVIX_ID, &ts, SVIX_SIGNATURE),
            SVIX_BODY,
            SVIX_TS
        )
        .is_ok()
    );
}

#[test]
fn a_named_stripe_source_verifies_refuses_stale_and_rotates() {
    let verifier = Verifier::new(
        &source(SourceScheme::Stripe),
        &format!("whsec_an_older_stripe_secret\n{STRIPE_SECRET}\n"),
    )
    .unwrap();
    let value = format!("t={STRIPE_TS},v1={STRIPE_V1}");
    let headers = [(header::STRIPE_SIGNATURE, value.as_str())];
    let claim = verify(&verifier, &headers, STRIPE_BODY, STRIPE_TS).unwrap();
    assert_eq!(claim.scheme(), Scheme::Stripe);
    assert_eq!(claim.message_id(), None);
    assert_eq!(
        verify(&verifier, &headers, STRIPE_BODY, STRIPE_TS + 301).unwrap_err(),
        AuthError::TimestampOutOfTolerance { tolerance: 300 }
    );
    assert_eq!(
        verify(&verifier, &headers, b"{}", STRIPE_TS).unwrap_err(),
        AuthError::NoMatchingSignature
    );
    assert_eq!(
        sign::stripe(STRIPE_SECRET, STRIPE_TS, STRIPE_BODY).as_deref(),
        Some(value.as_str())
    );
}

#[test]
fn a_source_takes_its_own_schemes_headers_only() {
    let stripe = Verifier::new(&source(SourceScheme::Stripe), STRIPE_SECRET).unwrap();
    let ts = TS_1.to_string();
    let standard = [
        (header::WEBHOOK_ID, ID_1),
        (header::WEBHOOK_TIMESTAMP, ts.as_str()),
        (header::WEBHOOK_SIGNATURE, SIGNATURE_1),
    ];
    assert_eq!(
        verify(&stripe, &standard, BODY_1, TS_1).unwrap_err(),
        AuthError::MissingHeader(header::STRIPE_SIGNATURE)
    );
    let standard_source = Verifier::new(&source(SourceScheme::StandardWebhooks), SECRET_1).unwrap();
    let value = format!("t={STRIPE_TS},v1={STRIPE_V1}");
    assert_eq!(
        verify(
            &standard_source,
            &[(header::STRIPE_SIGNATURE, value.as_str())],
            STRIPE_BODY,
            STRIPE_TS
        )
        .unwrap_err(),
        AuthError::MissingHeader(header::WEBHOOK_SIGNATURE)
    );
}

#[test]
fn a_secret_file_without_a_secret_is_refused() {
    for scheme in [
        SourceScheme::StandardWebhooks,
        SourceScheme::Stripe,
        SourceScheme::Github,
        SourceScheme::Slack,
    ] {
        assert_eq!(
            Verifier::new(&source(scheme), "\n\n").unwrap_err(),
            KeyError::NoSecrets,
            "{scheme:?}"
        );
    }
}
