//! What a webhook's payload says: validated against its topic's JSON Schema,
//! with the user id, event id, type and time read at the topic's JSON Pointers.
//! Pure: bytes in, a verdict out.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::definition::Definition;
use crate::pipeline::{PipelineSpec, Pointers, TopicSpec};
use crate::{Reason, ordering};

/// At most this many schema violations are reported, so that a hostile payload
/// cannot make the answer or the DLQ header large.
const MAX_REPORTED_VIOLATIONS: usize = 3;
/// Longest message carried in an answer or a DLQ header.
const MAX_MESSAGE_CHARS: usize = 512;

/// Why a schema could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("no event type {0:?} (known: {known})", known = crate::event_types::names())]
    Unknown(String),
    #[error("schema of {event_type} is not JSON: {source}")]
    NotJson {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("schema of {event_type} does not compile: {message}")]
    Compile { event_type: String, message: String },
}

/// A topic's schema and pointers, compiled once at startup.
pub struct Inspector {
    /// `hookline-schema` header value: the schema's `$id`.
    schema_id: String,
    validator: jsonschema::Validator,
    definition: Definition,
}

/// What a valid payload says: everything ingest needs for the record and
/// everything the worker stores. Ingest and the worker read it with the same
/// [`Inspector`], so a payload ingest accepts is one the worker can store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub provider_event_id: String,
    pub user_id: String,
    pub event_type: String,
    /// The provider's event time, within [`ordering::event_time`]'s range.
    pub occurred_at: DateTime<Utc>,
    /// The lifecycle rank of `event_type` ([`Definition::rank`]).
    pub rank: i16,
    /// The values at the event type's column pointers.
    pub columns: ColumnValues,
}

/// The values at an event type's column pointers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnValues {
    /// The entity whose state the event changes (the order, the dispute, the
    /// declared type's entity).
    pub entity_id: String,
    /// Required of the built-ins; a declared type's status is optional.
    pub status: Option<String>,
    /// The built-ins' order, amount and currency; `None` for declared types.
    pub commerce: Option<Commerce>,
}

/// The built-ins' commerce columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commerce {
    /// The order the event belongs to (for an order, the entity itself).
    pub order_id: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
}

/// An authentic payload that cannot go to the main topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: Reason,
    pub message: String,
    /// What could be read anyway, for the DLQ record's key and the event id.
    pub provider_event_id: Option<String>,
    pub user_id: Option<String>,
}

impl Inspector {
    /// Compiles the schema of the built-in event type named `event_type`.
    pub fn builtin(event_type: &str, pointers: Pointers) -> Result<Self, SchemaError> {
        let known = crate::event_types::lookup(event_type)
            .ok_or_else(|| SchemaError::Unknown(event_type.to_owned()))?;
        Self::new(Definition::builtin(known, &pointers)?)
    }

    /// Compiles the schema of the type `topic` serves in `spec`.
    pub fn for_topic(spec: &PipelineSpec, topic: &TopicSpec) -> Result<Self, SchemaError> {
        Self::new(Definition::of(spec, topic)?)
    }

    /// Compiles the schema of `definition`.
    pub fn new(definition: Definition) -> Result<Self, SchemaError> {
        let validator =
            jsonschema::validator_for(&definition.schema).map_err(|e| SchemaError::Compile {
                event_type: definition.name.clone(),
                message: e.to_string(),
            })?;
        let schema_id = definition
            .schema
            .get("$id")
            .and_then(Value::as_str)
            .unwrap_or(&definition.name)
            .to_owned();
        Ok(Self {
            schema_id,
            validator,
            definition,
        })
    }

    /// The event type this inspector reads.
    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// The schema's id, for the `hookline-schema` header.
    pub fn schema_id(&self) -> &str {
        &self.schema_id
    }

