//! The one tracing setup of every hookline binary: structured events to
//! standard error, filtered by `RUST_LOG` or the binary's default.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; `default` is the filter when `RUST_LOG` is unset
/// or unreadable (e.g. `"info"`, `"info,sqlx=error"`).
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
