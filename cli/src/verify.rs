//! `hookline verify`: an audit that nothing was lost and that the latest
//! state is right.
//!
//! - Every record of the main topics below the workers' committed offsets must
//!   have its row on its user's shard, or its entry in the topic's DLQ; the
//!   records with neither are named ([`committed`]). Records past the
//!   committed offsets are lag: counted, not checked.
//! - Every state row (`orders`, `disputes`) must name its entity's newest
//!   stored event by the latest-state order, and every entity with events must
//!   have one ([`latest`]).
//!
//! Exit codes ([`report::Verdict`]): 0 clean, 1 missing or inconsistent, 2
//! could not check (broker or database unreachable, bad manifest or secrets).

pub mod committed;
pub mod latest;
pub mod report;

use std::process::ExitCode;

use anyhow::Context;
use hookline_contract::Storage;
use hookline_contract::definition::Definition;

use crate::local::PipelineFiles;
use crate::local::shards;
use crate::output::{Output, print_json};
use report::{Report, Verdict, unchecked_json};

/// Arguments of `hookline verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pipeline: PipelineFiles,
    /// `text` (lines) or `json` (one document; see the README).
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Runs the audit and prints it; the exit code is the verdict's.
pub async fn run(args: Args) -> ExitCode {
    let json = args.output.is_json();
    let verdict = match audit(&args.pipeline).await {
        Ok(report) => {
            if json {
                print_json(&report.json());
            } else {
                print!("{}", report.text());
            }
            let verdict = report.verdict();
            if verdict == Verdict::Failed {
                eprintln!("verify: committed events are missing or a latest state is wrong");
            }
            verdict
        }
        Err(error) => {
            if json {
                print_json(&unchecked_json(&error));
            }
            eprintln!("verify could not check: {error:#}");
            Verdict::Unchecked
        }
    };
    ExitCode::from(verdict.exit_code())
}

/// Everything the audit finds; an error means it could not look.
pub async fn audit(pipeline: &PipelineFiles) -> anyhow::Result<Report> {
    let manifest = pipeline.manifest().context("reading the manifest")?;
    let shards = shards::connect(&manifest.spec, &pipeline.secrets()).await?;
    let kafka = pipeline.kafka(&manifest)?;
    let mut report = Report::default();
    let result = async {
        // Each state table once per shard, whichever topics feed it, and
        // each declared type once within the shared one.
        let mut types: Vec<Definition> = Vec::new();
        for topic in &manifest.spec.topics {
            let event_type = Definition::of(&manifest.spec, topic)
                .with_context(|| format!("topic {}", topic.name))?;
            report
                .topics
                .push(committed::audit(&kafka, &shards, topic, &event_type).await?);
            let audited = types.iter().any(|t| {
                t.storage == event_type.storage
                    && (t.storage != Storage::Declared || t.name == event_type.name)
            });
            if !audited {
                types.push(event_type);
            }
        }
        for shard in &shards {
            for event_type in &types {
                report.state.push(latest::audit(shard, event_type).await?);
            }
        }
        anyhow::Ok(())
    }
    .await;
    shards::close(shards).await;
    result.map(|()| report)
}
