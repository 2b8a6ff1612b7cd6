//! `hookline verify`: an audit that nothing was lost. Every record of the main
//! topics up to the committed offsets must have its row on its user's shard,
//! or its entry in the topic's DLQ; the events with neither are named.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, bail};
use hookline_contract::headers::{dlq, dlq_topic};
use hookline_contract::payload::Inspector;
use hookline_contract::pipeline::{PipelineManifest, TopicSpec};
use hookline_contract::secrets::SecretsDir;
use hookline_contract::shard_for;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sqlx::PgPool;

use crate::local::{PipelineFiles, topics};

const TIMEOUT: Duration = Duration::from_secs(10);

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
    let manifest = PipelineManifest::read(&args.pipeline.file)?;
    let secrets = SecretsDir::new(&args.pipeline.secrets_dir);
    let mut shards = Vec::new();
    for shard in &manifest.spec.shards {
        let url = secrets.read(&shard.database_url_secret_ref)?;
        shards.push(
            PgPool::connect(&url)
                .await
                .with_context(|| format!("connecting to shard {}", shard.name))?,
        );
    }
    let bootstrap = manifest.spec.kafka.bootstrap_servers.clone();
    let mut missing = Vec::new();
    let (mut stored, mut dead_lettered) = (0usize, 0usize);
    for topic in &manifest.spec.topics {
        let records = committed_records(&bootstrap, topic).await?;
        let in_dlq = dead_letters(&bootstrap, &topic.name).await?;
        for record in records {
            if in_dlq.contains(&(record.partition, record.offset)) {
                dead_lettered += 1;
                continue;
            }
            let found = match (&record.entity, &record.event, &record.user) {
                (Some(entity), Some(event), Some(user)) => {
                    let shard = shard_for(user, shards.len() as u32).unwrap_or(0) as usize;
                    row_exists(&shards[shard], &topic.event_type, entity, event).await?
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

/// The records of `topic` below the group's committed offsets.
async fn committed_records(bootstrap: &str, topic: &TopicSpec) -> anyhow::Result<Vec<Committed>> {
    let inspector = Inspector::builtin(&topic.event_type, topic.pointers.clone())?;
    let entity_pointer = match topic.event_type.as_str() {
        "disputes" => "/data/dispute_id",
        _ => "/data/order_id",
    };
    let ends: BTreeMap<i32, i64> = topics::offsets(bootstrap, &topic.name)
        .await?
        .into_iter()
        .enumerate()
        .filter_map(|(p, o)| o.committed.filter(|c| *c > 0).map(|c| (p as i32, c)))
        .collect();
    let (bootstrap, name) = (bootstrap.to_owned(), topic.name.clone());
    let raw =
        tokio::task::spawn_blocking(move || read_committed(&bootstrap, &name, &ends)).await??;
    Ok(raw
        .into_iter()
        .map(|(partition, offset, value)| {
            let payload: Option<serde_json::Value> = serde_json::from_slice(&value).ok();
            let inspected = payload
                .as_ref()
                .and_then(|p| inspector.inspect_value(p).ok());
            Committed {
                partition,
                offset,
                entity: payload
                    .as_ref()
                    .and_then(|p| p.pointer(entity_pointer))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                event: inspected.as_ref().map(|i| i.provider_event_id.clone()),
                user: inspected.map(|i| i.user_id),
            }
        })
        .collect())
}

/// (partition, offset, value) of every record below the committed offsets
/// `ends` (by partition).
fn read_committed(
    bootstrap: &str,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> anyhow::Result<Vec<(i32, i64, Vec<u8>)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", topic)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in ends.keys() {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    // Reading by assignment, not subscription: the audit is not a member of
    // the group and commits nothing.
    consumer.assign(&assignment)?;
    let mut records = Vec::new();
    let mut done: HashSet<i32> = HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while done.len() < ends.len() {
        if std::time::Instant::now() > deadline {
            bail!("reading {topic} up to the committed offsets took too long");
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message?;
        let end = ends.get(&message.partition()).copied().unwrap_or(0);
        if message.offset() < end {
            records.push((
                message.partition(),
                message.offset(),
                message.payload().unwrap_or_default().to_vec(),
            ));
        }
        if message.offset() + 1 >= end {
            done.insert(message.partition());
        }
    }
    Ok(records)
}

/// (partition, offset) of the records of `topic` the workers dead-lettered.
async fn dead_letters(bootstrap: &str, topic: &str) -> anyhow::Result<HashSet<(i32, i64)>> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let dlq_name = dlq_topic(&topic);
        // A consumer needs a group even to read by assignment; this one never
        // commits.
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "hookline-verify")
            .set("enable.auto.commit", "false")
            .create()?;
        let (_, end) = consumer.fetch_watermarks(&dlq_name, 0, TIMEOUT)?;
        let mut found = HashSet::new();
        if end == 0 {
            return Ok(found);
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&dlq_name, 0, Offset::Beginning)?;
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if std::time::Instant::now() > deadline {
                bail!("reading {dlq_name} took too long");
            }
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let message = message?;
            let header = |name: &str| {
                message.headers().and_then(|hs| {
                    hs.iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .map(str::to_owned)
                })
            };
            if header(dlq::TOPIC).as_deref() == Some(topic.as_str())
                && let (Some(p), Some(o)) = (header(dlq::PARTITION), header(dlq::OFFSET))
                && let (Ok(p), Ok(o)) = (p.parse(), o.parse())
            {
                found.insert((p, o));
            }
            if message.offset() + 1 >= end {
                return Ok(found);
            }
        }
    })
    .await?
}

async fn row_exists(
    shard: &PgPool,
    event_type: &str,
    entity: &str,
    event: &str,
) -> anyhow::Result<bool> {
    let sql = match event_type {
        "disputes" => {
            "SELECT EXISTS (SELECT 1 FROM dispute_events WHERE dispute_id = $1 AND provider_event_id = $2)"
        }
        _ => {
            "SELECT EXISTS (SELECT 1 FROM order_events WHERE order_id = $1 AND provider_event_id = $2)"
        }
    };
    Ok(sqlx::query_scalar(sql)
        .bind(entity)
        .bind(event)
        .fetch_one(shard)
        .await?)
}
