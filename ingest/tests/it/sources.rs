//! Named sources over real HTTP against the real broker: each on
//! `/webhooks/{source}/{type}`, verified by its own scheme and secrets, its
//! records carrying its name.

use hookline_contract::{event_id, headers as h};
use hookline_ingest::auth::{header, sign};

use crate::broker::read;
use crate::harness::{Answer, Ingest, Options, TestSource, bytes, order};

const GITHUB_SECRET: &str = "gh-webhook-secret-0000000001";
const GITHUB_NEXT_SECRET: &str = "gh-webhook-secret-0000000002";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// A service with the sources `gh` (GitHub) and `chat` (Slack).
async fn start(github_secrets: &[&str]) -> Ingest {
    Ingest::start_with(Options {
        sources: vec![
            TestSource {
                name: "gh",
                scheme: "github",
                secrets: github_secrets.iter().map(|s| (*s).to_owned()).collect(),
            },
            TestSource {
                name: "chat",
                scheme: "slack",
                secrets: vec![SLACK_SECRET.to_owned()],
            },
        ],
        ..Options::default()
    })
    .await
}

async fn post_github(
    ingest: &Ingest,
    path: &str,
    secret: &str,
    body: &[u8],
    delivery: &str,
) -> Answer {
    let signature = sign::github(secret, body).unwrap();
    let headers = [
        (header::GITHUB_SIGNATURE, signature),
        (header::GITHUB_DELIVERY, delivery.to_owned()),
    ];
    ingest.post_with(path, &headers, body).await
}

async fn post_slack(ingest: &Ingest, path: &str, secret: &str, body: &[u8]) -> Answer {
    let now = chrono::Utc::now().timestamp();
    let headers = [
        (
            header::SLACK_SIGNATURE,
            sign::slack(secret, now, body).unwrap(),
        ),
        (header::SLACK_TIMESTAMP, now.to_string()),
    ];
    ingest.post_with(path, &headers, body).await
}

#[tokio::test]
async fn a_github_signed_webhook_to_its_source_is_produced_with_its_name() {
    let ingest = start(&[GITHUB_SECRET]).await;
    let delivery = uuid::Uuid::new_v4().to_string();

    let answer = post_github(
        &ingest,
        "/webhooks/gh/orders",
        GITHUB_SECRET,
        &bytes(&order("evt_gh", "u1")),
        &delivery,
    )
    .await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let expected_id = event_id("gh", "evt_gh").to_string();
    assert_eq!(answer.event_id(), expected_id);
    let record = read(&ingest.bootstrap, &ingest.orders, 1).await.remove(0);
    assert_eq!(record.headers[h::SOURCE], "gh");
    assert_eq!(record.headers[h::EVENT_ID], expected_id);
    // GitHub does not sign its delivery id: it is not carried.
    assert!(!record.headers.contains_key(h::MESSAGE_ID));
    ingest.stop().await;
}

#[tokio::test]
async fn a_slack_signed_webhook_to_its_source_is_produced_with_its_name() {
    let ingest = start(&[GITHUB_SECRET]).await;

    let answer = post_slack(
        &ingest,
        "/webhooks/chat/orders",
        SLACK_SECRET,
        &bytes(&order("evt_sl", "u2")),
    )
    .await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.event_id(), event_id("chat", "evt_sl").to_string());
    let record = read(&ingest.bootstrap, &ingest.orders, 1).await.remove(0);
    assert_eq!(record.headers[h::SOURCE], "chat");
    // Slack sends no delivery id.
    assert!(!record.headers.contains_key(h::MESSAGE_ID));
    ingest.stop().await;
}

#[tokio::test]
async fn the_default_route_keeps_its_sources_and_carries_the_webhook_id() {
    let ingest = start(&[GITHUB_SECRET]).await;

    let answer = ingest.post("orders", &bytes(&order("evt_def", "u3"))).await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(
        answer.event_id(),
        event_id("standard-webhooks", "evt_def").to_string()
    );
    let record = read(&ingest.bootstrap, &ingest.orders, 1).await.remove(0);
    assert_eq!(record.headers[h::SOURCE], "standard-webhooks");
    assert!(record.headers[h::MESSAGE_ID].starts_with("msg_"));
    ingest.stop().await;
}

