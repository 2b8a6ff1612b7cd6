//! The broker goes away: ingest answers 503 with Retry-After and acknowledges
//! nothing; when the broker is back, the provider's retry succeeds, and the
//! event reaches the topic under one event id.

use std::collections::BTreeSet;
use std::time::Duration;

use hookline_contract::headers as h;

use crate::broker::{DEADLINE, PrivateBroker, read_until};
use crate::harness::{Ingest, Options, bytes, order};

#[tokio::test]
async fn broker_down_is_503_and_the_retry_after_it_returns_is_delivered_under_one_event_id() {
    let mut broker = PrivateBroker::start().await;
    let ingest = Ingest::start_with(Options {
        bootstrap: broker.bootstrap.clone(),
        ack_timeout: Duration::from_secs(1),
        ..Options::default()
    })
    .await;
    let before = bytes(&order("evt_before", "u1"));
    assert_eq!(ingest.post("orders", &before).await.status, 202);

    broker.kill().await;
    let during = bytes(&order("evt_during", "u2"));
    let refused = ingest.post("orders", &during).await;

    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.retry_after.as_deref(), Some("7"));
    assert_eq!(refused.body["code"], "unavailable");

    broker.restart().await;
    // The provider retries until it gets an answer other than 503.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut attempts = 1;
    let retried = loop {
        attempts += 1;
        let answer = ingest.post("orders", &during).await;
        if answer.status != 503 {
            break answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still 503 after the broker returned"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(retried.status, 202, "{:?}", retried.body);

    // Every attempt's record stays queued and arrives once the broker is back:
    // duplicates under one event id, which the worker folds. Nothing else may
    // arrive, and the event is never lost.
    let before_id = hookline_contract::event_id("standard-webhooks", "evt_before").to_string();
    let during_id = retried.event_id();
    let records = read_until(&ingest.bootstrap, &ingest.orders, |records| {
        let ids: BTreeSet<&str> = records
            .iter()
            .map(|r| r.headers[h::EVENT_ID].as_str())
            .collect();
        ids.contains(before_id.as_str()) && ids.contains(during_id.as_str())
    })
    .await;
    let count = |id: &str| {
        records
            .iter()
            .filter(|r| r.headers[h::EVENT_ID] == id)
            .count()
    };
    assert_eq!(count(&before_id), 1);
    assert!(
        (1..=attempts).contains(&count(&during_id)),
        "{attempts} attempts: {records:?}"
    );
    assert_eq!(count(&before_id) + count(&during_id), records.len());
    ingest.stop().await;
}
