//! The Kafka record of a webhook: its event id, where it goes, and what its
//! headers say. Pure: a signed webhook in, a record out.
//!
//! The value is always the provider's body, byte for byte, and the key the
//! user id; everything hookline knows travels in headers written by
//! `hookline_kafka`'s codecs, which the worker and the tools read back.

use chrono::{DateTime, Utc};
use hookline_contract::partition_for;
use hookline_contract::payload::{Inspected, Invalid};
use hookline_contract::reason::Stage;
use hookline_kafka::envelope::Origin;
use hookline_kafka::produce::Record;
use hookline_kafka::{DeadLetter, Envelope};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::limits::MAX_KEY_BYTES;
use crate::signed::SignedWebhook;

/// The event id of a valid webhook: the same for every retry of the event.
pub fn event_id(webhook: &SignedWebhook, inspected: &Inspected) -> Uuid {
    hookline_contract::event_id(&webhook.source, &inspected.provider_event_id)
}

/// The event id of an invalid webhook. Without a provider event id the
/// body's hash stands in, so that a provider's retry of the same body still
/// gets the same id.
pub fn invalid_event_id(webhook: &SignedWebhook, invalid: &Invalid) -> Uuid {
    match &invalid.provider_event_id {
        Some(provider_event_id) => hookline_contract::event_id(&webhook.source, provider_event_id),
        None => {
            let digest = hex::encode(Sha256::digest(&webhook.body));
            hookline_contract::event_id(&webhook.source, &format!("sha256:{digest}"))
        }
    }
}

/// A valid webhook's record: on its topic, on the partition of its user among
/// `partition_count`, with the envelope.
///
/// Placing the record here rather than in the producer keeps the partition
/// and the count in `hookline-partition-count` consistent while partitions
/// grow: the worker checks one against the other.
pub fn to_topic<'a>(
    webhook: &'a SignedWebhook,
    inspected: &'a Inspected,
    event_id: Uuid,
    partition_count: u32,
) -> Record<'a> {
    let envelope = Envelope {
        event_id,
        event_type: inspected.event_type.clone(),
        source: webhook.source.to_string(),
        received_at: webhook.received_at,
        partition_count,
        schema: webhook.route.inspector.schema_id().to_owned(),
        message_id: webhook.message_id.clone(),
    };
    Record {
        topic: &webhook.route.topic,
        partition: partition_for(inspected.user_id.as_bytes(), partition_count)
            .and_then(|p| i32::try_from(p).ok()),
        key: Some(inspected.user_id.as_bytes()),
        value: Some(&webhook.body),
        headers: envelope.to_headers(),
    }
}

/// An authentic, invalid webhook's record on its topic's DLQ: what is known
/// of it (its type and placement are not), then why it is there. No worker
/// checks a DLQ record's placement, so the partitioner places it by key.
pub fn to_dlq<'a>(
    webhook: &'a SignedWebhook,
    invalid: &'a Invalid,
    event_id: Uuid,
    at: DateTime<Utc>,
) -> Record<'a> {
    let route = &webhook.route;
    let origin = Origin {
        event_id,
        source: &webhook.source,
        received_at: webhook.received_at,
        schema: route.inspector.schema_id(),
        message_id: webhook.message_id.as_deref(),
    };
    let letter = DeadLetter {
        topic: route.topic.clone(),
        origin: None,
        stage: Stage::Ingest,
        reason: invalid.reason,
        message: invalid.message.clone(),
        at,
    };
    Record {
        topic: &route.dlq,
        partition: None,
        // An overlong user id (why it is invalid, perhaps) is not kept as the
        // key: the dead letter must fit beside a body of the largest size.
        key: invalid
            .user_id
            .as_deref()
            .filter(|user_id| user_id.len() <= MAX_KEY_BYTES)
            .map(str::as_bytes),
        value: Some(&webhook.body),
        headers: letter.append_to(origin.to_headers()),
    }
}

#[cfg(test)]
mod tests {
    use hookline_contract::headers as h;
    use hookline_contract::payload::Inspector;
    use hookline_contract::pipeline::{InvalidPolicy, Pointers};
    use hookline_contract::{Reason, event_id as contract_event_id};
    use hookline_kafka::envelope::{EnvelopeError, header};

    use super::*;
    use crate::config::TopicRoute;

    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    fn webhook(body: &[u8]) -> SignedWebhook {
        let route = TopicRoute {
            event_type: "orders".into(),
            topic: "orders.webhooks".into(),
            dlq: "orders.webhooks.DLQ".into(),
            policy: InvalidPolicy::Quarantine,
            inspector: Inspector::builtin("orders", Pointers::default()).unwrap(),
        };
        SignedWebhook::test(std::sync::Arc::new(route), "stripe", body)
    }

    fn inspected(user_id: &str) -> Inspected {
        Inspected {
            provider_event_id: "evt_1".into(),
            user_id: user_id.into(),
            event_type: "order.paid".into(),
            occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            rank: 2,
            columns: hookline_contract::payload::ColumnValues {
                entity_id: "o1".into(),
                status: Some("paid".into()),
                commerce: Some(hookline_contract::payload::Commerce {
                    order_id: "o1".into(),
                    amount: 1250,
                    currency: "eur".into(),
                }),
            },
        }
    }

