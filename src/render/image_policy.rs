//! The Sigstore policy-controller `ClusterImagePolicy` of an app with `spec.security.signature`: images
//! of the app's repository must carry a keyless signature (Fulcio certificate, in Rekor) by the given
//! identity and, when asked, a signed SPDX SBOM attestation by the same identity.
//!
//! Shared with `build.rs`; pure. The policy is cluster-scoped, so it has no namespace and no owner
//! reference (a namespaced NextApp cannot own it); its labels name the app and its namespace
//! (`apps.kn-next.dev/app`, `apps.kn-next.dev/namespace`), by which the operator finds it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::RenderOptions;
use crate::api::sigstore::{
    self, Attestation, AttestationPolicy, Authority, ClusterImagePolicy, ClusterImagePolicySpec, Identity,
    ImagePattern, KeylessRef, TransparencyLog,
};
use crate::api::{annotations, labels};
use crate::policy::ValidatedApp;

/// The attestation policy (Rego, as policy-controller's `sigstore` package with an `isCompliant`
/// rule, Rego v0 syntax as it evaluates it): the attestation's in-toto statement must carry an SPDX
/// 2.x document that lists at least one package. policy-controller has already checked the signature,
/// the identity and that the statement's subject is the image's digest.
pub const SBOM_POLICY: &str = r#"package sigstore

default isCompliant = false

isCompliant {
  input.predicateType == "https://spdx.dev/Document"
  startswith(input.predicate.spdxVersion, "SPDX-2.")
  count(input.predicate.packages) > 0
}
"#;

fn own_signature<'a>(app: &ValidatedApp<'a>) -> Option<&'a crate::api::SignatureSpec> {
    app.spec().security.as_ref()?.signature.as_ref()
}

