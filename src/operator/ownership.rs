//! Who holds the name of each of a NextApp's children, and what the reconciler may do about it: the
//! decision between inspect and apply/prune in [`super::reconcile`]. Pure: it reads the metadata the
//! reconciler fetched (one metadata-only GET per child name) and does no I/O.
//!
//! Per child name (`<app>` Knative Service, `<app>-sa` ServiceAccount, `<app>-allow-ingress`
//! NetworkPolicy), the object found there is:
//! - **ours** when a controller ownerReference carries this NextApp's UID, whatever its labels. The Go
//!   operator knext replaces set the same reference, so its objects stay ours after a migration;
//! - **absent**: the apply creates it;
//! - **adoptable** when it has no controller and carries knext's labels for this app
//!   (`apps.kn-next.dev/app=<app>` and `app.kubernetes.io/managed-by=knext`, i.e. `knext render` output
//!   applied by GitOps or by hand) or the Go operator's (`app=<app>`, `generated-by=kn-next-operator`).
//!   The apply adopts it: it adds the controller reference, so from then on the object goes with the
//!   NextApp. This is the migration path GitOps → operator;
//! - **in conflict** otherwise: another controller, or no controller and none of those labels (made by
//!   hand or by another tool, e.g. a ServiceAccount a platform team prepared). A forced server-side
//!   apply would take its fields over, and adopting it would let the garbage collector delete it with
//!   the NextApp, so the reconciler applies nothing to it and reports `OwnershipConflict`.
//!
//! A conflict withholds what depends on the object: the Knative Service when the ServiceAccount is in
//! conflict (its pods would run as an account knext does not control, with whatever token, RBAC or
//! cloud identity that carries), and the NetworkPolicy when the Knative Service is (it selects the pods
//! `serving.knative.dev/service=<app>`: it would police another owner's workload). Everything else is
//! still applied: withholding it would protect nothing and only stop rollouts.
//!
//! Prune (`security.networkPolicy: false`) deletes `<app>-allow-ingress` only when it is ours, with the
//! inspected UID as a precondition; anything else there is left in place, and said so.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::{self, labels, legacy};
use crate::render::Manifest;
use crate::render::app::{network_policy_name, service_account_name};

/// One of the children a NextApp renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Child {
    /// The Knative Service `<app>`.
    KnativeService,
    /// The ServiceAccount `<app>-sa`.
    ServiceAccount,
    /// The NetworkPolicy `<app>-allow-ingress`.
    NetworkPolicy,
}

impl Child {
    /// Every child, in render (and inspection) order.
    pub const ALL: [Child; 3] = [Child::KnativeService, Child::ServiceAccount, Child::NetworkPolicy];

    /// The namespaced child a rendered object is; `None` for the cluster-scoped ClusterImagePolicy,
    /// which no owner reference can tie to the NextApp ([`super::image_policy`] handles it).
    pub fn of(manifest: &Manifest) -> Option<Self> {
        match manifest {
            Manifest::KnativeService(_) => Some(Self::KnativeService),
            Manifest::ServiceAccount(_) => Some(Self::ServiceAccount),
            // The image-prewarm NetworkPolicy and DaemonSet `<app>-imgcache` are best-effort, with
            // their own step ([`super::image_cache`]).
            Manifest::NetworkPolicy(p) if crate::render::imgcache::is_image_prewarm(&p.metadata) => None,
            Manifest::NetworkPolicy(_) => Some(Self::NetworkPolicy),
            Manifest::ClusterImagePolicy(_) => None,
            Manifest::DaemonSet(_) => None,
        }
    }

    /// The child's name for `app` (the renderers' names).
    pub fn name(self, app: &str) -> String {
        match self {
            Self::KnativeService => app.to_owned(),
            Self::ServiceAccount => service_account_name(app),
            Self::NetworkPolicy => network_policy_name(app),
        }
    }

    /// The API kind (`Service` for the Knative Service).
    pub fn kind(self) -> &'static str {
        match self {
            Self::KnativeService => "Service",
            Self::ServiceAccount => "ServiceAccount",
            Self::NetworkPolicy => "NetworkPolicy",
        }
    }

    /// Where the child comes in the applies: the ServiceAccount before the Knative Service whose pods
    /// name it (render order stays the GitOps output's).
    pub fn apply_rank(self) -> u8 {
        match self {
            Self::ServiceAccount => 0,
            Self::KnativeService => 1,
            Self::NetworkPolicy => 2,
        }
    }

    /// The kind as people say it ("Knative Service", not the ambiguous "Service").
    pub fn describe(self) -> &'static str {
        match self {
            Self::KnativeService => "Knative Service",
            Self::ServiceAccount => "ServiceAccount",
            Self::NetworkPolicy => "NetworkPolicy",
        }
    }
}

