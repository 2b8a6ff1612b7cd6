//! Event types a pipeline declares in its manifest, beside the built-in ones:
//! an inline JSON Schema, JSON Pointers to the values hookline reads, and an
//! optional lifecycle. They are stored in the shards' `events` and `entities`
//! tables ([`crate::Storage::Declared`]).

use serde::{Deserialize, Serialize};

/// Event types a pipeline may declare.
pub const MAX_DECLARED_TYPES: usize = 32;
/// Longest lifecycle: its ranks are `i16`s, and a lifecycle is a short list.
pub const MAX_LIFECYCLE: usize = 64;

/// One declared event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeclaredType {
    /// What a topic's `eventType` says, and the `{type}` of the webhook routes.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$")),
        x_kube(validation = Rule::new("!(self in ['orders', 'disputes'])").message("orders and disputes are built in: a declared type needs another name"))
    )]
    pub name: String,
    /// The JSON Schema (2020-12) every payload of the type must satisfy.
    #[cfg_attr(feature = "kube", schemars(schema_with = "free_form_object"))]
    pub schema: serde_json::Value,
    /// Where the values hookline reads are in the payload.
    pub fields: FieldPointers,
    /// The provider's event types in lifecycle order: an event of a later one
    /// wins over one of an earlier one in the same second. Unlisted types rank 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(max = 64)),
        schemars(inner(length(min = 1, max = 128)))
    )]
    pub lifecycle: Vec<String>,
}

/// JSON Pointers (RFC 6901) into a declared type's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[serde(rename_all = "camelCase")]
pub struct FieldPointers {
    /// The provider's id of the event. Omitted: the message id the source's
    /// scheme signs (Standard Webhooks' `webhook-id`), else `sha256:<hex>` of
    /// the body; unsigned delivery ids (GitHub's, Shopify's) never count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 256)),
        x_kube(validation = Rule::new("self.matches('^(/([^~/]|~[01])*)+$')").message("fields.providerEventId must be a JSON Pointer such as /data/id (~0 for ~, ~1 for /)"))
    )]
    pub provider_event_id: Option<String>,
    /// The provider's event type (`refund.created`, …).
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 256)),
        x_kube(validation = Rule::new("self.matches('^(/([^~/]|~[01])*)+$')").message("fields.eventType must be a JSON Pointer such as /data/id (~0 for ~, ~1 for /)"))
    )]
    pub event_type: String,
    /// The event time: Unix seconds, or an RFC 3339 string.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 256)),
        x_kube(validation = Rule::new("self.matches('^(/([^~/]|~[01])*)+$')").message("fields.eventTime must be a JSON Pointer such as /data/id (~0 for ~, ~1 for /)"))
    )]
    pub event_time: String,
    /// The user, hence the partition and the shard.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 256)),
        x_kube(validation = Rule::new("self.matches('^(/([^~/]|~[01])*)+$')").message("fields.userId must be a JSON Pointer such as /data/id (~0 for ~, ~1 for /)"))
    )]
    pub user_id: String,
    /// The entity whose latest state the event sets.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 256)),
        x_kube(validation = Rule::new("self.matches('^(/([^~/]|~[01])*)+$')").message("fields.entityId must be a JSON Pointer such as /data/id (~0 for ~, ~1 for /)"))
    )]
    pub entity_id: String,
    /// The entity's status, when the payload has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 256)),
        x_kube(validation = Rule::new("self.matches('^(/([^~/]|~[01])*)+$')").message("fields.status must be a JSON Pointer such as /data/id (~0 for ~, ~1 for /)"))
    )]
    pub status: Option<String>,
}

#[cfg(feature = "kube")]
fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

impl FieldPointers {
    /// Each pointer given, with its field name, for checks and messages.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("providerEventId", self.provider_event_id.as_deref()),
            ("eventType", Some(self.event_type.as_str())),
            ("eventTime", Some(self.event_time.as_str())),
            ("userId", Some(self.user_id.as_str())),
            ("entityId", Some(self.entity_id.as_str())),
            ("status", self.status.as_deref()),
        ]
        .into_iter()
        .filter_map(|(field, pointer)| Some((field, pointer?)))
    }
}

