//! Whether every partition of every topic is held by a worker, from the
//! workers' `assigned_partitions` gauges: a pinned worker reports its one
//! partition once it is assigned, a group member what the group gave it. A
//! topic short of partitions has a worker that keeps dying, cannot reach the
//! broker, or (in group mode) a group that does not hand them out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::processes::{self, Process};

/// How long a topic may have partitions no worker holds (a worker starting
/// again, a group forming) before it is reported.
pub const GRACE: Duration = Duration::from_secs(60);

const GAUGE: &str = "hookline_worker_assigned_partitions ";

/// A topic whose workers hold fewer partitions than it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub topic: String,
    pub held: i64,
    pub partitions: i32,
}

/// The topics of `partitions` whose workers hold fewer of them (`held`).
pub fn shortfalls(
    partitions: &BTreeMap<String, i32>,
    held: &BTreeMap<String, i64>,
) -> Vec<Shortfall> {
    partitions
        .iter()
        .filter_map(|(topic, &count)| {
            let held = held.get(topic).copied().unwrap_or(0);
            (held < i64::from(count)).then(|| Shortfall {
                topic: topic.clone(),
                held,
                partitions: count,
            })
        })
        .collect()
}

/// What to tell about a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Short for longer than [`GRACE`].
    Stuck(Shortfall),
    /// Every partition held again after a [`Notice::Stuck`].
    Recovered(String),
}

/// Remembers since when each topic is short, to report it once after
/// [`GRACE`] and once when it recovers.
#[derive(Debug, Default)]
pub struct Watch {
    short_since: BTreeMap<String, Instant>,
    reported: BTreeSet<String>,
}

impl Watch {
    pub fn observe(&mut self, now: Instant, shortfalls: Vec<Shortfall>) -> Vec<Notice> {
        let short: BTreeSet<String> = shortfalls.iter().map(|s| s.topic.clone()).collect();
        self.short_since.retain(|topic, _| short.contains(topic));
        let mut notices: Vec<Notice> = self
            .reported
            .iter()
            .filter(|topic| !short.contains(*topic))
            .map(|topic| Notice::Recovered(topic.clone()))
            .collect();
        self.reported.retain(|topic| short.contains(topic));
        for shortfall in shortfalls {
            let since = *self
                .short_since
                .entry(shortfall.topic.clone())
                .or_insert(now);
            if now.duration_since(since) >= GRACE && self.reported.insert(shortfall.topic.clone()) {
                notices.push(Notice::Stuck(shortfall));
            }
        }
        notices
    }

    /// Forgets everything: the processes were started again.
    pub fn reset(&mut self) {
        self.short_since.clear();
        self.reported.clear();
    }
}

/// Partitions held per topic, summed over the workers that answer.
pub async fn held(processes: &[&Process]) -> BTreeMap<String, i64> {
    let client = reqwest::Client::new();
    let mut held = BTreeMap::new();
    for process in processes {
        if let Some(topic) = &process.spec.topic {
            let count = processes::metric(&client, process, GAUGE).await;
            *held.entry(topic.clone()).or_insert(0) += count as i64;
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(topic: &str, held: i64) -> Shortfall {
        Shortfall {
            topic: topic.into(),
            held,
            partitions: 2,
        }
    }

    #[test]
    fn topics_short_of_workers_holding_their_partitions() {
        let partitions = BTreeMap::from([("o".to_owned(), 4), ("d".to_owned(), 2)]);
        let held = BTreeMap::from([("o".to_owned(), 4), ("d".to_owned(), 1)]);
        assert_eq!(
            shortfalls(&partitions, &held),
            [Shortfall {
                topic: "d".into(),
                held: 1,
                partitions: 2
            }]
        );
        let none = shortfalls(&partitions, &BTreeMap::new());
        assert_eq!(none.len(), 2, "no answer counts as nothing held");
    }

    #[test]
    fn a_shortfall_is_told_once_after_the_grace_and_its_end_once() {
        let mut watch = Watch::default();
        let start = Instant::now();
        assert!(watch.observe(start, vec![short("d", 0)]).is_empty());
        let later = start + GRACE - Duration::from_secs(1);
        assert!(watch.observe(later, vec![short("d", 1)]).is_empty());
        let after = start + GRACE;
        assert_eq!(
            watch.observe(after, vec![short("d", 1)]),
            [Notice::Stuck(short("d", 1))]
        );
        assert!(watch.observe(after + GRACE, vec![short("d", 1)]).is_empty());
        assert_eq!(
            watch.observe(after + GRACE, vec![]),
            [Notice::Recovered("d".into())]
        );
        assert!(watch.observe(after + GRACE, vec![]).is_empty());
    }

    #[test]
    fn a_short_rebalance_is_never_told() {
        let mut watch = Watch::default();
        let start = Instant::now();
        assert!(watch.observe(start, vec![short("d", 0)]).is_empty());
        assert!(watch.observe(start + GRACE / 2, vec![]).is_empty());
        // Short again: the clock starts again.
        assert!(watch.observe(start + GRACE, vec![short("d", 0)]).is_empty());
    }
}
