//! The status a reconcile writes: pure functions from what it saw to the
//! conditions `Ready`, `TopicsReady`, `WorkersReady` and `IngestReady`.

use hookline_contract::status::{TopicStatus, WebhookPipelineStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use hookline_kafka::admin::AdminError;

use crate::health::{Problem, Standing};
use crate::shard_limits::{Reading, ShardLimit};

/// Condition types.
pub const READY: &str = "Ready";
pub const TOPICS_READY: &str = "TopicsReady";
pub const WORKERS_READY: &str = "WorkersReady";
pub const INGEST_READY: &str = "IngestReady";
/// Whether the workers' pools fit what each shard can take. A warning: it
/// never makes the pipeline not Ready, since the pools open lazily and a
/// shard refuses only the connections beyond its limit.
pub const SHARD_CONNECTIONS: &str = "ShardConnections";

/// The connections the workers may open to one shard, against what the shard
/// can take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardDemand {
    pub shard: String,
    /// Worker pods over all topics × the shard's pool size.
    pub demand: i64,
    pub limit: Limit,
}

/// What a shard can take, as far as the operator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// Read from the shard: the truth, whatever the spec states.
    Read(ShardLimit),
    /// The shard could not be read (`why`): the spec's `maxConnections`,
    /// when it states one, stands in.
    Unread { why: String, stated: Option<i32> },
}

impl Limit {
    /// The connections left for hookline, when known.
    fn available(&self) -> Option<i64> {
        match self {
            Limit::Read(limit) => Some(limit.available()),
            Limit::Unread { stated, .. } => stated.map(i64::from),
        }
    }

    /// Where [`Limit::available`] comes from.
    fn describe(&self) -> String {
        match self {
            Limit::Read(l) => format!(
                "it takes {} (max_connections {} less {} reserved and {} held by other users)",
                l.available(),
                l.max_connections,
                l.reserved,
                l.others
            ),
            Limit::Unread {
                why,
                stated: Some(max),
            } => format!("maxConnections is {max} (stated; the shard could not be read: {why})"),
            Limit::Unread { why, stated: None } => {
                format!("the shard could not be read ({why}) and no maxConnections is stated")
            }
        }
    }
}

/// Each shard's demand: every worker pod (one per partition Kafka has, by
/// topic in `partitions`) opens a pool of the shard's `poolSize` to every
/// shard, so a shard may see Σ partitions × poolSize connections. `read` is
/// what each shard said, by name; a shard missing from it counts as unread.
pub fn shard_demand(
    spec: &hookline_contract::pipeline::PipelineSpec,
    partitions: &std::collections::BTreeMap<String, i32>,
    read: &std::collections::BTreeMap<String, Reading>,
) -> Vec<ShardDemand> {
    let pods: i64 = spec
        .topics
        .iter()
        .map(|t| i64::from(partitions.get(&t.name).copied().unwrap_or(t.partitions)))
        .sum();
    spec.shards
        .iter()
        .map(|shard| {
            let limit = match read.get(&shard.name) {
                Some(Ok(limit)) => Limit::Read(*limit),
                Some(Err(why)) => Limit::Unread {
                    why: why.clone(),
                    stated: shard.max_connections,
                },
                None => Limit::Unread {
                    why: "not read yet".to_owned(),
                    stated: shard.max_connections,
                },
            };
            ShardDemand {
                shard: shard.name.clone(),
                demand: pods * i64::from(shard.pool_size()),
                limit,
            }
        })
        .collect()
}

