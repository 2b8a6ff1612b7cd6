//! `hookline dlq list` and `hookline dlq replay`: what the DLQs hold, and
//! sending it back through the pipeline once its cause is fixed.
//!
//! A replay validates each record again with the manifest as it is now, and
//! produces the valid ones to their main topic on their user's partition, with
//! their original event id, so that a record replayed twice is stored once.
//! The replay's position in each DLQ is committed in the consumer group
//! `<topic>.DLQ.replay`: a second replay starts where the first ended.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use hookline_contract::headers::{self as h, dlq, dlq_topic};
use hookline_contract::payload::Inspector;
use hookline_contract::pipeline::{PipelineManifest, TopicSpec};
use hookline_contract::{Envelope, partition_for};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The WebhookPipeline manifest.
    #[arg(short = 'f', long = "file", env = "HOOKLINE_PIPELINE")]
    file: PathBuf,
    /// Only the DLQ of this topic.
    #[arg(long)]
    topic: Option<String>,
    /// Only records with this reason code.
    #[arg(long)]
    reason: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DlqCommand::List(filter) => list(filter).await,
        DlqCommand::Replay { filter, dry_run } => replay(filter, dry_run).await,
    }
}

fn header<'a>(message: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

fn topics<'a>(manifest: &'a PipelineManifest, filter: &Filter) -> Vec<&'a TopicSpec> {
    manifest
        .spec
        .topics
        .iter()
        .filter(|t| filter.topic.as_ref().is_none_or(|only| *only == t.name))
        .collect()
}

fn wanted(message: &OwnedMessage, filter: &Filter) -> bool {
    filter
        .reason
        .as_ref()
        .is_none_or(|reason| header(message, dlq::REASON) == Some(reason.as_str()))
}

async fn list(filter: Filter) -> anyhow::Result<()> {
    let manifest = PipelineManifest::read(&filter.file)?;
    let bootstrap = manifest.spec.kafka.bootstrap_servers.clone();
    for topic in topics(&manifest, &filter) {
        let records = read(&bootstrap, &dlq_topic(&topic.name), None).await?;
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        for record in records.iter().filter(|r| wanted(r, &filter)) {
            *by_reason
                .entry(header(record, dlq::REASON).unwrap_or("?").to_owned())
                .or_default() += 1;
            println!(
                "{}@{}: {} at {}: {}",
                dlq_topic(&topic.name),
                record.offset(),
                header(record, dlq::REASON).unwrap_or("?"),
                header(record, dlq::STAGE).unwrap_or("?"),
                header(record, dlq::MESSAGE).unwrap_or("")
            );
        }
        let summary: Vec<String> = by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
        println!(
            "{}: {}",
            dlq_topic(&topic.name),
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
    let manifest = PipelineManifest::read(&filter.file)?;
    let bootstrap = manifest.spec.kafka.bootstrap_servers.clone();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("allow.auto.create.topics", "false")
        .create()?;
    for topic in topics(&manifest, &filter) {
        let inspector = Inspector::builtin(&topic.event_type, topic.pointers.clone())?;
        let dlq_name = dlq_topic(&topic.name);
        let group = format!("{dlq_name}.replay");
        let records = read(&bootstrap, &dlq_name, Some(&group)).await?;
        let partitions = current_partitions(&bootstrap, &topic.name).await?;
        let (mut replayed, mut still_invalid, mut skipped) = (0, 0, 0);
        let progress = progress_bar(&dlq_name, records.len());
        for record in progress.wrap_iter(records.iter()) {
            if !wanted(record, &filter) {
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
            let event_id = header(record, h::EVENT_ID)
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| {
                    hookline_contract::event_id(
                        header(record, h::SOURCE).unwrap_or("replay"),
                        &inspected.provider_event_id,
                    )
                });
            let envelope = Envelope {
                event_id,
                event_type: inspected.event_type.clone(),
                source: header(record, h::SOURCE).unwrap_or("replay").to_owned(),
                received_at: header(record, h::RECEIVED_AT)
                    .map(str::to_owned)
                    .unwrap_or_else(|| chrono::Utc::now().to_rfc3339()),
                partition_count: partitions,
                schema: inspector.schema_id().to_owned(),
            };
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
            let headers = envelope
                .to_headers()
                .iter()
                .fold(OwnedHeaders::new(), |hs, (k, v)| {
                    hs.insert(Header {
                        key: k,
                        value: Some(v.as_str()),
                    })
                });
            let partition =
                partition_for(inspected.user_id.as_bytes(), partitions).map_or(0, |p| p as i32);
            let out = FutureRecord::to(&topic.name)
                .key(&inspected.user_id)
                .payload(value)
                .headers(headers)
                .partition(partition);
            producer
                .send(out, Timeout::After(TIMEOUT))
                .await
                .map_err(|(e, _)| e)
                .with_context(|| format!("replaying {dlq_name}@{}", record.offset()))?;
            replayed += 1;
        }
        progress.finish_and_clear();
        if !dry_run && let Some(last) = records.last() {
            commit(&bootstrap, &group, &dlq_name, last.offset() + 1).await?;
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

async fn current_partitions(bootstrap: &str, topic: &str) -> anyhow::Result<u32> {
    let count = crate::local::topics::offsets(bootstrap, topic).await?.len() as u32;
    if count == 0 {
        bail!("topic {topic} has no partitions on the broker");
    }
    Ok(count)
}

/// The records of `topic` (one partition) from `group`'s committed offset, or
/// from the beginning, to its end.
async fn read(
    bootstrap: &str,
    topic: &str,
    group: Option<&str>,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let (bootstrap, topic, group) = (
        bootstrap.to_owned(),
        topic.to_owned(),
        group.map(str::to_owned),
    );
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", group.as_deref().unwrap_or("hookline-dlq-list"))
            .set("enable.auto.commit", "false")
            .create()?;
        let (_, end) = consumer.fetch_watermarks(&topic, 0, TIMEOUT)?;
        let start = match &group {
            Some(_) => {
                let mut wanted = TopicPartitionList::new();
                wanted.add_partition(&topic, 0);
                let committed = consumer.committed_offsets(wanted, TIMEOUT)?;
                committed
                    .find_partition(&topic, 0)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(0)
            }
            None => 0,
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&topic, 0, Offset::Offset(start))?;
        consumer.assign(&assignment)?;
        let mut records = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while records
            .last()
            .is_none_or(|m: &OwnedMessage| m.offset() + 1 < end)
        {
            if std::time::Instant::now() > deadline {
                bail!("reading {topic} took too long");
            }
            if let Some(message) = consumer.poll(Duration::from_millis(500)) {
                records.push(message?.detach());
            }
        }
        Ok(records)
    })
    .await?
}

async fn commit(bootstrap: &str, group: &str, topic: &str, next: i64) -> anyhow::Result<()> {
    let (bootstrap, group, topic) = (bootstrap.to_owned(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&topic, 0, Offset::Offset(next))?;
        consumer.commit(&offsets, CommitMode::Sync)?;
        Ok(())
    })
    .await?
}
