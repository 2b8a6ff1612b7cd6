//! Leader election through a `coordination.k8s.io/v1` Lease, so that of two
//! operator replicas one reconciles and the other waits.
//!
//! Expiry is judged as client-go's leaderelection judges it: a standby never
//! compares the holder's `renewTime` with its own clock (the two clocks may
//! disagree by any amount); it notes, on its own monotonic clock, when it last
//! saw the lease record change, and takes the lease once it has seen no change
//! for the lease's duration. The leader, for its part, stops leading once it
//! has not renewed for the renew deadline, counted from the start of its last
//! renewal that succeeded: the standby saw that renewal no earlier than it
//! started, so the leader stops at least `duration - renew_deadline` before
//! the standby may begin.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fence::Fence;

/// The election's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// How long a lease lasts without a change seen by a standby.
    pub duration: Duration,
    /// How long a leader goes on without a successful renewal.
    pub renew_deadline: Duration,
    /// How often the leader renews, and a standby looks.
    pub retry: Duration,
    /// How long one look or renewal may wait for the API server.
    pub call_timeout: Duration,
}

impl Timings {
    /// client-go's defaults: 15 s, 10 s, 2 s, and a call that fits twice in
    /// the renew deadline.
    pub const DEFAULT: Timings = Timings {
        duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry: Duration::from_secs(2),
        call_timeout: Duration::from_secs(5),
    };

    /// Refuses timings with which two replicas could lead at once, or a
    /// leader could not renew before its deadline.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.renew_deadline >= self.duration {
            return Err("the renew deadline must be shorter than the lease duration");
        }
        if self.retry >= self.renew_deadline {
            return Err("the retry period must be shorter than the renew deadline");
        }
        if self.call_timeout > self.renew_deadline || self.call_timeout.is_zero() {
            return Err("a call's timeout must be positive and within the renew deadline");
        }
        if self.duration.as_secs() < 1 || self.duration.subsec_nanos() != 0 {
            return Err("the lease duration is whole seconds, at least one");
        }
        Ok(())
    }
}

