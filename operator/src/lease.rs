//! Leader election through a `coordination.k8s.io/v1` Lease, so that of two
//! operator replicas one reconciles and the other waits.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};

/// Takes the lease `name` for `me`, or renews it; false while another holder's
/// lease has not expired at `now`. A concurrent writer makes the write fail on
/// its resourceVersion, and that is a "no" too.
pub async fn acquire_or_renew(
    leases: &Api<Lease>,
    name: &str,
    me: &str,
    duration_secs: i32,
    now: Timestamp,
) -> Result<bool, kube::Error> {
    let Some(current) = leases.get_opt(name).await? else {
        // Nobody holds it: create it. Of two replicas creating it at once, the
        // API server lets one through and answers the other 409.
        return create(leases, name, me, duration_secs, now).await;
    };
    let current = Some(current);
    let spec = current
        .as_ref()
        .and_then(|l| l.spec.clone())
        .unwrap_or_default();
    let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(secs)) => {
            *renewed + SignedDuration::from_secs(i64::from(secs)) < now
        }
        _ => true,
    };
    let mine = spec.holder_identity.as_deref() == Some(me);
    if !mine && !expired {
        return Ok(false);
    }
    let mut lease_spec = serde_json::json!({
        "holderIdentity": me,
        "leaseDurationSeconds": duration_secs,
        "renewTime": MicroTime(now),
    });
    if !mine {
        lease_spec["acquireTime"] = serde_json::json!(MicroTime(now));
        lease_spec["leaseTransitions"] = (spec.lease_transitions.unwrap_or(0) + 1).into();
    }
    let mut body = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": lease_spec,
    });
    if let Some(version) = current.and_then(|l| l.metadata.resource_version) {
        body["metadata"]["resourceVersion"] = version.into();
    }
    match leases
        .patch(
            name,
            &PatchParams::apply(crate::controller::MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
        Err(error) => Err(error),
    }
}

async fn create(
    leases: &Api<Lease>,
    name: &str,
    me: &str,
    duration_secs: i32,
    now: Timestamp,
) -> Result<bool, kube::Error> {
    let lease: Lease = serde_json::from_value(serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {
            "holderIdentity": me,
            "leaseDurationSeconds": duration_secs,
            "acquireTime": MicroTime(now),
            "renewTime": MicroTime(now),
            "leaseTransitions": 0,
        },
    }))
    .map_err(kube::Error::SerdeError)?;
    match leases
        .create(&kube::api::PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() || status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}
