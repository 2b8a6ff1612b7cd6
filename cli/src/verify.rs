//! `hookline verify`: an audit that nothing was lost. Every record of the main
//! topics up to the committed offsets must have its row on its user's shard,
//! or its entry in the topic's DLQ; the events with neither are named.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, bail};
use hookline_contract::headers::dlq_topic;
use hookline_contract::payload::Inspector;
use hookline_contract::pipeline::TopicSpec;
use hookline_contract::{EventType, event_types, shard_for};
use hookline_kafka::reader::{Range, Reader};
use hookline_kafka::{ClientSettings, DeadLetter, offsets};
use rdkafka::Message;
use tokio::sync::mpsc;

use crate::local::PipelineFiles;
use crate::local::shards::{self, Shard};

/// How long reading one topic may take.
const READ_DEADLINE: Duration = Duration::from_secs(120);
/// Records read ahead of the look-ups: bounds memory whatever the topic's size.
const READ_AHEAD: usize = 1024;

/// Arguments of `hookline verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: PipelineFiles,
}

/// A committed record, as the audit sees it.
struct Committed {
    partition: i32,
    offset: i64,
    entity: Option<String>,
    event: Option<String>,
    user: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let manifest = args.pipeline.manifest()?;
    let shards = shards::connect(&manifest.spec, &args.pipeline.secrets()).await?;
    let kafka = ClientSettings::of(&manifest.spec.kafka);
    let mut missing = Vec::new();
    let (mut stored, mut dead_lettered) = (0usize, 0usize);
    for topic in &manifest.spec.topics {
        let event_type = event_types::lookup(&topic.event_type)
            .with_context(|| format!("topic {}: unknown event type", topic.name))?;
        let in_dlq = dead_letters(&kafka, &topic.name).await?;
        let mut records = committed_records(&kafka, topic, event_type).await?;
        while let Some(record) = records.recv().await {
            let record = record?;
            if in_dlq.contains(&(record.partition, record.offset)) {
                dead_lettered += 1;
                continue;
            }
            let found = match (&record.entity, &record.event, &record.user) {
                (Some(entity), Some(event), Some(user)) => {
                    let shard = shard_for(user, shards.len() as u32).unwrap_or(0) as usize;
                    row_exists(&shards[shard], event_type, entity, event).await?
                }
                _ => false,
            };
            if found {
                stored += 1;
            } else {
                missing.push(format!(
                    "{}[{}]@{}: event {} of user {}",
                    topic.name,
                    record.partition,
                    record.offset,
                    record.event.as_deref().unwrap_or("?"),
                    record.user.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    shards::close(shards).await;
    println!(
        "committed records: {stored} stored, {dead_lettered} in the DLQ, {} missing",
        missing.len()
    );
    for line in &missing {
        println!("  missing: {line}");
    }
    if !missing.is_empty() {
        bail!(
            "{} committed events have neither a row nor a DLQ entry",
            missing.len()
        );
    }
    Ok(())
}

/// The records of `topic` below its group's committed offsets, read ahead by
/// a blocking reader into a bounded channel.
async fn committed_records(
    kafka: &ClientSettings,
    topic: &TopicSpec,
    event_type: &'static EventType,
) -> anyhow::Result<mpsc::Receiver<anyhow::Result<Committed>>> {
    let inspector = Inspector::builtin(&topic.event_type, topic.pointers.clone())?;
    let ranges: Vec<Range> = offsets::offsets(kafka, &topic.name, &topic.name)
        .await?
        .into_iter()
        .filter_map(|p| {
            p.committed.filter(|c| *c > 0).map(|end| Range {
                partition: p.partition,
                start: 0,
                end,
            })
        })
        .collect();
    let (kafka, name) = (kafka.clone(), topic.name.clone());
    let (sender, receiver) = mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        // The audit is not a member of the group and commits nothing.
        let read = || -> anyhow::Result<()> {
            let mut reader =
                Reader::open(&kafka, "hookline-verify", &name, &ranges, READ_DEADLINE)?;
            while let Some(message) = reader.next_record()? {
                let payload: Option<serde_json::Value> = message
                    .payload()
                    .and_then(|value| serde_json::from_slice(value).ok());
                let inspected = payload
                    .as_ref()
                    .and_then(|p| inspector.inspect_value(p).ok());
                let record = Committed {
                    partition: message.partition(),
                    offset: message.offset(),
                    entity: payload
                        .as_ref()
                        .and_then(|p| p.pointer(event_type.columns.entity_id))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    event: inspected.as_ref().map(|i| i.provider_event_id.clone()),
                    user: inspected.map(|i| i.user_id),
                };
                if sender.blocking_send(Ok(record)).is_err() {
                    // The audit stopped reading: nothing more to do.
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(error) = read() {
            let _ = sender.blocking_send(Err(error));
        }
    });
    Ok(receiver)
}

/// (partition, offset) of the records of `topic` the workers dead-lettered.
async fn dead_letters(kafka: &ClientSettings, topic: &str) -> anyhow::Result<HashSet<(i32, i64)>> {
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    Ok(hookline_kafka::blocking(move || {
        let range = Range {
            partition: 0,
            start: 0,
            end: i64::MAX,
        };
        let mut reader = Reader::open(
            &kafka,
            "hookline-verify",
            &dlq_topic(&topic),
            &[range],
            READ_DEADLINE,
        )?;
        let mut found = HashSet::new();
        while let Some(message) = reader.next_record()? {
            if let Ok(letter) = DeadLetter::from_headers(message.headers())
                && letter.topic == topic
                && let Some(origin) = letter.origin
            {
                found.insert(origin);
            }
        }
        Ok(found)
    })
    .await?)
}

async fn row_exists(
    shard: &Shard,
    event_type: &EventType,
    entity: &str,
    event: &str,
) -> anyhow::Result<bool> {
    let storage = event_type.storage;
    // Table and column names come from the registry, never from input.
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE {} = $1 AND provider_event_id = $2)",
        storage.events_table(),
        storage.entity_column()
    );
    sqlx::query_scalar(&sql)
        .bind(entity)
        .bind(event)
        .fetch_one(&shard.pool)
        .await
        .with_context(|| format!("looking up event {event} on shard {}", shard.name))
}
