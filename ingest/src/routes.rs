//! The handler of `POST /webhooks/{type}`: a signed webhook in (see
//! [`crate::signed`]), its payload inspected, then accepted or refused.
//!
//! A valid webhook goes to its topic; an authentic but invalid one is
//! quarantined to the DLQ (still 202: the provider must not retry it) or, under
//! the `reject` policy, answered 422. Either way 202 is sent only once the
//! broker acknowledged the record.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use chrono::Utc;
use hookline_contract::payload::{Delivery, Inspected, Invalid};
use hookline_contract::pipeline::InvalidPolicy;
use hookline_kafka::produce::{Failure, Record};
use uuid::Uuid;

use crate::App;
use crate::answer::{Accepted, Refusal};
use crate::record;
use crate::signed::SignedWebhook;

/// Inspects the payload, then accepts or refuses the webhook.
pub async fn webhook(
    State(app): State<Arc<App>>,
    webhook: SignedWebhook,
) -> Result<Accepted, Refusal> {
    let delivery = Delivery::new(&webhook.body, webhook.message_id.as_deref());
    match webhook
        .route
        .inspector
        .inspect_delivery(delivery, webhook.received_at)
    {
        Ok(inspected) => accept(&app, &webhook, &inspected).await,
        Err(invalid) => refuse(&app, &webhook, &invalid).await,
    }
}

/// Produces a valid webhook to its topic, on the partition of its user.
async fn accept(
    app: &App,
    webhook: &SignedWebhook,
    inspected: &Inspected,
) -> Result<Accepted, Refusal> {
    let event_id = record::event_id(webhook, inspected);
    let topic = &webhook.route.topic;
    let Some(count) = app.producer.partition_count(topic) else {
        tracing::error!(%event_id, topic, "partition count unknown: is the topic created?");
        return Err(Refusal::unavailable(&app.config.settings));
    };
    let record = record::to_topic(webhook, inspected, event_id, count);
    produce(app, record, &event_id).await?;
    Ok(Accepted::Produced { event_id })
}

/// Quarantines (202, DLQ) or rejects (422) an authentic, invalid webhook.
async fn refuse(
    app: &App,
    webhook: &SignedWebhook,
    invalid: &Invalid,
) -> Result<Accepted, Refusal> {
    let route = &webhook.route;
    let event_id = record::invalid_event_id(webhook, invalid);
    tracing::info!(
        %event_id, event_type = %route.event_type, reason = %invalid.reason,
        message = %invalid.message, "invalid webhook"
    );
    if route.policy == InvalidPolicy::Reject {
        return Err(Refusal::Rejected {
            reason: invalid.reason,
            detail: invalid.message.clone(),
        });
    }
    let record = record::to_dlq(webhook, invalid, event_id, Utc::now());
    produce(app, record, &event_id).await?;
    app.metrics
        .dead_lettered(&route.event_type, invalid.reason.as_str());
    Ok(Accepted::Quarantined {
        event_id,
        reason: invalid.reason,
    })
}

/// Produces `record`: Ok once the broker acknowledged it. Times the wait and
/// logs a failure with the event id, which the answer does not carry.
async fn produce(app: &App, record: Record<'_>, event_id: &Uuid) -> Result<(), Refusal> {
    let topic = record.topic.to_owned();
    let started = Instant::now();
    let result = app.producer.send(record).await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(acked) => {
            app.metrics.produced(&topic, "acked", seconds);
            tracing::debug!(%event_id, topic, partition = acked.partition, offset = acked.offset, "acked");
            Ok(())
        }
        Err(error) => {
            app.metrics.produced(&topic, error.label(), seconds);
            let failure = error.failure();
            if failure == Failure::Refused {
                tracing::error!(%event_id, topic, error = %error, "the broker refuses this record for good");
            } else {
                tracing::warn!(%event_id, topic, error = %error, "not acknowledged");
            }
            Err(Refusal::of_failure(failure, &app.config.settings))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use hookline_contract::Reason;

    use super::*;

    fn app(policy: InvalidPolicy) -> Arc<App> {
        App::new(crate::config::test(policy)).unwrap()
    }

    fn signed(app: &App, body: &[u8]) -> SignedWebhook {
        let route = app.config.routes["orders"].clone();
        SignedWebhook::test(route, "standard-webhooks", body)
    }

    const VALID: &[u8] = br#"{"id":"evt_1","type":"order.paid","created":1700000000,
        "data":{"user_id":"u1","order_id":"o1","amount":5,"currency":"usd","status":"paid"}}"#;

    #[tokio::test]
    async fn an_invalid_webhook_under_reject_is_422_with_its_reason_unproduced() {
        let app = app(InvalidPolicy::Reject);

        let answer = webhook(State(app.clone()), signed(&app, b"not json")).await;

        let Err(refusal) = answer else {
            panic!("accepted: {answer:?}")
        };
        assert_eq!(refusal.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(matches!(
            refusal,
            Refusal::Rejected {
                reason: Reason::InvalidJson,
                ..
            }
        ));
        assert!(!app.metrics.render().contains("produce_seconds_count"));
    }

    #[tokio::test]
    async fn a_valid_webhook_for_a_topic_not_seen_yet_is_503_unproduced() {
        let app = app(InvalidPolicy::Quarantine);

        let answer = webhook(State(app.clone()), signed(&app, VALID)).await;

        let Err(refusal) = answer else {
            panic!("accepted: {answer:?}")
        };
        assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!app.metrics.render().contains("produce_seconds_count"));
    }
}
