//! `hookline dlq list` and `hookline dlq replay`: what the DLQs hold, and
//! sending it back through the pipeline once its cause is fixed.
//!
//! A replay validates each record again with the manifest as it is now, and
//! produces the valid ones to their main topic on their user's partition, with
//! their original event id, so that a record replayed twice is stored once.
//! Where a replay resumes is kept per DLQ and per reason ([`positions`]): a
//! run never moves a position past a record it did not replay.
//!
//! Both commands stream the DLQ (a bounded read-ahead, never the whole topic
//! in memory) and take `--output json`.

pub mod positions;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use hookline_contract::headers::{self as h, dlq_topic};
use hookline_contract::partition_for;
use hookline_contract::payload::{Delivery, Inspector};
use hookline_contract::pipeline::{PipelineManifest, TopicSpec};
use hookline_kafka::envelope::header;
use hookline_kafka::produce::{Producer, Record};
use hookline_kafka::reader::Range;
use hookline_kafka::{ClientSettings, DeadLetter, Envelope, offsets};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use serde_json::json;

use crate::local::PipelineFiles;
use crate::output::{Output, print_json};
use crate::scan::scan;
use positions::{Key, Positions, UNREADABLE};

/// How long the broker may take to acknowledge a replayed record.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading one DLQ may take, replays included: long enough for a
/// large DLQ, and a bound so that a broker that stops answering fails the
/// command instead of hanging it.
const READ_DEADLINE: Duration = Duration::from_secs(600);
/// Records read ahead of the replay: bounds memory (payloads included)
/// whatever the DLQ's size.
const READ_AHEAD: usize = 64;
/// The one partition of a DLQ.
const PARTITION: i32 = 0;

/// Arguments of `hookline dlq`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DlqCommand {
    /// The records in the DLQs, with their reasons.
    List(Filter),
    /// Validate the records again and send the valid ones to their main topic.
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Say what would be replayed, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which records, and how to print them.
#[derive(Debug, clap::Args)]
struct Filter {
    #[command(flatten)]
    pipeline: PipelineFiles,
    /// Only the DLQ of this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only records with this reason code (`unreadable`: records without
    /// readable reason headers).
    #[arg(long, value_parser = parse_reason)]
    reason: Option<Key>,
    /// `text` (lines) or `json` (one document; see the README).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

fn parse_reason(name: &str) -> Result<Key, String> {
    positions::key(name).ok_or_else(|| {
        format!(
            "unknown reason code {name:?}; known: {}",
            positions::all_keys().join(", ")
        )
    })
}

impl Filter {
    fn topics<'a>(&self, manifest: &'a PipelineManifest) -> anyhow::Result<Vec<&'a TopicSpec>> {
        let topics: Vec<_> = manifest
            .spec
            .topics
            .iter()
            .filter(|t| self.topic.as_ref().is_none_or(|only| *only == t.name))
            .collect();
        if let (Some(only), true) = (&self.topic, topics.is_empty()) {
            bail!("the manifest has no topic {only}");
        }
        Ok(topics)
    }

    /// The reasons this run is about: the one asked for, or all.
    fn keys(&self) -> Vec<Key> {
        self.reason
            .map_or_else(positions::all_keys, |reason| vec![reason])
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DlqCommand::List(filter) => list(filter).await,
        DlqCommand::Replay { filter, dry_run } => replay(filter, dry_run).await,
    }
}

/// The reason key of a dead letter's context, read or not.
fn key_of(letter: Option<&DeadLetter>) -> Key {
    letter.map_or(UNREADABLE, |l| l.reason.as_str())
}

/// One DLQ record as `list` shows it: never its payload.
struct Listed {
    offset: i64,
    letter: Option<DeadLetter>,
    event_id: Option<String>,
}

async fn list(filter: Filter) -> anyhow::Result<()> {
    let manifest = filter.pipeline.manifest()?;
    let kafka = filter.pipeline.kafka(&manifest)?;
    let json = filter.output.is_json();
    let mut documents = Vec::new();
    for topic in filter.topics(&manifest)? {
        let dlq_name = dlq_topic(&topic.name);
        let range = Range {
            partition: PARTITION,
            start: 0,
            end: i64::MAX,
        };
        let mut records = scan(
            &kafka,
            "hookline-dlq-list",
            &dlq_name,
            vec![range],
            READ_DEADLINE,
            READ_AHEAD,
            |message| Listed {
                offset: message.offset(),
                letter: DeadLetter::from_headers(message.headers()).ok(),
                event_id: header(message.headers(), h::EVENT_ID).map(str::to_owned),
            },
        );
        let mut by_reason: BTreeMap<Key, usize> = BTreeMap::new();
        let mut listed = Vec::new();
        while let Some(record) = records.recv().await {
            let record = record.with_context(|| format!("reading the DLQ {dlq_name}"))?;
            let key = key_of(record.letter.as_ref());
            if filter.reason.is_some_and(|only| only != key) {
                continue;
            }
            *by_reason.entry(key).or_default() += 1;
            if json {
                listed.push(listed_json(&record));
                continue;
            }
            match &record.letter {
                Some(letter) => println!(
                    "{dlq_name}@{}: {} at {}: {}",
                    record.offset, letter.reason, letter.stage, letter.message
                ),
                None => println!("{dlq_name}@{}: no readable reason headers", record.offset),
            }
        }
        if json {
            documents.push(json!({
                "topic": topic.name,
                "dlq": dlq_name,
                "by_reason": by_reason,
                "records": listed,
            }));
            continue;
        }
        let summary: Vec<String> = by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
        println!(
            "{dlq_name}: {}",
            if summary.is_empty() {
                "empty".into()
            } else {
                summary.join(", ")
            }
        );
    }
    if json {
        print_json(&json!({ "dlqs": documents }));
    }
    Ok(())
}

