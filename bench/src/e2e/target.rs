//! A system under test, the pipeline or the baseline, with its own shard
//! databases, shard b behind a proxy, and the queries that read its rows.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hookline_testkit::proxy::Proxy;
use sqlx::PgPool;

use super::baseline::Server;
use super::pipeline::{Pipeline, Ports};
use super::{Args, SETTLE_DEADLINE};
use crate::cpu::Pids;
use crate::databases::{self, PhaseRows};

#[derive(Debug, Clone, Copy)]
pub enum Design {
    Pipeline,
    Baseline,
}

impl Design {
    pub fn label(self) -> &'static str {
        match self {
            Design::Pipeline => "pipeline",
            Design::Baseline => "baseline",
        }
    }

    /// A letter for database and topic names.
    pub fn tag(self) -> char {
        match self {
            Design::Pipeline => 'p',
            Design::Baseline => 'b',
        }
    }
}

enum System {
    Pipeline(Pipeline),
    Baseline(Server),
}

pub struct Target {
    pub kind: Design,
    /// Where webhooks are posted.
    pub url: String,
    /// In front of shard b.
    pub proxy: Proxy,
    databases: [String; 2],
    /// Straight to the shards, past the proxy.
    pools: [PgPool; 2],
    system: System,
}

impl Target {
    pub async fn start(kind: Design, args: &Args, run: &str) -> anyhow::Result<Self> {
        let databases = databases::create(&args.stack.admin_url, run).await?;
        match Self::start_on(kind, args, run, databases.clone()).await {
            Ok(target) => Ok(target),
            Err(error) => {
                // The run failed; its databases are of no use to anyone.
                let _ = databases::drop(&args.stack.admin_url, &databases).await;
                Err(error)
            }
        }
    }

    async fn start_on(
        kind: Design,
        args: &Args,
        run: &str,
        databases: [String; 2],
    ) -> anyhow::Result<Self> {
        let mut pools = Vec::new();
        for url in &databases {
            let pool = PgPool::connect(url).await?;
            databases::add_stored_at(&pool).await?;
            pools.push(pool);
        }
        let (authority, _) = through_proxy(&databases[1], 0)?;
        let proxy = Proxy::start(&authority).await?;
        let (_, shard_b) = through_proxy(&databases[1], proxy.port)?;
        let system = match kind {
            Design::Pipeline => System::Pipeline(
                Pipeline::start(
                    &args.stack.broker.bootstrap,
                    run,
                    args.partitions,
                    [&databases[0], &shard_b],
                    Ports {
                        ingest: args.first_port,
                        first_worker: args.first_port + 1,
                        // After the workers' ports.
                        ingest_metrics: args.first_port + 1 + args.partitions as u16,
                        fetch_wait: args.fetch_wait,
                    },
                )
                .await?,
            ),
            Design::Baseline => System::Baseline(
                Server::start(&[databases[0].clone(), shard_b], args.first_port).await?,
            ),
        };
        let url = match &system {
            System::Pipeline(p) => p.url.clone(),
            System::Baseline(b) => b.url.clone(),
        };
        let [a, b] =
            <[PgPool; 2]>::try_from(pools).map_err(|_| anyhow::anyhow!("two shards expected"))?;
        Ok(Self {
            kind,
            url,
            proxy,
            databases,
            pools: [a, b],
            system,
        })
    }

    /// Rows whose provider event id starts with `evt_<phase>_`.
    pub async fn rows(&self, phase: &str) -> anyhow::Result<i64> {
        let mut total = 0;
        for pool in &self.pools {
            total += sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM order_events WHERE provider_event_id LIKE $1",
            )
            .bind(format!("evt_{phase}_%"))
            .fetch_one(pool)
            .await?;
        }
        Ok(total)
    }

    /// Waits until at least `rows` rows of `phase` are stored and, for the
    /// pipeline, nothing is left on the topic.
    pub async fn settle(&self, phase: &str, rows: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETTLE_DEADLINE;
        loop {
            let drained = match &self.system {
                System::Pipeline(p) => p.drained().await?,
                System::Baseline(_) => true,
            };
            if drained && self.rows(phase).await? >= rows as i64 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: {} of {rows} rows of phase {phase} after {SETTLE_DEADLINE:?}",
                    self.kind.label(),
                    self.rows(phase).await?
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stored(&self, phase: &str) -> anyhow::Result<PhaseRows> {
        databases::phase_rows(&self.pools, phase).await
    }

    /// hookline's processes: ingest and the workers, or the baseline.
    pub fn pids(&self) -> Pids {
        match &self.system {
            System::Pipeline(p) => p.pids(),
            System::Baseline(b) => Pids {
                front: b.pid().into_iter().collect(),
                workers: Vec::new(),
            },
        }
    }

    pub async fn stop(self, args: &Args) -> anyhow::Result<()> {
        match self.system {
            System::Pipeline(p) => p.stop().await,
            System::Baseline(b) => b.stop().await?,
        }
        for pool in self.pools {
            pool.close().await;
        }
        databases::drop(&args.stack.admin_url, &self.databases).await
    }
}

/// The `host:port` of a PostgreSQL URL, and the URL with it replaced by
/// `127.0.0.1:<port>`.
fn through_proxy(url: &str, port: u16) -> anyhow::Result<(String, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("{url} is not a URL"))?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (credentials, host) = match authority.rsplit_once('@') {
        Some((credentials, host)) => (format!("{credentials}@"), host),
        None => (String::new(), authority),
    };
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    Ok((
        host,
        format!("{scheme}://{credentials}127.0.0.1:{port}{path}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::through_proxy;

    #[test]
    fn a_url_is_pointed_at_the_proxy() {
        let (target, proxied) = through_proxy(
            "postgres://u:p@db.example:5433/shard_b?sslmode=disable",
            7000,
        )
        .unwrap();
        assert_eq!(target, "db.example:5433");
        assert_eq!(
            proxied,
            "postgres://u:p@127.0.0.1:7000/shard_b?sslmode=disable"
        );
        let (target, _) = through_proxy("postgres://localhost/x", 1).unwrap();
        assert_eq!(target, "localhost:5432");
        assert!(through_proxy("not a url", 1).is_err());
    }
}
