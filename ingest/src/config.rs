//! Configuration: the command line, the pipeline manifest and the mounted
//! secrets, loaded and checked once at startup so that a bad setting fails
//! before the first request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookline_contract::headers::dlq_topic;
use hookline_contract::payload::Inspector;
use hookline_contract::pipeline::{InvalidPolicy, PipelineManifest, SourceSpec};
use hookline_contract::secrets::SecretsDir;
use hookline_kafka::ClientSettings;
use hookline_runtime::parse_duration;

use crate::auth::Keys;
use crate::auth::source::Verifier;
use crate::body::READ_SLOT_BYTES;
use crate::limits;
use crate::produce::ProducerSettings;
use crate::signing::{Reload, Signing};
use crate::{Error, Result};

/// Key of the signing Secret holding Standard Webhooks secrets and public keys.
pub const STANDARD_WEBHOOKS_KEY: &str = "standard-webhooks";
/// Key of the signing Secret holding Stripe endpoint secrets.
pub const STRIPE_KEY: &str = "stripe";
/// Time a request keeps, past its ack timeout, to answer before the request
/// timeout does.
const ACK_MARGIN: Duration = Duration::from_secs(1);
/// Room in the read budget, beyond the largest body, for the signed bytes
/// before it (`{id}.{timestamp}.`).
const MAX_READ_PREFIX_BYTES: usize = 4 * 1024;

/// `hookline-ingest`'s command line; every flag has an environment fallback.
/// Durations are written as humans write them: `5s`, `250ms`, `5m`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "hookline-ingest", version, about)]
pub struct Args {
    /// The WebhookPipeline manifest (YAML): topics, event types, pointers, broker.
    #[arg(long, env = "HOOKLINE_PIPELINE")]
    pub pipeline: PathBuf,

    /// Where Secrets are mounted: the key K of Secret S is the file DIR/S/K.
    #[arg(long, env = "HOOKLINE_SECRETS_DIR")]
    pub secrets_dir: PathBuf,

