//! Each row of the answers table, over real HTTP against the real broker.

use hookline_contract::pipeline::InvalidPolicy;
use hookline_contract::{event_id, headers as h, partition_for};
use serde_json::json;

use crate::broker::{depth, read};
use crate::harness::{Ingest, Options, PARTITIONS, bytes, order};

#[tokio::test]
async fn valid_webhook_is_acked_and_produced_byte_for_byte_with_its_envelope() {
    let ingest = Ingest::start().await;
    // Odd spacing and key order: the value must be the provider's bytes, not a
    // re-serialisation.
    let body = br#"{"type":"order.paid", "id":"evt_1","created":1700000000,
        "data":{"user_id":"user_42","order_id":"o1","amount":5,"currency":"usd","status":"paid"}}"#;

    let answer = ingest.post("orders", body).await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let expected_id = event_id("standard-webhooks", "evt_1").to_string();
    assert_eq!(answer.body, json!({"event_id": expected_id}));
    let record = read(&ingest.bootstrap, &ingest.orders, 1).await.remove(0);
    assert_eq!(record.value, body);
    assert_eq!(record.key.as_deref(), Some("user_42"));
    assert_eq!(
        record.partition as u32,
        partition_for(b"user_42", PARTITIONS as u32).unwrap()
    );
    assert_eq!(record.headers[h::EVENT_ID], expected_id);
    assert_eq!(record.headers[h::EVENT_TYPE], "order.paid");
    assert_eq!(record.headers[h::SOURCE], "standard-webhooks");
    assert_eq!(record.headers[h::PARTITION_COUNT], PARTITIONS.to_string());
    assert_eq!(
        record.headers[h::SCHEMA],
        "https://hookline.dev/schemas/orders/v1.json"
    );
    let received = chrono::DateTime::parse_from_rfc3339(&record.headers[h::RECEIVED_AT]).unwrap();
    assert!((chrono::Utc::now() - received.to_utc()).num_seconds().abs() < 60);
    ingest.stop().await;
}

#[tokio::test]
async fn dispute_goes_to_the_disputes_topic() {
    let ingest = Ingest::start().await;
    let body = bytes(&json!({
        "id": "evt_d1", "type": "dispute.created", "created": 1_700_000_000,
        "data": {"user_id": "u3", "dispute_id": "dp_1", "order_id": "o1",
                 "amount": 900, "currency": "gbp", "status": "needs_response"}
    }));

    let answer = ingest.post("disputes", &body).await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let record = read(&ingest.bootstrap, &ingest.disputes, 1).await.remove(0);
    assert_eq!(record.headers[h::EVENT_TYPE], "dispute.created");
    assert_eq!(record.headers[h::PARTITION_COUNT], "2");
    ingest.stop().await;
}

#[tokio::test]
async fn stripe_signed_webhook_is_acked_with_its_source() {
    let ingest = Ingest::start().await;

    let answer = ingest
        .post_stripe("orders", &bytes(&order("evt_s", "u1")))
        .await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.event_id(), event_id("stripe", "evt_s").to_string());
    let record = read(&ingest.bootstrap, &ingest.orders, 1).await.remove(0);
    assert_eq!(record.headers[h::SOURCE], "stripe");
    ingest.stop().await;
}

#[tokio::test]
async fn provider_retry_of_the_same_event_gets_the_same_event_id() {
    let ingest = Ingest::start().await;
    let body = bytes(&order("evt_retry", "u7"));

    let first = ingest.post("orders", &body).await;
    let retry = ingest.post("orders", &body).await;

    assert_eq!((first.status, retry.status), (202, 202));
    assert_eq!(first.event_id(), retry.event_id());
    let records = read(&ingest.bootstrap, &ingest.orders, 2).await;
    assert_eq!(
        records[0].headers[h::EVENT_ID],
        records[1].headers[h::EVENT_ID]
    );
    ingest.stop().await;
}

