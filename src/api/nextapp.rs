//! The `NextApp` custom resource (`apps.kn-next.dev/v1alpha1`): spec and status types.
//!
//! Shared with `build.rs`: pure data, no I/O. Every field's `///` doc becomes its CRD description. Spec
//! structs deny unknown fields, so a typo in a user's document is an error with a location instead of a
//! silently ignored setting. New fields are `Option<T>` so existing documents stay valid.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Next.js application served by Knative with scale to zero and security on by default.
///
/// knext turns one NextApp into a Knative Service `<name>`, a ServiceAccount `<name>-sa` and (unless
/// `security.networkPolicy` is false) a NetworkPolicy `<name>-allow-ingress`.
/// The CEL admission rule on `spec.image`: the language [`crate::policy::image::check_pinned`] accepts,
/// as RE2 (a property test in `policy::admission` proves the two agree on generated references):
/// - the name is a registry (`host[:port]` or `[ipv6][:port]`) then a lowercase repository path, or a
///   path alone whose first component has no `.` (docker's rule: such a component would be a
///   registry), at most 255 characters;
/// - an optional tag, then `@sha256:` and 64 lowercase hex digits, not all of them zero.
pub const IMAGE_RULE: &str = concat!(
    "self.matches('^(?:",
    // registry, then a path
    "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*",
    "(?::[0-9]+)?",
    // a bracketed IPv6 registry: with a ':' or an uppercase hex digit inside, or a port (else docker's
    // rule reads the first component as a path, which cannot hold brackets)
    "|\\\\[(?:[0-9A-Fa-f:]*[:A-F][0-9A-Fa-f:]*\\\\](?::[0-9]+)?|[0-9A-Fa-f:]+\\\\]:[0-9]+))",
    "/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*",
    // a path of two or more components, the first without '.'
    "|[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+",
    // a one-component path
    "|[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*",
    ")(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[a-f0-9]{64}$')",
    " && self.matches('^[^@]{1,255}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@')",
    " && !self.endsWith('@sha256:0000000000000000000000000000000000000000000000000000000000000000')",
);