/// Why the cluster-wide default signature cannot be applied to `app`: it has no signature of its own,
/// a default is set, and no policy can cover exactly its image's repository (`localhost/...`, an IPv6
/// registry). `None` when the default applies, or does not concern the app.
pub fn default_uncoverable(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> Option<String> {
    if own_signature(app).is_some() || opts.default_signature.is_none() || app.repository().is_some() {
        return None;
    }
    let reason = crate::policy::signature::repository(&app.spec().image).err()?;
    Some(format!(
        "the cluster-wide default signature is not enforced for this app: no ClusterImagePolicy can cover \
         exactly the image's repository: {reason}"
    ))
}

/// Name of the policy of app `app` in `namespace`: `knext.<namespace>.<app>`. Unique cluster-wide
/// because namespace and app names are DNS labels (no `.`); at most 6 + 63 + 1 + 63 characters, a
/// valid DNS-1123 subdomain.
pub fn cluster_image_policy_name(namespace: &str, app: &str) -> String {
    format!("knext.{namespace}.{app}")
}

/// The app's ClusterImagePolicy, when `spec.security.signature` is set, or else when
/// `opts.default_signature` is.
///
/// NB: validation refuses a `signature` for an image whose repository no policy can cover exactly
/// ([`crate::policy::signature::repository`]), so a validated app with a signature has a repository.
/// An app under the default only may not ([`default_uncoverable`]).
/// With `opts.owner_uid` (the operator) it carries the NextApp's UID in the annotation
/// [`annotations::OWNER_UID`], which the operator's cleanup goes by.
pub fn build_cluster_image_policy(
    app: &ValidatedApp<'_>,
    opts: &RenderOptions<'_>,
) -> Option<ClusterImagePolicy> {
    let sig = own_signature(app).or(opts.default_signature)?;
    let repository = app.repository()?;
    let mut labels = super::app::object_labels(app, "image-policy");
    labels.insert(labels::APP_NAMESPACE.to_owned(), app.namespace().to_owned());
    let attestations = if sig.require_sbom_attestation {
        vec![Attestation {
            name: "spdx-sbom".to_owned(),
            predicate_type: sigstore::SPDX_PREDICATE_TYPE.to_owned(),
            policy: Some(AttestationPolicy {
                type_: "rego".to_owned(),
                data: SBOM_POLICY.to_owned(),
            }),
        }]
    } else {
        Vec::new()
    };
    let metadata = ObjectMeta {
        name: Some(cluster_image_policy_name(app.namespace(), app.name())),
        labels: Some(labels),
        annotations: opts.owner_uid.map(|uid| {
            std::collections::BTreeMap::from([(annotations::OWNER_UID.to_owned(), uid.to_owned())])
        }),
        ..Default::default()
    };
    let spec = ClusterImagePolicySpec {
        images: repository
            .globs()
            .into_iter()
            .map(|glob| ImagePattern { glob })
            .collect(),
        authorities: vec![Authority {
            name: "keyless".to_owned(),
            keyless: Some(KeylessRef {
                url: sigstore::FULCIO_URL.to_owned(),
                identities: vec![Identity {
                    issuer: sig.issuer.clone(),
                    subject: sig.subject.clone(),
                    subject_reg_exp: sig.subject_reg_exp.clone(),
                }],
            }),
            ctlog: Some(TransparencyLog {
                url: sigstore::REKOR_URL.to_owned(),
            }),
            attestations,
        }],
        mode: Some("enforce".to_owned()),
    };
    Some(ClusterImagePolicy::new(metadata, spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NextApp;
    use crate::policy;

    fn app(security: serde_json::Value) -> NextApp {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps.kn-next.dev/v1alpha1",
            "kind": "NextApp",
            "metadata": {"name": "shop", "namespace": "web"},
            "spec": {
                "image": "ghcr.io/acme/shop:1.4@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "security": security,
            },
        }))
        .unwrap()
    }

    const ISSUER: &str = "https://token.actions.githubusercontent.com";
    const SUBJECT: &str = "https://github.com/acme/shop/.github/workflows/knext-image.yml@refs/heads/main";

    #[test]
    fn no_signature_no_policy() {
        let a = app(serde_json::json!({"networkPolicy": true}));
        let (v, _) = policy::validate(&a).unwrap();
        assert_eq!(build_cluster_image_policy(&v, &RenderOptions::default()), None);
    }

    #[test]
    fn the_policy_requires_the_identity_on_exactly_the_apps_repository() {
        let a = app(serde_json::json!({"signature": {"issuer": ISSUER, "subject": SUBJECT}}));
        let (v, _) = policy::validate(&a).unwrap();
        let p = build_cluster_image_policy(&v, &RenderOptions::default()).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("knext.web.shop"));
        assert_eq!(p.metadata.namespace, None);
        assert_eq!(p.metadata.owner_references, None);
        assert_eq!(p.metadata.annotations, None);
        let owned = build_cluster_image_policy(
            &v,
            &RenderOptions {
                owner_uid: Some("u-1"),
                ..RenderOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            owned.metadata.owner_references, None,
            "a namespaced owner cannot own it"
        );
        assert_eq!(
            owned.metadata.annotations.unwrap()["apps.kn-next.dev/owner-uid"],
            "u-1"
        );
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["apps.kn-next.dev/app"], "shop");
        assert_eq!(labels["apps.kn-next.dev/namespace"], "web");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "knext");
        let globs: Vec<&str> = p.spec.images.iter().map(|i| i.glob.as_str()).collect();
        assert_eq!(globs, ["ghcr.io/acme/shop@*", "ghcr.io/acme/shop:*"]);
        let authority = &p.spec.authorities[0];
        let identity = &authority.keyless.as_ref().unwrap().identities[0];
        assert_eq!(identity.issuer, ISSUER);
        assert_eq!(identity.subject.as_deref(), Some(SUBJECT));
        assert_eq!(identity.subject_reg_exp, None);
        assert!(authority.attestations.is_empty());
        assert_eq!(p.spec.mode.as_deref(), Some("enforce"));
    }

    #[test]
    fn an_sbom_attestation_is_required_when_asked() {
        let a = app(serde_json::json!({"signature": {
            "issuer": ISSUER, "subjectRegExp": "^https://github\\.com/acme/.+$", "requireSbomAttestation": true,
        }}));
        let (v, _) = policy::validate(&a).unwrap();
        let p = build_cluster_image_policy(&v, &RenderOptions::default()).unwrap();
        let att = &p.spec.authorities[0].attestations[0];
        assert_eq!(att.predicate_type, "https://spdx.dev/Document");
        let policy = att.policy.as_ref().unwrap();
        assert_eq!(
            (policy.type_.as_str(), policy.data.as_str()),
            ("rego", SBOM_POLICY)
        );
    }

    #[test]
    fn the_cluster_wide_default_applies_to_apps_without_their_own_signature() {
        let default = crate::api::SignatureSpec {
            issuer: ISSUER.into(),
            subject_reg_exp: Some("^https://github\\.com/acme/.+$".into()),
            ..Default::default()
        };
        let opts = RenderOptions {
            default_signature: Some(&default),
            ..RenderOptions::default()
        };
        let plain = app(serde_json::json!({}));
        let (v, _) = policy::validate(&plain).unwrap();
        let p = build_cluster_image_policy(&v, &opts).unwrap();
        let identity = &p.spec.authorities[0].keyless.as_ref().unwrap().identities[0];
        assert_eq!(identity.subject_reg_exp, default.subject_reg_exp);
        assert_eq!(default_uncoverable(&v, &opts), None);

        // The app's own wins.
        let own = app(serde_json::json!({"signature": {"issuer": ISSUER, "subject": SUBJECT}}));
        let (v, _) = policy::validate(&own).unwrap();
        let p = build_cluster_image_policy(&v, &opts).unwrap();
        let identity = &p.spec.authorities[0].keyless.as_ref().unwrap().identities[0];
        assert_eq!(identity.subject.as_deref(), Some(SUBJECT));

        // An image no policy can cover: no policy, and a reason to tell the app.
        let mut local = app(serde_json::json!({}));
        local.spec.image =
            "localhost/shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into();
        let (v, _) = policy::validate(&local).unwrap();
        assert_eq!(build_cluster_image_policy(&v, &opts), None);
        let why = default_uncoverable(&v, &opts).unwrap();
        assert!(
            why.contains("cluster-wide default signature is not enforced"),
            "{why}"
        );
        assert_eq!(default_uncoverable(&v, &RenderOptions::default()), None);
    }

    #[test]
    fn names_are_unique_where_dashes_would_collide() {
        assert_ne!(
            cluster_image_policy_name("a-b", "c"),
            cluster_image_policy_name("a", "b-c")
        );
        let long = "x".repeat(63);
        let name = cluster_image_policy_name(&long, &long);
        assert!(name.len() <= 253);
        assert_eq!(crate::policy::names::check_dns1123_subdomain(&name), Ok(()));
    }
}