    /// Address to serve webhooks and health (/healthz, /readyz) on: the
    /// public one, which providers reach.
    #[arg(long, env = "HOOKLINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address to serve /metrics (and health) on, apart from the public
    /// listener: what the service counts is for the operator's scraper, not
    /// for anyone who can reach the webhooks.
    #[arg(
        long,
        env = "HOOKLINE_METRICS_LISTEN",
        default_value = "127.0.0.1:9091"
    )]
    pub metrics_listen: SocketAddr,

    /// Largest record the broker takes on the pipeline's topics and DLQs
    /// (Kafka's `message.max.bytes` / a topic's `max.message.bytes`; Kafka's
    /// default is 1048588). The body limit is derived from it.
    #[arg(long, env = "HOOKLINE_MAX_MESSAGE_BYTES", default_value_t = limits::KAFKA_DEFAULT_MESSAGE_MAX_BYTES)]
    pub max_message_bytes: usize,

    /// Largest accepted body in bytes; a larger one is answered 413 unread.
    /// Default and ceiling: --max-message-bytes less room for the record's
    /// headers and for the reason headers of its dead letter, so that the
    /// dead letter of any accepted body fits the broker.
    #[arg(long, env = "HOOKLINE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Longest a request's body may take to arrive once its headers have
    /// (408 after): a slow client holds read budget no longer than this.
    #[arg(long, env = "HOOKLINE_BODY_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Bytes that bodies not yet verified may hold together, each counted at
    /// least 4 KiB; beyond, 503 at once. Bounds what callers without a valid
    /// signature can hold, apart from --max-concurrent-requests, which only
    /// authenticated webhooks use.
    #[arg(long, env = "HOOKLINE_MAX_READING_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_reading_bytes: usize,

    /// Largest accepted distance between a signature's timestamp and now, both
    /// ways; whole seconds, as signed timestamps are.
    #[arg(long, env = "HOOKLINE_TIMESTAMP_TOLERANCE", default_value = "5m", value_parser = parse_duration)]
    pub timestamp_tolerance: Duration,

    /// How long a request waits for the broker's ack before it is answered 503.
    #[arg(long, env = "HOOKLINE_ACK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub ack_timeout: Duration,

    /// Longest a whole request may take, reading the body included (408 after).
    #[arg(long, env = "HOOKLINE_REQUEST_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Records the producer may hold unacknowledged; beyond, requests get 503 at once.
    #[arg(long, env = "HOOKLINE_PRODUCER_QUEUE", default_value_t = 100_000)]
    pub producer_queue: usize,

    /// Kilobytes the producer may hold unacknowledged; beyond, requests get 503 at once.
    #[arg(long, env = "HOOKLINE_PRODUCER_QUEUE_KBYTES", default_value_t = 256 * 1024)]
    pub producer_queue_kbytes: usize,

    /// Authenticated webhooks being produced at once; beyond, 503 at once.
    /// Bounds memory: each holds a body of up to --max-body-bytes. Slow or
    /// unauthenticated bodies never take one (see --max-reading-bytes).
    #[arg(long, env = "HOOKLINE_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,

    /// How long a 503 asks the provider to wait (Retry-After, in whole seconds,
    /// rounded up).
    #[arg(long, env = "HOOKLINE_RETRY_AFTER", default_value = "5s", value_parser = parse_duration)]
    pub retry_after: Duration,

    /// How often the signing secrets' files are read again: a rotated Secret
    /// is served without a restart once Kubernetes has updated the mount.
    #[arg(long, env = "HOOKLINE_SECRETS_RELOAD_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub secrets_reload_interval: Duration,

    /// Log format: `json` (one object per line) or `text`. Default: text on
    /// a terminal, JSON anywhere else (a pod, a pipe, a file).
    #[arg(long, env = "HOOKLINE_LOG_FORMAT")]
    pub log_format: Option<hookline_runtime::telemetry::LogFormat>,
}

/// Everything the service needs, loaded and checked.
pub struct Config {
    pub manifest: PipelineManifest,
    /// The default source's keys (`POST /webhooks/{type}`) and the named
    /// sources' (the `{source}` of `POST /webhooks/{source}/{type}`), as the
    /// mounted files hold them now.
    pub signing: Arc<Signing>,
    /// What keeps `signing` following the files; none for a configuration
    /// built without files.
    pub reload: Option<Reload>,
    /// By event type: the `{type}` of `POST /webhooks/{type}`. Shared, so that
    /// a request holds its route without borrowing the service's state.
    pub routes: HashMap<String, Arc<TopicRoute>>,
    pub settings: Settings,
    pub producer: ProducerSettings,
}

/// Where webhooks of one event type go.
pub struct TopicRoute {
    pub event_type: String,
    pub topic: String,
    pub dlq: String,
    pub policy: InvalidPolicy,
    pub inspector: Inspector,
}

/// A named source: its name (`hookline-source`, and part of the event id)
/// and how its webhooks are verified.
#[derive(Debug)]
pub struct Source {
    pub name: Arc<str>,
    pub verifier: Verifier,
}

/// Limits and timeouts of request handling.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Beyond, 413.
    pub max_body_bytes: usize,
    /// Signed timestamps are whole seconds, and so is their tolerance.
    pub tolerance_secs: u32,
    /// Authenticated webhooks being produced; beyond, 503 at once.
    pub max_concurrent_requests: usize,
    /// Bytes of bodies being read and verified; beyond, 503 at once.
    pub max_reading_bytes: usize,
    /// A body must arrive within this; 408 after.
    pub body_timeout: Duration,
    /// Beyond, 408.
    pub request_timeout: Duration,
    /// What a 503 asks the provider to wait.
    pub retry_after: Duration,
}

