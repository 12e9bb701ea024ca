//! Per-app renderers: the Knative Service, ServiceAccount and NetworkPolicy of one validated NextApp
//! (and, through [`super::image_policy`] and [`super::imgcache`], its ClusterImagePolicy and
//! image-prewarm DaemonSet).
//!
//! Shared with `build.rs`; pure: no I/O, clock or randomness, `BTreeMap` only, so identical input gives
//! byte-identical output. Built from k8s-openapi structs with `..Default::default()`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource,
    HTTPGetAction, PodSpec, Probe, ResourceRequirements, SeccompProfile, SecretEnvSource, SecretKeySelector,
    SecurityContext, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::{Manifest, RenderOptions};
use crate::api::knative::{
    KnativeServiceSpec, RevisionSpec, RevisionTemplateSpec, TemplateMeta, TrafficTarget,
};
use crate::api::{
    API_VERSION, KIND, KnativeService, MANAGED_BY, NextAppSpec, ResourcesSpec, Runtime, ScalingSpec,
    SecuritySpec, defaults, labels, ports, reasons, serve,
};
use crate::policy::{Problem, Severity, ValidatedApp, warm};

/// Knative autoscaling annotation keys.
mod annotations {
    pub const MIN_SCALE: &str = "autoscaling.knative.dev/min-scale";
    pub const MAX_SCALE: &str = "autoscaling.knative.dev/max-scale";
    pub const TARGET_BURST_CAPACITY: &str = "autoscaling.knative.dev/target-burst-capacity";
    pub const PANIC_WINDOW: &str = "autoscaling.knative.dev/panic-window-percentage";
    pub const PANIC_THRESHOLD: &str = "autoscaling.knative.dev/panic-threshold-percentage";
    pub const SCALE_DOWN_DELAY: &str = "autoscaling.knative.dev/scale-down-delay";
    pub const RETENTION: &str = "autoscaling.knative.dev/scale-to-zero-pod-retention-period";
}

/// Renders the objects of one app, in a fixed order: Knative Service, ServiceAccount, NetworkPolicy
/// (unless switched off), ClusterImagePolicy (when `security.signature` is set), and with
/// `scaling.imagePrewarm: true` the image-prewarm NetworkPolicy (unless switched off; before the pods
/// it isolates) and DaemonSet.
pub fn render(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> Vec<Manifest> {
    let mut out = Vec::with_capacity(6);
    out.push(Manifest::KnativeService(Box::new(build_knative_service(
        app, opts,
    ))));
    out.push(Manifest::ServiceAccount(build_service_account(app, opts)));
    if network_policy_enabled(app.spec()) {
        out.push(Manifest::NetworkPolicy(build_network_policy(app, opts)));
    }
    if let Some(policy) = super::image_policy::build_cluster_image_policy(app, opts) {
        out.push(Manifest::ClusterImagePolicy(Box::new(policy)));
    }
    if let Some(policy) = super::imgcache::image_cache_network_policy(app, opts) {
        out.push(Manifest::NetworkPolicy(policy));
    }
    if let Some(daemon_set) = super::imgcache::image_cache(app, opts) {
        out.push(Manifest::DaemonSet(Box::new(daemon_set)));
    }
    out
}

/// Name of the app's ServiceAccount.
pub fn service_account_name(app: &str) -> String {
    format!("{app}-sa")
}

/// The peer allowed to scrape metrics: every pod in a namespace labelled
/// `knext.dev/metrics-scrape: "true"` (apps' and the operator's NetworkPolicies share it).
pub fn metrics_scrapers() -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                labels::METRICS_SCRAPE.to_owned(),
                "true".to_owned(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Name of the app's NetworkPolicy.
pub fn network_policy_name(app: &str) -> String {
    format!("{app}-allow-ingress")
}

/// Whether the NetworkPolicy is rendered: unless `security.networkPolicy` is explicitly false.
pub fn network_policy_enabled(spec: &NextAppSpec) -> bool {
    spec.security.as_ref().and_then(|s| s.network_policy) != Some(false)
}

fn is_preview(spec: &NextAppSpec) -> bool {
    spec.preview.as_ref().is_some_and(|p| p.enabled == Some(true))
}

fn common_labels(app: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::APP.to_owned(), app.to_owned()),
        (labels::COMPONENT.to_owned(), component.to_owned()),
        (labels::MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
        (labels::NAME.to_owned(), app.to_owned()),
        (labels::PART_OF.to_owned(), app.to_owned()),
    ])
}