#[tokio::test]
async fn wrong_signatures_are_401_and_an_unknown_source_404() {
    let ingest = start(&[GITHUB_SECRET]).await;
    let body = bytes(&order("evt_x", "u4"));

    let forged = post_github(
        &ingest,
        "/webhooks/gh/orders",
        "not-the-gh-secret-000",
        &body,
        "d1",
    )
    .await;
    assert_eq!(forged.status, 401, "{:?}", forged.body);
    assert_eq!(forged.body["code"], "invalid_signature");

    let forged = post_slack(
        &ingest,
        "/webhooks/chat/orders",
        "not-the-slack-secret-0",
        &body,
    )
    .await;
    assert_eq!(forged.status, 401, "{:?}", forged.body);

    // A valid GitHub signature on Slack's route: that source's scheme only.
    let elsewhere = post_github(&ingest, "/webhooks/chat/orders", GITHUB_SECRET, &body, "d2").await;
    assert_eq!(elsewhere.status, 401, "{:?}", elsewhere.body);

    let unknown = post_github(
        &ingest,
        "/webhooks/gitlab/orders",
        GITHUB_SECRET,
        &body,
        "d3",
    )
    .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);
    assert_eq!(unknown.body["code"], "unknown_source");

    let no_type = post_github(&ingest, "/webhooks/gh/refunds", GITHUB_SECRET, &body, "d4").await;
    assert_eq!(no_type.status, 404, "{:?}", no_type.body);
    assert_eq!(no_type.body["code"], "unknown_event_type");

    let metrics = ingest.metrics().await;
    assert!(
        metrics.contains(r#"hookline_ingest_requests_total{event_type="unknown",status="404"} 2"#),
        "{metrics}"
    );
    ingest.stop().await;
}

#[tokio::test]
async fn a_second_secret_line_is_accepted_beside_the_first_after_a_restart() {
    let ingest = start(&[GITHUB_SECRET]).await;
    let body = bytes(&order("evt_rot", "u5"));
    let next = post_github(
        &ingest,
        "/webhooks/gh/orders",
        GITHUB_NEXT_SECRET,
        &body,
        "r1",
    )
    .await;
    assert_eq!(next.status, 401, "{:?}", next.body);

    let file = TestSource::file(&ingest.secrets_dir, "gh");
    std::fs::write(&file, format!("{GITHUB_SECRET}\n\n{GITHUB_NEXT_SECRET}\n")).unwrap();
    let ingest = ingest.restart().await;

    for secret in [GITHUB_SECRET, GITHUB_NEXT_SECRET] {
        let answer = post_github(&ingest, "/webhooks/gh/orders", secret, &body, "r2").await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    ingest.stop().await;
}

/// A GitHub `issues` event as GitHub sends it: no event id in the payload,
/// the issue's update time in RFC 3339.
fn issue_event(action: &str) -> serde_json::Value {
    serde_json::json!({
        "action": action,
        "issue": {"id": 1_001, "number": 7, "state": "open",
                  "updated_at": chrono::Utc::now().to_rfc3339()},
        "repository": {"id": 42, "full_name": "octo/repo"}
    })
}

#[tokio::test]
async fn a_declared_github_delivery_is_one_event_whatever_unsigned_delivery_id_it_carries() {
    let ingest = Ingest::start_with(Options {
        sources: vec![TestSource {
            name: "gh",
            scheme: "github",
            secrets: vec![GITHUB_SECRET.to_owned()],
        }],
        issues: true,
        ..Options::default()
    })
    .await;
    let issues = format!("{}.issues", ingest.orders);
    let body = bytes(&issue_event("opened"));

    // A redelivery, and a replay of the same signed body under an id of the
    // caller's choosing: X-GitHub-Delivery is not signed, so neither may make
    // the one delivery a second event.
    let mut ids = Vec::new();
    for delivery in [uuid::Uuid::new_v4().to_string(), "forged-1".to_owned()] {
        let answer = post_github(
            &ingest,
            "/webhooks/gh/issues",
            GITHUB_SECRET,
            &body,
            &delivery,
        )
        .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        ids.push(answer.event_id());
    }
    let signature = sign::github(GITHUB_SECRET, &body).unwrap();
    let without_id = ingest
        .post_with(
            "/webhooks/gh/issues",
            &[(header::GITHUB_SIGNATURE, signature)],
            &body,
        )
        .await;
    assert_eq!(without_id.status, 202, "{:?}", without_id.body);
    ids.push(without_id.event_id());
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let expected = event_id("gh", &format!("sha256:{digest}")).to_string();
    assert_eq!(ids, vec![expected.clone(); 3]);

    let edited = bytes(&issue_event("edited"));
    let answer = post_github(
        &ingest,
        "/webhooks/gh/issues",
        GITHUB_SECRET,
        &edited,
        "d-2",
    )
    .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_ne!(answer.event_id(), expected, "another body is another event");
    let records = read(&ingest.bootstrap, &issues, 4).await;
    assert!(records.iter().all(|r| r.key.as_deref() == Some("42")));
    ingest.stop().await;
}
