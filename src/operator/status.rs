//! The status the operator writes: a pure function of the NextApp, what Knative reports and the clock.
//!
//! Rules (the status tells the truth, and a steady state writes nothing):
//! - `Ready` mirrors the Knative Service's own `Ready` condition: its status, reason and message are
//!   carried through; `KnativeServiceNotReady` when the Service or its condition is absent. A Service
//!   whose routes stay `IngressNotConfigured` for [`INGRESS_STALL`] becomes `IngressNotProgrammed`,
//!   measured from Knative's own `lastTransitionTime`, so the verdict needs no memory.
//! - `Degraded` is `True` only for a real failure (Knative `Ready=False`, an ingress stall, an invalid
//!   spec, an ownership conflict), never during an ordinary rollout (`Ready=Unknown`).
//! - An ownership conflict (see [`super::ownership`]) sets `Degraded=True` with reason
//!   `OwnershipConflict`, naming every object knext left alone. When it withholds the Knative Service,
//!   `Ready=False` with the same reason (Knative's status is not read: nothing of this spec was applied
//!   there) and the observed fields stay as they were; otherwise `Ready` still mirrors the Knative
//!   Service, which serves the latest spec. Either way the pass is repeated every [`CONFLICT_REQUEUE`],
//!   since resolving a conflict changes no object the operator watches.
//! - A NetworkPolicy the prune left in place (not this NextApp's) is named in the `Degraded` message:
//!   `Degraded=False` with reason `NotOwned` unless something else degrades the app. Not a failure (the
//!   policy may be the user's own), so no requeue.
//! - `Reconciling` is `True` while a rollout is in progress (Knative `Ready=Unknown` or absent).
//! - An invalid spec sets `Ready=False` and `Degraded=True` with reason `InvalidImage` (any image
//!   problem) or `InvalidSpec`, and keeps every observed field (nothing was applied).
//! - A pinned Revision (`traffic.revisionName`) that does not exist while the routes have not been
//!   ready for [`PIN_STALL`] is `PinnedRevisionNotFound`, which takes precedence over the ingress
//!   stall; a failed lookup keeps the previous verdict. Stalls are Warning events on the transition
//!   only ([`Verdict::transitions`]), with the elapsed time; the condition messages stay static.
//! - `DatabaseReady` (while `database.secretRef` is set), `RevalidationDeferred` (always) and
//!   `ImageCacheReady` (while `scaling.imagePrewarm` is on or failed) follow Ready, Degraded and
//!   Reconciling, in that order; none of them affects `Ready` or `Degraded`. A pass that applied
//!   nothing keeps them as they were.
//! - Every condition carries `observedGeneration`; `lastTransitionTime` changes only when the
//!   condition's status does; `lastSuccessfulDeployTime` is set when a new revision becomes Ready.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use crate::api::{NextApp, NextAppStatus, TrafficStatus, reasons};

/// How long routes may stay `IngressNotConfigured` before the app is `IngressNotProgrammed`.
pub const INGRESS_STALL: Duration = Duration::from_secs(120);
/// Requeue interval while the Knative Service is not Ready.
pub const NOT_READY_REQUEUE: Duration = Duration::from_secs(30);
/// Requeue interval while an ownership conflict lasts.
pub const CONFLICT_REQUEUE: Duration = Duration::from_secs(60);
/// How long a pinned Revision may be missing while the routes are not ready before the app is
/// `PinnedRevisionNotFound`.
pub const PIN_STALL: Duration = Duration::from_secs(120);
/// Requeue interval while the pinned Revision is missing (also while the Service is still Ready).
pub const PIN_REQUEUE: Duration = Duration::from_secs(30);
/// Requeue interval after the image-prewarm DaemonSet could not be applied or deleted.
pub const IMAGE_CACHE_RETRY: Duration = Duration::from_secs(120);
/// Longest condition message written (the API server's limit is 32768 bytes).
const MAX_MESSAGE: usize = 4096;

/// Condition types.
pub mod types {
    /// The app serves its latest spec.
    pub const READY: &str = "Ready";
    /// Something is wrong that will not fix itself.
    pub const DEGRADED: &str = "Degraded";
    /// A rollout is in progress.
    pub const RECONCILING: &str = "Reconciling";
    /// `spec.database.secretRef` is set: which Secret provides `DATABASE_URL` (absent otherwise).
    pub const DATABASE_READY: &str = "DatabaseReady";
    /// Whether `spec.revalidation` asks for something knext does not provision (always present).
    pub const REVALIDATION_DEFERRED: &str = "RevalidationDeferred";
    /// `scaling.imagePrewarm`: how many nodes hold the app image (absent when the option is off).
    /// Never affects `Ready` or `Degraded`.
    pub const IMAGE_CACHE_READY: &str = "ImageCacheReady";
}

/// Reasons knext sets itself (Knative's reasons are carried through as they are).
pub mod reason {
    /// Ready with nothing more to say.
    pub const READY: &str = "KnativeServiceReady";
    /// No Knative Service yet, or it has not reported Ready.
    pub const NOT_READY: &str = "KnativeServiceNotReady";
    /// Routes stayed `IngressNotConfigured` for two minutes.
    pub const INGRESS_NOT_PROGRAMMED: &str = "IngressNotProgrammed";
    /// No error.
    pub const AS_EXPECTED: &str = "AsExpected";
    /// A rollout is in progress.
    pub const ROLLING_OUT: &str = "RolloutInProgress";
    /// The last pass applied everything.
    pub const RECONCILED: &str = "ReconcileSuccess";
    /// `traffic.revisionName` names a Revision that has not existed for two minutes while the routes
    /// are not ready (takes precedence over [`INGRESS_NOT_PROGRAMMED`]).
    pub const PINNED_REVISION_NOT_FOUND: &str = "PinnedRevisionNotFound";
    /// `DatabaseReady=True`: the Secret is referenced by the Knative Service.
    pub const BOUND: &str = "Bound";
    /// `RevalidationDeferred=True`: `revalidation.queue: kafka` provisions no consumer.
    pub const CONSUMER_NOT_PROVISIONED: &str = "ConsumerNotProvisioned";
    /// `RevalidationDeferred=True`: `revalidation.provisionKafkaSource: true` has no effect.
    pub const PROVISION_KAFKA_SOURCE_INERT: &str = "ProvisionKafkaSourceInert";
    /// `RevalidationDeferred=False`.
    pub const NOT_DEFERRED: &str = "NotDeferred";
    /// `ImageCacheReady=True`: every scheduled node runs the prewarm pod.
    pub const CACHED: &str = "Cached";
    /// `ImageCacheReady=False`: some nodes are still pulling.
    pub const PULLING: &str = "Pulling";
    /// `ImageCacheReady=False`: the DaemonSet could not be applied.
    pub const RECONCILE_FAILED: &str = "ReconcileFailed";
    /// `ImageCacheReady=False`: the DaemonSet of a switched-off prewarm could not be deleted.
    pub const CLEANUP_FAILED: &str = "CleanupFailed";
}

