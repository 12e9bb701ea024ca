//! The app's Sigstore policy-controller `ClusterImagePolicy` (`knext.<namespace>.<app>`): applied,
//! deleted and swept without owner references, since a namespaced NextApp cannot own a
//! cluster-scoped object.
//!
//! - **Per pass** ([`reconcile`]), when the app has `security.signature`, or its spec changed since
//!   the status last observed it (so clearing the field is seen at once): one metadata-only LIST
//!   selecting the policy's name. A 404 means the API server has no such resource, i.e.
//!   policy-controller is not installed: the pass goes on, the app is told (a Warning event
//!   `SignatureNotEnforced`, once per generation) and is looked at again after [`RETRY`], not in a
//!   hot loop. A policy found there is applied (server-side apply, `knext-operator`, force) only if
//!   absent or labelled for this app (`apps.kn-next.dev/app`, `apps.kn-next.dev/namespace`,
//!   `app.kubernetes.io/managed-by=knext`); anything else is an ownership conflict, as for the
//!   namespaced children. Without `signature`, a policy is deleted only if it carries this NextApp's UID
//!   in `apps.kn-next.dev/owner-uid` (applied by the operator for this very NextApp), with UID and
//!   resourceVersion preconditions.
//! - **Sweep** ([`sweep`]), at start and every [`SWEEP_INTERVAL`] while leading: every policy carrying
//!   knext's labels and an owner UID whose NextApp is gone (or is another NextApp of the same name, or
//!   no longer asks for a signature) is deleted, with UID and resourceVersion preconditions, so a policy
//!   a reconcile re-applied meanwhile is left alone. This is what removes the policy of a deleted
//!   NextApp: without a finalizer, a deletion triggers no reconcile.
//!
//! A NextApp that carries the `apps.kn-next.dev/external-cleanup` finalizer (it has Redis keys or
//! objects to delete, [`super::finalizer`]) has its policy deleted by the finalizer's cleanup before it
//! goes; the policy of any other deleted NextApp goes at the next sweep. The finalizer is not added
//! for the policy alone: an app without external state stays deletable while no operator runs, and a
//! lingering policy only demands signatures.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};

use super::reconcile::Error;
use crate::api::{self, ClusterImagePolicy, annotations, labels, sigstore};
use crate::render::image_policy::cluster_image_policy_name;

/// How long a pass waits before looking again for policy-controller when it is not installed.
pub const RETRY: Duration = Duration::from_secs(300);
/// How often the operator sweeps policies whose NextApp is gone.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The `clusterimagepolicies.policy.sigstore.dev` resource.
pub fn resource() -> ApiResource {
    ApiResource {
        group: sigstore::GROUP.into(),
        version: sigstore::VERSION.into(),
        api_version: sigstore::API_VERSION.into(),
        kind: sigstore::KIND.into(),
        plural: sigstore::PLURAL.into(),
    }
}

fn policies(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &resource())
}

/// What a pass did with the app's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do or look at.
    Nothing,
    /// Applied.
    Applied,
    /// Deleted (it was this NextApp's and the app no longer asks for a signature).
    Deleted,
    /// The app asks for a signature but policy-controller's CRD is not installed.
    NotInstalled,
    /// An object of the policy's name that is not labelled for this app: nothing applied to it.
    Conflict(String),
}

/// Whether `meta` carries knext's labels for app `app` in `namespace`.
pub fn labelled_for(meta: &ObjectMeta, namespace: &str, app: &str) -> bool {
    let label = |k: &str| meta.labels.as_ref().and_then(|l| l.get(k)).map(String::as_str);
    label(labels::APP) == Some(app)
        && label(labels::APP_NAMESPACE) == Some(namespace)
        && label(labels::MANAGED_BY) == Some(api::MANAGED_BY)
}

