//! Configuration: the command line, the pipeline manifest and the mounted
//! secrets, checked at startup so that a bad setting fails before the first
//! record is read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookline_contract::headers::dlq_topic;
use hookline_contract::payload::Inspector;
use hookline_contract::pipeline::{DEFAULT_POOL_SIZE, PipelineManifest};
use hookline_contract::secrets::SecretsDir;
use hookline_kafka::ClientSettings;
use hookline_runtime::parse_duration;

use crate::{Error, Result};

/// Largest batch: a batch and the next one filling behind it are held in
/// memory, records of up to a megabyte each.
const MAX_BATCH_SIZE: usize = 10_000;
/// Shortest fetch wait: with none, a caught-up consumer would send fetches to
/// the broker in a tight loop.
const MIN_FETCH_WAIT: Duration = Duration::from_millis(1);
/// Longest fetch wait: librdkafka needs its socket timeout (60 s) to exceed
/// the fetch wait by a margin, and a longer wait only delays shutdown.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);
/// Bounds of `--batch-bytes`: below, most records would be batches of their
/// own; above, the consumer's fetches (sized from it) pass librdkafka's
/// largest response (`receive.message.max.bytes`, 100 MB).
const MIN_BATCH_BYTES: usize = 64 << 10;
const MAX_BATCH_BYTES: usize = 64 << 20;
/// Shortest write deadline: a shard transaction needs a few round trips.
const MIN_WRITE_TIMEOUT: Duration = Duration::from_millis(100);
/// Shortest backoff cap: below the first delay, retries would hammer a shard
/// that is already failing.
const MIN_MAX_BACKOFF: Duration = Duration::from_millis(100);
/// Bounds of `--session-timeout`: a Kafka broker's defaults for
/// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`; a
/// member asking for less or more is refused when it joins.
const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(6);
const MAX_SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `hookline-worker`'s command line; every flag has an environment fallback.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "hookline-worker", version, about)]
pub struct Args {
    /// The WebhookPipeline manifest (YAML): topics, shards, broker.
    #[arg(long, env = "HOOKLINE_PIPELINE")]
    pub pipeline: PathBuf,

    /// Where Secrets are mounted: the key K of Secret S is the file DIR/S/K.
    #[arg(long, env = "HOOKLINE_SECRETS_DIR")]
    pub secrets_dir: PathBuf,

    /// The topic to consume (one of the manifest's topics); its consumer group
    /// has the same name.
    #[arg(long, env = "HOOKLINE_TOPIC")]
    pub topic: String,

    /// Consume exactly this partition of the topic, by assignment: no group
    /// membership and no rebalances; offsets are still committed to the
    /// group, so lag tools see them. Without it the worker joins the group.
    #[arg(long, env = "HOOKLINE_PARTITION", value_parser = clap::value_parser!(i32).range(0..))]
    pub partition: Option<i32>,

    /// Static group membership id, for workers whose identity survives a
    /// restart (a fixed name per slot): a restarted worker with the same id
    /// takes its partitions back at once. Never an id that changes on every
    /// start, such as a Deployment's pod name: a static member that goes
    /// away sends no LeaveGroup, so its partitions would wait out the
    /// session timeout. Without it, membership is dynamic. A pinned worker
    /// (`--partition`) is no member and only names its client after it.
    #[arg(long, env = "HOOKLINE_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// How long the group waits for a member that stopped heartbeating
    /// before it hands its partitions to the others (`session.timeout.ms`;
    /// 6s to 30m, the bounds a Kafka broker accepts by default). A worker
    /// that shuts down leaves the group at once; this only bounds how long
    /// the partitions of a crashed or partitioned worker stand still.
    /// Heartbeats go five times per timeout.
    #[arg(long, env = "HOOKLINE_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub session_timeout: Duration,

    /// Address to serve health and metrics on.
    #[arg(long, env = "HOOKLINE_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,

    /// Do not apply pending migrations to the shards at startup.
    #[arg(long, env = "HOOKLINE_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Records per batch at most.
    #[arg(long, env = "HOOKLINE_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,

    /// Bytes of keys and values per batch at most (a larger record is a batch
    /// of its own), 64 KiB to 64 MiB. It bounds the worker's memory: the
    /// consumer prefetches at most about as much again, so the worker holds
    /// a few times this, whatever the size of the records or the backlog.
    #[arg(long, env = "HOOKLINE_BATCH_BYTES", default_value_t = 8 << 20)]
    pub batch_bytes: usize,

    /// Largest dead letter sent to the DLQ, in bytes (64 KiB to 64 MiB; set it
    /// to the DLQ topic's `max.message.bytes`). A record that does not fit is
    /// kept as a copy whose value is cut to fit, with the original's size,
    /// SHA-256 and coordinates, and the reason `dead_letter_too_large`.
    #[arg(long, env = "HOOKLINE_DLQ_MAX_BYTES", default_value_t = crate::dlq::DLQ_MAX_BYTES)]
    pub dlq_max_bytes: usize,