impl Config {
    /// Reads the manifest and the secrets it names, then checks them with the
    /// command line's settings ([`Config::new`]).
    pub fn load(args: &Args) -> Result<Self> {
        let manifest = PipelineManifest::read(&args.pipeline)?;
        let secrets = SecretsDir::new(&args.secrets_dir);
        let keys = load_keys(&secrets, &manifest.spec.ingest.signing_secret_ref.name)?;
        let sources = load_sources(&secrets, &manifest.spec.sources)?;
        let reload = Reload {
            secrets,
            signing_secret: manifest.spec.ingest.signing_secret_ref.name.clone(),
            sources: manifest.spec.sources.clone(),
            interval: args.secrets_reload_interval,
        };
        let mut config = Self::new(manifest, keys, args)?.with_sources(sources);
        config.reload = Some(reload);
        Ok(config)
    }

    /// Serves `sources` besides the default source.
    pub fn with_sources(self, sources: HashMap<String, Arc<Source>>) -> Self {
        self.signing.replace_sources(sources);
        self
    }

    /// Compiles the schemas of `manifest`'s topics and checks the settings of
    /// `args`; its files are not read.
    pub fn new(manifest: PipelineManifest, keys: Keys, args: &Args) -> Result<Self> {
        let routes = manifest
            .spec
            .topics
            .iter()
            .map(|topic| {
                let inspector = Inspector::for_topic(&manifest.spec, topic)?;
                let route = TopicRoute {
                    event_type: topic.event_type.clone(),
                    topic: topic.name.clone(),
                    dlq: dlq_topic(&topic.name),
                    policy: topic.invalid_policy,
                    inspector,
                };
                Ok((topic.event_type.clone(), Arc::new(route)))
            })
            .collect::<Result<_>>()?;
        // A request must be able to wait for its ack and still answer 503
        // itself, before the request timeout answers 408 for it.
        if args.ack_timeout + ACK_MARGIN > args.request_timeout {
            return Err(Error::InvalidSetting(
                "--ack-timeout plus one second must not exceed --request-timeout",
            ));
        }
        let tolerance_secs = u32::try_from(args.timestamp_tolerance.as_secs()).map_err(|_| {
            Error::InvalidSetting("--timestamp-tolerance must be less than 136 years")
        })?;
        // Reading the body, then waiting for the ack, must both fit in the
        // request, so that each answers for itself (408, 503).
        if args.body_timeout + args.ack_timeout + ACK_MARGIN > args.request_timeout {
            return Err(Error::InvalidSetting(
                "--body-timeout plus --ack-timeout plus one second must not exceed --request-timeout",
            ));
        }
        // A zero interval would read the files in a busy loop.
        if args.secrets_reload_interval.is_zero() {
            return Err(Error::InvalidSetting(
                "--secrets-reload-interval must be more than zero",
            ));
        }
        if args.max_concurrent_requests == 0 {
            return Err(Error::InvalidSetting(
                "--max-concurrent-requests must be at least 1",
            ));
        }
        let max_body_bytes = limits::max_body_bytes(args.max_message_bytes, args.max_body_bytes)?;
        // One body of the largest size must be readable when nothing else is.
        if args.max_reading_bytes < max_body_bytes + MAX_READ_PREFIX_BYTES + READ_SLOT_BYTES {
            return Err(Error::InvalidSetting(
                "--max-reading-bytes must exceed --max-body-bytes by at least 8 KiB",
            ));
        }
        Ok(Self {
            producer: ProducerSettings {
                client: ClientSettings::of(
                    &manifest.spec.kafka,
                    &SecretsDir::new(&args.secrets_dir),
                )?,
                queue_capacity: args.producer_queue,
                queue_kbytes: args.producer_queue_kbytes,
                max_record_bytes: limits::max_record_bytes(args.max_message_bytes),
                ack_timeout: args.ack_timeout,
            },
            manifest,
            signing: Arc::new(Signing::new(keys, HashMap::new())),
            reload: None,
            routes,
            settings: Settings {
                max_body_bytes,
                tolerance_secs,
                max_concurrent_requests: args.max_concurrent_requests,
                max_reading_bytes: args.max_reading_bytes,
                body_timeout: args.body_timeout,
                request_timeout: args.request_timeout,
                retry_after: args.retry_after,
            },
        })
    }