fn listed_json(record: &Listed) -> serde_json::Value {
    let letter = record.letter.as_ref();
    json!({
        "offset": record.offset,
        "reason": key_of(letter),
        "stage": letter.map(|l| l.stage.as_str()),
        "message": letter.map(|l| l.message.as_str()),
        "at": letter.map(|l| l.at.to_rfc3339()),
        "origin": letter.map(|l| json!({
            "topic": l.topic,
            "partition": l.origin.map(|(p, _)| p),
            "offset": l.origin.map(|(_, o)| o),
        })),
        "event_id": record.event_id,
    })
}

/// What one replay run did to one DLQ.
#[derive(Debug, Default)]
struct Replayed {
    replayed: u64,
    /// Due records that fail validation again: not replayed, so they hold
    /// their reason's position.
    still_invalid: Vec<(i64, Key, String)>,
    /// Records of the run's reasons behind their positions: replayed before.
    already_replayed: u64,
    /// Records of other reasons.
    filtered_out: u64,
}

/// How a replay runs: for real or as a dry run, printing text or JSON.
#[derive(Debug, Clone, Copy)]
struct Mode {
    dry_run: bool,
    json: bool,
}

async fn replay(filter: Filter, dry_run: bool) -> anyhow::Result<()> {
    let manifest = filter.pipeline.manifest()?;
    let kafka = filter.pipeline.kafka(&manifest)?;
    let producer = Producer::new(&kafka.producer("hookline-dlq-replay"), ACK_TIMEOUT)
        .context("creating the replay producer")?;
    let json = filter.output.is_json();
    let mut documents = Vec::new();
    for topic in filter.topics(&manifest)? {
        let dlq_name = dlq_topic(&topic.name);
        let keys = filter.keys();
        let (committed, end) = committed_positions(&kafka, &dlq_name, &keys).await?;
        let mut positions = Positions::new(committed);
        let inspector = Inspector::for_topic(&manifest.spec, topic)
            .with_context(|| format!("compiling the schema of topic {}", topic.name))?;
        let mode = Mode { dry_run, json };
        let replayed = replay_dlq(
            &kafka,
            &producer,
            (topic, &inspector),
            &mut positions,
            end,
            mode,
        )
        .await?;
        if !dry_run {
            for (key, next) in positions.advanced(end) {
                let group = positions::group(&dlq_name, key);
                offsets::commit(&kafka, &group, &dlq_name, PARTITION, next)
                    .await
                    .with_context(|| format!("committing the replay position of {group}"))?;
            }
        }
        if json {
            documents.push(replayed_json(
                topic, &dlq_name, &replayed, &positions, end, dry_run,
            ));
            continue;
        }
        let verb = if dry_run { "would replay" } else { "replayed" };
        println!(
            "{dlq_name}: {verb} {}, still invalid {}, already replayed {}, filtered out {}",
            replayed.replayed,
            replayed.still_invalid.len(),
            replayed.already_replayed,
            replayed.filtered_out
        );
    }
    if json {
        print_json(&json!({ "dry_run": dry_run, "dlqs": documents }));
    }
    Ok(())
}

/// The committed replay position of each of `keys` in the DLQ `dlq`, and
/// the DLQ's end: where this run stops. Records that arrive while it runs
/// wait for the next run, so the positions it commits cover only what it read.
async fn committed_positions(
    kafka: &ClientSettings,
    dlq: &str,
    keys: &[Key],
) -> anyhow::Result<(Vec<(Key, Option<i64>)>, i64)> {
    let mut committed = Vec::with_capacity(keys.len());
    let mut end = None;
    for key in keys {
        let group = positions::group(dlq, key);
        let partition = offsets::offsets(kafka, dlq, &group)
            .await
            .with_context(|| format!("reading the replay position of {group}"))?
            .first()
            .copied();
        let Some(partition) = partition else {
            bail!("the DLQ {dlq} does not exist on the broker");
        };
        end.get_or_insert(partition.end);
        committed.push((*key, partition.committed));
    }
    Ok((committed, end.unwrap_or(0)))
}