    /// Longest one shard transaction may take (`30s`). A batch that does not
    /// finish in time is split in halves, and the halves written in order.
    #[arg(long, env = "HOOKLINE_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// How long a batch waits for more records once the consumer has none
    /// ready. `0ms` (the default) writes it at once: a lone event is stored
    /// without delay, and a flood still makes large batches, since records
    /// arrive a whole fetch at a time.
    #[arg(long, env = "HOOKLINE_BATCH_WAIT", default_value = "0ms", value_parser = parse_duration)]
    pub batch_wait: Duration,

    /// How long the broker may hold a fetch when it has no records to send
    /// (`fetch.wait.max.ms`; 1ms to 30s). On Kafka a fetch returns as soon as
    /// records arrive, so the wait only sets how often an idle worker asks;
    /// a broker that holds every fetch its whole wait (tansu) adds the wait
    /// to every event's latency, and wants it short.
    #[arg(long, env = "HOOKLINE_FETCH_WAIT", default_value = "500ms", value_parser = parse_duration)]
    pub fetch_wait: Duration,

    /// How often offsets are committed at most while records flow (a batch
    /// after a quiet spell is committed at once). Longer costs the broker
    /// fewer commits; a crash reads at most this much again, and finds it
    /// stored.
    #[arg(long, env = "HOOKLINE_COMMIT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub commit_interval: Duration,

    /// Longest delay between retries of a failing write (`10s`, `1m`; at
    /// least 100ms).
    #[arg(long, env = "HOOKLINE_MAX_BACKOFF", default_value = "10s", value_parser = parse_duration)]
    pub max_backoff: Duration,

    /// Connections per shard, for the shards whose `poolSize` the manifest
    /// leaves out.
    #[arg(long, env = "HOOKLINE_SHARD_CONNECTIONS", default_value_t = DEFAULT_POOL_SIZE as u32)]
    pub shard_connections: u32,

    /// Log format: `json` (one object per line) or `text`. Default: text on
    /// a terminal, JSON anywhere else (a pod, a pipe, a file).
    #[arg(long, env = "HOOKLINE_LOG_FORMAT")]
    pub log_format: Option<hookline_runtime::telemetry::LogFormat>,
}

/// How the worker gets its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Exactly this partition, by assignment; offsets committed to the group.
    Pinned(i32),
    /// A member of the group, static when an instance id is given.
    Group { instance_id: Option<String> },
}

/// Everything the worker needs, loaded and checked.
pub struct Config {
    pub kafka: ClientSettings,
    pub topic: String,
    pub dlq: String,
    pub dlq_max_bytes: usize,
    /// Where offsets are committed (and, in group mode, the group joined).
    pub group: String,
    pub membership: Membership,
    /// Names the worker's Kafka clients.
    pub client_id: String,
    /// What the topic carries: its schema, where its columns are, which
    /// tables hold it.
    pub inspector: Inspector,
    /// (name, connection string) of each shard, in the manifest's order (the
    /// shard index is `murmur2(user_id) % shards`).
    pub shard_urls: Vec<(String, String)>,
    pub batch_size: usize,
    pub batch_bytes: usize,
    pub write_timeout: Duration,
    pub batch_wait: Duration,
    pub fetch_wait: Duration,
    pub commit_interval: Duration,
    pub max_backoff: Duration,
    /// In group mode, how long the group waits for a silent member.
    pub session_timeout: Duration,
    /// The pool size of each shard, in shard order: the manifest's `poolSize`,
    /// else `--shard-connections`.
    pub shard_connections: Vec<u32>,
    pub migrate: bool,
}

