//! Sample traffic for `hookline up --sample-traffic`: a few hundred signed
//! webhooks of every topic's event type, provider retries and invalid ones
//! among them, sent to the running pipeline, and a report of where they went:
//! rows per shard, duplicates the workers recognised, webhooks quarantined to
//! the DLQs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use hookline_contract::definition::Definition;
use hookline_contract::event_types;
use hookline_contract::headers::dlq_topic;
use hookline_contract::payload::{Example, example};
use hookline_contract::pipeline::PipelineManifest;
use hookline_contract::secrets::SecretsDir;
use hookline_ingest::auth::{header, sign};
use hookline_kafka::{ClientSettings, offsets};
use serde_json::Value;

use crate::local::processes::{self, Process};
use crate::local::shards::{self, Rows, Shard};

/// Events of the first topic; every other topic gets [`OTHER_EVENTS`].
const FIRST_EVENTS: usize = 200;
const OTHER_EVENTS: usize = 60;
/// Provider retries, spread over all events.
const DUPLICATES: usize = 25;
/// Webhooks of the first topic without a user id: quarantined.
const INVALID: usize = 10;
/// Users the events belong to.
const USERS: usize = 50;
/// How long the sample's rows may take to arrive.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long one webhook may wait for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const DUPLICATES_METRIC: &str = "hookline_worker_processed_total{outcome=\"duplicate\"}";

/// One webhook of the sample.
struct Webhook {
    event_type: String,
    /// The signed `webhook-id`: the provider event id, the same on a retry,
    /// as a provider sends it (a type without an event-id pointer takes it).
    id: String,
    payload: Value,
}

/// The sample's webhooks, and the rows each events table should gain.
struct Sample {
    webhooks: Vec<Webhook>,
    expected: BTreeMap<&'static str, usize>,
}

/// Sends the sample to ingest at `ingest` (signed with the manifest's first
/// Standard Webhooks secret) and reports once every valid event has its row
/// and every retry was recognised.
pub async fn send_and_report(
    manifest: &PipelineManifest,
    secrets: &Path,
    ingest: &str,
    running: &[&Process],
) -> anyhow::Result<()> {
    let secrets = SecretsDir::new(secrets);
    let signing = &manifest.spec.ingest.signing_secret_ref.name;
    let secret = secrets
        .read_key(signing, "standard-webhooks")?
        .lines()
        .find(|l| l.starts_with("whsec_"))
        .map(str::to_owned)
        .with_context(|| format!("no whsec_ secret in {signing}/standard-webhooks"))?;
    let Sample { webhooks, expected } = sample(manifest)?;
    let shards = shards::connect(&manifest.spec, &secrets).await?;
    let kafka = ClientSettings::of(&manifest.spec.kafka, &secrets)?;
    let before = rows(&shards).await?;
    let dlq_before = dlq_depth(&kafka, manifest).await?;
    let duplicates_before = processes::metric_sum(running, DUPLICATES_METRIC).await;
    let answers = send(ingest, &secret, &webhooks).await?;
    println!(
        "sent {} webhooks: {}",
        answers.values().sum::<usize>(),
        describe(&answers)
    );
    if answers.keys().any(|status| *status != 202) {
        bail!(
            "ingest refused some of the sample ({}); see its log",
            describe(&answers)
        );
    }

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut after = rows(&shards).await?;
    let mut folded = 0.0;
    // Each table on its own: rows a stuck earlier run left behind must not
    // stand in for this run's.
    while expected
        .iter()
        .any(|(table, n)| added(&before, &after, table) < *n as i64)
        || folded < DUPLICATES as f64
    {
        if tokio::time::Instant::now() > deadline {
            bail!("the sample's events did not all reach the shards within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = rows(&shards).await?;
        folded = processes::metric_sum(running, DUPLICATES_METRIC).await - duplicates_before;
    }
    let dlq_after = dlq_depth(&kafka, manifest).await?;
    report(
        &shards,
        &before,
        &after,
        folded,
        dlq_after - dlq_before,
        dlq_after,
    );
    shards::close(shards).await;
    Ok(())
}

/// Every topic's share of the sample, and one topic's invalid webhooks.
fn sample(manifest: &PipelineManifest) -> anyhow::Result<Sample> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..8];
    let now = chrono::Utc::now().timestamp();
    let mut all = Vec::new();
    let mut expected = BTreeMap::new();
    let mut invalid = Vec::new();
    for (t, topic) in manifest.spec.topics.iter().enumerate() {
        let definition = Definition::of(&manifest.spec, topic)
            .with_context(|| format!("topic {}", topic.name))?;
        let count = if t == 0 { FIRST_EVENTS } else { OTHER_EVENTS };
        let values = |i: usize, user: &str| {
            let (event, entity, order) = (
                format!("evt_{run}_{t}_{i}"),
                format!("{}_{run}_{i}", definition.name),
                format!("ord_{run}_{i}"),
            );
            let payload = example(
                &definition,
                &Example {
                    provider_event_id: &event,
                    user_id: user,
                    entity_id: &entity,
                    order_id: &order,
                    event_time: now - 60 + (i as i64 % 60),
                    amount: 1000 + i as i64,
                },
            );
            Webhook {
                event_type: definition.name.clone(),
                id: event,
                payload,
            }
        };
        for i in 0..count {
            all.push(values(i, &format!("user-{}", i % USERS)));
        }
        *expected
            .entry(definition.storage.events_table())
            .or_insert(0) += count;
        if t == 0 {
            for i in 0..INVALID {
                let mut webhook = values(count + i, "nobody");
                if let Some(user) = webhook.payload.pointer_mut(&definition.fields.user_id) {
                    *user = Value::Null;
                }
                invalid.push(webhook);
            }
        }
    }
    // Providers retry: the same events again.
    let step = (all.len() / DUPLICATES).max(1);
    let retries: Vec<Webhook> = all
        .iter()
        .step_by(step)
        .take(DUPLICATES)
        .map(|w| Webhook {
            event_type: w.event_type.clone(),
            id: w.id.clone(),
            payload: w.payload.clone(),
        })
        .collect();
    all.extend(retries);
    all.extend(invalid);
    Ok(Sample {
        webhooks: all,
        expected,
    })
}