impl DeclaredType {
    /// The lifecycle as ranks: each listed type ranks by its position.
    pub fn ranks(&self) -> Vec<(String, i16)> {
        self.lifecycle
            .iter()
            .zip(0_i16..)
            .map(|(name, rank)| (name.clone(), rank))
            .collect()
    }

    /// Every rule this type breaks that can be judged without compiling its
    /// schema, in words naming the field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name = &self.name;
        if crate::event_types::lookup(name).is_some() {
            problems.push(format!(
                "eventTypes {name}: {name} is built in; a declared type needs another name"
            ));
        }
        if !is_type_name(name) {
            problems.push(format!(
                "eventTypes {name:?}: a name is 1 to 63 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
            ));
        }
        for (field, pointer) in self.fields.iter() {
            if let Err(why) = check_pointer(pointer) {
                problems.push(format!(
                    "eventTypes {name}: fields.{field} {pointer:?} is not a JSON Pointer: {why}"
                ));
            }
        }
        if !self.schema.is_object() {
            problems.push(format!(
                "eventTypes {name}: schema must be a JSON Schema object"
            ));
        } else if let Err(e) = jsonschema::validator_for(&self.schema) {
            problems.push(format!("eventTypes {name}: schema does not compile: {e}"));
        }
        if self.lifecycle.len() > MAX_LIFECYCLE {
            problems.push(format!(
                "eventTypes {name}: lifecycle lists {} types, more than {MAX_LIFECYCLE}",
                self.lifecycle.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for step in &self.lifecycle {
            if !seen.insert(step) {
                problems.push(format!("eventTypes {name}: lifecycle lists {step} twice"));
            }
        }
        problems
    }
}

/// Whether `name` can be a declared type's name (a path segment of its route).
fn is_type_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes
            .iter()
            .all(|b| edge(b) || matches!(b, b'-' | b'_' | b'.'))
}

/// Why `pointer` is not a non-empty JSON Pointer (RFC 6901), if it is not.
pub fn check_pointer(pointer: &str) -> Result<(), &'static str> {
    if pointer.is_empty() {
        return Err("it is empty (the whole payload is not a value hookline can read)");
    }
    if !pointer.starts_with('/') {
        return Err("it must start with /");
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err("~ must be followed by 0 or 1 (~0 is ~, ~1 is /)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refunds() -> DeclaredType {
        DeclaredType {
            name: "refunds".into(),
            schema: serde_json::json!({"type": "object"}),
            fields: FieldPointers {
                provider_event_id: Some("/id".into()),
                event_type: "/type".into(),
                event_time: "/created".into(),
                user_id: "/data/user_id".into(),
                entity_id: "/data/refund_id".into(),
                status: None,
            },
            lifecycle: vec!["refund.created".into(), "refund.succeeded".into()],
        }
    }

    #[test]
    fn a_well_formed_type_has_no_problems_and_ranks_by_position() {
        let t = refunds();
        assert_eq!(t.problems(), Vec::<String>::new());
        assert_eq!(
            t.ranks(),
            [("refund.created".into(), 0), ("refund.succeeded".into(), 1)]
        );
    }

    #[test]
    fn a_broken_pointer_is_named_with_its_field() {
        let mut t = refunds();
        t.fields.entity_id = "data/refund_id".into();
        t.fields.status = Some("/data/~2".into());
        let problems = t.problems();
        assert!(
            problems.iter().any(|p| p.contains("fields.entityId")
                && p.contains("\"data/refund_id\"")
                && p.contains("start with /")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("fields.status") && p.contains("~ must be followed")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_built_in_name_or_a_bad_name_is_refused() {
        let mut t = refunds();
        t.name = "orders".into();
        assert!(t.problems()[0].contains("built in"));
        t.name = "Refunds/x".into();
        assert!(t.problems()[0].contains("lowercase"));
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        for good in ["/a", "/a/b", "/a~0b", "/a~1b", "/", "/0"] {
            assert_eq!(check_pointer(good), Ok(()), "{good}");
        }
        for bad in ["", "a", "/a~", "/a~2"] {
            assert!(check_pointer(bad).is_err(), "{bad}");
        }
    }
}
