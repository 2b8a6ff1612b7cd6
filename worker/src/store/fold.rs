//! Which events of a batch to write: pure decisions, no I/O.
//!
//! A batch may hold the same event twice (a provider's retry produced twice, or a
//! redelivery next to the original), and several events of one order. PostgreSQL
//! refuses an `INSERT … ON CONFLICT DO UPDATE` that touches one row twice
//! (SQLSTATE 21000), so duplicates are folded here before the statements run.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use hookline_contract::StateOrder;

use super::{Fields, Stored};

/// The latest-state order of an event with these fields.
pub(crate) fn state_order(fields: &Fields) -> StateOrder<'_> {
    StateOrder::new(fields.occurred_at, fields.rank, &fields.provider_event_id)
}

/// An event as the folding sees it.
pub(crate) trait Foldable {
    /// What makes two events the same event (the table's unique key).
    type EventKey<'a>: Eq + Hash
    where
        Self: 'a;
    /// The entity whose latest state the event updates.
    type Entity<'a>: Eq + Hash
    where
        Self: 'a;

    fn event_key(&self) -> Self::EventKey<'_>;
    fn entity(&self) -> Self::Entity<'_>;
    /// The latest-state order of events of one entity; the upsert's guard
    /// compares the same columns in the same order.
    fn ordering(&self) -> StateOrder<'_>;
}

/// Indexes of the first occurrence of each distinct event, in batch order.
pub(crate) fn first_occurrences<T: Foldable>(events: &[T]) -> Vec<usize> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .enumerate()
        .filter_map(|(i, event)| seen.insert(event.event_key()).then_some(i))
        .collect()
}

/// Of the events at `among`, the index of the newest one per entity, in order
/// of first appearance.
pub(crate) fn newest_per_entity<T: Foldable>(events: &[T], among: &[usize]) -> Vec<usize> {
    let mut newest: HashMap<T::Entity<'_>, usize> = HashMap::with_capacity(among.len());
    let mut order = Vec::with_capacity(among.len());
    for &i in among {
        match newest.entry(events[i].entity()) {
            Entry::Vacant(slot) => {
                slot.insert(i);
                order.push(i);
            }
            Entry::Occupied(mut slot) => {
                if events[i].ordering() > events[*slot.get()].ordering() {
                    slot.insert(i);
                }
            }
        }
    }
    order
        .into_iter()
        .map(|first| newest[&events[first].entity()])
        .collect()
}

/// One outcome per event of the batch: `Inserted` for the distinct events whose
/// positions in `distinct` the insert reported as new (1-based, as SQL's
/// `WITH ORDINALITY` counts), `AlreadyStored` for every other event.
pub(crate) fn outcomes(batch_len: usize, distinct: &[usize], inserted: &[i64]) -> Vec<Stored> {
    let mut outcomes = vec![Stored::AlreadyStored; batch_len];
    for &ordinal in inserted {
        let event = usize::try_from(ordinal - 1)
            .ok()
            .and_then(|position| distinct.get(position));
        if let Some(&i) = event {
            outcomes[i] = Stored::Inserted;
        }
    }
    outcomes
}

/// One array-valued column of the rows at `rows`, to bind to an `UNNEST`.
pub(crate) fn column<E, T>(events: &[E], rows: &[usize], field: impl Fn(&E) -> T) -> Vec<T> {
    rows.iter().map(|&i| field(&events[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    struct Ev {
        entity: &'static str,
        id: &'static str,
        at: i64,
        rank: i16,
    }

    impl Foldable for Ev {
        type EventKey<'a> = (&'a str, &'a str);
        type Entity<'a> = &'a str;
        fn event_key(&self) -> Self::EventKey<'_> {
            (self.entity, self.id)
        }
        fn entity(&self) -> Self::Entity<'_> {
            self.entity
        }
        fn ordering(&self) -> StateOrder<'_> {
            StateOrder::new(Utc.timestamp_opt(self.at, 0).unwrap(), self.rank, self.id)
        }
    }

    fn ev(entity: &'static str, id: &'static str, at: i64) -> Ev {
        Ev {
            entity,
            id,
            at,
            rank: 0,
        }
    }

    fn ranked(id: &'static str, at: i64, rank: i16) -> Ev {
        Ev {
            entity: "o1",
            id,
            at,
            rank,
        }
    }

    #[test]
    fn duplicates_keep_their_first_occurrence() {
        let batch = [
            ev("o1", "e1", 1),
            ev("o1", "e1", 1),
            ev("o2", "e1", 1),
            ev("o1", "e2", 2),
        ];
        assert_eq!(first_occurrences(&batch), vec![0, 2, 3]);
    }

    #[test]
    fn empty_batch_folds_to_nothing() {
        let batch: [Ev; 0] = [];
        assert!(first_occurrences(&batch).is_empty());
        assert!(newest_per_entity(&batch, &[]).is_empty());
    }

    #[test]
    fn newest_event_per_entity_wins_regardless_of_batch_order() {
        let batch = [
            ev("o1", "e3", 30),
            ev("o2", "e1", 5),
            ev("o1", "e1", 10),
            ev("o1", "e2", 20),
        ];
        assert_eq!(newest_per_entity(&batch, &[0, 1, 2, 3]), vec![0, 1]);
    }

    #[test]
    fn equal_times_are_ordered_by_lifecycle_rank_whatever_the_ids() {
        // created (rank 0) and paid (rank 2) in one second, in both orders,
        // with the paid event's id sorting first and last.
        for (created, paid) in [("e_b", "e_a"), ("e_a", "e_b")] {
            let batch = [ranked(paid, 7, 2), ranked(created, 7, 0)];
            assert_eq!(newest_per_entity(&batch, &[0, 1]), vec![0]);
            let batch = [ranked(created, 7, 0), ranked(paid, 7, 2)];
            assert_eq!(newest_per_entity(&batch, &[0, 1]), vec![1]);
        }
        // A later second still wins over a higher rank.
        let batch = [ranked("e_a", 8, 0), ranked("e_b", 7, 3)];
        assert_eq!(newest_per_entity(&batch, &[0, 1]), vec![0]);
    }

    #[test]
    fn equal_times_and_ranks_are_ordered_by_event_id() {
        let batch = [ev("o1", "e_b", 7), ev("o1", "e_a", 7), ev("o1", "e_c", 7)];
        assert_eq!(newest_per_entity(&batch, &[0, 1, 2]), vec![2]);
    }

    #[test]
    fn outcomes_mark_only_reported_ordinals_as_inserted() {
        // Batch of 5; events 0, 2 and 4 are distinct; the insert reported its
        // first and third rows (events 0 and 4) as new.
        let outcomes = outcomes(5, &[0, 2, 4], &[1, 3]);
        use Stored::{AlreadyStored as Old, Inserted as New};
        assert_eq!(outcomes, vec![New, Old, Old, Old, New]);
    }

    #[test]
    fn outcomes_ignore_ordinals_out_of_range() {
        assert_eq!(outcomes(1, &[0], &[0, 2]), vec![Stored::AlreadyStored]);
    }

    #[test]
    fn only_the_given_indexes_are_considered() {
        let batch = [ev("o1", "e1", 1), ev("o1", "e9", 99)];
        assert_eq!(newest_per_entity(&batch, &[0]), vec![0]);
    }
}
