//! An ingest service per test: its own topics, manifest and secrets, served on
//! 127.0.0.1 with a free port; and signed requests to it.

use std::path::PathBuf;
use std::time::Duration;

use hookline_contract::pipeline::InvalidPolicy;
use hookline_ingest::auth::{header, sign};
use hookline_ingest::config::{Args, Config};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::broker::{DEADLINE, create_topics, stack_bootstrap, unique};

/// The Standard Webhooks secret of every test endpoint (a published vector's).
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// The Stripe endpoint secret of every test endpoint.
pub const STRIPE_SECRET: &str = "whsec_stripe_test_endpoint_secret";
pub const PARTITIONS: i32 = 4;

/// How a test's service is set up.
pub struct Options {
    pub bootstrap: String,
    pub policy: InvalidPolicy,
    pub max_body_bytes: Option<usize>,
    pub ack_timeout: Duration,
    pub body_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_reading_bytes: usize,
    /// When false, the topics do not exist and the service is not waited for.
    pub create_topics: bool,
    /// Named sources besides the default one.
    pub sources: Vec<TestSource>,
    /// A topic `<orders>.issues` of the declared type `issues` (GitHub's
    /// issue events: no event id in the payload, an RFC 3339 event time).
    pub issues: bool,
}

/// The declared type of [`Options::issues`].
pub const ISSUES_TYPE: &str = "  eventTypes:
    - name: issues
      schema: {type: object, required: [action, issue, repository]}
      fields: {eventType: /action, eventTime: /issue/updated_at, userId: /repository/id, entityId: /issue/id, status: /issue/state}
      lifecycle: [opened, edited, closed]
";

/// A named source of a test's pipeline: its secrets are the key `secret` of
/// the Secret `<name>-secrets`, one per line.
pub struct TestSource {
    pub name: &'static str,
    pub scheme: &'static str,
    pub secrets: Vec<String>,
}

impl TestSource {
    /// The secret file the service reads, under `secrets_dir`.
    pub fn file(secrets_dir: &std::path::Path, name: &str) -> PathBuf {
        secrets_dir.join(format!("{name}-secrets")).join("secret")
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bootstrap: stack_bootstrap(),
            policy: InvalidPolicy::Quarantine,
            max_body_bytes: None,
            ack_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            max_concurrent_requests: 64,
            max_reading_bytes: 64 * 1024 * 1024,
            create_topics: true,
            sources: Vec::new(),
            issues: false,
        }
    }
}

/// A running ingest service with its own topics.
pub struct Ingest {
    pub url: String,
    /// The metrics listener's base URL.
    pub metrics_url: String,
    pub bootstrap: String,
    pub orders: String,
    pub disputes: String,
    /// Where the service reads its Secrets: key K of Secret S is `S/K`.
    pub secrets_dir: PathBuf,
    http: reqwest::Client,
    shutdown: CancellationToken,
    served: Option<tokio::task::JoinHandle<hookline_ingest::Result<()>>>,
    args: Args,
    create_topics: bool,
    _dir: tempfile::TempDir,
}

impl Ingest {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let orders = unique("orders");
        let disputes = unique("disputes");
        let issues = format!("{orders}.issues");
        if options.create_topics && options.issues {
            create_topics(
                &options.bootstrap,
                &[(&issues, 2), (&format!("{issues}.DLQ"), 1)],
            )
            .await;
        }
        if options.create_topics {
            create_topics(
                &options.bootstrap,
                &[
                    (&orders, PARTITIONS),
                    (&format!("{orders}.DLQ"), 1),
                    (&disputes, 2),
                    (&format!("{disputes}.DLQ"), 1),
                ],
            )
            .await;
        }