#[tokio::test]
async fn schema_invalid_webhook_is_quarantined_with_its_reason() {
    let ingest = Ingest::start().await;
    let mut payload = order("evt_bad", "u9");
    payload["data"]["currency"] = json!("EURO");
    let body = bytes(&payload);

    let answer = ingest.post("orders", &body).await;

    assert_eq!(answer.status, 202);
    assert_eq!(answer.body["quarantined"], json!(true));
    assert_eq!(answer.body["reason"], json!("schema_invalid"));
    assert_eq!(
        answer.event_id(),
        event_id("standard-webhooks", "evt_bad").to_string()
    );
    let record = read(&ingest.bootstrap, &format!("{}.DLQ", ingest.orders), 1)
        .await
        .remove(0);
    assert_eq!(record.value, body);
    assert_eq!(record.key.as_deref(), Some("u9"));
    assert_eq!(record.headers[h::dlq::REASON], "schema_invalid");
    assert_eq!(record.headers[h::dlq::STAGE], "ingest");
    assert_eq!(record.headers[h::dlq::TOPIC], ingest.orders);
    assert!(record.headers[h::dlq::MESSAGE].contains("/data/currency"));
    assert!(record.headers.contains_key(h::dlq::TIMESTAMP));
    assert_eq!(record.headers[h::EVENT_ID], answer.event_id());
    assert_eq!(
        depth(&ingest.bootstrap, &ingest.orders, PARTITIONS).await,
        0
    );
    ingest.stop().await;
}

