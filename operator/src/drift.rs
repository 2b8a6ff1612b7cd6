//! Whether a child still holds what the operator applies to it.
//!
//! A digest of the last apply only says the spec did not change; a hand edit
//! of the child (an image, an env var, a port, a ConfigMap's data) leaves the
//! digest in place and would persist until the next spec change. So the live
//! object is compared with the desired one on the fields the operator sets,
//! and nothing else: what the API server defaults (`protocol: TCP`,
//! `terminationMessagePath`, …) and what others add (labels, annotations,
//! `status`) are not the operator's, and must not cost a write per resync.

use serde_json::Value;

/// Whether every field set in `desired` has the same value in `live`.
///
/// Objects: each key of `desired` must match in `live`; keys only `live` has
/// are someone else's. Lists: the same length, element by element, since a
/// list the operator sets (containers, env, ports, args) is replaced whole by
/// an apply and an extra or missing element is drift. An empty object or list
/// in `desired` matches a field `live` lacks: the API server drops empty
/// values.
pub fn holds(live: &Value, desired: &Value) -> bool {
    match desired {
        Value::Object(fields) => fields.iter().all(|(key, want)| match live.get(key) {
            Some(have) => holds(have, want),
            None => is_empty(want),
        }),
        Value::Array(items) => match live {
            Value::Array(have) => {
                have.len() == items.len() && have.iter().zip(items).all(|(h, w)| holds(h, w))
            }
            Value::Null => items.is_empty(),
            _ => false,
        },
        Value::Null => true,
        scalar => live == scalar,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(is_empty),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(image: &str) -> Value {
        json!({
            "metadata": {"name": "p-ingest", "labels": {"app": "ingest"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{
                "name": "ingest", "image": image,
                "env": [{"name": "A", "value": "1"}],
                "ports": [{"containerPort": 8080}],
            }]}}},
        })
    }

    #[test]
    fn an_unchanged_child_holds_what_was_applied() {
        assert!(holds(&deployment("i:1"), &deployment("i:1")));
    }

    #[test]
    fn defaults_and_fields_of_others_are_not_drift() {
        let mut live = deployment("i:1");
        live["metadata"]["labels"]["team"] = "payments".into();
        live["metadata"]["resourceVersion"] = "7".into();
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP".into();
        live["status"] = json!({"readyReplicas": 2});
        assert!(holds(&live, &deployment("i:1")));
    }

    #[test]
    fn an_edited_image_is_drift() {
        assert!(!holds(&deployment("i:hand"), &deployment("i:1")));
    }

    #[test]
    fn an_edited_or_added_env_var_is_drift() {
        let mut edited = deployment("i:1");
        edited["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2".into();
        assert!(!holds(&edited, &deployment("i:1")));
        let mut added = deployment("i:1");
        added["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "B", "value": "x"}));
        assert!(!holds(&added, &deployment("i:1")));
    }

    #[test]
    fn a_removed_field_is_drift_but_an_empty_one_is_not() {
        let mut live = deployment("i:1");
        live["spec"].as_object_mut().unwrap().remove("replicas");
        assert!(!holds(&live, &deployment("i:1")));
        let mut desired = deployment("i:1");
        desired["spec"]["template"]["metadata"] = json!({"annotations": {}});
        assert!(holds(&deployment("i:1"), &desired));
    }
}
