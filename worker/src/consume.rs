//! The consumer loop: fill a batch with what the consumer has ready, write
//! it, commit its offsets, and on a transient failure pause the partitions
//! and retry with backoff, never skipping and never committing past the
//! failure. A batch whose transaction cannot finish within the write deadline
//! is split in halves, written in order: retried whole it would time out for
//! ever.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hookline_contract::Storage;
use hookline_runtime::root_cause;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::batch::{Batch, Transient};
use crate::commits::{Commits, Offsets};
use crate::config::Config;
use crate::consumer::WorkerConsumer;
use crate::dlq::DeadLetters;
use crate::filling::{Caps, Filling};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::{DeclaredEvent, DisputeEvent, Event, OrderEvent, Pools};

/// How long shutdown may spend on a last attempt at a failing batch.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The loop's collaborators.
pub struct Worker {
    pub config: Config,
    pub consumer: Arc<WorkerConsumer>,
    pub pools: Pools,
    pub dead_letters: DeadLetters,
    pub metrics: Arc<Metrics>,
    /// Told when a refused DLQ stops a partition, so that `/readyz` says why.
    pub health: Arc<Health>,
}

impl Worker {
    /// Runs until `shutdown`: then finishes (or abandons, after a grace period)
    /// the batch in hand and commits what was written.
    pub async fn run(self, shutdown: CancellationToken) {
        // The one place a storage meets the Rust type its rows are written
        // from; everything below is the same for every storage.
        match self.config.inspector.definition().storage {
            Storage::Orders => Run::<OrderEvent>::new(&self).until(shutdown).await,
            Storage::Disputes => Run::<DisputeEvent>::new(&self).until(shutdown).await,
            Storage::Declared => Run::<DeclaredEvent>::new(&self).until(shutdown).await,
        }
    }

    fn batch<E: Event>(&self, records: Vec<OwnedMessage>) -> Batch<E> {
        Batch::new(records, &self.config.inspector, self.pools.count())
    }

    fn pause(&self) {
        if let Ok(assignment) = self.consumer.assignment()
            && let Err(error) = self.consumer.pause(&assignment)
        {
            tracing::warn!(error = %error, "pausing partitions failed");
        }
    }

    fn resume(&self) {
        if let Ok(assignment) = self.consumer.assignment()
            && let Err(error) = self.consumer.resume(&assignment)
        {
            tracing::warn!(error = %error, "resuming partitions failed");
        }
    }

    /// Commits `next` (the next offset to read, per partition) in `mode`.
    /// Asynchronous commits let the next batch be written while the broker
    /// stores the offsets: they are sent in batch order, each only once its
    /// batch is durable, and a later one covers an earlier one, so whatever
    /// becomes of one of them the committed position never passes a record
    /// that is not written. At worst it stays behind, and the records after
    /// it are read again and found stored.
    async fn commit(&self, next: &Offsets, mode: CommitMode) {
        let mut offsets = TopicPartitionList::new();
        for (&partition, &next) in next {
            if let Err(error) =
                offsets.add_partition_offset(&self.config.topic, partition, Offset::Offset(next))
            {
                tracing::error!(error = %error, partition, "building the commit failed");
                return;
            }
        }
        if offsets.count() == 0 {
            return;
        }
        let committed = match mode {
            CommitMode::Async => self.consumer.commit(&offsets, mode),
            CommitMode::Sync => {
                let consumer = self.consumer.clone();
                match tokio::task::spawn_blocking(move || consumer.commit(&offsets, mode)).await {
                    Ok(committed) => committed,
                    Err(error) => {
                        tracing::warn!(error = %error, "committing offsets did not complete");
                        return;
                    }
                }
            }
        };
        if let Err(error) = committed {
            self.metrics.commit_failed();
            tracing::warn!(error = %error, "committing offsets failed; records will be read again");
        }
    }
}

/// The loop's state between records.
struct Run<'w, E> {
    worker: &'w Worker,
    /// Records received and not yet handed to a write.
    filling: Filling,
    /// A batch that failed, possibly split in pieces, in record order; it
    /// holds its partitions (paused) until written, so nothing is committed
    /// past it. Empty when nothing failed.
    failing: VecDeque<Batch<E>>,
    backoff: Backoff,
    retry_at: tokio::time::Instant,
    /// Offsets of written batches, committed at most once per interval.
    commits: Commits,
}

