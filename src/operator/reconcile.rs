//! One NextApp → its children and its status: finalizer → validate → render → inspect → apply →
//! prune → status.
//!
//! - **finalizer** ([`super::finalizer`]): kept exactly on apps with Redis keys or objects to delete;
//!   a NextApp being deleted that carries it gets its bounded cleanup, then loses it.
//! - **validate** with the one validator ([`crate::policy::validate`]). On failure: `Ready=False`,
//!   `Degraded=True` with reason `InvalidImage` or `InvalidSpec`, a Warning event with the full message,
//!   nothing applied, and no requeue (the next change of the NextApp triggers the next pass). Each
//!   warning becomes a Warning event (reason: the problem's, note `path: message`) once per generation:
//!   only while the status has not observed the NextApp's generation yet.
//! - **render** with the same renderers as the CLI and build.rs, with controller owner references to
//!   the NextApp (so deleting it garbage-collects the children).
//! - **inspect** the three child names (Knative Service, ServiceAccount, NetworkPolicy) with one
//!   metadata-only GET each, and decide with [`super::ownership`] what may be applied or deleted: never
//!   an object another owner controls, nor one without a controller that is not labelled for this app.
//! - **apply** every object allowed by server-side apply, field manager `knext-operator`, `force`, the
//!   ServiceAccount before the Knative Service whose pods name it.
//!   The cluster-scoped ClusterImagePolicy of `security.signature` follows, through
//!   [`super::image_policy`] (no owner reference can tie it to the NextApp: labels and an owner-UID
//!   annotation do, and a sweep deletes the policies of NextApps that are gone).
//!   The image-prewarm NetworkPolicy and DaemonSet follow, best-effort ([`super::image_cache`]).
//! - **prune**: when the NetworkPolicy is not rendered (`security.networkPolicy: false`), delete
//!   `<app>-allow-ingress` by name if this NextApp controls it, whatever its labels, on condition that
//!   it is still the object inspected (UID precondition); otherwise leave it and say so.
//! - **status**: computed by [`super::status`], written by server-side apply on the status
//!   subresource only when it differs from the live one. A conflict, or a policy left in place, is
//!   also a Warning event, published when the status does not name it yet (so once, not every pass).
//!
//! Events: a Normal `Reconciled` when an apply changed an object (its `resourceVersion`) or something
//! was deleted, a Warning `ReconcileFailed` when a pass fails, and the status's transitions
//! ([`status::Verdict::transitions`]); a steady app publishes and writes nothing.
//!
//! Requeue at the next warm-window boundary (10 s to 1 h), after 30 s while the Knative Service is not
//! Ready or a pinned Revision is missing, 60 s while an ownership conflict lasts,
//! 2 min after an image-prewarm failure, 5 min while a signature cannot be enforced because policy-controller is not installed;
//! API errors back off exponentially per object (5 s doubling to 5 min) without holding up other
//! NextApps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, GetParams, Patch, PatchParams, Preconditions};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::finalizer::{self, Cleaner};
use super::image_cache;
use super::image_policy::{self, Outcome};
use super::metrics::Metrics;
use super::ownership::{self, Child, Holders, Prune};
use super::status::{self, KnativeStatus, Observed, Pinned};
use crate::api::{self, NextApp, NextAppStatus, reasons, sigstore};
use crate::policy::{self, Report, Severity};
use crate::render::{self, Manifest, RenderOptions};

/// Name the operator reports events as.
pub const CONTROLLER: &str = "knext-operator";
/// First delay after an API error; doubles per consecutive error of the same object.
pub const BACKOFF_START: Duration = Duration::from_secs(5);
/// Longest delay after API errors.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Warning event reason of a pass that failed (an API call or serialization); retried with backoff.
pub const REASON_RECONCILE_FAILED: &str = "ReconcileFailed";
/// Normal event reason of a pass that changed what was applied.
pub const REASON_RECONCILED: &str = "Reconciled";
/// The Events API's limit on a note.
const MAX_NOTE: usize = 1024;
/// Longest an event may take to publish before the pass goes on without it (the client's own read
/// timeout is minutes).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Knative Service resource.
pub fn knative_service_resource() -> ApiResource {
    ApiResource {
        group: "serving.knative.dev".into(),
        version: "v1".into(),
        api_version: api::knative::API_VERSION.into(),
        kind: "Service".into(),
        plural: "services".into(),
    }
}

