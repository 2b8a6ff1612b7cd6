//! What every long-running hookline binary shares: one tracing setup
//! ([`telemetry`]), one server for `/healthz`, `/readyz` and `/metrics`
//! ([`health`]), one shutdown signal ([`shutdown`]), and one way to write a
//! duration on the command line ([`parse_duration`]: `5s`, `250ms`, `2m`).

pub mod health;
pub mod shutdown;
pub mod telemetry;

/// Parses a duration as humans write it (`5s`, `250ms`, `1m 30s`), for clap's
/// `value_parser` on every duration flag.
pub use humantime::parse_duration;

/// The innermost cause of `error`: what a log line or a dead letter shows
/// when the outer layers only say which operation failed.
pub fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_cause_is_the_innermost_source() {
        let inner = std::io::Error::other("connection refused");
        let outer = std::io::Error::other(Wrapped(inner));
        assert_eq!(root_cause(&outer), "connection refused");
    }

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("writing to shard a failed")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn durations_are_written_as_humans_write_them() {
        use std::time::Duration;
        assert_eq!(parse_duration("5s").ok(), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_duration("5").is_err());
    }
}
