//! knext's API: the `NextApp` resource, the Knative Service type knext renders, and shared constants.
//!
//! Shared with `build.rs` (included through `#[path]`): pure data and constants, no I/O. Shared code
//! names only `crate::{api, policy, render, yaml}`.

pub mod crd;
pub mod knative;
pub mod nextapp;
pub mod schema;

pub use knative::KnativeService;
pub use nextapp::*;

/// API group of knext's resources.
pub const GROUP: &str = "apps.kn-next.dev";
/// `apiVersion` of `NextApp`.
pub const API_VERSION: &str = "apps.kn-next.dev/v1alpha1";
/// Kind of the app resource.
pub const KIND: &str = "NextApp";
/// Field manager of every server-side apply knext performs.
pub const FIELD_MANAGER: &str = "knext-operator";
/// Value of `app.kubernetes.io/managed-by` on everything knext renders.
pub const MANAGED_BY: &str = "knext";

/// Label keys knext sets.
pub mod labels {
    /// Recommended label: the app's name.
    pub const NAME: &str = "app.kubernetes.io/name";
    /// Recommended label: the application this object is part of.
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    /// Recommended label: the tool managing the object (`knext`).
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// Recommended label: the object's role within the app.
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// knext's own label naming the owning NextApp (used to find and prune children).
    pub const APP: &str = "apps.kn-next.dev/app";
    /// Build id stamped on the revision template (skew protection).
    pub const BUILD_ID: &str = "apps.kn-next.dev/build-id";
    /// Label Knative puts on the pods of a Service.
    pub const KNATIVE_SERVICE: &str = "serving.knative.dev/service";
    /// Namespaces labelled `"true"` may scrape app metrics (`knext serve` 9464, queue-proxy 9091).
    pub const METRICS_SCRAPE: &str = "knext.dev/metrics-scrape";
    /// Preview marker label (`environment: preview`).
    pub const ENVIRONMENT: &str = "environment";
    /// Preview pull-request id label.
    pub const PR_ID: &str = "pr-id";
}

/// Labels of the Go operator knext replaces (`kn-next-operator`). The operator recognises them when it
/// decides whether to adopt an object without a controller (`src/operator/ownership.rs`); knext never
/// sets them.
pub mod legacy {
    /// The Go operator's label naming the app (`app=<app>`).
    pub const APP_LABEL: &str = "app";
    /// The Go operator's generator label key.
    pub const GENERATED_BY_LABEL: &str = "generated-by";
    /// The Go operator's generator label value.
    pub const GENERATED_BY: &str = "kn-next-operator";
}

/// Ports of the app pod that knext's NetworkPolicy and probes refer to.
pub mod ports {
    /// The port the app container listens on: `knext serve`, in front of the Next.js server.
    pub const APP: i32 = super::serve::LISTEN_PORT;
    /// `knext serve`'s Prometheus metrics (scrape annotation target).
    pub const APP_METRICS: i32 = super::serve::METRICS_PORT;
    /// Knative queue-proxy's own Prometheus metrics (request counts and latencies per revision).
    pub const METRICS: i32 = 9091;
    /// Knative queue-proxy ports the activator and ingress reach: HTTP/1, HTTP/2, HTTPS.
    pub const QUEUE_HTTP: i32 = 8012;
    /// Knative queue-proxy HTTP/2 port.
    pub const QUEUE_HTTP2: i32 = 8013;
    /// Knative queue-proxy HTTPS port.
    pub const QUEUE_HTTPS: i32 = 8112;
    /// Knative autoscaler queue metrics port.
    pub const AUTOSCALING_METRICS: i32 = 9090;
}

/// `knext serve`, the entrypoint of app containers: where it listens and where the Next.js server it
/// starts listens. Shared by the renderers (container port, probes, NetworkPolicy, scrape annotations)
/// and the `knext serve` defaults, so the manifests and the process agree.
pub mod serve {
    /// Path of the knext binary in app images (`COPY --from=<knext image> /knext /knext`).
    pub const BINARY: &str = "/knext";
    /// The port `knext serve` listens on: the Knative container port (Knative's default, 8080).
    pub const LISTEN_PORT: i32 = 8080;
    /// The loopback port of the Next.js server `knext serve` starts (its `PORT`).
    pub const UPSTREAM_PORT: i32 = 3000;
    /// The port of `knext serve`'s Prometheus metrics (`/metrics`). Not 9091: Knative's queue-proxy,
    /// in the same pod network namespace, binds 9091 for its own metrics and Knative reserves it.
    pub const METRICS_PORT: i32 = 9464;
    /// The child command when the image does not name one (`node server.js` of Next.js's standalone
    /// output).
    pub const NODE_COMMAND: [&str; 2] = ["node", "server.js"];
    /// The child command for `runtime: bun`.
    pub const BUN_COMMAND: [&str; 3] = ["bun", "run", "server.js"];
    /// Env var with the bearer token of `POST /api/cache/invalidate` and `DELETE /api/cache/events`.
    pub const ENV_INVALIDATE_TOKEN: &str = "CACHE_INVALIDATE_TOKEN";
    /// Env var with the hard cap of a graceful shutdown, in milliseconds.
    pub const ENV_SHUTDOWN_GRACE_MS: &str = "KNEXT_SHUTDOWN_GRACE_MS";
}

