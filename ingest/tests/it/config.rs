//! Startup refuses a configuration it cannot serve safely, naming what is wrong.

use std::time::Duration;

use hookline_ingest::config::{Args, Config};

const MANIFEST: &str = r#"
apiVersion: hookline.dev/v1alpha1
kind: WebhookPipeline
metadata: {name: test}
spec:
  kafka: {bootstrapServers: "127.0.0.1:9"}
  topics: [{name: orders.webhooks, eventType: orders, partitions: 2}]
  shards: [{name: a, databaseUrlSecretRef: {name: pg-a, key: url}}]
  ingest: {signingSecretRef: {name: provider}}
"#;

fn args(dir: &std::path::Path) -> Args {
    Args {
        pipeline: dir.join("pipeline.yaml"),
        secrets_dir: dir.join("secrets"),
        listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: "127.0.0.1:0".parse().unwrap(),
        max_message_bytes: hookline_ingest::limits::KAFKA_DEFAULT_MESSAGE_MAX_BYTES,
        max_body_bytes: Some(1024),
        body_timeout: Duration::from_secs(1),
        max_reading_bytes: 1 << 20,
        timestamp_tolerance: Duration::from_secs(300),
        ack_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        producer_queue: 10,
        producer_queue_kbytes: 1024,
        max_concurrent_requests: 4,
        retry_after: Duration::from_secs(1),
        secrets_reload_interval: std::time::Duration::from_secs(5),
        log_format: None,
    }
}

fn setup(manifest: &str, secrets: &[(&str, &str)]) -> (tempfile::TempDir, Args) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pipeline.yaml"), manifest).unwrap();
    std::fs::create_dir_all(dir.path().join("secrets/provider")).unwrap();
    for (key, value) in secrets {
        std::fs::write(dir.path().join("secrets/provider").join(key), value).unwrap();
    }
    let args = args(dir.path());
    (dir, args)
}

fn load_error(args: &Args) -> String {
    match Config::load(args) {
        Ok(_) => panic!("configuration accepted"),
        Err(error) => format!("{error:#}"),
    }
}

#[test]
fn no_signing_secrets_is_refused_naming_both_files() {
    let (_dir, args) = setup(MANIFEST, &[]);
    let error = load_error(&args);
    assert!(error.contains("provider/standard-webhooks"), "{error}");
    assert!(error.contains("provider/stripe"), "{error}");
}

#[test]
fn empty_secret_file_is_refused_by_name() {
    let (_dir, args) = setup(MANIFEST, &[("stripe", "\n")]);
    let error = load_error(&args);
    assert!(error.contains("provider/stripe is empty"), "{error}");
}

#[test]
fn unusable_secret_line_is_refused_with_file_and_line() {
    let lines = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\nplaintext\n";
    let (_dir, args) = setup(MANIFEST, &[("standard-webhooks", lines)]);
    let error = load_error(&args);
    assert!(
        error.contains("provider/standard-webhooks: line 2"),
        "{error}"
    );
}

#[test]
fn missing_manifest_is_refused_by_name() {
    let (dir, args) = setup(MANIFEST, &[("stripe", "whsec_a_long_enough_secret")]);
    std::fs::remove_file(dir.path().join("pipeline.yaml")).unwrap();
    let error = load_error(&args);
    assert!(error.contains("pipeline.yaml"), "{error}");
}

#[test]
fn an_event_type_neither_built_in_nor_declared_is_refused() {
    let manifest = MANIFEST.replace("eventType: orders", "eventType: refunds");
    let (_dir, args) = setup(&manifest, &[("stripe", "whsec_a_long_enough_secret")]);
    let error = load_error(&args);
    assert!(
        error.contains(
            "eventType refunds names no type (built in: orders, disputes; declared: none)"
        ),
        "{error}"
    );
}

#[test]
fn ack_timeout_that_the_request_timeout_would_cut_is_refused() {
    let (_dir, mut args) = setup(MANIFEST, &[("stripe", "whsec_a_long_enough_secret")]);
    args.ack_timeout = Duration::from_secs(5);
    let error = load_error(&args);
    assert!(
        error.contains("--ack-timeout plus one second must not exceed --request-timeout"),
        "{error}"
    );
}

#[test]
fn body_timeout_that_the_request_timeout_would_cut_is_refused() {
    let (_dir, mut args) = setup(MANIFEST, &[("stripe", "whsec_a_long_enough_secret")]);
    args.body_timeout = Duration::from_secs(4);
    let error = load_error(&args);
    assert!(
        error.contains(
            "--body-timeout plus --ack-timeout plus one second must not exceed --request-timeout"
        ),
        "{error}"
    );
}

#[test]
fn body_limit_whose_dead_letter_would_not_fit_the_broker_is_refused() {
    let (_dir, mut args) = setup(MANIFEST, &[("stripe", "whsec_a_long_enough_secret")]);
    args.max_body_bytes = Some(1024 * 1024);
    let error = load_error(&args);
    assert!(
        error.contains("--max-body-bytes must leave 16 KiB of --max-message-bytes"),
        "{error}"
    );
    // A broker that takes larger records lets a 1 MiB body in.
    args.max_message_bytes = 2 * 1024 * 1024;
    args.max_reading_bytes = 4 * 1024 * 1024;
    assert!(Config::load(&args).is_ok());
}

#[test]
fn read_budget_smaller_than_one_body_is_refused() {
    let (_dir, mut args) = setup(MANIFEST, &[("stripe", "whsec_a_long_enough_secret")]);
    args.max_reading_bytes = 4096;
    let error = load_error(&args);
    assert!(
        error.contains("--max-reading-bytes must exceed --max-body-bytes"),
        "{error}"
    );
}

#[test]
fn placeholder_secret_is_refused_by_file_and_line() {
    let (_dir, args) = setup(MANIFEST, &[("standard-webhooks", "whsec_\n")]);
    let error = load_error(&args);
    assert!(
        error.contains("provider/standard-webhooks: line 1: a secret must be at least"),
        "{error}"
    );
}

#[test]
fn valid_configuration_loads() {
    let (_dir, args) = setup(
        MANIFEST,
        &[(
            "stripe",
            "whsec_first_long_secret\nwhsec_second_long_secret\n",
        )],
    );
    let config = Config::load(&args).unwrap();
    assert_eq!(
        config.topics(),
        vec!["orders.webhooks", "orders.webhooks.DLQ"]
    );
}