/// What holds a child's name.
#[derive(Debug, Clone, PartialEq)]
pub enum Holder {
    /// Nothing.
    Absent,
    /// An object controlled by this NextApp. `uid` is the object's own UID (the delete precondition;
    /// empty if the server sent none, which makes any precondition fail).
    Ours {
        /// The object's UID.
        uid: String,
    },
    /// An object without a controller, labelled for this app by knext or by the Go operator.
    Adoptable,
    /// An object controlled by another owner.
    Foreign(OwnerReference),
    /// An object without a controller and without knext's (or the Go operator's) labels for this app.
    Unmanaged,
}

impl Holder {
    /// Whether the reconciler may apply to this name.
    pub fn may_apply(&self) -> bool {
        matches!(self, Self::Absent | Self::Ours { .. } | Self::Adoptable)
    }
}

/// Classifies the object found at a child's name (`None`: nothing there) for the NextApp `app` with
/// UID `app_uid`.
pub fn classify(meta: Option<&ObjectMeta>, app: &str, app_uid: &str) -> Holder {
    let Some(meta) = meta else {
        return Holder::Absent;
    };
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    match controller {
        Some(c) if c.uid == app_uid => Holder::Ours {
            uid: meta.uid.clone().unwrap_or_default(),
        },
        Some(c) => Holder::Foreign(c.clone()),
        None if labelled_for(meta, app) => Holder::Adoptable,
        None => Holder::Unmanaged,
    }
}

/// Whether `meta` carries knext's labels for `app`, or the Go operator's.
pub fn labelled_for(meta: &ObjectMeta, app: &str) -> bool {
    let label = |k: &str| meta.labels.as_ref().and_then(|l| l.get(k)).map(String::as_str);
    let knext = label(labels::APP) == Some(app) && label(labels::MANAGED_BY) == Some(api::MANAGED_BY);
    let go_operator = label(legacy::APP_LABEL) == Some(app)
        && label(legacy::GENERATED_BY_LABEL) == Some(legacy::GENERATED_BY);
    knext || go_operator
}

/// Who holds each child's name.
#[derive(Debug, Clone, PartialEq)]
pub struct Holders {
    /// At `<app>` (Knative Service).
    pub knative_service: Holder,
    /// At `<app>-sa`.
    pub service_account: Holder,
    /// At `<app>-allow-ingress`.
    pub network_policy: Holder,
}

impl Holders {
    /// Every name free.
    pub fn absent() -> Self {
        Self {
            knative_service: Holder::Absent,
            service_account: Holder::Absent,
            network_policy: Holder::Absent,
        }
    }

    /// The holder of `child`'s name.
    pub fn get(&self, child: Child) -> &Holder {
        match child {
            Child::KnativeService => &self.knative_service,
            Child::ServiceAccount => &self.service_account,
            Child::NetworkPolicy => &self.network_policy,
        }
    }
}

/// What the prune stage does with `<app>-allow-ingress` when the spec renders no NetworkPolicy.
#[derive(Debug, Clone, PartialEq)]
pub enum Prune {
    /// Nothing to do: a NetworkPolicy is rendered, or none exists.
    Nothing,
    /// Delete it, on condition that it is still the object with this UID.
    Delete {
        /// The inspected object's UID.
        uid: String,
    },
    /// Leave it (this NextApp does not control it); the message says so.
    Leave(String),
}

/// The decision for one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    withheld: Vec<Child>,
    /// One message per rendered child in conflict, naming the object, its kind and its controller
    /// (a Warning event each, and the `Degraded` message).
    pub conflicts: Vec<String>,
    /// One message per child withheld only because another one is in conflict (status only).
    pub consequences: Vec<String>,
    /// Why the Knative Service is not applied, if it is not.
    pub knative_withheld: Option<String>,
    /// The prune stage's decision.
    pub prune: Prune,
}

impl Plan {
    /// Whether `child` is applied this pass.
    pub fn applies(&self, child: Child) -> bool {
        !self.withheld.contains(&child)
    }
}