impl Config {
    pub fn load(args: &Args) -> Result<Self> {
        let manifest = PipelineManifest::read(&args.pipeline)?;
        let topic = manifest
            .spec
            .topics
            .iter()
            .find(|t| t.name == args.topic)
            .ok_or_else(|| Error::UnknownTopic(args.topic.clone()))?;
        let inspector = Inspector::for_topic(&manifest.spec, topic)?;
        let secrets = SecretsDir::new(&args.secrets_dir);
        let shard_urls = manifest
            .spec
            .shards
            .iter()
            .map(|shard| Ok((shard.name.clone(), secrets.shard_url(shard)?)))
            .collect::<Result<Vec<_>>>()?;
        let shard_connections = manifest
            .spec
            .shards
            .iter()
            .map(|shard| {
                shard
                    .pool_size
                    .map_or(args.shard_connections, |size| size.max(1) as u32)
                    .max(1)
            })
            .collect();
        if !(1..=MAX_BATCH_SIZE).contains(&args.batch_size) {
            return Err(Error::InvalidSetting(
                "--batch-size must be between 1 and 10000",
            ));
        }
        if !(MIN_BATCH_BYTES..=MAX_BATCH_BYTES).contains(&args.batch_bytes) {
            return Err(Error::InvalidSetting(
                "--batch-bytes must be between 65536 (64 KiB) and 67108864 (64 MiB)",
            ));
        }
        if !(MIN_BATCH_BYTES..=MAX_BATCH_BYTES).contains(&args.dlq_max_bytes) {
            return Err(Error::InvalidSetting(
                "--dlq-max-bytes must be between 65536 (64 KiB) and 67108864 (64 MiB)",
            ));
        }
        if args.write_timeout < MIN_WRITE_TIMEOUT {
            return Err(Error::InvalidSetting(
                "--write-timeout must be at least 100ms",
            ));
        }
        if !(MIN_FETCH_WAIT..=MAX_FETCH_WAIT).contains(&args.fetch_wait) {
            return Err(Error::InvalidSetting(
                "--fetch-wait must be between 1ms and 30s",
            ));
        }
        if !(MIN_SESSION_TIMEOUT..=MAX_SESSION_TIMEOUT).contains(&args.session_timeout) {
            return Err(Error::InvalidSetting(
                "--session-timeout must be between 6s and 30m",
            ));
        }
        let (membership, client_id) = match (args.partition, &args.instance_id) {
            (Some(partition), _) => (
                Membership::Pinned(partition),
                format!("hookline-worker-{}-{partition}", topic.name),
            ),
            (None, Some(id)) => (
                Membership::Group {
                    instance_id: Some(id.clone()),
                },
                format!("hookline-worker-{id}"),
            ),
            (None, None) => (
                Membership::Group { instance_id: None },
                "hookline-worker".to_owned(),
            ),
        };
        Ok(Self {
            kafka: ClientSettings::of(&manifest.spec.kafka, &secrets)?,
            dlq: dlq_topic(&topic.name),
            dlq_max_bytes: args.dlq_max_bytes,
            group: topic.name.clone(),
            topic: topic.name.clone(),
            membership,
            client_id,
            inspector,
            shard_urls,
            batch_size: args.batch_size,
            batch_bytes: args.batch_bytes,
            write_timeout: args.write_timeout,
            batch_wait: args.batch_wait,
            fetch_wait: args.fetch_wait,
            commit_interval: args.commit_interval,
            max_backoff: args.max_backoff.max(MIN_MAX_BACKOFF),
            session_timeout: args.session_timeout,
            shard_connections,
            migrate: !args.no_migrate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = [
            "hookline-worker",
            "--pipeline=p.yaml",
            "--secrets-dir=s",
            "--topic=orders.webhooks",
        ];
        Args::try_parse_from(base.iter().chain(extra))
    }

    #[test]
    fn durations_default_and_parse_as_humans_write_them() {
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.batch_wait, Duration::ZERO);
        assert_eq!(defaults.fetch_wait, Duration::from_millis(500));
        assert_eq!(defaults.max_backoff, Duration::from_secs(10));
        assert_eq!(defaults.write_timeout, Duration::from_secs(30));
        assert_eq!(defaults.batch_bytes, 8 << 20);
        let set = parse(&[
            "--batch-wait=50ms",
            "--fetch-wait=10ms",
            "--max-backoff",
            "1m 30s",
        ])
        .unwrap();
        assert_eq!(set.batch_wait, Duration::from_millis(50));
        assert_eq!(set.fetch_wait, Duration::from_millis(10));
        assert_eq!(set.max_backoff, Duration::from_secs(90));
    }

    #[test]
    fn a_partition_is_a_number_from_zero() {
        assert_eq!(parse(&["--partition=3"]).unwrap().partition, Some(3));
        assert_eq!(parse(&[]).unwrap().partition, None);
        assert!(parse(&["--partition=-1"]).is_err());
    }

    #[test]
    fn a_duration_without_unit_is_refused() {
        assert!(parse(&["--batch-wait=100"]).is_err());
    }

    #[test]
    fn each_shard_gets_its_pool_size_and_the_flag_fills_the_rest() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let example = std::fs::read_to_string(repo.join("examples/local/pipeline.yaml")).unwrap();
        let manifest = example.replace(
            "databaseUrlSecretRef: {name: pg-shard-a, key: url}",
            "databaseUrlSecretRef: {name: pg-shard-a, key: url}\n      poolSize: 9",
        );
        assert_ne!(
            manifest, example,
            "the example's shard a is where the test expects"
        );
        let file = std::env::temp_dir().join(format!("hookline-pool-{}.yaml", std::process::id()));
        std::fs::write(&file, manifest).unwrap();
        let secrets = repo.join("examples/local/secrets");
        let args = Args::try_parse_from([
            "hookline-worker".to_owned(),
            format!("--pipeline={}", file.display()),
            format!("--secrets-dir={}", secrets.display()),
            "--topic=orders.webhooks".to_owned(),
            "--shard-connections=3".to_owned(),
        ])
        .unwrap();

        let config = Config::load(&args);
        std::fs::remove_file(&file).unwrap();

        assert_eq!(config.unwrap().shard_connections, vec![9, 3]);
    }

    #[test]
    fn the_session_timeout_is_ten_seconds_unless_set_as_humans_write_it() {
        assert_eq!(parse(&[]).unwrap().session_timeout, Duration::from_secs(10));
        assert_eq!(
            parse(&["--session-timeout=45s"]).unwrap().session_timeout,
            Duration::from_secs(45)
        );
        assert!(parse(&["--session-timeout=10"]).is_err());
    }
}
