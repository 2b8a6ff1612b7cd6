//! A throwaway database per test.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use uuid::Uuid;

/// The stack's administrative connection string, overridable for other setups.
fn admin_url() -> String {
    std::env::var("HOOKLINE_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://hookline:hookline@127.0.0.1:5432/postgres".to_owned())
}

/// Held by the test that pushes hundreds of megabytes through the one broker
/// and by the test that times a lone event: on two cores the first starves
/// the broker (every fetch then takes ~600 ms), so they never run together.
pub static BROKER_HEAVY_OR_TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A database created for one test and dropped by [`TestDb::drop`].
pub struct TestDb {
    pub pool: PgPool,
    /// The database's connection string.
    pub url: String,
    name: String,
    admin: PgPool,
}

impl TestDb {
    /// A new database with nothing in it.
    pub async fn empty() -> Self {
        Self::create("").await
    }

    /// A new database whose text sorts by the ICU English collation (not in
    /// byte order), with the shard schema applied.
    pub async fn migrated_with_english_collation() -> Self {
        let db = Self::create(
            " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' TEMPLATE template0",
        )
        .await;
        hookline_worker::store::migrate(&db.pool, chrono::Utc::now())
            .await
            .unwrap();
        db
    }

    async fn create(options: &str) -> Self {
        let admin_url = admin_url();
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url} is unreachable ({e}); run `scripts/stack up`")
            });
        let name = format!("hookline_test_{}", Uuid::new_v4().simple());
        admin
            .execute(format!("CREATE DATABASE {name}{options}").as_str())
            .await
            .unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        Self {
            pool,
            url,
            name,
            admin,
        }
    }

    /// A new database with the shard schema applied.
    pub async fn migrated() -> Self {
        let db = Self::empty().await;
        hookline_worker::store::migrate(&db.pool, chrono::Utc::now())
            .await
            .unwrap();
        db
    }

    /// Drops the database; a test that fails before this leaves it behind for a
    /// look.
    pub async fn drop(self) {
        self.pool.close().await;
        self.admin
            .execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }

    /// One value of a one-row, one-column query.
    pub async fn scalar<T>(&self, sql: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}
