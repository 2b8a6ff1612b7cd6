//! Why a record was dead-lettered, and where in the pipeline.
//!
//! Ingest, worker and tooling all read and write these codes, so they are defined
//! once here; a new code is a new variant, never an ad-hoc string.

use std::fmt;
use std::str::FromStr;

/// A stable, machine-readable reason code carried in `hookline.errors.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The body is not JSON.
    InvalidJson,
    /// The body is JSON but does not satisfy the topic's schema.
    SchemaInvalid,
    /// No user id at the topic's user-id pointer.
    MissingUserId,
    /// No provider event id at the topic's event-id pointer.
    MissingEventId,
    /// The record lacks the headers or shape a worker needs to read it.
    Undecodable,
    /// The record sits on a partition its key does not hash to.
    Misrouted,
    /// The database refused the row for good (a check or foreign-key violation).
    ConstraintViolation,
    /// The event time is before 2000-01-01 or more than a day after receipt
    /// (milliseconds sent as seconds, say): never state.
    EventTimeOutOfRange,
    /// The broker refused a dead letter as too large; what is kept is a copy
    /// whose payload was cut to fit, with the original's digest and coordinates.
    DeadLetterTooLarge,
}

impl Reason {
    /// Every code, for metrics pre-registration and documentation.
    pub const ALL: [Reason; 9] = [
        Reason::InvalidJson,
        Reason::SchemaInvalid,
        Reason::MissingUserId,
        Reason::MissingEventId,
        Reason::Undecodable,
        Reason::Misrouted,
        Reason::ConstraintViolation,
        Reason::EventTimeOutOfRange,
        Reason::DeadLetterTooLarge,
    ];

    /// The code as written in headers, logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::SchemaInvalid => "schema_invalid",
            Reason::MissingUserId => "missing_user_id",
            Reason::MissingEventId => "missing_event_id",
            Reason::Undecodable => "undecodable",
            Reason::Misrouted => "misrouted",
            Reason::ConstraintViolation => "constraint_violation",
            Reason::EventTimeOutOfRange => "event_time_out_of_range",
            Reason::DeadLetterTooLarge => "dead_letter_too_large",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the known reason codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownReason(pub String);

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown reason code {:?}", self.0)
    }
}

impl std::error::Error for UnknownReason {}

impl FromStr for Reason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// The pipeline stage that refused a record, carried in `hookline.errors.stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// At the HTTP edge, before the record reached the main topic.
    Ingest,
    /// Reading the record's headers and body in the worker.
    Decode,
    /// Checking the payload against its schema.
    Validate,
    /// Checking the record's placement.
    Route,
    /// Writing to the shard.
    Write,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 5] = [
        Stage::Ingest,
        Stage::Decode,
        Stage::Validate,
        Stage::Route,
        Stage::Write,
    ];

    /// The stage as written in headers and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Decode => "decode",
            Stage::Validate => "validate",
            Stage::Route => "route",
            Stage::Write => "write",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert!(seen.insert(reason.as_str()), "duplicate {reason}");
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
        }
    }

    #[test]
    fn codes_are_the_documented_strings() {
        assert_eq!(Reason::MissingUserId.to_string(), "missing_user_id");
        assert_eq!(
            Reason::ConstraintViolation.to_string(),
            "constraint_violation"
        );
    }

    #[test]
    fn stages_round_trip() {
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
        }
        assert!("parse".parse::<Stage>().is_err());
    }

    #[test]
    fn unknown_code_is_refused_by_name() {
        let err = "nope".parse::<Reason>().unwrap_err();
        assert_eq!(err.to_string(), "unknown reason code \"nope\"");
    }
}
