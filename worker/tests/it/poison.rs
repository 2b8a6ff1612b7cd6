//! Records the worker can never write go to the DLQ with their reason and
//! their original key, value and headers; the rest of their batch is stored.

use std::collections::HashMap;

use hookline_contract::{headers as h, partition_for};
use hookline_kafka::offsets;
use hookline_kafka::reader::{Range, Reader};
use rdkafka::Message;
use rdkafka::message::Headers;

use crate::pipeline::{DEADLINE, PARTITIONS, Pipeline, ev, eventually, kafka};

pub(crate) struct DlqRecord {
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Every record of the one-partition DLQ `topic`, once it holds `count`.
pub(crate) async fn read_dlq(topic: &str, count: usize) -> Vec<DlqRecord> {
    eventually(&format!("{count} records in {topic}"), || async {
        offsets::depth(&kafka(), topic)
            .await
            .is_ok_and(|depth| depth >= count as i64)
    })
    .await;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let group = format!("dlq-reader-{}", uuid::Uuid::new_v4().simple());
        let all = Range {
            partition: 0,
            start: 0,
            end: i64::MAX,
        };
        let mut reader = Reader::open(&kafka(), &group, &topic, &[all], DEADLINE).unwrap();
        let mut records = Vec::new();
        while let Some(message) = reader.next_record().unwrap() {
            let headers = message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            records.push(DlqRecord {
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                value: message.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        records
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn poison_records_go_to_the_dlq_with_their_reason_and_the_rest_is_stored() {
    let pipeline = Pipeline::orders().await;
    for i in 0..10 {
        pipeline
            .produce(&ev(
                &format!("user-{i}"),
                &format!("evt_ok_{i}"),
                &format!("ord_{i}"),
            ))
            .await;
    }
    // No headers at all.
    pipeline
        .produce_raw(Some("user-1"), b"{}", Some(partition_of("user-1")), None)
        .await;
    // Valid envelope, schema-invalid payload.
    let mut bad_currency = ev("user-2", "evt_bad_currency", "ord_x");
    bad_currency.currency = "EURO".into();
    pipeline.produce(&bad_currency).await;
    // On a partition its key does not hash to.
    let misrouted = ev("user-3", "evt_misrouted", "ord_y");
    let value = serde_json::to_vec(&pipeline.payload(&misrouted)).unwrap();
    let wrong = (partition_of("user-3") + 1) % PARTITIONS;
    pipeline
        .produce_raw(
            Some("user-3"),
            &value,
            Some(wrong),
            Some(pipeline.envelope(&misrouted)),
        )
        .await;
    // Valid for ingest and the worker, refused by a rule the shard's owner
    // added to the table: only the record-by-record retry can single it out.
    // (What PostgreSQL itself cannot hold, such as U+0000, ingest refuses.)
    for shard in &pipeline.shards {
        hookline_worker::store::migrate(&shard.pool, chrono::Utc::now())
            .await
            .unwrap();
        sqlx::query(
            "ALTER TABLE order_events ADD CONSTRAINT not_this_order CHECK (order_id <> 'ord_refused')",
        )
        .execute(&shard.pool)
        .await
        .unwrap();
    }
    pipeline
        .produce(&ev("user-4", "evt_refused", "ord_refused"))
        .await;

    let mut worker = pipeline.workers().await;
    eventually("10 valid events stored", || async {
        pipeline.total("order_events").await == 10
    })
    .await;
    let records = read_dlq(&pipeline.dlq(), 4).await;

    let by_reason: HashMap<&str, &DlqRecord> = records
        .iter()
        .map(|r| (r.headers[h::dlq::REASON].as_str(), r))
        .collect();
    let mut reasons: Vec<&str> = by_reason.keys().copied().collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        vec![
            "constraint_violation",
            "misrouted",
            "schema_invalid",
            "undecodable"
        ]
    );
    let stages: Vec<(&str, &str)> = {
        let mut s: Vec<(&str, &str)> = records
            .iter()
            .map(|r| {
                (
                    r.headers[h::dlq::REASON].as_str(),
                    r.headers[h::dlq::STAGE].as_str(),
                )
            })
            .collect();
        s.sort_unstable();
        s
    };
    assert_eq!(
        stages,
        vec![
            ("constraint_violation", "write"),
            ("misrouted", "route"),
            ("schema_invalid", "validate"),
            ("undecodable", "decode")
        ]
    );
    let misrouted_record = by_reason["misrouted"];
    assert_eq!(misrouted_record.key.as_deref(), Some("user-3"));
    assert_eq!(misrouted_record.value, value);
    assert_eq!(
        misrouted_record.headers[h::EVENT_ID],
        pipeline.envelope(&misrouted).event_id.to_string()
    );
    assert_eq!(misrouted_record.headers[h::dlq::TOPIC], pipeline.topic);
    assert_eq!(
        misrouted_record.headers[h::dlq::PARTITION],
        wrong.to_string()
    );
    assert!(misrouted_record.headers.contains_key(h::dlq::OFFSET));
    assert!(misrouted_record.headers.contains_key(h::dlq::TIMESTAMP));
    assert_eq!(by_reason["undecodable"].value, b"{}");
    assert!(
        by_reason["constraint_violation"].headers[h::dlq::MESSAGE].contains("SQLSTATE 23514"),
        "{}",
        by_reason["constraint_violation"].headers[h::dlq::MESSAGE]
    );
    eventually("dead-letter counts in metrics", || async {
        worker.metric("hookline_worker_dead_lettered_total").await == 4.0
    })
    .await;
    // Every record was dealt with and committed, and nothing else was written.
    let ends = pipeline.ends().await;
    eventually("offsets committed to the end", || async {
        pipeline.committed().await == ends
    })
    .await;
    assert_eq!(pipeline.total("order_events").await, 10);
    worker.terminate().await;
    pipeline.drop_shards().await;
}

fn partition_of(user: &str) -> i32 {
    partition_for(user.as_bytes(), PARTITIONS as u32).unwrap() as i32
}

/// An event time in milliseconds (a year around 55,800) used to be stored as
/// the order's state, and no later event could ever replace it. It is now
/// dead-lettered as `event_time_out_of_range`, and the next event updates the
/// order as usual.
#[tokio::test]
async fn an_event_time_in_milliseconds_is_dead_lettered_and_never_freezes_the_order() {
    let pipeline = Pipeline::orders().await;
    let events = [
        ev("user-1", "evt_1", "ord_1")
            .at(1_700_000_000)
            .status("created"),
        ev("user-1", "evt_ms", "ord_1")
            .at(1_700_000_050_000)
            .status("paid"),
        ev("user-1", "evt_2", "ord_1")
            .at(1_700_000_100)
            .status("refunded"),
    ];
    for event in &events {
        pipeline.produce(event).await;
    }
    let mut worker = pipeline.workers().await;
    let records = read_dlq(&pipeline.dlq(), 1).await;
    assert_eq!(
        (
            records[0].headers[h::dlq::REASON].as_str(),
            records[0].headers[h::dlq::STAGE].as_str()
        ),
        ("event_time_out_of_range", "validate")
    );
    assert!(
        records[0].headers[h::dlq::MESSAGE].contains("milliseconds"),
        "{}",
        records[0].headers[h::dlq::MESSAGE]
    );
    eventually("the two other events stored", || async {
        pipeline.total("order_events").await == 2
    })
    .await;
    let shard = hookline_contract::shard_for("user-1", 2).unwrap() as usize;
    let state: (String, String) =
        sqlx::query_as("SELECT status, last_event_id FROM orders WHERE order_id = 'ord_1'")
            .fetch_one(&pipeline.shards[shard].pool)
            .await
            .unwrap();
    assert_eq!(state, ("refunded".into(), "evt_2".into()));
    worker.terminate().await;
    pipeline.drop_shards().await;
}
