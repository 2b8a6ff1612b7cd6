//! Leader election: one holder at a time, renewals, and takeover on expiry,
//! judged on the standby's own clock.

use std::time::Duration;

use hookline_operator::fence::Fence;
use hookline_operator::lease::{Elector, LeaseError, Timings, keep};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fake_api::FakeApi;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
const NAME: &str = "hookline-operator";

fn elector(api: &FakeApi, me: &str) -> Elector {
    let leases: Api<Lease> = Api::namespaced(api.client(), "default");
    Elector::new(leases, NAME, me, Timings::DEFAULT)
}

async fn at(start: Instant, second: u64) {
    tokio::time::sleep_until(start + Duration::from_secs(second)).await;
}

#[tokio::test(start_paused = true)]
async fn one_replica_leads_until_its_lease_expires() {
    let api = FakeApi::default();
    let (mut a, mut b) = (elector(&api, "a"), elector(&api, "b"));
    let start = Instant::now();

    assert!(a.try_lead().await.unwrap());
    at(start, 5).await;
    assert!(!b.try_lead().await.unwrap());
    at(start, 10).await;
    assert!(a.try_lead().await.unwrap(), "renewal");
    at(start, 20).await;
    assert!(!b.try_lead().await.unwrap(), "b saw the renewal only now");
    at(start, 34).await;
    assert!(!b.try_lead().await.unwrap(), "unchanged for 14 s");
    at(start, 36).await;
    assert!(b.try_lead().await.unwrap(), "unchanged for 16 s");
    at(start, 37).await;
    assert!(!a.try_lead().await.unwrap());

    let lease: Lease = Api::namespaced(api.client(), "default")
        .get(NAME)
        .await
        .unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1), "one change of holder");
}

#[tokio::test]
async fn of_two_replicas_starting_together_one_leads() {
    let api = FakeApi::default();
    let (mut a, mut b) = (elector(&api, "a"), elector(&api, "b"));

    let (a, b) = tokio::join!(a.try_lead(), b.try_lead());

    assert!(a.unwrap() ^ b.unwrap(), "exactly one leader");
}

/// The holder's clock runs an hour ahead of the standby's: its `renewTime` is
/// in the standby's future for an hour. Compared with the standby's clock it
/// would keep the lease that long after the holder died.
#[tokio::test(start_paused = true)]
async fn a_holder_whose_renew_time_is_ahead_of_the_standbys_clock_expires_once_unchanged_for_the_lease_duration()
 {
    let api = FakeApi::default();
    let ahead = Timestamp::now() + SignedDuration::from_hours(1);
    api.put(
        LEASES,
        NAME,
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": NAME, "namespace": "default", "resourceVersion": "7"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                     "acquireTime": MicroTime(ahead), "renewTime": MicroTime(ahead),
                     "leaseTransitions": 0},
        }),
    );
    let mut b = elector(&api, "b");
    let start = Instant::now();

    assert!(!b.try_lead().await.unwrap(), "first seen now");
    at(start, 14).await;
    assert!(!b.try_lead().await.unwrap(), "unchanged for 14 s of 15");
    at(start, 16).await;
    assert!(b.try_lead().await.unwrap(), "unchanged for 16 s: expired");
}

#[tokio::test(start_paused = true)]
async fn the_renewal_times_out_within_its_deadline_and_the_leader_stops_when_the_api_server_hangs()
{
    let api = FakeApi::default();
    let mut a = elector(&api, "a");
    let renewed = Instant::now();
    assert!(a.try_lead().await.unwrap());
    api.hang();

    // One call: it gives up at its own timeout, well inside the lease.
    let started = Instant::now();
    let call = tokio::time::timeout(Timings::DEFAULT.duration, a.try_lead()).await;
    let took = started.elapsed();
    assert!(
        matches!(call, Ok(Err(LeaseError::Timeout(_)))),
        "the call ended on its own: {call:?}"
    );
    assert!(took <= Timings::DEFAULT.call_timeout, "{took:?}");

    // Leading: the fence goes at the renew deadline after the last renewal
    // that succeeded, though every renewal since is still unanswered.
    let fence = Fence::new();
    let shutdown = CancellationToken::new();
    let kept = tokio::time::timeout(Timings::DEFAULT.duration, keep(&mut a, &fence, &shutdown))
        .await
        .expect("keep ends before the lease could expire");
    let lost_after = renewed.elapsed();
    assert!(
        matches!(kept, Err(LeaseError::RenewDeadline(_))),
        "{kept:?}"
    );
    assert!(fence.is_lost());
    assert!(
        lost_after <= Timings::DEFAULT.renew_deadline,
        "lost {lost_after:?} after the last renewal"
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_sees_another_holder_loses_its_fence_at_once() {
    let api = FakeApi::default();
    let mut a = elector(&api, "a");
    assert!(a.try_lead().await.unwrap());
    let fence = Fence::new();
    let shutdown = CancellationToken::new();
    let keeper = tokio::spawn({
        let fence = fence.clone();
        async move { keep(&mut a, &fence, &shutdown).await }
    });

    let mut lease = api.get(LEASES, NAME).unwrap();
    lease["spec"]["holderIdentity"] = "b".into();
    api.put(LEASES, NAME, lease);

    let kept = tokio::time::timeout(Timings::DEFAULT.renew_deadline, keeper)
        .await
        .expect("the next renewal sees b")
        .unwrap();
    assert!(matches!(kept, Err(LeaseError::Taken)), "{kept:?}");
    assert!(fence.is_lost());
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_taken_by_the_standby_at_its_next_look() {
    let api = FakeApi::default();
    let (mut a, mut b) = (elector(&api, "a"), elector(&api, "b"));
    assert!(a.try_lead().await.unwrap());
    assert!(!b.try_lead().await.unwrap());

    a.release().await.unwrap();

    assert!(b.try_lead().await.unwrap());
    assert!(a.valid_until().is_none());
}