// NB: clippy reads the repeated `printcolumn(type_ = ..)` arguments as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "apps.kn-next.dev",
    version = "v1alpha1",
    kind = "NextApp",
    plural = "nextapps",
    singular = "nextapp",
    namespaced,
    status = "NextAppStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A Next.js application served by Knative with scale to zero and security on by default.",
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Ready')].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.observedRevision",
        priority = "1"
    ),
    printcolumn(
        name = "ScaledToZero",
        type_ = "boolean",
        json_path = ".status.scaledToZero",
        priority = "1"
    ),
    printcolumn(
        name = "Degraded",
        type_ = "string",
        json_path = ".status.conditions[?(@.type=='Degraded')].status",
        priority = "1"
    ),
    printcolumn(
        name = "LastDeploy",
        type_ = "date",
        json_path = ".status.lastSuccessfulDeployTime",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NextAppSpec {
    /// Container image of the app, pinned by digest: `registry/repo[:tag]@sha256:<64 lowercase hex>`.
    /// Tag-only, `:latest` and untagged references are rejected.
    #[x_kube(validation = Rule::new(IMAGE_RULE).message(
        "image must be pinned by digest: <registry>/<repository>[:tag]@sha256:<64 lowercase hex> (not the \
         all-zero placeholder), with a well-formed name"
    ))]
    pub image: String,

    /// Autoscaling (Knative KPA) settings. Defaults: minScale 0, maxScale 10, containerConcurrency 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingSpec>,

    /// CPU and memory requests and limits of the app container.
    /// Defaults: requests 250m / 512Mi, limits 1000m / 1Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,

    /// Object storage for build assets (surfaced to the app as environment variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// Shared (fleet-wide) cache used by the Next.js cache handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSpec>,

    /// On-demand revalidation queue. Kafka revalidation is inert in this release; Redis invalidation
    /// through `knext serve` is fleet-wide already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revalidation: Option<RevalidationSpec>,

    /// Secrets exposed to the app as environment variables. Secret values never appear in manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsSpec>,

    /// Database connection strings from existing Secrets (`DATABASE_URL`, `DATABASE_URL_RO`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSpec>,

    /// Plain (non-secret) environment variables, emitted sorted by name. Names must match
    /// `^[A-Za-z_][A-Za-z0-9_]*$`; reserved names (HOSTNAME, PORT, K_SERVICE, K_REVISION, K_CONFIGURATION)
    /// and secret-bearing names (CACHE_INVALIDATE_TOKEN, DATABASE_URL, DATABASE_URL_RO, and names ending in
    /// _TOKEN, _SECRET, _SECRET_KEY, _PASSWORD, _PASS, _API_KEY, _PRIVATE_KEY or _CREDENTIALS, except
    /// NEXT_PUBLIC_*) are rejected, and so are values that are URLs with a password or look like
    /// well-known secrets: map secrets from Secrets with `secrets.envMap`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[x_kube(validation = Rule::new("self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))").message(
        "env names must match ^[A-Za-z_][A-Za-z0-9_]*$"
    ))]
    #[x_kube(validation = Rule::new(
        "!self.exists(k, k in ['HOSTNAME', 'PORT', 'K_SERVICE', 'K_REVISION', 'K_CONFIGURATION'])"
    ).message("HOSTNAME, PORT, K_SERVICE, K_REVISION and K_CONFIGURATION are reserved for the platform"))]
    #[x_kube(validation = Rule::new(
        "!self.exists(k, k in ['CACHE_INVALIDATE_TOKEN', 'DATABASE_URL', 'DATABASE_URL_RO'])"
    ).message("secrets may not be plain env values: use spec.cache.invalidateToken or spec.database"))]
    #[x_kube(validation = Rule::new(
        "self.all(k, k.startsWith('NEXT_PUBLIC_') || \
         !k.matches('(?i)(^|_)(TOKEN|SECRET|SECRET_KEY|PASSWORD|PASS|API_KEY|PRIVATE_KEY|CREDENTIALS)$'))"
    ).message("env names ending in _TOKEN, _SECRET, _SECRET_KEY, _PASSWORD, _PASS, _API_KEY, _PRIVATE_KEY or \
               _CREDENTIALS carry secrets and may not be plain values: map them from a Secret with \
               spec.secrets.envMap"))]
    pub env: BTreeMap<String, String>,

    /// Metrics, real-user monitoring and tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilitySpec>,

    /// HTTP path of the shallow health endpoint used by the readiness and liveness probes.
    /// Default `/api/health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,

    /// Pull-request preview settings: a preview runs with at most one replica and scales to zero fast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewSpec>,

    /// JavaScript runtime of the standalone server. Default `node` (the image's CMD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,

    /// Maximum request duration in seconds (Knative revision timeout, which Knative also uses as the pod's
    /// termination grace period). Default 300; 10 to 3600. The graceful-shutdown hard cap is derived from it:
    /// below 60, Knative's 30 s preStop drain wait leaves less than the full 25 s drain after SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,

    /// Security settings. Network isolation and a hardened container are on by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,

    /// Traffic pinning and canary rollout between revisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSpec>,

    /// Build identifier stamped on the revision template as label `apps.kn-next.dev/build-id`
    /// (skew protection). Must be a valid label value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// Autoscaling settings, rendered as `autoscaling.knative.dev/*` annotations on the revision template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingSpec {
    /// Minimum number of replicas; 0 enables scale to zero. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_scale: Option<i32>,

    /// Maximum number of replicas. Default 10 (also when `scaling` is given without it);
    /// an explicit 0 means unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scale: Option<i32>,

    /// Concurrent requests per replica (Knative containerConcurrency). Default 20; 1 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_concurrency: Option<i32>,

    /// Database connections each replica's pool may open (`KNEXT_DB_POOL_MAX`). When set,
    /// `maxScale × poolMax` must stay at or below 80 so the fleet cannot exhaust the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_max: Option<i32>,

    /// Pre-pull the image on every node: knext renders the DaemonSet `<name>-imgcache`, whose pod on
    /// each Linux node (every taint tolerated) keeps the app image in the node's image cache by running
    /// it idle (knext's pause process, staged from knext's own image). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_prewarm: Option<bool>,

    /// Cron windows during which the operator raises the replica floor. Applied at reconcile time;
    /// `knext render` emits the base `minScale`. Cannot be combined with `traffic.revisionName`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warm_schedule: Vec<WarmWindow>,

    /// Knative target burst capacity (`-1` = unlimited, `0` = off). Annotation only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_burst_capacity: Option<i32>,

    /// Knative panic window as a percentage of the stable window, 1 to 100. Annotation only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_window_percentage: Option<i32>,

    /// Knative panic threshold percentage, 110 to 1000. Annotation only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_threshold_percentage: Option<i32>,

    /// How long the last replica stays after traffic stops: a Go duration in whole seconds, 0s to 1h
    /// (for example `5m`). Annotation only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<String>,
}