/// The `ShardConnections` condition for `demands`: `PoolsExceedShard` when
/// any shard may be asked for more than it takes, else `PoolsFit` when every
/// shard was read, else `Unchecked`, naming each shard not read and why.
fn shard_connections(demands: &[ShardDemand]) -> (bool, &'static str, String) {
    let over: Vec<String> = demands
        .iter()
        .filter_map(|d| {
            let available = d.limit.available()?;
            (d.demand > available).then(|| {
                format!(
                    "shard {}: workers may open {} connections, {}",
                    d.shard,
                    d.demand,
                    d.limit.describe()
                )
            })
        })
        .collect();
    if !over.is_empty() {
        return (
            false,
            "PoolsExceedShard",
            format!(
                "{}; lower shards[].poolSize or the partitions, or raise the shard's max_connections",
                over.join("; ")
            ),
        );
    }
    let unread: Vec<String> = demands
        .iter()
        .filter(|d| matches!(d.limit, Limit::Unread { .. }))
        .map(|d| match d.limit.available() {
            Some(_) => format!(
                "shard {}: workers may open {} connections, which fit: {}",
                d.shard,
                d.demand,
                d.limit.describe()
            ),
            None => format!("shard {}: {}", d.shard, d.limit.describe()),
        })
        .collect();
    if demands.is_empty() {
        (true, "Unchecked", "the spec names no shard".to_owned())
    } else if unread.is_empty() {
        let fits: Vec<String> = demands
            .iter()
            .map(|d| {
                format!(
                    "shard {}: {} connections, {}",
                    d.shard,
                    d.demand,
                    d.limit.describe()
                )
            })
            .collect();
        (
            true,
            "PoolsFit",
            format!(
                "the workers' pools fit every shard as read from it: {}",
                fits.join("; ")
            ),
        )
    } else {
        (true, "Unchecked", unread.join("; "))
    }
}

/// Why the topics are not as the spec asks, most important first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicProblem {
    /// Another, older pipeline claims the topic on the same cluster, or on a
    /// cluster whose id is not known yet (`cluster_known` false).
    Conflict {
        topic: String,
        owner: String,
        cluster_known: bool,
    },
    /// The topic existed before the pipeline named it, and the spec does not
    /// adopt it.
    Exists { topic: String },
    /// The spec asks for fewer partitions than before; Kafka cannot shrink.
    Decrease { topic: String, from: i32, to: i32 },
    /// The broker does not implement CreatePartitions.
    Unsupported { topic: String, have: i32, want: i32 },
    /// Any other refusal or an unreachable broker.
    Kafka { topic: String, error: AdminError },
}

impl TopicProblem {
    fn reason(&self) -> &'static str {
        match self {
            TopicProblem::Conflict { .. } => "TopicConflict",
            TopicProblem::Exists { .. } => "TopicExists",
            TopicProblem::Decrease { .. } => "PartitionDecrease",
            TopicProblem::Unsupported { .. } => "BrokerUnsupported",
            TopicProblem::Kafka { .. } => "KafkaError",
        }
    }

    fn message(&self) -> String {
        match self {
            TopicProblem::Conflict {
                topic,
                owner,
                cluster_known: true,
            } => format!(
                "topic {topic} is already managed by pipeline {owner} on the same cluster; this pipeline leaves it alone"
            ),
            TopicProblem::Conflict {
                topic,
                owner,
                cluster_known: false,
            } => format!(
                "topic {topic} is also named by the older pipeline {owner}, and whether both are on one cluster is not known (a pipeline records its brokers' cluster id once reconciled; brokers that report none cannot be told apart); this pipeline leaves it alone"
            ),
            TopicProblem::Exists { topic } => format!(
                "topic {topic} existed before this pipeline named it, so it is not this pipeline's and nothing was changed; set adopt: true on the topic to use it as it is (never grown, never deleted), or name another topic"
            ),
            TopicProblem::Decrease { topic, from, to } => format!(
                "topic {topic}: partitions cannot go from {from} down to {to}; Kafka cannot remove partitions, so the topic and its workers stay at {from}"
            ),
            TopicProblem::Unsupported { topic, have, want } => format!(
                "topic {topic} has {have} partitions and the spec asks for {want}, but this broker does not implement CreatePartitions (KIP-195); grow the topic with the broker's own tools, or use a broker that supports it (Apache Kafka, Redpanda, every managed Kafka); workers stay at {have}"
            ),
            TopicProblem::Kafka { topic, error } => format!("topic {topic}: {error}"),
        }
    }
}

/// What a reconcile saw, to write down.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub generation: Option<i64>,
    pub topics: Vec<TopicStatus>,
    pub problems: Vec<TopicProblem>,
    /// Topics with more partitions in Kafka than in the spec.
    pub adopted: Vec<String>,
    /// (ready, wanted) worker replicas over all topics.
    pub workers: (i32, i32),
    /// (ready, wanted) ingest replicas.
    pub ingest: (i32, i32),
    /// Why the workers' pods are not ready, when Kubernetes said.
    pub workers_problem: Option<Problem>,
    /// Why the ingest pods are not ready, when Kubernetes said.
    pub ingest_problem: Option<Problem>,
    /// Connections the workers may open to each shard.
    pub shards: Vec<ShardDemand>,
    /// The id the brokers report, when they do.
    pub cluster_id: Option<String>,
    /// What is wrong with the spec that admission could not judge (a
    /// declared type's schema that does not compile): nothing is applied.
    pub invalid: Vec<String>,
}

