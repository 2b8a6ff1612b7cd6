//! The Secrets of a pipeline, read through the Kubernetes API: its Kafka TLS
//! and SASL Secrets for the operator's own admin client, its shards' URLs to
//! read what each shard can take. The operator serves pipelines in every
//! namespace, so it cannot mount their Secrets as its pods do.

use std::collections::BTreeMap;

use hookline_contract::pipeline::{SecretKeyRef, WebhookPipeline};
use hookline_kafka::ClientSettings;
use hookline_kafka::security::{Pem, Security};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Client, ResourceExt};

/// Why a Secret the pipeline names could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading Secret {name} failed")]
    Get {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {name} has no key {key}")]
    MissingKey { name: String, key: String },
    #[error("key {key} of Secret {name} is not UTF-8 text")]
    NotText { name: String, key: String },
}

/// The client settings of `pipeline`'s brokers, its TLS material handed to
/// librdkafka as PEM text and its SASL credentials read from its Secrets.
/// Each Secret is read once per call, however many keys it holds.
pub async fn kafka_settings(
    pipeline: &WebhookPipeline,
    client: &Client,
) -> Result<ClientSettings, SecretError> {
    let kafka = &pipeline.spec.kafka;
    let settings = ClientSettings::new(kafka.bootstrap_servers.clone());
    if kafka.tls.is_none() && kafka.sasl.is_none() {
        return Ok(settings);
    }
    let namespace = pipeline.namespace().unwrap_or_default();
    let secrets = read_secrets(client, &namespace, kafka.secret_refs()).await?;
    let value = |reference: &SecretKeyRef| value_of(&secrets, reference);
    let security = Security::resolve(kafka, |r| value(r).map(Pem::Text), value)?;
    Ok(settings.with_security(security))
}

/// The text of each of `references`, in their order, from the Secrets of
/// `namespace`; each Secret is read once, however many keys it holds.
pub async fn values(
    client: &Client,
    namespace: &str,
    references: &[&SecretKeyRef],
) -> Result<Vec<String>, SecretError> {
    let secrets = read_secrets(client, namespace, references.iter().copied()).await?;
    references
        .iter()
        .map(|reference| value_of(&secrets, reference))
        .collect()
}

/// The Secrets that `references` name, by name.
async fn read_secrets<'a>(
    client: &Client,
    namespace: &str,
    references: impl Iterator<Item = &'a SecretKeyRef>,
) -> Result<BTreeMap<String, Secret>, SecretError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut names: Vec<&str> = references.map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut secrets = BTreeMap::new();
    for name in names {
        let secret = api.get(name).await.map_err(|source| SecretError::Get {
            name: name.to_owned(),
            source,
        })?;
        secrets.insert(name.to_owned(), secret);
    }
    Ok(secrets)
}

/// The text of one key of the Secrets read.
fn value_of(
    secrets: &BTreeMap<String, Secret>,
    reference: &SecretKeyRef,
) -> Result<String, SecretError> {
    let missing = || SecretError::MissingKey {
        name: reference.name.clone(),
        key: reference.key.clone(),
    };
    let bytes = secrets
        .get(&reference.name)
        .and_then(|s| s.data.as_ref())
        .and_then(|data| data.get(&reference.key))
        .ok_or_else(missing)?;
    let text = String::from_utf8(bytes.0.clone()).map_err(|_| SecretError::NotText {
        name: reference.name.clone(),
        key: reference.key.clone(),
    })?;
    // A value written with `echo` ends with a newline that is no part of a
    // password; the same trimming as for mounted files.
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}