/// Decides what to apply and prune for the app `app` in `namespace`, given the rendered children and
/// who holds each name.
pub fn plan(app: &str, namespace: &str, rendered: &[Child], holders: &Holders) -> Plan {
    let object = |child: Child| format!("{} {namespace}/{}", child.describe(), child.name(app));
    let in_conflict = |child: Child| rendered.contains(&child) && !holders.get(child).may_apply();
    let mut plan = Plan {
        withheld: Vec::new(),
        conflicts: Vec::new(),
        consequences: Vec::new(),
        knative_withheld: None,
        prune: Prune::Nothing,
    };
    for &child in rendered {
        if in_conflict(child) {
            plan.withheld.push(child);
            plan.conflicts.push(format!(
                "{}; knext applies nothing to it",
                held(&object(child), holders.get(child), app)
            ));
        }
    }
    let dependents = [
        (
            Child::KnativeService,
            Child::ServiceAccount,
            "its pods would run as",
        ),
        (
            Child::NetworkPolicy,
            Child::KnativeService,
            "it would select the pods of",
        ),
    ];
    for (dependent, on, why) in dependents {
        if rendered.contains(&dependent) && !plan.withheld.contains(&dependent) && in_conflict(on) {
            plan.withheld.push(dependent);
            plan.consequences.push(format!(
                "{} not applied: {why} {}, which this NextApp does not control",
                object(dependent),
                object(on)
            ));
        }
    }
    if plan.withheld.contains(&Child::KnativeService) {
        plan.knative_withheld = if in_conflict(Child::KnativeService) {
            plan.conflicts.first().cloned()
        } else {
            plan.consequences.first().cloned()
        };
    }
    if !rendered.contains(&Child::NetworkPolicy) {
        plan.prune = match holders.get(Child::NetworkPolicy) {
            Holder::Absent => Prune::Nothing,
            Holder::Ours { uid } => Prune::Delete { uid: uid.clone() },
            other => Prune::Leave(format!(
                "security.networkPolicy is false, but {}; knext deletes only what this NextApp \
                 controls, so it left the policy in place: delete it yourself if it is not wanted",
                held(&object(Child::NetworkPolicy), other, app)
            )),
        };
    }
    plan
}