fn owner_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(annotations::OWNER_UID))
        .map(String::as_str)
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The pass's step for the policy of app `app` (UID `uid`) in `namespace`: `wanted` is the rendered
/// policy (the app has `signature`); `look` says whether to look for one to delete when it has not
/// (its spec changed since the status observed it).
pub async fn reconcile(
    client: &Client,
    namespace: &str,
    app: &str,
    uid: &str,
    wanted: Option<&ClusterImagePolicy>,
    look: bool,
) -> Result<Outcome, Error> {
    if wanted.is_none() && !look {
        return Ok(Outcome::Nothing);
    }
    let name = cluster_image_policy_name(namespace, app);
    let api = policies(client);
    let err = |verb: &'static str| {
        let name = name.clone();
        move |source| Error::Api {
            verb,
            kind: sigstore::KIND,
            namespace: String::new(),
            name,
            source,
        }
    };
    let selector = ListParams::default().fields(&format!("metadata.name={name}"));
    let found = match api.list_metadata(&selector).await {
        Ok(list) => list.items.into_iter().next().map(|m| m.metadata),
        Err(e) if not_found(&e) => {
            return Ok(match wanted {
                Some(_) => Outcome::NotInstalled,
                None => Outcome::Nothing,
            });
        }
        Err(e) => return Err(err("list")(e)),
    };
    match (wanted, found) {
        (Some(policy), found) => {
            if let Some(meta) = found.as_ref().filter(|m| !labelled_for(m, namespace, app)) {
                let holder = match owner_uid(meta) {
                    Some(_) => "is labelled for another app",
                    None => "exists without knext's labels for this app",
                };
                return Ok(Outcome::Conflict(format!(
                    "ClusterImagePolicy {name} {holder}; knext applies nothing to it (label it {}={app}, \
                     {}={namespace} and {}={} to let knext adopt it)",
                    labels::APP,
                    labels::APP_NAMESPACE,
                    labels::MANAGED_BY,
                    api::MANAGED_BY
                )));
            }
            let body = serde_json::to_value(policy).map_err(|source| Error::Serialize {
                kind: sigstore::KIND,
                name: name.clone(),
                source,
            })?;
            let params = PatchParams::apply(api::FIELD_MANAGER).force();
            match api.patch(&name, &params, &Patch::Apply(&body)).await {
                Ok(_) => Ok(Outcome::Applied),
                // The CRD went away between the list and the apply.
                Err(e) if not_found(&e) => Ok(Outcome::NotInstalled),
                Err(e) => Err(err("apply")(e)),
            }
        }
        (None, Some(meta)) if labelled_for(&meta, namespace, app) && owner_uid(&meta) == Some(uid) => {
            delete_owned(client, &meta).await.map_err(err("delete"))?;
            Ok(Outcome::Deleted)
        }
        (None, _) => Ok(Outcome::Nothing),
    }
}