/// The labels of every object of `app` with role `component`: knext's common labels, and the preview
/// markers of a preview app.
pub(super) fn object_labels(app: &ValidatedApp<'_>, component: &str) -> BTreeMap<String, String> {
    let mut labels = common_labels(app.name(), component);
    if let Some(p) = app.spec().preview.as_ref().filter(|p| p.enabled == Some(true)) {
        labels.insert(labels::ENVIRONMENT.to_owned(), "preview".to_owned());
        if let Some(id) = p.pr_id.as_deref().filter(|id| !id.is_empty()) {
            labels.insert(labels::PR_ID.to_owned(), id.to_owned());
        }
    }
    labels
}

/// The metadata of the child `name` of `app` with role `component`: namespace, [`object_labels`] and,
/// when rendering for the operator, the controller owner reference to the NextApp.
pub(super) fn metadata(
    app: &ValidatedApp<'_>,
    opts: &RenderOptions<'_>,
    name: String,
    component: &str,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(app.namespace().to_owned()),
        labels: Some(object_labels(app, component)),
        owner_references: opts.owner_uid.map(|uid| {
            vec![OwnerReference {
                api_version: API_VERSION.to_owned(),
                kind: KIND.to_owned(),
                name: app.name().to_owned(),
                uid: uid.to_owned(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        }),
        ..Default::default()
    }
}

/// The ServiceAccount `<app>-sa`, with token automount off.
pub fn build_service_account(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(app, opts, service_account_name(app.name()), "service-account"),
        automount_service_account_token: Some(false),
        ..Default::default()
    }
}

/// The NetworkPolicy `<app>-allow-ingress`: only Knative's data plane, same-namespace metrics and
/// labelled scrapers reach the pods; the app port (`knext serve`) is reachable only through the
/// queue-proxy, and the Next.js server only through `knext serve` (it listens on loopback). Scrapers
/// reach queue-proxy's metrics (9091) and `knext serve`'s (9464).
pub fn build_network_policy(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> NetworkPolicy {
    let port = |p: i32| NetworkPolicyPort {
        port: Some(IntOrString::Int(p)),
        ..Default::default()
    };
    let knative_ports = [
        ports::QUEUE_HTTP,
        ports::QUEUE_HTTP2,
        ports::QUEUE_HTTPS,
        ports::AUTOSCALING_METRICS,
        ports::METRICS,
    ];
    let rules = vec![
        NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "kubernetes.io/metadata.name".to_owned(),
                        operator: "In".to_owned(),
                        values: Some(vec!["knative-serving".to_owned(), "kourier-system".to_owned()]),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ports: Some(knative_ports.into_iter().map(port).collect()),
        },
        NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(LabelSelector::default()),
                ..Default::default()
            }]),
            ports: Some(vec![
                port(ports::AUTOSCALING_METRICS),
                port(ports::METRICS),
                port(ports::APP_METRICS),
            ]),
        },
        NetworkPolicyIngressRule {
            from: Some(vec![metrics_scrapers()]),
            ports: Some(vec![port(ports::METRICS), port(ports::APP_METRICS)]),
        },
    ];
    NetworkPolicy {
        metadata: metadata(app, opts, network_policy_name(app.name()), "network-policy"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    labels::KNATIVE_SERVICE.to_owned(),
                    app.name().to_owned(),
                )])),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(rules),
            ..Default::default()
        }),
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The plain environment knext derives from the spec, in emission order (rows 1-11 of the reference),
/// before the Secret mappings and `spec.env`. The validator uses the same list to flag user entries that
/// would collide.
pub fn system_env(spec: &NextAppSpec, app_name: &str) -> Vec<EnvVar> {
    // No HOSTNAME/PORT: `knext serve` gives the Next.js server loopback ones.
    let mut out = vec![env("NODE_ENV", "production")];
    let timeout = spec.timeout_seconds.unwrap_or(defaults::TIMEOUT_SECONDS);
    let mut buf = itoa::Buffer::new();
    out.push(env(
        serve::ENV_SHUTDOWN_GRACE_MS,
        buf.format(crate::api::drain::cap_ms(timeout)),
    ));
    if let Some(pool) = spec.scaling.as_ref().and_then(|s| s.pool_max).filter(|p| *p > 0) {
        out.push(env("KNEXT_DB_POOL_MAX", buf.format(pool)));
    }
    if let Some(s) = &spec.storage
        && let Some(provider) = s.provider
    {
        out.push(env("STORAGE_PROVIDER", provider.as_str()));
        out.push(env("GCS_BUCKET_NAME", s.bucket.clone().unwrap_or_default()));
        if let Some(r) = s.region.as_deref().filter(|r| !r.is_empty()) {
            out.push(env("CACHE_BUCKET_REGION", r));
        }
        if let Some(e) = s.endpoint.as_deref().filter(|e| !e.is_empty()) {
            out.push(env("S3_ENDPOINT", e));
        }
    }
    if let Some(c) = &spec.cache {
        if let Some(provider) = c.provider {
            out.push(env("CACHE_PROVIDER", provider.as_str()));
            out.push(env("REDIS_URL", c.url.clone().unwrap_or_default()));
            if let Some(p) = c.key_prefix.as_deref().filter(|p| !p.is_empty()) {
                out.push(env("REDIS_KEY_PREFIX", p));
            }
        }
        if let Some(t) = &c.invalidate_token {
            out.push(secret_env(
                serve::ENV_INVALIDATE_TOKEN,
                &t.secret_name,
                &t.secret_key,
            ));
        }
    }
    if let Some(r) = &spec.revalidation
        && r.queue.is_some()
    {
        out.push(env(
            "KAFKA_BROKER_URL",
            r.kafka_broker_url.clone().unwrap_or_default(),
        ));
        out.push(env(
            "KAFKA_REVALIDATION_TOPIC",
            format!("{app_name}-revalidation"),
        ));
    }
    if let Some(o) = spec.observability.as_ref().filter(|o| o.enabled == Some(true)) {
        out.push(env("KN_APP_NAME", app_name));
        if let Some(rum) = o.rum.as_ref().filter(|r| r.enabled == Some(true)) {
            out.push(env("NEXT_PUBLIC_RUM_ENABLED", "true"));
            if let Some(rate) = rum.sample_rate.as_deref().filter(|r| !r.is_empty()) {
                out.push(env("NEXT_PUBLIC_RUM_SAMPLE_RATE", rate));
            }
        }
        if let Some(t) = o.tracing.as_ref().filter(|t| t.enabled == Some(true)) {
            out.push(env("OTEL_TRACING_ENABLED", "true"));
            if let Some(e) = t.endpoint.as_deref().filter(|e| !e.is_empty()) {
                out.push(env("OTEL_EXPORTER_OTLP_ENDPOINT", e));
            }
            if let Some(r) = t.sample_rate.as_deref().filter(|r| !r.is_empty()) {
                out.push(env("OTEL_TRACES_SAMPLER_ARG", r));
            }
        }
    }
    out
}