/// A recurring window with a raised replica floor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WarmWindow {
    /// Window start: a 5-field cron expression (minute hour day-of-month month day-of-week) or a
    /// descriptor such as `@daily`.
    pub start: String,
    /// Window end, same syntax as `start`.
    pub end: String,
    /// Replica floor inside the window; at least 1 and at most `maxScale` when bounded.
    pub replicas: i32,
    /// IANA time zone of the cron expressions, for example `Europe/Berlin`. Default `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// Resource quantities of the app container. Each must be a positive Kubernetes quantity of at most
/// 64 characters; a request may not exceed its limit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesSpec {
    /// CPU request. Default `250m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request: Option<String>,
    /// Memory request. Default `512Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<String>,
    /// CPU limit. Default `1000m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<String>,
    /// Memory limit. Default `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
}

/// Object storage provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageProvider {
    /// Google Cloud Storage.
    Gcs,
    /// Amazon S3.
    S3,
    /// MinIO (S3 compatible).
    Minio,
    /// Azure Blob Storage.
    Azure,
    /// Local filesystem (development).
    Local,
}

impl StorageProvider {
    /// The value as written in the spec and in `STORAGE_PROVIDER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gcs => "gcs",
            Self::S3 => "s3",
            Self::Minio => "minio",
            Self::Azure => "azure",
            Self::Local => "local",
        }
    }
}

/// Object storage for build assets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageSpec {
    /// Provider: gcs, s3, minio, azure or local (`STORAGE_PROVIDER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<StorageProvider>,
    /// Bucket name (`GCS_BUCKET_NAME`, for every provider, as the existing runtime expects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Bucket region (`CACHE_BUCKET_REGION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible stores (`S3_ENDPOINT`); credentials in the URL are rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Cache provider.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheProvider {
    /// Redis, shared by every replica (and every app that uses the same key prefix).
    Redis,
    /// In-process memory, per replica.
    Memory,
}

impl CacheProvider {
    /// The value as written in the spec and in `CACHE_PROVIDER`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Memory => "memory",
        }
    }
}

/// The shared cache and its invalidation token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CacheSpec {
    /// Provider: redis or memory (`CACHE_PROVIDER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<CacheProvider>,
    /// Redis URL without credentials (`REDIS_URL`); put a URL with a password in a Secret and map it
    /// with `secrets.envMap` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Key prefix of this app's cache entries (`REDIS_KEY_PREFIX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Secret holding the Bearer token of the cache-invalidation endpoint (`CACHE_INVALIDATE_TOKEN`).
    /// Without it the endpoint refuses every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidate_token: Option<SecretKeySelector>,
    /// Absolute path of the Next.js cache directory inside the image, mounted as a writable emptyDir
    /// because the root filesystem is read-only. Default `/app/.next/cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// Revalidation queue type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevalidationQueue {
    /// Apache Kafka.
    Kafka,
}

/// On-demand revalidation over a queue.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevalidationSpec {
    /// Queue type: kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<RevalidationQueue>,
    /// Kafka bootstrap server(s) (`KAFKA_BROKER_URL`); credentials in the URL are rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka_broker_url: Option<String>,
    /// Reserved: provisioning a KafkaSource is not implemented; the field is accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provision_kafka_source: Option<bool>,
}