/// Deletes the policy `meta` describes, on condition that it is still that object at that version
/// (UID and resourceVersion preconditions). Gone or changed since is fine: the next pass or sweep
/// decides again.
pub async fn delete_owned(client: &Client, meta: &ObjectMeta) -> Result<bool, kube::Error> {
    let name = meta.name.clone().unwrap_or_default();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    match policies(client).delete(&name, &params).await {
        Ok(_) => {
            tracing::info!(name, "deleted ClusterImagePolicy");
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// What the sweep knows of the NextApp a policy is labelled for: its UID, and whether its spec asks
/// for a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppState {
    /// `metadata.uid`.
    pub uid: String,
    /// `spec.security.signature` is set.
    pub wants_signature: bool,
}

/// Whether the sweep deletes the policy `meta`: only a policy the operator applied (it carries an
/// owner UID) whose NextApp is gone, is another NextApp of the same name, or no longer asks for a
/// signature. A policy without knext's namespace and app labels or without an owner UID (`knext render`
/// output applied by GitOps) is never touched.
pub fn orphaned(meta: &ObjectMeta, app: impl Fn(&str, &str) -> Option<AppState>) -> bool {
    let label = |k: &str| meta.labels.as_ref().and_then(|l| l.get(k)).map(String::as_str);
    let (Some(namespace), Some(name), Some(owner)) =
        (label(labels::APP_NAMESPACE), label(labels::APP), owner_uid(meta))
    else {
        return false;
    };
    if label(labels::MANAGED_BY) != Some(api::MANAGED_BY) {
        return false;
    }
    match app(namespace, name) {
        None => true,
        Some(state) => state.uid != owner || !state.wants_signature,
    }
}

/// One sweep: lists knext's policies (of `namespace` only, when the operator watches one) and deletes
/// the orphaned ones ([`orphaned`]). `app` looks a NextApp up in the controller's cache, which must be
/// complete (the caller waits for it). Returns how many it deleted; policy-controller not installed is
/// zero.
pub async fn sweep(
    client: &Client,
    namespace: Option<&str>,
    app: impl Fn(&str, &str) -> Option<AppState>,
) -> Result<usize, kube::Error> {
    let selector = match namespace {
        Some(ns) => format!(
            "{}={},{}={ns}",
            labels::MANAGED_BY,
            api::MANAGED_BY,
            labels::APP_NAMESPACE
        ),
        None => format!(
            "{}={},{}",
            labels::MANAGED_BY,
            api::MANAGED_BY,
            labels::APP_NAMESPACE
        ),
    };
    let list = match policies(client)
        .list_metadata(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => list,
        Err(e) if not_found(&e) => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut deleted = 0;
    for item in list.items.iter().filter(|m| orphaned(&m.metadata, &app)) {
        tracing::info!(name = item.name_any(), "sweeping an orphaned ClusterImagePolicy");
        if delete_owned(client, &item.metadata).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn meta(labels: &[(&str, &str)], owner: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some("knext.web.shop".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            annotations: owner.map(|o| BTreeMap::from([(annotations::OWNER_UID.to_owned(), o.to_owned())])),
            ..Default::default()
        }
    }

    const KNEXT: &[(&str, &str)] = &[
        ("apps.kn-next.dev/app", "shop"),
        ("apps.kn-next.dev/namespace", "web"),
        ("app.kubernetes.io/managed-by", "knext"),
    ];

    fn state(uid: &str, wants_signature: bool) -> Option<AppState> {
        Some(AppState {
            uid: uid.into(),
            wants_signature,
        })
    }

    #[test]
    fn only_policies_the_operator_applied_for_a_gone_or_changed_app_are_orphans() {
        let ours = meta(KNEXT, Some("u-1"));
        assert!(orphaned(&ours, |_, _| None), "app deleted");
        assert!(
            orphaned(&ours, |_, _| state("u-2", true)),
            "another app of that name"
        );
        assert!(orphaned(&ours, |_, _| state("u-1", false)), "signature cleared");
        assert!(!orphaned(&ours, |_, _| state("u-1", true)), "still wanted");
        assert!(
            !orphaned(&ours, |ns, name| ((ns, name) == ("web", "shop"))
                .then(|| state("u-1", true))?),
            "looked up by the labels' namespace and name"
        );
        // GitOps output (no owner UID), or not knext's: never touched.
        assert!(!orphaned(&meta(KNEXT, None), |_, _| None));
        assert!(!orphaned(&meta(&KNEXT[..2], Some("u-1")), |_, _| None));
        assert!(!orphaned(&meta(&KNEXT[1..], Some("u-1")), |_, _| None));
        assert!(!orphaned(&meta(&[KNEXT[0], KNEXT[2]], Some("u-1")), |_, _| None));
    }

    #[test]
    fn labelled_for_needs_app_namespace_and_manager() {
        assert!(labelled_for(&meta(KNEXT, None), "web", "shop"));
        assert!(!labelled_for(&meta(KNEXT, None), "shop", "shop"));
        assert!(!labelled_for(&meta(KNEXT, None), "web", "cart"));
        assert!(!labelled_for(&meta(&KNEXT[..2], None), "web", "shop"));
    }
}