/// The status for `observed`, keeping the transition times of `previous`'s
/// conditions whose status did not change.
pub fn build(
    observed: &Observed,
    previous: Option<&WebhookPipelineStatus>,
    now: Time,
) -> WebhookPipelineStatus {
    let topics = match observed.problems.first() {
        Some(problem) => (false, problem.reason(), problem.message()),
        None if !observed.adopted.is_empty() => (
            true,
            "SpecBehind",
            format!(
                "partitions were added outside the operator to {}; workers follow the broker; raise the spec to match",
                observed.adopted.join(", ")
            ),
        ),
        None => (
            true,
            "TopicsReady",
            "every topic and DLQ exists with its partitions".to_owned(),
        ),
    };
    let replicas = |(ready, wanted): (i32, i32), problem: &Option<Problem>, what: &str| {
        let counted = format!("{ready} of {wanted} {what} ready");
        match problem {
            // What Kubernetes said of the pods outranks the count: a rollout
            // stuck behind a crashlooping pod may still count every replica.
            Some(problem) => (
                problem.standing.as_str(),
                problem.reason.clone(),
                format!("{counted}; {}", problem.message),
            ),
            None if ready >= wanted => ("True", "Available".to_owned(), counted),
            None => ("False", "Progressing".to_owned(), counted),
        }
    };
    let workers = replicas(
        observed.workers,
        &observed.workers_problem,
        "worker replicas",
    );
    let ingest = replicas(observed.ingest, &observed.ingest_problem, "ingest replicas");
    let topics = (status_of(topics.0), topics.1.to_owned(), topics.2);
    let invalid = (!observed.invalid.is_empty()).then(|| {
        (
            "False",
            "InvalidSpec".to_owned(),
            format!(
                "the spec cannot work, so nothing was applied: {}",
                observed.invalid.join("; ")
            ),
        )
    });
    // Ready is False when anything is, else Unknown when anything is.
    let parts: Vec<_> = invalid.iter().chain([&topics, &workers, &ingest]).collect();
    let ready = [Standing::False, Standing::Unknown]
        .iter()
        .find_map(|standing| parts.iter().find(|(s, _, _)| *s == standing.as_str()))
        .map_or(
            (
                "True",
                "Ready".to_owned(),
                "the pipeline is ready".to_owned(),
            ),
            |(status, reason, message)| (*status, reason.clone(), message.clone()),
        );
    let (shards_ok, shards_reason, shards_message) = shard_connections(&observed.shards);
    let shards = (
        status_of(shards_ok),
        shards_reason.to_owned(),
        shards_message,
    );
    let conditions = [
        (READY, ready),
        (TOPICS_READY, topics),
        (WORKERS_READY, workers),
        (INGEST_READY, ingest),
        (SHARD_CONNECTIONS, shards),
    ]
    .into_iter()
    .map(|(kind, (status, reason, message))| {
        let since = previous
            .and_then(|p| {
                p.conditions
                    .iter()
                    .find(|c| c.type_ == kind && c.status == status)
            })
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason,
            message,
            last_transition_time: since,
            observed_generation: observed.generation,
        }
    })
    .collect();
    WebhookPipelineStatus {
        observed_generation: observed.generation,
        conditions,
        topics: observed.topics.clone(),
        cluster_id: observed.cluster_id.clone(),
    }
}

