//! Events for tests, as builders: `order("o1", "evt_1").at(100).status("paid")`.

use chrono::{DateTime, TimeZone, Utc};
use hookline_worker::store::{DisputeEvent, Fields, OrderEvent};
use serde_json::json;

/// Unix seconds as a UTC time.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

/// An `order.created` event of order `order_id` for user `u1`, at t=1000.
pub fn order(order_id: &str, provider_event_id: &str) -> OrderEvent {
    OrderEvent(Fields {
        type_name: "orders".to_owned(),
        event_id: hookline_contract::event_id("test", provider_event_id),
        provider_event_id: provider_event_id.to_owned(),
        event_type: "order.created".to_owned(),
        entity_id: order_id.to_owned(),
        order_id: order_id.to_owned(),
        user_id: "u1".to_owned(),
        status: "created".to_owned(),
        amount: 1250,
        currency: "eur".to_owned(),
        occurred_at: at(1_000),
        rank: 0,
        received_at: Utc::now(),
    })
}

/// A `dispute.created` event of dispute `dispute_id` for user `u1`, at t=1000.
pub fn dispute(dispute_id: &str, provider_event_id: &str) -> DisputeEvent {
    DisputeEvent(Fields {
        type_name: "disputes".to_owned(),
        event_id: hookline_contract::event_id("test", provider_event_id),
        provider_event_id: provider_event_id.to_owned(),
        event_type: "dispute.created".to_owned(),
        entity_id: dispute_id.to_owned(),
        order_id: "o1".to_owned(),
        user_id: "u1".to_owned(),
        status: "needs_response".to_owned(),
        amount: 1250,
        currency: "eur".to_owned(),
        occurred_at: at(1_000),
        rank: 0,
        received_at: Utc::now(),
    })
}

/// The JSON text the store is given with each event: its ids, enough to
/// see in the row which payload went with which event.
pub fn payloads(events: &[impl std::ops::Deref<Target = Fields>]) -> Vec<String> {
    events
        .iter()
        .map(|e| json!({"id": e.provider_event_id, "data": {"entity": e.entity_id}}).to_string())
        .collect()
}

/// Borrowed, as the store takes them.
pub fn texts(payloads: &[String]) -> Vec<&str> {
    payloads.iter().map(String::as_str).collect()
}

/// Builder methods shared by both event kinds.
pub trait EventExt: Sized {
    fn at(self, seconds: i64) -> Self;
    fn status(self, status: &str) -> Self;
    fn received(self, seconds: i64) -> Self;
    fn currency(self, currency: &str) -> Self;
    /// The provider's event type, with its lifecycle rank and the status it
    /// names (`order.paid` → `paid`).
    fn typed(self, event_type: &str) -> Self;
}

macro_rules! event_ext {
    ($ty:ty) => {
        impl EventExt for $ty {
            fn at(mut self, seconds: i64) -> Self {
                self.occurred_at = at(seconds);
                self
            }
            fn status(mut self, status: &str) -> Self {
                self.status = status.to_owned();
                self
            }
            fn received(mut self, seconds: i64) -> Self {
                self.received_at = at(seconds);
                self
            }
            fn currency(mut self, currency: &str) -> Self {
                self.currency = currency.to_owned();
                self
            }
            fn typed(mut self, event_type: &str) -> Self {
                let registry = if event_type.starts_with("order.") {
                    hookline_contract::event_types::ORDERS
                } else {
                    hookline_contract::event_types::DISPUTES
                };
                self.rank = i16::from(registry.rank(event_type));
                self.status = event_type.rsplit('.').next().unwrap().to_owned();
                self.event_type = event_type.to_owned();
                self
            }
        }
    };
}

event_ext!(OrderEvent);
event_ext!(DisputeEvent);