/// The Knative Revision resource.
pub fn knative_revision_resource() -> ApiResource {
    ApiResource {
        group: "serving.knative.dev".into(),
        version: "v1".into(),
        api_version: api::knative::API_VERSION.into(),
        kind: "Revision".into(),
        plural: "revisions".into(),
    }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Event publisher.
    pub recorder: Recorder,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// The clock (tests fix it).
    pub now: fn() -> Timestamp,
    /// How long publishing one event may hold up a pass ([`EVENT_TIMEOUT`]; tests shorten it).
    pub event_timeout: Duration,
    /// The cluster-wide default of `spec.security.signature` (`--signature-*`), for apps without one.
    pub default_signature: Option<crate::api::SignatureSpec>,
    /// The external cleanup run when a NextApp with the finalizer is deleted ([`finalizer`]).
    pub cleaner: Cleaner,
    /// How long that cleanup may take ([`finalizer::CLEANUP_BOUND`]; tests shorten it).
    pub cleanup_bound: Duration,
    /// knext's image for the image-prewarm init container (`--knext-image`); `None`: the image this
    /// build pins ([`crate::render::BUILT_KNEXT_IMAGE`]).
    pub knext_image: Option<String>,
    /// Consecutive API errors per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context for `client`; `instance` names this replica in events (the pod name).
    pub fn new(client: Client, metrics: Arc<Metrics>, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER.into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            now: Timestamp::now,
            event_timeout: EVENT_TIMEOUT,
            default_signature: None,
            cleaner: finalizer::default_cleaner(),
            cleanup_bound: finalizer::CLEANUP_BOUND,
            knext_image: None,
            failures: Mutex::default(),
        }
    }
}

/// Why a reconcile failed (all of these are retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object lacks a field the API server always sets.
    #[error("the NextApp has no {0}")]
    MissingField(&'static str),
    /// An API call failed.
    #[error("{verb} {kind} {namespace}/{name}: {source}")]
    Api {
        /// What was attempted.
        verb: &'static str,
        /// Kind of the object.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A rendered object could not be serialized.
    #[error("serializing {kind} {name}: {source}")]
    Serialize {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
}

fn api_error<'a>(
    verb: &'static str,
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
) -> impl FnOnce(kube::Error) -> Error + 'a {
    move |source| Error::Api {
        verb,
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    }
}

fn key(app: &NextApp) -> String {
    format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any())
}

/// The reconcile function the controller runs.
pub async fn reconcile(app: Arc<NextApp>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key(&app);
    ctx.metrics.start(&key);
    let started = Instant::now();
    let result = reconcile_app(&app, &ctx).await;
    if let Err(error) = &result {
        // What the pass could not write, in `kubectl describe` (the log has it too).
        warn_event(
            &ctx,
            &app,
            REASON_RECONCILE_FAILED,
            "Reconcile",
            &error.to_string(),
        )
        .await;
    }
    let requeue = matches!(result, Ok((_, true)));
    ctx.metrics
        .finish(&key, result.is_ok(), started.elapsed(), requeue);
    if result.is_ok()
        && let Ok(mut failures) = ctx.failures.lock()
    {
        failures.remove(&key);
    }
    result.map(|(action, _)| action)
}

/// What the controller does after an error: back off exponentially, per object.
pub fn error_policy(app: Arc<NextApp>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key(&app);
    let attempt = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = backoff(attempt);
    tracing::warn!(nextapp = %key, attempt, retry_in_s = delay.as_secs(), error = %error, "reconcile failed");
    Action::requeue(delay)
}

/// 5 s, 10 s, 20 s, … capped at 5 minutes.
pub fn backoff(attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    BACKOFF_START.saturating_mul(factor).min(BACKOFF_MAX)
}

