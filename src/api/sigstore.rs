//! A minimal typed Sigstore policy-controller `ClusterImagePolicy` (`policy.sigstore.dev/v1beta1`).
//!
//! Shared with `build.rs`: pure data. Only the fields knext renders are modelled, named as in the
//! upstream CRD (`tests/data/sigstore-policy-controller/clusterimagepolicy.yaml`), in the order the
//! emitter writes them. `tests/rendered_objects.rs` checks every rendered policy strictly against that
//! CRD.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// `apiVersion` of the policies knext renders.
pub const API_VERSION: &str = "policy.sigstore.dev/v1beta1";
/// API group of policy-controller.
pub const GROUP: &str = "policy.sigstore.dev";
/// Version knext renders.
pub const VERSION: &str = "v1beta1";
/// `kind`.
pub const KIND: &str = "ClusterImagePolicy";
/// Resource plural (RBAC, URLs).
pub const PLURAL: &str = "clusterimagepolicies";
/// The label of namespaces in which policy-controller's admission webhooks enforce policies.
pub const INCLUDE_LABEL: &str = "policy.sigstore.dev/include";
/// Sigstore's public Fulcio (keyless certificate authority), the one `cosign sign` uses by default.
pub const FULCIO_URL: &str = "https://fulcio.sigstore.dev";
/// Sigstore's public Rekor (transparency log), the one `cosign sign` uses by default.
pub const REKOR_URL: &str = "https://rekor.sigstore.dev";
/// The in-toto predicate type of `cosign attest --type spdxjson`.
pub const SPDX_PREDICATE_TYPE: &str = "https://spdx.dev/Document";

/// A cluster-scoped image policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterImagePolicy {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always [`KIND`].
    pub kind: String,
    /// Object metadata (no namespace: the kind is cluster-scoped).
    pub metadata: ObjectMeta,
    /// Desired policy.
    pub spec: ClusterImagePolicySpec,
}

impl ClusterImagePolicy {
    /// A policy with `apiVersion` and `kind` set.
    pub fn new(metadata: ObjectMeta, spec: ClusterImagePolicySpec) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: KIND.to_owned(),
            metadata,
            spec,
        }
    }
}

/// Which images the policy covers and what they must carry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterImagePolicySpec {
    /// Image globs (`*` matches within one path component, `**` across `/`); an image matching any of
    /// them must satisfy the authorities.
    pub images: Vec<ImagePattern>,
    /// Who must have signed (at least one authority must be satisfied).
    pub authorities: Vec<Authority>,
    /// `enforce` (reject) or `warn` (admit with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// One image glob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagePattern {
    /// The glob, matched against the fully qualified reference (`index.docker.io/library/...` for Docker
    /// Hub).
    pub glob: String,
}

/// A signing authority: here keyless (Fulcio) with the transparency log.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Authority {
    /// Name (shown in policy-controller's errors).
    pub name: String,
    /// Keyless verification: the certificate authority and the accepted identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessRef>,
    /// The transparency log the signature must be in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctlog: Option<TransparencyLog>,
    /// Attestations that must also be present, signed by the same authority.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
}

/// Keyless verification.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeylessRef {
    /// The Fulcio instance.
    pub url: String,
    /// Accepted certificate identities (any one suffices).
    pub identities: Vec<Identity>,
}

/// One certificate identity: issuer and subject, each exact or a regular expression.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    /// Exact OIDC issuer.
    pub issuer: String,
    /// Exact subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Subject regular expression (RE2, unanchored).
    #[serde(default, rename = "subjectRegExp", skip_serializing_if = "Option::is_none")]
    pub subject_reg_exp: Option<String>,
}

/// A transparency log.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransparencyLog {
    /// The Rekor instance.
    pub url: String,
}

/// A required attestation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attestation {
    /// Name (shown in policy-controller's errors).
    pub name: String,
    /// The in-toto predicate type to look for.
    pub predicate_type: String,
    /// A policy the attestation's statement must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<AttestationPolicy>,
}

/// An inline policy evaluated against an attestation's in-toto statement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestationPolicy {
    /// `rego` or `cue`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The policy's source.
    pub data: String,
}