    /// Reads and validates a payload received at `received_at`. Missing ids
    /// are reported before schema violations, since they are the more
    /// specific reasons.
    pub fn inspect(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Inspected, Invalid> {
        self.inspect_delivery(Delivery::new(body, None), received_at)
    }

    /// [`Inspector::inspect`] of `delivery`, whose signed message id (or body)
    /// identifies the event of a type without an event-id pointer.
    pub fn inspect_delivery(
        &self,
        delivery: Delivery<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<Inspected, Invalid> {
        let payload = parse(delivery.body)?;
        self.inspect_value(&payload, received_at, delivery)
    }

    /// [`Inspector::inspect_delivery`] for a payload already parsed from
    /// `delivery.body` with [`parse`].
    pub fn inspect_value(
        &self,
        payload: &Value,
        received_at: DateTime<Utc>,
        delivery: Delivery<'_>,
    ) -> Result<Inspected, Invalid> {
        let fields = &self.definition.fields;
        let provider_event_id = match &fields.provider_event_id {
            Some(pointer) => identifier(payload, pointer),
            None => Some(delivery.event_id()),
        };
        let user_id = identifier(payload, &fields.user_id);
        let invalid = |reason, message: String| Invalid {
            reason,
            message: bounded(message),
            provider_event_id: provider_event_id.clone(),
            user_id: user_id.clone(),
        };

        let Some(event_id) = provider_event_id.clone() else {
            return Err(invalid(
                Reason::MissingEventId,
                format!(
                    "no event id (a non-empty string of at most {MAX_IDENTIFIER_BYTES} bytes) at {}",
                    fields.provider_event_id.as_deref().unwrap_or_default()
                ),
            ));
        };
        let Some(user) = user_id.clone() else {
            return Err(invalid(
                Reason::MissingUserId,
                format!(
                    "no user id (a non-empty string of at most {MAX_IDENTIFIER_BYTES} bytes) at {}",
                    fields.user_id
                ),
            ));
        };
        let violations: Vec<String> = self
            .validator
            .iter_errors(payload)
            .take(MAX_REPORTED_VIOLATIONS)
            .map(|e| format!("{}: {e}", pointer_or_root(&e.instance_path().to_string())))
            .collect();
        if !violations.is_empty() {
            return Err(invalid(Reason::SchemaInvalid, violations.join("; ")));
        }
        if let Some(at) = nul_at(payload, &mut String::new()) {
            return Err(invalid(
                Reason::SchemaInvalid,
                format!(
                    "{}: holds U+0000, which PostgreSQL cannot store",
                    pointer_or_root(&at)
                ),
            ));
        }
        let text = |pointer: &str, what: &str| {
            payload
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    invalid(
                        Reason::SchemaInvalid,
                        format!("no {what} (a string) at {pointer}"),
                    )
                })
        };
        let integer_at = |pointer: &str, what: &str| {
            payload.pointer(pointer).and_then(integer).ok_or_else(|| {
                invalid(
                    Reason::SchemaInvalid,
                    format!("no {what} (an integer within ±{}) at {pointer}", i64::MAX),
                )
            })
        };
        let event_type = text(&fields.event_type, "event type")?;
        let occurred_at = match payload.pointer(&fields.event_time) {
            Some(Value::String(written)) => ordering::event_time_rfc3339(written, received_at),
            _ => ordering::event_time(
                integer_at(&fields.event_time, "event time in Unix seconds")?,
                received_at,
            ),
        }
        .map_err(|e| invalid(Reason::EventTimeOutOfRange, e.to_string()))?;
        let entity_id = if self.definition.commerce.is_some() {
            text(&fields.entity_id, "entity id")?
        } else {
            identifier(payload, &fields.entity_id).ok_or_else(|| {
                invalid(
                    Reason::SchemaInvalid,
                    format!(
                        "no entity id (a non-empty string of at most {MAX_IDENTIFIER_BYTES} bytes) at {}",
                        fields.entity_id
                    ),
                )
            })?
        };
        let (status, commerce) = match &self.definition.commerce {
            Some(commerce) => {
                let status = match &fields.status {
                    Some(pointer) => Some(text(pointer, "status")?),
                    None => None,
                };
                let commerce = Commerce {
                    order_id: text(&commerce.order_id, "order id")?,
                    amount: integer_at(&commerce.amount, "amount")?,
                    currency: text(&commerce.currency, "currency")?,
                };
                (status, Some(commerce))
            }
            // A declared type's status is whatever scalar is there, if any.
            None => {
                let status = fields
                    .status
                    .as_deref()
                    .and_then(|pointer| payload.pointer(pointer))
                    .and_then(scalar_text);
                (status, None)
            }
        };
        Ok(Inspected {
            rank: self.definition.rank(&event_type),
            provider_event_id: event_id,
            user_id: user,
            event_type,
            occurred_at,
            columns: ColumnValues {
                entity_id,
                status,
                commerce,
            },
        })
    }
}

