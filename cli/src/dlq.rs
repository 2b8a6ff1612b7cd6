//! `hookline dlq list` and `hookline dlq replay`: what the DLQs hold, and
//! sending it back through the pipeline once its cause is fixed.
//!
//! A replay validates each record again with the manifest as it is now, and
//! produces the valid ones to their main topic on their user's partition, with
//! their original event id, so that a record replayed twice is stored once.
//! The replay's position in each DLQ is committed in the consumer group
//! `<topic>.DLQ.replay`: a second replay starts where the first ended.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use hookline_contract::headers::{self as h, dlq_topic};
use hookline_contract::partition_for;
use hookline_contract::payload::Inspector;
use hookline_contract::pipeline::{PipelineManifest, TopicSpec};
use hookline_kafka::envelope::header;
use hookline_kafka::produce::{Producer, Record};
use hookline_kafka::reader::{Range, Reader};
use hookline_kafka::{ClientSettings, DeadLetter, Envelope, offsets};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::Message;
use rdkafka::message::OwnedMessage;

use crate::local::PipelineFiles;

/// How long the broker may take to acknowledge a replayed record.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading one DLQ may take.
const READ_DEADLINE: Duration = Duration::from_secs(120);
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

/// Which records.
#[derive(Debug, clap::Args)]
struct Filter {
    #[command(flatten)]
    pipeline: PipelineFiles,
    /// Only the DLQ of this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only records with this reason code.
    #[arg(long)]
    reason: Option<String>,
}

impl Filter {
    fn topics<'a>(&self, manifest: &'a PipelineManifest) -> Vec<&'a TopicSpec> {
        manifest
            .spec
            .topics
            .iter()
            .filter(|t| self.topic.as_ref().is_none_or(|only| *only == t.name))
            .collect()
    }

    fn matches(&self, letter: Option<&DeadLetter>) -> bool {
        self.reason
            .as_ref()
            .is_none_or(|reason| letter.is_some_and(|l| l.reason.as_str() == reason))
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DlqCommand::List(filter) => list(filter).await,
        DlqCommand::Replay { filter, dry_run } => replay(filter, dry_run).await,
    }
}

async fn list(filter: Filter) -> anyhow::Result<()> {
    let manifest = filter.pipeline.manifest()?;
    let kafka = ClientSettings::of(&manifest.spec.kafka);
    for topic in filter.topics(&manifest) {
        let dlq_name = dlq_topic(&topic.name);
        let records = read(&kafka, &dlq_name, "hookline-dlq-list", 0).await?;
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for record in &records {
            let letter = DeadLetter::from_headers(record.headers()).ok();
            if !filter.matches(letter.as_ref()) {
                continue;
            }
            let Some(letter) = letter else {
                *by_reason.entry("unreadable".to_owned()).or_default() += 1;
                println!("{dlq_name}@{}: no readable reason headers", record.offset());
                continue;
            };
            *by_reason.entry(letter.reason.to_string()).or_default() += 1;
            println!(
                "{dlq_name}@{}: {} at {}: {}",
                record.offset(),
                letter.reason,
                letter.stage,
                letter.message
            );
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
    Ok(())
}

async fn replay(filter: Filter, dry_run: bool) -> anyhow::Result<()> {
    let manifest = filter.pipeline.manifest()?;
    let kafka = ClientSettings::of(&manifest.spec.kafka);
    let producer = Producer::new(&kafka.producer("hookline-dlq-replay"), ACK_TIMEOUT)?;
    for topic in filter.topics(&manifest) {
        let inspector = Inspector::builtin(&topic.event_type, topic.pointers.clone())?;
        let dlq_name = dlq_topic(&topic.name);
        let group = format!("{dlq_name}.replay");
        let start = offsets::offsets(&kafka, &dlq_name, &group)
            .await?
            .first()
            .and_then(|p| p.committed)
            .unwrap_or(0);
        let records = read(&kafka, &dlq_name, &group, start).await?;
        let partitions = offsets::offsets(&kafka, &topic.name, &topic.name)
            .await?
            .len() as u32;
        if partitions == 0 {
            bail!("topic {} has no partitions on the broker", topic.name);
        }
        let (mut replayed, mut still_invalid, mut skipped) = (0, 0, 0);
        let progress = progress_bar(&dlq_name, records.len());
        for record in progress.wrap_iter(records.iter()) {
            if !filter.matches(DeadLetter::from_headers(record.headers()).ok().as_ref()) {
                skipped += 1;
                continue;
            }
            let value = record.payload().unwrap_or_default();
            let inspected = match inspector.inspect(value) {
                Ok(inspected) => inspected,
                Err(invalid) => {
                    still_invalid += 1;
                    progress.suspend(|| {
                        eprintln!(
                            "{dlq_name}@{}: still invalid: {}: {}",
                            record.offset(),
                            invalid.reason,
                            invalid.message
                        );
                    });
                    continue;
                }
            };
            let source = header(record.headers(), h::SOURCE).unwrap_or("replay");
            // The original event id, so that a replayed event is stored once.
            let event_id = header(record.headers(), h::EVENT_ID)
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| {
                    hookline_contract::event_id(source, &inspected.provider_event_id)
                });
            if dry_run {
                progress.suspend(|| {
                    println!(
                        "would replay {dlq_name}@{} as event {event_id} of user {}",
                        record.offset(),
                        inspected.user_id
                    );
                });
                replayed += 1;
                continue;
            }
            let envelope = Envelope {
                event_id,
                event_type: inspected.event_type.clone(),
                source: source.to_owned(),
                received_at: header(record.headers(), h::RECEIVED_AT)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or_else(chrono::Utc::now, |t| t.to_utc()),
                partition_count: partitions,
                schema: inspector.schema_id().to_owned(),
            };
            let partition =
                partition_for(inspected.user_id.as_bytes(), partitions).map(|p| p as i32);
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
            replayed += 1;
        }
        progress.finish_and_clear();
        if !dry_run && let Some(last) = records.last() {
            offsets::commit(&kafka, &group, &dlq_name, PARTITION, last.offset() + 1).await?;
        }
        let verb = if dry_run { "would replay" } else { "replayed" };
        println!(
            "{dlq_name}: {verb} {replayed}, still invalid {still_invalid}, filtered out {skipped}"
        );
    }
    Ok(())
}

/// A bar on standard error while records are replayed; hidden when standard
/// error is not a terminal, so logs and pipes get only the summary lines.
fn progress_bar(dlq_name: &str, records: usize) -> ProgressBar {
    let progress = ProgressBar::new(records as u64).with_message(dlq_name.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} records, {eta} left")
    {
        progress.set_style(style.progress_chars("=> "));
    }
    progress
}

/// The records of the DLQ `topic` from offset `start` to its end.
async fn read(
    kafka: &ClientSettings,
    topic: &str,
    group: &str,
    start: i64,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let (kafka, topic, group) = (kafka.clone(), topic.to_owned(), group.to_owned());
    let range = Range {
        partition: PARTITION,
        start,
        end: i64::MAX,
    };
    Ok(hookline_kafka::blocking(move || {
        let mut reader = Reader::open(&kafka, &group, &topic, &[range], READ_DEADLINE)?;
        let mut records = Vec::new();
        while let Some(message) = reader.next_record()? {
            records.push(message.detach());
        }
        Ok(records)
    })
    .await?)
}
