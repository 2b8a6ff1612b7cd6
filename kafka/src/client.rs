//! Client settings: every librdkafka client hookline creates starts here, so
//! the broker facts below hold for all of them and a new connection setting
//! (TLS, SASL) is added once.

use rdkafka::ClientConfig;

/// How the clients of one pipeline reach its broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    bootstrap_servers: String,
}

impl ClientSettings {
    /// Settings for the comma-separated `host:port` list `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
        }
    }

    /// The settings of a pipeline's `spec.kafka`.
    pub fn of(kafka: &hookline_contract::pipeline::KafkaSpec) -> Self {
        Self::new(kafka.bootstrap_servers.clone())
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
    pub fn producer(&self, client_id: &str) -> ClientConfig {
        let mut config = self.base(client_id);
        config
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0");
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

    #[test]
    fn producers_never_expire_records_and_place_keys_with_murmur2() {
        let config = ClientSettings::new("b:9092").producer("p");
        assert_eq!(get(&config, "message.timeout.ms"), Some("0"));
        assert_eq!(get(&config, "partitioner"), Some("murmur2_random"));
        assert_eq!(get(&config, "enable.idempotence"), Some("true"));
        assert_eq!(get(&config, "acks"), Some("all"));
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
