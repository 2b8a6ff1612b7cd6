//! The consumer loop: fill a batch on size or time, write it, commit its
//! offsets, and on a transient failure pause the partitions and retry with
//! backoff, never skipping and never committing past the failure.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookline_contract::Storage;
use hookline_runtime::root_cause;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::OwnedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::batch::Batch;
use crate::config::Config;
use crate::dlq::DeadLetters;
use crate::metrics::Metrics;
use crate::store::{DisputeEvent, Event, OrderEvent, Pools};
use crate::{Error, Result};

/// How long shutdown may spend on a last attempt at a failing batch.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often the consumer reports statistics (lag).
const STATISTICS_INTERVAL_MS: &str = "5000";
/// How long the broker may hold a fetch for want of data. The default (500 ms)
/// is added to the receipt-to-row latency of every event of a quiet topic;
/// 100 ms costs an idle worker ten small fetches a second.
const FETCH_WAIT_MS: &str = "100";

/// Consumer callbacks: lag from statistics, and revoked partitions.
pub struct WorkerContext {
    topic: String,
    metrics: Arc<Metrics>,
    revoked: Mutex<Vec<i32>>,
    /// The partitions assigned to this consumer.
    held: Mutex<std::collections::BTreeSet<i32>>,
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (&partition, stats) in &topic.partitions {
                // librdkafka reports an internal partition -1 and -1 lag when unknown.
                if partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics.lag(partition, stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance
            && let Ok(mut revoked) = self.revoked.lock()
        {
            revoked.extend(partitions.elements().iter().map(|e| e.partition()));
        }
    }

    /// Cooperative rebalances hand out increments; the gauge follows the sum
    /// of them, kept here rather than asked of the consumer, since asking
    /// from inside a rebalance callback can wait on a consumer that is closing.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(partitions) => {
                held.extend(partitions.elements().iter().map(|e| e.partition()));
            }
            Rebalance::Revoke(partitions) => {
                for e in partitions.elements() {
                    held.remove(&e.partition());
                }
            }
            Rebalance::Error(_) => return,
        }
        self.metrics.assigned(held.len());
    }
}

impl WorkerContext {
    fn take_revoked(&self) -> Vec<i32> {
        self.revoked
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Creates the consumer of `config.topic` in group `config.group`, with static
/// membership, cooperative-sticky assignment and manual commits.
pub fn consumer(config: &Config, metrics: Arc<Metrics>) -> Result<StreamConsumer<WorkerContext>> {
    let context = WorkerContext {
        topic: config.topic.clone(),
        metrics,
        revoked: Mutex::new(Vec::new()),
        held: Mutex::default(),
    };
    let client_id = format!("hookline-worker-{}", config.instance_id);
    let consumer: StreamConsumer<WorkerContext> = config
        .kafka
        .consumer(&client_id, &config.group)
        .set("group.instance.id", &config.instance_id)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .set("fetch.wait.max.ms", FETCH_WAIT_MS)
        .create_with_context(context)
        .map_err(Error::CreateConsumer)?;
    consumer
        .subscribe(&[&config.topic])
        .map_err(Error::Subscribe)?;
    Ok(consumer)
}

/// The loop's collaborators.
pub struct Worker {
    pub config: Config,
    pub consumer: Arc<StreamConsumer<WorkerContext>>,
    pub pools: Pools,
    pub dead_letters: DeadLetters,
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Runs until `shutdown`: then finishes (or abandons, after a grace period)
    /// the batch in hand and commits what was written.
    pub async fn run(self, shutdown: CancellationToken) {
        // The one place a storage meets the Rust type its rows are written
        // from; everything below is the same for every storage.
        match self.config.event_type.storage {
            Storage::Orders => self.consume::<OrderEvent>(shutdown).await,
            Storage::Disputes => self.consume::<DisputeEvent>(shutdown).await,
        }
    }

    async fn consume<E: Event>(self, shutdown: CancellationToken) {
        let mut filling: Vec<OwnedMessage> = Vec::with_capacity(self.config.batch_size);
        let mut failing: Option<Batch<E>> = None;
        let mut backoff = Backoff::new(Duration::from_millis(100), self.config.max_backoff);
        let mut retry_at = tokio::time::Instant::now();
        let mut flush_tick = tokio::time::interval(self.config.batch_wait);
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            // Rebalance callbacks run inside `recv`, which may also return a
            // record of a partition revoked and assigned again in the same
            // poll: revoked records are dropped before anything is pushed,
            // written or committed, and never after.
            self.abandon_revoked(&mut filling, &mut failing);
            // A failing batch holds the partitions: nothing new is written until
            // it is, so records are never committed past a gap.
            let can_receive = filling.len() < self.config.batch_size;
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(retry_at), if failing.is_some() => {
                    self.abandon_revoked(&mut filling, &mut failing);
                    if let Some(mut batch) = failing.take() {
                        match self.write(&mut batch).await {
                            Ok(()) => {
                                backoff.reset();
                                self.resume();
                            }
                            Err(()) => {
                                retry_at = tokio::time::Instant::now() + backoff.next_delay();
                                failing = Some(batch);
                            }
                        }
                    }
                }
                _ = flush_tick.tick(), if failing.is_none() && !filling.is_empty() => {
                    self.abandon_revoked(&mut filling, &mut failing);
                    failing = self.flush(&mut filling, &mut backoff, &mut retry_at).await;
                }
                received = self.consumer.recv(), if can_receive => match received {
                    Ok(message) => {
                        self.abandon_revoked(&mut filling, &mut failing);
                        filling.push(message.detach());
                        if failing.is_none() && filling.len() >= self.config.batch_size {
                            failing = self.flush(&mut filling, &mut backoff, &mut retry_at).await;
                        }
                    }
                    Err(error) => tracing::warn!(error = %error, "consumer error"),
                },
            }
        }
        self.shut_down(failing, filling).await;
    }