    fn invalid(provider_event_id: Option<&str>, user_id: Option<&str>) -> Invalid {
        Invalid {
            reason: Reason::SchemaInvalid,
            message: "/data/currency: \"EURO\" does not match".into(),
            provider_event_id: provider_event_id.map(str::to_owned),
            user_id: user_id.map(str::to_owned),
        }
    }

    #[test]
    fn a_valid_webhook_goes_to_its_users_partition_with_its_envelope() {
        let webhook = webhook(BODY);
        let inspected = inspected("user_42");
        let id = event_id(&webhook, &inspected);
        let record = to_topic(&webhook, &inspected, id, 4);

        assert_eq!(id, contract_event_id("stripe", "evt_1"));
        assert_eq!(record.topic, "orders.webhooks");
        let expected = partition_for(b"user_42", 4).unwrap();
        assert_eq!(record.partition, Some(expected as i32));
        assert_eq!(record.key, Some(&b"user_42"[..]));
        assert_eq!(record.value, Some(BODY));
        let envelope = Envelope::from_headers(Some(&record.headers)).unwrap();
        assert_eq!(envelope.event_id, id);
        assert_eq!(envelope.event_type, "order.paid");
        assert_eq!(envelope.source, "stripe");
        assert_eq!(envelope.partition_count, 4);
        assert_eq!(envelope.schema, webhook.route.inspector.schema_id());
    }

    #[test]
    fn an_invalid_webhook_goes_to_the_dlq_with_its_origin_and_reason() {
        let webhook = webhook(BODY);
        let invalid = invalid(Some("evt_1"), Some("u9"));
        let id = invalid_event_id(&webhook, &invalid);
        let at = Utc::now();
        let record = to_dlq(&webhook, &invalid, id, at);

        assert_eq!(id, contract_event_id("stripe", "evt_1"));
        assert_eq!(record.topic, "orders.webhooks.DLQ");
        assert_eq!(record.partition, None);
        assert_eq!(record.key, Some(&b"u9"[..]));
        assert_eq!(record.value, Some(BODY));
        let headers = Some(&record.headers);
        assert_eq!(header(headers, h::EVENT_ID), Some(id.to_string().as_str()));
        assert_eq!(header(headers, h::SOURCE), Some("stripe"));
        // Its type and placement are unknown: it is no envelope.
        assert_eq!(
            Envelope::from_headers(headers),
            Err(EnvelopeError::Missing(h::EVENT_TYPE))
        );
        let letter = DeadLetter::from_headers(headers).unwrap();
        assert_eq!(letter.topic, "orders.webhooks");
        assert_eq!(letter.origin, None);
        assert_eq!(letter.stage, Stage::Ingest);
        assert_eq!(letter.reason, Reason::SchemaInvalid);
        assert_eq!(letter.message, invalid.message);
    }

    #[test]
    fn a_message_id_is_a_header_of_the_record_and_of_its_dead_letter() {
        let mut webhook = webhook(BODY);
        let inspected = inspected("u1");
        let record = to_topic(&webhook, &inspected, Uuid::nil(), 4);
        assert_eq!(header(Some(&record.headers), h::MESSAGE_ID), None);

        webhook.message_id = Some("msg_2".into());
        let record = to_topic(&webhook, &inspected, Uuid::nil(), 4);
        assert_eq!(header(Some(&record.headers), h::MESSAGE_ID), Some("msg_2"));
        let invalid = invalid(Some("evt_1"), None);
        let record = to_dlq(&webhook, &invalid, Uuid::nil(), Utc::now());
        assert_eq!(header(Some(&record.headers), h::MESSAGE_ID), Some("msg_2"));
    }

    #[test]
    fn an_overlong_user_id_is_not_kept_as_a_dead_letters_key() {
        let webhook = webhook(BODY);
        let long = "u".repeat(MAX_KEY_BYTES + 1);
        let invalid = invalid(Some("evt_1"), Some(&long));
        let record = to_dlq(&webhook, &invalid, Uuid::nil(), Utc::now());
        assert_eq!(record.key, None);
        let fits = "u".repeat(MAX_KEY_BYTES);
        let invalid = self::invalid(Some("evt_1"), Some(&fits));
        let record = to_dlq(&webhook, &invalid, Uuid::nil(), Utc::now());
        assert_eq!(record.key, Some(fits.as_bytes()));
    }

    #[test]
    fn without_a_provider_event_id_the_body_names_the_event() {
        let nameless = invalid(None, None);
        let received = webhook(b"not json");
        let first = invalid_event_id(&received, &nameless);
        let retry = invalid_event_id(&webhook(b"not json"), &nameless);
        let other = invalid_event_id(&webhook(b"not json either"), &nameless);

        assert_eq!(first, retry);
        assert_ne!(first, other);
        let record = to_dlq(&received, &nameless, first, Utc::now());
        assert_eq!(record.key, None);
    }
}