/// Replays the due records of `topic`'s DLQ before `end`, noting in
/// `positions` each one it did not replay.
async fn replay_dlq(
    kafka: &ClientSettings,
    producer: &Producer,
    (topic, inspector): (&TopicSpec, &Inspector),
    positions: &mut Positions,
    end: i64,
    Mode { dry_run, json }: Mode,
) -> anyhow::Result<Replayed> {
    let dlq_name = dlq_topic(&topic.name);
    let partitions = offsets::offsets(kafka, &topic.name, &topic.name)
        .await
        .with_context(|| format!("reading the partitions of {}", topic.name))?
        .len() as u32;
    if partitions == 0 {
        bail!("topic {} has no partitions on the broker", topic.name);
    }
    let start = positions.start();
    let range = Range {
        partition: PARTITION,
        start,
        end,
    };
    let mut records = scan(
        kafka,
        "hookline-dlq-replay",
        &dlq_name,
        vec![range],
        READ_DEADLINE,
        READ_AHEAD,
        |message| message.detach(),
    );
    let progress = progress_bar(&dlq_name, (end - start).max(0) as u64, json);
    let mut done = Replayed::default();
    while let Some(record) = records.recv().await {
        let record: OwnedMessage = record.with_context(|| format!("reading the DLQ {dlq_name}"))?;
        progress.inc(1);
        let key = key_of(DeadLetter::from_headers(record.headers()).ok().as_ref());
        if !positions.covers(key) {
            done.filtered_out += 1;
            continue;
        }
        if !positions.is_due(key, record.offset()) {
            done.already_replayed += 1;
            continue;
        }
        let value = record.payload().unwrap_or_default();
        // Event times are judged against the original receipt, as ingest
        // judged them: a replay is the same webhook, not a new one.
        let received_at = header(record.headers(), h::RECEIVED_AT)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(chrono::Utc::now, |t| t.to_utc());
        // The message id the source signed, kept on the dead letter: the
        // event id of a type without an event-id pointer.
        let message_id = header(record.headers(), h::MESSAGE_ID);
        let inspected =
            match inspector.inspect_delivery(Delivery::new(value, message_id), received_at) {
                Ok(inspected) => inspected,
                Err(invalid) => {
                    positions.not_replayed(key, record.offset());
                    if !json {
                        progress.suspend(|| {
                            eprintln!(
                                "{dlq_name}@{}: still invalid: {}: {}",
                                record.offset(),
                                invalid.reason,
                                invalid.message
                            );
                        });
                    }
                    done.still_invalid.push((
                        record.offset(),
                        invalid.reason.as_str(),
                        invalid.message,
                    ));
                    continue;
                }
            };
        let source = header(record.headers(), h::SOURCE).unwrap_or("replay");
        // The original event id, so that a replayed event is stored once.
        let event_id = header(record.headers(), h::EVENT_ID)
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| hookline_contract::event_id(source, &inspected.provider_event_id));
        if dry_run {
            if !json {
                progress.suspend(|| {
                    println!(
                        "would replay {dlq_name}@{} as event {event_id} of user {}",
                        record.offset(),
                        inspected.user_id
                    );
                });
            }
            done.replayed += 1;
            continue;
        }
        let envelope = Envelope {
            event_id,
            event_type: inspected.event_type.clone(),
            source: source.to_owned(),
            received_at,
            partition_count: partitions,
            schema: inspector.schema_id().to_owned(),
            message_id: message_id.map(str::to_owned),
        };
        let partition = partition_for(inspected.user_id.as_bytes(), partitions).map(|p| p as i32);
        // A failure ends the run before any position is committed: the next
        // run sends again what this one sent (harmless, same event ids).
        producer
            .send(Record {
                topic: &topic.name,
                partition,
                key: Some(inspected.user_id.as_bytes()),
                value: Some(value),
                headers: envelope.to_headers(),
            })
            .await
            .with_context(|| format!("replaying {dlq_name}@{}", record.offset()))?;
        done.replayed += 1;
    }
    progress.finish_and_clear();
    Ok(done)
}

fn replayed_json(
    topic: &TopicSpec,
    dlq_name: &str,
    replayed: &Replayed,
    positions: &Positions,
    end: i64,
    dry_run: bool,
) -> serde_json::Value {
    let still_invalid: Vec<_> = replayed
        .still_invalid
        .iter()
        .map(|(offset, reason, message)| {
            json!({"offset": offset, "reason": reason, "message": message})
        })
        .collect();
    // A dry run commits nothing: the positions stay where they were.
    let after = if dry_run {
        positions.current()
    } else {
        positions.after(end)
    };
    json!({
        "topic": topic.name,
        "dlq": dlq_name,
        "end": end,
        "replayed": replayed.replayed,
        "still_invalid": still_invalid,
        "already_replayed": replayed.already_replayed,
        "filtered_out": replayed.filtered_out,
        "positions": after,
    })
}

/// A bar on standard error while records are replayed; hidden when standard
/// error is not a terminal, so logs and pipes get only the summary lines, and
/// with `--output json`, whose readers want the document alone.
fn progress_bar(dlq_name: &str, records: u64, json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let progress = ProgressBar::new(records).with_message(dlq_name.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} records, {eta} left")
    {
        progress.set_style(style.progress_chars("=> "));
    }
    progress
}