        let dir = tempfile::tempdir().unwrap();
        let policy = match options.policy {
            InvalidPolicy::Quarantine => "quarantine",
            InvalidPolicy::Reject => "reject",
        };
        let manifest = format!(
            r#"
apiVersion: hookline.dev/v1alpha1
kind: WebhookPipeline
metadata: {{name: test}}
spec:
  kafka: {{bootstrapServers: "{bootstrap}"}}
  topics:
    - {{name: {orders}, eventType: orders, partitions: {PARTITIONS}, invalidPolicy: {policy}}}
    - {{name: {disputes}, eventType: disputes, partitions: 2, invalidPolicy: {policy}}}
{issues_topic}  shards:
    - {{name: a, databaseUrlSecretRef: {{name: pg-a, key: url}}}}
    - {{name: b, databaseUrlSecretRef: {{name: pg-b, key: url}}}}
  ingest: {{signingSecretRef: {{name: provider}}}}
"#,
            bootstrap = options.bootstrap,
            issues_topic = if options.issues {
                format!("    - {{name: {issues}, eventType: issues, partitions: 2}}\n")
            } else {
                String::new()
            },
        );
        let mut manifest = manifest;
        if options.issues {
            manifest.push_str(ISSUES_TYPE);
        }
        if !options.sources.is_empty() {
            manifest.push_str("  sources:\n");
        }
        for source in &options.sources {
            manifest.push_str(&format!(
                "    - {{name: {name}, scheme: {scheme}, secretRef: {{name: {name}-secrets, key: secret}}}}\n",
                name = source.name,
                scheme = source.scheme
            ));
        }
        let pipeline = dir.path().join("pipeline.yaml");
        std::fs::write(&pipeline, manifest).unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir_all(secrets.join("provider")).unwrap();
        std::fs::write(
            secrets.join("provider/standard-webhooks"),
            format!("{SECRET}\n"),
        )
        .unwrap();
        std::fs::write(
            secrets.join("provider/stripe"),
            format!("{STRIPE_SECRET}\n"),
        )
        .unwrap();
        for source in &options.sources {
            let file = TestSource::file(&secrets, source.name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, source.secrets.join("\n") + "\n").unwrap();
        }

