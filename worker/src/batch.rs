//! A batch of records on its way to the shards: which records go to which
//! shard, which are poison, and which offsets to commit once it is written.
//! The plan is pure; [`Batch::write`] does the I/O and can be retried: what
//! was already done is not done again.

use std::collections::{BTreeMap, HashSet};

use futures_util::future::join_all;

use hookline_contract::reason::Stage;
use hookline_contract::{Envelope, shard_for};
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};

use crate::decode::{Event, Kind, Poison, RecordView, decode};
use crate::dlq::{DeadLetters, DlqError};
use crate::shards::Shards;
use crate::store::{self, ErrorClass, Stored};
use hookline_contract::payload::Inspector;

/// A failure worth retrying the batch for.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    #[error("writing to shard {shard} failed")]
    Write {
        shard: usize,
        #[source]
        source: store::Error,
    },
    #[error(transparent)]
    DeadLetter(#[from] DlqError),
}

impl Transient {
    pub fn label(&self) -> &'static str {
        match self {
            Transient::Write { source, .. } => source.label(),
            Transient::DeadLetter(DlqError::AckTimeout(_)) => "dlq_ack_timeout",
            Transient::DeadLetter(DlqError::Produce(_)) => "dlq_produce",
        }
    }
}

/// What a written batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub inserted: usize,
    pub duplicates: usize,
    /// Reason code of each dead-lettered record.
    pub dead_lettered: Vec<&'static str>,
}

/// Records grouped by shard, and the poison among them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub by_shard: BTreeMap<usize, Vec<usize>>,
    pub poison: Vec<usize>,
}

/// Groups decoded records by the shard of their user.
pub fn plan(decoded: &[Result<Event, Poison>], shards: u32) -> Plan {
    let mut plan = Plan::default();
    for (i, result) in decoded.iter().enumerate() {
        match result
            .as_ref()
            .ok()
            .and_then(|e| shard_for(e.user_id(), shards))
        {
            Some(shard) => plan.by_shard.entry(shard as usize).or_default().push(i),
            None => plan.poison.push(i),
        }
    }
    plan
}

/// The offset to commit per partition: one past the last record of the batch
/// (Kafka's committed offset is the next record to read).
pub fn next_offsets(records: impl IntoIterator<Item = (i32, i64)>) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for (partition, offset) in records {
        let entry = next.entry(partition).or_insert(offset + 1);
        *entry = (*entry).max(offset + 1);
    }
    next
}

/// A batch being written, possibly over several attempts.
pub struct Batch {
    pub records: Vec<OwnedMessage>,
    decoded: Vec<Result<Event, Poison>>,
    plan: Plan,
    shard_count: u32,
    written: HashSet<usize>,
    dead_lettered: HashSet<usize>,
    summary: Summary,
}

impl Batch {
    /// Decodes `records` and plans their writes.
    pub fn new(records: Vec<OwnedMessage>, kind: Kind, inspector: &Inspector, shards: u32) -> Self {
        let decoded: Vec<Result<Event, Poison>> = records
            .iter()
            .map(|record| {
                let envelope = Envelope::from_headers(
                    record
                        .headers()
                        .into_iter()
                        .flat_map(|h| h.iter())
                        .map(|h| (h.key, h.value)),
                );
                let view = RecordView {
                    partition: record.partition(),
                    key: record.key(),
                    value: record.payload(),
                    envelope: &envelope,
                };
                decode(kind, inspector, view)
            })
            .collect();
        let plan = plan(&decoded, shards);
        Self {
            records,
            decoded,
            plan,
            shard_count: shards,
            written: HashSet::new(),
            dead_lettered: HashSet::new(),
            summary: Summary::default(),
        }
    }

