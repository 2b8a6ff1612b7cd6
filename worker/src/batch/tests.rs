use chrono::Utc;
use hookline_contract::pipeline::Pointers;
use hookline_contract::{event_id, partition_for};
use rdkafka::Timestamp;
use serde_json::json;

use std::time::Duration;

use hookline_kafka::produce::ProduceError;

use super::*;
use crate::store::OrderEvent;

const PARTITIONS: u32 = 4;
const SHARDS: u32 = 2;

fn fields(user: &str) -> Fields {
    Fields {
        type_name: "orders".into(),
        event_id: uuid::Uuid::nil(),
        provider_event_id: "e".into(),
        event_type: "order.paid".into(),
        entity_id: "o".into(),
        order_id: "o".into(),
        user_id: user.into(),
        status: "paid".into(),
        amount: 1,
        currency: "eur".into(),
        occurred_at: Utc::now(),
        rank: 2,
        received_at: Utc::now(),
    }
}

fn poison() -> Poison {
    Poison {
        stage: Stage::Decode,
        reason: Reason::Undecodable,
        message: String::new(),
    }
}

fn record(partition: i32, offset: i64) -> OwnedMessage {
    OwnedMessage::new(
        None,
        None,
        "orders.webhooks".into(),
        Timestamp::NotAvailable,
        partition,
        offset,
        None,
    )
}

/// A batch of records at (partition, offset), already decoded as given.
fn batch(decoded: Vec<((i32, i64), Result<Fields, Poison>)>) -> Batch<OrderEvent> {
    Batch {
        slots: decoded
            .into_iter()
            .map(|((partition, offset), result)| Slot {
                record: record(partition, offset),
                state: State::placed(result, SHARDS),
                in_flight: None,
            })
            .collect(),
        summary: Summary::default(),
    }
}

fn shard_of(user: &str) -> usize {
    shard_for(user, SHARDS).unwrap() as usize
}

#[test]
fn records_go_to_their_users_shard_and_poison_aside() {
    let users = ["user-1", "user-2", "user-3", "user-4"];
    let mut decoded: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| ((0, i as i64), Ok(fields(u))))
        .collect();
    decoded.insert(2, ((0, 9), Err(poison())));
    let placement = Placement::of(&batch(decoded).slots);
    assert_eq!(placement.poison, vec![2]);
    let mut placed = 0;
    for (shard, rows) in &placement.by_shard {
        for &i in rows {
            let user = users[if i > 2 { i - 1 } else { i }];
            assert_eq!(shard_of(user), *shard, "{user}");
            placed += 1;
        }
    }
    assert_eq!(placed, 4);
}

#[test]
fn what_is_written_or_dead_lettered_is_not_done_again() {
    let mut batch = batch(vec![
        ((0, 0), Ok(fields("user-1"))),
        ((0, 1), Ok(fields("user-2"))),
        ((0, 2), Err(poison())),
    ]);
    batch.written(&[0], &[Stored::Inserted]);
    batch.slots[2].state = State::DeadLettered;
    let placement = Placement::of(&batch.slots);
    assert_eq!(
        placement,
        Placement {
            by_shard: BTreeMap::from([(shard_of("user-2"), vec![1])]),
            poison: vec![],
        }
    );
    batch.written(&[1], &[Stored::AlreadyStored]);
    assert_eq!(Placement::of(&batch.slots), Placement::default());
    assert_eq!((batch.summary.inserted, batch.summary.duplicates), (1, 1));
}

#[test]
fn a_record_its_shard_refuses_becomes_poison_at_the_write_stage() {
    let mut batch = batch(vec![
        ((0, 0), Ok(fields("user-1"))),
        ((0, 1), Ok(fields("user-1"))),
    ]);
    let error = store::Error::UpsertOrders(sqlx::Error::PoolTimedOut);
    batch.refused(1, &error, Reason::ConstraintViolation);
    let placement = Placement::of(&batch.slots);
    assert_eq!(placement.poison, vec![1]);
    assert_eq!(placement.by_shard[&shard_of("user-1")], vec![0]);
    let State::Poison(poison) = &batch.slots[1].state else {
        panic!("not poison: {:?}", batch.slots[1].state);
    };
    assert_eq!(
        (poison.stage, poison.reason),
        (Stage::Write, Reason::ConstraintViolation)
    );
    assert!(poison.message.starts_with("upserting orders failed"));
}

#[test]
fn revoked_partitions_are_abandoned_and_the_rest_keeps_its_progress() {
    let mut batch = batch(vec![
        ((0, 5), Ok(fields("user-1"))),
        ((1, 7), Ok(fields("user-2"))),
        ((1, 8), Err(poison())),
        ((0, 6), Ok(fields("user-3"))),
    ]);
    batch.written(&[1], &[Stored::Inserted]);
    assert_eq!(batch.abandon(&[0]), 2);
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.next_offsets(), BTreeMap::from([(1, 9)]));
    // The written record of partition 1 stays written; its poison stays poison.
    assert_eq!(
        Placement::of(&batch.slots),
        Placement {
            by_shard: BTreeMap::new(),
            poison: vec![1],
        }
    );
    assert_eq!(batch.abandon(&[1]), 2);
    assert!(batch.is_empty());
}

