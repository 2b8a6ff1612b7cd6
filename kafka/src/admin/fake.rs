//! A faithful in-memory fake of the admin API, for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{AdminError, KafkaAdmin};

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
}
