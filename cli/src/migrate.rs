//! `hookline migrate`: brings every shard's schema up to date.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;

/// Arguments of `hookline migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A shard's connection string; repeat the flag for each shard.
    #[arg(
        long = "database-url",
        env = "HOOKLINE_DATABASE_URLS",
        value_delimiter = ',',
        required = true
    )]
    database_urls: Vec<String>,

    /// How long to wait for each shard to accept a connection.
    #[arg(long, env = "HOOKLINE_CONNECT_TIMEOUT", default_value = "30s", value_parser = hookline_runtime::parse_duration)]
    connect_timeout: Duration,
}

/// Migrates the shards one after the other, stopping at the first failure.
pub async fn run(args: Args) -> anyhow::Result<()> {
    for (n, url) in args.database_urls.iter().enumerate() {
        let shard = redact(url);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(args.connect_timeout)
            .connect(url)
            .await
            .with_context(|| format!("connecting to shard {n} ({shard})"))?;
        hookline_worker::store::migrate(&pool, chrono::Utc::now())
            .await
            .with_context(|| format!("migrating shard {n} ({shard})"))?;
        let applied = hookline_worker::store::MIGRATOR.iter().count();
        tracing::info!(shard = n, url = %shard, migrations = applied, "shard schema up to date");
        pool.close().await;
    }
    Ok(())
}

/// The connection string without its password, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://hookline:secret@127.0.0.1:5432/a"),
            "postgres://hookline:***@127.0.0.1:5432/a"
        );
        assert_eq!(redact("postgres://127.0.0.1/a"), "postgres://127.0.0.1/a");
    }
}
