//! Reading a webhook's body before anyone knows it is authentic: within a
//! deadline, and within a budget of memory that every unverified body shares.
//!
//! The budget is apart from the admission of authenticated webhooks
//! ([`crate::App::admission`]): a caller without a secret can hold read budget
//! for at most the body timeout, and never a produce slot. It is counted in
//! bytes, because memory is what it protects: a slow client costs a fixed
//! [`READ_SLOT_BYTES`] plus what it actually sent, so thousands of tricklers
//! fit where a few clients sending large bodies fast would not, and either
//! kind is refused (503) once the budget is spent rather than growing memory.
//!
//! The body is read into one buffer behind the bytes its signature covers
//! before it (`{id}.{timestamp}.`), so that verifying needs no copy, and the
//! body the record carries is a slice of the same buffer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// What one body being read costs beyond its bytes: its connection's task and
/// buffers. It also bounds how many reads the budget admits at once.
pub const READ_SLOT_BYTES: usize = 4 * 1024;

/// Why a body was not read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The read budget is spent: 503.
    Busy,
    /// Declared or sent beyond the limit: 413.
    TooLarge,
    /// Not sent whole within the body timeout: 408.
    TimedOut,
    /// The connection failed mid-body: 400.
    Unreadable,
}

/// The bodies being read, and the memory they may hold together.
pub struct Reading {
    /// Permits are bytes.
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    max_body_bytes: usize,
    timeout: Duration,
    /// Bodies being read now.
    reading: Gauge,
}

/// A body read whole, behind the bytes signed before it; it keeps its share of
/// the read budget until dropped.
pub struct ReadBody {
    signed: Bytes,
    prefix_len: usize,
    _held: Held,
}

impl ReadBody {
    /// The prefix and the body: what the signature covers.
    pub fn signed(&self) -> &Bytes {
        &self.signed
    }

    /// The body alone: a slice of the same buffer, not a copy.
    pub fn body(&self) -> Bytes {
        self.signed.slice(self.prefix_len..)
    }
}

/// Read budget held by one body, and its place in the gauge of bodies being
/// read; both are given back on drop, whichever way the read ends.
struct Held {
    permit: OwnedSemaphorePermit,
    reading: Gauge,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.reading.dec();
    }
}

impl Reading {
    /// A budget of `budget_bytes` for bodies of at most `max_body_bytes`, each
    /// to arrive within `timeout`; `reading` counts the bodies being read.
    pub fn new(
        budget_bytes: usize,
        max_body_bytes: usize,
        timeout: Duration,
        reading: Gauge,
    ) -> Self {
        Self {
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
            max_body_bytes,
            timeout,
            reading,
        }
    }

    /// Bytes of the budget held now, for the metrics.
    pub fn held_bytes(&self) -> usize {
        self.budget_bytes
            .saturating_sub(self.budget.available_permits())
    }

    /// Reads `body` behind `prefix`. `declared` is its Content-Length, if any:
    /// one over the limit is refused unread, and an honest one sizes the
    /// buffer exactly. Memory is taken from the budget as bytes arrive, never
    /// on the strength of a declaration, so a client that declares a large
    /// body and sends little holds little.
    pub async fn read(
        &self,
        prefix: &[u8],
        declared: Option<u64>,
        body: Body,
    ) -> Result<ReadBody, ReadError> {
        let deadline = Instant::now() + self.timeout;
        let limit = self.max_body_bytes;
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(ReadError::TooLarge);
        }
        // The most this buffer may grow to: an honest declaration, else the limit.
        let most = prefix.len()
            + declared
                .and_then(|length| usize::try_from(length).ok())
                .unwrap_or(limit);
        let mut buffer = Vec::new();
        let first = (prefix.len() + READ_SLOT_BYTES).min(most);
        let mut held = Held {
            permit: self.take(READ_SLOT_BYTES + first)?,
            reading: self.reading.clone(),
        };
        self.reading.inc();
        buffer.reserve_exact(first);
        buffer.extend_from_slice(prefix);