    /// The main and DLQ topics of every route.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self
            .routes
            .values()
            .flat_map(|r| [r.topic.clone(), r.dlq.clone()])
            .collect();
        topics.sort();
        topics
    }
}

/// Reads the signing Secret `name`: its keys `standard-webhooks` and `stripe`,
/// either of which may be absent but not both; a present key must not be empty.
pub fn load_keys(secrets: &SecretsDir, name: &str) -> Result<Keys> {
    let mut keys = Keys::default();
    let mut found = false;
    if secrets.has_key(name, STANDARD_WEBHOOKS_KEY) {
        let text = secrets.read_key(name, STANDARD_WEBHOOKS_KEY)?;
        keys.add_standard_webhooks(&text)
            .map_err(|source| Error::SigningKey {
                path: secrets.path(name, STANDARD_WEBHOOKS_KEY),
                source,
            })?;
        found = true;
    }
    if secrets.has_key(name, STRIPE_KEY) {
        keys.add_stripe(&secrets.read_key(name, STRIPE_KEY)?)
            .map_err(|source| Error::SigningKey {
                path: secrets.path(name, STRIPE_KEY),
                source,
            })?;
        found = true;
    }
    if !found {
        return Err(Error::NoSigningSecrets {
            standard: secrets.path(name, STANDARD_WEBHOOKS_KEY),
            stripe: secrets.path(name, STRIPE_KEY),
        });
    }
    Ok(keys)
}

/// Reads the secrets of each source: the key its `secretRef` names, one
/// secret per line. A missing file, or one without a usable secret, fails
/// startup: a source that could verify nothing would answer 401 to its
/// provider's every webhook.
pub fn load_sources(
    secrets: &SecretsDir,
    sources: &[SourceSpec],
) -> Result<HashMap<String, Arc<Source>>> {
    sources
        .iter()
        .map(|spec| Ok((spec.name.clone(), Arc::new(load_source(secrets, spec)?))))
        .collect()
}

/// Reads the secrets of the source `spec`: the key its `secretRef` names.
pub fn load_source(secrets: &SecretsDir, spec: &SourceSpec) -> Result<Source> {
    let reference = &spec.secret_ref;
    let text = secrets.read_key(&reference.name, &reference.key)?;
    let verifier = Verifier::new(spec, &text).map_err(|source| Error::SourceKey {
        name: spec.name.clone(),
        path: secrets.path(&reference.name, &reference.key),
        source,
    })?;
    Ok(Source {
        name: Arc::from(spec.name.as_str()),
        verifier,
    })
}

