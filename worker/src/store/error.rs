//! Errors of the repository layer, and whether retrying can help.

use hookline_contract::Reason;

/// Result of a repository operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A repository operation that failed, named for the operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Applying the migrations failed.
    #[error("applying migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// Creating the monthly partitions of `dispute_events` failed.
    #[error("creating dispute_events partitions failed")]
    EnsurePartitions(#[source] sqlx::Error),
    /// Starting a transaction (and so, often, connecting) failed.
    #[error("beginning a transaction failed")]
    Begin(#[source] sqlx::Error),
    /// Committing a transaction failed.
    #[error("committing a transaction failed")]
    Commit(#[source] sqlx::Error),
    /// A record was planned for a shard the manifest does not have (a bug:
    /// retried, so that it stalls visibly instead of counting as written).
    #[error("no shard {0} in the manifest")]
    UnknownShard(usize),
    /// A write took longer than its deadline (a connection that hangs).
    #[error("writing to the shard took longer than {0:?}")]
    Timeout(std::time::Duration),
    /// Inserting a batch into `order_events` failed.
    #[error("inserting order events failed")]
    InsertOrderEvents(#[source] sqlx::Error),
    /// Upserting the latest state into `orders` failed.
    #[error("upserting orders failed")]
    UpsertOrders(#[source] sqlx::Error),
    /// Inserting a batch into `dispute_events` failed.
    #[error("inserting dispute events failed")]
    InsertDisputeEvents(#[source] sqlx::Error),
    /// Upserting the latest state into `disputes` failed.
    #[error("upserting disputes failed")]
    UpsertDisputes(#[source] sqlx::Error),
    /// Inserting a batch into `events` failed.
    #[error("inserting declared events failed")]
    InsertDeclaredEvents(#[source] sqlx::Error),
    /// Upserting the latest state into `entities` failed.
    #[error("upserting entities failed")]
    UpsertEntities(#[source] sqlx::Error),
    /// A batch came with another number of payloads than events (a bug:
    /// retried, so that it stalls visibly instead of storing wrong payloads).
    #[error("{events} events came with {payloads} payloads")]
    PayloadsMismatch { events: usize, payloads: usize },
}

/// Whether an error is worth retrying, and if not, why the record is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The shard, the network or a concurrent transaction is at fault: retry the
    /// same records later; never dead-letter or skip them.
    Transient,
    /// The record itself can never be written: dead-letter it with this reason.
    Permanent(Reason),
}

impl Error {
    /// A fixed label for metrics and logs.
    pub const fn label(&self) -> &'static str {
        match self {
            Error::Migrate(_) => "migrate",
            Error::Begin(_) => "begin",
            Error::Commit(_) => "commit",
            Error::Timeout(_) => "timeout",
            Error::UnknownShard(_) => "unknown_shard",
            Error::EnsurePartitions(_) => "ensure_partitions",
            Error::InsertOrderEvents(_) => "insert_order_events",
            Error::UpsertOrders(_) => "upsert_orders",
            Error::InsertDisputeEvents(_) => "insert_dispute_events",
            Error::UpsertDisputes(_) => "upsert_disputes",
            Error::InsertDeclaredEvents(_) => "insert_declared_events",
            Error::UpsertEntities(_) => "upsert_entities",
            Error::PayloadsMismatch { .. } => "payloads_mismatch",
        }
    }

    /// The PostgreSQL SQLSTATE behind the error, if the server sent one.
    pub fn sqlstate(&self) -> Option<String> {
        match self.sql_error()? {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        }
    }

    fn sql_error(&self) -> Option<&sqlx::Error> {
        match self {
            Error::Migrate(_)
            | Error::Timeout(_)
            | Error::UnknownShard(_)
            | Error::PayloadsMismatch { .. } => None,
            Error::EnsurePartitions(e)
            | Error::Begin(e)
            | Error::Commit(e)
            | Error::InsertOrderEvents(e)
            | Error::UpsertOrders(e)
            | Error::InsertDisputeEvents(e)
            | Error::UpsertDisputes(e)
            | Error::InsertDeclaredEvents(e)
            | Error::UpsertEntities(e) => Some(e),
        }
    }

    /// Whether retrying can help.
    pub fn class(&self) -> ErrorClass {
        // Migrations fail the same way for every record: not the record's
        // fault, so never a reason to dead-letter one.
        self.sql_error().map_or(ErrorClass::Transient, class_of)
    }
}

fn class_of(error: &sqlx::Error) -> ErrorClass {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .map_or(ErrorClass::Transient, |code| class_of_sqlstate(&code)),
        // Lost connections, pool timeouts, TLS and protocol trouble: the
        // shard's side. Decode errors are this code's bug, never the record's.
        // Unknown variants (sqlx::Error is non-exhaustive) default to retry, so
        // that a new failure mode stalls visibly instead of losing events.
        _ => ErrorClass::Transient,
    }
}

/// The class of a PostgreSQL SQLSTATE.
///
/// Only data exceptions (class 22), integrity violations (class 23) and
/// program limits (class 54: a value too large for an index row) are the
/// record's fault. Everything else (serialization failures 40001, deadlocks
/// 40P01, connection exceptions 08, shutdowns and cancellations 57, resource
/// exhaustion 53, lock timeouts 55P03, and even undefined tables 42P01 when a
/// migration has not run) is retried.
pub fn class_of_sqlstate(code: &str) -> ErrorClass {
    match code.get(..2) {
        Some("22" | "23" | "54") => ErrorClass::Permanent(Reason::ConstraintViolation),
        _ => ErrorClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_and_data_errors_are_the_records_fault() {
        for code in [
            "23505", "23514", "23502", "23503", "22001", "22P02", "22003",
        ] {
            assert_eq!(
                class_of_sqlstate(code),
                ErrorClass::Permanent(Reason::ConstraintViolation),
                "{code}"
            );
        }
    }

    #[test]
    fn contention_connection_and_shutdown_errors_are_retried() {
        for code in [
            "40001", "40P01", "08006", "08003", "57P01", "57P03", "57014", "53300", "55P03",
            "42P01", "XX000", "",
        ] {
            assert_eq!(class_of_sqlstate(code), ErrorClass::Transient, "{code:?}");
        }
    }

    #[test]
    fn lost_connection_is_retried() {
        let error = Error::InsertOrderEvents(sqlx::Error::PoolTimedOut);
        assert_eq!(error.class(), ErrorClass::Transient);
        assert_eq!(error.label(), "insert_order_events");
    }
}
