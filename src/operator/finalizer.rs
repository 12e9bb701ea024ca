//! The finalizer `apps.kn-next.dev/external-cleanup`: state outside the cluster (the app's Redis keys
//! and its objects in the bucket) goes when the NextApp does.
//!
//! - A live NextApp carries the finalizer exactly when it has such state ([`wants`]): `cache.provider:
//!   redis` with a `keyPrefix` and a `url`, or `storage.provider` (not `local`) with a `bucket`. The
//!   operator adds or removes it with a JSON merge patch that names the `resourceVersion` it read, so a
//!   concurrent change of the finalizers fails the patch (409) instead of being overwritten; the pass
//!   is retried. Apps without external state do not carry it, so they can be deleted while the
//!   operator is not running (the existing operator put it on every app; knext removes it from those
//!   that do not need it).
//! - A NextApp being deleted that carries it (whoever added it: the existing operator's apps all do)
//!   gets one bounded ([`CLEANUP_BOUND`]), best-effort cleanup: the Redis keys and objects
//!   ([`super::cleanup`]), and the app's ClusterImagePolicy (which the sweep would otherwise delete
//!   within a minute). Each failure is a Warning event `CleanupFailed`; then the finalizer is removed
//!   whatever happened, so a cleanup never holds up a deletion past the bound. What was deleted is a
//!   Normal event `CleanedUp`.
//! - The in-cluster children need nothing: owner references let the garbage collector remove them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::api::{NextApp, NextAppSpec};

/// The finalizer's name (the existing operator's).
pub const FINALIZER: &str = "apps.kn-next.dev/external-cleanup";
/// Longest a cleanup may take before the finalizer is removed anyway.
pub const CLEANUP_BOUND: Duration = Duration::from_secs(30);

/// Warning event reason of a failed cleanup.
pub const CLEANUP_FAILED: &str = "CleanupFailed";
/// Normal event reason of a cleanup that deleted something.
pub const CLEANED_UP: &str = "CleanedUp";

/// What one store's cleanup did: `Ok(summary)` (e.g. "deleted 12 Redis keys matching shop:*"), or
/// `Err(message)` saying what failed and what to fix.
pub type StoreResult = Result<String, String>;

/// The external cleanup of one app (name, spec): one result per store it applies to. The operator's
/// is [`super::cleanup`]; tests substitute their own.
pub type Cleaner =
    Arc<dyn Fn(String, NextAppSpec) -> Pin<Box<dyn Future<Output = Vec<StoreResult>> + Send>> + Send + Sync>;

/// Whether `spec` names state outside the cluster that deleting the app must remove: what the
/// cleanup itself would clean ([`super::cleanup::has_external_state`]).
pub fn wants(spec: &NextAppSpec) -> bool {
    super::cleanup::has_external_state(spec)
}

/// Whether the NextApp carries the finalizer.
pub fn has(app: &NextApp) -> bool {
    app.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds (`present`) or removes the finalizer with a JSON merge patch of `metadata.finalizers`, on
/// condition that the NextApp is still at the `resourceVersion` read (else 409). Other finalizers stay
/// as they are. A NextApp already gone is fine.
pub async fn set(client: &Client, app: &NextApp, present: bool) -> Result<(), kube::Error> {
    let mut finalizers: Vec<String> = app
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": app.resource_version(),
        }
    });
    let api = Api::<NextApp>::namespaced(client.clone(), &app.namespace().unwrap_or_default());
    match api
        .patch(&app.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The operator's cleaner: [`super::cleanup::run`] with the pod's environment and the files of the
/// optional Secret [`crate::api::operator::CLEANUP_SECRET`], read at each deletion (so a rotated
/// Secret is picked up); a Secret that cannot be read is logged and the pod's environment used alone.
pub fn default_cleaner() -> Cleaner {
    Arc::new(|app, spec| Box::pin(async move { clean(&app, &spec).await }))
}

async fn clean(app: &str, spec: &NextAppSpec) -> Vec<StoreResult> {
    use super::cleanup::{Credentials, run};
    let creds = match Credentials::from_dir(crate::api::operator::CLEANUP_DIR) {
        Ok(creds) => creds,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the cleanup credentials; using the pod's environment only");
            Credentials::default()
        }
    };
    if !creds.ignored().is_empty() {
        tracing::warn!(
            ignored = ?creds.ignored(),
            "files of the cleanup Secret that are no credential knext knows"
        );
    }
    let report = run(app, spec, &creds).await;
    for note in &report.notes {
        tracing::info!(nextapp = app, %note, "cleanup");
    }
    let prefix = spec
        .cache
        .as_ref()
        .and_then(|c| c.key_prefix.as_deref())
        .map(str::trim)
        .unwrap_or_default();
    let bucket = spec
        .storage
        .as_ref()
        .and_then(|s| s.bucket.as_deref())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(2);
    if let Some(result) = report.redis {
        out.push(
            result
                .map(|n| format!("deleted {n} Redis keys matching {prefix}:*"))
                .map_err(|e| e.to_string()),
        );
    }
    if let Some(result) = report.objects {
        out.push(
            result
                .map(|n| format!("deleted {n} objects under {app}/ in bucket {bucket}"))
                .map_err(|e| e.to_string()),
        );
    }
    out
}