/// Names of [`system_env`] for a spec (they do not depend on the app's name): what the validator checks
/// user-supplied names against.
pub fn system_env_names(spec: &NextAppSpec) -> Vec<String> {
    system_env(spec, "").into_iter().map(|e| e.name).collect()
}

/// The full container environment: [`system_env`]; then the Secret mappings, `secrets.envMap` together
/// with `DATABASE_URL`/`DATABASE_URL_RO` from `spec.database`, sorted by name (as the reference injects
/// the database into the envMap); then `spec.env` sorted by name, minus entries that collide with an
/// earlier name (the validator warns about those).
fn container_env(spec: &NextAppSpec, app_name: &str) -> Vec<EnvVar> {
    let mut out = system_env(spec, app_name);
    let mut secret_refs: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    if let Some(s) = &spec.secrets {
        for (name, sel) in &s.env_map {
            secret_refs.insert(name, (&sel.secret_name, &sel.secret_key));
        }
    }
    if let Some(db) = &spec.database {
        if let Some(r) = &db.secret_ref {
            secret_refs.insert(
                "DATABASE_URL",
                (&r.name, r.key.as_deref().unwrap_or("DATABASE_URL")),
            );
        }
        if let Some(r) = &db.ro_secret_ref {
            let key = r.key.as_deref().unwrap_or("DATABASE_URL_RO");
            secret_refs.insert("DATABASE_URL_RO", (&r.name, key));
        }
    }
    for (name, (secret, key)) in secret_refs {
        out.push(secret_env(name, secret, key));
    }
    let managed = out.len();
    for (name, value) in &spec.env {
        if !out[..managed].iter().any(|e| e.name == *name) {
            out.push(env(name, value.clone()));
        }
    }
    out
}

