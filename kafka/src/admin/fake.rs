//! A faithful in-memory fake of the admin API, for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{AdminError, KafkaAdmin};
use crate::topics::{BROKER_DEFAULT_REPLICATION, TopicSettings};

/// An in-memory broker's admin API with the real semantics and error codes:
/// partitions only grow, creating an existing topic or touching a missing one
/// fails as a broker would say, and a replication factor or topic config the
/// broker would refuse is refused with its code (INVALID_REPLICATION_FACTOR,
/// INVALID_CONFIG).
#[derive(Debug)]
pub struct FakeAdmin {
    topics: Mutex<BTreeMap<String, i32>>,
    /// The settings each topic was created with.
    settings: Mutex<BTreeMap<String, TopicSettings>>,
    supports_create_partitions: bool,
    /// Brokers in the cluster: the most replicas a partition can have.
    brokers: i32,
    /// What the cluster reports as its id.
    cluster_id: Option<String>,
    /// Each mutating request, with the time it arrived.
    requests: Mutex<Vec<(tokio::time::Instant, String)>>,
    /// How long the broker takes to answer a mutating request (the change
    /// itself is made when the request arrives, as a broker makes it).
    delay: Mutex<Duration>,
}

/// The topic configs the fake knows, with the least value Kafka accepts for
/// each (`LogConfig` in Kafka: `-1` means "forever" for retention).
const KNOWN_CONFIGS: &[(&str, i64)] = &[
    ("retention.ms", -1),
    ("retention.bytes", -1),
    ("max.message.bytes", 0),
    ("min.insync.replicas", 1),
    ("segment.bytes", 14),
];

/// The cluster id of a fake unless [`FakeAdmin::with_cluster_id`] says otherwise.
pub const FAKE_CLUSTER_ID: &str = "fake-cluster";

impl Default for FakeAdmin {
    fn default() -> Self {
        Self::new(true)
    }
}

impl FakeAdmin {
    /// A fake broker; without CreatePartitions support it answers as tansu
    /// does (UNSUPPORTED_FEATURE).
    pub fn new(supports_create_partitions: bool) -> Self {
        Self {
            topics: Mutex::default(),
            settings: Mutex::default(),
            supports_create_partitions,
            brokers: 1,
            cluster_id: Some(FAKE_CLUSTER_ID.to_owned()),
            requests: Mutex::default(),
            delay: Mutex::default(),
        }
    }

    /// A cluster of `brokers` brokers (one by default, as tansu is).
    pub fn with_brokers(mut self, brokers: i32) -> Self {
        self.brokers = brokers;
        self
    }

    /// A cluster reporting `id` (`None`: a broker that reports no id). Two
    /// fakes with one id stand for two ways of reaching one cluster.
    pub fn with_cluster_id(mut self, id: Option<&str>) -> Self {
        self.cluster_id = id.map(str::to_owned);
        self
    }

    /// The settings `topic` was created with, if the fake created it.
    pub fn settings(&self, topic: &str) -> Option<TopicSettings> {
        self.settings
            .lock()
            .ok()
            .and_then(|all| all.get(topic).cloned())
    }

    /// What the broker answers to a CreateTopics of `topic` with `settings`,
    /// in Kafka's own words.
    fn refusal(&self, topic: &str, settings: &TopicSettings) -> Option<AdminError> {
        let factor = settings.replication_factor;
        if factor != BROKER_DEFAULT_REPLICATION && factor < 1 {
            return Some(AdminError::InvalidReplicationFactor {
                topic: topic.to_owned(),
                message:
                    "Replication factor must be larger than 0, or -1 to use the default value."
                        .to_owned(),
            });
        }
        if factor > self.brokers {
            return Some(AdminError::InvalidReplicationFactor {
                topic: topic.to_owned(),
                message: format!(
                    "Unable to replicate the partition {factor} time(s): The target replication factor of {factor} cannot be reached because only {} broker(s) are registered.",
                    self.brokers
                ),
            });
        }
        for (name, value) in &settings.configs {
            let invalid = |why: String| AdminError::InvalidConfig {
                topic: topic.to_owned(),
                message: why,
            };
            let Some((_, least)) = KNOWN_CONFIGS.iter().find(|(known, _)| known == name) else {
                return Some(invalid(format!("Unknown topic config name: {name}")));
            };
            match value.parse::<i64>() {
                Ok(number) if number >= *least => {}
                Ok(_) => {
                    return Some(invalid(format!(
                        "Invalid value {value} for configuration {name}: Value must be at least {least}"
                    )));
                }
                Err(_) => {
                    return Some(invalid(format!(
                        "Invalid value {value} for configuration {name}: Not a number of type LONG"
                    )));
                }
            }
        }
        None
    }

