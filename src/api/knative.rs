//! A minimal typed `serving.knative.dev/v1` Service, built on k8s-openapi's `PodSpec`.
//!
//! Shared with `build.rs`: pure data. Only the fields knext renders or reads back are modelled; the
//! pod-spec part is k8s-openapi's own `PodSpec`, flattened into the revision spec the way Knative's
//! `RevisionSpec` embeds `corev1.PodSpec`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// `apiVersion` of Knative Serving objects.
pub const API_VERSION: &str = "serving.knative.dev/v1";

/// A Knative Service (`serving.knative.dev/v1`, kind `Service`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KnativeService {
    /// Always `serving.knative.dev/v1`.
    pub api_version: String,
    /// Always `Service`.
    pub kind: String,
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: KnativeServiceSpec,
}

impl KnativeService {
    /// An empty Service with `apiVersion` and `kind` set.
    pub fn new(metadata: ObjectMeta, spec: KnativeServiceSpec) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            kind: "Service".to_owned(),
            metadata,
            spec,
        }
    }
}

/// Spec of a Knative Service: a revision template and optional traffic targets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KnativeServiceSpec {
    /// Template of the revisions this Service creates.
    pub template: RevisionTemplateSpec,
    /// Traffic split; empty means all traffic to the latest ready revision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

/// Revision template: metadata (labels, autoscaling annotations) and spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RevisionTemplateSpec {
    /// Labels and annotations of the revisions (and their pods).
    pub metadata: TemplateMeta,
    /// Revision spec.
    pub spec: RevisionSpec,
}

/// The subset of `ObjectMeta` Knative accepts on a revision template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMeta {
    /// Annotations (autoscaling, Prometheus scrape).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels (propagated to pods).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Knative `RevisionSpec`: a pod spec plus Knative's own fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RevisionSpec {
    /// Maximum concurrent requests per replica (0 = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_concurrency: Option<i64>,
    /// Maximum request duration in seconds; Knative also uses it as the pod's termination grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// The embedded pod spec.
    #[serde(flatten)]
    pub pod: PodSpec,
}

/// One traffic target of a Knative Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTarget {
    /// A named revision to route to (absent when `latestRevision` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// Whether this target follows the latest ready revision.
    pub latest_revision: bool,
    /// Share of traffic in percent.
    pub percent: i64,
}