#[test]
fn new_decodes_each_record_and_places_it() {
    let inspector = Inspector::builtin("orders", Pointers::default()).unwrap();
    let user = "user-1";
    let partition = partition_for(user.as_bytes(), PARTITIONS).unwrap() as i32;
    let envelope = Envelope {
        event_id: event_id("stripe", "evt_1"),
        event_type: "order.paid".into(),
        source: "stripe".into(),
        received_at: Utc::now(),
        partition_count: PARTITIONS,
        schema: "orders/v1".into(),
        message_id: None,
    };
    let value = serde_json::to_vec(&json!({
        "id": "evt_1", "type": "order.paid", "created": 1_700_000_000,
        "data": {"user_id": user, "order_id": "o1", "amount": 1250, "currency": "eur", "status": "paid"}
    }))
    .unwrap();
    let good = OwnedMessage::new(
        Some(value),
        Some(user.as_bytes().to_vec()),
        "orders.webhooks".into(),
        Timestamp::NotAvailable,
        partition,
        0,
        Some(envelope.to_headers()),
    );
    let batch: Batch<OrderEvent> = Batch::new(vec![good, record(partition, 1)], &inspector, SHARDS);
    match &batch.slots[0].state {
        State::Pending { shard, event } => {
            assert_eq!(*shard, shard_of(user));
            assert_eq!(
                (event.order_id.as_str(), event.user_id.as_str()),
                ("o1", user)
            );
        }
        other => panic!("not pending: {other:?}"),
    }
    assert!(matches!(
        &batch.slots[1].state,
        State::Poison(Poison {
            reason: Reason::Undecodable,
            ..
        })
    ));
}

#[test]
fn commit_offsets_are_one_past_the_last_record_per_partition() {
    let next = next_offsets([(0, 5), (1, 9), (0, 7), (0, 6)]);
    assert_eq!(next, BTreeMap::from([(0, 8), (1, 10)]));
}

#[test]
fn dead_letter_failures_have_fixed_labels() {
    let failed = |source| Transient::DeadLetter {
        partition: 1,
        offset: 7,
        source,
    };
    let send = |source| DeadLetterError::Send {
        topic: "t.DLQ".into(),
        source,
    };
    let timeout = failed(send(ProduceError::AckTimeout(Duration::ZERO)));
    assert_eq!(timeout.label(), "dlq_ack_timeout");
    assert_eq!(timeout.refused_dead_letter(), None);
    assert_eq!(failed(send(ProduceError::QueueFull)).label(), "dlq_produce");
    let refused = failed(DeadLetterError::Refused {
        topic: "t.DLQ".into(),
        source: ProduceError::Canceled,
    });
    assert_eq!(refused.label(), "dlq_refused");
    assert_eq!(refused.refused_dead_letter(), Some((1, 7)));
}

#[test]
fn only_a_write_past_its_deadline_asks_for_a_split() {
    let late = Transient::Write {
        shard: 0,
        source: store::Error::Timeout(Duration::from_secs(1)),
    };
    assert!(late.is_timeout());
    let down = Transient::Write {
        shard: 0,
        source: store::Error::Begin(sqlx::Error::PoolTimedOut),
    };
    assert!(!down.is_timeout());
}

#[test]
fn a_split_halves_what_is_left_and_keeps_the_order() {
    let mut first = batch(
        (0..6)
            .map(|i| ((i % 2, i as i64), Ok(fields("user-1"))))
            .collect(),
    );
    // The first two are written already: the halves share the other four.
    first.written(&[0, 1], &[Stored::Inserted, Stored::Inserted]);
    let second = first.split_off().unwrap();
    assert_eq!((first.len(), second.len()), (4, 2));
    assert_eq!(
        Placement::of(&first.slots)
            .by_shard
            .values()
            .flatten()
            .count(),
        2
    );
    assert_eq!(first.next_offsets(), BTreeMap::from([(0, 3), (1, 4)]));
    assert_eq!(second.next_offsets(), BTreeMap::from([(0, 5), (1, 6)]));
    // The summary of what was done so far stays with the first half.
    assert_eq!(first.summary.inserted, 2);

    let mut one = batch(vec![
        ((0, 0), Ok(fields("user-1"))),
        ((0, 1), Ok(fields("user-1"))),
    ]);
    one.written(&[0], &[Stored::Inserted]);
    assert!(one.split_off().is_none(), "one record left cannot be split");
}

#[test]
fn a_failed_transaction_puts_its_events_back_unchanged() {
    let mut batch = batch(vec![
        ((0, 0), Ok(fields("user-1"))),
        ((0, 1), Err(poison())),
        ((0, 2), Ok(fields("user-1"))),
    ]);
    let before = Placement::of(&batch.slots);
    let rows = before.by_shard[&shard_of("user-1")].clone();
    let events = batch.take_pending(&rows);
    assert_eq!(events.len(), 2);
    assert!(
        Placement::of(&batch.slots).by_shard.is_empty(),
        "moved, not copied"
    );
    batch.put_back(shard_of("user-1"), &rows, events);
    assert_eq!(Placement::of(&batch.slots), before);
}
