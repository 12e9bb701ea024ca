//! knext's API: the `NextApp` resource, the Knative Service type knext renders, and shared constants.
//!
//! Shared with `build.rs` (included through `#[path]`): pure data and constants, no I/O. Shared code
//! names only `crate::{api, policy, render, yaml}`.

pub mod crd;
pub mod knative;
pub mod nextapp;
pub mod schema;
pub mod sigstore;

pub use knative::KnativeService;
pub use nextapp::*;
pub use sigstore::ClusterImagePolicy;

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
    /// knext's own label naming the owning NextApp's namespace, on cluster-scoped objects (the
    /// ClusterImagePolicy), which have no namespace of their own; with [`APP`] it finds the NextApp.
    pub const APP_NAMESPACE: &str = "apps.kn-next.dev/namespace";
    /// Build id stamped on the revision template (skew protection).
    pub const BUILD_ID: &str = "apps.kn-next.dev/build-id";
    /// The image-prewarm DaemonSet's selector label, naming the app (`<app>-imgcache`).
    pub const IMGCACHE: &str = "apps.kn-next.dev/imgcache";
    /// Label Knative puts on the pods of a Service.
    pub const KNATIVE_SERVICE: &str = "serving.knative.dev/service";
    /// Namespaces labelled `"true"` may scrape app metrics (`knext serve` 9464, queue-proxy 9091).
    pub const METRICS_SCRAPE: &str = "knext.dev/metrics-scrape";
    /// Preview marker label (`environment: preview`).
    pub const ENVIRONMENT: &str = "environment";
    /// Preview pull-request id label.
    pub const PR_ID: &str = "pr-id";
}