/// The `WarmScheduleNotRendered` warning of a render without a clock (see [`super::warnings`]), for
/// an app with warm windows that the operator would apply; previews have none (their min-scale is 0
/// either way).
pub(super) fn warm_schedule_warning(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> Option<Problem> {
    let spec = app.spec();
    let scaling = spec.scaling.as_ref()?;
    let windows = warm::scheduled_windows(scaling);
    if opts.now.is_some() || windows == 0 || is_preview(spec) {
        return None;
    }
    let windows = if windows == 1 {
        String::from("1 window is")
    } else {
        format!("{windows} windows are")
    };
    Some(Problem {
        severity: Severity::Warning,
        reason: reasons::WARM_SCHEDULE_NOT_RENDERED,
        path: "spec.scaling.warmSchedule".to_owned(),
        message: format!(
            "{windows} applied by the knext operator only; GitOps output has no clock, so min-scale \
             stays at {}",
            warm::min_scale(scaling, None)
        ),
    })
}

fn template_annotations(spec: &NextAppSpec, now: Option<Timestamp>) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let unset = ScalingSpec::default(); // allocation-free
    let s = spec.scaling.as_ref().unwrap_or(&unset);
    let preview = is_preview(spec);
    let mut put = |k: &str, v: String| {
        a.insert(k.to_owned(), v);
    };
    let min = if preview { 0 } else { warm::min_scale(s, now) };
    let max = if preview {
        1
    } else {
        s.max_scale.unwrap_or(defaults::MAX_SCALE)
    };
    put(annotations::MIN_SCALE, min.to_string());
    put(annotations::MAX_SCALE, max.to_string());
    if let Some(v) = s.target_burst_capacity {
        put(annotations::TARGET_BURST_CAPACITY, v.to_string());
    }
    if let Some(v) = s.panic_window_percentage {
        put(annotations::PANIC_WINDOW, v.to_string());
    }
    if let Some(v) = s.panic_threshold_percentage {
        put(annotations::PANIC_THRESHOLD, v.to_string());
    }
    if preview {
        put(annotations::RETENTION, "30s".to_owned());
    } else if let Some(d) = &s.scale_down_delay {
        put(annotations::SCALE_DOWN_DELAY, d.clone());
    }
    if spec
        .observability
        .as_ref()
        .is_some_and(|o| o.enabled == Some(true))
    {
        put("prometheus.io/scrape", "true".to_owned());
        put("prometheus.io/port", ports::APP_METRICS.to_string());
        put("prometheus.io/path", "/metrics".to_owned());
    }
    a
}

fn probe(path: &str, initial_delay: Option<i32>, period: Option<i32>) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(ports::APP),
            ..Default::default()
        }),
        initial_delay_seconds: initial_delay,
        period_seconds: period,
        ..Default::default()
    }
}

fn resources(spec: &NextAppSpec) -> ResourceRequirements {
    let unset = ResourcesSpec::default(); // allocation-free
    let r = spec.resources.as_ref().unwrap_or(&unset);
    let q = |v: &Option<String>, d: &str| Quantity(v.as_deref().unwrap_or(d).to_owned());
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), q(&r.cpu_request, defaults::CPU_REQUEST)),
            (
                "memory".to_owned(),
                q(&r.memory_request, defaults::MEMORY_REQUEST),
            ),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".to_owned(), q(&r.cpu_limit, defaults::CPU_LIMIT)),
            ("memory".to_owned(), q(&r.memory_limit, defaults::MEMORY_LIMIT)),
        ])),
        ..Default::default()
    }
}