/// A string, number or boolean as text; `None` for null, arrays and objects.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A webhook as it was delivered: its raw body, and the message id its
/// source's scheme signed, when the scheme signs one (Standard Webhooks'
/// `webhook-id`). GitHub's `X-GitHub-Delivery` and Shopify's
/// `X-Shopify-Webhook-Id` are not signed, so they never stand for an event.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub body: &'a [u8],
    pub signed_message_id: Option<&'a str>,
}

impl<'a> Delivery<'a> {
    pub fn new(body: &'a [u8], signed_message_id: Option<&'a str>) -> Self {
        Self {
            body,
            signed_message_id,
        }
    }

    /// The provider event id of a type without an event-id pointer: the
    /// signed message id, else `sha256:<hex>` of the body. A provider's retry
    /// resends both, so it folds; a caller who could change an unsigned
    /// header could otherwise make one delivery many events.
    pub fn event_id(&self) -> String {
        match self.signed_message_id {
            Some(id) if !id.trim().is_empty() && id.len() <= MAX_IDENTIFIER_BYTES => id.to_owned(),
            _ => {
                use sha2::Digest;
                format!("sha256:{}", hex::encode(sha2::Sha256::digest(self.body)))
            }
        }
    }
}

/// A JSON number that is an integer of `i64`'s range: `1250` and `1250.0`
/// alike (JSON Schema's `integer` accepts both), never `1250.5` or 2^63.
pub fn integer(value: &Value) -> Option<i64> {
    let number = value.as_number()?;
    if let Some(i) = number.as_i64() {
        return Some(i);
    }
    if number.is_u64() {
        return None;
    }
    let f = number.as_f64()?;
    // -2^63 is exact in f64 and an i64; 2^63 is exact and is not.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f)).then_some(f as i64)
}

/// The pointer of the first string or key holding U+0000, if any: PostgreSQL
/// stores it neither in `text` nor in `jsonb`.
fn nul_at(value: &Value, at: &mut String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(at.clone()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = at.len();
            at.push_str(&format!("/{i}"));
            let found = nul_at(item, at);
            at.truncate(len);
            found
        }),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let len = at.len();
            at.push('/');
            at.push_str(&key.replace('~', "~0").replace('/', "~1"));
            let found = if key.contains('\0') {
                Some(at.clone())
            } else {
                nul_at(item, at)
            };
            at.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Parses a body as JSON, or says why it is not.
pub fn parse(body: &[u8]) -> Result<Value, Invalid> {
    serde_json::from_slice(body).map_err(|e| Invalid {
        reason: Reason::InvalidJson,
        message: bounded(format!("the body is not JSON: {e}")),
        provider_event_id: None,
        user_id: None,
    })
}

/// Longest identifier accepted: ids are keys of Kafka records and of index
/// rows, and a provider's ids are short.
pub const MAX_IDENTIFIER_BYTES: usize = 255;