/// Warning event reasons of transitions (published when the status changes to them, not every pass).
pub mod event {
    /// `ImageCacheReady` became `ReconcileFailed` or `CleanupFailed`.
    pub const IMAGE_PREWARM_FAILED: &str = "ImagePrewarmFailed";
}

/// The part of a Knative Service's status the operator reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnativeStatus {
    /// Knative conditions (`Ready`, `RoutesReady`, `ConfigurationsReady`).
    #[serde(default)]
    pub conditions: Vec<KnativeCondition>,
    /// Public URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Traffic split as routed.
    #[serde(default)]
    pub traffic: Vec<KnativeTraffic>,
    /// Latest revision that became ready.
    #[serde(default)]
    pub latest_ready_revision_name: Option<String>,
    /// Generation of the Service this status describes.
    #[serde(default)]
    pub observed_generation: Option<i64>,
}

/// One Knative condition (`knative.dev/pkg/apis.Condition`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnativeCondition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// RFC 3339 time of the last status change.
    #[serde(default)]
    pub last_transition_time: Option<String>,
}

/// One traffic target as Knative routes it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnativeTraffic {
    /// Revision name.
    #[serde(default)]
    pub revision_name: Option<String>,
    /// Share in percent.
    #[serde(default)]
    pub percent: Option<i64>,
    /// Follows the latest ready revision.
    #[serde(default)]
    pub latest_revision: Option<bool>,
}

impl KnativeStatus {
    fn condition(&self, type_: &str) -> Option<&KnativeCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// What the operator observed in the cluster for one app after applying it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The Knative Service's status, if the Service exists and reports one.
    pub knative: Option<KnativeStatus>,
    /// Whether the latest ready revision is `Active` (`None` when unknown).
    pub revision_active: Option<bool>,
    /// `metadata.generation` of the Knative Service as applied.
    pub knative_generation: Option<i64>,
    /// Ownership conflicts: one message per object knext left alone, then one per child withheld
    /// because of them. Non-empty: `Degraded=True`, `OwnershipConflict`.
    pub conflicts: Vec<String>,
    /// Why the Knative Service was not applied this pass (`Ready=False`, `OwnershipConflict`).
    pub knative_withheld: Option<String>,
    /// Objects the prune left in place because this NextApp does not control them, one message each.
    pub left_in_place: Vec<String>,
    /// Whether the Revision `traffic.revisionName` pins exists.
    pub pinned: Pinned,
    /// The image-prewarm DaemonSet (`scaling.imagePrewarm`); `None` when off and nothing to report.
    pub image_cache: Option<ImageCache>,
}

/// The Revision `traffic.revisionName` pins, as a GET found it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pinned {
    /// No pin, or not looked up.
    #[default]
    NotPinned,
    /// The Revision exists.
    Found,
    /// The API server answered 404.
    NotFound,
    /// The GET failed: the previous verdict stands.
    Unknown,
}

/// What the operator saw of the image-prewarm DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCache {
    /// Applied; its status as the API server returned it.
    Applied {
        /// `status.desiredNumberScheduled`.
        desired: i32,
        /// min(`updatedNumberScheduled`, `numberReady`) when the status describes the applied
        /// generation, else 0.
        ready: i32,
    },
    /// The apply failed (the message says why).
    ApplyFailed(String),
    /// The option is off and the leftover DaemonSet could not be deleted.
    CleanupFailed(String),
}

/// The computed status and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The status to write (compare with the live one before writing).
    pub status: NextAppStatus,
    /// Requeue after this long (the Knative Service is not Ready); `None`: wait for a change.
    pub requeue: Option<Duration>,
    /// Warning events of transitions (reason, note): published once, when the status changes to them.
    pub transitions: Vec<(&'static str, String)>,
}

