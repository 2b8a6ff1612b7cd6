//! An event type as one topic serves it: a built-in type with the topic's
//! pointers, or a type the manifest declares. Everything that reads payloads
//! (ingest, the worker, the tools) works from a [`Definition`], so that a
//! declared type is handled exactly as the built-ins are.

use serde_json::Value;

use crate::event_types::{self, EventType, Storage};
use crate::payload::SchemaError;
use crate::pipeline::{DeclaredType, FieldPointers, PipelineSpec, Pointers, TopicSpec};

/// Where the built-ins' commerce columns are in the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommercePointers {
    pub order_id: String,
    /// Minor units, an integer.
    pub amount: String,
    pub currency: String,
}

/// One event type, resolved for a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The topic's `eventType`: `orders`, `disputes` or a declared name.
    pub name: String,
    /// The JSON Schema (2020-12) a payload must satisfy.
    pub schema: Value,
    /// Where the values every event has are in the payload. A declared type
    /// without an event-id pointer takes the signed message id or the body's
    /// digest ([`crate::payload::Delivery::event_id`]).
    pub fields: FieldPointers,
    /// The built-ins' order id, amount and currency; `None` for declared types.
    pub commerce: Option<CommercePointers>,
    pub storage: Storage,
    /// The provider's event types with their lifecycle ranks.
    pub lifecycle: Vec<(String, i16)>,
}

impl Definition {
    /// The type `topic` serves in `spec`: a built-in one or a declared one.
    pub fn of(spec: &PipelineSpec, topic: &TopicSpec) -> Result<Self, SchemaError> {
        if let Some(builtin) = event_types::lookup(&topic.event_type) {
            return Self::builtin(builtin, &topic.pointers);
        }
        spec.declared_type(&topic.event_type)
            .map(Self::declared)
            .ok_or_else(|| SchemaError::Unknown(topic.event_type.clone()))
    }

    /// A built-in type read at `pointers`.
    pub fn builtin(event_type: &EventType, pointers: &Pointers) -> Result<Self, SchemaError> {
        let schema =
            serde_json::from_str(event_type.schema).map_err(|source| SchemaError::NotJson {
                event_type: event_type.name.to_owned(),
                source,
            })?;
        let columns = &event_type.columns;
        Ok(Self {
            name: event_type.name.to_owned(),
            schema,
            fields: FieldPointers {
                provider_event_id: Some(pointers.event_id.clone()),
                event_type: pointers.event_type.clone(),
                event_time: pointers.event_time.clone(),
                user_id: pointers.user_id.clone(),
                entity_id: columns.entity_id.to_owned(),
                status: Some(columns.status.to_owned()),
            },
            commerce: Some(CommercePointers {
                order_id: columns.order_id.to_owned(),
                amount: columns.amount.to_owned(),
                currency: columns.currency.to_owned(),
            }),
            storage: event_type.storage,
            lifecycle: event_type
                .lifecycle
                .iter()
                .map(|(name, rank)| ((*name).to_owned(), i16::from(*rank)))
                .collect(),
        })
    }

    /// A declared type.
    pub fn declared(declared: &DeclaredType) -> Self {
        Self {
            name: declared.name.clone(),
            schema: declared.schema.clone(),
            fields: declared.fields.clone(),
            commerce: None,
            storage: Storage::Declared,
            lifecycle: declared.ranks(),
        }
    }

    /// The lifecycle rank of the provider's event type `event_type`; unlisted
    /// types rank 0.
    pub fn rank(&self, event_type: &str) -> i16 {
        self.lifecycle
            .iter()
            .find(|(name, _)| name == event_type)
            .map_or(0, |(_, rank)| *rank)
    }

    /// The first provider event type of the lifecycle, if there is one.
    pub fn first_event_type(&self) -> Option<&str> {
        self.lifecycle.first().map(|(name, _)| name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineManifest;

    const MANIFEST: &str = r#"
apiVersion: hookline.dev/v1alpha1
kind: WebhookPipeline
metadata: {name: shop}
spec:
  kafka: {bootstrapServers: "127.0.0.1:9092"}
  topics:
    - {name: orders.webhooks, eventType: orders, partitions: 2}
    - {name: refunds.webhooks, eventType: refunds, partitions: 2}
  eventTypes:
    - name: refunds
      schema: {type: object, required: [id, created, data]}
      fields:
        providerEventId: /id
        eventType: /type
        eventTime: /created
        userId: /data/user_id
        entityId: /data/refund_id
        status: /data/status
      lifecycle: [refund.created, refund.updated, refund.succeeded]
  shards:
    - {name: a, databaseUrlSecretRef: {name: pg-a, key: url}}
  ingest: {signingSecretRef: {name: provider}}
"#;

    #[test]
    fn a_topic_resolves_to_its_built_in_or_declared_type() {
        let spec = PipelineManifest::from_yaml(MANIFEST).unwrap().spec;
        let orders = Definition::of(&spec, &spec.topics[0]).unwrap();
        assert_eq!(orders.storage, Storage::Orders);
        assert_eq!(orders.fields.entity_id, "/data/order_id");
        assert_eq!(orders.rank("order.paid"), 2);
        let refunds = Definition::of(&spec, &spec.topics[1]).unwrap();
        assert_eq!(refunds.storage, Storage::Declared);
        assert_eq!(refunds.commerce, None);
        assert_eq!(refunds.rank("refund.succeeded"), 2);
        assert_eq!(refunds.rank("refund.unheard_of"), 0);
        assert_eq!(refunds.first_event_type(), Some("refund.created"));
    }

    #[test]
    fn an_event_type_that_names_no_type_is_refused_with_the_known_ones() {
        let text = MANIFEST.replace("eventType: refunds,", "eventType: refundz,");
        let err = PipelineManifest::from_yaml(&text).unwrap_err().to_string();
        assert!(
            err.contains("topic refunds.webhooks: eventType refundz names no type")
                && err.contains("declared: refunds"),
            "{err}"
        );
    }

    #[test]
    fn a_schema_that_cannot_compile_is_named() {
        let text = MANIFEST.replace(
            "schema: {type: object, required: [id, created, data]}",
            "schema: {type: objekt}",
        );
        let err = PipelineManifest::from_yaml(&text).unwrap_err().to_string();
        assert!(
            err.contains("eventTypes refunds: schema does not compile"),
            "{err}"
        );
    }

    #[test]
    fn a_broken_pointer_is_refused_with_its_name() {
        let text = MANIFEST.replace("entityId: /data/refund_id", "entityId: data/refund_id");
        let err = PipelineManifest::from_yaml(&text).unwrap_err().to_string();
        assert!(
            err.contains(
                "eventTypes refunds: fields.entityId \"data/refund_id\" is not a JSON Pointer"
            ),
            "{err}"
        );
    }
}