/// Annotation keys knext sets.
pub mod annotations {
    /// On a cluster-scoped object the operator applied for a NextApp (its ClusterImagePolicy): the
    /// NextApp's UID. It stands in for an owner reference, which a namespaced NextApp cannot be for a
    /// cluster-scoped object: the operator deletes only policies carrying it, and only when no NextApp
    /// with that UID wants them any more. `knext render` output does not carry it.
    pub const OWNER_UID: &str = "apps.kn-next.dev/owner-uid";
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

/// The image-prewarm DaemonSet `<app>-imgcache` (`spec.scaling.imagePrewarm`): knext's own image
/// stages the knext binary into an emptyDir with `knext copy-self`, and the app image's container runs
/// it as `knext pause`. Shared by the renderer and the two subcommands.
pub mod imgcache {
    /// Mount path of the emptyDir the binary is staged into (in both containers).
    pub const PIN_DIR: &str = "/knext-pin";
    /// The staged knext binary, which the app image's container runs.
    pub const PIN_BINARY: &str = "/knext-pin/knext";
    /// The subcommand that sleeps until SIGTERM or SIGINT and exits 0.
    pub const PAUSE: &str = "pause";
    /// The subcommand that copies the running knext binary to a path (knext's image has no `cp`).
    pub const COPY_SELF: &str = "copy-self";
    /// Mode of the staged binary: read and execute for everyone, writable by no one.
    pub const PIN_MODE: u32 = 0o555;
    /// uid and gid of the DaemonSet's pods when `spec.security` names none: distroless's `nonroot`,
    /// which knext's image runs as (the pods need nothing of the app image's user).
    pub const RUN_AS_ID: i64 = 65532;
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
    /// `knext install` and `knext operator` flags of the cluster-wide default of
    /// `spec.security.signature`, for apps without their own (the bundle passes them from one to the
    /// other).
    pub const FLAG_SIGNATURE_ISSUER: &str = "signature-issuer";
    /// See [`FLAG_SIGNATURE_ISSUER`].
    pub const FLAG_SIGNATURE_SUBJECT: &str = "signature-subject";
    /// See [`FLAG_SIGNATURE_ISSUER`].
    pub const FLAG_SIGNATURE_SUBJECT_REGEXP: &str = "signature-subject-regexp";
    /// See [`FLAG_SIGNATURE_ISSUER`].
    pub const FLAG_SIGNATURE_REQUIRE_SBOM: &str = "signature-require-sbom-attestation";
    /// `knext operator --knext-image REF`: knext's own image (digest-pinned), the image-prewarm
    /// DaemonSet's init container; the install bundle sets it to the operator's image.
    pub const FLAG_KNEXT_IMAGE: &str = "knext-image";
    /// Name of the leader-election Lease in the operator's namespace.
    pub const LEASE: &str = "knext-operator-leader";
    /// Env var carrying the pod name (the leader-election identity).
    pub const ENV_POD_NAME: &str = "KNEXT_POD_NAME";
    /// Env var carrying the pod namespace (where the Lease lives).
    pub const ENV_POD_NAMESPACE: &str = "KNEXT_POD_NAMESPACE";
    /// Optional Secret (in the operator's namespace) with the credentials of the cleanup on delete
    /// (`src/operator/cleanup.rs`): keys `redis-username`, `redis-password`, and object_store config
    /// keys such as `aws_access_key_id` or `google_service_account_key`.
    pub const CLEANUP_SECRET: &str = "knext-operator-cleanup";
    /// Where the operator's container finds [`CLEANUP_SECRET`]'s keys as files (a missing directory
    /// means no credentials beyond the pod's environment).
    pub const CLEANUP_DIR: &str = "/var/run/secrets/knext/cleanup";
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
    /// A secret-looking literal environment value ([`crate::policy::secrets`]); the condition reason
    /// of such an app is still `InvalidSpec`.
    pub const SECRET_LITERAL: &str = "SecretLiteral";
    /// Warning: `timeoutSeconds` leaves knext serve less than the full drain cap after Knative's
    /// preStop wait ([`crate::api::drain`]).
    pub const SHORT_DRAIN: &str = "ShortDrainBudget";
    /// Warning: a `NEXT_PUBLIC_*` name that looks like a secret; Next.js inlines such values into the
    /// client bundle.
    pub const PUBLIC_SECRET_NAME: &str = "PublicSecretName";
    /// Warning: a `spec.env` entry knext sets itself and ignores (the reference operator's event
    /// reason).
    pub const ENV_VAR_IGNORED: &str = "EnvVarIgnored";
    /// Warning: a setting that has no effect as written.
    pub const SETTING_IGNORED: &str = "SettingIgnored";
    /// Warning: `signature.subjectRegExp` without `^` and `$`; policy-controller matches it anywhere in
    /// the subject, so a longer subject (another repository or branch) can match too.
    pub const UNANCHORED_REGEXP: &str = "UnanchoredRegExp";
    /// The API server has no `clusterimagepolicies.policy.sigstore.dev`: policy-controller is not
    /// installed, so the app's `signature` is not enforced (a Warning event; the app still rolls out).
    pub const SIGNATURE_NOT_ENFORCED: &str = "SignatureNotEnforced";
    /// Warning of `knext render` and build scripts, never of the operator: `spec.scaling.warmSchedule`
    /// floors depend on the clock, so GitOps output carries the base `minScale` and only the operator
    /// applies the floors ([`crate::render::warnings`]).
    pub const WARM_SCHEDULE_NOT_RENDERED: &str = "WarmScheduleNotRendered";
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
    /// Smallest accepted `timeoutSeconds`.
    pub const MIN_TIMEOUT_SECONDS: i32 = 10;
    /// Largest accepted `timeoutSeconds`.
    pub const MAX_TIMEOUT_SECONDS: i32 = 3600;
    /// Largest accepted `containerConcurrency` (Knative's default container-concurrency-max-limit).
    pub const MAX_CONTAINER_CONCURRENCY: i32 = 1000;
    /// `maxScale × poolMax` must stay at or below this many database connections.
    pub const MAX_APP_DB_CONNECTIONS: i64 = 80;
}

/// How long an app container has to drain after SIGTERM under Knative, and the hard cap knext serve is
/// given (`KNEXT_SHUTDOWN_GRACE_MS`), derived from the revision's `timeoutSeconds`.
///
/// Knative sets the pod's `terminationGracePeriodSeconds` to `timeoutSeconds` and gives the user
/// container a preStop hook (`GET /wait-for-drain` on the queue-proxy) that returns only after the
/// queue-proxy has seen no request for [`drain::KNATIVE_PRESTOP_DRAIN_SECONDS`]. The kubelet runs the preStop
/// hook first, sends SIGTERM when it returns (or when the grace period is used up) and SIGKILLs what is
/// left when the rest of the grace period, but at least [`drain::KUBELET_MIN_GRACE_SECONDS`], has passed.
/// So knext serve has `max(timeoutSeconds − 30 s, 2 s)` after SIGTERM ([`drain::budget_ms`]), and its cap
/// ([`drain::cap_ms`]) keeps a margin below that. In-flight requests are not cut short by the preStop phase:
/// the container serves them during those 30 s; the cap bounds what is left after it.
pub mod drain {
    /// The queue-proxy's drain quiet period, seconds: `drainSleepDuration` in Knative Serving's
    /// `pkg/queue/sharedmain/main.go` (30 s), which the user container's preStop hook waits for.
    pub const KNATIVE_PRESTOP_DRAIN_SECONDS: i64 = 30;
    /// The kubelet's floor between SIGTERM and SIGKILL when a preStop hook used up the grace period,
    /// seconds: `minimumGracePeriodInSeconds` in `pkg/kubelet/kuberuntime/kuberuntime_manager.go`.
    pub const KUBELET_MIN_GRACE_SECONDS: i64 = 2;
    /// The full drain cap, milliseconds: what knext serve gets when the budget allows.
    pub const FULL_CAP_MS: i64 = 25_000;
    /// The margin kept between the cap and SIGKILL, milliseconds (at most half of the budget).
    pub const MARGIN_MS: i64 = 5_000;
    /// The smallest `timeoutSeconds` that leaves the full cap: preStop wait + full cap + margin.
    pub const FULL_DRAIN_MIN_TIMEOUT_SECONDS: i32 =
        ((KNATIVE_PRESTOP_DRAIN_SECONDS * 1000 + FULL_CAP_MS + MARGIN_MS) / 1000) as i32;

