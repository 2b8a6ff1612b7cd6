//! Leader election: one holder at a time, renewals, and takeover on expiry.

use hookline_operator::lease::acquire_or_renew;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;

use crate::fake_api::FakeApi;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

#[tokio::test]
async fn one_replica_leads_until_its_lease_expires() {
    let api = FakeApi::default();
    let leases: Api<Lease> = Api::namespaced(api.client(), "default");

    assert!(
        acquire_or_renew(&leases, "hookline-operator", "a", 15, at(0))
            .await
            .unwrap()
    );
    assert!(
        !acquire_or_renew(&leases, "hookline-operator", "b", 15, at(5))
            .await
            .unwrap()
    );
    assert!(
        acquire_or_renew(&leases, "hookline-operator", "a", 15, at(10))
            .await
            .unwrap(),
        "renewal"
    );
    assert!(
        !acquire_or_renew(&leases, "hookline-operator", "b", 15, at(20))
            .await
            .unwrap(),
        "renewed at 10"
    );
    assert!(
        acquire_or_renew(&leases, "hookline-operator", "b", 15, at(26))
            .await
            .unwrap(),
        "expired at 25"
    );
    assert!(
        !acquire_or_renew(&leases, "hookline-operator", "a", 15, at(27))
            .await
            .unwrap()
    );

    let lease = leases.get("hookline-operator").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1), "one change of holder");
}

#[tokio::test]
async fn of_two_replicas_starting_together_one_leads() {
    let api = FakeApi::default();
    let leases: Api<Lease> = Api::namespaced(api.client(), "default");

    let (a, b) = tokio::join!(
        acquire_or_renew(&leases, "hookline-operator", "a", 15, at(0)),
        acquire_or_renew(&leases, "hookline-operator", "b", 15, at(0)),
    );

    assert!(a.unwrap() ^ b.unwrap(), "exactly one leader");
}
