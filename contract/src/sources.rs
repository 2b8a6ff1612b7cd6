//! `spec.sources`: the providers a pipeline takes webhooks from, each on
//! `POST /webhooks/{source}/{type}` with a scheme and secrets of its own.
//!
//! `POST /webhooks/{type}` stays the default source (`ingest.signingSecretRef`);
//! a named source adds a route, it never changes the default one.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::pipeline::SecretKeyRef;

/// Sources one pipeline may name: each is a route and a mounted Secret.
pub const MAX_SOURCES: usize = 32;

/// One provider endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(kube::KubeSchema))]
#[cfg_attr(
    feature = "kube",
    x_kube(validation = Rule::new("has(self.hmac) == (self.scheme == 'hmac')")
        .message("hmac is required when scheme is hmac, and only then"))
)]
#[serde(rename_all = "camelCase")]
pub struct SourceSpec {
    /// The `{source}` of `POST /webhooks/{source}/{type}`, the record's
    /// `hookline-source`, and part of every event id: a DNS label.
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    pub name: String,
    pub scheme: SourceScheme,
    /// The key holding the secrets, one per line (several during a rotation).
    pub secret_ref: SecretKeyRef,
    /// How the `hmac` scheme reads its signature; only with that scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacSpec>,
}

/// How a source's webhooks are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SourceScheme {
    /// `webhook-*` (or `svix-*`) headers; `whsec_`/`whpk_` secret lines.
    StandardWebhooks,
    /// `Stripe-Signature`.
    Stripe,
    /// `X-Hub-Signature-256`.
    Github,
    /// `X-Shopify-Hmac-Sha256`.
    Shopify,
    /// `X-Slack-Signature` over `v0:{timestamp}:{body}`.
    Slack,
    /// An HMAC of the raw body, read as `hmac` says.
    Hmac,
}

impl SourceScheme {
    /// The name the manifest spells.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::Stripe => "stripe",
            Self::Github => "github",
            Self::Shopify => "shopify",
            Self::Slack => "slack",
            Self::Hmac => "hmac",
        }
    }
}

/// Where and how the `hmac` scheme finds the signature of the raw body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HmacSpec {
    /// The request header carrying the signature (`X-Signature`).
    #[cfg_attr(
        feature = "kube",
        schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"))
    )]
    pub header: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    /// Text before the encoded signature in the header (`sha256=`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "kube", schemars(length(max = 64)))]
    pub prefix: Option<String>,
}

/// The hash under the HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    Sha256,
    /// Only for providers that still sign with it.
    Sha1,
    Sha512,
}

/// How the signature's bytes are written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "kube", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

