//! What `hookline verify` found, the exit code it means, and how it prints:
//! lines for people, or the JSON document whose shape the README states.

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_kafka::offsets::PartitionOffsets;
use serde_json::{Value, json};

/// How many missing records and inconsistent entities are named, per topic
/// and per table: all are counted, the first ones listed, so that a wiped
/// shard does not turn the report into the whole topic in memory.
pub const LISTED: usize = 1000;

/// The audit's answer, and the process's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every committed record stored or dead-lettered, every state row the
    /// newest of its events; records the workers have not reached yet (lag)
    /// are no fault.
    Clean,
    /// A committed record with neither its row nor its DLQ entry, or a state
    /// row that is not its entity's newest stored event.
    Failed,
    /// The audit could not look: broker or database unreachable, a manifest
    /// or secret that cannot be read.
    Unchecked,
}

impl Verdict {
    pub const fn exit_code(self) -> u8 {
        match self {
            Verdict::Clean => 0,
            Verdict::Failed => 1,
            Verdict::Unchecked => 2,
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Failed => "failed",
            Verdict::Unchecked => "unchecked",
        }
    }
}

/// A committed record with neither its row nor its DLQ entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub partition: i32,
    pub offset: i64,
    /// What could be read from the payload (none when it cannot be read).
    pub provider_event_id: Option<String>,
    pub user_id: Option<String>,
    pub entity_id: Option<String>,
}

/// One main topic's records, audited.
#[derive(Debug, Clone, Default)]
pub struct TopicAudit {
    pub topic: String,
    pub event_type: String,
    pub partitions: Vec<PartitionOffsets>,
    /// Committed records with their row on their user's shard.
    pub stored: u64,
    /// Committed records the workers dead-lettered.
    pub dead_lettered: u64,
    /// Committed records with neither: every one counted, the first
    /// [`LISTED`] named.
    pub missing: u64,
    pub missing_listed: Vec<Missing>,
}

impl TopicAudit {
    /// Records past the committed offsets: not reached yet, not checked.
    pub fn lag(&self) -> i64 {
        self.partitions.iter().map(PartitionOffsets::lag).sum()
    }

    pub fn add_missing(&mut self, missing: Missing) {
        self.missing += 1;
        if self.missing_listed.len() < LISTED {
            self.missing_listed.push(missing);
        }
    }
}

/// An event, as a state row names it or as the events table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRef {
    pub provider_event_id: String,
    pub event_type: String,
    pub at: DateTime<Utc>,
}

/// An entity whose state row is not its newest stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent {
    pub entity_id: String,
    /// What the state row names; none when events are stored but no state.
    pub stored: Option<EventRef>,
    /// The newest stored event by the latest-state order; none when a state
    /// row has no event at all.
    pub newest: Option<EventRef>,
}

/// One state table on one shard, audited.
#[derive(Debug, Clone, Default)]
pub struct StateAudit {
    pub shard: String,
    pub table: String,
    /// State rows compared with their entity's events.
    pub checked: u64,
    /// Every inconsistent entity counted, the first [`LISTED`] named.
    pub inconsistent: u64,
    pub listed: Vec<Inconsistent>,
}

impl StateAudit {
    pub fn add(&mut self, inconsistent: Inconsistent) {
        self.inconsistent += 1;
        if self.listed.len() < LISTED {
            self.listed.push(inconsistent);
        }
    }
}

/// Everything the audit found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub topics: Vec<TopicAudit>,
    pub state: Vec<StateAudit>,
}

impl Report {
    pub fn verdict(&self) -> Verdict {
        let missing: u64 = self.topics.iter().map(|t| t.missing).sum();
        let inconsistent: u64 = self.state.iter().map(|s| s.inconsistent).sum();
        if missing + inconsistent > 0 {
            Verdict::Failed
        } else {
            Verdict::Clean
        }
    }

    /// The report as lines.
    pub fn text(&self) -> String {
        let sum = |f: fn(&TopicAudit) -> u64| self.topics.iter().map(f).sum::<u64>();
        let lag: i64 = self.topics.iter().map(TopicAudit::lag).sum();
        let mut out = format!(
            "committed records: {} stored, {} in the DLQ, {} missing; {lag} past the committed offsets (lag, not checked)\n",
            sum(|t| t.stored),
            sum(|t| t.dead_lettered),
            sum(|t| t.missing),
        );
        for topic in &self.topics {
            for m in &topic.missing_listed {
                out += &format!(
                    "  missing: {}[{}]@{}: event {} of user {}\n",
                    topic.topic,
                    m.partition,
                    m.offset,
                    m.provider_event_id.as_deref().unwrap_or("?"),
                    m.user_id.as_deref().unwrap_or("?")
                );
            }
            if topic.missing > topic.missing_listed.len() as u64 {
                out += &format!(
                    "  … and {} more missing in {}\n",
                    topic.missing - topic.missing_listed.len() as u64,
                    topic.topic
                );
            }
        }
        let checked: u64 = self.state.iter().map(|s| s.checked).sum();
        let inconsistent: u64 = self.state.iter().map(|s| s.inconsistent).sum();
        out += &format!(
            "latest state: {checked} state rows checked, {inconsistent} entities not at their newest event\n"
        );
        for table in &self.state {
            for i in &table.listed {
                out += &format!(
                    "  inconsistent: {} on shard {}: state {}, newest stored event {}\n",
                    i.entity_id,
                    table.shard,
                    describe(i.stored.as_ref(), "none"),
                    describe(i.newest.as_ref(), "none"),
                );
            }
            if table.inconsistent > table.listed.len() as u64 {
                out += &format!(
                    "  … and {} more inconsistent in {} on shard {}\n",
                    table.inconsistent - table.listed.len() as u64,
                    table.table,
                    table.shard
                );
            }
        }
        out
    }

