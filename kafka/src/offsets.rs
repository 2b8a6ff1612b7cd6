//! Offsets: where each partition ends, where a group has committed, the lag
//! between them, and committing a position by hand.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::ClientSettings;
use crate::reader::{TIMEOUT, watermarks};
use crate::{Error, Result};

/// One partition's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub partition: i32,
    /// The oldest offset the broker still keeps.
    pub start: i64,
    /// One past the last record.
    pub end: i64,
    /// The group's committed offset (the next record it reads), if any.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// Records the group has still to read.
    pub fn lag(&self) -> i64 {
        (self.end - self.committed.unwrap_or(self.start).max(self.start)).max(0)
    }

    /// Records the broker holds.
    pub fn depth(&self) -> i64 {
        self.end - self.start
    }
}

/// The offsets of every partition of `topic`, with `group`'s commits.
pub async fn offsets(
    settings: &ClientSettings,
    topic: &str,
    group: &str,
) -> Result<Vec<PartitionOffsets>> {
    let (settings, topic, group) = (settings.clone(), topic.to_owned(), group.to_owned());
    blocking(move || {
        let consumer = reader(&settings, &group)?;
        let count = partition_count(&consumer, &topic)?;
        let mut wanted = TopicPartitionList::new();
        for partition in 0..count {
            wanted.add_partition(&topic, partition);
        }
        let committed = consumer
            .committed_offsets(wanted, TIMEOUT)
            .map_err(|source| Error::FetchCommitted {
                group: group.clone(),
                topic: topic.clone(),
                source: Box::new(source),
            })?;
        (0..count)
            .map(|partition| {
                let (start, end) = watermarks(&consumer, &topic, partition)?;
                let committed =
                    committed
                        .find_partition(&topic, partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        });
                Ok(PartitionOffsets {
                    partition,
                    start,
                    end,
                    committed,
                })
            })
            .collect()
    })
    .await
}

/// Records `topic` holds, over all its partitions.
pub async fn depth(settings: &ClientSettings, topic: &str) -> Result<i64> {
    let (settings, topic) = (settings.clone(), topic.to_owned());
    blocking(move || {
        let consumer = reader(&settings, "hookline-depth")?;
        let mut total = 0;
        for partition in 0..partition_count(&consumer, &topic)? {
            let (low, high) = watermarks(&consumer, &topic, partition)?;
            total += high - low;
        }
        Ok(total)
    })
    .await
}

/// Commits `next` (the next offset to read) for `topic[partition]` in `group`.
pub async fn commit(
    settings: &ClientSettings,
    group: &str,
    topic: &str,
    partition: i32,
    next: i64,
) -> Result<()> {
    let (settings, topic, group) = (settings.clone(), topic.to_owned(), group.to_owned());
    blocking(move || {
        let consumer = reader(&settings, &group)?;
        let failed = |source| Error::Commit {
            group: group.clone(),
            topic: topic.clone(),
            source: Box::new(source),
        };
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&topic, partition, Offset::Offset(next))
            .map_err(failed)?;
        consumer.commit(&offsets, CommitMode::Sync).map_err(failed)
    })
    .await
}

fn reader(settings: &ClientSettings, group: &str) -> Result<BaseConsumer> {
    settings
        .reader(group)
        .create()
        .map_err(|e| Error::CreateClient(Box::new(e)))
}

/// Partitions of `topic`; 0 when the broker does not know it.
fn partition_count(consumer: &BaseConsumer, topic: &str) -> Result<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|source| Error::FetchMetadata {
            topic: topic.to_owned(),
            source: Box::new(source),
        })?;
    Ok(metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none())
        .map_or(0, |t| t.partitions().len() as i32))
}

/// Runs a blocking librdkafka call off the async executor.
pub async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(Error::BlockingTask)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: i64, end: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets {
            partition: 0,
            start,
            end,
            committed,
        }
    }

    #[test]
    fn lag_counts_from_the_commit_or_the_oldest_record_kept() {
        assert_eq!(at(0, 10, Some(4)).lag(), 6);
        assert_eq!(at(0, 10, None).lag(), 10);
        // Records the broker dropped are not lag.
        assert_eq!(at(5, 10, Some(2)).lag(), 5);
        assert_eq!(at(5, 10, None).depth(), 5);
        assert_eq!(at(0, 10, Some(10)).lag(), 0);
    }
}
