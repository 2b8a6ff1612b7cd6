//! What an event type is, in one place: its payload schema, where its columns
//! are in the payload, the tables it is stored in, and the order of its
//! lifecycle. Ingest validates with it, the worker decodes and stores with it,
//! and the tools count and audit with it; adding a type is adding an entry.

/// The tables an event type is stored in, on every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Storage {
    /// `order_events` and `orders`.
    Orders,
    /// `dispute_events` and `disputes`.
    Disputes,
    /// `events` and `entities`, shared by every declared type, each row
    /// carrying its type's name.
    Declared,
}

impl Storage {
    /// The table holding every event once.
    pub const fn events_table(self) -> &'static str {
        match self {
            Storage::Orders => "order_events",
            Storage::Disputes => "dispute_events",
            Storage::Declared => "events",
        }
    }

    /// The table holding each entity's latest state.
    pub const fn state_table(self) -> &'static str {
        match self {
            Storage::Orders => "orders",
            Storage::Disputes => "disputes",
            Storage::Declared => "entities",
        }
    }

    /// The column naming the entity, in both tables.
    pub const fn entity_column(self) -> &'static str {
        match self {
            Storage::Orders => "order_id",
            Storage::Disputes => "dispute_id",
            Storage::Declared => "entity_id",
        }
    }
}

/// Where a stored column's value is in a payload (JSON Pointers, RFC 6901).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// The entity whose state the event changes (the order, the dispute).
    pub entity_id: &'static str,
    /// The order the event belongs to (for an order, the entity itself).
    pub order_id: &'static str,
    pub status: &'static str,
    /// Minor units, an integer.
    pub amount: &'static str,
    pub currency: &'static str,
}

/// One event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// What a topic's `eventType` says, and the `{type}` of `POST /webhooks/{type}`.
    pub name: &'static str,
    /// The JSON Schema (2020-12) a payload must satisfy.
    pub schema: &'static str,
    pub columns: Columns,
    pub storage: Storage,
    /// The provider's event types in lifecycle order with their ranks; types
    /// of equal rank end the lifecycle alike. Unlisted types rank 0.
    pub lifecycle: &'static [(&'static str, u8)],
}

/// Orders, as the providers send them.
pub const ORDERS: EventType = EventType {
    name: "orders",
    schema: include_str!("../../schemas/orders.json"),
    columns: Columns {
        entity_id: "/data/order_id",
        order_id: "/data/order_id",
        status: "/data/status",
        amount: "/data/amount",
        currency: "/data/currency",
    },
    storage: Storage::Orders,
    lifecycle: &[
        ("order.created", 0),
        ("order.updated", 1),
        ("order.paid", 2),
        ("order.refunded", 3),
        ("order.cancelled", 3),
    ],
};

/// Disputes of orders.
pub const DISPUTES: EventType = EventType {
    name: "disputes",
    schema: include_str!("../../schemas/disputes.json"),
    columns: Columns {
        entity_id: "/data/dispute_id",
        order_id: "/data/order_id",
        status: "/data/status",
        amount: "/data/amount",
        currency: "/data/currency",
    },
    storage: Storage::Disputes,
    lifecycle: &[
        ("dispute.created", 0),
        ("dispute.updated", 1),
        ("dispute.closed", 2),
    ],
};

/// Every event type hookline knows.
pub const ALL: [EventType; 2] = [ORDERS, DISPUTES];

/// The event type named `name` (a topic's `eventType`).
pub fn lookup(name: &str) -> Option<&'static EventType> {
    ALL.iter().find(|t| t.name == name)
}

/// The names of every known event type, for messages.
pub fn names() -> String {
    ALL.map(|t| t.name).join(", ")
}

/// Every table of every storage, each state table followed by its events
/// table: what the tools count per shard.
pub fn tables() -> Vec<&'static str> {
    [Storage::Orders, Storage::Disputes, Storage::Declared]
        .iter()
        .flat_map(|s| [s.state_table(), s.events_table()])
        .collect()
}

impl EventType {
    /// The lifecycle rank of the provider's event type `event_type`.
    pub fn rank(&self, event_type: &str) -> u8 {
        self.lifecycle
            .iter()
            .find(|(name, _)| *name == event_type)
            .map_or(0, |(_, rank)| *rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_found_by_its_name_and_only_so() {
        for t in ALL {
            assert_eq!(lookup(t.name), Some(&t));
        }
        assert_eq!(lookup("refunds"), None);
        assert_eq!(names(), "orders, disputes");
    }

    #[test]
    fn tables_are_the_migrations_tables() {
        assert_eq!(
            tables(),
            [
                "orders",
                "order_events",
                "disputes",
                "dispute_events",
                "entities",
                "events"
            ]
        );
    }

    #[test]
    fn lifecycle_ranks_follow_the_design() {
        assert!(ORDERS.rank("order.created") < ORDERS.rank("order.paid"));
        assert_eq!(
            ORDERS.rank("order.refunded"),
            ORDERS.rank("order.cancelled")
        );
        assert!(DISPUTES.rank("dispute.updated") < DISPUTES.rank("dispute.closed"));
        assert_eq!(ORDERS.rank("order.shipped"), 0);
    }

    #[test]
    fn every_lifecycle_type_is_in_the_schema() {
        for t in ALL {
            for (name, _) in t.lifecycle {
                assert!(t.schema.contains(&format!("\"{name}\"")), "{name}");
            }
        }
    }
}