/// Sends the webhooks one after the other; answers by status.
async fn send(
    listen: &str,
    secret: &str,
    webhooks: &[Webhook],
) -> anyhow::Result<BTreeMap<u16, usize>> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let mut answers = BTreeMap::new();
    for webhook in webhooks {
        let body = serde_json::to_vec(&webhook.payload)?;
        let id = &webhook.id;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign::standard_v1(secret, id, timestamp, &body).context("signing")?;
        let status = client
            .post(format!("http://{listen}/webhooks/{}", webhook.event_type))
            .header(header::WEBHOOK_ID, id.as_str())
            .header(header::WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(header::WEBHOOK_SIGNATURE, signature)
            .body(body)
            .send()
            .await?
            .status()
            .as_u16();
        *answers.entry(status).or_insert(0) += 1;
    }
    Ok(answers)
}

fn describe(answers: &BTreeMap<u16, usize>) -> String {
    answers
        .iter()
        .map(|(status, n)| format!("{n} × {status}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn rows(shards: &[Shard]) -> anyhow::Result<Vec<Rows>> {
    let mut all = Vec::with_capacity(shards.len());
    for shard in shards {
        all.push(shard.rows().await?);
    }
    Ok(all)
}

fn added(before: &[Rows], after: &[Rows], table: &str) -> i64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| a.get(table).copied().unwrap_or(0) - b.get(table).copied().unwrap_or(0))
        .sum()
}

async fn dlq_depth(kafka: &ClientSettings, manifest: &PipelineManifest) -> anyhow::Result<i64> {
    let mut total = 0;
    for topic in &manifest.spec.topics {
        total += offsets::depth(kafka, &dlq_topic(&topic.name)).await?;
    }
    Ok(total)
}

fn report(
    shards: &[Shard],
    before: &[Rows],
    after: &[Rows],
    folded: f64,
    dlq_added: i64,
    dlq_total: i64,
) {
    println!("\nrows per shard (added by the sample / total):");
    let names: Vec<String> = shards.iter().map(|s| format!("shard {}", s.name)).collect();
    println!("  {:<16} {}", "table", row(&names));
    for table in event_types::tables() {
        let cells: Vec<String> = before
            .iter()
            .zip(after)
            .map(|(b, a)| {
                let (b, a) = (
                    b.get(table).copied().unwrap_or(0),
                    a.get(table).copied().unwrap_or(0),
                );
                format!("{} / {a}", a - b)
            })
            .collect();
        println!("  {table:<16} {}", row(&cells));
    }
    println!(
        "  {folded} duplicate deliveries recognised by the workers; {dlq_added} invalid webhooks quarantined to the DLQs ({dlq_total} in all)"
    );
}

fn row(cells: &[String]) -> String {
    cells
        .iter()
        .map(|c| format!("{c:>16}"))
        .collect::<Vec<_>>()
        .join(" ")
}
