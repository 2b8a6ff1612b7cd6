//! Offsets on their way to the broker. A written batch's offsets are
//! committed at once when the last commit is older than the interval, and
//! otherwise with the next commit, at most one interval later: a flood of
//! small batches (a short fetch wait makes them) is not a flood of commits,
//! which the broker pays for (tansu writes each to its database), while a
//! lone event's offset still goes out at once. Only written offsets enter,
//! so whatever is committed is durable; a crash costs at most an interval of
//! records read again and found stored.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Next offsets (the next record to read) per partition.
pub type Offsets = BTreeMap<i32, i64>;

/// Written offsets not yet committed, and the last ones committed.
#[derive(Debug)]
pub struct Commits {
    interval: Duration,
    /// Written, not yet handed to a commit.
    pending: Offsets,
    /// Handed to a commit; asynchronous, so not known to be stored.
    sent: Offsets,
    /// When offsets were last handed to a commit.
    last: Option<Instant>,
}

impl Commits {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            pending: Offsets::new(),
            sent: Offsets::new(),
            last: None,
        }
    }

    /// A batch with these next offsets is durable.
    pub fn written(&mut self, next: Offsets) {
        for (partition, offset) in next {
            let entry = self.pending.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
        }
    }

    /// When the pending offsets are to be committed (a time past when they
    /// are due now); `None` when there are none.
    pub fn due_at(&self) -> Option<Instant> {
        if self.pending.is_empty() {
            return None;
        }
        Some(self.next_commit().unwrap_or_else(Instant::now))
    }

    /// The earliest time of the next commit; `None` when it may be at once.
    fn next_commit(&self) -> Option<Instant> {
        Some(self.last? + self.interval)
    }

    /// The offsets to commit now, if they are due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<Offsets> {
        if self.pending.is_empty() || self.next_commit().is_some_and(|at| at > now) {
            return None;
        }
        self.last = Some(now);
        let due = std::mem::take(&mut self.pending);
        self.sent.extend(due.iter().map(|(p, o)| (*p, *o)));
        Some(due)
    }

    /// Everything written: what shutdown commits, and waits for.
    pub fn all(&self) -> Offsets {
        let mut all = self.sent.clone();
        all.extend(self.pending.iter().map(|(p, o)| (*p, *o)));
        all
    }

    /// Forgets `partitions` (revoked: their commits are the next owner's).
    pub fn forget(&mut self, partitions: &[i32]) {
        self.pending.retain(|p, _| !partitions.contains(p));
        self.sent.retain(|p, _| !partitions.contains(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(100);

    fn offsets(pairs: &[(i32, i64)]) -> Offsets {
        pairs.iter().copied().collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_batch_is_committed_at_once_and_nothing_when_nothing_was_written() {
        let mut commits = Commits::new(INTERVAL);
        assert_eq!(commits.due_at(), None);
        assert_eq!(commits.take_due(Instant::now()), None);
        commits.written(offsets(&[(0, 5)]));
        let now = Instant::now();
        // Due already, whenever it is asked.
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(commits.due_at().is_some_and(|at| at >= now));
        assert_eq!(commits.take_due(now), Some(offsets(&[(0, 5)])));
        assert_eq!(commits.due_at(), None, "nothing left");
    }

    #[tokio::test(start_paused = true)]
    async fn batches_within_an_interval_go_out_together_with_their_highest_offsets() {
        let mut commits = Commits::new(INTERVAL);
        commits.written(offsets(&[(0, 5)]));
        commits.take_due(Instant::now());
        commits.written(offsets(&[(0, 9), (1, 3)]));
        commits.written(offsets(&[(0, 12)]));
        assert_eq!(commits.take_due(Instant::now()), None, "too soon");
        let due = commits.due_at().unwrap();
        assert_eq!(due, Instant::now() + INTERVAL);
        tokio::time::advance(INTERVAL).await;
        assert_eq!(
            commits.take_due(Instant::now()),
            Some(offsets(&[(0, 12), (1, 3)]))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_quiet_interval_a_batch_is_committed_at_once() {
        let mut commits = Commits::new(INTERVAL);
        commits.written(offsets(&[(0, 1)]));
        commits.take_due(Instant::now());
        tokio::time::advance(INTERVAL * 3).await;
        commits.written(offsets(&[(0, 2)]));
        assert_eq!(commits.take_due(Instant::now()), Some(offsets(&[(0, 2)])));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_commits_everything_written_and_revoked_partitions_are_forgotten() {
        let mut commits = Commits::new(INTERVAL);
        commits.written(offsets(&[(0, 4), (1, 7)]));
        commits.take_due(Instant::now());
        commits.written(offsets(&[(1, 9), (2, 1)]));
        assert_eq!(commits.all(), offsets(&[(0, 4), (1, 9), (2, 1)]));
        commits.forget(&[1]);
        assert_eq!(commits.all(), offsets(&[(0, 4), (2, 1)]));
    }
}
