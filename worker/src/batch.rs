//! A batch of records on its way to the shards: for each record, what is left
//! to do (write it on its shard, dead-letter it, or nothing), and which
//! offsets to commit once the batch is done. Deciding is pure;
//! [`Batch::write`] does the I/O and can be retried: what was written or
//! dead-lettered is not done again.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use hookline_contract::payload::Inspector;
use hookline_contract::reason::Stage;
use hookline_contract::{EventType, Reason, shard_for};
use hookline_kafka::Envelope;
use hookline_kafka::produce::ProduceError;
use hookline_runtime::root_cause;
use rdkafka::Message;
use rdkafka::message::OwnedMessage;

use crate::decode::{Poison, RecordView, decode};
use crate::dlq::DeadLetters;
use crate::store::{self, ErrorClass, Event, Fields, Pools, Stored};

/// The shard of an event whose user has none, which only a manifest without
/// shards could cause (and manifests are refused without). Writing to it
/// fails as transient (`UnknownShard`): the record stalls its partition
/// visibly instead of counting as written.
const NO_SHARD: usize = usize::MAX;

/// A failure worth retrying the batch for.
#[derive(Debug, thiserror::Error)]
pub enum Transient {
    #[error("writing to shard {shard} failed")]
    Write {
        shard: usize,
        #[source]
        source: store::Error,
    },
    #[error("dead-lettering a record failed")]
    DeadLetter(#[source] ProduceError),
}

impl Transient {
    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Transient::Write { source, .. } => source.label(),
            Transient::DeadLetter(ProduceError::AckTimeout(_)) => "dlq_ack_timeout",
            Transient::DeadLetter(
                ProduceError::QueueFull | ProduceError::Refused(_) | ProduceError::Canceled,
            ) => "dlq_produce",
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

/// What is left to do for one record.
#[derive(Debug)]
enum State<E> {
    /// Decoded; waits for its shard's transaction.
    Pending { shard: usize, event: E },
    /// Can never be written; waits to be dead-lettered.
    Poison(Poison),
    /// Stored, or found stored already: done.
    Written,
    /// In the DLQ: done.
    DeadLettered,
}

impl<E: Event> State<E> {
    /// A decoded record placed on the shard of its user.
    fn placed(decoded: Result<Fields, Poison>, shards: u32) -> Self {
        match decoded {
            Err(poison) => State::Poison(poison),
            Ok(fields) => State::Pending {
                shard: shard_for(&fields.user_id, shards).map_or(NO_SHARD, |s| s as usize),
                event: E::from(fields),
            },
        }
    }
}

/// A record and what is left to do for it.
#[derive(Debug)]
struct Slot<E> {
    record: OwnedMessage,
    state: State<E>,
}

/// The records an attempt still has to deal with, by slot index.
#[derive(Debug, Default, PartialEq, Eq)]
struct Placement {
    /// Records to write, grouped by shard: one transaction each.
    by_shard: BTreeMap<usize, Vec<usize>>,
    /// Records to dead-letter, in batch order.
    poison: Vec<usize>,
}

impl Placement {
    fn of<E>(slots: &[Slot<E>]) -> Self {
        let mut placement = Self::default();
        for (i, slot) in slots.iter().enumerate() {
            match &slot.state {
                State::Pending { shard, .. } => {
                    placement.by_shard.entry(*shard).or_default().push(i);
                }
                State::Poison(_) => placement.poison.push(i),
                State::Written | State::DeadLettered => {}
            }
        }
        placement
    }
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
pub struct Batch<E> {
    slots: Vec<Slot<E>>,
    /// What the attempts so far did; handed out when the batch is done.
    summary: Summary,
}

impl<E: Event> Batch<E> {
    /// Decodes `records` as events of `event_type` and places them on their
    /// users' shards.
    pub fn new(
        records: Vec<OwnedMessage>,
        event_type: &EventType,
        inspector: &Inspector,
        shards: u32,
    ) -> Self {
        let slots = records
            .into_iter()
            .map(|record| {
                let envelope = Envelope::from_headers(record.headers());
                let view = RecordView {
                    partition: record.partition(),
                    key: record.key(),
                    value: record.payload(),
                    envelope: &envelope,
                };
                let state = State::placed(decode(event_type, inspector, view), shards);
                Slot { record, state }
            })
            .collect();
        Self {
            slots,
            summary: Summary::default(),
        }
    }

