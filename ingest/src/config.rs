//! Configuration: the command line, the pipeline manifest and the mounted
//! secrets, loaded and checked once at startup so that a bad setting fails
//! before the first request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hookline_contract::headers::dlq_topic;
use hookline_contract::pipeline::{InvalidPolicy, PipelineManifest};
use hookline_contract::secrets::SecretsDir;

use crate::auth::{DEFAULT_TOLERANCE_SECS, Keys};
use crate::produce::ProducerSettings;
use crate::{Error, Result};
use hookline_contract::payload::Inspector;

/// Key of the signing Secret holding Standard Webhooks secrets and public keys.
pub const STANDARD_WEBHOOKS_KEY: &str = "standard-webhooks";
/// Key of the signing Secret holding Stripe endpoint secrets.
pub const STRIPE_KEY: &str = "stripe";
/// Time a request keeps, past its ack timeout, to answer before the request
/// timeout does.
const ACK_MARGIN: Duration = Duration::from_secs(1);

/// `hookline-ingest`'s command line; every flag has an environment fallback.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "hookline-ingest", version, about)]
pub struct Args {
    /// The WebhookPipeline manifest (YAML): topics, event types, pointers, broker.
    #[arg(long, env = "HOOKLINE_PIPELINE")]
    pub pipeline: PathBuf,

    /// Where Secrets are mounted: the key K of Secret S is the file DIR/S/K.
    #[arg(long, env = "HOOKLINE_SECRETS_DIR")]
    pub secrets_dir: PathBuf,

    /// Address to serve webhooks, health and metrics on.
    #[arg(long, env = "HOOKLINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Largest accepted body in bytes; a larger one is answered 413 unread.
    #[arg(long, env = "HOOKLINE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest accepted distance between a signature's timestamp and now, both ways.
    #[arg(long, env = "HOOKLINE_TIMESTAMP_TOLERANCE_SECS", default_value_t = DEFAULT_TOLERANCE_SECS)]
    pub timestamp_tolerance_secs: u32,

    /// How long a request waits for the broker's ack before it is answered 503.
    #[arg(long, env = "HOOKLINE_ACK_TIMEOUT_MS", default_value_t = 5_000)]
    pub ack_timeout_ms: u64,

    /// Longest a whole request may take, reading the body included (408 after).
    #[arg(long, env = "HOOKLINE_REQUEST_TIMEOUT_MS", default_value_t = 15_000)]
    pub request_timeout_ms: u64,

    /// Records the producer may hold unacknowledged; beyond, requests get 503 at once.
    #[arg(long, env = "HOOKLINE_PRODUCER_QUEUE", default_value_t = 100_000)]
    pub producer_queue: usize,

    /// Kilobytes the producer may hold unacknowledged; beyond, requests get 503 at once.
    #[arg(long, env = "HOOKLINE_PRODUCER_QUEUE_KBYTES", default_value_t = 256 * 1024)]
    pub producer_queue_kbytes: usize,

    /// Webhook requests handled at once; beyond, 503 at once. Bounds memory:
    /// each may hold a body of up to --max-body-bytes.
    #[arg(long, env = "HOOKLINE_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,

    /// Seconds a 503 asks the provider to wait (Retry-After).
    #[arg(long, env = "HOOKLINE_RETRY_AFTER_SECS", default_value_t = 5)]
    pub retry_after_secs: u64,
}

/// Everything the service needs, loaded and checked.
pub struct Config {
    pub manifest: PipelineManifest,
    pub keys: Keys,
    /// By event type.
    pub routes: HashMap<String, TopicRoute>,
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

/// Limits and timeouts of request handling.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_body_bytes: usize,
    pub tolerance_secs: u32,
    pub max_concurrent_requests: usize,
    pub request_timeout: Duration,
    pub retry_after_secs: u64,
}

impl Config {
    /// Reads the manifest and the secrets it names, and compiles the schemas.
    pub fn load(args: &Args) -> Result<Self> {
        let manifest = PipelineManifest::read(&args.pipeline)?;
        let keys = load_keys(
            &SecretsDir::new(&args.secrets_dir),
            &manifest.spec.ingest.signing_secret_ref.name,
        )?;
        let routes = manifest
            .spec
            .topics
            .iter()
            .map(|topic| {
                let inspector = Inspector::builtin(&topic.event_type, topic.pointers.clone())?;
                let route = TopicRoute {
                    event_type: topic.event_type.clone(),
                    topic: topic.name.clone(),
                    dlq: dlq_topic(&topic.name),
                    policy: topic.invalid_policy,
                    inspector,
                };
                Ok((topic.event_type.clone(), route))
            })
            .collect::<Result<_>>()?;
        let ack_timeout = Duration::from_millis(args.ack_timeout_ms);
        let request_timeout = Duration::from_millis(args.request_timeout_ms);
        // A request must be able to wait for its ack and still answer 503
        // itself, before the request timeout answers 408 for it.
        if ack_timeout + ACK_MARGIN > request_timeout {
            return Err(Error::InvalidSetting(
                "--ack-timeout-ms plus one second must not exceed --request-timeout-ms",
            ));
        }
        if args.max_concurrent_requests == 0 {
            return Err(Error::InvalidSetting(
                "--max-concurrent-requests must be at least 1",
            ));
        }
        Ok(Self {
            producer: ProducerSettings {
                bootstrap_servers: manifest.spec.kafka.bootstrap_servers.clone(),
                queue_capacity: args.producer_queue,
                queue_kbytes: args.producer_queue_kbytes,
                max_value_bytes: args.max_body_bytes,
                ack_timeout,
            },
            manifest,
            keys,
            routes,
            settings: Settings {
                max_body_bytes: args.max_body_bytes,
                tolerance_secs: args.timestamp_tolerance_secs,
                max_concurrent_requests: args.max_concurrent_requests,
                request_timeout,
                retry_after_secs: args.retry_after_secs,
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