/// An event time in milliseconds, and an amount a shard cannot hold: each
/// quarantined at the edge with its own reason, never produced to the topic
/// the workers read (where they used to become a frozen order, or a dead
/// letter after a 202).
#[tokio::test]
async fn event_times_and_amounts_the_worker_could_not_store_are_quarantined() {
    let ingest = Ingest::start().await;
    let mut millis = order("evt_ms", "u9");
    millis["created"] = json!(1_700_000_000_000_i64);
    let mut huge = order("evt_huge", "u9");
    huge["data"]["amount"] = json!(u64::MAX);

    let answers = [
        ingest.post("orders", &bytes(&millis)).await,
        ingest.post("orders", &bytes(&huge)).await,
    ];

    let reasons: Vec<_> = answers
        .iter()
        .map(|a| {
            (
                a.status,
                a.body["quarantined"].clone(),
                a.body["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (202, json!(true), json!("event_time_out_of_range")),
            (202, json!(true), json!("schema_invalid")),
        ]
    );
    let records = read(&ingest.bootstrap, &format!("{}.DLQ", ingest.orders), 2).await;
    assert!(
        records[0].headers[h::dlq::MESSAGE].contains("milliseconds"),
        "{}",
        records[0].headers[h::dlq::MESSAGE]
    );
    assert_eq!(
        depth(&ingest.bootstrap, &ingest.orders, PARTITIONS).await,
        0
    );
    ingest.stop().await;
}

#[tokio::test]
async fn webhook_without_user_id_is_quarantined_without_a_key() {
    let ingest = Ingest::start().await;
    let mut payload = order("evt_nouser", "x");
    payload["data"].as_object_mut().unwrap().remove("user_id");

    let answer = ingest.post("orders", &bytes(&payload)).await;

    assert_eq!(answer.status, 202);
    assert_eq!(answer.body["reason"], json!("missing_user_id"));
    let record = read(&ingest.bootstrap, &format!("{}.DLQ", ingest.orders), 1)
        .await
        .remove(0);
    assert_eq!(record.key, None);
    assert_eq!(record.headers[h::dlq::REASON], "missing_user_id");
    ingest.stop().await;
}

#[tokio::test]
async fn non_json_body_is_quarantined_with_a_stable_event_id() {
    let ingest = Ingest::start().await;

    let first = ingest.post("orders", b"not json").await;
    let retry = ingest.post("orders", b"not json").await;

    assert_eq!((first.status, retry.status), (202, 202));
    assert_eq!(first.body["reason"], json!("invalid_json"));
    assert_eq!(first.event_id(), retry.event_id());
    let records = read(&ingest.bootstrap, &format!("{}.DLQ", ingest.orders), 2).await;
    for record in &records {
        assert_eq!(record.value, b"not json");
        assert_eq!(record.key, None);
        assert_eq!(record.headers[h::dlq::REASON], "invalid_json");
        assert_eq!(record.headers[h::EVENT_ID], first.event_id());
    }
    assert_eq!(
        depth(&ingest.bootstrap, &ingest.orders, PARTITIONS).await,
        0
    );
    ingest.stop().await;
}

#[tokio::test]
async fn body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_413() {
    let limit = 2048;
    let ingest = Ingest::start_with(Options {
        max_body_bytes: Some(limit),
        ..Options::default()
    })
    .await;
    let sized = |size: usize| {
        let mut payload = order("evt_size", "u1");
        payload["pad"] = json!("");
        let bare = bytes(&payload).len();
        payload["pad"] = json!("x".repeat(size - bare));
        let body = bytes(&payload);
        assert_eq!(body.len(), size);
        body
    };

    let exact = ingest.post("orders", &sized(limit)).await;
    let over = ingest.post("orders", &sized(limit + 1)).await;

    assert_eq!(exact.status, 202, "{:?}", exact.body);
    assert_eq!(over.status, 413);
    ingest.stop().await;
}

#[tokio::test]
async fn stripe_signature_that_does_not_match_is_401_over_http() {
    let ingest = Ingest::start().await;
    let body = bytes(&order("evt_st", "u1"));
    let now = chrono::Utc::now().timestamp();
    let url = format!("{}/webhooks/orders", ingest.url);

    let v0_only = crate::harness::Answer::of(
        ingest
            .http()
            .post(&url)
            .header("stripe-signature", format!("t={now},v0={}", "a".repeat(64)))
            .body(body.clone()),
    )
    .await;
    let forged = crate::harness::Answer::of(
        ingest
            .http()
            .post(&url)
            .header("stripe-signature", format!("t={now},v1={}", "b".repeat(64)))
            .body(body),
    )
    .await;

    assert_eq!(
        (v0_only.status, v0_only.body["code"].clone()),
        (401, json!("invalid_signature"))
    );
    assert_eq!(
        (forged.status, forged.body["code"].clone()),
        (401, json!("invalid_signature"))
    );
    ingest.stop().await;
}

#[tokio::test]
async fn topic_the_broker_does_not_have_is_503_not_202() {
    let ingest = Ingest::start_with(Options {
        create_topics: false,
        ..Options::default()
    })
    .await;

    let answer = ingest.post("orders", &bytes(&order("evt_nt", "u1"))).await;
    let ready = ingest
        .http()
        .get(format!("{}/readyz", ingest.url))
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert!(answer.retry_after.is_some());
    assert_eq!(ready.status(), 503);
    ingest.stop().await;
}

/// Opens a request with plausible Standard Webhooks headers (a fresh
/// timestamp, a forged signature) that declares `length` body bytes and sends
/// one; the caller holds it open or reads its answer.
async fn slow_forged_request(base: &str, length: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let head = format!(
        "POST /webhooks/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\
         webhook-id: msg_forged\r\nwebhook-timestamp: {now}\r\n\
         webhook-signature: v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow
}

/// The answer to a request on `stream`: its head and JSON body, read until
/// the body's closing brace or the server closes (it need not close: the
/// request's body was never finished).
async fn answer_of(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + crate::broker::DEADLINE;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .expect("no answer to the slow request")
            .unwrap();
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let complete = text
            .split_once("\r\n\r\n")
            .is_some_and(|(_, body)| body.ends_with('}'));
        if read == 0 || complete {
            return text;
        }
    }
}

#[tokio::test]
async fn a_slow_unauthenticated_body_never_holds_a_produce_slot() {
    let ingest = Ingest::start_with(Options {
        max_concurrent_requests: 1,
        ..Options::default()
    })
    .await;
    // Before the fix, this request held the only slot until the request
    // timeout: every webhook meanwhile was 503.
    let slow = slow_forged_request(&ingest.url, 100).await;
    ingest.wait_reading(1).await;

    let answer = ingest.post("orders", &bytes(&order("evt_c", "u1"))).await;

    assert_eq!(answer.status, 202, "{:?}", answer.body);
    drop(slow);
    ingest.stop().await;
}

#[tokio::test]
async fn a_spent_read_budget_is_503_at_once_and_stalled_bodies_are_cut_with_408() {
    let ingest = Ingest::start_with(Options {
        max_body_bytes: Some(1024),
        // The least allowed: one body of the largest size and its prefix.
        max_reading_bytes: 1024 + 8 * 1024,
        body_timeout: std::time::Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    // Each holds a read slot (4 KiB) and its first bytes: two spend the budget.
    let first = slow_forged_request(&ingest.url, 100).await;
    let second = slow_forged_request(&ingest.url, 100).await;
    ingest.wait_reading(2).await;

    let refused = ingest.post("orders", &bytes(&order("evt_b1", "u1"))).await;

    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(refused.retry_after.is_some());
    for slow in [first, second] {
        let answer = answer_of(slow).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
    }
    ingest.wait_reading_at_most(0).await;
    let accepted = ingest.post("orders", &bytes(&order("evt_b2", "u1"))).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    ingest.stop().await;
}

#[tokio::test]
async fn a_header_with_too_many_signatures_is_401_before_its_body_is_read() {
    let ingest = Ingest::start().await;
    let now = chrono::Utc::now().timestamp().to_string();
    let signatures = ["v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="; 9].join(" ");

    let answer = crate::harness::Answer::of(
        ingest
            .http()
            .post(format!("{}/webhooks/orders", ingest.url))
            .header("webhook-id", "msg_many")
            .header("webhook-timestamp", now)
            .header("webhook-signature", signatures)
            .body(bytes(&order("evt_many", "u1"))),
    )
    .await;

    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.body,
        json!({"code": "too_many_signatures",
               "detail": "the signature header carries more than 8 signatures"})
    );
    ingest.stop().await;
}

#[tokio::test]
async fn invalid_webhook_under_reject_policy_is_422_and_reaches_no_topic() {
    let ingest = Ingest::start_with(Options {
        policy: InvalidPolicy::Reject,
        ..Options::default()
    })
    .await;
    let mut payload = order("evt_r", "u1");
    payload["created"] = json!("yesterday");

    let answer = ingest.post("orders", &bytes(&payload)).await;

    assert_eq!(answer.status, 422);
    assert_eq!(answer.body["code"], json!("schema_invalid"));
    assert!(answer.body["detail"].as_str().unwrap().contains("/created"));
    assert_eq!(
        depth(&ingest.bootstrap, &format!("{}.DLQ", ingest.orders), 1).await,
        0
    );
    assert_eq!(
        depth(&ingest.bootstrap, &ingest.orders, PARTITIONS).await,
        0
    );
    ingest.stop().await;
}

#[tokio::test]
async fn bad_or_missing_signature_and_stale_timestamp_are_401_and_produce_nothing() {
    let ingest = Ingest::start().await;
    let body = bytes(&order("evt_a", "u1"));
    let url = format!("{}/webhooks/orders", ingest.url);

    let unsigned = crate::harness::Answer::of(ingest.http().post(&url).body(body.clone())).await;
    let forged = crate::harness::Answer::of(
        ingest
            .http()
            .post(&url)
            .header("webhook-id", "msg_1")
            .header(
                "webhook-timestamp",
                chrono::Utc::now().timestamp().to_string(),
            )
            .header(
                "webhook-signature",
                "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            )
            .body(body.clone()),
    )
    .await;
    let stale = ingest
        .post_signed_at("orders", &body, chrono::Utc::now().timestamp() - 301)
        .await;

    assert_eq!(
        (unsigned.status, unsigned.body["code"].clone()),
        (401, json!("missing_signature"))
    );
    assert_eq!(
        (forged.status, forged.body["code"].clone()),
        (401, json!("invalid_signature"))
    );
    assert_eq!(
        (stale.status, stale.body["code"].clone()),
        (401, json!("timestamp_out_of_tolerance"))
    );
    assert_eq!(
        depth(&ingest.bootstrap, &ingest.orders, PARTITIONS).await,
        0
    );
    assert_eq!(
        depth(&ingest.bootstrap, &format!("{}.DLQ", ingest.orders), 1).await,
        0
    );
    ingest.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413_declared_or_streamed() {
    let ingest = Ingest::start_with(Options {
        max_body_bytes: Some(1024),
        ..Options::default()
    })
    .await;
    let big = vec![b'x'; 4096];

    // Headers that pass the checks made before the body (an unsigned request
    // is 401 before its size is looked at).
    let declared = ingest.post("orders", &big).await;
    let streamed = post_chunked(&ingest.url, "/webhooks/orders", &big).await;

    assert_eq!(
        (declared.status, declared.body["code"].clone()),
        (413, json!("body_too_large"))
    );
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    ingest.stop().await;
}

/// A POST whose body has no declared length (chunked), so only reading it can
/// find it too large; its signature is forged but could match, so the body is
/// read. Returns the raw answer.
async fn post_chunked(base: &str, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\
         webhook-id: msg_chunked\r\nwebhook-timestamp: {now}\r\n\
         webhook-signature: v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(512) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        // The server may answer and close before the whole body is sent.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn unknown_event_type_is_404() {
    let ingest = Ingest::start().await;

    let answer = ingest.post("refunds", &bytes(&order("evt_1", "u1"))).await;

    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["code"], json!("unknown_event_type"));
    ingest.stop().await;
}

#[tokio::test]
async fn health_and_readiness_answer_publicly_and_metrics_apart() {
    let ingest = Ingest::start().await;
    ingest.post("orders", &bytes(&order("evt_m", "u1"))).await;
    let get = |path: &str| ingest.http().get(format!("{}{path}", ingest.url)).send();

    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    // Metrics are for the operator's scraper, on their own listener only.
    assert_eq!(get("/metrics").await.unwrap().status(), 404);
    let metrics = ingest.metrics().await;

    assert!(
        metrics.contains(r#"hookline_ingest_requests_total{event_type="orders",status="202"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookline_ingest_produce_seconds_bucket"),
        "{metrics}"
    );
    ingest.stop().await;
}