/// "`object` is controlled by … / exists without a controller …", for an object that is not ours.
pub fn held(object: &str, holder: &Holder, app: &str) -> String {
    match holder {
        Holder::Foreign(c) => format!(
            "{object} is controlled by {} {} {} (uid {}), not by this NextApp",
            c.api_version, c.kind, c.name, c.uid
        ),
        Holder::Adoptable => format!("{object} exists without a controller"),
        Holder::Unmanaged => format!(
            "{object} exists without a controller and without knext's labels for this app (label it \
             {}={app} and {}={} to let knext adopt it)",
            labels::APP,
            labels::MANAGED_BY,
            api::MANAGED_BY
        ),
        Holder::Absent | Holder::Ours { .. } => format!("{object} is controlled by this NextApp"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const UID: &str = "6c1e0b5e-1d2a-4b7e-9d65-0a4c3e2f1b11";

    fn owner(uid: &str, controller: Option<bool>) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "billing".into(),
            uid: uid.into(),
            controller,
            block_owner_deletion: None,
        }
    }

    fn meta(labels: &[(&str, &str)], owners: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta {
            uid: Some("object-uid".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            owner_references: Some(owners),
            ..Default::default()
        }
    }

    const KNEXT: &[(&str, &str)] = &[
        ("apps.kn-next.dev/app", "shop"),
        ("app.kubernetes.io/managed-by", "knext"),
    ];
    const GO_OPERATOR: &[(&str, &str)] = &[("app", "shop"), ("generated-by", "kn-next-operator")];

    #[test]
    fn a_controller_reference_with_the_apps_uid_is_ours_whatever_the_labels() {
        for labels in [KNEXT, GO_OPERATOR, &[]] {
            let m = meta(labels, vec![owner("other", Some(false)), owner(UID, Some(true))]);
            assert_eq!(
                classify(Some(&m), "shop", UID),
                Holder::Ours {
                    uid: "object-uid".into()
                }
            );
        }
    }

    #[test]
    fn another_controller_is_foreign_even_with_knexts_labels() {
        let m = meta(KNEXT, vec![owner("other", Some(true))]);
        assert_eq!(
            classify(Some(&m), "shop", UID),
            Holder::Foreign(owner("other", Some(true)))
        );
    }

    #[test]
    fn without_a_controller_only_knexts_or_the_go_operators_labels_for_this_app_allow_adoption() {
        // A non-controller reference with the app's UID does not make it ours either.
        let refs = || vec![owner(UID, None)];
        assert_eq!(
            classify(Some(&meta(KNEXT, refs())), "shop", UID),
            Holder::Adoptable
        );
        assert_eq!(
            classify(Some(&meta(GO_OPERATOR, vec![])), "shop", UID),
            Holder::Adoptable
        );
        for labels in [
            &[][..],
            &[("apps.kn-next.dev/app", "shop")],
            &[
                ("apps.kn-next.dev/app", "cart"),
                ("app.kubernetes.io/managed-by", "knext"),
            ],
            &[("app", "shop")],
            &[("app", "cart"), ("generated-by", "kn-next-operator")],
        ] {
            assert_eq!(
                classify(Some(&meta(labels, refs())), "shop", UID),
                Holder::Unmanaged,
                "{labels:?}"
            );
        }
        assert_eq!(classify(None, "shop", UID), Holder::Absent);
    }

    const ALL: &[Child] = &Child::ALL;

    #[test]
    fn free_owned_and_adoptable_names_are_all_applied() {
        let holders = Holders {
            knative_service: Holder::Ours { uid: "u".into() },
            service_account: Holder::Adoptable,
            network_policy: Holder::Absent,
        };
        let p = plan("shop", "web", ALL, &holders);
        assert!(Child::ALL.iter().all(|&c| p.applies(c)));
        assert!(p.conflicts.is_empty() && p.consequences.is_empty());
        assert_eq!((p.knative_withheld, p.prune), (None, Prune::Nothing));
    }

    #[test]
    fn a_foreign_service_account_withholds_itself_and_the_knative_service_only() {
        let holders = Holders {
            service_account: Holder::Foreign(owner("other", Some(true))),
            ..Holders::absent()
        };
        let p = plan("shop", "web", ALL, &holders);
        assert!(!p.applies(Child::ServiceAccount));
        assert!(!p.applies(Child::KnativeService));
        assert!(p.applies(Child::NetworkPolicy));
        assert_eq!(
            p.conflicts,
            [
                "ServiceAccount web/shop-sa is controlled by apps/v1 Deployment billing (uid other), not by \
              this NextApp; knext applies nothing to it"
            ]
        );
        assert_eq!(
            p.knative_withheld.as_deref(),
            Some(
                "Knative Service web/shop not applied: its pods would run as ServiceAccount web/shop-sa, \
                 which this NextApp does not control"
            )
        );
    }

    #[test]
    fn an_unmanaged_knative_service_withholds_itself_and_the_network_policy() {
        let holders = Holders {
            knative_service: Holder::Unmanaged,
            ..Holders::absent()
        };
        let p = plan("shop", "web", ALL, &holders);
        assert_eq!(
            Child::ALL.map(|c| p.applies(c)),
            [false, true, false],
            "only the ServiceAccount is applied"
        );
        assert_eq!(p.conflicts.len(), 1);
        assert!(
            p.conflicts[0].starts_with(
                "Knative Service web/shop exists without a controller and without knext's labels for this \
                 app (label it apps.kn-next.dev/app=shop and app.kubernetes.io/managed-by=knext"
            ),
            "{}",
            p.conflicts[0]
        );
        assert_eq!(p.knative_withheld.as_ref(), p.conflicts.first());
        assert_eq!(
            p.consequences,
            [
                "NetworkPolicy web/shop-allow-ingress not applied: it would select the pods of Knative Service \
              web/shop, which this NextApp does not control"
            ]
        );
    }

    #[test]
    fn a_foreign_network_policy_withholds_only_itself() {
        let holders = Holders {
            network_policy: Holder::Foreign(owner("other", Some(true))),
            ..Holders::absent()
        };
        let p = plan("shop", "web", ALL, &holders);
        assert_eq!(Child::ALL.map(|c| p.applies(c)), [true, true, false]);
        assert_eq!(p.knative_withheld, None);
        assert_eq!(p.conflicts.len(), 1);
    }

    #[test]
    fn a_name_that_is_not_rendered_is_no_conflict_and_prunes_only_what_is_ours() {
        let rendered = &[Child::KnativeService, Child::ServiceAccount];
        let with = |np: Holder| {
            plan(
                "shop",
                "web",
                rendered,
                &Holders {
                    network_policy: np,
                    ..Holders::absent()
                },
            )
        };
        assert_eq!(with(Holder::Absent).prune, Prune::Nothing);
        assert_eq!(
            with(Holder::Ours { uid: "np-uid".into() }).prune,
            Prune::Delete { uid: "np-uid".into() }
        );
        for (holder, says) in [
            (
                Holder::Foreign(owner("other", Some(true))),
                "is controlled by apps/v1 Deployment billing (uid other), not by this NextApp",
            ),
            (Holder::Adoptable, "exists without a controller;"),
            (
                Holder::Unmanaged,
                "exists without a controller and without knext's labels",
            ),
        ] {
            let p = with(holder);
            assert!(p.conflicts.is_empty(), "{:?}", p.conflicts);
            let Prune::Leave(message) = &p.prune else {
                panic!("{:?}", p.prune)
            };
            assert!(
                message.starts_with(
                    "security.networkPolicy is false, but NetworkPolicy web/shop-allow-ingress "
                ),
                "{message}"
            );
            assert!(message.contains(says), "{message}");
            assert!(message.contains("left the policy in place"), "{message}");
        }
    }
}