        let args = Args {
            pipeline,
            secrets_dir: secrets.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: "127.0.0.1:0".parse().unwrap(),
            max_message_bytes: hookline_ingest::limits::KAFKA_DEFAULT_MESSAGE_MAX_BYTES,
            max_body_bytes: options.max_body_bytes,
            body_timeout: options.body_timeout,
            max_reading_bytes: options.max_reading_bytes,
            timestamp_tolerance: Duration::from_secs(300),
            ack_timeout: options.ack_timeout,
            request_timeout: Duration::from_secs(15),
            producer_queue: 10_000,
            producer_queue_kbytes: 64 * 1024,
            max_concurrent_requests: options.max_concurrent_requests,
            retry_after: Duration::from_secs(7),
            secrets_reload_interval: Duration::from_millis(100),
            log_format: None,
        };
        Self::serve(
            args,
            options.bootstrap,
            orders,
            disputes,
            secrets,
            options.create_topics,
            dir,
        )
        .await
    }

    /// Serves the service of `args`, reading its manifest and secrets now.
    async fn serve(
        args: Args,
        bootstrap: String,
        orders: String,
        disputes: String,
        secrets_dir: PathBuf,
        create_topics: bool,
        dir: tempfile::TempDir,
    ) -> Self {
        let app = hookline_ingest::App::new(Config::load(&args).unwrap()).unwrap();
        let listener = hookline_ingest::bind(args.listen).await.unwrap();
        let metrics_listener = hookline_ingest::bind(args.metrics_listen).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let metrics_url = format!("http://{}", metrics_listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(hookline_ingest::serve_metrics(
            app.clone(),
            metrics_listener,
            shutdown.clone(),
        ));
        let served = tokio::spawn(hookline_ingest::serve(
            app.clone(),
            listener,
            shutdown.clone(),
        ));
        let ingest = Self {
            url,
            metrics_url,
            bootstrap,
            orders,
            disputes,
            secrets_dir,
            http: reqwest::Client::new(),
            shutdown,
            served: Some(served),
            args,
            create_topics,
            _dir: dir,
        };
        if create_topics {
            ingest.wait_ready().await;
        }
        ingest
    }

    /// Stops the service and starts it again on the same topics, manifest
    /// and secret files, which it reads anew (on a new port).
    pub async fn restart(mut self) -> Self {
        self.shutdown.cancel();
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
        Self::serve(
            self.args,
            self.bootstrap,
            self.orders,
            self.disputes,
            self.secrets_dir,
            self.create_topics,
            self._dir,
        )
        .await
    }

    /// Waits until `/readyz` says ready: the broker answers and the topics'
    /// partition counts are known.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let response = self.http.get(format!("{}/readyz", self.url)).send().await;
            if response.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ingest not ready within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The metrics exposition, from the metrics listener.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.metrics_url);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Bodies being read now, from the metrics.
    async fn reading(&self) -> usize {
        self.metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix("hookline_ingest_reading_bodies "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0)
    }

    /// Waits until at least `bodies` request bodies are being read at once:
    /// every slow client is inside the service.
    pub async fn wait_reading(&self, bodies: usize) {
        self.wait_reading_until(|reading| reading >= bodies, &format!("at least {bodies}"))
            .await;
    }

    /// Waits until at most `bodies` request bodies are being read.
    pub async fn wait_reading_at_most(&self, bodies: usize) {
        self.wait_reading_until(|reading| reading <= bodies, &format!("at most {bodies}"))
            .await;
    }

    async fn wait_reading_until(&self, done: impl Fn(usize) -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let reading = self.reading().await;
            if done(reading) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{reading} bodies being read after {DEADLINE:?}, not {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops accepting, finishes in-flight requests, flushes the producer.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(served) = self.served.take() {
            served.await.unwrap().unwrap();
        }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs `body` to `/webhooks/{event_type}` signed with Standard Webhooks.
    pub async fn post(&self, event_type: &str, body: &[u8]) -> Answer {
        let now = chrono::Utc::now().timestamp();
        self.post_signed_at(event_type, body, now).await
    }

    /// POSTs `body` signed with Standard Webhooks at Unix time `at`.
    pub async fn post_signed_at(&self, event_type: &str, body: &[u8], at: i64) -> Answer {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let signature = sign::standard_v1(SECRET, &id, at, body).unwrap();
        let request = self
            .http
            .post(format!("{}/webhooks/{event_type}", self.url))
            .header(header::WEBHOOK_ID, id)
            .header(header::WEBHOOK_TIMESTAMP, at.to_string())
            .header(header::WEBHOOK_SIGNATURE, signature)
            .body(body.to_vec());
        Answer::of(request).await
    }

    /// POSTs `body` to `path` with `headers`, as given.
    pub async fn post_with(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        Answer::of(request.body(body.to_vec())).await
    }

    /// POSTs `body` signed with Stripe's scheme.
    pub async fn post_stripe(&self, event_type: &str, body: &[u8]) -> Answer {
        let now = chrono::Utc::now().timestamp();
        let signature = sign::stripe(STRIPE_SECRET, now, body).unwrap();
        let request = self
            .http
            .post(format!("{}/webhooks/{event_type}", self.url))
            .header(header::STRIPE_SIGNATURE, signature)
            .body(body.to_vec());
        Answer::of(request).await
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    pub async fn of(request: reqwest::RequestBuilder) -> Self {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Self {
            status,
            retry_after,
            body,
        }
    }

    pub fn event_id(&self) -> String {
        self.body["event_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no event_id in {:?}", self.body))
            .to_owned()
    }
}

/// A valid order payload.
pub fn order(event_id: &str, user_id: &str) -> Value {
    json!({
        "id": event_id,
        "type": "order.paid",
        "created": 1_700_000_000,
        "data": {
            "user_id": user_id, "order_id": format!("ord_{event_id}"),
            "amount": 1250, "currency": "eur", "status": "paid"
        }
    })
}

pub fn bytes(payload: &Value) -> Vec<u8> {
    serde_json::to_vec(payload).unwrap()
}