/// A key of a Secret in the app's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    /// Name of the Secret.
    pub secret_name: String,
    /// Key inside the Secret.
    pub secret_key: String,
}

/// Secrets exposed as environment variables.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretsSpec {
    /// Secrets whose every key becomes an environment variable (`envFrom.secretRef`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<String>,
    /// Environment variable name → Secret key (`valueFrom.secretKeyRef`), emitted sorted by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_map: BTreeMap<String, SecretKeySelector>,
}

/// Database connection strings from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.roSecretRef) || has(self.secretRef)").message(
    "roSecretRef requires secretRef: a read-only connection needs a read-write one"
))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseSpec {
    /// Secret with the read-write connection string, exposed as `DATABASE_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<DatabaseSecretRef>,
    /// Secret with the read-only connection string, exposed as `DATABASE_URL_RO`. Requires `secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ro_secret_ref: Option<DatabaseSecretRef>,
}

/// A Secret reference for a database connection string.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseSecretRef {
    /// Name of the Secret (a DNS-1123 subdomain).
    pub name: String,
    /// Key inside the Secret. Default `DATABASE_URL` (`DATABASE_URL_RO` for `roSecretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Metrics, real-user monitoring and tracing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservabilitySpec {
    /// Master switch: Prometheus scrape annotations (port 9464, `knext serve`'s metrics) and `KN_APP_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Real-user monitoring (web vitals beacon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rum: Option<RumSpec>,
    /// OpenTelemetry tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSpec>,
}

/// Real-user monitoring.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RumSpec {
    /// Turn the web-vitals beacon on (`NEXT_PUBLIC_RUM_ENABLED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fraction of page views that report, a decimal from 0 to 1 (`NEXT_PUBLIC_RUM_SAMPLE_RATE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<String>,
}

/// OpenTelemetry tracing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingSpec {
    /// Turn tracing on (`OTEL_TRACING_ENABLED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// OTLP endpoint URL without credentials (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Sampling ratio, a decimal from 0 to 1 (`OTEL_TRACES_SAMPLER_ARG`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<String>,
}

/// Pull-request preview.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewSpec {
    /// This app is a preview: max one replica, min zero, 30 s scale-to-zero retention, no scale-down delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Git branch of the preview (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Pull-request id, stamped as label `pr-id` (a valid label value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_id: Option<String>,
}

/// JavaScript runtime.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Bun: the container runs `bun run server.js`.
    Bun,
    /// Node.js: the image's own CMD.
    Node,
}

/// Security settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecuritySpec {
    /// Render the `<name>-allow-ingress` NetworkPolicy. Unset or true: on; only an explicit false turns
    /// network isolation off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<bool>,
    /// Numeric user id the container runs as (must be non-zero). Default 1000, the `node` user of the
    /// official Node.js images. Numeric, because the kubelet cannot verify a named USER as non-root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    /// Numeric group id the container runs as (must be non-zero). Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    /// Require a keyless Sigstore signature on the app's image repository at deploy time: knext renders
    /// a Sigstore policy-controller `ClusterImagePolicy` for the repository of `spec.image`. It is
    /// enforced only where policy-controller is installed, in namespaces labelled
    /// `policy.sigstore.dev/include=true`; elsewhere the object is inert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureSpec>,
}