/// The stages; returns the action and whether a timed requeue is pending.
async fn reconcile_app(app: &NextApp, ctx: &Context) -> Result<(Action, bool), Error> {
    let namespace = app
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = app
        .metadata
        .name
        .as_deref()
        .ok_or(Error::MissingField("metadata.name"))?;
    let uid = app
        .metadata
        .uid
        .as_deref()
        .ok_or(Error::MissingField("metadata.uid"))?;
    if app.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children; the finalizer's cleanup
        // removes what lies outside the cluster.
        ctx.metrics.forget(&key(app));
        if finalizer::has(app) {
            finalize(ctx, app, namespace, name, uid).await?;
        }
        return Ok((Action::await_change(), false));
    }
    let now = (ctx.now)();

    // 0. the finalizer, exactly on apps with state outside the cluster (before validation: an app
    // whose spec became invalid may still have keys and objects to delete)
    let wants_finalizer = finalizer::wants(&app.spec);
    if wants_finalizer != finalizer::has(app) {
        let verb = if wants_finalizer {
            "add the finalizer to"
        } else {
            "remove the finalizer from"
        };
        finalizer::set(&ctx.client, app, wants_finalizer)
            .await
            .map_err(api_error(verb, "NextApp", namespace, name))?;
    }

    // 1. validate
    let valid = match policy::validate(app) {
        Ok((valid, report)) => {
            publish_warnings(ctx, app, &report).await;
            valid
        }
        Err(report) => {
            let reason = status::rejection_reason(&report);
            let message = report
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            tracing::info!(nextapp = %key(app), reason, %message, "spec rejected; nothing applied");
            warn_event(ctx, app, reason, "Validate", &message).await;
            publish_warnings(ctx, app, &report).await;
            write_status(ctx, app, status::rejected(app, reason, &message, now)).await?;
            return Ok((Action::await_change(), false));
        }
    };

    // 2. render
    let opts = RenderOptions {
        owner_uid: Some(uid),
        default_signature: ctx.default_signature.as_ref(),
        knext_image: ctx.knext_image.as_deref(),
        now: Some(now),
    };
    let manifests = render::app(&valid, &opts);
    if let Some(message) = render::image_policy::default_uncoverable(&valid, &opts)
        && !generation_observed(app)
    {
        warn_event(ctx, app, reasons::SIGNATURE_NOT_ENFORCED, "Apply", &message).await;
    }

    // 3. inspect
    let (holders, versions) = inspect(ctx, namespace, name, uid).await?;
    let rendered: Vec<Child> = manifests.iter().filter_map(Child::of).collect();
    let plan = ownership::plan(name, namespace, &rendered, &holders);

    // 4. apply
    let params = PatchParams::apply(api::FIELD_MANAGER).force();
    let mut observed = Observed {
        conflicts: [plan.conflicts.clone(), plan.consequences.clone()].concat(),
        knative_withheld: plan.knative_withheld.clone(),
        ..Observed::default()
    };
    // The ServiceAccount first: the Knative Service's pods name it.
    let mut applying: Vec<(&Manifest, Child)> = manifests
        .iter()
        .filter_map(|m| Child::of(m).filter(|c| plan.applies(*c)).map(|c| (m, c)))
        .collect();
    applying.sort_by_key(|(_, c)| c.apply_rank());
    let mut changed: Vec<String> = Vec::new();
    for (m, child) in applying {
        let body = m.to_json().map_err(|source| Error::Serialize {
            kind: m.kind(),
            name: m.name().to_owned(),
            source,
        })?;
        let patch = Patch::Apply(&body);
        let apply_err = api_error("apply", m.kind(), namespace, m.name());
        match m {
            Manifest::KnativeService(_) => {
                let api = Api::<DynamicObject>::namespaced_with(
                    ctx.client.clone(),
                    namespace,
                    &knative_service_resource(),
                );
                let live = api.patch(m.name(), &params, &patch).await.map_err(apply_err)?;
                note_change(&mut changed, &versions, child, &live.metadata, || {
                    format!(" (image {})", valid.spec().image)
                });
                observed.knative_generation = live.metadata.generation;
                observed.knative = live
                    .data
                    .get("status")
                    .and_then(|s| serde_json::from_value::<KnativeStatus>(s.clone()).ok());
            }
            Manifest::ServiceAccount(_) => {
                let live = Api::<ServiceAccount>::namespaced(ctx.client.clone(), namespace)
                    .patch(m.name(), &params, &patch)
                    .await
                    .map_err(apply_err)?;
                note_change(&mut changed, &versions, child, &live.metadata, String::new);
            }
            Manifest::NetworkPolicy(_) => {
                let live = Api::<NetworkPolicy>::namespaced(ctx.client.clone(), namespace)
                    .patch(m.name(), &params, &patch)
                    .await
                    .map_err(apply_err)?;
                note_change(&mut changed, &versions, child, &live.metadata, String::new);
            }
            Manifest::ClusterImagePolicy(_) => {}
            // Applied by the image-prewarm step below (`Child::of` leaves it out).
            Manifest::DaemonSet(_) => {}
        }
    }

    // 4b. the cluster-scoped ClusterImagePolicy (no owner reference can hold it)
    let wanted = manifests.iter().find_map(|m| match m {
        Manifest::ClusterImagePolicy(p) => Some(p.as_ref()),
        _ => None,
    });
    let mut signature_retry = None;
    let mut image_policy_conflict = None;
    match image_policy::reconcile(
        &ctx.client,
        namespace,
        name,
        uid,
        wanted,
        !generation_observed(app),
    )
    .await?
    {
        Outcome::Nothing | Outcome::Applied => {}
        Outcome::Deleted => changed.push(format!(
            "deleted ClusterImagePolicy {}",
            render::image_policy::cluster_image_policy_name(namespace, name)
        )),
        Outcome::NotInstalled => {
            signature_retry = Some(image_policy::RETRY);
            if !generation_observed(app) {
                let message = format!(
                    "spec.security.signature is not enforced: the cluster has no {}.{} resource, so \
                     Sigstore policy-controller is not installed; knext applies the ClusterImagePolicy \
                     once it is (it looks again every {} s)",
                    sigstore::PLURAL,
                    sigstore::GROUP,
                    image_policy::RETRY.as_secs()
                );
                tracing::warn!(nextapp = %key(app), %message);
                warn_event(ctx, app, reasons::SIGNATURE_NOT_ENFORCED, "Apply", &message).await;
            }
        }
        Outcome::Conflict(message) => {
            observed.conflicts.push(message.clone());
            image_policy_conflict = Some(message);
        }
    }

    // 4c. the image-prewarm DaemonSet: best-effort, reported in ImageCacheReady only
    let reported_cache = app
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .any(|c| c.type_ == status::types::IMAGE_CACHE_READY);
    let prewarm = image_cache::reconcile(
        &ctx.client,
        namespace,
        name,
        uid,
        &manifests,
        reported_cache,
        plan.applies(Child::ServiceAccount),
    )
    .await;
    observed.image_cache = prewarm.cache;
    changed.extend(prewarm.changed);

    // 5. prune
    match &plan.prune {
        Prune::Nothing => {}
        Prune::Delete { uid } => delete_network_policy(ctx, namespace, name, uid).await?,
        Prune::Leave(message) => {
            tracing::info!(nextapp = %key(app), %message, "NetworkPolicy left in place");
            observed.left_in_place.push(message.clone());
        }
    }

    // 6. status
    if let Some(revision) = observed
        .knative
        .as_ref()
        .and_then(|k| k.latest_ready_revision_name.clone())
    {
        observed.revision_active = revision_active(ctx, namespace, &revision).await;
    }
    if let Some(pinned) = valid
        .spec()
        .traffic
        .as_ref()
        .and_then(|t| t.revision_name.as_deref())
    {
        observed.pinned = revision_exists(ctx, namespace, pinned).await;
    }
    let verdict = status::applied(app, &observed, now);
    for (reason, note) in &verdict.transitions {
        tracing::warn!(nextapp = %key(app), reason, %note);
        warn_event(ctx, app, reason, "Reconcile", note).await;
    }
    for conflict in plan
        .conflicts
        .iter()
        .chain(&image_policy_conflict)
        .filter(|m| !reported(app, m))
    {
        tracing::warn!(nextapp = %key(app), message = %conflict, "ownership conflict: not applied");
        warn_event(ctx, app, reasons::OWNERSHIP_CONFLICT, "Apply", conflict).await;
    }
    for left in observed.left_in_place.iter().filter(|m| !reported(app, m)) {
        warn_event(ctx, app, reasons::NOT_OWNED, "Delete", left).await;
    }
    if let Some(note) = changes_note(&changed) {
        tracing::info!(nextapp = %key(app), %note);
        event(ctx, app, EventType::Normal, REASON_RECONCILED, "Apply", &note).await;
    }
    write_status(ctx, app, verdict.status).await?;
    let requeue = [verdict.requeue, signature_retry, warm_requeue(valid.spec(), now)]
        .into_iter()
        .flatten()
        .min();
    Ok(match requeue {
        Some(after) => (Action::requeue(after), true),
        None => (Action::await_change(), false),
    })
}