    /// Removes the records of `partitions` (revoked from this worker: their new
    /// owner reads them again from the last committed offset).
    pub fn abandon(&mut self, partitions: &[i32]) -> usize {
        let before = self.slots.len();
        self.slots
            .retain(|slot| !partitions.contains(&slot.record.partition()));
        before - self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The offsets to commit once the batch is written.
    pub fn next_offsets(&self) -> BTreeMap<i32, i64> {
        next_offsets(
            self.slots
                .iter()
                .map(|s| (s.record.partition(), s.record.offset())),
        )
    }

    /// Writes every shard's pending records, each shard in one transaction,
    /// then dead-letters the poison. A shard whose batch hits a permanent
    /// error is written record by record so that only the bad records are
    /// dead-lettered.
    pub async fn write(
        &mut self,
        pools: &Pools,
        dead_letters: &DeadLetters,
    ) -> Result<Summary, Transient> {
        let by_shard = Placement::of(&self.slots).by_shard;
        // The shards are independent: their transactions run at once.
        let attempts = join_all(by_shard.iter().map(|(&shard, rows)| {
            let events = self.pending(rows);
            async move { pools.write(shard, &events).await }
        }))
        .await;
        let mut failure = None;
        for ((shard, rows), attempt) in by_shard.into_iter().zip(attempts) {
            let done = match attempt {
                Ok(outcomes) => {
                    self.written(&rows, &outcomes);
                    Ok(())
                }
                Err(error) => match error.class() {
                    ErrorClass::Transient => Err(Transient::Write {
                        shard,
                        source: error,
                    }),
                    ErrorClass::Permanent(_) => self.write_one_by_one(pools, shard, &rows).await,
                },
            };
            if let Err(error) = done {
                failure = failure.or(Some(error));
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        self.dead_letter(dead_letters).await?;
        Ok(std::mem::take(&mut self.summary))
    }

    /// Copies of the pending events at `rows`, in order: what one shard
    /// transaction writes.
    fn pending(&self, rows: &[usize]) -> Vec<E> {
        rows.iter()
            .filter_map(|&i| match &self.slots[i].state {
                State::Pending { event, .. } => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    async fn write_one_by_one(
        &mut self,
        pools: &Pools,
        shard: usize,
        rows: &[usize],
    ) -> Result<(), Transient> {
        for &i in rows {
            let State::Pending { event, .. } = &self.slots[i].state else {
                continue;
            };
            match pools.write(shard, std::slice::from_ref(event)).await {
                Ok(outcomes) => self.written(&[i], &outcomes),
                Err(error) => match error.class() {
                    ErrorClass::Transient => {
                        return Err(Transient::Write {
                            shard,
                            source: error,
                        });
                    }
                    ErrorClass::Permanent(reason) => self.refused(i, &error, reason),
                },
            }
        }
        Ok(())
    }

    async fn dead_letter(&mut self, dead_letters: &DeadLetters) -> Result<(), Transient> {
        for i in Placement::of(&self.slots).poison {
            let slot = &mut self.slots[i];
            let State::Poison(poison) = &slot.state else {
                continue;
            };
            dead_letters
                .send(&slot.record, poison)
                .await
                .map_err(Transient::DeadLetter)?;
            tracing::warn!(
                partition = slot.record.partition(), offset = slot.record.offset(),
                reason = %poison.reason, stage = %poison.stage, message = %poison.message,
                "record dead-lettered"
            );
            self.summary.dead_lettered.push(poison.reason.as_str());
            slot.state = State::DeadLettered;
        }
        Ok(())
    }

    /// The records at `rows` are stored, with these outcomes.
    fn written(&mut self, rows: &[usize], outcomes: &[Stored]) {
        for &i in rows {
            self.slots[i].state = State::Written;
        }
        for outcome in outcomes {
            match outcome {
                Stored::Inserted => self.summary.inserted += 1,
                Stored::AlreadyStored => self.summary.duplicates += 1,
            }
        }
    }

    /// The shard refused the record at `row` for good.
    fn refused(&mut self, row: usize, error: &store::Error, reason: Reason) {
        let sqlstate = error.sqlstate().unwrap_or_default();
        self.slots[row].state = State::Poison(Poison {
            stage: Stage::Write,
            reason,
            message: format!("{error}: SQLSTATE {sqlstate}: {}", root_cause(error)),
        });
    }
}

#[cfg(test)]
mod tests;
