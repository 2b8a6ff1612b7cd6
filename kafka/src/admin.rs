//! The Kafka admin operations the operator and `hookline up` need, behind a
//! trait: the rdkafka implementation for real brokers here, and (with the
//! `testing` feature) a faithful in-memory fake in [`fake`] for what a local
//! broker lacks (CreatePartitions) and for reconcile tests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::client::ClientSettings;
use crate::topics::TopicSettings;

#[cfg(any(test, feature = "testing"))]
pub mod fake;
#[cfg(any(test, feature = "testing"))]
pub use fake::FakeAdmin;

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
    #[error("topic {topic}: invalid replication factor: {message}")]
    InvalidReplicationFactor { topic: String, message: String },
    #[error("topic {topic}: invalid topic config: {message}")]
    InvalidConfig { topic: String, message: String },
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
            AdminError::InvalidReplicationFactor { .. } => "invalid_replication_factor",
            AdminError::InvalidConfig { .. } => "invalid_config",
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
    /// Creates `topic` with `partitions` partitions, replicated and
    /// configured as `settings` say.
    async fn create(
        &self,
        topic: &str,
        partitions: i32,
        settings: &TopicSettings,
    ) -> Result<(), AdminError>;
    /// Grows `topic` to `partitions` partitions (CreatePartitions, KIP-195).
    async fn grow(&self, topic: &str, partitions: i32) -> Result<(), AdminError>;
    /// Deletes `topic`.
    async fn delete(&self, topic: &str) -> Result<(), AdminError>;
    /// The id the cluster reports (KIP-78), or `None` when its brokers report
    /// none: two bootstrap strings reach one cluster when the ids match.
    async fn cluster_id(&self) -> Result<Option<String>, AdminError>;
}

/// The admin API of a real broker, through librdkafka.
pub struct RdKafkaAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
}

impl RdKafkaAdmin {
    /// An admin client identified to the broker as `client_id`.
    pub fn new(settings: &ClientSettings, client_id: &str) -> Result<Self, KafkaError> {
        let client = settings.admin(client_id).create()?;
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
        RDKafkaErrorCode::InvalidReplicationFactor => AdminError::InvalidReplicationFactor {
            topic: topic.to_owned(),
            message: code.to_string(),
        },
        RDKafkaErrorCode::InvalidConfig => AdminError::InvalidConfig {
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

    async fn create(
        &self,
        topic: &str,
        partitions: i32,
        settings: &TopicSettings,
    ) -> Result<(), AdminError> {
        let new = settings.configs.iter().fold(
            NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(settings.replication_factor),
            ),
            |new, (name, value)| new.set(name, value),
        );
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

    async fn cluster_id(&self) -> Result<Option<String>, AdminError> {
        // librdkafka answers "no id" both when the broker reports none and
        // when it could not ask in time; a metadata request first tells the
        // two apart (and leaves the id cached for the second call). Both
        // calls block their thread.
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || {
            client
                .inner()
                .fetch_metadata(None, TIMEOUT)
                .map_err(|e| from_kafka("Metadata", "", e))?;
            Ok(client.inner().fetch_cluster_id(TIMEOUT))
        })
        .await
        .map_err(|e| AdminError::Broker {
            operation: "Metadata",
            message: e.to_string(),
        })?
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(
            from_code(
                "CreateTopics",
                "t",
                RDKafkaErrorCode::InvalidReplicationFactor
            ),
            AdminError::InvalidReplicationFactor { .. }
        ));
        assert!(matches!(
            from_code("CreateTopics", "t", RDKafkaErrorCode::InvalidConfig),
            AdminError::InvalidConfig { .. }
        ));
    }
}
