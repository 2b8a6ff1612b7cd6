//! Delivery reports handed to the task that waits for each record: a
//! `BaseProducer` whose reports complete one channel per record, served by a
//! thread of its own.
//!
//! rdkafka's `FutureProducer` is this with a thread that polls in 100 ms
//! slices. rust-rdkafka 0.39 waits out each slice in whole milliseconds,
//! rounded down, and librdkafka wakes up to a millisecond early, so the end
//! of every slice is spent in zero-timeout polls: 0.9% of a core for an idle
//! producer, measured. Waiting in slices of [`POLL_SLICE`] spends that twice a
//! second instead of ten times.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::oneshot;

/// How long the polling thread waits for reports at a time: also how long
/// dropping the last handle on the producer may wait for the thread.
const POLL_SLICE: Duration = Duration::from_millis(500);

/// Where the broker stored a record, or why it did not.
pub(crate) type Ack = Result<(i32, i64), KafkaError>;

/// Completes each record's channel with its report.
pub(crate) struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<oneshot::Sender<Ack>>;

    fn delivery(&self, result: &DeliveryResult<'_>, waiter: Self::DeliveryOpaque) {
        let ack = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.clone()),
        };
        // A waiter that gave up has nothing left to be told.
        let _ = waiter.send(ack);
    }
}

/// A producer and the thread that polls it. Dropping this stops the thread
/// (waiting out its slice, at most [`POLL_SLICE`]) and then the producer, so
/// that librdkafka's client is destroyed before a process that drops it
/// exits.
pub(crate) struct Polled {
    producer: Arc<BaseProducer<AckContext>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Polled {
    pub(crate) fn new(config: &ClientConfig) -> KafkaResult<Self> {
        let producer: Arc<BaseProducer<AckContext>> =
            Arc::new(config.create_with_context(AckContext)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (polled, stopped) = (producer.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("hookline-acks".to_owned())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    polled.poll(POLL_SLICE);
                }
            })
            .map_err(|error| KafkaError::ClientCreation(format!("polling thread: {error}")))?;
        Ok(Self {
            producer,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn producer(&self) -> &Arc<BaseProducer<AckContext>> {
        &self.producer
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // A panic of the thread was reported by the panic hook already.
            let _ = thread.join();
        }
    }
}
