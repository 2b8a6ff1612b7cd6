use super::*;
use crate::fixtures::pipeline as valid;

const CHECKED_IN: &str = include_str!("../../../crds/webhookpipelines.hookline.dev.yaml");

fn schema() -> Value {
    let crd = definition();
    let version = &crd.spec.versions[0];
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .unwrap();
    serde_json::to_value(schema).unwrap()
}

#[test]
fn checked_in_crd_matches_the_generator() {
    assert!(
        yaml().unwrap() == CHECKED_IN,
        "crds/ is stale: run `cargo run -p hookline-operator --bin crdgen > crds/webhookpipelines.hookline.dev.yaml`"
    );
}

#[test]
fn schema_is_structural() {
    assert_eq!(structural_violations(&schema()), Vec::<String>::new());
}

#[test]
fn every_list_and_string_is_bounded_for_the_cel_cost_budget() {
    let mut spec = schema()["properties"]["spec"].clone();
    // The pod templates and the NetworkPolicy peers keep Kubernetes' own
    // schemas, unbounded as a Deployment's are: the API server estimates the
    // cost of a rule from what the rule reaches, and no rule reaches them.
    for pointer in [
        "/properties/ingest/properties/template",
        "/properties/ingest/properties/networkPolicy",
        "/properties/workers/properties/template",
    ] {
        let subtree = spec.pointer_mut(pointer).unwrap().take();
        assert!(
            !subtree.to_string().contains("x-kubernetes-validations"),
            "{pointer} holds a rule: bound it"
        );
    }
    assert_eq!(unbounded(&spec), Vec::<String>::new());
}

#[test]
fn pool_sizes_may_change_but_shard_names_may_not() {
    let old = valid().build();
    let mut tuned = old.clone();
    tuned.spec.shards[0].pool_size = Some(8);
    tuned.spec.shards[1].max_connections = Some(100);
    assert_eq!(
        messages(tuned.validate_cel_update(&old)),
        Vec::<String>::new()
    );
}

#[test]
fn topics_are_a_list_map_keyed_by_name() {
    let topics = &schema()["properties"]["spec"]["properties"]["topics"];
    assert_eq!(topics["x-kubernetes-list-type"], "map");
    assert_eq!(
        topics["x-kubernetes-list-map-keys"],
        serde_json::json!(["name"])
    );
}

#[test]
fn resource_has_status_subresource_short_name_and_columns() {
    let crd = definition();
    assert_eq!(crd.spec.names.short_names, Some(vec!["whp".to_owned()]));
    let version = &crd.spec.versions[0];
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, vec!["Ready", "Reason", "Topics", "Age"]);
}

#[test]
fn a_structural_violation_is_found() {
    let bad = serde_json::json!({"type": "object", "properties": {"a": {"$ref": "#/x"}, "b": {"type": "array"}}});
    let found = structural_violations(&bad);
    assert!(found.iter().any(|f| f.contains("$.a: $ref")), "{found:?}");
    assert!(
        found.iter().any(|f| f.contains("$.b: array without items")),
        "{found:?}"
    );
}

fn messages(result: Result<(), kube::core::cel::ValidationErrors>) -> Vec<String> {
    match result {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(|e| e.message.clone()).collect(),
    }
}

#[test]
fn valid_pipeline_and_valid_updates_pass() {
    let old = valid().build();
    assert_eq!(messages(old.validate_cel()), Vec::<String>::new());
    let grown = valid().with_partitions("orders.webhooks", 6).build();
    assert_eq!(
        messages(grown.validate_cel_update(&old)),
        Vec::<String>::new()
    );
    let added = valid().with_partitions("refunds.webhooks", 2).build();
    assert_eq!(
        messages(added.validate_cel_update(&old)),
        Vec::<String>::new()
    );
}

#[test]
fn partition_decrease_is_refused() {
    let old = valid()
        .without_topic("disputes.webhooks")
        .with_partitions("orders.webhooks", 4)
        .build();
    let new = valid()
        .without_topic("disputes.webhooks")
        .with_partitions("orders.webhooks", 2)
        .build();
    let found = messages(new.validate_cel_update(&old));
    assert!(
        found.iter().any(|m| m.contains("can never decrease")),
        "{found:?}"
    );
}

#[test]
fn partitions_not_a_multiple_of_the_shards_are_refused() {
    let found = messages(
        valid()
            .without_topic("disputes.webhooks")
            .with_partitions("orders.webhooks", 3)
            .build()
            .validate_cel(),
    );
    assert!(
        found
            .iter()
            .any(|m| m.contains("multiple of the shard count")),
        "{found:?}"
    );
}

#[test]
fn zero_partitions_are_refused() {
    let found = messages(
        valid()
            .without_topic("disputes.webhooks")
            .with_partitions("orders.webhooks", 0)
            .with_shards(1)
            .build()
            .validate_cel(),
    );
    assert!(found.iter().any(|m| m.contains("at least 1")), "{found:?}");
}

#[test]
fn changed_shard_list_is_refused() {
    let old = valid()
        .without_topic("disputes.webhooks")
        .with_partitions("orders.webhooks", 4)
        .build();
    let mut renamed = old.clone();
    renamed.spec.shards[1].name = "other".into();
    let more = valid()
        .without_topic("disputes.webhooks")
        .with_partitions("orders.webhooks", 4)
        .with_shards(4)
        .build();
    for new in [renamed, more] {
        let found = messages(new.validate_cel_update(&old));
        assert!(
            found.iter().any(|m| m.contains("shard list is immutable")),
            "{found:?}"
        );
    }
}