    /// Time between SIGTERM and SIGKILL for a revision timeout, milliseconds.
    pub fn budget_ms(timeout_seconds: i32) -> i64 {
        (i64::from(timeout_seconds) - KNATIVE_PRESTOP_DRAIN_SECONDS).max(KUBELET_MIN_GRACE_SECONDS) * 1000
    }

    /// The drain hard cap (`KNEXT_SHUTDOWN_GRACE_MS`) for a revision timeout, milliseconds: the budget
    /// less the margin (at most [`MARGIN_MS`], at most half the budget), at most [`FULL_CAP_MS`]. Always
    /// positive and always below [`budget_ms`].
    pub fn cap_ms(timeout_seconds: i32) -> i64 {
        let budget = budget_ms(timeout_seconds);
        (budget - MARGIN_MS.min(budget / 2)).min(FULL_CAP_MS)
    }

    /// Whether the timeout leaves knext serve the full drain cap.
    pub fn is_full(timeout_seconds: i32) -> bool {
        cap_ms(timeout_seconds) == FULL_CAP_MS
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_cap_stays_inside_the_real_budget_for_every_accepted_timeout() {
            let (min, max) = (
                super::super::defaults::MIN_TIMEOUT_SECONDS,
                super::super::defaults::MAX_TIMEOUT_SECONDS,
            );
            assert_eq!((min, max), (10, 3600));
            let mut previous = 0;
            for t in min..=max {
                let (budget, cap) = (budget_ms(t), cap_ms(t));
                // SIGKILL comes at max(grace − preStop wait, kubelet's floor) after SIGTERM.
                assert_eq!(budget, (i64::from(t) - 30).max(2) * 1000, "timeout {t}");
                assert!(
                    cap > 0 && cap < budget,
                    "timeout {t}: cap {cap} ms, budget {budget} ms"
                );
                assert!(budget - cap >= MARGIN_MS.min(budget / 2), "timeout {t}");
                assert!(cap <= FULL_CAP_MS, "timeout {t}");
                assert!(cap >= previous, "timeout {t}: the cap shrank as the timeout grew");
                assert_eq!(is_full(t), t >= FULL_DRAIN_MIN_TIMEOUT_SECONDS, "timeout {t}");
                previous = cap;
            }
        }

        #[test]
        fn cap_table() {
            let table = [
                (10, 1_000),
                (30, 1_000),
                (32, 1_000),
                (33, 1_500),
                (36, 3_000),
                (40, 5_000),
                (45, 10_000),
                (59, 24_000),
                (60, 25_000),
                (300, 25_000),
                (3600, 25_000),
            ];
            for (timeout, cap) in table {
                assert_eq!(cap_ms(timeout), cap, "timeout {timeout}");
            }
            assert_eq!(FULL_DRAIN_MIN_TIMEOUT_SECONDS, 60);
        }
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
