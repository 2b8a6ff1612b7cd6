//! Leadership as a value: a token cancelled the moment this replica may no
//! longer lead, and the guard every reconcile runs under.
//!
//! A replica that loses its Lease must not make one more request: the new
//! leader may already be acting, and a topic deletion finished by the old one
//! after the new one re-created it (or the other way round) leaves the
//! cluster in a state neither chose. So a reconcile is not left to finish
//! gracefully when the Lease goes: it is dropped at its next await point,
//! which is before its next admin call or write, and ends with
//! [`NotLeader`].

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// Whether this replica still leads. Clones share one state; a new fence
/// leads until [`Fence::lose`].
#[derive(Debug, Clone, Default)]
pub struct Fence {
    lost: CancellationToken,
}

/// The work was stopped because this replica no longer leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this replica no longer holds the leader lease")]
pub struct NotLeader;

impl Fence {
    /// A fence that leads.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on nothing runs under this fence.
    pub fn lose(&self) {
        self.lost.cancel();
    }

    /// Whether the lease has been lost.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Resolves once the lease is lost.
    pub async fn lost(&self) {
        self.lost.cancelled().await;
    }

    /// Runs `work` while this replica leads: a lost lease drops it where it
    /// waits, and work started after the loss never starts at all.
    pub async fn guard<T>(&self, work: impl Future<Output = T>) -> Result<T, NotLeader> {
        tokio::select! {
            // The loss first: of a loss and a finished request seen together,
            // the loss wins, so nothing more is done with the answer.
            biased;
            () = self.lost.cancelled() => Err(NotLeader),
            done = work => Ok(done),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn losing_drops_the_work_where_it_waits() {
        let fence = Fence::new();
        let steps = Arc::new(AtomicUsize::new(0));
        let work = {
            let steps = steps.clone();
            async move {
                steps.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(30)).await;
                steps.fetch_add(1, Ordering::SeqCst);
            }
        };
        let loser = fence.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            loser.lose();
        });

        assert_eq!(fence.guard(work).await, Err(NotLeader));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(steps.load(Ordering::SeqCst), 1, "the second step never ran");
    }

    #[tokio::test]
    async fn work_after_the_loss_never_starts() {
        let fence = Fence::new();
        fence.lose();
        let started = AtomicUsize::new(0);

        let result = fence
            .guard(async {
                started.fetch_add(1, Ordering::SeqCst);
            })
            .await;

        assert_eq!(result, Err(NotLeader));
        assert_eq!(started.load(Ordering::SeqCst), 0);
        assert!(fence.is_lost());
    }

    #[tokio::test]
    async fn a_leading_fence_lets_work_finish() {
        assert_eq!(Fence::new().guard(async { 7 }).await, Ok(7));
    }
}