#[test]
fn an_event_type_that_names_no_type_is_refused() {
    let mut unknown = valid().build();
    unknown.spec.topics[1].event_type = "refundz".into();
    let found = messages(unknown.validate_cel());
    assert!(
        found
            .iter()
            .any(|m| m.contains("must name a built-in type")),
        "{found:?}"
    );
    let declared = valid().with_partitions("refunds.webhooks", 2).build();
    assert_eq!(messages(declared.validate_cel()), Vec::<String>::new());
}

#[test]
fn a_declared_type_with_a_broken_pointer_or_a_built_in_name_is_refused() {
    let mut broken = crate::fixtures::declared("refunds");
    broken.fields.entity_id = "data/refund_id".into();
    broken.fields.status = Some("/data/~2".into());
    let pipeline = valid().with_declared_type(broken, 2).build();
    let found = messages(pipeline.validate_cel());
    for field in ["fields.entityId", "fields.status"] {
        assert!(
            found
                .iter()
                .any(|m| m.contains(&format!("{field} must be a JSON Pointer"))),
            "{field}: {found:?}"
        );
    }
    let mut named_orders = crate::fixtures::declared("orders");
    named_orders.name = "orders".into();
    let mut pipeline = valid().build();
    pipeline.spec.event_types.push(named_orders);
    let found = messages(pipeline.validate_cel());
    assert!(
        found
            .iter()
            .any(|m| m.contains("orders and disputes are built in")),
        "{found:?}"
    );
}

#[test]
fn duplicate_topic_name_is_refused() {
    let mut duplicated = valid().build();
    duplicated.spec.topics[1].name = "orders.webhooks".into();
    let found = messages(duplicated.validate_cel());
    assert!(
        found
            .iter()
            .any(|m| m.contains("topic names must be unique")),
        "{found:?}"
    );
}

#[test]
fn overlong_pipeline_name_is_refused() {
    let long = valid().named(&"p".repeat(41), "uid-long").build();
    let found = messages(long.validate_cel());
    assert!(
        found.iter().any(|m| m.contains("at most 40 characters")),
        "{found:?}"
    );
    assert!(
        messages(
            valid()
                .named(&"p".repeat(40), "uid-ok")
                .build()
                .validate_cel()
        )
        .is_empty()
    );
}

#[test]
fn an_hmac_block_goes_with_the_hmac_scheme_only() {
    use hookline_contract::pipeline::{HmacAlgorithm, HmacSpec, SignatureEncoding, SourceScheme};

    let hmac = HmacSpec {
        header: "X-Signature".into(),
        algorithm: HmacAlgorithm::Sha256,
        encoding: SignatureEncoding::Hex,
        prefix: Some("sha256=".into()),
    };
    let mut configured = valid().with_source("legacy", SourceScheme::Hmac).build();
    configured.spec.sources[0].hmac = Some(hmac.clone());
    assert_eq!(messages(configured.validate_cel()), Vec::<String>::new());

    let bare = valid().with_source("legacy", SourceScheme::Hmac).build();
    let mut misplaced = valid().with_source("gh", SourceScheme::Github).build();
    misplaced.spec.sources[0].hmac = Some(hmac);
    for pipeline in [bare, misplaced] {
        let found = messages(pipeline.validate_cel());
        assert!(
            found
                .iter()
                .any(|m| m.contains("hmac is required when scheme is hmac, and only then")),
            "{found:?}"
        );
    }
}

#[test]
fn duplicate_source_names_are_refused() {
    use hookline_contract::pipeline::SourceScheme;

    let twice = valid()
        .with_source("gh", SourceScheme::Github)
        .with_source("gh", SourceScheme::Slack)
        .build();
    let found = messages(twice.validate_cel());
    assert!(
        found
            .iter()
            .any(|m| m.contains("source names must be unique")),
        "{found:?}"
    );
}

#[test]
fn the_sources_example_is_admitted_and_a_topic_of_no_type_in_it_is_not() {
    let text = include_str!("../../../examples/sources/pipeline.yaml");
    let example: WebhookPipeline = serde_saphyr::from_str(text).unwrap();
    assert_eq!(example.spec.event_types.len(), 2);
    assert_eq!(messages(example.validate_cel()), Vec::<String>::new());
    let broken: WebhookPipeline =
        serde_saphyr::from_str(&text.replace("eventType: issues,", "eventType: tickets,")).unwrap();
    assert!(
        messages(broken.validate_cel())
            .iter()
            .any(|m| m.contains("must name a built-in type")),
        "{:?}",
        messages(broken.validate_cel())
    );
}

#[test]
fn topics_that_share_a_worker_name_are_refused_at_admission() {
    for twin in ["orders_webhooks", "Orders-Webhooks", "orders.webhooks."] {
        let found = messages(valid().with_partitions(twin, 2).build().validate_cel());
        let named = format!("topics orders.webhooks and {twin} map to one Kubernetes name");
        assert!(
            found.iter().any(|m| m.contains(&named)),
            "{twin}: {found:?}"
        );
    }
    let distinct = valid().with_partitions("orders-webhooks2", 2).build();
    assert_eq!(messages(distinct.validate_cel()), Vec::<String>::new());
}

#[test]
fn adopt_is_an_optional_topic_field() {
    let topic = &schema()["properties"]["spec"]["properties"]["topics"]["items"];
    assert_eq!(topic["properties"]["adopt"]["type"], "boolean");
    assert!(
        !topic["required"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("adopt"))
    );
}