/// The Standard Webhooks secret of [`test`]'s endpoint (a published vector's).
#[cfg(test)]
pub(crate) const TEST_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A service configuration for unit tests: the topics `orders.webhooks` and
/// `disputes.webhooks` under `policy`, the Standard Webhooks secret of the
/// published vectors, a broker that is never reached.
#[cfg(test)]
pub(crate) fn test(policy: InvalidPolicy) -> Config {
    use clap::Parser;

    let policy = match policy {
        InvalidPolicy::Quarantine => "quarantine",
        InvalidPolicy::Reject => "reject",
    };
    let manifest = PipelineManifest::from_yaml(&format!(
        r#"
apiVersion: hookline.dev/v1alpha1
kind: WebhookPipeline
metadata: {{name: test}}
spec:
  kafka: {{bootstrapServers: "127.0.0.1:9"}}
  topics:
    - {{name: orders.webhooks, eventType: orders, partitions: 2, invalidPolicy: {policy}}}
    - {{name: disputes.webhooks, eventType: disputes, partitions: 2, invalidPolicy: {policy}}}
  shards: [{{name: a, databaseUrlSecretRef: {{name: pg-a, key: url}}}}]
  ingest: {{signingSecretRef: {{name: provider}}}}
"#
    ))
    .unwrap();
    let mut keys = Keys::default();
    keys.add_standard_webhooks(TEST_SECRET).unwrap();
    let args = Args::parse_from(["hookline-ingest", "--pipeline", "-", "--secrets-dir", "-"]);
    Config::new(manifest, keys, &args).unwrap()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::auth::DEFAULT_TOLERANCE_SECS;

    fn parse(flags: &[&str]) -> Args {
        let required = [
            "hookline-ingest",
            "--pipeline",
            "p.yaml",
            "--secrets-dir",
            "s",
        ];
        Args::try_parse_from(required.iter().chain(flags)).unwrap()
    }

    #[test]
    fn durations_default_to_the_documented_values() {
        let args = parse(&[]);
        assert_eq!(args.ack_timeout, Duration::from_secs(5));
        assert_eq!(args.request_timeout, Duration::from_secs(15));
        assert_eq!(args.retry_after, Duration::from_secs(5));
        assert_eq!(args.body_timeout, Duration::from_secs(5));
        assert_eq!(
            args.timestamp_tolerance,
            Duration::from_secs(DEFAULT_TOLERANCE_SECS.into())
        );
    }

    #[test]
    fn durations_are_written_with_their_unit() {
        let args = parse(&[
            "--ack-timeout",
            "250ms",
            "--request-timeout",
            "1m",
            "--timestamp-tolerance",
            "90s",
            "--retry-after",
            "2s",
            "--body-timeout",
            "1500ms",
        ]);
        assert_eq!(args.body_timeout, Duration::from_millis(1500));
        assert_eq!(args.ack_timeout, Duration::from_millis(250));
        assert_eq!(args.request_timeout, Duration::from_secs(60));
        assert_eq!(args.timestamp_tolerance, Duration::from_secs(90));
        assert_eq!(args.retry_after, Duration::from_secs(2));
    }

    #[test]
    fn a_bare_number_is_refused_rather_than_guessed() {
        let required = ["hookline-ingest", "--pipeline", "p", "--secrets-dir", "s"];
        let bare = required.iter().chain(&["--ack-timeout", "5000"]);
        assert!(Args::try_parse_from(bare).is_err());
    }
}

#[cfg(test)]
mod settings_tests {
    use hookline_contract::pipeline::InvalidPolicy;

    use super::*;

    #[test]
    fn the_default_body_limit_is_derived_from_the_broker_limit() {
        let config = test(InvalidPolicy::Quarantine);
        assert_eq!(
            config.settings.max_body_bytes,
            limits::KAFKA_DEFAULT_MESSAGE_MAX_BYTES - limits::HEADROOM_BYTES
        );
        assert_eq!(
            config.producer.max_record_bytes,
            limits::KAFKA_DEFAULT_MESSAGE_MAX_BYTES - limits::DEAD_LETTER_HEADROOM_BYTES
        );
    }
}

#[cfg(test)]
mod reload_tests {
    use std::time::Duration;

    use clap::Parser;

    use super::Args;

    #[test]
    fn the_secrets_reload_interval_defaults_to_five_seconds_and_takes_a_unit() {
        let required = ["hookline-ingest", "--pipeline", "p", "--secrets-dir", "s"];
        let args = Args::try_parse_from(required).unwrap();
        assert_eq!(args.secrets_reload_interval, Duration::from_secs(5));
        let flag = required
            .iter()
            .chain(&["--secrets-reload-interval", "750ms"]);
        let args = Args::try_parse_from(flag).unwrap();
        assert_eq!(args.secrets_reload_interval, Duration::from_millis(750));
    }
}
