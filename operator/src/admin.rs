//! The Kafka admin operations the operator needs, behind a trait: the rdkafka
//! implementation for real brokers, and a faithful in-memory fake for what a
//! local broker lacks (CreatePartitions) and for reconcile tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// How long an admin request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why an admin operation failed, by the broker's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("topic {topic}: invalid partition count: {message}")]
    InvalidPartitions { topic: String, message: String },
    #[error("the broker does not implement {0}")]
    Unsupported(&'static str),
    #[error("the broker did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the broker refused {operation}: {message}")]
    Broker {
        operation: &'static str,
        message: String,
    },
}

impl AdminError {
    /// A fixed label for metrics and condition reasons.
    pub const fn label(&self) -> &'static str {
        match self {
            AdminError::TopicAlreadyExists(_) => "topic_already_exists",
            AdminError::UnknownTopic(_) => "unknown_topic",
            AdminError::InvalidPartitions { .. } => "invalid_partitions",
            AdminError::Unsupported(_) => "unsupported",
            AdminError::Timeout(_) => "timeout",
            AdminError::Broker { .. } => "broker",
        }
    }
}

/// Topic administration.
#[async_trait]
pub trait KafkaAdmin: Send + Sync {
    /// Partition counts of those of `topics` that exist.
    async fn partitions(&self, topics: &[String]) -> Result<HashMap<String, i32>, AdminError>;
    /// Creates `topic` with `partitions` partitions.
    async fn create(&self, topic: &str, partitions: i32) -> Result<(), AdminError>;
    /// Grows `topic` to `partitions` partitions (CreatePartitions, KIP-195).
    async fn grow(&self, topic: &str, partitions: i32) -> Result<(), AdminError>;
    /// Deletes `topic`.
    async fn delete(&self, topic: &str) -> Result<(), AdminError>;
}

/// The admin API of a real broker, through librdkafka.
pub struct RdKafkaAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
}

impl RdKafkaAdmin {
    pub fn new(bootstrap_servers: &str) -> Result<Self, KafkaError> {
        let client = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("client.id", "hookline-operator")
            // Asking for a missing topic's metadata must not create it with
            // the broker's defaults before CreateTopics does, with ours.
            .set("allow.auto.create.topics", "false")
            .create()?;
        Ok(Self {
            client: Arc::new(client),
        })
    }

    fn options() -> AdminOptions {
        AdminOptions::new().operation_timeout(Some(TIMEOUT))
    }
}

fn from_code(operation: &'static str, topic: &str, code: RDKafkaErrorCode) -> AdminError {
    match code {
        RDKafkaErrorCode::TopicAlreadyExists => AdminError::TopicAlreadyExists(topic.to_owned()),
        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
            AdminError::UnknownTopic(topic.to_owned())
        }
        RDKafkaErrorCode::InvalidPartitions => AdminError::InvalidPartitions {
            topic: topic.to_owned(),
            message: code.to_string(),
        },
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion => {
            AdminError::Unsupported(operation)
        }
        RDKafkaErrorCode::RequestTimedOut | RDKafkaErrorCode::OperationTimedOut => {
            AdminError::Timeout(TIMEOUT)
        }
        other => AdminError::Broker {
            operation,
            message: other.to_string(),
        },
    }
}

fn from_kafka(operation: &'static str, topic: &str, error: KafkaError) -> AdminError {
    // A request the broker refused as a whole (tansu answers CreatePartitions
    // so) carries its code in AdminOp.
    if let KafkaError::AdminOp(code) = error {
        return from_code(operation, topic, code);
    }
    match error.rdkafka_error_code() {
        Some(code) => from_code(operation, topic, code),
        None => AdminError::Broker {
            operation,
            message: error.to_string(),
        },
    }
}

#[async_trait]
impl KafkaAdmin for RdKafkaAdmin {
    async fn partitions(&self, topics: &[String]) -> Result<HashMap<String, i32>, AdminError> {
        // One request per topic: a broker may list only some topics when asked
        // for all of them (tansu does), but answers for a named one. The call
        // blocks its thread.
        let client = self.client.clone();
        let topics = topics.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut seen = HashMap::new();
            for topic in topics {
                let metadata = match client.inner().fetch_metadata(Some(&topic), TIMEOUT) {
                    Ok(metadata) => metadata,
                    Err(error) => match from_kafka("Metadata", &topic, error) {
                        // Absent, which is an answer.
                        AdminError::UnknownTopic(_) => continue,
                        other => return Err(other),
                    },
                };
                for t in metadata.topics() {
                    if t.error().is_none() && t.name() == topic && !t.partitions().is_empty() {
                        seen.insert(topic.clone(), t.partitions().len() as i32);
                    }
                }
            }
            Ok(seen)
        })
        .await
        .map_err(|e| AdminError::Broker {
            operation: "Metadata",
            message: e.to_string(),
        })?
    }

    async fn create(&self, topic: &str, partitions: i32) -> Result<(), AdminError> {
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
        let results = self
            .client
            .create_topics(&[new], &Self::options())
            .await
            .map_err(|e| from_kafka("CreateTopics", topic, e))?;
        first_result("CreateTopics", topic, results)
    }

    async fn grow(&self, topic: &str, partitions: i32) -> Result<(), AdminError> {
        let count = usize::try_from(partitions).map_err(|_| AdminError::InvalidPartitions {
            topic: topic.to_owned(),
            message: format!("{partitions} is not a partition count"),
        })?;
        let results = self
            .client
            .create_partitions(&[NewPartitions::new(topic, count)], &Self::options())
            .await
            .map_err(|e| from_kafka("CreatePartitions", topic, e))?;
        first_result("CreatePartitions", topic, results)
    }

    async fn delete(&self, topic: &str) -> Result<(), AdminError> {
        let results = self
            .client
            .delete_topics(&[topic], &Self::options())
            .await
            .map_err(|e| from_kafka("DeleteTopics", topic, e))?;
        first_result("DeleteTopics", topic, results)
    }
}

