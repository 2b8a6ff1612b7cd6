//! Prometheus metrics of the ingest service. Labels are bounded: event types
//! come from the configuration (anything else is `unknown`), statuses and
//! reasons from fixed sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    event_type: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProduceLabels {
    topic: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DlqLabels {
    event_type: String,
    reason: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The service's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    produce_seconds: HistogramFamily<ProduceLabels>,
    dead_lettered: Family<DlqLabels, Counter>,
    reading_bodies: Gauge,
    reading_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookline_ingest");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Webhook requests by event type and HTTP status",
            requests.clone(),
        );
        let produce_seconds: HistogramFamily<ProduceLabels> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        registry.register(
            "produce_seconds",
            "Time from produce to the broker's ack (or the ack timeout), by topic and outcome",
            produce_seconds.clone(),
        );
        let dead_lettered = Family::<DlqLabels, Counter>::default();
        registry.register(
            "dead_lettered",
            "Authentic webhooks quarantined to the DLQ, by event type and reason",
            dead_lettered.clone(),
        );
        let reading_bodies = Gauge::default();
        registry.register(
            "reading_bodies",
            "Bodies being read or verified: requests not yet authenticated",
            reading_bodies.clone(),
        );
        let reading_bytes = Gauge::default();
        registry.register(
            "reading_bytes",
            "Read budget held by bodies not yet authenticated (see --max-reading-bytes)",
            reading_bytes.clone(),
        );
        Self {
            registry,
            requests,
            produce_seconds,
            dead_lettered,
            reading_bodies,
            reading_bytes,
        }
    }

    pub fn request(&self, event_type: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                event_type: event_type.to_owned(),
                status,
            })
            .inc();
    }

    pub fn produced(&self, topic: &str, outcome: &'static str, seconds: f64) {
        self.produce_seconds
            .get_or_create(&ProduceLabels {
                topic: topic.to_owned(),
                outcome,
            })
            .observe(seconds);
    }

    pub fn dead_lettered(&self, event_type: &str, reason: &'static str) {
        self.dead_lettered
            .get_or_create(&DlqLabels {
                event_type: event_type.to_owned(),
                reason,
            })
            .inc();
    }

    /// The gauge of bodies being read, for the reader to move.
    pub fn reading_bodies(&self) -> Gauge {
        self.reading_bodies.clone()
    }

    /// The Prometheus text exposition, with `reading_bytes` of read budget
    /// held now.
    pub fn render_with(&self, reading_bytes: usize) -> String {
        self.reading_bytes
            .set(i64::try_from(reading_bytes).unwrap_or(i64::MAX));
        self.render()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        hookline_runtime::health::exposition(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.request("orders", 202);
        metrics.request("orders", 202);
        metrics.dead_lettered("orders", "schema_invalid");
        metrics.produced("orders.webhooks", "acked", 0.003);
        let text = metrics.render();
        assert!(
            text.contains(r#"hookline_ingest_requests_total{event_type="orders",status="202"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"hookline_ingest_dead_lettered_total{event_type="orders",reason="schema_invalid"} 1"#), "{text}");
        assert!(
            text.contains("hookline_ingest_produce_seconds_count"),
            "{text}"
        );
    }
}
