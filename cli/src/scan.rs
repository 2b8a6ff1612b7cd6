//! Scanning ranges of a topic without holding them: a blocking [`Reader`] on a
//! thread of its own maps each record to what the caller keeps and hands it
//! to a bounded channel, so the tools' memory is bounded by the channel, not
//! by the topic, and the reader waits while the caller is busy with a batch.

use std::time::Duration;

use hookline_kafka::ClientSettings;
use hookline_kafka::reader::{Range, Reader};
use rdkafka::message::BorrowedMessage;
use tokio::sync::mpsc;

/// The records of `ranges` of `topic`, each mapped by `map`, in offset order
/// within a partition; an error ends the stream. The reader reads by
/// assignment with `group` only as the place librdkafka wants for offsets: it
/// joins no group and commits nothing. Reading everything may take at most
/// `deadline` (a stalled broker fails the scan instead of hanging it).
pub fn scan<T: Send + 'static>(
    kafka: &ClientSettings,
    group: &str,
    topic: &str,
    ranges: Vec<Range>,
    deadline: Duration,
    capacity: usize,
    mut map: impl FnMut(&BorrowedMessage<'_>) -> T + Send + 'static,
) -> mpsc::Receiver<Result<T, hookline_kafka::Error>> {
    let (kafka, group, topic) = (kafka.clone(), group.to_owned(), topic.to_owned());
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    tokio::task::spawn_blocking(move || {
        let mut read = || -> Result<(), hookline_kafka::Error> {
            let mut reader = Reader::open(&kafka, &group, &topic, &ranges, deadline)?;
            while let Some(message) = reader.next_record()? {
                if sender.blocking_send(Ok(map(&message))).is_err() {
                    // The caller stopped reading (it failed or has enough):
                    // nothing more to do.
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(error) = read() {
            // Nobody to tell when the caller is gone already.
            let _ = sender.blocking_send(Err(error));
        }
    });
    receiver
}
