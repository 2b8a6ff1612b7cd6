//! Reading partitions from a start offset up to an end offset, by assignment:
//! the tools' way to look at a topic without joining its group.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::client::ClientSettings;
use crate::{Error, Result};

/// How long one metadata or offset request may take.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);
/// How long one poll waits before the deadline is looked at again.
const POLL: Duration = Duration::from_millis(500);

/// One partition to read: records at offsets `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub partition: i32,
    pub start: i64,
    /// One past the last offset read; the partition's end offset reads all.
    pub end: i64,
}

/// Reads the records of [`Range`]s of one topic, in offset order within each
/// partition, and stops once every range is read. It blocks its thread: run
/// it inside `spawn_blocking`.
pub struct Reader {
    consumer: BaseConsumer,
    topic: String,
    /// The end still to reach, by partition.
    remaining: BTreeMap<i32, i64>,
    deadline: Duration,
    started: Instant,
}

impl Reader {
    /// Opens a reader of `ranges` of `topic`. Each range is narrowed to what
    /// the broker holds (a start it no longer keeps reads from the oldest
    /// record kept; an end past its last record stops there); an empty range
    /// is not read. Reading all must take at most `deadline`.
    pub fn open(
        settings: &ClientSettings,
        group: &str,
        topic: &str,
        ranges: &[Range],
        deadline: Duration,
    ) -> Result<Self> {
        let consumer: BaseConsumer = settings
            .reader(group)
            .create()
            .map_err(|e| Error::CreateClient(Box::new(e)))?;
        let mut assignment = TopicPartitionList::new();
        let mut remaining = BTreeMap::new();
        for range in ranges {
            let (low, high) = watermarks(&consumer, topic, range.partition)?;
            let (start, end) = (range.start.max(low), range.end.min(high));
            if start < end {
                assignment
                    .add_partition_offset(topic, range.partition, Offset::Offset(start))
                    .map_err(|source| Error::Assign {
                        topic: topic.to_owned(),
                        source: Box::new(source),
                    })?;
                remaining.insert(range.partition, end);
            }
        }
        consumer
            .assign(&assignment)
            .map_err(|source| Error::Assign {
                topic: topic.to_owned(),
                source: Box::new(source),
            })?;
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            remaining,
            deadline,
            started: Instant::now(),
        })
    }

    /// The next record of a range, or `None` once every range is read.
    pub fn next_record(&mut self) -> Result<Option<BorrowedMessage<'_>>> {
        loop {
            if self.remaining.is_empty() {
                return Ok(None);
            }
            if self.started.elapsed() > self.deadline {
                return Err(Error::ReadDeadline {
                    topic: self.topic.clone(),
                    deadline: self.deadline,
                });
            }
            let Some(polled) = self.consumer.poll(POLL) else {
                continue;
            };
            let message = polled.map_err(|source| Error::Read {
                topic: self.topic.clone(),
                source: Box::new(source),
            })?;
            let Some(&end) = self.remaining.get(&message.partition()) else {
                continue;
            };
            if message.offset() + 1 >= end {
                self.remaining.remove(&message.partition());
                let mut done = TopicPartitionList::new();
                done.add_partition(&self.topic, message.partition());
                // Only saves fetching past the end: such records are skipped
                // below all the same, so a failed pause changes nothing.
                let _ = self.consumer.pause(&done);
            }
            if message.offset() < end {
                return Ok(Some(message));
            }
        }
    }
}

/// The low and high watermarks of a partition.
pub(crate) fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64)> {
    consumer
        .fetch_watermarks(topic, partition, TIMEOUT)
        .map_err(|source| Error::FetchWatermarks {
            topic: topic.to_owned(),
            partition,
            source: Box::new(source),
        })
}