impl<'w, E: Event> Run<'w, E> {
    fn new(worker: &'w Worker) -> Self {
        let config = &worker.config;
        Self {
            worker,
            filling: Filling::new(Caps {
                records: config.batch_size,
                bytes: config.batch_bytes,
            }),
            failing: VecDeque::new(),
            backoff: Backoff::new(Duration::from_millis(100), config.max_backoff),
            retry_at: tokio::time::Instant::now(),
            commits: Commits::new(config.commit_interval),
        }
    }

    async fn until(mut self, shutdown: CancellationToken) {
        let worker = self.worker;
        let consumer = &worker.consumer;
        let wait = worker.config.batch_wait;
        loop {
            // Rebalance callbacks run inside `recv`, which may also return a
            // record of a partition revoked and assigned again in the same
            // poll: revoked records are dropped before anything is pushed,
            // written or committed, and never after.
            self.abandon_revoked();
            // A failing batch holds the partitions: nothing new is written until
            // it is, so records are never committed past a gap. Records still
            // come in meanwhile (up to the caps), which keeps a group member
            // polling, and so a member.
            let closes_at = if self.failing.is_empty() {
                self.filling.closes_at(wait)
            } else {
                None
            };
            let commit_at = self.commits.due_at();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(self.retry_at), if !self.failing.is_empty() => {
                    self.retry().await;
                }
                () = tokio::time::sleep_until(commit_at.unwrap_or(self.retry_at)), if commit_at.is_some() => {
                    self.commit_due().await;
                }
                () = tokio::time::sleep_until(closes_at.unwrap_or(self.retry_at)), if closes_at.is_some() => {
                    self.flush().await;
                }
                received = consumer.recv(), if !self.filling.is_full() => match received {
                    Ok(message) => {
                        self.receive(message.detach());
                        self.receive_ready();
                        let now = tokio::time::Instant::now();
                        if self.failing.is_empty() && self.filling.is_due(wait, now) {
                            self.flush().await;
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "consumer error"),
                },
            }
        }
        self.shut_down().await;
    }

    fn receive(&mut self, record: OwnedMessage) {
        self.abandon_revoked();
        self.filling.push(record);
    }