    /// The report as the JSON document of `--output json`.
    pub fn json(&self) -> Value {
        let verdict = self.verdict();
        let sum = |f: fn(&TopicAudit) -> u64| self.topics.iter().map(f).sum::<u64>();
        json!({
            "result": verdict.label(),
            "exit_code": verdict.exit_code(),
            "committed": {
                "stored": sum(|t| t.stored),
                "dead_lettered": sum(|t| t.dead_lettered),
                "missing": sum(|t| t.missing),
            },
            "lag": self.topics.iter().map(TopicAudit::lag).sum::<i64>(),
            "inconsistent": self.state.iter().map(|s| s.inconsistent).sum::<u64>(),
            "topics": self.topics.iter().map(topic_json).collect::<Vec<_>>(),
            "state": self.state.iter().map(state_json).collect::<Vec<_>>(),
            "error": null,
        })
    }
}

/// The JSON document of an audit that could not look.
pub fn unchecked_json(error: &anyhow::Error) -> Value {
    let verdict = Verdict::Unchecked;
    json!({
        "result": verdict.label(),
        "exit_code": verdict.exit_code(),
        "error": format!("{error:#}"),
    })
}

fn describe(event: Option<&EventRef>, none: &str) -> String {
    event.map_or_else(
        || none.to_owned(),
        |e| {
            format!(
                "{} ({} at {})",
                e.provider_event_id,
                e.event_type,
                rfc3339(e.at)
            )
        },
    )
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn topic_json(topic: &TopicAudit) -> Value {
    json!({
        "topic": topic.topic,
        "event_type": topic.event_type,
        "stored": topic.stored,
        "dead_lettered": topic.dead_lettered,
        "missing": topic.missing,
        "lag": topic.lag(),
        "partitions": topic.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "start": p.start,
            "end": p.end,
            "committed": p.committed,
            "lag": p.lag(),
        })).collect::<Vec<_>>(),
        "missing_records": topic.missing_listed.iter().map(|m| json!({
            "partition": m.partition,
            "offset": m.offset,
            "provider_event_id": m.provider_event_id,
            "user_id": m.user_id,
            "entity_id": m.entity_id,
        })).collect::<Vec<_>>(),
        "missing_truncated": topic.missing > topic.missing_listed.len() as u64,
    })
}

fn event_json(event: Option<&EventRef>) -> Value {
    event.map_or(Value::Null, |e| {
        json!({
            "provider_event_id": e.provider_event_id,
            "event_type": e.event_type,
            "at": rfc3339(e.at),
        })
    })
}

fn state_json(table: &StateAudit) -> Value {
    json!({
        "shard": table.shard,
        "table": table.table,
        "checked": table.checked,
        "inconsistent": table.inconsistent,
        "entities": table.listed.iter().map(|i| json!({
            "entity_id": i.entity_id,
            "state": event_json(i.stored.as_ref()),
            "newest": event_json(i.newest.as_ref()),
        })).collect::<Vec<_>>(),
        "truncated": table.inconsistent > table.listed.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(committed: Option<i64>, end: i64) -> PartitionOffsets {
        PartitionOffsets {
            partition: 0,
            start: 0,
            end,
            committed,
        }
    }

    fn missing(offset: i64) -> Missing {
        Missing {
            partition: 0,
            offset,
            provider_event_id: Some(format!("evt_{offset}")),
            user_id: Some("u".into()),
            entity_id: None,
        }
    }

    #[test]
    fn lag_alone_is_clean_and_counted() {
        let report = Report {
            topics: vec![TopicAudit {
                topic: "t".into(),
                partitions: vec![offsets(Some(3), 5), offsets(None, 2)],
                stored: 3,
                ..TopicAudit::default()
            }],
            state: vec![],
        };
        assert_eq!(report.verdict(), Verdict::Clean);
        assert_eq!(report.json()["lag"], 4);
        assert_eq!(report.json()["exit_code"], 0);
        assert!(
            report
                .text()
                .contains("3 stored, 0 in the DLQ, 0 missing; 4 past")
        );
    }

    #[test]
    fn missing_or_inconsistent_fails_with_1() {
        let mut topic = TopicAudit::default();
        topic.add_missing(missing(1));
        let report = Report {
            topics: vec![topic],
            state: vec![],
        };
        assert_eq!(report.verdict(), Verdict::Failed);
        assert_eq!(report.json()["result"], "failed");

        let mut table = StateAudit::default();
        table.add(Inconsistent {
            entity_id: "ord_1".into(),
            stored: None,
            newest: None,
        });
        let report = Report {
            topics: vec![],
            state: vec![table],
        };
        assert_eq!(report.verdict().exit_code(), 1);
        assert_eq!(
            report.json()["state"][0]["entities"][0]["state"],
            Value::Null
        );
    }

    #[test]
    fn all_missing_are_counted_and_the_first_listed() {
        let mut topic = TopicAudit::default();
        for offset in 0..(LISTED as i64 + 5) {
            topic.add_missing(missing(offset));
        }
        assert_eq!(topic.missing, LISTED as u64 + 5);
        assert_eq!(topic.missing_listed.len(), LISTED);
        assert_eq!(topic_json(&topic)["missing_truncated"], true);
    }

    #[test]
    fn the_unchecked_document_says_why_with_2() {
        let error = anyhow::anyhow!("broker down").context("reading the offsets");
        let document = unchecked_json(&error);
        assert_eq!(document["exit_code"], 2);
        assert_eq!(document["result"], "unchecked");
        assert_eq!(document["error"], "reading the offsets: broker down");
    }
}