    /// Writes the filled records as one batch; the batch back when it failed.
    async fn flush<E: Event>(
        &self,
        filling: &mut Vec<OwnedMessage>,
        backoff: &mut Backoff,
        retry_at: &mut tokio::time::Instant,
    ) -> Option<Batch<E>> {
        if filling.is_empty() {
            return None;
        }
        let records = std::mem::replace(filling, Vec::with_capacity(self.config.batch_size));
        let mut batch = self.batch(records);
        match self.write(&mut batch).await {
            Ok(()) => None,
            Err(()) => {
                self.pause();
                *retry_at = tokio::time::Instant::now() + backoff.next_delay();
                Some(batch)
            }
        }
    }

    fn batch<E: Event>(&self, records: Vec<OwnedMessage>) -> Batch<E> {
        Batch::new(
            records,
            self.config.event_type,
            &self.config.inspector,
            self.pools.count(),
        )
    }

    /// One attempt at a batch: write, dead-letter, commit.
    async fn write<E: Event>(&self, batch: &mut Batch<E>) -> Result<(), ()> {
        let started = Instant::now();
        match batch.write(&self.pools, &self.dead_letters).await {
            Ok(summary) => {
                self.metrics.processed(summary.inserted, summary.duplicates);
                for reason in &summary.dead_lettered {
                    self.metrics.dead_lettered(reason);
                }
                self.commit(batch).await;
                self.metrics.batch(started.elapsed().as_secs_f64());
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
                self.metrics.retried(error.label());
                tracing::warn!(error = %error, cause = %root_cause(&error), records = batch.len(), "batch failed; retrying");
                Err(())
            }
        }
    }

    /// Commits the batch's offsets synchronously. A failed commit is not an
    /// error for the data: the records are read again and their writes are
    /// idempotent.
    async fn commit<E: Event>(&self, batch: &Batch<E>) {
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in batch.next_offsets() {
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
        let consumer = self.consumer.clone();
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit(&offsets, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "committing offsets failed; records will be read again")
            }
            Err(error) => tracing::warn!(error = %error, "committing offsets did not complete"),
        }
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

    fn abandon_revoked<E: Event>(
        &self,
        filling: &mut Vec<OwnedMessage>,
        failing: &mut Option<Batch<E>>,
    ) {
        let revoked = self.consumer.context().take_revoked();
        if revoked.is_empty() {
            return;
        }
        filling.retain(|m| !revoked.contains(&m.partition()));
        let dropped = failing.as_mut().map_or(0, |batch| batch.abandon(&revoked));
        // A failing batch of only revoked records is nobody's to retry now.
        if failing.as_ref().is_some_and(Batch::is_empty) {
            *failing = None;
            self.resume();
        }
        tracing::info!(
            ?revoked,
            dropped,
            "partitions revoked; their unwritten records are left to the next owner"
        );
    }

    async fn shut_down<E: Event>(&self, failing: Option<Batch<E>>, filling: Vec<OwnedMessage>) {
        let mut batch = match failing {
            Some(batch) => batch,
            None => self.batch(filling),
        };
        if batch.is_empty() {
            return;
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, self.write(&mut batch)).await {
            Ok(Ok(())) => tracing::info!(records = batch.len(), "last batch written at shutdown"),
            _ => tracing::warn!(
                records = batch.len(),
                "last batch not written at shutdown; it will be read again"
            ),
        }
    }
}
