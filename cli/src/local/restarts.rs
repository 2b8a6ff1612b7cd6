//! When to start a dead process again: at once when it had been running a
//! while (a crash, a kill: the sooner it is back, the less its partition
//! waits), with a growing delay when it keeps dying soon after its start (a
//! bad setting, a missing shard), so that a crash loop does not spin.

use std::collections::HashMap;
use std::time::Duration;

/// A process that ran this long before dying was healthy until then.
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// The delay after the second quick death in a row; it doubles after each
/// further one.
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Quick deaths in a row, by process name.
#[derive(Debug, Default)]
pub struct Restarts {
    quick_deaths: HashMap<String, u32>,
}

impl Restarts {
    /// How long to wait before starting `name` again, which died after
    /// running for `ran`.
    pub fn delay(&mut self, name: &str, ran: Duration) -> Duration {
        if ran >= HEALTHY_RUN {
            self.quick_deaths.remove(name);
            return Duration::ZERO;
        }
        let deaths = self.quick_deaths.entry(name.to_owned()).or_insert(0);
        *deaths = deaths.saturating_add(1);
        match *deaths {
            // Once may be bad luck: a kill soon after a start.
            1 => Duration::ZERO,
            n => FIRST_DELAY
                .saturating_mul(2u32.saturating_pow((n - 2).min(16)))
                .min(MAX_DELAY),
        }
    }

    /// Forgets every history: the processes were all started afresh.
    pub fn reset(&mut self) {
        self.quick_deaths.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Duration = Duration::from_secs(1);

    #[test]
    fn a_process_that_ran_a_while_is_started_again_at_once_every_time() {
        let mut restarts = Restarts::default();
        for _ in 0..5 {
            assert_eq!(restarts.delay("worker o-0", HEALTHY_RUN), Duration::ZERO);
        }
    }

    #[test]
    fn a_process_that_keeps_dying_at_once_waits_longer_each_time() {
        let mut restarts = Restarts::default();
        let delays: Vec<u64> = (0..10)
            .map(|_| restarts.delay("ingest", QUICK).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [
                0, 250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000
            ]
        );
        // Another process has a history of its own.
        assert_eq!(restarts.delay("worker o-1", QUICK), Duration::ZERO);
    }

    #[test]
    fn a_healthy_run_or_a_reset_forgets_the_quick_deaths() {
        let mut restarts = Restarts::default();
        restarts.delay("ingest", QUICK);
        restarts.delay("ingest", QUICK);
        assert_eq!(restarts.delay("ingest", HEALTHY_RUN), Duration::ZERO);
        assert_eq!(restarts.delay("ingest", QUICK), Duration::ZERO);
        assert_eq!(restarts.delay("ingest", QUICK), FIRST_DELAY);
        restarts.reset();
        assert_eq!(restarts.delay("ingest", QUICK), Duration::ZERO);
    }
}
