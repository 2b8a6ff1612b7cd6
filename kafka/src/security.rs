//! TLS and SASL to the brokers: a pipeline's `spec.kafka.tls` and
//! `spec.kafka.sasl` resolved to what librdkafka is given.
//!
//! The binaries read the referenced Secrets as files (mounted by the operator,
//! or under `--secrets-dir` on one machine) and hand librdkafka their paths;
//! the operator, which mounts no pipeline's Secrets, reads them through the
//! Kubernetes API and hands librdkafka the PEM text itself.

use std::fmt;
use std::path::PathBuf;

use hookline_contract::pipeline::{KafkaSpec, SaslMechanism, SecretKeyRef};
use hookline_contract::secrets::{SecretError, SecretsDir};
use rdkafka::ClientConfig;

/// A certificate or key: a file librdkafka opens, or its PEM text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Text(String),
}

/// TLS to the brokers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    /// The brokers' CA; `None`: the system's roots.
    pub ca: Option<Pem>,
    /// A client certificate and its key.
    pub client: Option<(Pem, Pem)>,
}

/// SASL credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

// The password never reaches a log through `{:?}` of the settings.
impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How the clients authenticate the brokers and themselves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Security {
    pub tls: Option<Tls>,
    pub sasl: Option<Sasl>,
}

impl Security {
    /// The security of `spec`, its certificates and keys as files of
    /// `secrets` and its credentials read from there; a missing or empty file
    /// is an error naming it.
    pub fn from_files(spec: &KafkaSpec, secrets: &SecretsDir) -> Result<Self, SecretError> {
        Self::resolve(
            spec,
            |reference| secrets.file(reference).map(Pem::File),
            |reference| secrets.read(reference),
        )
    }

    /// The security of `spec`, with `pem` giving each certificate or key and
    /// `value` each username or password.
    pub fn resolve<E>(
        spec: &KafkaSpec,
        mut pem: impl FnMut(&SecretKeyRef) -> Result<Pem, E>,
        mut value: impl FnMut(&SecretKeyRef) -> Result<String, E>,
    ) -> Result<Self, E> {
        let tls = match &spec.tls {
            None => None,
            Some(tls) => Some(Tls {
                ca: tls.ca_secret_ref.as_ref().map(&mut pem).transpose()?,
                // A certificate without its key is refused by the spec's
                // checks; here the pair is used only when both are given.
                client: match (&tls.cert_secret_ref, &tls.key_secret_ref) {
                    (Some(cert), Some(key)) => Some((pem(cert)?, pem(key)?)),
                    _ => None,
                },
            }),
        };
        let sasl = match &spec.sasl {
            None => None,
            Some(sasl) => Some(Sasl {
                mechanism: sasl.mechanism,
                username: value(&sasl.username_secret_ref)?,
                password: value(&sasl.password_secret_ref)?,
            }),
        };
        Ok(Self { tls, sasl })
    }

    /// librdkafka's `security.protocol` for these settings.
    pub fn protocol(&self) -> &'static str {
        match (&self.tls, &self.sasl) {
            (None, None) => "PLAINTEXT",
            (Some(_), None) => "SSL",
            (None, Some(_)) => "SASL_PLAINTEXT",
            (Some(_), Some(_)) => "SASL_SSL",
        }
    }

    /// Sets the security keys on `config`.
    pub(crate) fn apply(&self, config: &mut ClientConfig) {
        config.set("security.protocol", self.protocol());
        if let Some(tls) = &self.tls {
            match &tls.ca {
                Some(ca) => set_pem(config, "ssl.ca", ca),
                // OpenSSL's compiled-in default folder is not where every
                // image keeps its roots (distroless has only the bundle file):
                // `probe` makes librdkafka look in the usual places.
                None => {
                    config.set("ssl.ca.location", "probe");
                }
            }
            if let Some((cert, key)) = &tls.client {
                set_pem(config, "ssl.certificate", cert);
                set_pem(config, "ssl.key", key);
            }
        }
        if let Some(sasl) = &self.sasl {
            config
                .set("sasl.mechanism", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
    }
}

/// `<prefix>.location` for a file, `<prefix>.pem` for PEM text.
fn set_pem(config: &mut ClientConfig, prefix: &str, pem: &Pem) {
    match pem {
        Pem::File(path) => config.set(
            format!("{prefix}.location"),
            path.to_string_lossy().into_owned(),
        ),
        Pem::Text(text) => config.set(format!("{prefix}.pem"), text),
    };
}