    /// Takes every record the consumer has ready, without waiting: the batch
    /// then closes as soon as nothing more is ready (or a cap is hit).
    fn receive_ready(&mut self) {
        while !self.filling.is_full() {
            match self.worker.consumer.recv().now_or_never() {
                Some(Ok(message)) => self.receive(message.detach()),
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "consumer error");
                    break;
                }
                None => break,
            }
        }
    }

    /// Writes the filled records as one batch; on failure it becomes the
    /// failing batch and the partitions pause.
    async fn flush(&mut self) {
        let records = self.filling.take();
        if records.is_empty() {
            return;
        }
        let mut batch = self.worker.batch(records);
        if let Err(error) = self.write(&mut batch).await {
            self.worker.pause();
            self.failing.push_back(batch);
            self.failed(&error);
        }
    }

    /// Another attempt at the first piece of the failing batch; once every
    /// piece is written the partitions resume.
    async fn retry(&mut self) {
        self.abandon_revoked();
        let Some(mut batch) = self.failing.pop_front() else {
            return;
        };
        match self.write(&mut batch).await {
            Ok(()) => {
                self.backoff.reset();
                if self.failing.is_empty() {
                    self.worker.resume();
                } else {
                    // The next piece at once: the shard took this one.
                    self.retry_at = tokio::time::Instant::now();
                }
            }
            Err(error) => {
                self.failing.push_front(batch);
                self.failed(&error);
            }
        }
    }

    /// The first piece of the failing batch failed with `error`: split it
    /// when it ran out of time, and say when the DLQ stopped a partition;
    /// then wait before the next attempt.
    fn failed(&mut self, error: &Transient) {
        let worker = self.worker;
        if error.is_timeout()
            && let Some(first) = self.failing.front_mut()
            && let Some(second) = first.split_off()
        {
            worker.metrics.batch_split();
            tracing::warn!(
                records = first.len() + second.len(),
                first = first.len(),
                "batch did not finish within the write deadline; writing it in halves"
            );
            self.failing.insert(1, second);
            // Smaller is the remedy, not waiting: the halves go at once.
            self.retry_at = tokio::time::Instant::now();
            return;
        }
        if let Some((partition, offset)) = error.refused_dead_letter() {
            let why = format!(
                "partition {partition} stopped at offset {offset}: the broker refuses its dead letter to {} ({}); fix the DLQ topic or its permissions, and it resumes",
                worker.dead_letters.topic(),
                root_cause(error)
            );
            tracing::error!(
                topic = %worker.config.topic, partition, offset, dlq = %worker.dead_letters.topic(),
                error = %error, cause = %root_cause(error),
                "the DLQ refuses a dead letter; the partition stops here until it is fixed"
            );
            worker.metrics.dead_letter_blocked(partition, true);
            worker.health.block(partition, why);
        }
        self.retry_at = tokio::time::Instant::now() + self.backoff.next_delay();
    }

    /// One attempt at a batch: write, dead-letter, commit.
    async fn write(&mut self, batch: &mut Batch<E>) -> Result<(), Transient> {
        let worker = self.worker;
        let started = Instant::now();
        let deadline = worker.config.write_timeout;
        match batch
            .write(&worker.pools, &worker.dead_letters, deadline)
            .await
        {
            Ok(summary) => {
                worker
                    .metrics
                    .processed(summary.inserted, summary.duplicates);
                for reason in &summary.dead_lettered {
                    worker.metrics.dead_lettered(reason);
                }
                for partition in batch.next_offsets().keys() {
                    if worker.health.unblock(*partition) {
                        worker.metrics.dead_letter_blocked(*partition, false);
                        tracing::info!(
                            partition,
                            "the DLQ takes dead letters again; partition resumed"
                        );
                    }
                }
                self.commits.written(batch.next_offsets());
                self.commit_due().await;
                worker
                    .metrics
                    .batch(batch.len(), started.elapsed().as_secs_f64());
                tracing::debug!(
                    records = batch.len(),
                    inserted = summary.inserted,
                    duplicates = summary.duplicates,
                    dead_lettered = summary.dead_lettered.len(),
                    "batch written"
                );
                Ok(())
            }
            Err(error) => {
                worker.metrics.retried(error.label());
                tracing::warn!(error = %error, cause = %root_cause(&error), records = batch.len(), "batch failed; retrying");
                Err(error)
            }
        }
    }

    fn abandon_revoked(&mut self) {
        let revoked = self.worker.consumer.context().take_revoked();
        if revoked.is_empty() {
            return;
        }
        let mut dropped = self.filling.abandon(&revoked);
        let was_failing = !self.failing.is_empty();
        for batch in &mut self.failing {
            dropped += batch.abandon(&revoked);
        }
        // Pieces of only revoked records are nobody's to retry now.
        self.failing.retain(|batch| !batch.is_empty());
        if was_failing && self.failing.is_empty() {
            self.worker.resume();
        }
        for &partition in &revoked {
            if self.worker.health.unblock(partition) {
                self.worker.metrics.dead_letter_blocked(partition, false);
            }
        }
        // Their commits are the next owner's now.
        self.commits.forget(&revoked);
        tracing::info!(
            ?revoked,
            dropped,
            "partitions revoked; their unwritten records are left to the next owner"
        );
    }

    async fn shut_down(mut self) {
        let mut pieces = std::mem::take(&mut self.failing);
        if pieces.is_empty() {
            pieces.push_back(self.worker.batch(self.filling.take()));
        }
        // In order, within one grace period: a piece not written stops the
        // rest, so nothing is committed past it. An attempt the grace cuts
        // short drops its batch half-way, which is why it is dropped here.
        let grace = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while let Some(mut batch) = pieces.pop_front() {
            if batch.is_empty() {
                continue;
            }
            match tokio::time::timeout_at(grace, self.write(&mut batch)).await {
                Ok(Ok(())) => {
                    tracing::info!(records = batch.len(), "last batch written at shutdown");
                }
                _ => {
                    tracing::warn!(
                        records = batch.len() + pieces.iter().map(Batch::len).sum::<usize>(),
                        "last batch not written at shutdown; it will be read again"
                    );
                    break;
                }
            }
        }
        // Everything written, once more and waited for: the asynchronous
        // commits may still be on their way, and some offsets not yet sent.
        self.worker
            .commit(&self.commits.all(), CommitMode::Sync)
            .await;
    }

    /// Sends the written offsets, if their interval is over.
    async fn commit_due(&mut self) {
        if let Some(due) = self.commits.take_due(tokio::time::Instant::now()) {
            self.worker.commit(&due, CommitMode::Async).await;
        }
    }
}
