//! The synchronous baseline: what hookline replaces. One HTTP handler
//! authenticates the webhook, validates it and writes it to its user's shard
//! inside the request, answering only once the row is committed. It runs the
//! same signature check, schema, decoding and store code as the pipeline, so
//! the two differ only in where the write happens.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use hookline_contract::event_types::ORDERS;
use hookline_contract::pipeline::Pointers;
use hookline_contract::{event_id, payload::Inspector, shard_for};
use hookline_ingest::auth::Keys;
use hookline_kafka::Envelope;
use hookline_worker::decode::{RecordView, decode};
use hookline_worker::store::{ErrorClass, OrderEvent, Pools};
use tokio_util::sync::CancellationToken;

use crate::load::SECRET;

/// Connections per shard: as many as the handler could use at once.
const CONNECTIONS: u32 = 16;
/// The signature timestamp tolerance ingest uses by default.
const TOLERANCE_SECS: u32 = 300;

struct Baseline {
    keys: Keys,
    inspector: Inspector,
    shards: Pools,
}

/// A running baseline server.
pub struct Server {
    pub url: String,
    shutdown: CancellationToken,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves `POST /webhooks/orders` on a free port, writing to `shards`
    /// (name, URL) in order.
    pub async fn start(shards: &[(String, String)]) -> anyhow::Result<Self> {
        let mut keys = Keys::default();
        keys.add_standard_webhooks(SECRET)?;
        let baseline = Arc::new(Baseline {
            keys,
            inspector: Inspector::builtin("orders", Pointers::default())?,
            shards: Pools::connect_lazy(shards, CONNECTIONS)?,
        });
        let app = Router::new()
            .route("/webhooks/orders", post(receive))
            .with_state(baseline);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/webhooks/orders", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let stopping = shutdown.clone();
        let served = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopping.cancelled_owned())
                .await
        });
        Ok(Self {
            url,
            shutdown,
            served,
        })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.served.await??;
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
    let Ok(inspected) = baseline.inspector.inspect(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let envelope = Ok(Envelope {
        event_id: event_id(scheme.source(), &inspected.provider_event_id),
        event_type: inspected.event_type.clone(),
        source: scheme.source().to_owned(),
        received_at,
        partition_count: 1,
        schema: baseline.inspector.schema_id().to_owned(),
    });
    let record = RecordView {
        partition: 0,
        key: Some(inspected.user_id.as_bytes()),
        value: Some(&body),
        envelope: &envelope,
    };
    let Ok(fields) = decode(&ORDERS, &baseline.inspector, record) else {
        return StatusCode::BAD_REQUEST;
    };
    let event = OrderEvent::from(fields);
    let shard = shard_for(&inspected.user_id, baseline.shards.count()).unwrap_or(0) as usize;
    match baseline.shards.write(shard, &[event]).await {
        Ok(_) => StatusCode::OK,
        Err(error) => match error.class() {
            ErrorClass::Permanent(_) => StatusCode::BAD_REQUEST,
            ErrorClass::Transient => StatusCode::SERVICE_UNAVAILABLE,
        },
    }
}