/// A non-empty string of at most [`MAX_IDENTIFIER_BYTES`] at `pointer`;
/// integers are accepted too, as some providers number their users.
fn identifier(payload: &Value, pointer: &str) -> Option<String> {
    match payload.pointer(pointer)? {
        Value::String(s) if !s.trim().is_empty() && s.len() <= MAX_IDENTIFIER_BYTES => {
            Some(s.clone())
        }
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// What an example payload is made of.
#[derive(Debug, Clone, Copy)]
pub struct Example<'a> {
    pub provider_event_id: &'a str,
    pub user_id: &'a str,
    pub entity_id: &'a str,
    pub order_id: &'a str,
    /// Unix seconds.
    pub event_time: i64,
    pub amount: i64,
}

/// A valid payload of `definition` with `example`'s values at its pointers,
/// for sample traffic and benchmarks: the provider's event type is the first
/// of its lifecycle. A declared schema's first `examples` entry, when it has
/// one, is the base the values are written into, so that fields the schema
/// requires beyond the pointers are there too.
pub fn example(definition: &Definition, example: &Example<'_>) -> Value {
    let first = definition.first_event_type().unwrap_or("event");
    let status = first.rsplit('.').next().unwrap_or(first);
    let mut payload = definition
        .schema
        .get("examples")
        .and_then(|examples| examples.get(0))
        .filter(|base| base.is_object())
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let fields = &definition.fields;
    let mut values = vec![
        (fields.event_type.as_str(), Value::from(first)),
        (fields.event_time.as_str(), Value::from(example.event_time)),
        (fields.user_id.as_str(), Value::from(example.user_id)),
    ];
    if let Some(pointer) = &fields.provider_event_id {
        values.push((pointer, Value::from(example.provider_event_id)));
    }
    if let Some(commerce) = &definition.commerce {
        values.extend([
            (commerce.order_id.as_str(), Value::from(example.order_id)),
            (commerce.amount.as_str(), Value::from(example.amount)),
            (commerce.currency.as_str(), Value::from("eur")),
        ]);
    }
    // The entity after the order: an order is its own entity.
    values.push((fields.entity_id.as_str(), Value::from(example.entity_id)));
    if let Some(pointer) = &fields.status {
        values.push((pointer, Value::from(status)));
    }
    for (pointer, value) in values {
        set(&mut payload, pointer, value);
    }
    payload
}

/// Sets `value` at `pointer`, making the objects on the way; `~1` and `~0`
/// stand for `/` and `~` as RFC 6901 says.
fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut at = root;
    let mut tokens = pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .peekable();
    while let Some(token) = tokens.next() {
        if !at.is_object() {
            *at = Value::Object(Default::default());
        }
        let Value::Object(object) = at else { return };
        if tokens.peek().is_none() {
            object.insert(token, value);
            return;
        }
        at = object.entry(token).or_insert(Value::Null);
    }
}