/// The note of the `Reconciled` event: "Applied A, B; deleted C" (entries starting with "deleted " are
/// deletions); `None` when nothing changed.
fn changes_note(changed: &[String]) -> Option<String> {
    let (deleted, applied): (Vec<&str>, Vec<&str>) = changed
        .iter()
        .map(String::as_str)
        .partition(|c| c.starts_with("deleted "));
    let deleted: Vec<&str> = deleted.iter().map(|d| &d["deleted ".len()..]).collect();
    let parts: Vec<String> = [("Applied", applied), ("deleted", deleted)]
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .map(|(verb, items)| format!("{verb} {}", items.join(", ")))
        .collect();
    let note = parts.join("; ");
    let mut chars = note.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

/// Shortest and longest wait for the next warm-window boundary.
pub const WARM_REQUEUE: (Duration, Duration) = (Duration::from_secs(10), Duration::from_secs(3600));

/// When to look again for `scaling.warmSchedule`: at the next window boundary (a start or an end),
/// clamped to [`WARM_REQUEUE`] (the floor is recomputed at every pass; a clock step or a missed
/// boundary is caught within the hour). `None` without windows, and for previews (forced to 0).
fn warm_requeue(spec: &api::NextAppSpec, now: Timestamp) -> Option<Duration> {
    let scaling = spec.scaling.as_ref().filter(|s| !s.warm_schedule.is_empty())?;
    if spec.preview.as_ref().is_some_and(|p| p.enabled == Some(true)) {
        return None;
    }
    let next = policy::warm::warm_floor(scaling, now).next_boundary?;
    let wait = Duration::try_from(next.duration_since(now)).unwrap_or_default();
    Some(wait.clamp(WARM_REQUEUE.0, WARM_REQUEUE.1))
}

/// Who holds each child's name: one metadata-only GET per name (a few hundred bytes each, whatever
/// the object's size), in render order, with `resourceVersion=0`: the API server answers from its
/// watch cache instead of a quorum read of etcd, as fresh as the informer caches controllers usually
/// decide from. A stale answer cannot make knext take over another owner's object: the API server
/// refuses an object with two controller references (422), the pass fails and the next one looks
/// again; a stale "ours" before a delete fails the UID precondition the same way.
///
/// NB: the controller's watches of the children cannot answer this: they select knext's label, so
/// they never see the objects that matter here (another owner's, or unlabelled ones), and kube-runtime
/// exposes no store for `owns` without its unstable features. Checking after a forced apply would be
/// too late: the apply would already have taken the fields over.
async fn inspect(ctx: &Context, namespace: &str, app: &str, uid: &str) -> Result<(Holders, Versions), Error> {
    let any = GetParams::any();
    let mut holders = Holders::absent();
    let mut versions = Versions::new();
    for child in Child::ALL {
        let name = child.name(app);
        let meta = match child {
            Child::KnativeService => Api::<DynamicObject>::namespaced_with(
                ctx.client.clone(),
                namespace,
                &knative_service_resource(),
            )
            .get_metadata_opt_with(&name, &any)
            .await
            .map(|m| m.map(|m| m.metadata)),
            Child::ServiceAccount => Api::<ServiceAccount>::namespaced(ctx.client.clone(), namespace)
                .get_metadata_opt_with(&name, &any)
                .await
                .map(|m| m.map(|m| m.metadata)),
            Child::NetworkPolicy => Api::<NetworkPolicy>::namespaced(ctx.client.clone(), namespace)
                .get_metadata_opt_with(&name, &any)
                .await
                .map(|m| m.map(|m| m.metadata)),
        }
        .map_err(api_error("get", child.kind(), namespace, &name))?;
        let holder = ownership::classify(meta.as_ref(), app, uid);
        versions.insert(child, meta.as_ref().and_then(|m| m.resource_version.clone()));
        match child {
            Child::KnativeService => holders.knative_service = holder,
            Child::ServiceAccount => holders.service_account = holder,
            Child::NetworkPolicy => holders.network_policy = holder,
        }
    }
    Ok((holders, versions))
}

/// The `resourceVersion` of each child's name as inspected (`None`: absent).
type Versions = HashMap<Child, Option<String>>;

/// Notes `child` as changed when the apply returned another `resourceVersion` than inspected (a
/// server-side apply that changes nothing keeps it), with `detail` after its description.
fn note_change(
    changed: &mut Vec<String>,
    versions: &Versions,
    child: Child,
    live: &kube::api::ObjectMeta,
    detail: impl FnOnce() -> String,
) {
    let before = versions.get(&child).cloned().flatten();
    if before.is_none() || before != live.resource_version {
        changed.push(format!(
            "{} {}{}",
            child.describe(),
            live.name.as_deref().unwrap_or_default(),
            detail()
        ));
    }
}

/// Runs the finalizer's cleanup of a NextApp being deleted (bounded by
/// [`finalizer::CLEANUP_BOUND`]): its Redis keys and objects through `ctx.cleaner`, then its
/// ClusterImagePolicy; a Warning event per failure, a Normal one naming what went; then the finalizer
/// is removed whatever happened (a failed removal fails the pass, which is retried).
async fn finalize(ctx: &Context, app: &NextApp, namespace: &str, name: &str, uid: &str) -> Result<(), Error> {
    let cleanup = async {
        let mut results = (ctx.cleaner)(name.to_owned(), app.spec.clone()).await;
        match image_policy::reconcile(&ctx.client, namespace, name, uid, None, true).await {
            Ok(Outcome::Deleted) => results.push(Ok(format!(
                "deleted ClusterImagePolicy {}",
                render::image_policy::cluster_image_policy_name(namespace, name)
            ))),
            Ok(_) => {}
            Err(e) => results.push(Err(e.to_string())),
        }
        results
    };
    let results = match tokio::time::timeout(ctx.cleanup_bound, cleanup).await {
        Ok(results) => results,
        Err(_) => vec![Err(format!(
            "the cleanup did not finish within {:?}; what it had not deleted yet remains",
            ctx.cleanup_bound
        ))],
    };
    let mut done = Vec::new();
    for result in results {
        match result {
            Ok(summary) => done.push(summary),
            Err(message) => {
                tracing::warn!(nextapp = %key(app), %message, "cleanup failed; removing the finalizer anyway");
                warn_event(ctx, app, finalizer::CLEANUP_FAILED, "Delete", &message).await;
            }
        }
    }
    if !done.is_empty() {
        let note = done.join("; ");
        tracing::info!(nextapp = %key(app), %note, "cleaned up");
        event(
            ctx,
            app,
            EventType::Normal,
            finalizer::CLEANED_UP,
            "Delete",
            &note,
        )
        .await;
    }
    finalizer::set(&ctx.client, app, false).await.map_err(api_error(
        "remove the finalizer from",
        "NextApp",
        namespace,
        name,
    ))
}

/// Deletes the app's NetworkPolicy on condition that it is still the object `uid` (a policy replaced
/// since the inspection is not deleted: the API server answers 409, the pass fails and the next one
/// inspects the new object). Already gone is fine.
async fn delete_network_policy(ctx: &Context, namespace: &str, app: &str, uid: &str) -> Result<(), Error> {
    let name = Child::NetworkPolicy.name(app);
    let api = Api::<NetworkPolicy>::namespaced(ctx.client.clone(), namespace);
    if delete_with_uid(&api, &name, uid).await.map_err(api_error(
        "delete",
        "NetworkPolicy",
        namespace,
        &name,
    ))? {
        tracing::info!(
            namespace,
            name,
            "deleted NetworkPolicy (security.networkPolicy is false)"
        );
    }
    Ok(())
}

/// Deletes `name` on condition that it is still the object `uid` (the API server answers 409 for a
/// replaced one); `false` when it is already gone.
pub(super) async fn delete_with_uid<K>(api: &Api<K>, name: &str, uid: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the live status already names `message` (in `Degraded`): then its event was published.
fn reported(app: &NextApp, message: &str) -> bool {
    app.status
        .iter()
        .flat_map(|s| &s.conditions)
        .any(|c| c.type_ == status::types::DEGRADED && c.message.contains(message))
}

/// Whether the status describes the NextApp's current generation (its warnings were published).
fn generation_observed(app: &NextApp) -> bool {
    let seen = app.status.as_ref().and_then(|s| s.observed_generation);
    matches!((seen, app.metadata.generation), (Some(seen), Some(current)) if seen >= current)
}

/// Publishes each validator warning as a Warning event, once per generation of the NextApp: only while
/// its status has not observed that generation. The requeues and the watch events that follow (the
/// status write among them) publish nothing more; an event that cannot be published is logged and
/// never retried, and neither fails nor holds up the pass for long ([`EVENT_TIMEOUT`]).
async fn publish_warnings(ctx: &Context, app: &NextApp, report: &Report) {
    if generation_observed(app) {
        return;
    }
    for warning in report.warnings() {
        warn_event(ctx, app, warning.reason, "Validate", &warning.to_string()).await;
    }
}

/// `Active` of a Revision: `Some(false)` when scaled to zero; `None` when unknown (errors included:
/// the field is informational and must not fail the pass).
async fn revision_active(ctx: &Context, namespace: &str, revision: &str) -> Option<bool> {
    let api =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &knative_revision_resource());
    match api.get_opt(revision).await {
        Ok(Some(rev)) => rev
            .data
            .pointer("/status/conditions")?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(|t| t.as_str()) == Some("Active"))
            .and_then(|c| c.get("status")?.as_str())
            .and_then(|s| match s {
                "True" => Some(true),
                "False" => Some(false),
                _ => None,
            }),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(namespace, revision, error = %e, "cannot read the revision");
            None
        }
    }
}