/// The keyless signing identity an app's image must carry (Fulcio certificate issuer and subject), and
/// whether a signed SPDX SBOM attestation is also required.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.subject) != has(self.subjectRegExp)")
    .message("set exactly one of subject and subjectRegExp"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignatureSpec {
    /// OIDC issuer of the signing certificate, an https URL compared exactly, for example
    /// `https://token.actions.githubusercontent.com` for GitHub Actions.
    pub issuer: String,
    /// Exact subject of the signing certificate: for a GitHub Actions workflow,
    /// `https://github.com/<owner>/<repo>/.github/workflows/<file>@refs/heads/<branch>`. Exactly one
    /// of `subject` and `subjectRegExp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Regular expression (Go RE2 syntax) the subject must match. Unanchored, as policy-controller
    /// applies it: write `^...$` to match the whole subject. Exactly one of `subject` and
    /// `subjectRegExp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_reg_exp: Option<String>,
    /// Also require a signed SPDX SBOM attestation (`cosign attest --type spdxjson`) by the same
    /// identity, holding an SPDX 2.x document with at least one package. Default false.
    #[serde(default)]
    pub require_sbom_attestation: bool,
}

/// Traffic pinning and canary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new(
    "!has(self.canaryPercent) || self.canaryPercent == 0 || (has(self.revisionName) && size(self.revisionName) > 0)"
).message("canaryPercent requires revisionName: the canary splits traffic between that revision and the latest one"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSpec {
    /// Pin traffic to this revision (unset: the latest ready revision takes all traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// Percentage of traffic sent to the latest revision while `revisionName` keeps the rest, 0 to 100.
    /// Requires `revisionName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_percent: Option<i32>,
}

/// Observed state, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextAppStatus {
    /// Public URL of the app (from the Knative Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Conditions: Ready, Degraded, Reconciling. Each carries `observedGeneration`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Traffic split as reported by Knative.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current_traffic: Vec<TrafficStatus>,
    /// Name of the bound database Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_secret_name: Option<String>,
    /// Latest ready revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_revision: Option<String>,
    /// Whether the latest ready revision has scaled to zero; unset when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_to_zero: Option<bool>,
    /// When a new revision last became Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_deploy_time: Option<Time>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One traffic target as reported by Knative.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficStatus {
    /// Revision receiving this share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// Share of traffic in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
    /// Whether this target follows the latest ready revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<bool>,
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn the_crd_has_the_reference_identity_status_subresource_and_printer_columns() {
        let crd = crate::api::crd::nextapp_crd();
        assert_eq!(crd.metadata.name.as_deref(), Some("nextapps.apps.kn-next.dev"));
        assert_eq!(crd.spec.group, "apps.kn-next.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, "NextApp");
        assert_eq!(crd.spec.names.plural, "nextapps");
        let v = &crd.spec.versions[0];
        assert_eq!((v.name.as_str(), v.served, v.storage), ("v1alpha1", true, true));
        assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
        let columns: Vec<(&str, &str, &str, i32)> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.type_.as_str(),
                    c.json_path.as_str(),
                    c.priority.unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(
            columns,
            [
                ("URL", "string", ".status.url", 0),
                (
                    "Ready",
                    "string",
                    ".status.conditions[?(@.type=='Ready')].status",
                    0
                ),
                ("Age", "date", ".metadata.creationTimestamp", 0),
                ("Revision", "string", ".status.observedRevision", 1),
                ("ScaledToZero", "boolean", ".status.scaledToZero", 1),
                (
                    "Degraded",
                    "string",
                    ".status.conditions[?(@.type=='Degraded')].status",
                    1
                ),
                ("LastDeploy", "date", ".status.lastSuccessfulDeployTime", 1),
            ]
        );
    }

    /// Paths of schema properties under `node` that have no description.
    fn undocumented(node: &Value, path: &str, out: &mut Vec<String>) {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let p = format!("{path}.{name}");
                if sub
                    .get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    out.push(p.clone());
                }
                undocumented(sub, &p, out);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = node.get(key).filter(|s| s.is_object()) {
                undocumented(sub, path, out);
            }
        }
    }

    #[test]
    fn every_spec_and_status_field_is_described_in_the_crd() {
        let crd = crate::api::crd::nextapp_crd();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let root = &schema["openAPIV3Schema"];
        let mut missing = Vec::new();
        undocumented(&root["properties"]["spec"], "spec", &mut missing);
        // Conditions are k8s-openapi's own type, documented upstream.
        undocumented(&root["properties"]["status"], "status", &mut missing);
        assert!(missing.is_empty(), "fields without a description: {missing:#?}");
        assert_eq!(
            root["properties"]["spec"]["required"],
            serde_json::json!(["image"])
        );
    }
}
