//! Client settings: every librdkafka client hookline creates starts here, so
//! the broker facts below hold for all of them and a new connection setting
//! (TLS, SASL) is added once.

use hookline_contract::pipeline::KafkaSpec;
use hookline_contract::secrets::{SecretError, SecretsDir};
use rdkafka::ClientConfig;

use crate::security::Security;

/// Produce requests a producer keeps in flight on one connection (see
/// [`ClientSettings::producer`]).
pub const PRODUCER_MAX_IN_FLIGHT: u32 = 3;

/// How the clients of one pipeline reach its broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    bootstrap_servers: String,
    security: Security,
}

impl ClientSettings {
    /// Plaintext settings for the comma-separated `host:port` list
    /// `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            security: Security::default(),
        }
    }

    /// The settings of a pipeline's `spec.kafka`, its TLS and SASL Secrets
    /// read as files of `secrets`.
    pub fn of(kafka: &KafkaSpec, secrets: &SecretsDir) -> Result<Self, SecretError> {
        Ok(Self::new(kafka.bootstrap_servers.clone())
            .with_security(Security::from_files(kafka, secrets)?))
    }

    /// These settings with TLS and SASL as `security` says.
    pub fn with_security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// What every client shares. Topics are the operator's to create, with
    /// their partition counts: neither a produce nor a metadata request may
    /// create one with the broker's defaults.
    fn base(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            .set("allow.auto.create.topics", "false");
        self.security.apply(&mut config);
        config
    }

    /// An idempotent producer with `acks=all` that never expires a record in
    /// its queue, placing keys with murmur2.
    ///
    /// librdkafka's default partitioner is CRC32; murmur2 places keys as the
    /// Java client does, which the workers' routing check expects. A record
    /// whose local timeout ran out makes librdkafka bump the producer epoch,
    /// which some brokers mishandle (tansu 0.6.0 then fails every request); a
    /// caller that cannot wait answers from its own deadline instead, and the
    /// record is still delivered once the broker is back.
    ///
    /// At most [`PRODUCER_MAX_IN_FLIGHT`] requests in flight: librdkafka
    /// 2.12.1's idempotent producer holds a partition back once it has five
    /// *messages* in flight (it compares its in-flight message count with the
    /// limit of five *requests*, `rd_kafka_toppar_producer_serve`), yet has
    /// already set its wake-up to "now" for a batch whose linger ran out, so
    /// its broker thread polls with a zero timeout until an ack comes, unless
    /// a request of another partition is waiting in the output queue (which
    /// sets no wake-up). With three requests in flight, a fourth busy
    /// partition on the connection always has one waiting. Measured on tansu
    /// (`kafka/tests/producer_cpu.rs`, 256 senders): the broker thread's CPU
    /// per record with four partitions fell from 26 µs to 1 µs (70 to 3 µs in
    /// `hookline-bench ingest`); one partition never spins; two still spin
    /// (8 µs against 9.5), which only one request in flight avoids, at a cost
    /// in rate and tail latency measured in the README.
    pub fn producer(&self, client_id: &str) -> ClientConfig {
        let mut config = self.base(client_id);
        config
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            .set(
                "max.in.flight.requests.per.connection",
                PRODUCER_MAX_IN_FLIGHT.to_string(),
            );
        config
    }

    /// A group member that commits by hand, only after its writes are
    /// durable, and starts a new group at the beginning of each partition.
    pub fn consumer(&self, client_id: &str, group: &str) -> ClientConfig {
        let mut config = self.base(client_id);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        config
    }

    /// A reader of partitions by assignment: never a group member, so the
    /// consumer's settings serve it as they are; `group` is where committed
    /// offsets are read and written (librdkafka needs a group even to read by
    /// assignment). A start offset the broker no longer keeps reads from the
    /// oldest record kept, not from the end.
    pub fn reader(&self, group: &str) -> ClientConfig {
        self.consumer("hookline-reader", group)
    }

    /// An admin client.
    pub fn admin(&self, client_id: &str) -> ClientConfig {
        self.base(client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Pem;
    use hookline_contract::pipeline::{KafkaSasl, KafkaTls, SaslMechanism, SecretKeyRef};

    fn get<'a>(config: &'a ClientConfig, key: &str) -> Option<&'a str> {
        config.get(key)
    }

    #[test]
    fn no_client_creates_topics() {
        let settings = ClientSettings::new("b:9092");
        for config in [
            settings.producer("p"),
            settings.consumer("c", "g"),
            settings.reader("g"),
            settings.admin("a"),
        ] {
            assert_eq!(get(&config, "allow.auto.create.topics"), Some("false"));
            assert_eq!(get(&config, "bootstrap.servers"), Some("b:9092"));
        }
    }

    fn secret(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.into(),
            key: key.into(),
        }
    }

    fn spec(tls: Option<KafkaTls>, sasl: Option<SaslMechanism>) -> KafkaSpec {
        KafkaSpec {
            bootstrap_servers: "b:9093".into(),
            topic_defaults: Default::default(),
            tls,
            sasl: sasl.map(|mechanism| KafkaSasl {
                mechanism,
                username_secret_ref: secret("kafka-user", "username"),
                password_secret_ref: secret("kafka-user", "password"),
            }),
        }
    }

    /// Every key a client gets beyond the plaintext ones, as librdkafka
    /// receives them: what SASL is tested by, as no broker here speaks it.
    fn security_keys(settings: &ClientSettings) -> Vec<(String, String)> {
        let plain = ClientSettings::new("b:9093").admin("a");
        let plain = plain.config_map();
        let config = settings.admin("a");
        let mut keys: Vec<(String, String)> = config
            .config_map()
            .into_keys()
            .filter(|k| *k == "security.protocol" || !plain.contains_key(k))
            // `config_map` hides the password; `get` does not.
            .map(|k| (k.to_owned(), config.get(k).unwrap_or_default().to_owned()))
            .collect();
        keys.sort();
        keys
    }

    /// Resolves `spec` with certificates as `/s/<name>/<key>` and every
    /// username and password as `<key>-value`.
    fn resolve(spec: &KafkaSpec) -> ClientSettings {
        let security = Security::resolve::<()>(
            spec,
            |r| Ok(Pem::File(format!("/s/{}/{}", r.name, r.key).into())),
            |r| Ok(format!("{}-value", r.key)),
        )
        .unwrap();
        ClientSettings::new("b:9093").with_security(security)
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.sort();
        pairs
    }

    #[test]
    fn without_tls_or_sasl_clients_speak_plaintext() {
        let settings = resolve(&spec(None, None));
        assert_eq!(
            security_keys(&settings),
            pairs(&[("security.protocol", "PLAINTEXT")])
        );
    }

    #[test]
    fn tls_with_a_ca_and_a_client_certificate_names_the_files() {
        let tls = KafkaTls {
            ca_secret_ref: Some(secret("kafka-ca", "ca.crt")),
            cert_secret_ref: Some(secret("hookline-kafka", "tls.crt")),
            key_secret_ref: Some(secret("hookline-kafka", "tls.key")),
        };
        assert_eq!(
            security_keys(&resolve(&spec(Some(tls), None))),
            pairs(&[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", "/s/kafka-ca/ca.crt"),
                ("ssl.certificate.location", "/s/hookline-kafka/tls.crt"),
                ("ssl.key.location", "/s/hookline-kafka/tls.key"),
            ])
        );
    }

    #[test]
    fn tls_without_a_ca_probes_the_system_roots() {
        assert_eq!(
            security_keys(&resolve(&spec(Some(KafkaTls::default()), None))),
            pairs(&[("security.protocol", "SSL"), ("ssl.ca.location", "probe")])
        );
    }

    #[test]
    fn scram_over_tls_is_sasl_ssl_with_the_mechanism_and_credentials() {
        for mechanism in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            let settings = resolve(&spec(Some(KafkaTls::default()), Some(mechanism)));
            assert_eq!(
                security_keys(&settings),
                pairs(&[
                    ("security.protocol", "SASL_SSL"),
                    ("ssl.ca.location", "probe"),
                    ("sasl.mechanism", mechanism.as_str()),
                    ("sasl.username", "username-value"),
                    ("sasl.password", "password-value"),
                ])
            );
            // librdkafka takes the same keys for every client kind.
            for config in [
                settings.producer("p"),
                settings.consumer("c", "g"),
                settings.reader("g"),
            ] {
                assert_eq!(get(&config, "sasl.mechanism"), Some(mechanism.as_str()));
                assert_eq!(get(&config, "security.protocol"), Some("SASL_SSL"));
            }
            assert!(!format!("{settings:?}").contains("password-value"));
            // librdkafka itself accepts them: it is built with TLS and the
            // SCRAM mechanisms (creating a client with a mechanism it lacks
            // fails at once, before any connection).
            let client: Result<rdkafka::consumer::BaseConsumer, _> =
                settings.consumer("c", "g").create();
            assert!(client.is_ok(), "{mechanism:?}: {:?}", client.err());
        }
    }

    #[test]
    fn sasl_without_tls_is_sasl_plaintext() {
        let settings = resolve(&spec(None, Some(SaslMechanism::ScramSha256)));
        assert_eq!(
            get(&settings.admin("a"), "security.protocol"),
            Some("SASL_PLAINTEXT")
        );
        assert_eq!(get(&settings.admin("a"), "ssl.ca.location"), None);
    }

    #[test]
    fn pem_text_is_handed_over_as_pem() {
        let tls = KafkaTls {
            ca_secret_ref: Some(secret("kafka-ca", "ca.crt")),
            ..KafkaTls::default()
        };
        let security = Security::resolve::<()>(
            &spec(Some(tls), None),
            |_| Ok(Pem::Text("-----BEGIN CERTIFICATE-----".into())),
            |_| Ok(String::new()),
        )
        .unwrap();
        let config = ClientSettings::new("b").with_security(security).admin("a");
        assert_eq!(
            get(&config, "ssl.ca.pem"),
            Some("-----BEGIN CERTIFICATE-----")
        );
        assert_eq!(get(&config, "ssl.ca.location"), None);
    }

    #[test]
    fn missing_secret_files_are_named() {
        let dir = std::env::temp_dir().join(format!("hookline-kafka-{}", uuid::Uuid::new_v4()));
        let secrets = SecretsDir::new(&dir);
        let err = ClientSettings::of(&spec(None, Some(SaslMechanism::ScramSha512)), &secrets)
            .unwrap_err();
        assert!(err.to_string().contains("kafka-user/username"), "{err}");
    }

    #[test]
    fn producers_never_expire_records_and_place_keys_with_murmur2() {
        let config = ClientSettings::new("b:9092").producer("p");
        assert_eq!(get(&config, "message.timeout.ms"), Some("0"));
        assert_eq!(get(&config, "partitioner"), Some("murmur2_random"));
        assert_eq!(get(&config, "enable.idempotence"), Some("true"));
        assert_eq!(get(&config, "acks"), Some("all"));
        assert_eq!(
            get(&config, "max.in.flight.requests.per.connection"),
            Some("3")
        );
    }

    #[test]
    fn consumers_and_readers_commit_only_by_hand() {
        let settings = ClientSettings::new("b:9092");
        for config in [settings.consumer("c", "g"), settings.reader("g")] {
            assert_eq!(get(&config, "enable.auto.commit"), Some("false"));
            assert_eq!(get(&config, "group.id"), Some("g"));
        }
    }
}
