//! Where a replay resumes: one committed position per DLQ and per reason.
//!
//! The contract (DESIGN.md, "DLQ replay") is that a replay never moves a
//! committed position past a record it did not replay. One position per DLQ
//! cannot keep it without cost: a `--reason misrouted` run would have to stop
//! its position at the first record of any other reason, and every later run
//! would send again every misrouted record behind it. So each reason has its
//! own position (the group `<dlq>.replay.<reason>`, and
//! `<dlq>.replay.unreadable` for records without readable reason headers):
//!
//! - a run replays the records of its reasons at or past their positions;
//! - it then moves each of its reasons' positions to the first record of that
//!   reason it did not replay (still invalid under the manifest as it is now),
//!   or to the end it read, when it replayed them all;
//! - other reasons' positions are not touched: their records stay replayable.
//!
//! A still-invalid record therefore holds its reason's position, and the next
//! run of that reason sends again the records of that reason behind it that
//! were replayed already. That costs duplicates on the main topic, which the
//! workers fold (a replayed record keeps its event id), and never a record
//! stranded. The first version's single group `<dlq>.replay` may have moved
//! past unreplayed records: it is ignored, so the first run of each reason
//! starts at the beginning of the DLQ, and re-sends, harmlessly, what that
//! group's runs had sent.

use std::collections::BTreeMap;

use hookline_contract::Reason;

/// What a DLQ record's position is kept under: its reason code, or
/// [`UNREADABLE`].
pub type Key = &'static str;

/// The key of records whose reason headers cannot be read.
pub const UNREADABLE: Key = "unreadable";

/// Every key: each reason code, then [`UNREADABLE`].
pub fn all_keys() -> Vec<Key> {
    Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .chain([UNREADABLE])
        .collect()
}

/// The key named `name` (what `--reason` says), if there is one.
pub fn key(name: &str) -> Option<Key> {
    all_keys().into_iter().find(|k| *k == name)
}

/// The consumer group holding `key`'s position in the DLQ `dlq`.
pub fn group(dlq: &str, key: Key) -> String {
    format!("{dlq}.replay.{key}")
}

/// The positions of one DLQ's reasons during one replay run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positions {
    /// Where each of the run's reasons resumes (the next offset to replay).
    committed: BTreeMap<Key, i64>,
    /// The first record of each reason this run did not replay.
    held: BTreeMap<Key, i64>,
}

impl Positions {
    /// The run's reasons, each with its committed position (none: never
    /// replayed, which is the beginning).
    pub fn new(committed: impl IntoIterator<Item = (Key, Option<i64>)>) -> Self {
        Self {
            committed: committed
                .into_iter()
                .map(|(key, at)| (key, at.unwrap_or(0).max(0)))
                .collect(),
            held: BTreeMap::new(),
        }
    }

    /// Where reading must start: the lowest position of the run's reasons.
    pub fn start(&self) -> i64 {
        self.committed.values().copied().min().unwrap_or(0)
    }

    /// Whether the record at `offset` with key `key` is the run's to replay:
    /// one of its reasons, not behind that reason's position.
    pub fn is_due(&self, key: Key, offset: i64) -> bool {
        self.committed.get(key).is_some_and(|at| offset >= *at)
    }

    /// Whether `key` is one of the run's reasons.
    pub fn covers(&self, key: Key) -> bool {
        self.committed.contains_key(key)
    }

    /// The due record at `offset` was not replayed: its reason's position
    /// may not move past it.
    pub fn not_replayed(&mut self, key: Key, offset: i64) {
        let held = self.held.entry(key).or_insert(offset);
        *held = (*held).min(offset);
    }

    /// The positions to commit once the run has read every record before
    /// `end`: each reason moves to its first record not replayed, or to
    /// `end`; only the ones that move are returned.
    pub fn advanced(&self, end: i64) -> Vec<(Key, i64)> {
        self.committed
            .iter()
            .filter_map(|(key, at)| {
                let next = self.held.get(key).copied().unwrap_or(end).max(*at);
                (next != *at).then_some((*key, next))
            })
            .collect()
    }

