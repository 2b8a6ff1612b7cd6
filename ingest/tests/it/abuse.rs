//! Ingest under abuse: slow unauthenticated bodies beside signed traffic.
//!
//! An attacker needs no secret to open connections, send plausible headers
//! (a fresh timestamp, a forged signature) and then trickle the body a byte a
//! second. Those requests must cost the attacker a read slot and a deadline,
//! never the admission of the provider's authentic webhooks.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::harness::{Ingest, bytes, order};

/// Slow clients held open beside the signed traffic.
const TRICKLERS: usize = 300;
/// Signed webhooks sent while they trickle.
const SIGNED: usize = 40;
/// What every signed webhook must be answered within.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Connects, sends the head of a forged Standard Webhooks request that
/// declares a 1 KiB body, then one byte a second until the server answers or
/// closes; then does it again, as an attacker would, until `stop`.
async fn trickle(addr: String, started: tokio::sync::mpsc::Sender<()>, stop: CancellationToken) {
    let mut first = Some(started);
    while !stop.is_cancelled() {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            continue;
        };
        let now = chrono::Utc::now().timestamp();
        let head = format!(
            "POST /webhooks/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1024\r\n\
             webhook-id: msg_forged\r\nwebhook-timestamp: {now}\r\n\
             webhook-signature: v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=\r\n\r\n{{"
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        if let Some(started) = first.take() {
            let _ = started.send(()).await;
        }
        // The pace of the attack, not a synchronisation: one byte a second
        // until the server gives up on the body.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut answer = [0u8; 512];
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                read = stream.read(&mut answer) => {
                    // An answer (408, 503) or a close: the server let go.
                    let _ = read;
                    break;
                }
                _ = tick.tick() => {
                    if stream.write_all(b" ").await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_are_answered_at_once_while_300_clients_trickle_bodies() {
    let ingest = Ingest::start().await;
    let addr = ingest.url.trim_start_matches("http://").to_owned();
    let stop = CancellationToken::new();
    let (started, mut connected) = tokio::sync::mpsc::channel(TRICKLERS);
    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|_| tokio::spawn(trickle(addr.clone(), started.clone(), stop.clone())))
        .collect();
    drop(started);
    let deadline = Instant::now() + crate::broker::DEADLINE;
    for n in 0..TRICKLERS {
        tokio::time::timeout_at(deadline, connected.recv())
            .await
            .unwrap_or_else(|_| panic!("only {n} of {TRICKLERS} slow clients connected"));
    }
    ingest.wait_reading(TRICKLERS).await;
    let held = ingest
        .metrics()
        .await
        .lines()
        .find(|line| line.starts_with("hookline_ingest_reading_bytes "))
        .map(str::to_owned);
    eprintln!("read budget held by {TRICKLERS} slow clients: {held:?}");

    let mut latencies = Vec::with_capacity(SIGNED);
    let mut failures = Vec::new();
    for i in 0..SIGNED {
        let body = bytes(&order(&format!("evt_abuse_{i}"), &format!("u{i}")));
        let sent = Instant::now();
        let answer = ingest.post("orders", &body).await;
        let took = sent.elapsed();
        latencies.push(took);
        if answer.status != 202 || took > ANSWER_WITHIN {
            failures.push(format!(
                "#{i}: {} in {took:?}: {}",
                answer.status, answer.body
            ));
        }
        // Spread the signed traffic over more than one body timeout, so that
        // it meets the slow clients being cut off and coming back.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.cancel();
    for trickler in tricklers {
        trickler.await.unwrap();
    }

    latencies.sort();
    eprintln!(
        "signed beside {TRICKLERS} slow clients: p50 {:?}, max {:?}",
        latencies[SIGNED / 2],
        latencies[SIGNED - 1]
    );
    assert!(
        failures.is_empty(),
        "{} of {SIGNED} signed webhooks not answered 202 within {ANSWER_WITHIN:?}: {failures:#?}",
        failures.len()
    );
    ingest.stop().await;
}