    /// The topics and their partition counts.
    pub fn topics(&self) -> BTreeMap<String, i32> {
        self.topics.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Every mutating request so far, as `Create t 4`, `Grow t 6`, `Delete t`.
    pub fn requests(&self) -> Vec<String> {
        self.requests_at().into_iter().map(|(_, r)| r).collect()
    }

    /// Every mutating request so far, with the time it arrived.
    pub fn requests_at(&self) -> Vec<(tokio::time::Instant, String)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// From now on, mutating requests are answered after `delay`, as a
    /// broker busy with a large deletion answers.
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut current) = self.delay.lock() {
            *current = delay;
        }
    }

    async fn answer_late(&self) {
        let delay = self.delay.lock().map(|d| *d).unwrap_or_default();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// A topic changed behind the operator's back (another tool grew it).
    pub fn set_partitions(&self, topic: &str, partitions: i32) {
        if let Ok(mut topics) = self.topics.lock() {
            topics.insert(topic.to_owned(), partitions);
        }
    }

    fn record(&self, request: String) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push((tokio::time::Instant::now(), request));
        }
    }

    fn with_topics<T>(&self, f: impl FnOnce(&mut BTreeMap<String, i32>) -> T) -> T {
        match self.topics.lock() {
            Ok(mut topics) => f(&mut topics),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

#[async_trait]
impl KafkaAdmin for FakeAdmin {
    async fn partitions(&self, topics: &[String]) -> Result<HashMap<String, i32>, AdminError> {
        Ok(self.with_topics(|all| {
            topics
                .iter()
                .filter_map(|t| all.get(t).map(|p| (t.clone(), *p)))
                .collect()
        }))
    }

    async fn create(
        &self,
        topic: &str,
        partitions: i32,
        settings: &TopicSettings,
    ) -> Result<(), AdminError> {
        self.record(format!("Create {topic} {partitions}"));
        let created = self.with_topics(|all| {
            if all.contains_key(topic) {
                return Err(AdminError::TopicAlreadyExists(topic.to_owned()));
            }
            if partitions < 1 {
                return Err(AdminError::InvalidPartitions {
                    topic: topic.to_owned(),
                    message: "Number of partitions must be larger than 0.".to_owned(),
                });
            }
            if let Some(refusal) = self.refusal(topic, settings) {
                return Err(refusal);
            }
            all.insert(topic.to_owned(), partitions);
            if let Ok(mut recorded) = self.settings.lock() {
                recorded.insert(topic.to_owned(), settings.clone());
            }
            Ok(())
        });
        self.answer_late().await;
        created
    }

    async fn grow(&self, topic: &str, partitions: i32) -> Result<(), AdminError> {
        self.record(format!("Grow {topic} {partitions}"));
        if !self.supports_create_partitions {
            return Err(AdminError::Unsupported("CreatePartitions"));
        }
        let grown = self.with_topics(|all| {
            let Some(current) = all.get_mut(topic) else {
                return Err(AdminError::UnknownTopic(topic.to_owned()));
            };
            if partitions <= *current {
                // Kafka's own words for the same request.
                return Err(AdminError::InvalidPartitions {
                    topic: topic.to_owned(),
                    message: format!(
                        "Topic currently has {current} partitions, which is higher than or equal to the requested {partitions}."
                    ),
                });
            }
            *current = partitions;
            Ok(())
        });
        self.answer_late().await;
        grown
    }

    async fn delete(&self, topic: &str) -> Result<(), AdminError> {
        self.record(format!("Delete {topic}"));
        if let Ok(mut recorded) = self.settings.lock() {
            recorded.remove(topic);
        }
        let deleted = self.with_topics(|all| {
            all.remove(topic)
                .map(|_| ())
                .ok_or_else(|| AdminError::UnknownTopic(topic.to_owned()))
        });
        self.answer_late().await;
        deleted
    }

    async fn cluster_id(&self) -> Result<Option<String>, AdminError> {
        Ok(self.cluster_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_contract::pipeline::TopicDefaults;

    fn defaults() -> TopicSettings {
        TopicSettings::default()
    }

    #[tokio::test]
    async fn fake_records_the_settings_a_topic_was_created_with() {
        let admin = FakeAdmin::default().with_brokers(3);
        let defaults = TopicDefaults {
            replication_factor: Some(3),
            min_insync_replicas: Some(2),
        };
        let dlq = TopicSettings::dlq(&defaults);
        admin.create("t.DLQ", 1, &dlq).await.unwrap();
        assert_eq!(admin.settings("t.DLQ"), Some(dlq));
        admin.delete("t.DLQ").await.unwrap();
        assert_eq!(admin.settings("t.DLQ"), None);
    }

    #[tokio::test]
    async fn fake_refuses_settings_a_broker_refuses_with_its_codes() {
        let admin = FakeAdmin::default();
        let replicated = |factor| TopicSettings {
            replication_factor: factor,
            ..TopicSettings::default()
        };
        // One broker: three replicas cannot be placed; zero is never valid.
        for factor in [3, 0, -2] {
            assert!(
                matches!(
                    admin.create("t", 1, &replicated(factor)).await,
                    Err(AdminError::InvalidReplicationFactor { .. })
                ),
                "{factor}"
            );
        }
        for (name, value) in [
            ("min.insync.replicas", "0"),
            ("retention.ms", "-2"),
            ("max.message.bytes", "many"),
            ("no.such.config", "1"),
        ] {
            let settings = TopicSettings {
                configs: BTreeMap::from([(name.to_owned(), value.to_owned())]),
                ..TopicSettings::default()
            };
            assert!(
                matches!(
                    admin.create("t", 1, &settings).await,
                    Err(AdminError::InvalidConfig { .. })
                ),
                "{name}={value}"
            );
        }
        assert!(admin.topics().is_empty(), "nothing refused was created");
        // The broker's default replication and a DLQ's settings are fine.
        admin
            .create("t.DLQ", 1, &TopicSettings::dlq(&TopicDefaults::default()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn fake_refuses_what_a_broker_refuses() {
        let admin = FakeAdmin::default();
        admin.create("t", 4, &defaults()).await.unwrap();
        assert_eq!(
            admin.create("t", 4, &defaults()).await,
            Err(AdminError::TopicAlreadyExists("t".into()))
        );
        assert!(matches!(
            admin.grow("t", 4).await,
            Err(AdminError::InvalidPartitions { .. })
        ));
        assert!(matches!(
            admin.grow("t", 2).await,
            Err(AdminError::InvalidPartitions { .. })
        ));
        assert_eq!(
            admin.grow("missing", 8).await,
            Err(AdminError::UnknownTopic("missing".into()))
        );
        assert_eq!(
            admin.delete("missing").await,
            Err(AdminError::UnknownTopic("missing".into()))
        );
        assert!(matches!(
            admin.create("z", 0, &defaults()).await,
            Err(AdminError::InvalidPartitions { .. })
        ));
        admin.grow("t", 6).await.unwrap();
        assert_eq!(admin.topics(), BTreeMap::from([("t".to_owned(), 6)]));
    }

    #[tokio::test]
    async fn fake_without_create_partitions_answers_unsupported() {
        let admin = FakeAdmin::new(false);
        admin.create("t", 2, &defaults()).await.unwrap();
        assert_eq!(
            admin.grow("t", 4).await,
            Err(AdminError::Unsupported("CreatePartitions"))
        );
        assert_eq!(admin.topics()["t"], 2);
    }

    #[tokio::test]
    async fn fakes_report_the_cluster_id_they_were_given() {
        assert_eq!(
            FakeAdmin::default().cluster_id().await,
            Ok(Some(FAKE_CLUSTER_ID.to_owned()))
        );
        let (a, b) = (
            FakeAdmin::default().with_cluster_id(Some("one")),
            FakeAdmin::default().with_cluster_id(Some("one")),
        );
        assert_eq!(a.cluster_id().await, b.cluster_id().await);
        assert_eq!(
            FakeAdmin::default()
                .with_cluster_id(None)
                .cluster_id()
                .await,
            Ok(None)
        );
    }
}