fn first_result(
    operation: &'static str,
    topic: &str,
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
) -> Result<(), AdminError> {
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err((name, code))) => Err(from_code(operation, &name, code)),
        None => Err(AdminError::Broker {
            operation,
            message: format!("no result for {topic}"),
        }),
    }
}

/// An in-memory broker's admin API with the real semantics and error codes:
/// partitions only grow, creating an existing topic or touching a missing one
/// fails as a broker would say.
#[derive(Debug)]
pub struct FakeAdmin {
    topics: Mutex<BTreeMap<String, i32>>,
    supports_create_partitions: bool,
    requests: Mutex<Vec<String>>,
}

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
            supports_create_partitions,
            requests: Mutex::default(),
        }
    }

    /// The topics and their partition counts.
    pub fn topics(&self) -> BTreeMap<String, i32> {
        self.topics.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Every mutating request so far, as `Create t 4`, `Grow t 6`, `Delete t`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// A topic changed behind the operator's back (another tool grew it).
    pub fn set_partitions(&self, topic: &str, partitions: i32) {
        if let Ok(mut topics) = self.topics.lock() {
            topics.insert(topic.to_owned(), partitions);
        }
    }

    fn record(&self, request: String) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(request);
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

    async fn create(&self, topic: &str, partitions: i32) -> Result<(), AdminError> {
        self.record(format!("Create {topic} {partitions}"));
        self.with_topics(|all| {
            if all.contains_key(topic) {
                return Err(AdminError::TopicAlreadyExists(topic.to_owned()));
            }
            if partitions < 1 {
                return Err(AdminError::InvalidPartitions {
                    topic: topic.to_owned(),
                    message: "Number of partitions must be larger than 0.".to_owned(),
                });
            }
            all.insert(topic.to_owned(), partitions);
            Ok(())
        })
    }

    async fn grow(&self, topic: &str, partitions: i32) -> Result<(), AdminError> {
        self.record(format!("Grow {topic} {partitions}"));
        if !self.supports_create_partitions {
            return Err(AdminError::Unsupported("CreatePartitions"));
        }
        self.with_topics(|all| {
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
        })
    }

    async fn delete(&self, topic: &str) -> Result<(), AdminError> {
        self.record(format!("Delete {topic}"));
        self.with_topics(|all| {
            all.remove(topic)
                .map(|_| ())
                .ok_or_else(|| AdminError::UnknownTopic(topic.to_owned()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fake_refuses_what_a_broker_refuses() {
        let admin = FakeAdmin::default();
        admin.create("t", 4).await.unwrap();
        assert_eq!(
            admin.create("t", 4).await,
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
            admin.create("z", 0).await,
            Err(AdminError::InvalidPartitions { .. })
        ));
        admin.grow("t", 6).await.unwrap();
        assert_eq!(admin.topics(), BTreeMap::from([("t".to_owned(), 6)]));
    }

    #[tokio::test]
    async fn fake_without_create_partitions_answers_unsupported() {
        let admin = FakeAdmin::new(false);
        admin.create("t", 2).await.unwrap();
        assert_eq!(
            admin.grow("t", 4).await,
            Err(AdminError::Unsupported("CreatePartitions"))
        );
        assert_eq!(admin.topics()["t"], 2);
    }

    #[test]
    fn broker_codes_map_to_named_errors() {
        assert_eq!(
            from_code(
                "CreatePartitions",
                "t",
                RDKafkaErrorCode::UnsupportedFeature
            ),
            AdminError::Unsupported("CreatePartitions")
        );
        assert!(matches!(
            from_code("CreatePartitions", "t", RDKafkaErrorCode::InvalidPartitions),
            AdminError::InvalidPartitions { .. }
        ));
        assert_eq!(
            from_code("CreateTopics", "t", RDKafkaErrorCode::TopicAlreadyExists),
            AdminError::TopicAlreadyExists("t".into())
        );
    }
}