/// Why taking, renewing or keeping the lease failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("reading the lease failed")]
    Read(#[source] kube::Error),
    #[error("writing the lease failed")]
    Write(#[source] kube::Error),
    #[error("the API server did not answer about the lease within {0:?}")]
    Timeout(Duration),
    #[error("could not renew the leader lease within {0:?}")]
    RenewDeadline(Duration),
    #[error("another replica took the leader lease")]
    Taken,
}

/// A lease record as last seen, and when it was first seen so.
#[derive(Debug, Clone, PartialEq)]
struct Observation {
    record: LeaseSpec,
    seen: Instant,
}

/// The observation after reading `record` at `now`: a record unchanged since
/// the last look keeps the time it was first seen.
fn observe(previous: Option<Observation>, record: LeaseSpec, now: Instant) -> Observation {
    match previous {
        Some(previous) if previous.record == record => previous,
        _ => Observation { record, seen: now },
    }
}

/// Whether another replica holds the lease at `now`: it names a holder that
/// is not `me`, and it changed less than its duration ago (`fallback` when
/// the record states none) by this replica's clock.
fn held_by_another(observed: &Observation, me: &str, now: Instant, fallback: Duration) -> bool {
    let holder = observed.record.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == me {
        return false;
    }
    let lasts = observed
        .record
        .lease_duration_seconds
        .map_or(fallback, |secs| {
            Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        });
    now < observed.seen + lasts
}

/// One replica's side of the election for one Lease.
pub struct Elector {
    leases: Api<Lease>,
    name: String,
    me: String,
    timings: Timings,
    observed: Option<Observation>,
    /// Until when this replica leads, if it does.
    valid_until: Option<Instant>,
}

impl Elector {
    /// `me` competing for the Lease `name` in `leases`' namespace.
    pub fn new(leases: Api<Lease>, name: &str, me: &str, timings: Timings) -> Self {
        Self {
            leases,
            name: name.to_owned(),
            me: me.to_owned(),
            timings,
            observed: None,
            valid_until: None,
        }
    }

    /// Takes the lease, or renews it; false while another replica holds it.
    /// Bounded by the call timeout, however long the API server takes.
    pub async fn try_lead(&mut self) -> Result<bool, LeaseError> {
        let started = Instant::now();
        let limit = self.timings.call_timeout;
        let led = tokio::time::timeout(limit, self.attempt())
            .await
            .map_err(|_| LeaseError::Timeout(limit))??;
        self.valid_until = led.then_some(started + self.timings.renew_deadline);
        Ok(led)
    }

    async fn attempt(&mut self) -> Result<bool, LeaseError> {
        let current = self
            .leases
            .get_opt(&self.name)
            .await
            .map_err(LeaseError::Read)?;
        let now = Instant::now();
        let Some(current) = current else {
            // Nobody holds it: create it. Of two replicas creating it at once,
            // the API server lets one through and answers the other 409.
            return self.create().await;
        };
        let record = current.spec.clone().unwrap_or_default();
        let observed = observe(self.observed.take(), record, now);
        let taken = held_by_another(&observed, &self.me, now, self.timings.duration);
        let mine = observed.record.holder_identity.as_deref() == Some(self.me.as_str());
        let transitions = observed.record.lease_transitions.unwrap_or(0);
        self.observed = Some(observed);
        if taken {
            return Ok(false);
        }
        let wall = MicroTime(Timestamp::now());
        let mut spec = serde_json::json!({
            "holderIdentity": self.me,
            "leaseDurationSeconds": self.duration_secs(),
            "renewTime": wall,
        });
        if !mine {
            spec["acquireTime"] = serde_json::json!(wall);
            spec["leaseTransitions"] = (transitions + 1).into();
        }
        self.write(spec, current.metadata.resource_version).await
    }

    /// Writes `spec` over the lease read at `version`; a concurrent writer
    /// makes the write fail on the version, and that is a "no".
    async fn write(
        &mut self,
        spec: serde_json::Value,
        version: Option<String>,
    ) -> Result<bool, LeaseError> {
        let mut body = serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": spec,
        });
        if let Some(version) = version {
            body["metadata"]["resourceVersion"] = version.into();
        }
        match self
            .leases
            .patch(
                &self.name,
                &PatchParams::apply(crate::controller::MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(written) => {
                self.seen_written(written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
            Err(error) => Err(LeaseError::Write(error)),
        }
    }

    async fn create(&mut self) -> Result<bool, LeaseError> {
        let wall = MicroTime(Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.me.clone()),
                lease_duration_seconds: Some(self.duration_secs()),
                acquire_time: Some(wall.clone()),
                renew_time: Some(wall),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.leases.create(&PostParams::default(), &lease).await {
            Ok(written) => {
                self.seen_written(written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.code == 409 => {
                Ok(false)
            }
            Err(error) => Err(LeaseError::Write(error)),
        }
    }

    /// Gives the lease up, so that a standby takes it at its next look
    /// instead of waiting out the duration: called on shutdown, once nothing
    /// reconciles any more. Only a lease this replica still holds is written.
    pub async fn release(&mut self) -> Result<(), LeaseError> {
        let limit = self.timings.call_timeout;
        tokio::time::timeout(limit, async {
            let current = self
                .leases
                .get_opt(&self.name)
                .await
                .map_err(LeaseError::Read)?;
            let Some(current) = current else {
                return Ok(());
            };
            let holder = current
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref());
            if holder != Some(self.me.as_str()) {
                return Ok(());
            }
            let spec = serde_json::json!({
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": MicroTime(Timestamp::now()),
            });
            self.write(spec, current.metadata.resource_version).await?;
            self.valid_until = None;
            Ok(())
        })
        .await
        .map_err(|_| LeaseError::Timeout(limit))?
    }

    /// The end of this replica's leadership, if it leads.
    pub fn valid_until(&self) -> Option<Instant> {
        self.valid_until
    }

    fn seen_written(&mut self, written: Lease) {
        self.observed = Some(Observation {
            record: written.spec.unwrap_or_default(),
            seen: Instant::now(),
        });
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.timings.duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// Keeps the lease of a leading `elector`, renewing it every retry period,
/// until `shutdown`. Loses `fence` the moment leadership ends: when another
/// replica holds the lease, or at the renew deadline after the start of the
/// last successful renewal, even while a renewal still waits for an answer.
pub async fn keep(
    elector: &mut Elector,
    fence: &Fence,
    shutdown: &CancellationToken,
) -> Result<(), LeaseError> {
    let result = renew_until_lost(elector, shutdown).await;
    if result.is_err() {
        fence.lose();
    }
    result
}

/// Renews until shutdown (`Ok`), or until the lease is lost.
async fn renew_until_lost(
    elector: &mut Elector,
    shutdown: &CancellationToken,
) -> Result<(), LeaseError> {
    let expired = LeaseError::RenewDeadline(elector.timings.renew_deadline);
    let Some(mut valid_until) = elector.valid_until else {
        return Err(expired);
    };
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep_until(valid_until) => return Err(expired),
            () = tokio::time::sleep(elector.timings.retry) => {}
        }
        let attempt = tokio::select! {
            biased;
            () = tokio::time::sleep_until(valid_until) => return Err(expired),
            attempt = elector.try_lead() => attempt,
        };
        match attempt {
            Ok(true) => valid_until = elector.valid_until.unwrap_or(valid_until),
            Ok(false) => return Err(LeaseError::Taken),
            Err(error) => {
                tracing::warn!(error = %error, cause = ?error, "renewing the leader lease failed; retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_expires_by_the_standbys_clock_from_when_it_last_changed() {
        let start = Instant::now();
        let secs = |s| start + Duration::from_secs(s);
        // The holder's clock runs an hour ahead: its renewTime says nothing.
        let ahead = 1_800_000_000 + 3600;
        let seen = observe(None, record("a", ahead), secs(0));
        assert!(held_by_another(
            &seen,
            "b",
            secs(14),
            Timings::DEFAULT.duration
        ));
        let seen = observe(Some(seen), record("a", ahead), secs(14));
        assert_eq!(seen.seen, secs(0), "unchanged: still first seen at 0");
        assert!(!held_by_another(
            &seen,
            "b",
            secs(15),
            Timings::DEFAULT.duration
        ));

        // A renewal seen at 10 restarts the count, whatever time it names.
        let seen = observe(Some(seen), record("a", ahead - 7200), secs(10));
        assert!(held_by_another(
            &seen,
            "b",
            secs(24),
            Timings::DEFAULT.duration
        ));
        assert!(!held_by_another(
            &seen,
            "b",
            secs(25),
            Timings::DEFAULT.duration
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_or_own_lease_is_never_held_by_another() {
        let now = Instant::now();
        let released = observe(None, record("", 0), now);
        assert!(!held_by_another(
            &released,
            "b",
            now,
            Timings::DEFAULT.duration
        ));
        let mine = observe(None, record("b", 0), now);
        assert!(!held_by_another(&mine, "b", now, Timings::DEFAULT.duration));
    }

    #[test]
    fn timings_that_would_let_two_replicas_lead_are_refused() {
        assert_eq!(Timings::DEFAULT.check(), Ok(()));
        let late = Timings {
            renew_deadline: Duration::from_secs(15),
            ..Timings::DEFAULT
        };
        assert!(late.check().is_err());
        let slow_call = Timings {
            call_timeout: Duration::from_secs(11),
            ..Timings::DEFAULT
        };
        assert!(slow_call.check().is_err());
    }
}