        let mut body = body;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_elapsed) => return Err(ReadError::TimedOut),
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    tracing::debug!(error = %error, "reading a webhook body failed");
                    return Err(ReadError::Unreadable);
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers carry nothing a webhook needs.
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let needed = buffer.len() + chunk.len();
            if needed - prefix.len() > limit {
                return Err(ReadError::TooLarge);
            }
            if needed > buffer.capacity() {
                // Doubling keeps the copies of a growing buffer to about one
                // body in all; the declaration only caps the growth, so that
                // an honest body ends in a buffer of exactly its size.
                let target = (buffer.capacity() * 2).min(most).max(needed);
                let more = self.take(target - buffer.capacity())?;
                held.permit.merge(more);
                buffer.reserve_exact(target - buffer.len());
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(ReadBody {
            signed: Bytes::from(buffer),
            prefix_len: prefix.len(),
            _held: held,
        })
    }

    /// Takes `bytes` of the budget, or says it is spent.
    fn take(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ReadError> {
        let permits = u32::try_from(bytes).map_err(|_| ReadError::Busy)?;
        self.budget
            .clone()
            .try_acquire_many_owned(permits)
            .map_err(|_| ReadError::Busy)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    /// A body that fails after `good`, as a connection reset mid-body does.
    fn broken(good: &'static [u8]) -> Body {
        Body::from_stream(futures_util::stream::iter([
            Ok(Bytes::from_static(good)),
            Err(std::io::Error::other("connection reset")),
        ]))
    }

    /// A body sent in `chunks`, as a client writing it piecewise does.
    fn chunked(chunks: Vec<Vec<u8>>) -> Body {
        Body::from_stream(futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|chunk| Ok::<_, std::io::Error>(Bytes::from(chunk))),
        ))
    }

    /// A body that sends `sent` and then nothing, ever: a stalled client.
    fn stalled(sent: &'static [u8]) -> Body {
        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(sent))]);
        Body::from_stream(first.chain(futures_util::stream::pending()))
    }

    fn reading(budget: usize, limit: usize) -> Reading {
        Reading::new(budget, limit, Duration::from_secs(5), Gauge::default())
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_read_whole_behind_its_prefix() {
        let read = reading(1 << 20, 4)
            .read(b"id.1.", Some(4), Body::from("abcd"))
            .await
            .unwrap();
        assert_eq!(read.signed(), &Bytes::from_static(b"id.1.abcd"));
        assert_eq!(read.body(), Bytes::from_static(b"abcd"));
    }

    #[tokio::test]
    async fn the_body_is_a_slice_of_the_signed_buffer_not_a_copy() {
        let read = reading(1 << 20, 4)
            .read(b"p.", None, Body::from("ab"))
            .await
            .unwrap();
        assert_eq!(read.body().as_ptr(), read.signed()[2..].as_ptr());
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        // The body itself is short: only the declaration is looked at.
        let read = reading(1 << 20, 4)
            .read(b"", Some(5), Body::from("ab"))
            .await;
        assert_eq!(read.err(), Some(ReadError::TooLarge));
    }

    #[tokio::test]
    async fn an_undeclared_body_is_refused_once_it_passes_the_limit() {
        let read = reading(1 << 20, 4)
            .read(b"prefix.", None, Body::from("abcde"))
            .await;
        assert_eq!(read.err(), Some(ReadError::TooLarge));
    }

    #[tokio::test]
    async fn a_body_cut_short_is_unreadable() {
        let read = reading(1 << 20, 4).read(b"", None, broken(b"ab")).await;
        assert_eq!(read.err(), Some(ReadError::Unreadable));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_and_gives_its_budget_back() {
        let gauge = Gauge::default();
        let reading = Reading::new(1 << 20, 1024, Duration::from_secs(5), gauge.clone());
        let started = Instant::now();

        let read = reading.read(b"", Some(100), stalled(b"{")).await;

        assert_eq!(read.err(), Some(ReadError::TimedOut));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(reading.held_bytes(), 0);
        assert_eq!(gauge.get(), 0);
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_new_bodies_and_recovers_when_they_end() {
        // Each read takes a slot and a first buffer of 1 KiB (the limit):
        // room for one, not two.
        let reading = reading(2 * READ_SLOT_BYTES + 1024 + 512, 1024);
        let first = reading.read(b"", None, Body::from("ab")).await.unwrap();

        let second = reading.read(b"", None, Body::from("cd")).await;
        assert_eq!(second.err(), Some(ReadError::Busy));
        drop(first);
        assert_eq!(reading.held_bytes(), 0);
        assert!(reading.read(b"", None, Body::from("cd")).await.is_ok());
    }

    #[tokio::test]
    async fn memory_is_taken_as_bytes_arrive_not_as_declared() {
        // A budget far below the declared length: a client that declares a
        // large body and sends a byte holds a slot, not its declaration.
        let reading = reading(READ_SLOT_BYTES * 3, 512 * 1024);
        let read = reading
            .read(b"", Some(512 * 1024), Body::from("{"))
            .await
            .unwrap();
        assert_eq!(read.body().len(), 1);
    }

    #[tokio::test]
    async fn an_honest_declaration_ends_in_a_buffer_of_exactly_the_body() {
        let reading = reading(1 << 24, 1 << 20);
        let chunks: Vec<Vec<u8>> = (0..100).map(|_| vec![b'x'; 10_000]).collect();
        let read = reading
            .read(b"pre.", Some(1_000_000), chunked(chunks))
            .await
            .unwrap();
        assert_eq!(read.body().len(), 1_000_000);
        // Held: the slot plus the buffer, whose capacity is the signed length.
        assert_eq!(reading.held_bytes(), READ_SLOT_BYTES + 1_000_004);
    }
}
