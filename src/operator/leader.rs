//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: only the holder
//! reconciles; it renews every [`RETRY`]; another replica takes over once [`LEASE_DURATION`] passes
//! without a renewal; a holder that cannot renew for [`RENEW_DEADLINE`] steps down; on shutdown the
//! holder releases the Lease so a standby takes over at once. Writes use the Lease's
//! `resourceVersion`, so two replicas can never both win (the loser gets 409 Conflict).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

/// How long a Lease stays valid without a renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// A holder that has not renewed for this long stops reconciling.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Interval between acquire or renew attempts.
pub const RETRY: Duration = Duration::from_secs(2);

/// One replica's view of the Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

impl Elector {
    /// Elects on Lease `name` through `api` (namespaced) as `identity` (the pod name).
    pub fn new(api: Api<Lease>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            api,
            name: name.into(),
            identity: identity.into(),
        }
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One attempt to acquire or renew at `now`: `Ok(true)` when this replica holds the Lease after it.
    /// Losing a race (409) is `Ok(false)`, not an error.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<bool, kube::Error> {
        let duration = i32::try_from(LEASE_DURATION.as_secs()).unwrap_or(i32::MAX);
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let mine = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        if !mine && !expired(&spec, now) {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let renewed = Lease {
            metadata: lease.metadata,
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(duration),
                acquire_time: if mine {
                    spec.acquire_time
                } else {
                    Some(MicroTime(now))
                },
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(if mine {
                    transitions
                } else {
                    transitions.saturating_add(1)
                }),
                ..spec
            }),
        };
        match self
            .api
            .replace(&self.name, &PostParams::default(), &renewed)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it (empty holder, 1 s duration), so a standby takes
    /// over without waiting for it to expire.
    pub async fn release(&self, now: Timestamp) -> Result<(), kube::Error> {
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let released = Lease {
            metadata: lease.metadata,
            spec: Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                renew_time: Some(MicroTime(now)),
                ..spec
            }),
        };
        self.api
            .replace(&self.name, &PostParams::default(), &released)
            .await
            .map(|_| ())
    }
}

/// Whether the Lease is free to take at `now`: no holder, or no renewal within its duration.
pub fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return true;
    }
    let Some(MicroTime(renewed)) = spec.renew_time else {
        return true;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    now.duration_since(renewed) > duration
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed: &str, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(Into::into),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            lease_duration_seconds: Some(secs),
            ..Default::default()
        }
    }

    #[test]
    fn a_lease_is_free_when_unheld_or_not_renewed_within_its_duration() {
        let now: Timestamp = "2026-11-29T10:00:20Z".parse().unwrap();
        assert!(expired(&spec(None, "2026-11-29T10:00:19Z", 15), now));
        assert!(expired(&spec(Some(""), "2026-11-29T10:00:19Z", 15), now));
        assert!(!expired(&spec(Some("a"), "2026-11-29T10:00:05Z", 15), now));
        assert!(expired(&spec(Some("a"), "2026-11-29T10:00:04Z", 15), now));
        assert!(expired(
            &LeaseSpec {
                holder_identity: Some("a".into()),
                ..Default::default()
            },
            now
        ));
    }
}
