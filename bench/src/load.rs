//! Load generators: signed webhooks posted by a fixed number of clients as fast
//! as answers come (closed loop), or at a fixed rate whatever the answers
//! (open loop, as providers send).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookline_ingest::auth::{header, sign};
use tokio::sync::Semaphore;

/// The Standard Webhooks secret every benchmark signs with.
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The answer to one request: its status (0 when none came) and how long it
/// took.
pub type Answer = (u16, Duration);

/// The `i`-th order webhook of `phase`: provider event id `evt_<phase>_<i>`,
/// one of a thousand users.
pub fn body(phase: &str, i: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": format!("evt_{phase}_{i}"), "type": "order.paid", "created": 1_700_000_000 + i as i64,
        "data": {"user_id": format!("user-{}", i % 1_000), "order_id": format!("ord_{phase}_{i}"),
                 "amount": 1250, "currency": "eur", "status": "paid"}
    }))
    .unwrap_or_default()
}

/// How many `answers` were 2xx.
pub fn succeeded(answers: &[Answer]) -> usize {
    accepted_latencies(answers).count()
}

/// How long each 2xx answer took.
pub fn accepted_latencies(answers: &[Answer]) -> impl Iterator<Item = Duration> + '_ {
    answers
        .iter()
        .filter(|(s, _)| (200..300).contains(s))
        .map(|(_, latency)| *latency)
}

/// Posts one signed body.
pub async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>, n: usize) -> Answer {
    let started = Instant::now();
    let now = chrono::Utc::now().timestamp();
    let id = format!("msg_{n}");
    let signature = sign::standard_v1(SECRET, &id, now, &body).unwrap_or_default();
    let status = client
        .post(url)
        .header(header::WEBHOOK_ID, id)
        .header(header::WEBHOOK_TIMESTAMP, now.to_string())
        .header(header::WEBHOOK_SIGNATURE, signature)
        .body(body)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, started.elapsed())
}

/// `clients` clients post `bodies` between them, each waiting for its answer
/// before the next request.
pub async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    bodies: Vec<Vec<u8>>,
    clients: usize,
) -> Vec<Answer> {
    let next = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(bodies);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, url, next, bodies) =
            (client.clone(), url.to_owned(), next.clone(), bodies.clone());
        tasks.spawn(async move {
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                seen.push(post(&client, &url, body.clone(), i).await);
            }
            seen
        });
    }
    tasks.join_all().await.into_iter().flatten().collect()
}

/// Posts `total` bodies made by `body`, `rate` per second, with at most
/// `in_flight` requests open. A request's latency counts from its scheduled
/// start, so one that had to wait for a free slot is counted as slow.
pub async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    rate: u32,
    total: usize,
    in_flight: usize,
    body: impl Fn(usize) -> Vec<u8>,
) -> Vec<Answer> {
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let limit = Arc::new(Semaphore::new(in_flight));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        let scheduled = tick.tick().await.into_std();
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let (client, url, body) = (client.clone(), url.to_owned(), body(n));
        tasks.spawn(async move {
            let (status, _) = post(&client, &url, body, n).await;
            drop(permit);
            (status, scheduled.elapsed())
        });
    }
    tasks.join_all().await
}
