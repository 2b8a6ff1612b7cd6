//! Which event's state is the latest, and which event times can be state at all.
//!
//! The worker folds a batch with [`StateOrder`] and the database's upsert guard
//! compares the same three columns in the same order; a test writes pairs of
//! events through both and checks that they agree. Ingest and the worker apply
//! [`event_time`] to the same values, so an event ingest accepts is one the
//! worker stores.

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};

/// The ordering key of an event among the events of one entity: the event
/// time, then the lifecycle rank of its type (so that `order.created` and
/// `order.paid` of the same second end `paid` in either arrival order), then
/// the provider's event id in byte order (the database compares it under the
/// "C" collation). The derived `Ord` compares the fields in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StateOrder<'a> {
    pub at: DateTime<Utc>,
    pub rank: i16,
    pub provider_event_id: &'a [u8],
}

impl<'a> StateOrder<'a> {
    pub fn new(at: DateTime<Utc>, rank: i16, provider_event_id: &'a str) -> Self {
        Self {
            at,
            rank,
            provider_event_id: provider_event_id.as_bytes(),
        }
    }
}

/// Earliest event time that can be state: 2000-01-01T00:00:00Z. Older times
/// are sent by mistake (zero, a date field read as seconds), not by providers.
pub const EARLIEST_EVENT_TIME: i64 = 946_684_800;

/// How far after its receipt an event time may lie (clock skew between the
/// provider and hookline). An event time beyond it, such as milliseconds sent
/// as seconds (a year around 57,000), would win every later comparison and
/// freeze the entity's state for good.
pub fn latest_event_time_after_receipt() -> Duration {
    Duration::days(1)
}

/// Why an event time cannot be state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventTimeError {
    #[error(
        "the event time {seconds} is before 2000-01-01 (Unix seconds expected: {EARLIEST_EVENT_TIME} or later)"
    )]
    TooEarly { seconds: i64 },
    #[error(
        "the event time {seconds} ({shown}) is more than a day after the webhook was received ({received}); milliseconds sent as seconds?"
    )]
    TooLate {
        seconds: i64,
        shown: String,
        received: String,
    },
    #[error("the event time {text:?} is neither Unix seconds nor an RFC 3339 time")]
    NotRfc3339 { text: String },
}

/// The event time `seconds` (Unix seconds) of an event received at
/// `received_at`, or why it is `event_time_out_of_range`: accepted are
/// [2000-01-01, receipt + 1 day], both ends included.
pub fn event_time(
    seconds: i64,
    received_at: DateTime<Utc>,
) -> Result<DateTime<Utc>, EventTimeError> {
    if seconds < EARLIEST_EVENT_TIME {
        return Err(EventTimeError::TooEarly { seconds });
    }
    let latest = received_at + latest_event_time_after_receipt();
    match Utc.timestamp_opt(seconds, 0).single() {
        Some(at) if at <= latest => Ok(at),
        at => Err(EventTimeError::TooLate {
            seconds,
            shown: at.map_or_else(|| "beyond year 262143".to_owned(), |at| at.to_rfc3339()),
            received: received_at.to_rfc3339(),
        }),
    }
}

/// The event time written as RFC 3339 (`2026-11-30T12:00:00.5+01:00`), as
/// some providers send it, or why it is `event_time_out_of_range`: the range
/// of [`event_time`]. Kept to microseconds, PostgreSQL's precision, so that
/// the batch fold and the database compare the same instants.
pub fn event_time_rfc3339(
    text: &str,
    received_at: DateTime<Utc>,
) -> Result<DateTime<Utc>, EventTimeError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| EventTimeError::NotRfc3339 {
            text: text.chars().take(64).collect(),
        })?
        .with_timezone(&Utc)
        .trunc_subsecs(6);
    if at.timestamp() < EARLIEST_EVENT_TIME {
        return Err(EventTimeError::TooEarly {
            seconds: at.timestamp(),
        });
    }
    if at > received_at + latest_event_time_after_receipt() {
        return Err(EventTimeError::TooLate {
            seconds: at.timestamp(),
            shown: at.to_rfc3339(),
            received: received_at.to_rfc3339(),
        });
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    #[test]
    fn time_decides_first_then_rank_then_id_bytes() {
        let created = StateOrder::new(at(10), 0, "evt_b");
        let paid = StateOrder::new(at(10), 2, "evt_a");
        assert!(paid > created, "rank decides a same-second pair");
        assert!(StateOrder::new(at(11), 0, "a") > paid, "time decides first");
        assert!(
            StateOrder::new(at(10), 2, "evt_b") > paid,
            "id decides equal ranks"
        );
        // Byte order, not a locale's: 'Z' (0x5a) sorts before 'a' (0x61).
        assert!(StateOrder::new(at(1), 0, "a") > StateOrder::new(at(1), 0, "Z"));
    }

    #[test]
    fn event_times_from_2000_to_a_day_after_receipt_are_state() {
        let received = at(1_700_000_000);
        assert_eq!(
            event_time(EARLIEST_EVENT_TIME, received),
            Ok(at(EARLIEST_EVENT_TIME))
        );
        assert_eq!(
            event_time(1_700_000_000 + 86_400, received),
            Ok(at(1_700_086_400))
        );
        assert!(matches!(
            event_time(EARLIEST_EVENT_TIME - 1, received),
            Err(EventTimeError::TooEarly { .. })
        ));
        assert!(matches!(
            event_time(1_700_000_000 + 86_401, received),
            Err(EventTimeError::TooLate { .. })
        ));
    }

    #[test]
    fn rfc_3339_times_are_read_to_the_microsecond_within_the_same_range() {
        let received = at(1_700_000_000);
        assert_eq!(
            event_time_rfc3339("2023-11-14T22:13:20Z", received),
            Ok(at(1_700_000_000))
        );
        assert_eq!(
            event_time_rfc3339("2023-11-14T23:13:20.1234567+01:00", received),
            Ok(at(1_700_000_000) + Duration::microseconds(123_456))
        );
        assert!(matches!(
            event_time_rfc3339("1999-12-31T23:59:59Z", received),
            Err(EventTimeError::TooEarly { .. })
        ));
        assert!(matches!(
            event_time_rfc3339("2023-11-16T22:13:20Z", received),
            Err(EventTimeError::TooLate { .. })
        ));
        let err = event_time_rfc3339("yesterday", received).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
    }

    #[test]
    fn milliseconds_and_absurd_times_are_out_of_range_with_a_reason() {
        let received = at(1_700_000_000);
        let err = event_time(1_700_000_000_000, received).unwrap_err();
        assert!(err.to_string().contains("milliseconds"), "{err}");
        assert!(err.to_string().contains("+55"), "{err}");
        let err = event_time(i64::MAX, received).unwrap_err();
        assert!(err.to_string().contains("beyond year"), "{err}");
        assert!(matches!(
            event_time(i64::MIN, received),
            Err(EventTimeError::TooEarly { .. })
        ));
    }
}