    /// Every reason's position before the run.
    pub fn current(&self) -> BTreeMap<Key, i64> {
        self.committed.clone()
    }

    /// Every reason's position after the run, committed or not.
    pub fn after(&self, end: i64) -> BTreeMap<Key, i64> {
        let mut after = self.committed.clone();
        after.extend(self.advanced(end));
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Key = "misrouted";
    const C: Key = "constraint_violation";

    /// Replays the DLQ `records` (their keys, by offset) for `keys`, every due
    /// record replayed except those at `invalid`; what it replayed, and the
    /// positions after.
    fn run(
        records: &[Key],
        keys: &[Key],
        committed: &BTreeMap<Key, i64>,
        invalid: &[i64],
    ) -> (Vec<i64>, BTreeMap<Key, i64>) {
        let mut positions = Positions::new(keys.iter().map(|k| (*k, committed.get(k).copied())));
        let mut replayed = Vec::new();
        for (offset, key) in records.iter().enumerate().skip(positions.start() as usize) {
            let offset = offset as i64;
            if !positions.is_due(key, offset) {
                continue;
            }
            if invalid.contains(&offset) {
                positions.not_replayed(key, offset);
            } else {
                replayed.push(offset);
            }
        }
        let mut after = committed.clone();
        after.extend(positions.advanced(records.len() as i64));
        (replayed, after)
    }

    #[test]
    fn one_reason_then_another_replays_every_record_once() {
        let dlq = [M, C, M, C, M];
        let (first, after) = run(&dlq, &[M], &BTreeMap::new(), &[]);
        assert_eq!(first, [0, 2, 4]);
        let (second, after) = run(&dlq, &[C], &after, &[]);
        assert_eq!(second, [1, 3], "the other reason is not stranded");
        let (third, _) = run(&dlq, &[M, C], &after, &[]);
        assert!(third.is_empty(), "nothing is sent twice: {third:?}");
    }

    #[test]
    fn a_record_not_replayed_holds_its_reason_only() {
        let dlq = [M, C, M, C];
        let (first, after) = run(&dlq, &[M, C], &BTreeMap::new(), &[1]);
        assert_eq!(first, [0, 2, 3]);
        assert_eq!(after[&M], 4);
        assert_eq!(after[&C], 1, "held at the record not replayed");
        // Its cause fixed, the next run replays it, and again the record of
        // its reason behind it (harmless: same event id).
        let (second, after) = run(&dlq, &[M, C], &after, &[]);
        assert_eq!(second, [1, 3]);
        assert_eq!((after[&M], after[&C]), (4, 4));
    }

    #[test]
    fn a_run_of_no_records_moves_nothing_back() {
        let committed = BTreeMap::from([(M, 7)]);
        let positions = Positions::new([(M, Some(7)), (C, None)]);
        assert_eq!(positions.start(), 0);
        assert_eq!(positions.advanced(7), [(C, 7)]);
        assert_eq!(positions.advanced(3), [(C, 3)], "never behind a commit");
        assert_eq!(positions.after(7)[&M], committed[&M]);
    }

    #[test]
    fn other_reasons_are_not_due() {
        let positions = Positions::new([(M, Some(2))]);
        assert!(!positions.is_due(C, 5));
        assert!(!positions.is_due(M, 1));
        assert!(positions.is_due(M, 2));
        assert!(positions.covers(M) && !positions.covers(C));
    }

    #[test]
    fn keys_are_the_reason_codes_and_unreadable() {
        assert_eq!(key("misrouted"), Some(M));
        assert_eq!(key(UNREADABLE), Some(UNREADABLE));
        assert_eq!(key("gremlins"), None);
        assert_eq!(all_keys().len(), Reason::ALL.len() + 1);
        assert_eq!(group("t.DLQ", M), "t.DLQ.replay.misrouted");
    }
}
