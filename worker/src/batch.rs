//! A batch of records on its way to the shards: for each record, what is left
//! to do (write it on its shard, dead-letter it, or nothing), and which
//! offsets to commit once the batch is done. Deciding is pure;
//! [`Batch::write`] does the I/O and can be retried: what was written or
//! dead-lettered is not done again.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use hookline_contract::payload::Inspector;
use hookline_contract::reason::Stage;
use hookline_contract::{Reason, shard_for};
use hookline_kafka::Envelope;
use hookline_runtime::root_cause;
use rdkafka::Message;
use rdkafka::message::OwnedMessage;

use crate::decode::{Poison, RecordView, decode};
use crate::dlq::{DeadLetterError, DeadLetters, InFlight, Kept};
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
    #[error("dead-lettering the record at partition {partition} offset {offset} failed")]
    DeadLetter {
        partition: i32,
        offset: i64,
        #[source]
        source: DeadLetterError,
    },
}

impl Transient {
    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Transient::Write { source, .. } => source.label(),
            Transient::DeadLetter { source, .. } => source.label(),
        }
    }

    /// The shard's transaction did not finish within its deadline: a smaller
    /// batch may, where the same one retried never would.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Transient::Write {
                source: store::Error::Timeout(_),
                ..
            }
        )
    }

    /// The broker refuses the DLQ for good: the record's partition stops
    /// until someone acts, and says so. (partition, offset) of the record.
    pub fn refused_dead_letter(&self) -> Option<(i32, i64)> {
        match self {
            Transient::DeadLetter {
                partition,
                offset,
                source: DeadLetterError::Refused { .. },
            } => Some((*partition, *offset)),
            _ => None,
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
    /// Moved into its shard's transaction by the attempt under way (the
    /// event is moved, not copied, so that its payload is held once); back
    /// to `Pending` if the transaction fails. An attempt is only ever
    /// dropped half-way at shutdown, which drops its batch with it.
    Writing,
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
    /// Its dead letter, handed to the producer and not acknowledged yet.
    in_flight: Option<InFlight>,
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
                State::Writing | State::Written | State::DeadLettered => {}
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
    /// Decodes `records` with `inspector` (their topic's) and places them on
    /// their users' shards.
    pub fn new(records: Vec<OwnedMessage>, inspector: &Inspector, shards: u32) -> Self {
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
                let state = State::placed(decode(inspector, view), shards);
                Slot {
                    record,
                    state,
                    in_flight: None,
                }
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

    /// Writes every shard's pending records, each shard in one transaction
    /// that must finish within `deadline`, then dead-letters the poison. A
    /// shard whose batch hits a permanent error is written record by record
    /// so that only the bad records are dead-lettered.
    pub async fn write(
        &mut self,
        pools: &Pools,
        dead_letters: &DeadLetters,
        deadline: Duration,
    ) -> Result<Summary, Transient> {
        let by_shard: Vec<(usize, Vec<usize>, Vec<E>)> = Placement::of(&self.slots)
            .by_shard
            .into_iter()
            .map(|(shard, rows)| {
                let events = self.take_pending(&rows);
                (shard, rows, events)
            })
            .collect();
        let payloads: Vec<Vec<&str>> = by_shard
            .iter()
            .map(|(_, rows, _)| self.payloads(rows))
            .collect();
        // The shards are independent: their transactions run at once.
        let attempts = join_all(by_shard.iter().zip(&payloads).map(
            |((shard, _, events), payloads)| async move {
                tokio::time::timeout(deadline, pools.write(*shard, events, payloads))
                    .await
                    .unwrap_or(Err(store::Error::Timeout(deadline)))
            },
        ))
        .await;
        drop(payloads);
        let mut failure = None;
        for ((shard, rows, events), attempt) in by_shard.into_iter().zip(attempts) {
            let done = match attempt {
                Ok(outcomes) => {
                    self.written(&rows, &outcomes);
                    Ok(())
                }
                Err(error) => {
                    self.put_back(shard, &rows, events);
                    match error.class() {
                        ErrorClass::Transient => Err(Transient::Write {
                            shard,
                            source: error,
                        }),
                        ErrorClass::Permanent(_) => {
                            self.write_one_by_one(pools, shard, &rows, deadline).await
                        }
                    }
                }
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

    /// Moves the pending events at `rows` out of their slots, in order: what
    /// one shard transaction writes, without a copy of any payload.
    fn take_pending(&mut self, rows: &[usize]) -> Vec<E> {
        rows.iter()
            .filter_map(
                |&i| match std::mem::replace(&mut self.slots[i].state, State::Writing) {
                    State::Pending { event, .. } => Some(event),
                    other => {
                        self.slots[i].state = other;
                        None
                    }
                },
            )
            .collect()
    }

    /// The JSON texts of the records at `rows` that an attempt took, in
    /// order: the store reads them from the records, so that a payload is
    /// held once, as the bytes it arrived in.
    fn payloads(&self, rows: &[usize]) -> Vec<&str> {
        rows.iter()
            .filter(|&&i| matches!(self.slots[i].state, State::Writing))
            .map(|&i| self.payload(i))
            .collect()
    }

    /// The JSON text of the record at `i`. Decoding parsed it, so it is
    /// UTF-8; were it not, the empty text would make PostgreSQL refuse the
    /// row (22P02) and the record would be dead-lettered, never stored as
    /// something else.
    fn payload(&self, i: usize) -> &str {
        let bytes = self.slots[i].record.payload().unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// The transaction of `events` (taken from `rows`) failed: they are
    /// pending again.
    fn put_back(&mut self, shard: usize, rows: &[usize], events: Vec<E>) {
        for (&i, event) in rows.iter().zip(events) {
            self.slots[i].state = State::Pending { shard, event };
        }
    }

    /// Splits off the later half of the records still to be dealt with, for
    /// a batch too large to write within its deadline; `None` when fewer
    /// than two are left. Records keep their order, so the first half's
    /// offsets precede the second's in every partition and it can be
    /// committed first.
    pub fn split_off(&mut self) -> Option<Batch<E>> {
        let open: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(slot.state, State::Pending { .. } | State::Poison(_)))
            .map(|(i, _)| i)
            .collect();
        if open.len() < 2 {
            return None;
        }
        let at = open[open.len() / 2];
        Some(Batch {
            slots: self.slots.split_off(at),
            summary: Summary::default(),
        })
    }

    async fn write_one_by_one(
        &mut self,
        pools: &Pools,
        shard: usize,
        rows: &[usize],
        deadline: Duration,
    ) -> Result<(), Transient> {
        for &i in rows {
            let State::Pending { event, .. } = &self.slots[i].state else {
                continue;
            };
            let payload = [self.payload(i)];
            let write = pools.write(shard, std::slice::from_ref(event), &payload);
            let attempt = tokio::time::timeout(deadline, write)
                .await
                .unwrap_or(Err(store::Error::Timeout(deadline)));
            match attempt {
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
            let (partition, offset) = (slot.record.partition(), slot.record.offset());
            let kept = dead_letters
                .send(&slot.record, poison, &mut slot.in_flight)
                .await
                .map_err(|source| Transient::DeadLetter {
                    partition,
                    offset,
                    source,
                })?;
            let reason = match kept {
                Kept::Whole => poison.reason,
                Kept::Cut(_) => Reason::DeadLetterTooLarge,
            };
            tracing::warn!(
                partition, offset, reason = %reason, original_reason = %poison.reason,
                stage = %poison.stage, message = %poison.message, kept = ?kept,
                "record dead-lettered"
            );
            self.summary.dead_lettered.push(reason.as_str());
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
