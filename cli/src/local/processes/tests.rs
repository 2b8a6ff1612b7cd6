use std::collections::BTreeMap;
use std::path::Path;

use hookline_contract::pipeline::PipelineManifest;

use super::{Layout, specs};

const MANIFEST: &str = "apiVersion: hookline.dev/v1alpha1\nkind: WebhookPipeline\nmetadata: {name: t}\nspec:\n  kafka: {bootstrapServers: \"127.0.0.1:9092\"}\n  topics:\n    - {name: o, eventType: orders, partitions: 2}\n    - {name: d, eventType: disputes, partitions: 2}\n  shards:\n    - {name: a, databaseUrlSecretRef: {name: pg-a, key: url}}\n    - {name: b, databaseUrlSecretRef: {name: pg-b, key: url}}\n  ingest: {signingSecretRef: {name: provider}}\n";

fn layout() -> Layout<'static> {
    Layout {
        pipeline: Path::new("p.yaml"),
        secrets: Path::new("s"),
        logs: Path::new("l"),
        ingest_listen: "127.0.0.1:8080",
        ingest_metrics: "127.0.0.1:9099",
        first_worker_port: 9100,
        fetch_wait: std::time::Duration::from_millis(25),
    }
}

#[test]
fn one_worker_per_partition_the_broker_has_each_on_its_own_port() {
    let spec = PipelineManifest::from_yaml(MANIFEST).unwrap().spec;
    // The broker grew topic o to 4 partitions: 4 of its workers, 2 of d's.
    let grown = BTreeMap::from([("o".to_owned(), 4)]);
    let all = specs(&spec, &grown, &layout());
    let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ingest",
            "worker o-0",
            "worker o-1",
            "worker o-2",
            "worker o-3",
            "worker d-0",
            "worker d-1"
        ]
    );
    let health: Vec<String> = all[1..].iter().map(|w| w.health()).collect();
    assert_eq!(health[0], "http://127.0.0.1:9100/readyz");
    assert_eq!(health[5], "http://127.0.0.1:9105/readyz");
    // Pinned: each worker consumes its own partition, with the local
    // broker's short fetch wait, and joins no group.
    let flag =
        |args: &[String], name: &str| args.windows(2).find(|a| a[0] == name).map(|a| a[1].clone());
    assert_eq!(flag(&all[3].args, "--partition").as_deref(), Some("2"));
    assert_eq!(flag(&all[3].args, "--topic").as_deref(), Some("o"));
    assert_eq!(flag(&all[3].args, "--fetch-wait").as_deref(), Some("25ms"));
    assert_eq!(flag(&all[3].args, "--instance-id"), None);
    assert_eq!(specs(&spec, &BTreeMap::new(), &layout()).len(), 5);
}