    /// Removes the records of `partitions` (revoked from this worker: their new
    /// owner reads them again from the last committed offset).
    pub fn abandon(&mut self, partitions: &[i32]) -> usize {
        let keep: Vec<bool> = self
            .records
            .iter()
            .map(|r| !partitions.contains(&r.partition()))
            .collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped == 0 {
            return 0;
        }
        let (mut records, mut decoded) = (Vec::new(), Vec::new());
        for ((record, result), keep) in self
            .records
            .drain(..)
            .zip(self.decoded.drain(..))
            .zip(&keep)
        {
            if *keep {
                records.push(record);
                decoded.push(result);
            }
        }
        // Indexes changed: written shards are simply written again (idempotent).
        self.plan = plan(&decoded, self.shard_count);
        self.records = records;
        self.decoded = decoded;
        self.written.clear();
        self.dead_lettered.clear();
        dropped
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The offsets to commit once the batch is written.
    pub fn next_offsets(&self) -> BTreeMap<i32, i64> {
        next_offsets(self.records.iter().map(|r| (r.partition(), r.offset())))
    }

    /// Writes every shard's part, each in one transaction, then dead-letters the
    /// poison. A shard whose batch hits a permanent error is written record by
    /// record so that only the bad records are dead-lettered.
    pub async fn write(
        &mut self,
        shards: &Shards,
        dead_letters: &DeadLetters,
    ) -> Result<Summary, Transient> {
        let parts: Vec<(usize, Vec<usize>)> = self
            .plan
            .by_shard
            .iter()
            .filter(|(shard, _)| !self.written.contains(shard))
            .map(|(shard, rows)| (*shard, rows.clone()))
            .collect();
        // The shards are independent: their transactions run at once.
        let attempts = join_all(parts.iter().map(|(shard, rows)| {
            let events: Vec<&Event> = rows
                .iter()
                .filter_map(|&i| self.decoded[i].as_ref().ok())
                .collect();
            async move { shards.write(*shard, &events).await }
        }))
        .await;
        let mut failure = None;
        for ((shard, rows), attempt) in parts.into_iter().zip(attempts) {
            let done = match attempt {
                Ok(outcomes) => {
                    self.count(&outcomes);
                    Ok(())
                }
                Err(error) => match error.class() {
                    ErrorClass::Transient => Err(Transient::Write {
                        shard,
                        source: error,
                    }),
                    ErrorClass::Permanent(_) => self.write_one_by_one(shards, shard, &rows).await,
                },
            };
            match done {
                Ok(()) => {
                    self.written.insert(shard);
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        let poison: Vec<usize> = self
            .decoded
            .iter()
            .enumerate()
            .filter(|(i, r)| r.is_err() && !self.dead_lettered.contains(i))
            .map(|(i, _)| i)
            .collect();
        for i in poison {
            if let Err(poison) = &self.decoded[i] {
                dead_letters.send(&self.records[i], poison).await?;
                tracing::warn!(
                    partition = self.records[i].partition(), offset = self.records[i].offset(),
                    reason = %poison.reason, stage = %poison.stage, message = %poison.message,
                    "record dead-lettered"
                );
                self.summary.dead_lettered.push(poison.reason.as_str());
                self.dead_lettered.insert(i);
            }
        }
        Ok(std::mem::take(&mut self.summary))
    }

    async fn write_one_by_one(
        &mut self,
        shards: &Shards,
        shard: usize,
        rows: &[usize],
    ) -> Result<(), Transient> {
        for &i in rows {
            let Ok(event) = &self.decoded[i] else {
                continue;
            };
            match shards.write(shard, &[event]).await {
                Ok(outcomes) => self.count(&outcomes),
                Err(error) => match error.class() {
                    ErrorClass::Transient => {
                        return Err(Transient::Write {
                            shard,
                            source: error,
                        });
                    }
                    ErrorClass::Permanent(reason) => {
                        let sqlstate = error.sqlstate().unwrap_or_default();
                        let message =
                            format!("{error}: SQLSTATE {sqlstate}: {}", root_cause(&error));
                        self.decoded[i] = Err(Poison {
                            stage: Stage::Write,
                            reason,
                            message,
                        });
                    }
                },
            }
        }
        Ok(())
    }

    fn count(&mut self, outcomes: &[Stored]) {
        for outcome in outcomes {
            match outcome {
                Stored::Inserted => self.summary.inserted += 1,
                Stored::AlreadyStored => self.summary.duplicates += 1,
            }
        }
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_contract::Reason;

    fn poison() -> Result<Event, Poison> {
        Err(Poison {
            stage: Stage::Decode,
            reason: Reason::Undecodable,
            message: String::new(),
        })
    }

    fn order(user: &str) -> Result<Event, Poison> {
        Ok(Event::Order(crate::store::OrderEvent {
            event_id: uuid::Uuid::nil(),
            provider_event_id: "e".into(),
            event_type: "order.paid".into(),
            order_id: "o".into(),
            user_id: user.into(),
            status: "paid".into(),
            amount: 1,
            currency: "eur".into(),
            occurred_at: chrono::Utc::now(),
            received_at: chrono::Utc::now(),
            payload: serde_json::Value::Null,
        }))
    }

    #[test]
    fn records_go_to_their_users_shard_and_poison_aside() {
        let users = ["user-1", "user-2", "user-3", "user-4"];
        let mut decoded: Vec<Result<Event, Poison>> = users.iter().map(|u| order(u)).collect();
        decoded.insert(2, poison());
        let plan = plan(&decoded, 2);
        assert_eq!(plan.poison, vec![2]);
        for (shard, rows) in &plan.by_shard {
            for &i in rows {
                let Ok(event) = &decoded[i] else { panic!() };
                assert_eq!(shard_for(event.user_id(), 2), Some(*shard as u32));
            }
        }
        let placed: usize = plan.by_shard.values().map(Vec::len).sum();
        assert_eq!(placed, 4);
    }

    #[test]
    fn commit_offsets_are_one_past_the_last_record_per_partition() {
        let next = next_offsets([(0, 5), (1, 9), (0, 7), (0, 6)]);
        assert_eq!(next, BTreeMap::from([(0, 8), (1, 10)]));
    }
}
