//! What each shard can take, read from the shard itself: its
//! `max_connections`, less the slots only privileged roles may use and the
//! client connections other users hold. One connection per shard, closed
//! after; the answer is kept a few minutes, so that a reconcile a minute does
//! not open a connection to every shard each time.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use hookline_contract::pipeline::{SecretKeyRef, ShardSpec, WebhookPipeline};
use kube::{Client, ResourceExt};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::time::Instant;

use crate::secrets::{self, SecretError};

/// How long reading one shard may take, its Secrets included: the reconcile
/// waits for it, and an unreachable shard must not hold it up.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a reading (or the reason there is none) is kept.
pub const KEPT_FOR: Duration = Duration::from_secs(300);

/// What one shard was found to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLimit {
    /// Its `max_connections`.
    pub max_connections: i64,
    /// `superuser_reserved_connections`, plus `reserved_connections` on
    /// PostgreSQL 16 and later: slots that hookline's role may not have.
    pub reserved: i64,
    /// Client connections of other users when read. Those of the URL's own
    /// user are not counted: hookline's workers are among them, and they are
    /// the demand, not what takes from it.
    pub others: i64,
}

impl ShardLimit {
    /// The connections left for hookline.
    pub fn available(&self) -> i64 {
        (self.max_connections - self.reserved - self.others).max(0)
    }
}

/// A shard's limit, or why it could not be read, as the status says it.
pub type Reading = Result<ShardLimit, String>;

