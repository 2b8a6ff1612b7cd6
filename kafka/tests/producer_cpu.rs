//! The producer's own CPU per record, against the real broker: a binary of
//! its own, so that no other client's librdkafka threads run in the process
//! while the broker threads' CPU time is read from `/proc/self/task`.
//!
//! librdkafka's idempotent producer can spin its broker thread (poll with a
//! zero timeout) while a partition's acks are outstanding; the settings of
//! `ClientSettings::producer` keep it from doing so for a topic of four
//! partitions on one broker, the layout here. Spinning cost about 70 µs of
//! CPU per record in `hookline-bench ingest` and 26 µs here, where a producer
//! that waits costs 1 to 7 µs: the bound sits between them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookline_kafka::ClientSettings;
use hookline_kafka::produce::{Producer, Record};
use rdkafka::message::OwnedHeaders;

#[path = "support/mod.rs"]
mod support;

use support::new_topic;

const RECORDS: usize = 20_000;
/// Senders waiting for their acks at once, as ingest's clients do.
const SENDERS: usize = 256;
const BOUND_MICROS_PER_RECORD: f64 = 10.0;

fn bootstrap() -> String {
    std::env::var("HOOKLINE_KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// CPU seconds of this process's librdkafka broker threads so far.
fn broker_threads_cpu() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        panic!("/proc/self/task is not readable");
    };
    let ticks: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .filter_map(|stat| broker_thread_ticks(&stat))
        .sum();
    ticks as f64 / 100.0
}

/// User and system ticks from a thread's `stat`, if it is a broker thread.
fn broker_thread_ticks(stat: &str) -> Option<u64> {
    let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?;
    if !name.starts_with("rdk:broker") {
        return None;
    }
    // utime and stime: fields 14 and 15, the 12th and 13th after the name.
    let mut fields = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    Some(fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_waits_for_its_acks_instead_of_spinning() {
    let settings = ClientSettings::new(bootstrap());
    let topic = new_topic(&settings, "producer-cpu", 4).await;

    // As ingest configures it (`linger.ms` is ingest's own).
    let mut config = settings.producer("producer-cpu-test");
    config.set("linger.ms", "2");
    let producer = Producer::new(&config, Duration::from_secs(60)).unwrap();
    let value = vec![b'x'; 1024];
    let send = |producer: Producer, topic: String, value: Vec<u8>, key: String| async move {
        producer
            .send(Record {
                topic: &topic,
                partition: None,
                key: Some(key.as_bytes()),
                value: Some(&value),
                headers: OwnedHeaders::new(),
            })
            .await
            .map(|_| ())
    };
    // Connected and acked once before the reading starts.
    send(
        producer.clone(),
        topic.clone(),
        value.clone(),
        "warm".into(),
    )
    .await
    .unwrap();

    let before = broker_threads_cpu();
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (producer, topic, value) = (producer.clone(), topic.clone(), value.clone());
        senders.spawn(async move {
            for n in (sender..RECORDS).step_by(SENDERS) {
                send(
                    producer.clone(),
                    topic.clone(),
                    value.clone(),
                    format!("user-{n}"),
                )
                .await?;
            }
            Ok::<_, hookline_kafka::produce::ProduceError>(())
        });
    }
    for sent in senders.join_all().await {
        sent.unwrap();
    }
    let micros = (broker_threads_cpu() - before) / RECORDS as f64 * 1e6;

    println!("librdkafka broker threads: {micros:.1} µs of CPU per record");
    assert!(
        micros < BOUND_MICROS_PER_RECORD,
        "the producer's broker threads spent {micros:.1} µs of CPU per record \
         (bound {BOUND_MICROS_PER_RECORD} µs): is it polling with a zero timeout?"
    );
}
