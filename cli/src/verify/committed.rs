//! The committed records of one main topic against the shards and the DLQ.
//!
//! The topic is streamed (a bounded read-ahead; payloads are dropped on the
//! reader's thread once their ids are read) and looked up in batches of
//! [`BATCH`] per shard, one query each. Only the records below the workers'
//! committed offsets are checked: those past them are lag, which the workers
//! have not reached yet, neither stored nor missing.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use hookline_contract::definition::Definition;
use hookline_contract::headers::dlq_topic;
use hookline_contract::payload::{Delivery, Inspector};
use hookline_contract::pipeline::TopicSpec;
use hookline_contract::{Storage, headers, shard_for};
use hookline_kafka::envelope::header;
use hookline_kafka::reader::Range;
use hookline_kafka::{ClientSettings, DeadLetter, offsets};
use rdkafka::Message;
use rdkafka::message::BorrowedMessage;

use super::report::{Missing, TopicAudit};
use crate::local::shards::Shard;
use crate::scan::scan;

/// How long reading one topic may take: a bound so that a broker that stops
/// answering fails the audit instead of hanging it.
const READ_DEADLINE: Duration = Duration::from_secs(600);
/// Records read ahead of the look-ups.
const READ_AHEAD: usize = 1024;
/// Records looked up per query.
const BATCH: usize = 500;
/// The group the audit reads with; it joins no group and commits nothing.
const GROUP: &str = "hookline-verify";

/// A committed record, as the audit sees it: its coordinates and ids, never
/// its payload.
struct Committed {
    partition: i32,
    offset: i64,
    entity: Option<String>,
    event: Option<String>,
    user: Option<String>,
}

impl Committed {
    fn read(message: &BorrowedMessage<'_>, inspector: &Inspector) -> Self {
        let payload: Option<serde_json::Value> = message
            .payload()
            .and_then(|value| serde_json::from_slice(value).ok());
        let inspected = payload
            .as_ref()
            // Only the ids are wanted here: judged against now, an event time
            // the worker accepted at its receipt is accepted again.
            .and_then(|p| {
                let message_id = header(message.headers(), headers::MESSAGE_ID);
                inspector
                    .inspect_value(
                        p,
                        chrono::Utc::now(),
                        Delivery::new(message.payload().unwrap_or_default(), message_id),
                    )
                    .ok()
            });
        Self {
            partition: message.partition(),
            offset: message.offset(),
            // As the worker read it; the raw value only names a record the
            // inspection refuses.
            entity: inspected
                .as_ref()
                .map(|i| i.columns.entity_id.clone())
                .or_else(|| {
                    payload
                        .as_ref()?
                        .pointer(&inspector.definition().fields.entity_id)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                }),
            event: inspected.as_ref().map(|i| i.provider_event_id.clone()),
            user: inspected.map(|i| i.user_id),
        }
    }

    fn missing(self) -> Missing {
        Missing {
            partition: self.partition,
            offset: self.offset,
            provider_event_id: self.event,
            user_id: self.user,
            entity_id: self.entity,
        }
    }
}