/// Why a shard could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ShardLimitError {
    #[error("reading the shard's Secrets failed")]
    Secrets(#[source] SecretError),
    #[error("the shard's URL is not a PostgreSQL connection string")]
    ParseUrl(#[source] sqlx::Error),
    #[error("connecting to the shard failed")]
    Connect(#[source] sqlx::Error),
    #[error("reading max_connections failed")]
    Query(#[source] sqlx::Error),
    #[error("reading the shard did not finish within {0:?}")]
    TimedOut(Duration),
}

impl ShardLimitError {
    /// A fixed label for metrics.
    pub const fn label(&self) -> &'static str {
        match self {
            ShardLimitError::Secrets(_) => "shard_secrets",
            ShardLimitError::ParseUrl(_) => "shard_url",
            ShardLimitError::Connect(_) => "shard_connect",
            ShardLimitError::Query(_) => "shard_query",
            ShardLimitError::TimedOut(_) => "shard_timeout",
        }
    }
}

/// The Secrets a shard is reached with: a reading is kept for these, so two
/// pipelines naming one database share it, and a new reference reads anew.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    url: (String, String),
    ca: Option<(String, String)>,
}

impl Key {
    fn of(namespace: &str, shard: &ShardSpec) -> Self {
        let pair = |r: &SecretKeyRef| (r.name.clone(), r.key.clone());
        Self {
            namespace: namespace.to_owned(),
            url: pair(&shard.database_url_secret_ref),
            ca: shard.ca_secret_ref.as_ref().map(pair),
        }
    }
}

/// The readings kept, shared by every reconcile.
pub struct ShardLimits {
    kept: Mutex<HashMap<Key, (Instant, Reading)>>,
    timeout: Duration,
    kept_for: Duration,
}

impl Default for ShardLimits {
    fn default() -> Self {
        Self::new(READ_TIMEOUT, KEPT_FOR)
    }
}

impl ShardLimits {
    pub fn new(timeout: Duration, kept_for: Duration) -> Self {
        Self {
            kept: Mutex::new(HashMap::new()),
            timeout,
            kept_for,
        }
    }

    /// Each shard's reading, by shard name: kept ones while fresh, the others
    /// read now, all at once, each within the timeout. Never fails: what went
    /// wrong is the reading.
    pub async fn read(
        &self,
        client: &Client,
        pipeline: &WebhookPipeline,
    ) -> BTreeMap<String, Reading> {
        let namespace = pipeline.namespace().unwrap_or_default();
        let now = Instant::now();
        let mut readings = BTreeMap::new();
        let mut stale = Vec::new();
        {
            let kept = self.lock();
            for shard in &pipeline.spec.shards {
                let key = Key::of(&namespace, shard);
                match kept.get(&key) {
                    Some((at, reading)) if now.duration_since(*at) < self.kept_for => {
                        readings.insert(shard.name.clone(), reading.clone());
                    }
                    _ => stale.push((shard, key)),
                }
            }
        }
        let ns = namespace.as_str();
        let read = join_all(stale.iter().map(|&(shard, _)| async move {
            let read = tokio::time::timeout(self.timeout, read_limit(client, ns, shard))
                .await
                .unwrap_or(Err(ShardLimitError::TimedOut(self.timeout)));
            read.map_err(|error| {
                let why = explain(&error);
                tracing::info!(shard = %shard.name, error = %why, label = error.label(), "shard not read");
                why
            })
        }))
        .await;
        let now = Instant::now();
        let mut kept = self.lock();
        // Entries of shards no pipeline names any more go as they expire.
        kept.retain(|_, (at, _)| now.duration_since(*at) < self.kept_for);
        for ((shard, key), reading) in stale.into_iter().zip(read) {
            kept.insert(key, (now, reading.clone()));
            readings.insert(shard.name.clone(), reading);
        }
        readings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (Instant, Reading)>> {
        // The map holds only finished readings; one left by a panicking
        // holder is still whole.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The limit the shard states, over one connection of its own.
async fn read_limit(
    client: &Client,
    namespace: &str,
    shard: &ShardSpec,
) -> Result<ShardLimit, ShardLimitError> {
    let mut references = vec![&shard.database_url_secret_ref];
    references.extend(&shard.ca_secret_ref);
    let mut values = secrets::values(client, namespace, &references)
        .await
        .map_err(ShardLimitError::Secrets)?
        .into_iter();
    let url = values.next().unwrap_or_default();
    let options = connect_options(&url, values.next())?;
    let mut connection = PgConnection::connect_with(&options)
        .await
        .map_err(ShardLimitError::Connect)?;
    let row: Result<(i64, i64, i64), _> =
        sqlx::query_as(LIMIT_QUERY).fetch_one(&mut connection).await;
    // Closed whatever the answer: a connection left open would count
    // against the very limit just read.
    if let Err(error) = connection.close().await {
        tracing::debug!(shard = %shard.name, %error, "closing the shard connection failed");
    }
    let (max_connections, reserved, others) = row.map_err(ShardLimitError::Query)?;
    Ok(ShardLimit {
        max_connections,
        reserved,
        others,
    })
}

/// `reserved_connections` exists from PostgreSQL 16 on; `current_setting`
/// with `missing_ok` gives NULL before.
const LIMIT_QUERY: &str = "SELECT current_setting('max_connections')::bigint, \
     current_setting('superuser_reserved_connections')::bigint \
       + coalesce(current_setting('reserved_connections', true)::bigint, 0), \
     (SELECT count(*) FROM pg_stat_activity \
       WHERE backend_type = 'client backend' AND usename IS DISTINCT FROM current_user)";

/// How to connect to the shard at `url`, with `ca` (PEM) as its root
/// certificate when the shard names one. Set last, it wins over a
/// `sslrootcert` of the URL, as for the workers; and the operator has no file
/// to point one at.
fn connect_options(url: &str, ca: Option<String>) -> Result<PgConnectOptions, ShardLimitError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(ShardLimitError::ParseUrl)?
        .application_name("hookline-operator")
        // A server-side bound too, should the client's timeout not reach it.
        .options([("statement_timeout", READ_TIMEOUT.as_millis().to_string())])
        .disable_statement_logging();
    Ok(match ca {
        Some(pem) => options.ssl_root_cert_from_pem(pem.into_bytes()),
        None => options,
    })
}

/// `error` and its causes, as one line for the status. A cause whose text
/// repeats its own cause's (kube's `ApiError: …` around the API's `Status`,
/// sqlx's I/O error around the OS error) is left out for the inner one.
fn explain(error: &ShardLimitError) -> String {
    let mut texts = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    // Bounded: a chain of causes is short, and a cyclic one is cut.
    for _ in 0..8 {
        let Some(cause) = source else { break };
        texts.push(cause.to_string());
        source = cause.source();
    }
    let kept: Vec<&str> = texts
        .iter()
        .enumerate()
        .filter(|&(i, text)| {
            i == 0
                || texts
                    .get(i + 1)
                    .is_none_or(|inner| !text.contains(inner.as_str()))
        })
        .map(|(_, text)| text.as_str())
        .collect();
    kept.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A Kubernetes API that knows no Secret, and counts the requests.
    fn no_secrets() -> (Client, Arc<AtomicUsize>) {
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let service = tower::service_fn(move |_: http::Request<kube::client::Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404});
            let response = http::Response::builder()
                .status(404)
                .body(kube::client::Body::from(body.to_string().into_bytes()));
            async move { response }
        });
        (Client::new(service, "default"), asked)
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_is_kept_for_its_time_then_read_anew() {
        let (client, asked) = no_secrets();
        let limits = ShardLimits::default();
        let pipeline = crate::fixtures::pipeline().with_shards(1).build();

        let first = limits.read(&client, &pipeline).await;
        assert!(
            first["s0"]
                .as_ref()
                .is_err_and(|why| why.contains("reading Secret pg-shard-0 failed")),
            "{first:?}"
        );
        assert_eq!(asked.load(Ordering::SeqCst), 1);

        tokio::time::advance(KEPT_FOR - Duration::from_secs(1)).await;
        assert_eq!(limits.read(&client, &pipeline).await, first);
        assert_eq!(asked.load(Ordering::SeqCst), 1, "kept");

        tokio::time::advance(Duration::from_secs(1)).await;
        limits.read(&client, &pipeline).await;
        assert_eq!(asked.load(Ordering::SeqCst), 2, "read anew once stale");
    }

    #[test]
    fn what_is_left_is_the_maximum_less_reserved_slots_and_other_users() {
        let limit = ShardLimit {
            max_connections: 100,
            reserved: 3,
            others: 10,
        };
        assert_eq!(limit.available(), 87);
        let crowded = ShardLimit {
            others: 120,
            ..limit
        };
        assert_eq!(crowded.available(), 0, "never negative");
    }

    #[test]
    fn the_ca_reference_wins_over_the_urls_root_certificate() {
        let options = connect_options(
            "postgres://u:p@db:5432/x?sslmode=verify-full&sslrootcert=/nowhere.pem",
            Some("-----BEGIN CERTIFICATE-----".into()),
        )
        .unwrap();
        let debug = format!("{options:?}");
        assert!(!debug.contains("/nowhere.pem"), "{debug}");
    }

    #[test]
    fn a_url_that_is_not_postgres_is_named_as_such() {
        let error = connect_options("postgres://db:port/x", None).unwrap_err();
        assert_eq!(error.label(), "shard_url");
        assert!(
            explain(&error).starts_with("the shard's URL is not"),
            "{}",
            explain(&error)
        );
    }
}
