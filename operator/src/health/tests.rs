use serde_json::{Value, json};

use super::*;

fn deployment(status: Option<Value>) -> Deployment {
    let mut object = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "payments-ingest", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                 "template": {"spec": {"containers": []}}},
    });
    if let Some(status) = status {
        object["status"] = status;
    }
    serde_json::from_value(object).unwrap()
}

fn starting() -> Deployment {
    deployment(Some(
        json!({"replicas": 2, "readyReplicas": 0, "observedGeneration": 1}),
    ))
}

fn pod(name: &str, status: Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "status": status,
    }))
    .unwrap()
}

fn waiting(name: &str, reason: &str, message: &str, last: Option<Value>) -> Pod {
    let mut container = json!({
        "name": "ingest", "image": "hookline-ingest:1", "imageID": "", "ready": false,
        "restartCount": 5,
        "state": {"waiting": {"reason": reason, "message": message}},
    });
    if let Some(last) = last {
        container["lastState"] = json!({"terminated": last});
    }
    pod(
        name,
        json!({"phase": "Running", "containerStatuses": [container]}),
    )
}

#[test]
fn a_crashlooping_pod_names_the_pod_container_and_last_exit() {
    let pods = [waiting(
        "payments-ingest-7d9-abcde",
        "CrashLoopBackOff",
        "back-off 5m0s restarting failed container=ingest",
        Some(json!({"exitCode": 2, "reason": "Error",
                    "message": "loading the configuration: no signing secrets"})),
    )];

    let problem = diagnose(&starting(), false, &[], &pods).unwrap();

    assert_eq!(problem.standing, Standing::False);
    assert_eq!(problem.reason, "CrashLoopBackOff");
    for part in [
        "pod payments-ingest-7d9-abcde",
        "container ingest",
        "last exit code 2",
        "no signing secrets",
    ] {
        assert!(
            problem.message.contains(part),
            "{part} in {}",
            problem.message
        );
    }
}

#[test]
fn an_image_that_cannot_be_pulled_says_so() {
    for reason in ["ImagePullBackOff", "ErrImagePull"] {
        let pods = [waiting(
            "p-1",
            reason,
            "Back-off pulling image \"nope:1\"",
            None,
        )];
        let problem = diagnose(&starting(), false, &[], &pods).unwrap();
        assert_eq!(problem.reason, reason);
        assert!(problem.message.contains("nope:1"), "{}", problem.message);
    }
}

#[test]
fn a_pod_being_created_is_no_problem() {
    let pods = [waiting("p-1", "ContainerCreating", "", None)];
    assert_eq!(diagnose(&starting(), false, &[], &pods), None);
}

#[test]
fn an_unschedulable_pod_carries_the_schedulers_reasons() {
    let pods = [
        pod(
            "p-2",
            json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
        ),
        pod(
            "p-1",
            json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
        ),
    ];

    let problem = diagnose(&starting(), false, &[], &pods).unwrap();

    assert_eq!(problem.reason, "Unschedulable");
    assert!(
        problem.message.starts_with("pod p-1 "),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("Insufficient cpu"),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("and 1 more pods"),
        "{}",
        problem.message
    );
}

#[test]
fn a_quota_refusal_is_read_from_the_replica_set() {
    let refused: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "payments-ingest-7d9"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}},
        "status": {"replicas": 0, "conditions": [{
            "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "message": "pods \"payments-ingest-7d9-x\" is forbidden: exceeded quota: compute, requested: cpu=500m, used: cpu=2, limited: cpu=2"}]},
    }))
    .unwrap();

    let problem = diagnose(&starting(), false, &[refused], &[]).unwrap();

    assert_eq!(problem.standing, Standing::False);
    assert_eq!(problem.reason, "FailedCreate");
    assert!(
        problem.message.contains("replicaset payments-ingest-7d9"),
        "{}",
        problem.message
    );
    assert!(
        problem.message.contains("exceeded quota"),
        "{}",
        problem.message
    );
}

#[test]
fn a_deployment_without_status_is_unknown_unless_just_applied() {
    let problem = diagnose(&deployment(None), false, &[], &[]).unwrap();
    assert_eq!(problem.standing, Standing::Unknown);
    assert_eq!(problem.reason, "StatusUnknown");

    assert_eq!(diagnose(&deployment(None), true, &[], &[]), None);
}

#[test]
fn a_known_failure_outranks_an_unknown() {
    let unknown = Problem {
        standing: Standing::Unknown,
        reason: "StatusUnknown".into(),
        message: String::new(),
    };
    let failing = Problem {
        standing: Standing::False,
        reason: "CrashLoopBackOff".into(),
        message: String::new(),
    };
    let (unknown, failing) = (Some(unknown), Some(failing));
    assert_eq!(worse(unknown.clone(), failing.clone()), failing);
    assert_eq!(worse(failing.clone(), unknown.clone()), failing);
    assert_eq!(worse(None, unknown.clone()), unknown);
}

fn status(conditions: &[(&str, &str, &str, &str)]) -> WebhookPipelineStatus {
    serde_json::from_value(json!({
        "conditions": conditions.iter().map(|(kind, status, reason, message)| json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        })).collect::<Vec<_>>(),
    }))
    .unwrap()
}

#[test]
fn a_new_pod_failure_is_warned_once_and_pods_starting_never() {
    let starting = status(&[
        ("Ready", "False", "Progressing", "0 of 2"),
        ("WorkersReady", "False", "Progressing", "0 of 2"),
        ("IngestReady", "True", "Available", "2 of 2"),
    ]);
    let crashing = status(&[
        ("Ready", "False", "CrashLoopBackOff", "pod w-1"),
        ("WorkersReady", "False", "CrashLoopBackOff", "pod w-1"),
        ("IngestReady", "True", "Available", "2 of 2"),
    ]);

    assert!(warnings(&starting, None).is_empty());
    let warned = warnings(&crashing, Some(&starting));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].reason, "CrashLoopBackOff");
    assert!(warnings(&crashing, Some(&crashing)).is_empty());
}

#[test]
fn only_a_deployment_whose_every_replica_is_updated_and_available_is_settled() {
    let settled_status = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
                                "readyReplicas": 2, "availableReplicas": 2});
    assert!(settled(&deployment(Some(settled_status.clone()))));

    let mut rolling = settled_status.clone();
    rolling["updatedReplicas"] = 1.into();
    assert!(!settled(&deployment(Some(rolling))));
    let mut stale = settled_status;
    stale["observedGeneration"] = 0.into();
    assert!(!settled(&deployment(Some(stale))));
    assert!(!settled(&starting()));
    assert!(!settled(&deployment(None)));
}