/// Audits the committed records of `topic`.
pub async fn audit(
    kafka: &ClientSettings,
    shards: &[Shard],
    topic: &TopicSpec,
    event_type: &Definition,
) -> anyhow::Result<TopicAudit> {
    let inspector = Inspector::new(event_type.clone())
        .with_context(|| format!("compiling the schema of topic {}", topic.name))?;
    // The workers commit to the group named after their topic.
    let partitions = offsets::offsets(kafka, &topic.name, &topic.name)
        .await
        .with_context(|| format!("reading the offsets of {}", topic.name))?;
    let mut audit = TopicAudit {
        topic: topic.name.clone(),
        event_type: topic.event_type.clone(),
        partitions: partitions.clone(),
        ..TopicAudit::default()
    };
    let ranges: Vec<Range> = partitions
        .iter()
        .filter_map(|p| {
            p.committed.filter(|c| *c > p.start).map(|end| Range {
                partition: p.partition,
                start: p.start,
                end,
            })
        })
        .collect();
    if ranges.is_empty() {
        return Ok(audit);
    }
    let in_dlq = dead_letters(kafka, &topic.name).await?;
    let mut records = scan(
        kafka,
        GROUP,
        &topic.name,
        ranges,
        READ_DEADLINE,
        READ_AHEAD,
        move |message| Committed::read(message, &inspector),
    );
    let mut batches: Vec<Vec<Committed>> = shards.iter().map(|_| Vec::new()).collect();
    while let Some(record) = records.recv().await {
        let record = record.with_context(|| format!("reading {}", topic.name))?;
        if in_dlq.contains(&(record.partition, record.offset)) {
            audit.dead_lettered += 1;
            continue;
        }
        let shard = match (&record.entity, &record.event, &record.user) {
            (Some(_), Some(_), Some(user)) => shard_for(user, shards.len() as u32),
            _ => None,
        };
        let Some(shard) = shard.map(|s| s as usize) else {
            // No ids to look up by: it cannot have been stored.
            audit.add_missing(record.missing());
            continue;
        };
        batches[shard].push(record);
        if batches[shard].len() >= BATCH {
            let batch = std::mem::take(&mut batches[shard]);
            look_up(&shards[shard], event_type, batch, &mut audit).await?;
        }
    }
    for (shard, batch) in shards.iter().zip(batches) {
        look_up(shard, event_type, batch, &mut audit).await?;
    }
    Ok(audit)
}

/// Counts each record of `batch` as stored or missing, in one query.
async fn look_up(
    shard: &Shard,
    event_type: &Definition,
    batch: Vec<Committed>,
    audit: &mut TopicAudit,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let storage = event_type.storage;
    let (entities, events): (Vec<&str>, Vec<&str>) = batch
        .iter()
        .map(|r| {
            (
                r.entity.as_deref().unwrap_or_default(),
                r.event.as_deref().unwrap_or_default(),
            )
        })
        .unzip();
    // Table and column names come from the registry, never from input. The
    // answer is the (1-based) positions in the batch of the stored records.
    // A declared type's rows are those of its name in the shared table.
    let declared = (storage == Storage::Declared).then_some(event_type.name.as_str());
    let sql = format!(
        "SELECT w.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(entity, event, i) \
         WHERE EXISTS (SELECT 1 FROM {} e WHERE e.{} = w.entity AND e.provider_event_id = w.event{})",
        storage.events_table(),
        storage.entity_column(),
        if declared.is_some() {
            " AND e.type = $3"
        } else {
            ""
        }
    );
    let mut query = sqlx::query_scalar::<_, i64>(&sql)
        .bind(&entities)
        .bind(&events);
    if let Some(name) = declared {
        query = query.bind(name);
    }
    let found: HashSet<i64> = query
        .fetch_all(&shard.pool)
        .await
        .with_context(|| {
            format!(
                "looking up {} events in {} on shard {}",
                batch.len(),
                storage.events_table(),
                shard.name
            )
        })?
        .into_iter()
        .collect();
    for (i, record) in (1..).zip(batch) {
        if found.contains(&i) {
            audit.stored += 1;
        } else {
            audit.add_missing(record.missing());
        }
    }
    Ok(())
}

/// (partition, offset) of the records of `topic` the workers dead-lettered:
/// coordinates only, 12 bytes a letter, so that the DLQ is never held.
async fn dead_letters(kafka: &ClientSettings, topic: &str) -> anyhow::Result<HashSet<(i32, i64)>> {
    let dlq = dlq_topic(topic);
    let range = Range {
        partition: 0,
        start: 0,
        end: i64::MAX,
    };
    let owner = topic.to_owned();
    let mut letters = scan(
        kafka,
        GROUP,
        &dlq,
        vec![range],
        READ_DEADLINE,
        READ_AHEAD,
        move |message| {
            DeadLetter::from_headers(message.headers())
                .ok()
                .filter(|letter| letter.topic == owner)
                .and_then(|letter| letter.origin)
        },
    );
    let mut found = HashSet::new();
    while let Some(origin) = letters.recv().await {
        if let Some(origin) = origin.with_context(|| format!("reading the DLQ {dlq}"))? {
            found.insert(origin);
        }
    }
    Ok(found)
}