/// The Redis layout of the fleet-wide Next.js cache, shared by `knext serve` (invalidation, events)
/// and the Next.js cache handler knext renders from `templates/cache-handler.cjs.j2`.
pub mod cache {
    /// Key prefix when `REDIS_KEY_PREFIX` is unset or empty.
    pub const DEFAULT_PREFIX: &str = "kn-next";
    /// Entries live at `<prefix>:cache:<key>`.
    pub const ENTRY_SEGMENT: &str = "cache";
    /// Tag index sets live at `<prefix>:tag:<tag>`; their members are raw keys.
    pub const TAG_SEGMENT: &str = "tag";
    /// Cache events are LPUSHed to `<prefix>:cache-events`.
    pub const EVENTS_KEY: &str = "cache-events";
    /// The events list is trimmed to this many entries.
    pub const EVENTS_CAP: usize = 200;
    /// `GET /api/cache/events` returns this many of the newest events.
    pub const EVENTS_SHOWN: usize = 50;
    /// Longest tag accepted (Next.js's `NEXT_CACHE_TAG_MAX_LENGTH`).
    pub const TAG_MAX_LEN: usize = 256;
    /// Most tags one invalidation accepts (Next.js's `NEXT_CACHE_TAG_MAX_ITEMS`).
    pub const TAGS_MAX: usize = 128;
}

/// knext's own operator: names, ports and identity shared by the install bundle and `knext operator`.
pub mod operator {
    /// Name of the operator's Deployment, ServiceAccount, ClusterRole, bindings, PDB and NetworkPolicy.
    pub const NAME: &str = "knext-operator";
    /// Namespace the bundle installs into unless told otherwise.
    pub const NAMESPACE: &str = "knext-system";
    /// Name of the operator's container.
    pub const CONTAINER: &str = "operator";
    /// Path of the knext binary inside the operator image (its entrypoint).
    pub const BINARY: &str = "/knext";
    /// Prometheus metrics port (`/metrics`).
    pub const METRICS_PORT: i32 = 8080;
    /// Health port (`/healthz`, `/readyz`).
    pub const HEALTH_PORT: i32 = 8081;
    /// uid and gid of distroless's `nonroot` user, which the operator runs as.
    pub const RUN_AS_ID: i64 = 65532;
    /// Replicas of the Deployment (one leader, one warm standby).
    pub const REPLICAS: i32 = 2;
    /// Seconds the pod gets between SIGTERM and SIGKILL: finish in-flight reconciles, release the lease.
    pub const TERMINATION_GRACE_SECONDS: i64 = 30;
    /// Name of the leader-election Lease in the operator's namespace.
    pub const LEASE: &str = "knext-operator-leader";
    /// Env var carrying the pod name (the leader-election identity).
    pub const ENV_POD_NAME: &str = "KNEXT_POD_NAME";
    /// Env var carrying the pod namespace (where the Lease lives).
    pub const ENV_POD_NAMESPACE: &str = "KNEXT_POD_NAMESPACE";
    /// mimalloc settings of the operator container (read by the allocator before `main`): no eager
    /// commit of whole arenas and freed pages returned at once. Measured with `cargo bench --bench
    /// operator` (1,000 NextApps): peak RSS 50 MiB without them, 20 MiB with them.
    pub const ALLOCATOR_ENV: [(&str, &str); 2] = [
        ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
        ("MIMALLOC_PURGE_DELAY", "0"),
    ];
}

