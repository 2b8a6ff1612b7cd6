//! The synchronous baseline: what hookline replaces. One HTTP handler
//! authenticates the webhook, validates it and writes it to its user's shard
//! inside the request, answering only once the row is committed. It runs the
//! same signature check, schema, decoding and store code as the pipeline, so
//! the two differ only in where the write happens. It runs as a process of
//! its own (the benchmark's binary again, `hookline-bench baseline`), like
//! ingest and the workers, so that its CPU time is its own and not the load
//! generator's.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use hookline_contract::pipeline::Pointers;
use hookline_contract::{event_id, payload::Inspector, shard_for};
use hookline_ingest::auth::Keys;
use hookline_kafka::Envelope;
use hookline_worker::decode::{RecordView, decode};
use hookline_worker::store::{ErrorClass, OrderEvent, Pools};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::load::SECRET;

/// Connections per shard: as many as the handler could use at once.
const CONNECTIONS: u32 = 16;
/// The signature timestamp tolerance ingest uses by default.
const TOLERANCE_SECS: u32 = 300;
/// How long the baseline's process may take to answer, and to stop.
const DEADLINE: Duration = Duration::from_secs(30);

/// Arguments of the baseline's process.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to serve `POST /webhooks/orders` and `GET /readyz`.
    #[arg(long)]
    listen: SocketAddr,
    /// Shard connection strings, in shard order.
    #[arg(long = "shard", required = true)]
    shards: Vec<String>,
}

struct Baseline {
    keys: Keys,
    inspector: Inspector,
    shards: Pools,
}

/// The baseline's process: serves until SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut keys = Keys::default();
    keys.add_standard_webhooks(SECRET)?;
    let shards: Vec<(String, String)> = args
        .shards
        .iter()
        .enumerate()
        .map(|(i, url)| (i.to_string(), url.clone()))
        .collect();
    let baseline = Arc::new(Baseline {
        keys,
        inspector: Inspector::builtin("orders", Pointers::default())?,
        shards: Pools::connect_lazy(&shards, &vec![CONNECTIONS; shards.len()])?,
    });
    let app = Router::new()
        .route("/webhooks/orders", post(receive))
        .route("/readyz", axum::routing::get(|| async { StatusCode::OK }))
        .with_state(baseline);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(hookline_runtime::shutdown::on_signal(shutdown.clone()));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// A running baseline process.
pub struct Server {
    pub url: String,
    child: Child,
}

impl Server {
    /// Starts the baseline on `port`, writing to `shards` (URLs in shard
    /// order); returns once it answers.
    pub async fn start(shards: &[String], port: u16) -> anyhow::Result<Self> {
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["baseline", "--listen", &listen]);
        for url in shards {
            command.args(["--shard", url]);
        }
        let child = command
            // Its own start and stop are the benchmark's business, not news.
            .env("RUST_LOG", "warn,sqlx=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let server = Self {
            url: format!("http://{listen}/webhooks/orders"),
            child,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = client.get(format!("http://{listen}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if started.elapsed() > DEADLINE {
                anyhow::bail!("the baseline did not answer on {listen} within {DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGTERM, and waits for it to stop.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()?;
        }
        let status = tokio::time::timeout(DEADLINE, self.child.wait()).await??;
        anyhow::ensure!(status.success(), "the baseline exited with {status}");
        Ok(())
    }
}

/// 200 once the row is committed (or was already there); 401, 400 for what
/// no retry can fix; 503 when the shard could not take it.
async fn receive(
    State(baseline): State<Arc<Baseline>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let received_at = Utc::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Ok(scheme) = baseline
        .keys
        .verify(header, &body, received_at.timestamp(), TOLERANCE_SECS)
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(inspected) = baseline.inspector.inspect(&body, received_at) else {
        return StatusCode::BAD_REQUEST;
    };
    let envelope = Ok(Envelope {
        event_id: event_id(scheme.source(), &inspected.provider_event_id),
        event_type: inspected.event_type.clone(),
        source: scheme.source().to_owned(),
        received_at,
        partition_count: 1,
        schema: baseline.inspector.schema_id().to_owned(),
        message_id: None,
    });
    let record = RecordView {
        partition: 0,
        key: Some(inspected.user_id.as_bytes()),
        value: Some(&body),
        envelope: &envelope,
    };
    let Ok(fields) = decode(&baseline.inspector, record) else {
        return StatusCode::BAD_REQUEST;
    };
    let event = OrderEvent::from(fields);
    let shard = shard_for(&inspected.user_id, baseline.shards.count()).unwrap_or(0) as usize;
    // The body is JSON (decoding parsed it), so UTF-8.
    let payload = [std::str::from_utf8(&body).unwrap_or_default()];
    match baseline.shards.write(shard, &[event], &payload).await {
        Ok(_) => StatusCode::OK,
        Err(error) => match error.class() {
            ErrorClass::Permanent(_) => StatusCode::BAD_REQUEST,
            ErrorClass::Transient => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}