fn security_context(spec: &NextAppSpec) -> SecurityContext {
    let unset = SecuritySpec::default(); // allocation-free
    let sec = spec.security.as_ref().unwrap_or(&unset);
    SecurityContext {
        run_as_user: Some(sec.run_as_user.unwrap_or(defaults::RUN_AS_ID)),
        run_as_group: Some(sec.run_as_group.unwrap_or(defaults::RUN_AS_ID)),
        ..hardened_security_context()
    }
}

/// What every container knext renders gets: non-root, no privilege escalation, every capability
/// dropped, a read-only root filesystem, seccomp `RuntimeDefault`.
pub(super) fn hardened_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// The seccomp profile of the container runtime's default.
pub(super) fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

fn traffic(spec: &NextAppSpec) -> Vec<TrafficTarget> {
    let Some(t) = &spec.traffic else { return Vec::new() };
    let Some(rev) = t.revision_name.as_deref().filter(|r| !r.is_empty()) else {
        return Vec::new();
    };
    let canary = i64::from(t.canary_percent.unwrap_or(0));
    let pinned = |percent| TrafficTarget {
        revision_name: Some(rev.to_owned()),
        latest_revision: false,
        percent,
    };
    if canary <= 0 {
        vec![pinned(100)]
    } else {
        vec![
            pinned(100 - canary),
            TrafficTarget {
                revision_name: None,
                latest_revision: true,
                percent: canary,
            },
        ]
    }
}

