//! The batch being filled: records as the consumer hands them over, until a
//! cap (records, bytes) is reached or the batch's wait is over. With no wait
//! (the default) the loop writes a batch as soon as the consumer has nothing
//! more ready; records arrive a whole fetch at a time, so a lone event makes
//! a batch of one and a backlog makes full batches.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use tokio::time::Instant;

/// When a batch is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub records: usize,
    /// Keys and values, summed.
    pub bytes: usize,
}

/// Records waiting to be written as one batch.
#[derive(Debug)]
pub struct Filling {
    caps: Caps,
    records: Vec<OwnedMessage>,
    bytes: usize,
    /// When the first record came.
    opened: Option<Instant>,
}

impl Filling {
    pub fn new(caps: Caps) -> Self {
        Self {
            caps,
            records: Vec::with_capacity(caps.records),
            bytes: 0,
            opened: None,
        }
    }

    pub fn push(&mut self, record: OwnedMessage) {
        self.bytes += size(&record);
        self.opened.get_or_insert_with(Instant::now);
        self.records.push(record);
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No more records may join: the next one is for the next batch.
    pub fn is_full(&self) -> bool {
        self.records.len() >= self.caps.records || self.bytes >= self.caps.bytes
    }

    /// When the batch is to be written, having waited `wait` for more
    /// records: at once when full; never when empty.
    pub fn closes_at(&self, wait: Duration) -> Option<Instant> {
        let opened = self.opened?;
        Some(if self.is_full() {
            opened
        } else {
            opened + wait
        })
    }

    /// Whether the batch is to be written now.
    pub fn is_due(&self, wait: Duration, now: Instant) -> bool {
        self.closes_at(wait).is_some_and(|at| at <= now)
    }

    /// Drops the records of `partitions` (revoked: their next owner reads
    /// them again); how many.
    pub fn abandon(&mut self, partitions: &[i32]) -> usize {
        let before = self.records.len();
        self.records
            .retain(|record| !partitions.contains(&record.partition()));
        self.bytes = self.records.iter().map(size).sum();
        if self.records.is_empty() {
            self.opened = None;
        }
        before - self.records.len()
    }

    /// The records, in the order received; the filling starts again empty.
    pub fn take(&mut self) -> Vec<OwnedMessage> {
        self.bytes = 0;
        self.opened = None;
        std::mem::replace(&mut self.records, Vec::with_capacity(self.caps.records))
    }
}

fn size(record: &OwnedMessage) -> usize {
    record.key().map_or(0, <[u8]>::len) + record.payload().map_or(0, <[u8]>::len)
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;

    use super::*;

    fn record(partition: i32, value: &[u8]) -> OwnedMessage {
        OwnedMessage::new(
            Some(value.to_vec()),
            Some(b"user".to_vec()),
            "orders.webhooks".into(),
            Timestamp::NotAvailable,
            partition,
            0,
            None,
        )
    }

    fn filling(records: usize, bytes: usize) -> Filling {
        Filling::new(Caps { records, bytes })
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_wait_a_lone_record_is_due_at_once() {
        let mut batch = filling(500, 1 << 20);
        assert_eq!(batch.closes_at(Duration::ZERO), None);
        batch.push(record(0, b"{}"));
        assert!(batch.is_due(Duration::ZERO, Instant::now()));
        assert!(!batch.is_full());
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_wait_the_batch_is_due_when_the_wait_is_over_or_it_is_full() {
        let wait = Duration::from_millis(50);
        let mut batch = filling(2, 1 << 20);
        batch.push(record(0, b"{}"));
        assert!(!batch.is_due(wait, Instant::now()));
        tokio::time::advance(wait).await;
        assert!(batch.is_due(wait, Instant::now()));

        let mut batch = filling(2, 1 << 20);
        batch.push(record(0, b"{}"));
        batch.push(record(0, b"{}"));
        assert!(batch.is_full());
        assert!(
            batch.is_due(wait, Instant::now()),
            "a full batch waits for nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_byte_cap_counts_keys_and_values() {
        // Each record: 4 bytes of key, 6 of value.
        let mut batch = filling(100, 20);
        batch.push(record(0, b"123456"));
        assert!(!batch.is_full());
        batch.push(record(0, b"123456"));
        assert!(batch.is_full());
    }

    #[tokio::test(start_paused = true)]
    async fn taking_the_records_starts_an_empty_batch() {
        let mut batch = filling(2, 1 << 20);
        batch.push(record(0, b"a"));
        batch.push(record(1, b"b"));
        let taken = batch.take();
        assert_eq!(taken.len(), 2);
        assert!(batch.is_empty() && !batch.is_full());
        assert_eq!(batch.closes_at(Duration::ZERO), None);
    }

    #[tokio::test(start_paused = true)]
    async fn revoked_partitions_leave_the_batch() {
        let mut batch = filling(3, 1 << 20);
        for partition in [0, 1, 0] {
            batch.push(record(partition, b"x"));
        }
        assert!(batch.is_full());
        assert_eq!(batch.abandon(&[0]), 2);
        assert_eq!(batch.len(), 1);
        assert!(!batch.is_full());
        assert_eq!(batch.abandon(&[1]), 1);
        assert_eq!(batch.closes_at(Duration::ZERO), None);
    }
}