/// Whether Revision `revision` exists; a failed GET is [`Pinned::Unknown`] (the previous verdict
/// stands).
async fn revision_exists(ctx: &Context, namespace: &str, revision: &str) -> Pinned {
    let api =
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), namespace, &knative_revision_resource());
    match api.get_metadata_opt(revision).await {
        Ok(Some(_)) => Pinned::Found,
        Ok(None) => Pinned::NotFound,
        Err(e) => {
            tracing::debug!(namespace, revision, error = %e, "cannot look up the pinned revision");
            Pinned::Unknown
        }
    }
}

/// Server-side applies `status` on the status subresource, unless it equals the live status.
async fn write_status(ctx: &Context, app: &NextApp, status: NextAppStatus) -> Result<(), Error> {
    if app.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let namespace = app.namespace().unwrap_or_default();
    let name = app.name_any();
    let body = json!({
        "apiVersion": api::API_VERSION,
        "kind": api::KIND,
        "status": status,
    });
    Api::<NextApp>::namespaced(ctx.client.clone(), &namespace)
        .patch_status(
            &name,
            &PatchParams::apply(api::FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(api_error("patch status of", "NextApp", &namespace, &name))?;
    Ok(())
}

/// Publishes a Warning event about `app` ([`event`]).
async fn warn_event(ctx: &Context, app: &NextApp, reason: &str, action: &str, message: &str) {
    event(ctx, app, EventType::Warning, reason, action, message).await;
}

/// Publishes an event about `app`; a failure is logged, never returned, and the wait is bounded by
/// `ctx.event_timeout`.
async fn event(ctx: &Context, app: &NextApp, type_: EventType, reason: &str, action: &str, message: &str) {
    let mut note = message.to_owned();
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push('…');
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    let regarding = app.object_ref(&());
    let publishing = ctx.recorder.publish(&event, &regarding);
    match tokio::time::timeout(ctx.event_timeout, publishing).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(nextapp = %key(app), reason, error = %e, "cannot publish event"),
        Err(_) => tracing::warn!(nextapp = %key(app), reason, "publishing an event timed out"),
    }
}