/// The status after a successful pass (everything applied that could be).
pub fn applied(app: &NextApp, observed: &Observed, now: Timestamp) -> Verdict {
    if let Some(withheld) = &observed.knative_withheld {
        return withheld_knative(app, observed, withheld, now);
    }
    let previous = app.status.clone().unwrap_or_default();
    let generation = app.metadata.generation;
    let knative = observed.knative.as_ref();
    // A status that describes an older spec of the Service says nothing about the current one.
    let current = knative.filter(|k| {
        matches!((k.observed_generation, observed.knative_generation), (Some(seen), Some(now)) if seen >= now)
            || observed.knative_generation.is_none()
    });
    let ready = current.and_then(|k| k.condition("Ready"));
    let ready_status = ready.map_or("Unknown", |c| c.status.as_str());
    let stalled = pinned_stall(app, &previous, observed.pinned, current, now)
        .or_else(|| current.and_then(|k| ingress_stall(k, now)));

    let (ready_reason, ready_message) = if let Some((stall_reason, stall, _)) = &stalled {
        ((*stall_reason).to_owned(), stall.clone())
    } else if ready_status == "True" {
        (
            reason_or(ready.and_then(|c| c.reason.as_deref()), reason::READY),
            message_or(
                ready.and_then(|c| c.message.as_deref()),
                "Knative Service is Ready",
            ),
        )
    } else {
        (
            reason_or(ready.and_then(|c| c.reason.as_deref()), reason::NOT_READY),
            message_or(
                ready.and_then(|c| c.message.as_deref()),
                if knative.is_none() {
                    "Knative Service has not reported a status yet"
                } else if current.is_none() {
                    "Knative has not observed the latest spec of the Service yet"
                } else {
                    "Knative Service has not reported Ready yet"
                },
            ),
        )
    };
    let ready_status = if stalled.is_some() { "False" } else { ready_status };
    let failed = ready_status == "False";
    let rolling_out = ready_status == "Unknown";

    let mut conditions = Vec::with_capacity(6);
    let mut set = |type_: &str, status: &str, reason: String, message: String| {
        conditions.push(condition(
            &previous, generation, now, type_, status, reason, message,
        ));
    };
    set(
        types::READY,
        ready_status,
        ready_reason.clone(),
        ready_message.clone(),
    );
    let left = &observed.left_in_place;
    if !observed.conflicts.is_empty() {
        set(
            types::DEGRADED,
            "True",
            reasons::OWNERSHIP_CONFLICT.into(),
            join(&observed.conflicts, left),
        );
    } else if failed {
        set(
            types::DEGRADED,
            "True",
            ready_reason,
            join(std::slice::from_ref(&ready_message), left),
        );
    } else if !left.is_empty() {
        set(
            types::DEGRADED,
            "False",
            reasons::NOT_OWNED.into(),
            join(left, &[]),
        );
    } else {
        set(
            types::DEGRADED,
            "False",
            reason::AS_EXPECTED.into(),
            "No errors detected".into(),
        );
    }
    if rolling_out {
        set(
            types::RECONCILING,
            "True",
            reason::ROLLING_OUT.into(),
            "Waiting for the Knative Service to become Ready".into(),
        );
    } else {
        set(
            types::RECONCILING,
            "False",
            reason::RECONCILED.into(),
            "Reconciliation complete".into(),
        );
    }

    conditions.extend(spec_conditions(app, &previous, now));
    let image_cache = image_cache_condition(app, &previous, observed.image_cache.as_ref(), now);
    let mut transitions = Vec::new();
    if let Some((stall_reason, message, elapsed)) = &stalled
        && previous_reason(&previous, types::READY) != Some(*stall_reason)
    {
        transitions.push((*stall_reason, format!("{message} (stalled for {elapsed})")));
    }
    for c in conditions.iter().chain(&image_cache) {
        let changed = previous_reason(&previous, &c.type_) != Some(c.reason.as_str());
        let event = match c.reason.as_str() {
            reason::PROVISION_KAFKA_SOURCE_INERT => Some(reason::PROVISION_KAFKA_SOURCE_INERT),
            reason::RECONCILE_FAILED | reason::CLEANUP_FAILED => Some(event::IMAGE_PREWARM_FAILED),
            _ => None,
        };
        if let Some(event) = event
            && changed
        {
            transitions.push((event, c.message.clone()));
        }
    }
    let image_cache_retry = matches!(
        observed.image_cache,
        Some(ImageCache::ApplyFailed(_) | ImageCache::CleanupFailed(_))
    );
    conditions.extend(image_cache);

    let observed_revision = knative.and_then(|k| k.latest_ready_revision_name.clone());
    let new_revision_ready = ready_status == "True"
        && observed_revision.is_some()
        && (previous.observed_revision != observed_revision
            || previous.last_successful_deploy_time.is_none());
    let status = NextAppStatus {
        url: knative.and_then(|k| k.url.clone()).or(previous.url.clone()),
        conditions,
        current_traffic: knative
            .map(|k| {
                k.traffic
                    .iter()
                    .map(|t| TrafficStatus {
                        revision_name: t.revision_name.clone(),
                        percent: t.percent,
                        latest_revision: t.latest_revision,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        database_secret_name: app
            .spec
            .database
            .as_ref()
            .and_then(|d| d.secret_ref.as_ref())
            .map(|r| r.name.clone()),
        observed_revision: observed_revision.or(previous.observed_revision.clone()),
        scaled_to_zero: observed.revision_active.map(|active| !active),
        last_successful_deploy_time: if new_revision_ready {
            Some(Time(now))
        } else {
            previous.last_successful_deploy_time.clone()
        },
        observed_generation: generation,
    };
    let requeue = [
        (ready_status != "True").then_some(NOT_READY_REQUEUE),
        (!observed.conflicts.is_empty()).then_some(CONFLICT_REQUEUE),
        (observed.pinned == Pinned::NotFound).then_some(PIN_REQUEUE),
        image_cache_retry.then_some(IMAGE_CACHE_RETRY),
    ];
    Verdict {
        status,
        requeue: requeue.into_iter().flatten().min(),
        transitions,
    }
}

fn previous_reason<'a>(previous: &'a NextAppStatus, type_: &str) -> Option<&'a str> {
    previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

/// `PinnedRevisionNotFound` (reason, message, elapsed) when `traffic.revisionName` names a Revision
/// that is missing while the routes have not been ready for [`PIN_STALL`] (from Knative's own
/// `lastTransitionTime`, so no memory is needed); a failed lookup keeps the previous verdict.
fn pinned_stall(
    app: &NextApp,
    previous: &NextAppStatus,
    pinned: Pinned,
    knative: Option<&KnativeStatus>,
    now: Timestamp,
) -> Option<(&'static str, String, String)> {
    let revision = app
        .spec
        .traffic
        .as_ref()
        .and_then(|t| t.revision_name.as_deref())?;
    let missing = match pinned {
        Pinned::NotFound => true,
        Pinned::Unknown => previous_reason(previous, types::READY) == Some(reason::PINNED_REVISION_NOT_FOUND),
        Pinned::NotPinned | Pinned::Found => false,
    };
    if !missing {
        return None;
    }
    let c = knative?
        .condition("RoutesReady")
        .or_else(|| knative?.condition("Ready"))?;
    if c.status == "True" {
        return None;
    }
    let since: Timestamp = c.last_transition_time.as_deref()?.parse().ok()?;
    let stalled = now.duration_since(since);
    if stalled < SignedDuration::try_from(PIN_STALL).ok()? {
        return None;
    }
    let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
    let name = app.metadata.name.as_deref().unwrap_or_default();
    Some((
        reason::PINNED_REVISION_NOT_FOUND,
        format!(
            "spec.traffic.revisionName pins Revision \"{revision}\", which does not exist, and the \
             routes have not been ready for over 2 minutes: list the app's revisions with `kubectl get \
             revisions -n {namespace} -l serving.knative.dev/service={name}` and pin one of them, or \
             remove spec.traffic to serve the latest ready revision"
        ),
        elapsed(stalled),
    ))
}

/// `1h2m3s`, `2m0s`: whole seconds, as Go prints durations.
fn elapsed(d: SignedDuration) -> String {
    let s = d.as_secs().max(0);
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `DatabaseReady` (when `database.secretRef` is set) and `RevalidationDeferred` (always): what the
/// spec asks of the operator beyond the Knative Service, said in the status.
fn spec_conditions(app: &NextApp, previous: &NextAppStatus, now: Timestamp) -> Vec<Condition> {
    let generation = app.metadata.generation;
    let mut out = Vec::with_capacity(2);
    let mut set = |type_: &str, status: &str, reason: &str, message: String| {
        out.push(condition(
            previous,
            generation,
            now,
            type_,
            status,
            reason.to_owned(),
            message,
        ));
    };
    if let Some(db) = &app.spec.database
        && let Some(rw) = &db.secret_ref
    {
        let key = |r: &crate::api::DatabaseSecretRef, default: &str| {
            r.key.clone().unwrap_or_else(|| default.to_owned())
        };
        let mut message = format!(
            "DATABASE_URL comes from key \"{}\" of Secret \"{}\"",
            key(rw, "DATABASE_URL"),
            rw.name
        );
        if let Some(ro) = &db.ro_secret_ref {
            message.push_str(&format!(
                ", DATABASE_URL_RO from key \"{}\" of Secret \"{}\"",
                key(ro, "DATABASE_URL_RO"),
                ro.name
            ));
        }
        set(types::DATABASE_READY, "True", reason::BOUND, message);
    }
    let kafka = app.spec.revalidation.as_ref().filter(|r| r.queue.is_some());
    match kafka {
        Some(r) if r.provision_kafka_source == Some(true) => set(
            types::REVALIDATION_DEFERRED,
            "True",
            reason::PROVISION_KAFKA_SOURCE_INERT,
            "revalidation.provisionKafkaSource is ignored: knext provisions no KafkaSource and no \
             consumer, so revalidation messages on Kafka reach nobody; the app gets KAFKA_BROKER_URL \
             and KAFKA_REVALIDATION_TOPIC, and cache invalidation through knext serve's authenticated \
             endpoint works fleet-wide"
                .into(),
        ),
        Some(_) => set(
            types::REVALIDATION_DEFERRED,
            "True",
            reason::CONSUMER_NOT_PROVISIONED,
            "revalidation.queue is kafka, but knext provisions no consumer: revalidation messages on \
             Kafka reach nobody; the app gets KAFKA_BROKER_URL and KAFKA_REVALIDATION_TOPIC, and cache \
             invalidation through knext serve's authenticated endpoint works fleet-wide"
                .into(),
        ),
        None => set(
            types::REVALIDATION_DEFERRED,
            "False",
            reason::NOT_DEFERRED,
            "Kafka revalidation not deferred".into(),
        ),
    }
    out
}

/// `ImageCacheReady` from the prewarm DaemonSet; `None` (the condition is removed) when the option is
/// off and nothing failed.
fn image_cache_condition(
    app: &NextApp,
    previous: &NextAppStatus,
    cache: Option<&ImageCache>,
    now: Timestamp,
) -> Option<Condition> {
    let (status, reason, message) = match cache? {
        ImageCache::Applied { desired, ready } if *desired > 0 && ready >= desired => (
            "True",
            reason::CACHED,
            format!("The app image is cached on all {desired} node(s) the DaemonSet runs on"),
        ),
        ImageCache::Applied { desired, ready } => (
            "False",
            reason::PULLING,
            format!("{ready}/{desired} node(s) hold the app image"),
        ),
        ImageCache::ApplyFailed(e) => ("False", reason::RECONCILE_FAILED, e.clone()),
        ImageCache::CleanupFailed(e) => ("False", reason::CLEANUP_FAILED, e.clone()),
    };
    Some(condition(
        previous,
        app.metadata.generation,
        now,
        types::IMAGE_CACHE_READY,
        status,
        reason.to_owned(),
        message,
    ))
}

/// The status when the Knative Service was withheld by an ownership conflict: `Ready=False`,
/// `Degraded=True`, both `OwnershipConflict`; observed fields stay (nothing was applied there).
fn withheld_knative(app: &NextApp, observed: &Observed, withheld: &str, now: Timestamp) -> Verdict {
    let previous = app.status.clone().unwrap_or_default();
    let generation = app.metadata.generation;
    let set = |type_: &str, status: &str, message: String| {
        condition(
            &previous,
            generation,
            now,
            type_,
            status,
            reasons::OWNERSHIP_CONFLICT.into(),
            message,
        )
    };
    let conditions = vec![
        set(types::READY, "False", withheld.to_owned()),
        set(
            types::DEGRADED,
            "True",
            join(&observed.conflicts, &observed.left_in_place),
        ),
        set(
            types::RECONCILING,
            "False",
            format!(
                "Waiting for the ownership conflict to be resolved (checked every {} s)",
                CONFLICT_REQUEUE.as_secs()
            ),
        ),
    ];
    let mut conditions = conditions;
    conditions.extend(extra_conditions(&previous));
    Verdict {
        status: NextAppStatus {
            conditions,
            observed_generation: generation,
            ..previous
        },
        requeue: Some(CONFLICT_REQUEUE),
        transitions: Vec::new(),
    }
}

/// The conditions beyond Ready, Degraded and Reconciling, as they were: a pass that applied nothing
/// (invalid spec, withheld Knative Service) changes none of them.
fn extra_conditions(previous: &NextAppStatus) -> impl Iterator<Item = Condition> + '_ {
    previous
        .conditions
        .iter()
        .filter(|c| ![types::READY, types::DEGRADED, types::RECONCILING].contains(&c.type_.as_str()))
        .cloned()
}

/// `a; b; …` over both lists.
fn join(first: &[String], then: &[String]) -> String {
    first
        .iter()
        .chain(then)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The status of an app whose spec was rejected: nothing was applied, observed fields stay.
pub fn rejected(app: &NextApp, reason: &str, message: &str, now: Timestamp) -> NextAppStatus {
    let previous = app.status.clone().unwrap_or_default();
    let generation = app.metadata.generation;
    let message = truncate(message);
    let conditions = vec![
        condition(
            &previous,
            generation,
            now,
            types::READY,
            "False",
            reason.into(),
            message.clone(),
        ),
        condition(
            &previous,
            generation,
            now,
            types::DEGRADED,
            "True",
            reason.into(),
            message,
        ),
        condition(
            &previous,
            generation,
            now,
            types::RECONCILING,
            "False",
            reason.into(),
            "Nothing was applied: fix the spec".into(),
        ),
    ];
    let mut conditions = conditions;
    conditions.extend(extra_conditions(&previous));
    NextAppStatus {
        conditions,
        observed_generation: generation,
        ..previous
    }
}

/// `InvalidImage` when any problem is about an image, else `InvalidSpec`.
pub fn rejection_reason(report: &crate::policy::Report) -> &'static str {
    if report
        .problems
        .iter()
        .any(|p| p.severity == crate::policy::Severity::Error && p.reason == reasons::INVALID_IMAGE)
    {
        reasons::INVALID_IMAGE
    } else {
        reasons::INVALID_SPEC
    }
}

/// The stall message when routes have been `IngressNotConfigured` for [`INGRESS_STALL`] or longer.
fn ingress_stall(knative: &KnativeStatus, now: Timestamp) -> Option<(&'static str, String, String)> {
    let c = knative
        .condition("RoutesReady")
        .or_else(|| knative.condition("Ready"))?;
    if c.status == "True" || c.reason.as_deref() != Some("IngressNotConfigured") {
        return None;
    }
    let since: Timestamp = c.last_transition_time.as_deref()?.parse().ok()?;
    let stalled = now.duration_since(since);
    (stalled >= SignedDuration::try_from(INGRESS_STALL).ok()?).then(|| {
        (
            reason::INGRESS_NOT_PROGRAMMED,
            "Knative has not programmed the ingress for this Service for over 2 minutes \
             (IngressNotConfigured): check that a networking layer is installed and that the \
             config-network ConfigMap in knative-serving names its ingress-class"
                .to_owned(),
            elapsed(stalled),
        )
    })
}

fn condition(
    previous: &NextAppStatus,
    generation: Option<i64>,
    now: Timestamp,
    type_: &str,
    status: &str,
    reason: String,
    message: String,
) -> Condition {
    let last = previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone());
    Condition {
        last_transition_time: last.unwrap_or(Time(now)),
        message: truncate(&message),
        observed_generation: generation,
        reason,
        status: status.into(),
        type_: type_.into(),
    }
}

/// A Knative reason if it is a valid condition reason (`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`,
/// at most 1024 characters), else `fallback`.
fn reason_or(reason: Option<&str>, fallback: &str) -> String {
    match reason {
        Some(r) if is_valid_reason(r) => r.to_owned(),
        _ => fallback.to_owned(),
    }
}

fn is_valid_reason(r: &str) -> bool {
    let bytes = r.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    r.len() <= 1024
        && first.is_ascii_alphabetic()
        && (last.is_ascii_alphanumeric() || *last == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'))
}

fn message_or(message: Option<&str>, fallback: &str) -> String {
    match message {
        Some(m) if !m.trim().is_empty() => truncate(m),
        _ => fallback.to_owned(),
    }
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NextAppSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn app() -> NextApp {
        NextApp {
            metadata: ObjectMeta {
                name: Some("shop".into()),
                namespace: Some("web".into()),
                generation: Some(3),
                ..Default::default()
            },
            spec: NextAppSpec {
                image:
                    "r.example/shop@sha256:3333333333333333333333333333333333333333333333333333333333333333"
                        .into(),
                ..Default::default()
            },
            status: None,
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn knative(status: &str, reason: Option<&str>, since: &str) -> KnativeStatus {
        KnativeStatus {
            conditions: vec![
                KnativeCondition {
                    type_: "Ready".into(),
                    status: status.into(),
                    reason: reason.map(Into::into),
                    message: reason.map(|r| format!("Knative says {r}")),
                    last_transition_time: Some(since.into()),
                },
                KnativeCondition {
                    type_: "RoutesReady".into(),
                    status: status.into(),
                    reason: reason.map(Into::into),
                    message: None,
                    last_transition_time: Some(since.into()),
                },
            ],
            url: Some("https://shop.web.example.com".into()),
            traffic: vec![KnativeTraffic {
                revision_name: Some("shop-00002".into()),
                percent: Some(100),
                latest_revision: Some(true),
            }],
            latest_ready_revision_name: Some("shop-00002".into()),
            observed_generation: Some(2),
        }
    }

    fn cond<'a>(s: &'a NextAppStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn a_ready_knative_service_makes_the_app_ready_with_its_url() {
        let now = t("2026-11-29T10:00:00Z");
        let observed = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:59:00Z")),
            revision_active: Some(false),
            ..Observed::default()
        };
        let v = applied(&app(), &observed, now);
        assert_eq!(v.requeue, None);
        let s = &v.status;
        assert_eq!(cond(s, "Ready").status, "True");
        assert_eq!(cond(s, "Ready").reason, reason::READY);
        assert_eq!(cond(s, "Degraded").status, "False");
        assert_eq!(cond(s, "Reconciling").status, "False");
        assert!(s.conditions.iter().all(|c| c.observed_generation == Some(3)));
        assert_eq!(s.url.as_deref(), Some("https://shop.web.example.com"));
        assert_eq!(s.observed_revision.as_deref(), Some("shop-00002"));
        assert_eq!(s.scaled_to_zero, Some(true));
        assert_eq!(s.current_traffic.len(), 1);
        assert_eq!(s.last_successful_deploy_time, Some(Time(now)));
        assert_eq!(s.observed_generation, Some(3));
    }

    #[test]
    fn the_same_observation_later_yields_the_same_status() {
        let observed = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:59:00Z")),
            revision_active: Some(true),
            ..Observed::default()
        };
        let mut a = app();
        a.status = Some(applied(&a, &observed, t("2026-11-29T10:00:00Z")).status);
        let later = applied(&a, &observed, t("2026-11-29T11:00:00Z")).status;
        assert_eq!(Some(later), a.status, "a steady state must not change the status");
    }

    #[test]
    fn not_ready_carries_knatives_reason_and_requeues() {
        let observed = Observed {
            knative: Some(knative("False", Some("RevisionFailed"), "2026-11-29T09:59:00Z")),
            revision_active: None,
            ..Observed::default()
        };
        let v = applied(&app(), &observed, t("2026-11-29T10:00:00Z"));
        assert_eq!(v.requeue, Some(NOT_READY_REQUEUE));
        let ready = cond(&v.status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "RevisionFailed")
        );
        assert_eq!(ready.message, "Knative says RevisionFailed");
        assert_eq!(cond(&v.status, "Degraded").status, "True");
        assert_eq!(v.status.last_successful_deploy_time, None);
    }

    #[test]
    fn an_absent_knative_status_is_not_ready_and_rolling_out() {
        let v = applied(&app(), &Observed::default(), t("2026-11-29T10:00:00Z"));
        let ready = cond(&v.status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("Unknown", reason::NOT_READY)
        );
        assert_eq!(cond(&v.status, "Degraded").status, "False");
        assert_eq!(cond(&v.status, "Reconciling").status, "True");
        assert_eq!(v.requeue, Some(NOT_READY_REQUEUE));
    }

    #[test]
    fn ingress_not_configured_for_two_minutes_is_ingress_not_programmed() {
        let k = knative("Unknown", Some("IngressNotConfigured"), "2026-11-29T10:00:00Z");
        let observed = Observed {
            knative: Some(k),
            revision_active: None,
            ..Observed::default()
        };
        let early = applied(&app(), &observed, t("2026-11-29T10:01:59Z"));
        assert_eq!(cond(&early.status, "Ready").reason, "IngressNotConfigured");
        assert_eq!(cond(&early.status, "Degraded").status, "False");
        let late = applied(&app(), &observed, t("2026-11-29T10:02:00Z"));
        let ready = cond(&late.status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", reason::INGRESS_NOT_PROGRAMMED)
        );
        assert_eq!(
            cond(&late.status, "Degraded").reason,
            reason::INGRESS_NOT_PROGRAMMED
        );
    }

    #[test]
    fn a_status_of_an_older_knative_generation_is_not_ready() {
        let observed = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:00:00Z")),
            revision_active: None,
            knative_generation: Some(3),
            ..Observed::default()
        };
        let v = applied(&app(), &observed, t("2026-11-29T10:00:00Z"));
        let ready = cond(&v.status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("Unknown", reason::NOT_READY)
        );
        assert!(ready.message.contains("latest spec"), "{}", ready.message);
        assert_eq!(v.requeue, Some(NOT_READY_REQUEUE));
        let caught_up = Observed {
            knative_generation: Some(2),
            ..observed
        };
        assert_eq!(
            cond(
                &applied(&app(), &caught_up, t("2026-11-29T10:00:00Z")).status,
                "Ready"
            )
            .status,
            "True"
        );
    }

    #[test]
    fn transition_times_move_only_when_the_status_does() {
        let since = "2026-11-29T09:00:00Z";
        let mut a = app();
        let not_ready = Observed {
            knative: Some(knative("Unknown", Some("Deploying"), since)),
            revision_active: None,
            ..Observed::default()
        };
        a.status = Some(applied(&a, &not_ready, t("2026-11-29T10:00:00Z")).status);
        let ready = Observed {
            knative: Some(knative("True", None, since)),
            revision_active: None,
            ..Observed::default()
        };
        let s = applied(&a, &ready, t("2026-11-29T10:05:00Z")).status;
        assert_eq!(
            cond(&s, "Ready").last_transition_time,
            Time(t("2026-11-29T10:05:00Z"))
        );
        // Degraded stayed False: its time is kept.
        assert_eq!(
            cond(&s, "Degraded").last_transition_time,
            Time(t("2026-11-29T10:00:00Z"))
        );
    }

    #[test]
    fn a_rejected_spec_keeps_observed_fields_and_names_the_reason() {
        let mut a = app();
        let ready = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:00:00Z")),
            revision_active: None,
            ..Observed::default()
        };
        a.status = Some(applied(&a, &ready, t("2026-11-29T10:00:00Z")).status);
        a.metadata.generation = Some(4);
        let s = rejected(
            &a,
            reasons::INVALID_IMAGE,
            "spec.image: tag-only",
            t("2026-11-29T10:10:00Z"),
        );
        assert_eq!(cond(&s, "Ready").reason, "InvalidImage");
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Degraded").status, "True");
        assert_eq!(cond(&s, "Degraded").message, "spec.image: tag-only");
        for type_ in ["Ready", "Degraded", "Reconciling"] {
            assert_eq!(cond(&s, type_).observed_generation, Some(4), "{type_}");
        }
        // Nothing was applied: the other conditions still describe what was, at its generation.
        let before = a.status.as_ref().unwrap();
        assert_eq!(
            cond(&s, "RevalidationDeferred"),
            cond(before, "RevalidationDeferred")
        );
        assert_eq!(cond(&s, "RevalidationDeferred").observed_generation, Some(3));
        assert_eq!(s.url.as_deref(), Some("https://shop.web.example.com"));
        assert_eq!(s.observed_generation, Some(4));
    }

    #[test]
    fn a_conflict_degrades_and_requeues_while_ready_still_mirrors_the_applied_knative_service() {
        let observed = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:00:00Z")),
            conflicts: vec!["NetworkPolicy web/shop-allow-ingress is controlled by X".into()],
            ..Observed::default()
        };
        let v = applied(&app(), &observed, t("2026-11-29T10:00:00Z"));
        assert_eq!(cond(&v.status, "Ready").status, "True");
        let degraded = cond(&v.status, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", reasons::OWNERSHIP_CONFLICT)
        );
        assert_eq!(
            degraded.message,
            "NetworkPolicy web/shop-allow-ingress is controlled by X"
        );
        assert_eq!(v.requeue, Some(CONFLICT_REQUEUE));
        // Not Ready as well: the shorter requeue wins.
        let not_ready = Observed {
            knative: None,
            ..observed
        };
        assert_eq!(
            applied(&app(), &not_ready, t("2026-11-29T10:00:00Z")).requeue,
            Some(NOT_READY_REQUEUE)
        );
    }

    #[test]
    fn a_withheld_knative_service_is_not_ready_and_keeps_the_observed_fields() {
        let mut a = app();
        let ready = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:00:00Z")),
            ..Observed::default()
        };
        a.status = Some(applied(&a, &ready, t("2026-11-29T10:00:00Z")).status);
        a.metadata.generation = Some(4);
        let withheld = Observed {
            conflicts: vec![
                "ServiceAccount web/shop-sa …".into(),
                "Knative Service web/shop not applied".into(),
            ],
            knative_withheld: Some("Knative Service web/shop not applied".into()),
            ..Observed::default()
        };
        let v = applied(&a, &withheld, t("2026-11-29T10:10:00Z"));
        let s = &v.status;
        for type_ in ["Ready", "Degraded", "Reconciling"] {
            assert_eq!(cond(s, type_).reason, reasons::OWNERSHIP_CONFLICT, "{type_}");
        }
        assert_eq!(
            (
                cond(s, "Ready").status.as_str(),
                cond(s, "Ready").message.as_str()
            ),
            ("False", "Knative Service web/shop not applied")
        );
        assert_eq!(
            cond(s, "Degraded").message,
            "ServiceAccount web/shop-sa …; Knative Service web/shop not applied"
        );
        assert_eq!(cond(s, "Reconciling").status, "False");
        for type_ in ["Ready", "Degraded", "Reconciling"] {
            assert_eq!(cond(s, type_).observed_generation, Some(4), "{type_}");
        }
        assert_eq!(cond(s, "RevalidationDeferred").observed_generation, Some(3));
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.url.as_deref(), Some("https://shop.web.example.com"));
        assert_eq!(s.observed_revision.as_deref(), Some("shop-00002"));
        assert_eq!(v.requeue, Some(CONFLICT_REQUEUE));
    }

    #[test]
    fn a_policy_left_in_place_is_named_in_degraded_without_degrading_the_app() {
        let observed = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:00:00Z")),
            left_in_place: vec!["NetworkPolicy web/shop-allow-ingress left in place".into()],
            ..Observed::default()
        };
        let v = applied(&app(), &observed, t("2026-11-29T10:00:00Z"));
        let degraded = cond(&v.status, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("False", reasons::NOT_OWNED)
        );
        assert_eq!(
            degraded.message,
            "NetworkPolicy web/shop-allow-ingress left in place"
        );
        assert_eq!(v.requeue, None, "not a failure: nothing to wait for");
        // A Knative failure degrades the app and keeps the note.
        let failed = Observed {
            knative: Some(knative("False", Some("RevisionFailed"), "2026-11-29T09:00:00Z")),
            ..observed
        };
        let degraded = applied(&app(), &failed, t("2026-11-29T10:00:00Z")).status;
        let degraded = cond(&degraded, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "RevisionFailed")
        );
        assert_eq!(
            degraded.message,
            "Knative says RevisionFailed; NetworkPolicy web/shop-allow-ingress left in place"
        );
    }

    #[test]
    fn invalid_knative_reasons_and_huge_messages_are_made_safe() {
        assert_eq!(reason_or(Some("Bad Reason!"), "Fallback"), "Fallback");
        assert_eq!(reason_or(Some("RevisionMissing"), "Fallback"), "RevisionMissing");
        assert_eq!(reason_or(Some(""), "Fallback"), "Fallback");
        let long = "é".repeat(5000);
        let t = truncate(&long);
        assert!(t.len() <= MAX_MESSAGE + 3 && t.ends_with('…'));
    }

    fn pinned_app() -> NextApp {
        let mut a = app();
        a.spec.traffic = Some(crate::api::TrafficSpec {
            revision_name: Some("shop-00001".into()),
            canary_percent: None,
        });
        a
    }

    fn routes_failing(since: &str) -> KnativeStatus {
        let mut k = knative("False", Some("RevisionMissing"), since);
        k.observed_generation = None;
        k
    }

    #[test]
    fn a_missing_pinned_revision_is_named_after_two_minutes_and_wins_over_the_ingress_stall() {
        let observed = Observed {
            knative: Some(routes_failing("2026-11-29T10:00:00Z")),
            pinned: Pinned::NotFound,
            ..Observed::default()
        };
        // Before two minutes: Knative's own reason, and a requeue to look again.
        let early = applied(&pinned_app(), &observed, t("2026-11-29T10:01:59Z"));
        assert_eq!(cond(&early.status, "Ready").reason, "RevisionMissing");
        assert!(early.transitions.is_empty());
        assert_eq!(early.requeue, Some(PIN_REQUEUE));
        let late = applied(&pinned_app(), &observed, t("2026-11-29T10:02:13Z"));
        let ready = cond(&late.status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", reason::PINNED_REVISION_NOT_FOUND)
        );
        assert!(
            ready.message.contains("Revision \"shop-00001\""),
            "{}",
            ready.message
        );
        assert!(
            ready
                .message
                .contains("kubectl get revisions -n web -l serving.knative.dev/service=shop"),
            "{}",
            ready.message
        );
        assert_eq!(cond(&late.status, "Degraded").status, "True");
        assert_eq!(
            cond(&late.status, "Degraded").reason,
            reason::PINNED_REVISION_NOT_FOUND
        );
        // One Warning event on the transition, with the elapsed time; the message itself is static.
        assert_eq!(late.transitions.len(), 1);
        assert_eq!(late.transitions[0].0, reason::PINNED_REVISION_NOT_FOUND);
        assert!(
            late.transitions[0].1.ends_with("(stalled for 2m13s)"),
            "{:?}",
            late.transitions
        );
        // An ingress stall as well: the pin wins.
        let both = Observed {
            knative: Some(knative(
                "Unknown",
                Some("IngressNotConfigured"),
                "2026-11-29T10:00:00Z",
            )),
            pinned: Pinned::NotFound,
            ..Observed::default()
        };
        let v = applied(&pinned_app(), &both, t("2026-11-29T10:05:00Z"));
        assert_eq!(cond(&v.status, "Ready").reason, reason::PINNED_REVISION_NOT_FOUND);
        // The next pass from that status: no second event.
        let mut a = pinned_app();
        a.status = Some(late.status.clone());
        let again = applied(&a, &observed, t("2026-11-29T10:03:00Z"));
        assert!(again.transitions.is_empty());
        assert_eq!(again.status, late.status, "a steady stall writes nothing");
        // A failed lookup keeps the verdict; a found revision ends it.
        let unknown = Observed {
            pinned: Pinned::Unknown,
            ..observed.clone()
        };
        assert_eq!(
            cond(&applied(&a, &unknown, t("2026-11-29T10:04:00Z")).status, "Ready").reason,
            reason::PINNED_REVISION_NOT_FOUND
        );
        let found = Observed {
            pinned: Pinned::Found,
            ..observed
        };
        assert_eq!(
            cond(&applied(&a, &found, t("2026-11-29T10:04:00Z")).status, "Ready").reason,
            "RevisionMissing"
        );
    }

    #[test]
    fn a_missing_pinned_revision_while_the_service_is_ready_only_requeues() {
        let observed = Observed {
            knative: Some(knative("True", None, "2026-11-29T09:00:00Z")),
            pinned: Pinned::NotFound,
            ..Observed::default()
        };
        let v = applied(&pinned_app(), &observed, t("2026-11-29T10:00:00Z"));
        assert_eq!(cond(&v.status, "Ready").status, "True");
        assert_eq!(v.requeue, Some(PIN_REQUEUE));
    }

    #[test]
    fn the_ingress_stall_is_a_transition_event_once() {
        let observed = Observed {
            knative: Some(knative(
                "Unknown",
                Some("IngressNotConfigured"),
                "2026-11-29T10:00:00Z",
            )),
            ..Observed::default()
        };
        let v = applied(&app(), &observed, t("2026-11-29T11:02:03Z"));
        assert_eq!(
            v.transitions,
            [(
                reason::INGRESS_NOT_PROGRAMMED,
                format!("{} (stalled for 1h2m3s)", cond(&v.status, "Ready").message)
            )]
        );
        let mut a = app();
        a.status = Some(v.status);
        assert!(
            applied(&a, &observed, t("2026-11-29T11:05:00Z"))
                .transitions
                .is_empty()
        );
    }

    #[test]
    fn database_ready_names_the_secret_and_goes_with_the_field() {
        let mut a = app();
        a.spec.database = Some(crate::api::DatabaseSpec {
            secret_ref: Some(crate::api::DatabaseSecretRef {
                name: "shop-db".into(),
                key: None,
            }),
            ro_secret_ref: Some(crate::api::DatabaseSecretRef {
                name: "shop-db-ro".into(),
                key: Some("url".into()),
            }),
        });
        let v = applied(&a, &Observed::default(), t("2026-11-29T10:00:00Z"));
        let db = cond(&v.status, "DatabaseReady");
        assert_eq!((db.status.as_str(), db.reason.as_str()), ("True", "Bound"));
        assert_eq!(
            db.message,
            "DATABASE_URL comes from key \"DATABASE_URL\" of Secret \"shop-db\", DATABASE_URL_RO from key \
             \"url\" of Secret \"shop-db-ro\""
        );
        a.status = Some(v.status);
        a.spec.database = None;
        let v = applied(&a, &Observed::default(), t("2026-11-29T10:01:00Z"));
        assert!(v.status.conditions.iter().all(|c| c.type_ != "DatabaseReady"));
        assert_eq!(v.status.database_secret_name, None);
    }

    #[test]
    fn revalidation_deferred_says_what_kafka_settings_do_not_do() {
        let v = applied(&app(), &Observed::default(), t("2026-11-29T10:00:00Z"));
        let c = cond(&v.status, "RevalidationDeferred");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "NotDeferred"));
        assert!(v.transitions.is_empty());
        let mut a = app();
        a.spec.revalidation = Some(crate::api::RevalidationSpec {
            queue: Some(crate::api::RevalidationQueue::Kafka),
            kafka_broker_url: Some("kafka:9092".into()),
            provision_kafka_source: None,
        });
        let v = applied(&a, &Observed::default(), t("2026-11-29T10:00:00Z"));
        let c = cond(&v.status, "RevalidationDeferred");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "ConsumerNotProvisioned")
        );
        assert!(v.transitions.is_empty(), "a condition, not an event");
        if let Some(r) = a.spec.revalidation.as_mut() {
            r.provision_kafka_source = Some(true);
        }
        a.status = Some(v.status);
        let v = applied(&a, &Observed::default(), t("2026-11-29T10:01:00Z"));
        let c = cond(&v.status, "RevalidationDeferred");
        assert_eq!(c.reason, "ProvisionKafkaSourceInert");
        assert_eq!(v.transitions.len(), 1);
        assert_eq!(v.transitions[0].0, "ProvisionKafkaSourceInert");
        a.status = Some(v.status);
        assert!(
            applied(&a, &Observed::default(), t("2026-11-29T10:02:00Z"))
                .transitions
                .is_empty()
        );
    }

    #[test]
    fn image_cache_ready_reports_coverage_and_failures_without_touching_ready() {
        let ready = knative("True", None, "2026-11-29T09:00:00Z");
        let at = |cache: Option<ImageCache>| {
            applied(
                &app(),
                &Observed {
                    knative: Some(ready.clone()),
                    image_cache: cache,
                    ..Observed::default()
                },
                t("2026-11-29T10:00:00Z"),
            )
        };
        let cached = at(Some(ImageCache::Applied { desired: 3, ready: 3 }));
        let c = cond(&cached.status, "ImageCacheReady");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Cached"));
        assert_eq!(cached.requeue, None);
        let pulling = at(Some(ImageCache::Applied { desired: 3, ready: 1 }));
        let c = cond(&pulling.status, "ImageCacheReady");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            ("False", "Pulling", "1/3 node(s) hold the app image")
        );
        let none_scheduled = at(Some(ImageCache::Applied { desired: 0, ready: 0 }));
        assert_eq!(cond(&none_scheduled.status, "ImageCacheReady").reason, "Pulling");
        let failed = at(Some(ImageCache::ApplyFailed(
            "apply DaemonSet web/shop-imgcache: forbidden".into(),
        )));
        let c = cond(&failed.status, "ImageCacheReady");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "ReconcileFailed")
        );
        assert_eq!(failed.requeue, Some(IMAGE_CACHE_RETRY));
        assert_eq!(failed.transitions.len(), 1);
        assert_eq!(failed.transitions[0].0, event::IMAGE_PREWARM_FAILED);
        let cleanup = at(Some(ImageCache::CleanupFailed("delete: forbidden".into())));
        assert_eq!(cond(&cleanup.status, "ImageCacheReady").reason, "CleanupFailed");
        for v in [&cached, &pulling, &failed, &cleanup] {
            assert_eq!(cond(&v.status, "Ready").status, "True");
            assert_eq!(cond(&v.status, "Degraded").status, "False");
        }
        assert!(
            at(None)
                .status
                .conditions
                .iter()
                .all(|c| c.type_ != "ImageCacheReady")
        );
    }
}
