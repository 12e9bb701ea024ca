//! `scaling.imagePrewarm`: the `<app>-imgcache` DaemonSet (and the NetworkPolicy of the same name that
//! shuts its pods off the network), applied while the option is on and deleted when it is off.
//!
//! Everything here is best-effort and never affects `Ready` or `Degraded` (the app serves without a
//! warm image cache): a failure is the `ImageCacheReady` condition (`ReconcileFailed` or
//! `CleanupFailed`, a Warning event `ImagePrewarmFailed` on the transition, a retry after 2 minutes),
//! not a failed pass.
//!
//! Ownership follows the other children ([`super::ownership`]): a name held by another owner, or by
//! an unlabelled object without a controller, is left alone and named in the condition; the DaemonSet
//! is not applied while the ServiceAccount its pods run as is not this NextApp's. With the option off,
//! only objects this NextApp controls are deleted (UID precondition). The two names are looked up only
//! when the option is on or the status still reports `ImageCacheReady` (it was on), so apps that never
//! used it cost no request.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, GetParams, ObjectMeta, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ownership::{self, Holder};
use super::status::ImageCache;
use crate::api;
use crate::render::Manifest;
use crate::render::imgcache::{image_cache_name, is_image_prewarm};

/// What the step did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// For the `ImageCacheReady` condition; `None`: the option is off and nothing is left.
    pub cache: Option<ImageCache>,
    /// What changed, for the `Reconciled` event.
    pub changed: Vec<String>,
}

/// The step for app `app` (UID `uid`) in `namespace`, given everything rendered for it. `look`: the
/// status still reports `ImageCacheReady`; `service_account_ours`: the app's ServiceAccount may be
/// applied (else the DaemonSet, whose pods would run as it, is not).
pub async fn reconcile(
    client: &Client,
    namespace: &str,
    app: &str,
    uid: &str,
    manifests: &[Manifest],
    look: bool,
    service_account_ours: bool,
) -> Outcome {
    let daemon_set = manifests.iter().find_map(|m| match m {
        Manifest::DaemonSet(d) => Some(d.as_ref()),
        _ => None,
    });
    let policy = manifests.iter().find_map(|m| match m {
        Manifest::NetworkPolicy(p) if is_image_prewarm(&p.metadata) => Some(p),
        _ => None,
    });
    let on = daemon_set.is_some();
    let mut out = Outcome::default();
    if !on && policy.is_none() && !look {
        return out;
    }
    let name = image_cache_name(app);
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), namespace);
    let daemon_sets = Api::<DaemonSet>::namespaced(client.clone(), namespace);
    let step = async {
        // The policy first: the pods never run without it.
        let policy_object = format!("NetworkPolicy {namespace}/{name}");
        match policy {
            Some(p) => {
                apply(&policies, p, &policy_object, app, uid, &mut out.changed).await?;
            }
            None => delete_ours(&policies, &policy_object, app, uid, &mut out.changed)
                .await
                .map_err(Failure::Cleanup)?,
        }
        let object = format!("DaemonSet {namespace}/{name}");
        match daemon_set {
            Some(_) if !service_account_ours => Err(Failure::Apply(format!(
                "{object} not applied: its pods would run as ServiceAccount {namespace}/{}, which this \
                 NextApp does not control",
                crate::render::app::service_account_name(app)
            ))),
            Some(d) => {
                let live = apply(&daemon_sets, d, &object, app, uid, &mut out.changed).await?;
                Ok(Some(coverage(&live)))
            }
            None => {
                delete_ours(&daemon_sets, &object, app, uid, &mut out.changed)
                    .await
                    .map_err(Failure::Cleanup)?;
                Ok(None)
            }
        }
    };
    out.cache = match step.await {
        Ok(cache) => cache,
        Err(Failure::Apply(message)) => Some(ImageCache::ApplyFailed(message)),
        Err(Failure::Cleanup(message)) => Some(ImageCache::CleanupFailed(format!(
            "scaling.imagePrewarm is off, but {message}"
        ))),
    };
    out
}

enum Failure {
    Apply(String),
    Cleanup(String),
}

/// `ImageCache::Applied` from the DaemonSet's status: ready is min(updated, ready) once the status
/// describes the applied generation, else 0.
fn coverage(live: &DaemonSet) -> ImageCache {
    let status = live.status.clone().unwrap_or_default();
    let current =
        status.observed_generation.is_some() && status.observed_generation == live.metadata.generation;
    let ready = if current {
        status
            .updated_number_scheduled
            .unwrap_or(0)
            .min(status.number_ready)
    } else {
        0
    };
    ImageCache::Applied {
        desired: status.desired_number_scheduled,
        ready,
    }
}

/// Server-side applies `object` unless another owner holds its name; returns the live object.
async fn apply<K>(
    api: &Api<K>,
    object: &K,
    describe: &str,
    app: &str,
    uid: &str,
    changed: &mut Vec<String>,
) -> Result<K, Failure>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let meta = metadata(api, &name)
        .await
        .map_err(|e| Failure::Apply(format!("get {describe}: {e}")))?;
    let holder = ownership::classify(meta.as_ref(), app, uid);
    if !holder.may_apply() {
        return Err(Failure::Apply(format!(
            "{}; knext applies nothing to it",
            ownership::held(describe, &holder, app)
        )));
    }
    let body =
        serde_json::to_value(object).map_err(|e| Failure::Apply(format!("serializing {describe}: {e}")))?;
    let live = api
        .patch(
            &name,
            &PatchParams::apply(api::FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| Failure::Apply(format!("apply {describe}: {e}")))?;
    let before = meta.and_then(|m| m.resource_version);
    if before.is_none() || before != live.meta().resource_version {
        let kind = describe.split(' ').next().unwrap_or_default();
        changed.push(format!("{kind} {name}"));
    }
    Ok(live)
}

/// Deletes the object of that name if this NextApp controls it (UID precondition); anything else is
/// left alone.
async fn delete_ours<K>(
    api: &Api<K>,
    describe: &str,
    app: &str,
    uid: &str,
    changed: &mut Vec<String>,
) -> Result<(), String>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = describe.rsplit('/').next().unwrap_or_default().to_owned();
    let meta = metadata(api, &name)
        .await
        .map_err(|e| format!("{describe} could not be read: {e}"))?;
    let Holder::Ours { uid: object_uid } = ownership::classify(meta.as_ref(), app, uid) else {
        return Ok(());
    };
    if super::reconcile::delete_with_uid(api, &name, &object_uid)
        .await
        .map_err(|e| format!("{describe} could not be deleted: {e}"))?
    {
        changed.push(format!("deleted {describe}"));
    }
    Ok(())
}

/// The metadata of the object at `name` (from the watch cache), `None` when absent.
async fn metadata<K>(api: &Api<K>, name: &str) -> Result<Option<ObjectMeta>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .get_metadata_opt_with(name, &GetParams::any())
        .await?
        .map(|m| m.metadata))
}