/// The container's command: `knext serve` with the ports the manifests assume spelled out, so the
/// rendered YAML says what runs (`knext serve`'s defaults are the same constants).
pub fn serve_command() -> Vec<String> {
    let mut buf = itoa::Buffer::new();
    let listen = format!("0.0.0.0:{}", buf.format(serve::LISTEN_PORT));
    let metrics = format!("0.0.0.0:{}", buf.format(serve::METRICS_PORT));
    [
        serve::BINARY,
        "serve",
        "--listen",
        &listen,
        "--upstream-port",
        buf.format(serve::UPSTREAM_PORT),
        "--metrics-addr",
        &metrics,
        "--",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The Next.js server `knext serve` starts (the container's args).
fn child_command(spec: &NextAppSpec) -> Vec<String> {
    match spec.runtime {
        Some(Runtime::Bun) => serve::BUN_COMMAND.map(str::to_owned).to_vec(),
        _ => serve::NODE_COMMAND.map(str::to_owned).to_vec(),
    }
}

/// The Knative Service `<app>`.
pub fn build_knative_service(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> KnativeService {
    let spec = app.spec();
    let health = spec
        .health_check_path
        .as_deref()
        .unwrap_or(defaults::HEALTH_CHECK_PATH);
    let cache_dir = spec
        .cache
        .as_ref()
        .and_then(|c| c.dir.clone())
        .unwrap_or(defaults::NEXT_CACHE_DIR.into());
    let env_from: Vec<EnvFromSource> = spec
        .secrets
        .as_ref()
        .map(|s| {
            s.env_from
                .iter()
                .map(|name| EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: name.clone(),
                        optional: None,
                    }),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default();
    let container = Container {
        name: "app".to_owned(),
        image: Some(spec.image.clone()),
        command: Some(serve_command()),
        args: Some(child_command(spec)),
        ports: Some(vec![ContainerPort {
            container_port: ports::APP,
            ..Default::default()
        }]),
        env: Some(container_env(spec, app.name())),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: Some(resources(spec)),
        readiness_probe: Some(probe(health, None, None)),
        liveness_probe: Some(probe(health, Some(5), Some(10))),
        security_context: Some(security_context(spec)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "next-cache".to_owned(),
                mount_path: cache_dir,
                ..Default::default()
            },
            VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let empty_dir = |name: &str| Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    let mut template_labels = common_labels(app.name(), "web");
    if let Some(b) = spec.build_id.as_deref().filter(|b| !b.is_empty()) {
        template_labels.insert(labels::BUILD_ID.to_owned(), b.to_owned());
    }
    KnativeService::new(
        metadata(app, opts, app.name().to_owned(), "web"),
        KnativeServiceSpec {
            template: RevisionTemplateSpec {
                metadata: TemplateMeta {
                    annotations: template_annotations(spec, opts.now),
                    labels: template_labels,
                },
                spec: RevisionSpec {
                    container_concurrency: Some(i64::from(
                        spec.scaling
                            .as_ref()
                            .and_then(|s| s.container_concurrency)
                            .unwrap_or(defaults::CONTAINER_CONCURRENCY),
                    )),
                    timeout_seconds: Some(i64::from(
                        spec.timeout_seconds.unwrap_or(defaults::TIMEOUT_SECONDS),
                    )),
                    pod: PodSpec {
                        automount_service_account_token: Some(false),
                        service_account_name: Some(service_account_name(app.name())),
                        containers: vec![container],
                        volumes: Some(vec![empty_dir("next-cache"), empty_dir("tmp")]),
                        ..Default::default()
                    },
                },
            },
            traffic: traffic(spec),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NextApp, drain, serve};
    use crate::policy::{self, Severity};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// Renders an app with the given timeout; returns the rendered grace period (the Revision's
    /// `timeoutSeconds`, which Knative copies into `terminationGracePeriodSeconds`), the rendered drain
    /// cap and the reasons of the validator's warnings.
    fn rendered_drain(timeout: i32) -> (i64, i64, Vec<&'static str>) {
        let spec = format!("image: ghcr.io/acme/web@{DIGEST}\ntimeoutSeconds: {timeout}\n");
        let spec: crate::api::NextAppSpec = serde_yaml::from_str(&spec).unwrap();
        let app = NextApp::new("web", spec);
        let (valid, report) = policy::validate(&app).unwrap();
        let warnings = report
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
            .map(|p| p.reason)
            .collect();
        let svc = build_knative_service(&valid, &RenderOptions::default());
        let revision = &svc.spec.template.spec;
        let container = &revision.pod.containers[0];
        let cap = container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == serve::ENV_SHUTDOWN_GRACE_MS)
            .and_then(|e| e.value.as_deref())
            .unwrap()
            .parse()
            .unwrap();
        (revision.timeout_seconds.unwrap(), cap, warnings)
    }

    const WARM: &str = "scaling: {minScale: 1, warmSchedule: [{start: '0 8 * * 1-5', end: '0 18 * * 1-5', \
                        replicas: 3, timezone: Europe/Berlin}]}\n";
    /// Friday 10:00 in Berlin: inside the window.
    const FRIDAY_MORNING: &str = "2026-03-27T10:00:00+01:00";

    fn mk_app(extra: &str) -> NextApp {
        let spec = format!("image: ghcr.io/acme/web@{DIGEST}\n{extra}");
        NextApp::new("web", serde_yaml::from_str(&spec).unwrap())
    }

    fn mk_opts(now: Option<&str>) -> RenderOptions<'static> {
        RenderOptions {
            now: now.map(|t| t.parse().unwrap()),
            ..RenderOptions::default()
        }
    }

    /// The rendered Knative Service of an app with `extra` spec lines, rendered at `now`.
    fn rendered_service(extra: &str, now: Option<&str>) -> KnativeService {
        let app = mk_app(extra);
        let (valid, _) = policy::validate(&app).unwrap();
        build_knative_service(&valid, &mk_opts(now))
    }

    fn rendered_min_scale(extra: &str, now: Option<&str>) -> String {
        let svc = rendered_service(extra, now);
        svc.spec.template.metadata.annotations[annotations::MIN_SCALE].clone()
    }

    #[test]
    fn a_clock_inside_a_warm_window_raises_min_scale_and_no_clock_renders_the_base() {
        assert_eq!(rendered_min_scale(WARM, Some(FRIDAY_MORNING)), "3");
        // Saturday, and Friday at the end instant: the base.
        assert_eq!(rendered_min_scale(WARM, Some("2026-03-28T10:00:00+01:00")), "1");
        assert_eq!(rendered_min_scale(WARM, Some("2026-03-27T18:00:00+01:00")), "1");
        assert_eq!(rendered_min_scale(WARM, None), "1");
        // Previews stay at 0, window or not.
        let preview = format!("{WARM}preview: {{enabled: true, prId: '7'}}\n");
        assert_eq!(rendered_min_scale(&preview, Some(FRIDAY_MORNING)), "0");
    }

    #[test]
    fn the_clock_changes_nothing_but_min_scale() {
        let without = rendered_service(WARM, None);
        let outside = rendered_service(WARM, Some("2026-03-28T10:00:00+01:00"));
        assert_eq!(outside, without);
        let mut inside = rendered_service(WARM, Some(FRIDAY_MORNING));
        inside
            .spec
            .template
            .metadata
            .annotations
            .insert(annotations::MIN_SCALE.to_owned(), "1".to_owned());
        assert_eq!(inside, without);
    }

    #[test]
    fn only_a_render_without_a_clock_warns_that_the_floors_are_left_out() {
        let warnings = |extra: &str, now: Option<&str>| {
            let app = mk_app(extra);
            let (valid, _) = policy::validate(&app).unwrap();
            super::super::warnings(&valid, &mk_opts(now))
        };
        let got = warnings(WARM, None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].severity, Severity::Warning);
        assert_eq!(got[0].reason, crate::api::reasons::WARM_SCHEDULE_NOT_RENDERED);
        assert_eq!(
            got[0].to_string(),
            "spec.scaling.warmSchedule: 1 window is applied by the knext operator only; GitOps output has \
             no clock, so min-scale stays at 1"
        );
        // The validator, which the operator runs and publishes as events, does not say it.
        let (_, report) = policy::validate(&mk_app(WARM)).unwrap();
        assert_eq!(report.problems, []);
        // The operator renders with its clock: nothing to warn about, inside a window or not.
        assert_eq!(warnings(WARM, Some(FRIDAY_MORNING)), []);
        assert_eq!(warnings(WARM, Some("2026-03-28T10:00:00+01:00")), []);
        // No windows, only @every windows (the validator warns about those), or a preview: nothing
        // is left out.
        assert_eq!(warnings("", None), []);
        assert_eq!(
            warnings(
                "scaling: {warmSchedule: [{start: '@every 1h', end: '0 18 * * *', replicas: 2}]}",
                None
            ),
            []
        );
        assert_eq!(warnings(&format!("{WARM}preview: {{enabled: true}}\n"), None), []);
        let two = "scaling: {warmSchedule: [{start: '0 8 * * *', end: '0 9 * * *', replicas: 2}, \
                   {start: '0 17 * * *', end: '0 18 * * *', replicas: 2}]}";
        assert!(
            warnings(two, None)[0]
                .message
                .starts_with("2 windows are applied by the knext operator only; "),
            "{:?}",
            warnings(two, None)
        );
        assert!(warnings(two, None)[0].message.ends_with("min-scale stays at 0"));
    }

    #[test]
    fn the_rendered_drain_cap_never_exceeds_what_the_kubelet_leaves_after_knatives_prestop_wait() {
        for timeout in 10..=3600 {
            let (grace, cap, warnings) = rendered_drain(timeout);
            assert_eq!(grace, i64::from(timeout));
            // Written out independently of `api::drain`: the kubelet runs the preStop hook (the
            // queue-proxy's 30 s drain wait) inside the grace period, then SIGTERM, then SIGKILL after
            // what is left of it, but never sooner than 2 s.
            let sigterm_to_sigkill_ms = (grace - 30).max(2) * 1000;
            assert!(
                cap < sigterm_to_sigkill_ms,
                "timeout {timeout}: cap {cap} ms, SIGKILL after {sigterm_to_sigkill_ms} ms"
            );
            assert!((1000..=25_000).contains(&cap), "timeout {timeout}: cap {cap} ms");
            let short = warnings.contains(&crate::api::reasons::SHORT_DRAIN);
            assert_eq!(
                short,
                cap < 25_000,
                "timeout {timeout}: cap {cap}, warnings {warnings:?}"
            );
            assert_eq!(short, timeout < drain::FULL_DRAIN_MIN_TIMEOUT_SECONDS);
        }
        // The default timeout (300 s) drains fully and warns about nothing.
        let spec: crate::api::NextAppSpec =
            serde_yaml::from_str(&format!("image: ghcr.io/acme/web@{DIGEST}\n")).unwrap();
        let app = NextApp::new("web", spec);
        let (_, report) = policy::validate(&app).unwrap();
        assert_eq!(report.problems, []);
    }
}