fn pointer_or_root(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

fn bounded(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn orders() -> Inspector {
        Inspector::builtin("orders", Pointers::default()).unwrap()
    }

    fn order() -> Value {
        json!({
            "id": "evt_1", "type": "order.paid", "created": 1_700_000_000,
            "data": {"user_id": "u1", "order_id": "o1", "amount": 1250, "currency": "eur", "status": "paid"}
        })
    }

    /// A day after the example orders' event time.
    fn received() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_086_400, 0).unwrap()
    }

    fn inspect(inspector: &Inspector, payload: &Value) -> Result<Inspected, Invalid> {
        inspector.inspect(&serde_json::to_vec(payload).unwrap(), received())
    }

    #[test]
    fn valid_order_is_read() {
        let inspected = inspect(&orders(), &order()).unwrap();
        assert_eq!(
            inspected,
            Inspected {
                provider_event_id: "evt_1".into(),
                user_id: "u1".into(),
                event_type: "order.paid".into(),
                occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                rank: 2,
                columns: ColumnValues {
                    entity_id: "o1".into(),
                    status: Some("paid".into()),
                    commerce: Some(Commerce {
                        order_id: "o1".into(),
                        amount: 1250,
                        currency: "eur".into(),
                    }),
                },
            }
        );
    }

    #[test]
    fn whole_floats_are_integers_and_nothing_else_is() {
        for (amount, read) in [
            (json!(1250.0), Some(1250)),
            (json!(1.25e3), Some(1250)),
            (json!(i64::MAX), Some(i64::MAX)),
            (json!(-(2.0_f64.powi(63))), Some(i64::MIN)),
            (json!(1250.5), None),
            (json!(2.0_f64.powi(63)), None),
            (json!(u64::MAX), None),
            (json!("1250"), None),
        ] {
            assert_eq!(integer(&amount), read, "{amount}");
        }
    }

    #[test]
    fn an_amount_the_worker_could_not_store_is_refused_at_the_edge() {
        let mut payload = order();
        payload["data"]["amount"] = json!(1250.0);
        let columns = inspect(&orders(), &payload).unwrap().columns;
        assert_eq!(columns.commerce.unwrap().amount, 1250);
        payload["data"]["amount"] = json!(u64::MAX);
        let err = inspect(&orders(), &payload).unwrap_err();
        assert_eq!(err.reason, Reason::SchemaInvalid);
        assert!(err.message.contains("/data/amount"), "{}", err.message);
    }

    #[test]
    fn a_nul_anywhere_is_refused_with_where() {
        let mut payload = order();
        payload["data"]["metadata"] = json!({"a/b": ["x", "y\u{0}z"]});
        let err = inspect(&orders(), &payload).unwrap_err();
        assert_eq!(err.reason, Reason::SchemaInvalid);
        assert!(
            err.message.starts_with("/data/metadata/a~1b/1:"),
            "{}",
            err.message
        );
        let mut payload = order();
        payload["data"]["metadata"] = json!({"k\u{0}": 1});
        assert!(inspect(&orders(), &payload).is_err());
    }

    #[test]
    fn event_times_out_of_range_have_their_own_reason() {
        for created in [
            1_700_000_000_000_i64,
            0,
            946_684_799,
            1_700_086_400 + 86_401,
        ] {
            let mut payload = order();
            payload["created"] = json!(created);
            let err = inspect(&orders(), &payload).unwrap_err();
            assert_eq!(err.reason, Reason::EventTimeOutOfRange, "{created}");
            assert_eq!(err.user_id.as_deref(), Some("u1"));
        }
        let mut payload = order();
        payload["created"] = json!(1_700_086_400 + 86_400);
        assert!(inspect(&orders(), &payload).is_ok());
    }

    #[test]
    fn unknown_fields_are_accepted_everywhere() {
        let mut payload = order();
        payload["new_top_level"] = json!({"x": 1});
        payload["data"]["new_field"] = json!([1, 2]);
        assert!(inspect(&orders(), &payload).is_ok());
    }

    #[test]
    fn non_json_is_invalid_json() {
        let err = orders().inspect(b"{not json", received()).unwrap_err();
        assert_eq!(err.reason, Reason::InvalidJson);
        assert_eq!((err.provider_event_id, err.user_id), (None, None));
    }

    #[test]
    fn missing_user_id_is_its_own_reason_and_keeps_the_event_id() {
        let mut payload = order();
        payload["data"].as_object_mut().unwrap().remove("user_id");
        let err = inspect(&orders(), &payload).unwrap_err();
        assert_eq!(err.reason, Reason::MissingUserId);
        assert_eq!(err.provider_event_id.as_deref(), Some("evt_1"));
        assert!(err.message.contains("/data/user_id"), "{}", err.message);
    }

    #[test]
    fn overlong_ids_are_missing_ids() {
        let pointers = Pointers {
            user_id: "/data/customer".into(),
            ..Pointers::default()
        };
        let inspector = Inspector::builtin("orders", pointers).unwrap();
        let mut payload = order();
        payload["data"]["customer"] = json!("u".repeat(MAX_IDENTIFIER_BYTES + 1));
        assert_eq!(
            inspect(&inspector, &payload).unwrap_err().reason,
            Reason::MissingUserId
        );
        payload["data"]["customer"] = json!("u".repeat(MAX_IDENTIFIER_BYTES));
        assert!(inspect(&inspector, &payload).is_ok());
    }

    #[test]
    fn empty_user_id_is_missing() {
        let mut payload = order();
        payload["data"]["user_id"] = json!("  ");
        assert_eq!(
            inspect(&orders(), &payload).unwrap_err().reason,
            Reason::MissingUserId
        );
    }

    #[test]
    fn missing_event_id_is_its_own_reason() {
        let mut payload = order();
        payload.as_object_mut().unwrap().remove("id");
        let err = inspect(&orders(), &payload).unwrap_err();
        assert_eq!(err.reason, Reason::MissingEventId);
        assert_eq!(err.user_id.as_deref(), Some("u1"));
    }

    #[test]
    fn schema_violations_name_where() {
        let mut payload = order();
        payload["data"]["currency"] = json!("EUR");
        payload["type"] = json!("order.shipped");
        let err = inspect(&orders(), &payload).unwrap_err();
        assert_eq!(err.reason, Reason::SchemaInvalid);
        assert!(err.message.contains("/data/currency"), "{}", err.message);
        assert!(err.message.contains("/type"), "{}", err.message);
    }

    #[test]
    fn pointers_come_from_the_topic() {
        let pointers = Pointers {
            user_id: "/data/customer".into(),
            ..Pointers::default()
        };
        let inspector = Inspector::builtin("orders", pointers).unwrap();
        let mut payload = order();
        payload["data"]["customer"] = json!(42);
        assert_eq!(inspect(&inspector, &payload).unwrap().user_id, "42");
    }

    #[test]
    fn disputes_schema_requires_the_dispute_id() {
        let disputes = Inspector::builtin("disputes", Pointers::default()).unwrap();
        let payload = json!({
            "id": "evt_9", "type": "dispute.created", "created": 1,
            "data": {"user_id": "u1", "order_id": "o1", "amount": 5, "currency": "usd", "status": "open"}
        });
        let err = inspect(&disputes, &payload).unwrap_err();
        assert_eq!(err.reason, Reason::SchemaInvalid);
        assert!(err.message.contains("dispute_id"), "{}", err.message);
        assert_eq!(
            disputes.schema_id(),
            "https://hookline.dev/schemas/disputes/v1.json"
        );
    }

    #[test]
    fn unknown_event_type_has_no_schema() {
        assert!(matches!(
            Inspector::builtin("refunds", Pointers::default()),
            Err(SchemaError::Unknown(_))
        ));
    }

    #[test]
    fn examples_of_every_type_are_valid_and_say_what_they_were_given() {
        for event_type in crate::event_types::ALL {
            let inspector = Inspector::builtin(event_type.name, Pointers::default()).unwrap();
            let payload = example(
                inspector.definition(),
                &Example {
                    provider_event_id: "evt_1",
                    user_id: "u1",
                    entity_id: "e1",
                    order_id: "o1",
                    event_time: 1_700_000_000,
                    amount: 5,
                },
            );
            let body = serde_json::to_vec(&payload).unwrap();
            let inspected = inspector
                .inspect_value(&payload, received(), Delivery::new(&body, None))
                .unwrap();
            assert_eq!(inspected.user_id, "u1");
            assert_eq!(inspected.provider_event_id, "evt_1");
            assert_eq!(
                payload.pointer(event_type.columns.entity_id),
                Some(&json!("e1"))
            );
        }
    }

    #[test]
    fn an_example_follows_the_topics_pointers() {
        let pointers = Pointers {
            user_id: "/data/customer~1id".into(),
            ..Pointers::default()
        };
        let definition = Definition::builtin(&crate::event_types::ORDERS, &pointers).unwrap();
        let payload = example(
            &definition,
            &Example {
                provider_event_id: "evt_1",
                user_id: "u9",
                entity_id: "o1",
                order_id: "o1",
                event_time: 1,
                amount: 1,
            },
        );
        assert_eq!(payload["data"]["customer/id"], json!("u9"));
    }

    fn issues() -> Inspector {
        let declared: crate::pipeline::DeclaredType = serde_json::from_value(json!({
            "name": "issues",
            "schema": {"type": "object", "required": ["action", "issue"],
                       "examples": [{"repository": {"full_name": "o/r"}}]},
            "fields": {
                "eventType": "/action", "eventTime": "/issue/updated_at",
                "userId": "/repository/id", "entityId": "/issue/id", "status": "/issue/state"
            },
            "lifecycle": ["opened", "edited", "closed"]
        }))
        .unwrap();
        Inspector::new(Definition::declared(&declared)).unwrap()
    }

    fn issue() -> Value {
        json!({
            "action": "closed",
            "issue": {"id": 1_001, "updated_at": "2023-11-14T22:13:20Z", "state": "closed"},
            "repository": {"id": 42}
        })
    }

    #[test]
    fn a_declared_type_reads_its_own_pointers_and_takes_the_signed_message_id() {
        let body = serde_json::to_vec(&issue()).unwrap();
        let inspected = issues()
            .inspect_delivery(Delivery::new(&body, Some("delivery-1")), received())
            .unwrap();
        assert_eq!(
            inspected,
            Inspected {
                provider_event_id: "delivery-1".into(),
                user_id: "42".into(),
                event_type: "closed".into(),
                occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                rank: 2,
                columns: ColumnValues {
                    entity_id: "1001".into(),
                    status: Some("closed".into()),
                    commerce: None,
                },
            }
        );
        // Without a signed message id the body names the event: the same
        // body is the same event, whatever unsigned header came with it.
        let unsigned = issues().inspect(&body, received()).unwrap();
        assert!(
            unsigned.provider_event_id.starts_with("sha256:"),
            "{}",
            unsigned.provider_event_id
        );
        assert_eq!(
            issues()
                .inspect(&body, received())
                .unwrap()
                .provider_event_id,
            unsigned.provider_event_id
        );
        let mut other = issue();
        other["action"] = "edited".into();
        let other = serde_json::to_vec(&other).unwrap();
        assert_ne!(
            issues()
                .inspect(&other, received())
                .unwrap()
                .provider_event_id,
            unsigned.provider_event_id
        );
    }

    #[test]
    fn a_declared_types_status_is_optional_and_its_entity_is_not() {
        let mut payload = issue();
        payload["issue"].as_object_mut().unwrap().remove("state");
        let body = serde_json::to_vec(&payload).unwrap();
        let inspected = issues()
            .inspect_delivery(Delivery::new(&body, Some("d")), received())
            .unwrap();
        assert_eq!(inspected.columns.status, None);
        payload["issue"].as_object_mut().unwrap().remove("id");
        let body = serde_json::to_vec(&payload).unwrap();
        let err = issues()
            .inspect_delivery(Delivery::new(&body, Some("d")), received())
            .unwrap_err();
        assert_eq!(err.reason, Reason::SchemaInvalid);
        assert!(err.message.contains("/issue/id"), "{}", err.message);
    }

    #[test]
    fn a_declared_types_example_builds_on_the_schemas_example() {
        let inspector = issues();
        let payload = example(
            inspector.definition(),
            &Example {
                provider_event_id: "evt_1",
                user_id: "u1",
                entity_id: "e1",
                order_id: "o1",
                event_time: 1_700_000_000,
                amount: 5,
            },
        );
        assert_eq!(payload["repository"]["full_name"], json!("o/r"));
        let body = serde_json::to_vec(&payload).unwrap();
        let inspected = inspector
            .inspect_value(&payload, received(), Delivery::new(&body, Some("evt_1")))
            .unwrap();
        assert_eq!(inspected.columns.entity_id, "e1");
        assert_eq!(inspected.event_type, "opened");
    }

    #[test]
    fn messages_are_bounded() {
        let long = bounded("x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS + 1);
    }
}