const fn status_of(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// The condition `kind` of `status`.
pub fn condition<'a>(status: &'a WebhookPipelineStatus, kind: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn healthy() -> Observed {
        Observed {
            generation: Some(3),
            workers: (6, 6),
            ingest: (2, 2),
            ..Observed::default()
        }
    }

    fn demand(demand: i64, limit: Limit) -> ShardDemand {
        ShardDemand {
            shard: "a".into(),
            demand,
            limit,
        }
    }

    fn read(max_connections: i64) -> Limit {
        Limit::Read(ShardLimit {
            max_connections,
            reserved: 3,
            others: 7,
        })
    }

    fn unread(stated: Option<i32>) -> Limit {
        Limit::Unread {
            why: "connecting to the shard failed: refused".into(),
            stated,
        }
    }

    fn shard_condition(shards: Vec<ShardDemand>) -> Condition {
        let status = build(
            &Observed {
                shards,
                ..healthy()
            },
            None,
            at(0),
        );
        assert_eq!(condition(&status, READY).unwrap().status, "True");
        condition(&status, SHARD_CONNECTIONS).unwrap().clone()
    }

    #[test]
    fn pools_beyond_what_a_shard_takes_warn_without_unreadying() {
        let warning = shard_condition(vec![demand(96, read(100))]);
        assert_eq!(
            (warning.status.as_str(), warning.reason.as_str()),
            ("False", "PoolsExceedShard")
        );
        assert!(
            warning.message.contains(
                "shard a: workers may open 96 connections, it takes 90 (max_connections 100 less 3 reserved and 7 held by other users)"
            ),
            "{}",
            warning.message
        );
    }

    #[test]
    fn the_limit_read_from_the_shard_outranks_the_stated_one() {
        // The spec states 40, but the shard was read: 90 it is.
        let mut spec = crate::fixtures::pipeline().with_shards(1).build().spec;
        spec.shards[0].max_connections = Some(40);
        spec.shards[0].pool_size = Some(8);
        let readings = std::collections::BTreeMap::from([(
            "s0".to_owned(),
            Ok(ShardLimit {
                max_connections: 100,
                reserved: 3,
                others: 7,
            }),
        )]);
        let demands = shard_demand(&spec, &Default::default(), &readings);
        assert_eq!(demands[0].demand, (4 + 2) * 8);
        let fits = shard_connections(&demands);
        assert_eq!((fits.0, fits.1), (true, "PoolsFit"), "{}", fits.2);
        assert!(
            fits.2.contains("shard s0: 48 connections, it takes 90"),
            "{}",
            fits.2
        );
    }

    #[test]
    fn an_unread_shard_falls_back_to_the_stated_limit_and_says_why() {
        let over = shard_condition(vec![demand(48, unread(Some(40)))]);
        assert_eq!(
            (over.status.as_str(), over.reason.as_str()),
            ("False", "PoolsExceedShard")
        );
        assert!(
            over.message.contains(
                "shard a: workers may open 48 connections, maxConnections is 40 (stated; the shard could not be read: connecting to the shard failed: refused)"
            ),
            "{}",
            over.message
        );
        let fits = shard_condition(vec![demand(40, unread(Some(40)))]);
        assert_eq!(
            (fits.status.as_str(), fits.reason.as_str()),
            ("True", "Unchecked")
        );
        assert!(
            fits.message.contains("which fit: maxConnections is 40"),
            "{}",
            fits.message
        );
    }

    #[test]
    fn an_unread_shard_without_a_stated_limit_is_unchecked_with_its_reason() {
        let unknown = shard_condition(vec![demand(4000, unread(None))]);
        assert_eq!(
            (unknown.status.as_str(), unknown.reason.as_str()),
            ("True", "Unchecked")
        );
        assert!(
            unknown.message.contains(
                "shard a: the shard could not be read (connecting to the shard failed: refused) and no maxConnections is stated"
            ),
            "{}",
            unknown.message
        );
        // One shard read, one not: still unchecked, since one is unknown.
        let mixed = shard_condition(vec![demand(10, read(100)), demand(10, unread(None))]);
        assert_eq!(mixed.reason, "Unchecked");
    }

    #[test]
    fn demand_is_every_worker_pod_times_the_shards_pool() {
        let pipeline = crate::fixtures::pipeline().build();
        let mut spec = pipeline.spec.clone();
        spec.shards[0].pool_size = Some(5);
        // orders.webhooks grew to 6 on the broker; disputes.webhooks has 2.
        let partitions = std::collections::BTreeMap::from([("orders.webhooks".to_owned(), 6)]);
        let demands = shard_demand(&spec, &partitions, &Default::default());
        assert_eq!(demands[0].demand, (6 + 2) * 5);
        assert_eq!(demands[1].demand, (6 + 2) * 4, "the default pool size");
    }

    #[test]
    fn all_good_is_ready() {
        let status = build(&healthy(), None, at(10));
        assert_eq!(status.observed_generation, Some(3));
        for kind in [READY, TOPICS_READY, WORKERS_READY, INGEST_READY] {
            assert_eq!(condition(&status, kind).unwrap().status, "True", "{kind}");
        }
    }

    #[test]
    fn the_first_problem_gives_ready_its_reason() {
        let mut observed = healthy();
        observed.problems.push(TopicProblem::Unsupported {
            topic: "t".into(),
            have: 2,
            want: 4,
        });
        let status = build(&observed, None, at(10));
        let ready = condition(&status, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "BrokerUnsupported")
        );
        assert!(ready.message.contains("KIP-195"), "{}", ready.message);
    }

    #[test]
    fn missing_replicas_are_progressing() {
        let mut observed = healthy();
        observed.workers = (4, 6);
        let status = build(&observed, None, at(10));
        assert_eq!(
            condition(&status, WORKERS_READY).unwrap().reason,
            "Progressing"
        );
        assert_eq!(condition(&status, READY).unwrap().status, "False");
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let first = build(&healthy(), None, at(10));
        let second = build(&healthy(), Some(&first), at(99));
        assert_eq!(first, second, "nothing changed, so nothing to write");
        let mut failing = healthy();
        failing.ingest = (0, 2);
        let third = build(&failing, Some(&second), at(120));
        assert_eq!(
            condition(&third, INGEST_READY)
                .unwrap()
                .last_transition_time,
            at(120)
        );
        assert_eq!(
            condition(&third, TOPICS_READY)
                .unwrap()
                .last_transition_time,
            at(10)
        );
    }

    #[test]
    fn adopted_partitions_say_the_spec_is_behind_but_stay_ready() {
        let mut observed = healthy();
        observed.adopted.push("orders.webhooks".into());
        let status = build(&observed, None, at(10));
        let topics = condition(&status, TOPICS_READY).unwrap();
        assert_eq!(
            (topics.status.as_str(), topics.reason.as_str()),
            ("True", "SpecBehind")
        );
        assert_eq!(condition(&status, READY).unwrap().status, "True");
    }

    #[test]
    fn a_pod_failure_is_the_reason_of_its_condition_and_of_ready() {
        let mut observed = healthy();
        observed.workers = (6, 6);
        observed.ingest = (1, 2);
        observed.ingest_problem = Some(Problem {
            standing: Standing::False,
            reason: "ImagePullBackOff".into(),
            message: "pod i-1 container ingest: ImagePullBackOff".into(),
        });
        let status = build(&observed, None, at(10));
        let ingest = condition(&status, INGEST_READY).unwrap();
        assert_eq!(
            (ingest.status.as_str(), ingest.reason.as_str()),
            ("False", "ImagePullBackOff")
        );
        assert!(
            ingest
                .message
                .contains("1 of 2 ingest replicas ready; pod i-1")
        );
        let ready = condition(&status, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "ImagePullBackOff")
        );
    }

    #[test]
    fn an_unknown_workload_makes_ready_unknown_unless_something_is_false() {
        let mut observed = healthy();
        observed.workers_problem = Some(Problem {
            standing: Standing::Unknown,
            reason: "StatusUnknown".into(),
            message: "deployment w has no status yet".into(),
        });
        let status = build(&observed, None, at(10));
        assert_eq!(condition(&status, WORKERS_READY).unwrap().status, "Unknown");
        assert_eq!(condition(&status, READY).unwrap().status, "Unknown");

        observed.ingest = (0, 2);
        let status = build(&observed, None, at(10));
        let ready = condition(&status, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Progressing")
        );
    }

    #[test]
    fn a_topic_that_existed_before_is_named_with_its_reason() {
        let mut observed = healthy();
        observed.problems.push(TopicProblem::Exists {
            topic: "payments.ledger".into(),
        });
        observed.cluster_id = Some("c1".into());
        let status = build(&observed, None, at(10));
        let topics = condition(&status, TOPICS_READY).unwrap();
        assert_eq!(
            (topics.status.as_str(), topics.reason.as_str()),
            ("False", "TopicExists")
        );
        assert!(
            topics.message.contains("payments.ledger"),
            "{}",
            topics.message
        );
        assert!(topics.message.contains("adopt: true"), "{}", topics.message);
        assert_eq!(status.cluster_id.as_deref(), Some("c1"));
    }
}