/// Whether `name` is a DNS label: what Kubernetes names and URL paths take
/// without escaping.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether `name` is an HTTP header name (RFC 9110's token).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What is wrong with `sources`, in the words of [`crate::pipeline::PipelineSpec::problems`].
pub(crate) fn problems(sources: &[SourceSpec], problems: &mut Vec<String>) {
    if sources.len() > MAX_SOURCES {
        problems.push(format!(
            "sources: at most {MAX_SOURCES} sources, found {}",
            sources.len()
        ));
    }
    let mut names = HashSet::new();
    for source in sources {
        let name = &source.name;
        if !names.insert(name) {
            problems.push(format!("source {name} is listed twice"));
        }
        if !is_dns_label(name) {
            problems.push(format!(
                "source {name:?}: the name must be a DNS label (lowercase letters, digits and -, at most 63)"
            ));
        }
        if source.secret_ref.name.is_empty() || source.secret_ref.key.is_empty() {
            problems.push(format!("source {name}: secretRef needs a name and a key"));
        }
        match (&source.hmac, source.scheme) {
            (None, SourceScheme::Hmac) => problems.push(format!(
                "source {name}: scheme hmac needs an hmac block (header, algorithm, encoding)"
            )),
            (Some(_), scheme) if scheme != SourceScheme::Hmac => problems.push(format!(
                "source {name}: an hmac block goes only with scheme hmac, not {}",
                scheme.as_str()
            )),
            (Some(hmac), _) if !is_header_name(&hmac.header) => problems.push(format!(
                "source {name}: hmac.header {:?} is not an HTTP header name",
                hmac.header
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::{ManifestError, PipelineManifest};

    use super::*;

    const MANIFEST: &str = r#"
apiVersion: hookline.dev/v1alpha1
kind: WebhookPipeline
metadata: {name: payments}
spec:
  kafka: {bootstrapServers: "127.0.0.1:9092"}
  topics: [{name: orders.webhooks, eventType: orders, partitions: 2}]
  shards: [{name: a, databaseUrlSecretRef: {name: pg-a, key: url}}]
  ingest: {signingSecretRef: {name: provider-secrets}}
  sources:
    - {name: shop,   scheme: standard-webhooks, secretRef: {name: shop-secrets, key: keys}}
    - {name: stripe, scheme: stripe,            secretRef: {name: stripe, key: secrets}}
    - {name: gh,     scheme: github,            secretRef: {name: gh, key: secret}}
    - {name: store,  scheme: shopify,           secretRef: {name: shopify, key: secret}}
    - {name: chat,   scheme: slack,             secretRef: {name: slack, key: secret}}
    - name: legacy
      scheme: hmac
      secretRef: {name: legacy, key: secret}
      hmac: {header: X-Signature, algorithm: sha256, encoding: hex, prefix: "sha256="}
"#;

    fn problems_of(text: &str) -> Vec<String> {
        match PipelineManifest::from_yaml(text) {
            Ok(_) => Vec::new(),
            Err(ManifestError::Invalid(problems)) => problems,
            Err(other) => vec![other.to_string()],
        }
    }

    #[test]
    fn the_designs_sources_parse() {
        let spec = PipelineManifest::from_yaml(MANIFEST).unwrap().spec;
        let schemes: Vec<SourceScheme> = spec.sources.iter().map(|s| s.scheme).collect();
        assert_eq!(
            schemes,
            [
                SourceScheme::StandardWebhooks,
                SourceScheme::Stripe,
                SourceScheme::Github,
                SourceScheme::Shopify,
                SourceScheme::Slack,
                SourceScheme::Hmac
            ]
        );
        let legacy = spec.sources[5].hmac.as_ref().unwrap();
        assert_eq!(legacy.header, "X-Signature");
        assert_eq!(legacy.algorithm, HmacAlgorithm::Sha256);
        assert_eq!(legacy.encoding, SignatureEncoding::Hex);
        assert_eq!(legacy.prefix.as_deref(), Some("sha256="));
        assert_eq!(spec.sources[2].secret_ref.name, "gh");
    }

    #[test]
    fn a_pipeline_without_sources_has_none() {
        let text = MANIFEST.split("  sources:").next().unwrap();
        let spec = PipelineManifest::from_yaml(text).unwrap().spec;
        assert!(spec.sources.is_empty());
    }

    #[test]
    fn a_duplicate_source_name_is_refused() {
        let text = MANIFEST.replace("{name: store,", "{name: gh,");
        assert_eq!(problems_of(&text), ["source gh is listed twice"]);
    }

    #[test]
    fn an_hmac_source_without_its_hmac_block_is_refused() {
        let text = MANIFEST.replace(
            "\n      hmac: {header: X-Signature, algorithm: sha256, encoding: hex, prefix: \"sha256=\"}",
            "",
        );
        assert_eq!(
            problems_of(&text),
            ["source legacy: scheme hmac needs an hmac block (header, algorithm, encoding)"]
        );
    }

    #[test]
    fn an_hmac_block_on_another_scheme_is_refused() {
        let text = MANIFEST.replace("scheme: hmac", "scheme: github");
        assert_eq!(
            problems_of(&text),
            ["source legacy: an hmac block goes only with scheme hmac, not github"]
        );
    }

    #[test]
    fn a_bad_algorithm_or_encoding_is_refused_naming_the_choices() {
        let text = MANIFEST.replace("algorithm: sha256", "algorithm: md5");
        let problems = problems_of(&text);
        assert!(
            problems[0].contains("md5") && problems[0].contains("sha256"),
            "{problems:?}"
        );
        let text = MANIFEST.replace("encoding: hex", "encoding: base32");
        let problems = problems_of(&text);
        assert!(
            problems[0].contains("base32") && problems[0].contains("base64"),
            "{problems:?}"
        );
    }

    #[test]
    fn sha1_and_sha512_with_base64_are_accepted() {
        for algorithm in ["sha1", "sha512"] {
            let text = MANIFEST
                .replace("algorithm: sha256", &format!("algorithm: {algorithm}"))
                .replace("encoding: hex", "encoding: base64");
            assert_eq!(problems_of(&text), Vec::<String>::new());
        }
    }

    #[test]
    fn names_that_are_no_dns_label_and_bad_header_names_are_refused() {
        let text = MANIFEST
            .replace("{name: chat,", "{name: Chat_Ops,")
            .replace("header: X-Signature", "header: \"X Signature\"");
        let problems = problems_of(&text);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("source \"Chat_Ops\": the name must be a DNS label")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("hmac.header \"X Signature\" is not an HTTP header name")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_unknown_scheme_is_refused() {
        let text = MANIFEST.replace("scheme: slack", "scheme: discord");
        let problems = problems_of(&text);
        assert!(problems[0].contains("discord"), "{problems:?}");
    }
}