/// Condition and event reasons knext sets: the validator's, and the operator's own.
pub mod reasons {
    /// An object with the name of one of the app's children is controlled by another owner, or by
    /// nobody and not labelled for this app: the operator applies nothing to it (`Degraded=True`, and a
    /// Warning event naming the object, its kind and its controller).
    pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";
    /// `security.networkPolicy: false`, but a NetworkPolicy with the app's policy name that this NextApp
    /// does not control remains: the operator leaves it in place and says so (a Warning event and the
    /// `Degraded` message; not a failure).
    pub const NOT_OWNED: &str = "NotOwned";
    /// The image reference is not digest-pinned or malformed.
    pub const INVALID_IMAGE: &str = "InvalidImage";
    /// Any other spec problem.
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Defaults applied by the renderers when a field is unset (one place, so the validator checks the
/// values the renderer will actually emit).
pub mod defaults {
    /// Knative containerConcurrency.
    pub const CONTAINER_CONCURRENCY: i32 = 20;
    /// Knative revision timeout (and pod termination grace period), seconds.
    pub const TIMEOUT_SECONDS: i32 = 300;
    /// Replica floor.
    pub const MIN_SCALE: i32 = 0;
    /// Replica ceiling, also when `scaling` is given without `maxScale`.
    pub const MAX_SCALE: i32 = 10;
    /// CPU request.
    pub const CPU_REQUEST: &str = "250m";
    /// Memory request.
    pub const MEMORY_REQUEST: &str = "512Mi";
    /// CPU limit.
    pub const CPU_LIMIT: &str = "1000m";
    /// Memory limit.
    pub const MEMORY_LIMIT: &str = "1Gi";
    /// Shallow health endpoint probed by readiness and liveness.
    pub const HEALTH_CHECK_PATH: &str = "/api/health";
    /// Numeric uid/gid of the `node` user in the official Node.js images.
    pub const RUN_AS_ID: i64 = 1000;
    /// Next.js cache directory of the standalone server in the official Docker example (`WORKDIR /app`).
    pub const NEXT_CACHE_DIR: &str = "/app/.next/cache";
    /// Namespace of a NextApp document without `metadata.namespace`.
    pub const NAMESPACE: &str = "default";
    /// Upper bound of the graceful-shutdown drain cap, milliseconds.
    pub const SHUTDOWN_GRACE_MAX_MS: i64 = 25_000;
    /// Time kept free between the drain cap and the pod's termination grace period (SIGKILL), seconds.
    pub const SHUTDOWN_MARGIN_SECONDS: i64 = 5;
    /// Smallest accepted `timeoutSeconds`: leaves at least 5 s of drain after the margin.
    pub const MIN_TIMEOUT_SECONDS: i32 = 10;
    /// Largest accepted `timeoutSeconds`.
    pub const MAX_TIMEOUT_SECONDS: i32 = 3600;
    /// Largest accepted `containerConcurrency` (Knative's default container-concurrency-max-limit).
    pub const MAX_CONTAINER_CONCURRENCY: i32 = 1000;
    /// `maxScale × poolMax` must stay at or below this many database connections.
    pub const MAX_APP_DB_CONNECTIONS: i64 = 80;

    /// The drain hard cap (`KNEXT_SHUTDOWN_GRACE_MS`) for a revision timeout: at most 25 s and always at
    /// least [`SHUTDOWN_MARGIN_SECONDS`] below the termination grace period Knative derives from it.
    pub fn shutdown_grace_ms(timeout_seconds: i32) -> i64 {
        let room = (i64::from(timeout_seconds) - SHUTDOWN_MARGIN_SECONDS) * 1000;
        room.clamp(0, SHUTDOWN_GRACE_MAX_MS)
    }
}

/// Reads one YAML document as a NextApp, strictly: `apiVersion` and `kind` must name NextApp, and
/// unknown fields anywhere in the spec are errors (with the location serde_yaml reports).
pub fn parse_nextapp(
    doc: &crate::yaml::parse::Document<'_>,
) -> Result<NextApp, crate::yaml::parse::ParseError> {
    use crate::yaml::parse::{ParseError, ParseErrorKind, from_document};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// The document form of a NextApp (kube's derived root type accepts any apiVersion/kind).
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Envelope {
        api_version: String,
        kind: String,
        #[serde(default)]
        metadata: ObjectMeta,
        spec: NextAppSpec,
        #[serde(default)]
        status: Option<NextAppStatus>,
    }
    /// Only the type fields, to explain a document of another kind.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct TypeMeta {
        #[serde(default)]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
    }
    let type_error = |api_version: Option<&str>, kind: Option<&str>| -> Option<ParseError> {
        let (path, found) = if kind != Some(KIND) {
            ("kind", kind)
        } else if api_version != Some(API_VERSION) {
            ("apiVersion", api_version)
        } else {
            return None;
        };
        Some(ParseError {
            kind: ParseErrorKind::Schema,
            line: None,
            column: None,
            path: Some(path.to_owned()),
            message: match found {
                Some(v) => format!("expected a {KIND} ({API_VERSION}), found {path} {v:?}"),
                None => format!("is required: expected a {KIND} ({API_VERSION})"),
            },
        })
    };
    match from_document::<Envelope>(doc) {
        Ok(e) => match type_error(Some(&e.api_version), Some(&e.kind)) {
            Some(err) => Err(err),
            None => Ok(NextApp {
                metadata: e.metadata,
                spec: e.spec,
                status: e.status,
            }),
        },
        Err(err) => {
            // A document of another kind fails on its first foreign field; say what it really is.
            if err.kind == ParseErrorKind::Schema
                && let Ok(t) = from_document::<TypeMeta>(doc)
                && let Some(type_err) = type_error(t.api_version.as_deref(), t.kind.as_deref())
            {
                return Err(type_err);
            }
            Err(err)
        }
    }
}
