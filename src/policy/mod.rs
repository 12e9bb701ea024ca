//! The one validator of `NextApp` documents, and the rules it is built from.
//!
//! Shared with `build.rs`; pure, no I/O. Every entry point (CLI `render`/`validate`, build.rs, the
//! operator) calls [`validate`]: it reports every problem at once, each with the JSON path of the field,
//! and only a [`ValidatedApp`] can be rendered, so nothing unvalidated reaches a manifest.

mod admission;
pub mod cron;
pub mod duration;
pub mod image;
pub mod images;
pub mod names;
pub mod quantity;
pub mod secrets;
pub mod signature;
pub mod warm;

use std::fmt;

pub use admission::admission;

use crate::api::{NextApp, NextAppSpec, defaults, drain, reasons, serve};

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The document is rendered; the setting is ignored or questionable.
    Warning,
    /// The document is rejected.
    Error,
}

/// One finding of the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// Kubernetes condition reason: `InvalidImage` for image problems, `InvalidSpec` otherwise.
    pub reason: &'static str,
    /// Path of the offending field, e.g. `spec.scaling.maxScale` or `spec.env["A.B"]`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A NextApp that passed [`validate`]; the only input the renderers accept.
#[derive(Debug, Clone, Copy)]
pub struct ValidatedApp<'a> {
    app: &'a NextApp,
    name: &'a str,
    namespace: &'a str,
    repository: Option<signature::Repository<'a>>,
}

impl<'a> ValidatedApp<'a> {
    /// The validated resource.
    pub fn app(&self) -> &'a NextApp {
        self.app
    }
    /// Its spec.
    pub fn spec(&self) -> &'a NextAppSpec {
        &self.app.spec
    }
    /// `metadata.name` (present and a DNS-1035 label).
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// `metadata.namespace`, or `default` when absent.
    pub fn namespace(&self) -> &'a str {
        self.namespace
    }
    /// The image's repository as Sigstore policy-controller names it, for the `ClusterImagePolicy`:
    /// always present when `spec.security.signature` is set (else validation failed), and for any
    /// image a policy can cover exactly.
    pub fn repository(&self) -> Option<signature::Repository<'a>> {
        self.repository
    }
}

/// The outcome of [`validate`]: all errors and warnings, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every finding.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }
    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }
    /// `InvalidImage` when every error is an image problem, else `InvalidSpec` (the condition reason).
    pub fn reason(&self) -> &'static str {
        if self.errors().all(|p| p.reason == reasons::INVALID_IMAGE) {
            reasons::INVALID_IMAGE
        } else {
            reasons::INVALID_SPEC
        }
    }
}

/// Environment variables the platform (Knative, the runtime) sets and users may never set.
pub const RESERVED_ENV: [&str; 5] = ["HOSTNAME", "PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];

/// Environment variables that carry secrets and therefore may only come from Secrets, each with the
/// spec field that provisions it.
pub const SECRET_ENV: [(&str, &str); 3] = [
    (serve::ENV_INVALIDATE_TOKEN, "spec.cache.invalidateToken"),
    ("DATABASE_URL", "spec.database.secretRef"),
    ("DATABASE_URL_RO", "spec.database.roSecretRef"),
];

/// Validates a NextApp: metadata, then every spec rule. Returns the app, ready to render, together with
/// its warnings, or every problem found.
pub fn validate(app: &NextApp) -> Result<(ValidatedApp<'_>, Report), Report> {
    let mut v = Validator::default();
    v.metadata(app);
    v.spec(&app.spec);
    let report = Report { problems: v.problems };
    if report.has_errors() {
        return Err(report);
    }
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let namespace = app.metadata.namespace.as_deref().unwrap_or(defaults::NAMESPACE);
    let repository = signature::repository(&app.spec.image).ok();
    Ok((
        ValidatedApp {
            app,
            name,
            namespace,
            repository,
        },
        report,
    ))
}

/// Formats the path of a map entry: `base.key`, or `base["key"]` when the key is not a plain identifier.
pub fn key_path(base: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !key.as_bytes()[0].is_ascii_digit();
    if plain {
        format!("{base}.{key}")
    } else {
        let escaped = key.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{base}[\"{escaped}\"]")
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Error,
            reason: reasons::INVALID_SPEC,
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, reason: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            severity: Severity::Warning,
            reason,
            path: path.into(),
            message: message.into(),
        });
    }

    fn check(&mut self, path: impl Into<String>, result: Result<(), String>) {
        if let Err(message) = result {
            self.error(path, message);
        }
    }

    fn metadata(&mut self, app: &NextApp) {
        match app.metadata.name.as_deref() {
            None | Some("") => self.error("metadata.name", "is required"),
            Some(name) => self.check("metadata.name", names::check_dns1035_label(name)),
        }
        if let Some(ns) = app.metadata.namespace.as_deref() {
            self.check("metadata.namespace", names::check_dns1123_label(ns));
        }
    }

    fn spec(&mut self, spec: &NextAppSpec) {
        self.image(&spec.image);
        self.scaling(spec);
        self.resources(spec);
        self.storage(spec);
        self.cache(spec);
        self.revalidation(spec);
        self.secrets_and_env(spec);
        self.observability(spec);
        self.misc(spec);
    }

    fn image(&mut self, image: &str) {
        if let Err(e) = image::check_pinned(image) {
            self.problems.push(Problem {
                severity: Severity::Error,
                reason: e.reason(),
                path: "spec.image".into(),
                message: e.to_string(),
            });
        }
    }

    fn scaling(&mut self, spec: &NextAppSpec) {
        let Some(s) = &spec.scaling else { return };
        let p = "spec.scaling";
        let min = s.min_scale.unwrap_or(defaults::MIN_SCALE);
        let max = s.max_scale.unwrap_or(defaults::MAX_SCALE);
        if min < 0 {
            self.error(format!("{p}.minScale"), format!("must be 0 or more, got {min}"));
        }
        if max < 0 {
            self.error(
                format!("{p}.maxScale"),
                format!("must be 0 (unbounded) or more, got {max}"),
            );
        }
        if max > 0 && min > max {
            let which = if s.max_scale.is_some() {
                "maxScale"
            } else {
                "the default maxScale"
            };
            self.error(
                format!("{p}.minScale"),
                format!("minScale {min} exceeds {which} {max}; raise maxScale or lower minScale"),
            );
        }
        if let Some(cc) = s.container_concurrency
            && !(1..=defaults::MAX_CONTAINER_CONCURRENCY).contains(&cc)
        {
            self.error(
                format!("{p}.containerConcurrency"),
                format!(
                    "must be 1 to {}, got {cc} (omit it for the default {}; unlimited concurrency is not \
                     allowed)",
                    defaults::MAX_CONTAINER_CONCURRENCY,
                    defaults::CONTAINER_CONCURRENCY
                ),
            );
        }
        if let Some(pool) = s.pool_max {
            if pool < 0 {
                self.error(format!("{p}.poolMax"), format!("must be 0 or more, got {pool}"));
            } else if pool > 0 {
                if max == 0 {
                    self.error(
                        format!("{p}.maxScale"),
                        format!(
                            "must be bounded when poolMax is set: unbounded replicas × poolMax {pool} could \
                             exceed the {} database connections an app may hold",
                            defaults::MAX_APP_DB_CONNECTIONS
                        ),
                    );
                } else if i64::from(max) * i64::from(pool) > defaults::MAX_APP_DB_CONNECTIONS {
                    self.error(
                        format!("{p}.poolMax"),
                        format!(
                            "maxScale {max} × poolMax {pool} = {} database connections exceeds the limit of {}; \
                             lower maxScale or poolMax",
                            i64::from(max) * i64::from(pool),
                            defaults::MAX_APP_DB_CONNECTIONS
                        ),
                    );
                }
            }
        }
        if let Some(tbc) = s.target_burst_capacity
            && tbc < -1
        {
            self.error(
                format!("{p}.targetBurstCapacity"),
                format!("must be -1 (unlimited), 0 (off) or more, got {tbc}"),
            );
        }
        if let Some(w) = s.panic_window_percentage
            && !(1..=100).contains(&w)
        {
            self.error(
                format!("{p}.panicWindowPercentage"),
                format!("must be 1 to 100, got {w}"),
            );
        }
        if let Some(t) = s.panic_threshold_percentage
            && !(110..=1000).contains(&t)
        {
            self.error(
                format!("{p}.panicThresholdPercentage"),
                format!("must be 110 to 1000, got {t}"),
            );
        }
        if let Some(d) = &s.scale_down_delay {
            self.check(
                format!("{p}.scaleDownDelay"),
                duration::check_scale_down_delay(d).map_err(|e| e.to_string()),
            );
        }
        for (i, w) in s.warm_schedule.iter().enumerate() {
            let wp = format!("{p}.warmSchedule[{i}]");
            for (field, value) in [("start", &w.start), ("end", &w.end)] {
                if value.trim().is_empty() {
                    self.error(format!("{wp}.{field}"), "is required: a 5-field cron expression");
                } else {
                    match cron::parse_standard(value) {
                        Err(e) => self.error(format!("{wp}.{field}"), e.to_string()),
                        Ok(schedule) if schedule.every.is_some() => self.warn(
                            reasons::SETTING_IGNORED,
                            format!("{wp}.{field}"),
                            "@every counts from when a scheduler starts, which a warm window does not \
                             have, so this window is never active; use fixed times such as \"0 8 * * 1-5\"",
                        ),
                        Ok(_) => {}
                    }
                }
            }
            if w.replicas < 1 {
                self.error(
                    format!("{wp}.replicas"),
                    format!("must be at least 1, got {}", w.replicas),
                );
            } else if max > 0 && w.replicas > max {
                self.error(
                    format!("{wp}.replicas"),
                    format!(
                        "{} exceeds maxScale {max}; raise maxScale or lower the floor",
                        w.replicas
                    ),
                );
            }
            if let Some(tz) = &w.timezone {
                self.check(format!("{wp}.timezone"), check_timezone(tz));
            }
        }
        if !s.warm_schedule.is_empty()
            && spec
                .traffic
                .as_ref()
                .is_some_and(|t| t.revision_name.as_deref().is_some_and(|r| !r.is_empty()))
        {
            self.error(
                format!("{p}.warmSchedule"),
                "cannot be combined with traffic.revisionName: a raised floor rolls a new revision that a \
                 pinned route never serves; remove one of them",
            );
        }
    }

    fn resources(&mut self, spec: &NextAppSpec) {
        let unset = crate::api::ResourcesSpec::default(); // allocation-free
        let r = spec.resources.as_ref().unwrap_or(&unset);
        let mut parsed = |field: &str, value: &Option<String>, default: &str| {
            let path = format!("spec.resources.{field}");
            match value {
                None => quantity::parse(default).ok(),
                Some(v) => match quantity::parse(v) {
                    Ok(q) if q.is_positive() => Some(q),
                    Ok(_) => {
                        self.error(path, format!("{v:?} must be greater than zero"));
                        None
                    }
                    Err(e) => {
                        self.error(path, e.to_string());
                        None
                    }
                },
            }
        };
        let cpu_req = parsed("cpuRequest", &r.cpu_request, defaults::CPU_REQUEST);
        let cpu_lim = parsed("cpuLimit", &r.cpu_limit, defaults::CPU_LIMIT);
        let mem_req = parsed("memoryRequest", &r.memory_request, defaults::MEMORY_REQUEST);
        let mem_lim = parsed("memoryLimit", &r.memory_limit, defaults::MEMORY_LIMIT);
        for (what, req, lim, req_v, lim_v, def_lim) in [
            (
                "cpu",
                cpu_req,
                cpu_lim,
                &r.cpu_request,
                &r.cpu_limit,
                defaults::CPU_LIMIT,
            ),
            (
                "memory",
                mem_req,
                mem_lim,
                &r.memory_request,
                &r.memory_limit,
                defaults::MEMORY_LIMIT,
            ),
        ] {
            if let (Some(req), Some(lim), Some(req_v)) = (req, lim, req_v)
                && req > lim
            {
                let limit = match lim_v {
                    Some(l) => format!("{what}Limit {l:?}"),
                    None => format!("the default {what}Limit {def_lim:?}; set {what}Limit"),
                };
                self.error(
                    format!("spec.resources.{what}Request"),
                    format!("{what}Request {req_v:?} exceeds {limit}"),
                );
            }
        }
    }

    fn storage(&mut self, spec: &NextAppSpec) {
        let Some(s) = &spec.storage else { return };
        if let Some(e) = &s.endpoint {
            self.check(
                "spec.storage.endpoint",
                check_url_without_credentials(e, "S3_ENDPOINT"),
            );
        }
        if s.provider.is_some() && s.bucket.as_deref().is_none_or(str::is_empty) {
            self.warn(
                reasons::SETTING_IGNORED,
                "spec.storage.bucket",
                "is empty although a provider is set; GCS_BUCKET_NAME will be empty",
            );
        }
    }

    fn cache(&mut self, spec: &NextAppSpec) {
        let Some(c) = &spec.cache else { return };
        if let Some(u) = &c.url {
            self.check("spec.cache.url", check_url_without_credentials(u, "REDIS_URL"));
        }
        if let Some(t) = &c.invalidate_token {
            self.secret_key_selector("spec.cache.invalidateToken", &t.secret_name, &t.secret_key);
        }
        if let Some(d) = &c.dir {
            self.check("spec.cache.dir", check_mount_path(d));
        }
    }

    fn revalidation(&mut self, spec: &NextAppSpec) {
        let Some(r) = &spec.revalidation else { return };
        if let Some(u) = &r.kafka_broker_url {
            self.check(
                "spec.revalidation.kafkaBrokerUrl",
                check_url_without_credentials(u, "KAFKA_BROKER_URL"),
            );
        }
    }

    fn secret_key_selector(&mut self, path: &str, name: &str, key: &str) {
        self.check(format!("{path}.secretName"), names::check_dns1123_subdomain(name));
        self.check(format!("{path}.secretKey"), names::check_secret_key(key));
    }

    fn secrets_and_env(&mut self, spec: &NextAppSpec) {
        // Names provisioned from Secrets by dedicated fields.
        let mut provisioned: Vec<(&str, &str)> = Vec::new();
        if let Some(db) = &spec.database {
            if let Some(r) = &db.secret_ref {
                self.check(
                    "spec.database.secretRef.name",
                    names::check_dns1123_subdomain(&r.name),
                );
                if let Some(k) = &r.key {
                    self.check("spec.database.secretRef.key", names::check_secret_key(k));
                }
                provisioned.push(("DATABASE_URL", "spec.database.secretRef"));
            }
            if let Some(r) = &db.ro_secret_ref {
                self.check(
                    "spec.database.roSecretRef.name",
                    names::check_dns1123_subdomain(&r.name),
                );
                if let Some(k) = &r.key {
                    self.check("spec.database.roSecretRef.key", names::check_secret_key(k));
                }
                if db.secret_ref.is_none() {
                    self.error(
                        "spec.database.roSecretRef",
                        "requires spec.database.secretRef: a read-only connection needs a read-write one",
                    );
                }
                provisioned.push(("DATABASE_URL_RO", "spec.database.roSecretRef"));
            }
        }
        if spec.cache.as_ref().is_some_and(|c| c.invalidate_token.is_some()) {
            provisioned.push((serve::ENV_INVALIDATE_TOKEN, "spec.cache.invalidateToken"));
        }
        let system = crate::render::app::system_env_names(spec);

        let unset = crate::api::SecretsSpec::default(); // allocation-free
        let secrets = spec.secrets.as_ref().unwrap_or(&unset);
        for (i, name) in secrets.env_from.iter().enumerate() {
            self.check(
                format!("spec.secrets.envFrom[{i}]"),
                names::check_dns1123_subdomain(name),
            );
        }
        for (name, sel) in &secrets.env_map {
            let path = key_path("spec.secrets.envMap", name);
            self.secret_key_selector(&path, &sel.secret_name, &sel.secret_key);
            if let Err(m) = names::check_env_var_name(name) {
                self.error(&path, m);
            } else if RESERVED_ENV.contains(&name.as_str()) {
                self.error(
                    &path,
                    format!("{name} is reserved for the platform (Knative sets it)"),
                );
            } else if let Some((_, field)) = provisioned.iter().find(|(n, _)| *n == name.as_str()) {
                self.error(
                    &path,
                    format!("{name} is already provisioned by {field}; remove one of them"),
                );
            } else if system.contains(name) {
                self.error(
                    &path,
                    format!("{name} is set by knext from the spec; choose another name"),
                );
            }
        }
        for (name, value) in &spec.env {
            let path = key_path("spec.env", name);
            if let Err(m) = names::check_env_var_name(name) {
                self.error(&path, m);
            } else if RESERVED_ENV.contains(&name.as_str()) {
                self.error(
                    &path,
                    format!("{name} is reserved for the platform (Knative sets it)"),
                );
            } else if let Some((_, field)) = SECRET_ENV.iter().find(|(n, _)| *n == name.as_str()) {
                self.error(
                    &path,
                    format!(
                        "{name} carries a secret and may not be a plain value; provision it with {field}"
                    ),
                );
                continue;
            } else if secrets.env_map.contains_key(name) {
                self.error(
                    &path,
                    format!("{name} is also mapped from a Secret in spec.secrets.envMap; remove one of them"),
                );
            } else if system.contains(name) {
                self.warn(
                    reasons::ENV_VAR_IGNORED,
                    &path,
                    format!("{name} is set by knext from the spec; this entry is ignored"),
                );
            }
            if value.len() > 32 * 1024 {
                self.error(&path, "value is longer than 32 KiB; use a ConfigMap or Secret");
            }
            match secrets::check_literal(name, value) {
                secrets::Verdict::Clean => {}
                secrets::Verdict::Secret(finding) => self.problems.push(Problem {
                    severity: Severity::Error,
                    reason: reasons::SECRET_LITERAL,
                    path: path.clone(),
                    message: format!(
                        "{name} looks like a secret ({finding}) and may not be a plain value: the NextApp, \
                         its Knative Service and Revisions are readable with the view role. Put it in a \
                         Secret and map it with spec.secrets.envMap.{name}: {{secretName: <secret>, \
                         secretKey: <key>}}"
                    ),
                }),
                secrets::Verdict::PublicSecretName(suffix) => self.warn(
                    reasons::PUBLIC_SECRET_NAME,
                    &path,
                    format!(
                        "{name} ends in {suffix} but is a NEXT_PUBLIC_ variable, which Next.js inlines \
                         into the browser bundle: it must never hold a secret (a publishable key is fine)"
                    ),
                ),
            }
        }
    }

    fn observability(&mut self, spec: &NextAppSpec) {
        let Some(o) = &spec.observability else { return };
        if let Some(rate) = o.rum.as_ref().and_then(|r| r.sample_rate.as_deref()) {
            self.check("spec.observability.rum.sampleRate", check_ratio(rate));
        }
        if let Some(t) = &o.tracing {
            if let Some(rate) = t.sample_rate.as_deref() {
                self.check("spec.observability.tracing.sampleRate", check_ratio(rate));
            }
            if let Some(e) = t.endpoint.as_deref() {
                self.check(
                    "spec.observability.tracing.endpoint",
                    check_url_without_credentials(e, "OTEL_EXPORTER_OTLP_ENDPOINT"),
                );
            }
        }
        let enabled = o.enabled.unwrap_or(false);
        let sub_on = o.rum.as_ref().is_some_and(|r| r.enabled == Some(true))
            || o.tracing.as_ref().is_some_and(|t| t.enabled == Some(true));
        if sub_on && !enabled {
            self.warn(
                reasons::SETTING_IGNORED,
                "spec.observability.enabled",
                "is not true, so rum/tracing settings have no effect; set enabled: true",
            );
        }
    }

    /// `spec.security.signature`: the identity, and a policy that covers exactly the image's repository
    /// (an invalid image is reported at `spec.image` only).
    fn signature(&mut self, sig: &crate::api::SignatureSpec, image: &str) {
        let p = "spec.security.signature";
        for f in signature::check(sig) {
            let path = if f.field.is_empty() {
                p.to_owned()
            } else {
                format!("{p}.{}", f.field)
            };
            if f.warning {
                self.warn(reasons::UNANCHORED_REGEXP, path, f.message);
            } else {
                self.error(path, f.message);
            }
        }
        if image::check_pinned(image).is_ok()
            && let Err(message) = signature::repository(image)
        {
            self.error(
                p,
                format!("no ClusterImagePolicy can cover exactly the image's repository: {message}"),
            );
        }
    }

    fn misc(&mut self, spec: &NextAppSpec) {
        if let Some(path) = &spec.health_check_path {
            self.check("spec.healthCheckPath", check_http_path(path));
        }
        if let Some(t) = spec.timeout_seconds {
            if !(defaults::MIN_TIMEOUT_SECONDS..=defaults::MAX_TIMEOUT_SECONDS).contains(&t) {
                self.error(
                    "spec.timeoutSeconds",
                    format!(
                        "must be {} to {} seconds, got {t}",
                        defaults::MIN_TIMEOUT_SECONDS,
                        defaults::MAX_TIMEOUT_SECONDS,
                    ),
                );
            } else if !drain::is_full(t) {
                self.warn(
                    reasons::SHORT_DRAIN,
                    "spec.timeoutSeconds",
                    format!(
                        "{t} s leaves {} between SIGTERM and SIGKILL after Knative's {} s preStop drain \
                         wait, so knext serve drains for at most {} instead of {}; set timeoutSeconds to {} \
                         or more for the full drain",
                        seconds(drain::budget_ms(t)),
                        drain::KNATIVE_PRESTOP_DRAIN_SECONDS,
                        seconds(drain::cap_ms(t)),
                        seconds(drain::FULL_CAP_MS),
                        drain::FULL_DRAIN_MIN_TIMEOUT_SECONDS
                    ),
                );
            }
        }
        if let Some(sec) = &spec.security {
            for (field, id) in [("runAsUser", sec.run_as_user), ("runAsGroup", sec.run_as_group)] {
                if let Some(id) = id
                    && !(1..=i64::from(i32::MAX)).contains(&id)
                {
                    self.error(
                        format!("spec.security.{field}"),
                        format!("must be a non-root id from 1 to {}, got {id}", i32::MAX),
                    );
                }
            }
            if let Some(sig) = &sec.signature {
                self.signature(sig, &spec.image);
            }
        }
        if let Some(t) = &spec.traffic {
            let rev = t.revision_name.as_deref().filter(|r| !r.is_empty());
            if let Some(r) = rev {
                self.check("spec.traffic.revisionName", names::check_dns1123_label(r));
            }
            if let Some(p) = t.canary_percent {
                if !(0..=99).contains(&p) {
                    self.error(
                        "spec.traffic.canaryPercent",
                        format!(
                            "must be 0 to 99, got {p} (to promote the latest revision fully, remove \
                             spec.traffic)"
                        ),
                    );
                } else if p != 0 && rev.is_none() {
                    self.error(
                        "spec.traffic.canaryPercent",
                        "requires spec.traffic.revisionName: the canary splits traffic between that revision \
                         and the latest one",
                    );
                }
            }
        }
        if let Some(b) = &spec.build_id {
            self.check("spec.buildId", names::check_label_value(b));
        }
        if let Some(id) = spec.preview.as_ref().and_then(|p| p.pr_id.as_deref()) {
            self.check("spec.preview.prId", names::check_label_value(id));
        }
    }
}

/// Milliseconds as seconds for messages: `10 s`, `1.5 s`.
fn seconds(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    }
}

/// A decimal ratio from 0 to 1, written as a string (`"0.25"`).
fn check_ratio(s: &str) -> Result<(), String> {
    let ok = s.len() <= 32
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.parse::<f64>().is_ok_and(|v| (0.0..=1.0).contains(&v));
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not a decimal from 0 to 1, e.g. \"0.1\""))
    }
}

/// URLs in the spec become plain environment values: they must not carry credentials.
fn check_url_without_credentials(url: &str, env: &str) -> Result<(), String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!(
            "contains credentials, which would be stored in plain text; put the whole URL in a Secret and map \
             it with spec.secrets.envMap.{env}"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains whitespace or control characters"));
    }
    Ok(())
}

fn check_http_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "{path:?} must be an absolute HTTP path starting with '/'"
        ));
    }
    if path.len() > 2048 || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{path:?} must be at most 2048 printable ASCII characters without spaces"
        ));
    }
    Ok(())
}

fn check_mount_path(path: &str) -> Result<(), String> {
    let normal = path.starts_with('/')
        && path.len() > 1
        && path.len() <= 1024
        && !path.ends_with('/')
        && path
            .split('/')
            .skip(1)
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && path.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !normal {
        return Err(format!(
            "{path:?} must be a normalised absolute directory path such as /app/.next/cache"
        ));
    }
    if path == "/tmp" || path.starts_with("/tmp/") {
        return Err("must not be under /tmp, which knext already mounts as a writable emptyDir".into());
    }
    Ok(())
}

fn check_timezone(tz: &str) -> Result<(), String> {
    if tz.parse::<chrono_tz::Tz>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{tz:?} is not an IANA time zone name such as \"UTC\" or \"Europe/Berlin\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NextApp;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A NextApp named `web` in `apps` whose spec is `image` plus the given YAML lines.
    fn app(extra: &str) -> NextApp {
        let mut spec = format!("image: ghcr.io/acme/web@{DIGEST}\n");
        spec.push_str(extra);
        let spec: crate::api::NextAppSpec = serde_yaml::from_str(&spec).expect("test spec parses");
        let mut app = NextApp::new("web", spec);
        app.metadata.namespace = Some("apps".into());
        app
    }

    /// Paths of the errors `validate` reports for the spec.
    fn errors(extra: &str) -> Vec<String> {
        match validate(&app(extra)) {
            Ok(_) => Vec::new(),
            Err(r) => r.errors().map(|p| p.path.clone()).collect(),
        }
    }

    fn warnings(extra: &str) -> Vec<String> {
        match validate(&app(extra)) {
            Ok((_, r)) => r.warnings().map(|p| p.path.clone()).collect(),
            Err(r) => panic!("unexpected errors: {:?}", r.problems),
        }
    }

    #[test]
    fn a_validation_table_from_the_reference_behaves_like_the_reference_or_stricter() {
        // (case, spec lines, expected error path or "" for valid)
        let cases: &[(&str, &str, &str)] = &[
            ("minimal", "", ""),
            (
                "poolMax wall exactly 80",
                "scaling: {maxScale: 8, poolMax: 10}",
                "",
            ),
            (
                "poolMax wall 81",
                "scaling: {maxScale: 9, poolMax: 9}",
                "spec.scaling.poolMax",
            ),
            (
                "poolMax wall 100",
                "scaling: {maxScale: 10, poolMax: 10}",
                "spec.scaling.poolMax",
            ),
            (
                "poolMax with default maxScale 10 × 8",
                "scaling: {poolMax: 8}",
                "",
            ),
            (
                "poolMax with default maxScale 10 × 9",
                "scaling: {poolMax: 9}",
                "spec.scaling.poolMax",
            ),
            (
                "poolMax with unbounded maxScale",
                "scaling: {maxScale: 0, poolMax: 1}",
                "spec.scaling.maxScale",
            ),
            (
                "negative poolMax",
                "scaling: {poolMax: -1}",
                "spec.scaling.poolMax",
            ),
            ("tbc -1", "scaling: {targetBurstCapacity: -1}", ""),
            ("tbc 0", "scaling: {targetBurstCapacity: 0}", ""),
            ("tbc 200", "scaling: {targetBurstCapacity: 200}", ""),
            (
                "tbc -2",
                "scaling: {targetBurstCapacity: -2}",
                "spec.scaling.targetBurstCapacity",
            ),
            (
                "panic window 0",
                "scaling: {panicWindowPercentage: 0}",
                "spec.scaling.panicWindowPercentage",
            ),
            ("panic window 1", "scaling: {panicWindowPercentage: 1}", ""),
            ("panic window 100", "scaling: {panicWindowPercentage: 100}", ""),
            (
                "panic window 101",
                "scaling: {panicWindowPercentage: 101}",
                "spec.scaling.panicWindowPercentage",
            ),
            (
                "panic threshold 109",
                "scaling: {panicThresholdPercentage: 109}",
                "spec.scaling.panicThresholdPercentage",
            ),
            (
                "panic threshold 110",
                "scaling: {panicThresholdPercentage: 110}",
                "",
            ),
            (
                "panic threshold 1001",
                "scaling: {panicThresholdPercentage: 1001}",
                "spec.scaling.panicThresholdPercentage",
            ),
            ("scaleDownDelay 0s", "scaling: {scaleDownDelay: 0s}", ""),
            ("scaleDownDelay 30s", "scaling: {scaleDownDelay: 30s}", ""),
            ("scaleDownDelay 5m", "scaling: {scaleDownDelay: 5m}", ""),
            ("scaleDownDelay 1h", "scaling: {scaleDownDelay: 1h}", ""),
            (
                "scaleDownDelay garbage",
                "scaling: {scaleDownDelay: soon}",
                "spec.scaling.scaleDownDelay",
            ),
            (
                "scaleDownDelay 300",
                "scaling: {scaleDownDelay: '300'}",
                "spec.scaling.scaleDownDelay",
            ),
            (
                "scaleDownDelay over 1h",
                "scaling: {scaleDownDelay: 61m}",
                "spec.scaling.scaleDownDelay",
            ),
            (
                "scaleDownDelay negative",
                "scaling: {scaleDownDelay: -1s}",
                "spec.scaling.scaleDownDelay",
            ),
            (
                "scaleDownDelay fractional",
                "scaling: {scaleDownDelay: 42.5s}",
                "spec.scaling.scaleDownDelay",
            ),
            (
                "minScale negative",
                "scaling: {minScale: -1}",
                "spec.scaling.minScale",
            ),
            (
                "maxScale negative",
                "scaling: {maxScale: -1}",
                "spec.scaling.maxScale",
            ),
            (
                "min above max",
                "scaling: {minScale: 5, maxScale: 4}",
                "spec.scaling.minScale",
            ),
            (
                "min above default max",
                "scaling: {minScale: 11}",
                "spec.scaling.minScale",
            ),
            (
                "min with unbounded max",
                "scaling: {minScale: 50, maxScale: 0}",
                "",
            ),
            (
                "cc 0 (unlimited) refused",
                "scaling: {containerConcurrency: 0}",
                "spec.scaling.containerConcurrency",
            ),
            ("cc 1000", "scaling: {containerConcurrency: 1000}", ""),
            (
                "cc 1001",
                "scaling: {containerConcurrency: 1001}",
                "spec.scaling.containerConcurrency",
            ),
            (
                "warm window ok",
                "scaling: {warmSchedule: [{start: '0 8 * * 1-5', end: '0 18 * * 1-5', replicas: 2}]}",
                "",
            ),
            (
                "warm window empty start",
                "scaling: {warmSchedule: [{start: ' ', end: '0 18 * * *', replicas: 2}]}",
                "spec.scaling.warmSchedule[0].start",
            ),
            (
                "warm window bad cron",
                "scaling: {warmSchedule: [{start: 'soon', end: '0 18 * * *', replicas: 2}]}",
                "spec.scaling.warmSchedule[0].start",
            ),
            (
                "warm window 6 fields",
                "scaling: {warmSchedule: [{start: '0 0 8 * * *', end: '0 18 * * *', replicas: 2}]}",
                "spec.scaling.warmSchedule[0].start",
            ),
            (
                "warm window out of range",
                "scaling: {warmSchedule: [{start: '0 8 * * *', end: '0 24 * * *', replicas: 2}]}",
                "spec.scaling.warmSchedule[0].end",
            ),
            (
                "warm window replicas 0",
                "scaling: {warmSchedule: [{start: '0 8 * * *', end: '0 9 * * *', replicas: 0}]}",
                "spec.scaling.warmSchedule[0].replicas",
            ),
            (
                "warm window above max",
                "scaling: {maxScale: 3, warmSchedule: [{start: '0 8 * * *', end: '0 9 * * *', replicas: 4}]}",
                "spec.scaling.warmSchedule[0].replicas",
            ),
            (
                "warm window unbounded max",
                "scaling: {maxScale: 0, warmSchedule: [{start: '0 8 * * *', end: '0 9 * * *', replicas: 40}]}",
                "",
            ),
            (
                "warm window unknown tz",
                "scaling: {warmSchedule: [{start: '0 8 * * *', end: '0 9 * * *', replicas: 1, timezone: Mars/Base}]}",
                "spec.scaling.warmSchedule[0].timezone",
            ),
            (
                "warm window and pin",
                "scaling: {warmSchedule: [{start: '0 8 * * *', end: '0 9 * * *', replicas: 1}]}\ntraffic: {revisionName: web-00001}",
                "spec.scaling.warmSchedule",
            ),
            (
                "canary without revision",
                "traffic: {canaryPercent: 10}",
                "spec.traffic.canaryPercent",
            ),
            (
                "canary with revision",
                "traffic: {revisionName: web-00002, canaryPercent: 10}",
                "",
            ),
            (
                "canary 100",
                "traffic: {revisionName: web-00002, canaryPercent: 100}",
                "spec.traffic.canaryPercent",
            ),
            ("pin only", "traffic: {revisionName: web-00002}", ""),
            (
                "bad revision name",
                "traffic: {revisionName: Web_2}",
                "spec.traffic.revisionName",
            ),
            (
                "cpu request zero",
                "resources: {cpuRequest: '0'}",
                "spec.resources.cpuRequest",
            ),
            (
                "pathological exponent",
                "resources: {memoryLimit: 1e99999}",
                "spec.resources.memoryLimit",
            ),
            (
                "65-char quantity",
                &format!("resources: {{cpuLimit: '{}'}}", "1".repeat(65)),
                "spec.resources.cpuLimit",
            ),
            (
                "request above explicit limit",
                "resources: {cpuRequest: '2', cpuLimit: 1500m}",
                "spec.resources.cpuRequest",
            ),
            (
                "request above default limit",
                "resources: {memoryRequest: 2Gi}",
                "spec.resources.memoryRequest",
            ),
            (
                "request equals limit in other units",
                "resources: {memoryRequest: 1Gi, memoryLimit: '1073741824'}",
                "",
            ),
            (
                "legit quantities",
                "resources: {cpuRequest: 0.1, memoryRequest: 100Mi, cpuLimit: '1', memoryLimit: 1.5Gi}",
                "",
            ),
            ("db secret ok", "database: {secretRef: {name: db}}", ""),
            (
                "db ro without rw",
                "database: {roSecretRef: {name: db-ro}}",
                "spec.database.roSecretRef",
            ),
            (
                "db bad name",
                "database: {secretRef: {name: Db_Secret}}",
                "spec.database.secretRef.name",
            ),
            (
                "db bad key",
                "database: {secretRef: {name: db, key: 'a b'}}",
                "spec.database.secretRef.key",
            ),
            ("env reserved PORT", "env: {PORT: '80'}", "spec.env.PORT"),
            ("env reserved HOSTNAME", "env: {HOSTNAME: x}", "spec.env.HOSTNAME"),
            (
                "env reserved K_SERVICE",
                "env: {K_SERVICE: x}",
                "spec.env.K_SERVICE",
            ),
            ("env bad name", "env: {'1X': x}", "spec.env[\"1X\"]"),
            ("env dotted name", "env: {'a.b': x}", "spec.env[\"a.b\"]"),
            (
                "env secret DATABASE_URL",
                "env: {DATABASE_URL: x}",
                "spec.env.DATABASE_URL",
            ),
            (
                "env secret DATABASE_URL_RO",
                "env: {DATABASE_URL_RO: x}",
                "spec.env.DATABASE_URL_RO",
            ),
            (
                "env secret CACHE_INVALIDATE_TOKEN",
                "env: {CACHE_INVALIDATE_TOKEN: x}",
                "spec.env.CACHE_INVALIDATE_TOKEN",
            ),
            (
                "env also in envMap",
                "env: {A: x}\nsecrets: {envMap: {A: {secretName: s, secretKey: k}}}",
                "spec.env.A",
            ),
            (
                "envMap reserved",
                "secrets: {envMap: {HOSTNAME: {secretName: s, secretKey: k}}}",
                "spec.secrets.envMap.HOSTNAME",
            ),
            (
                "envMap collides with database",
                "database: {secretRef: {name: db}}\nsecrets: {envMap: {DATABASE_URL: {secretName: s, secretKey: k}}}",
                "spec.secrets.envMap.DATABASE_URL",
            ),
            (
                "envMap DATABASE_URL without database",
                "secrets: {envMap: {DATABASE_URL: {secretName: s, secretKey: k}}}",
                "",
            ),
            (
                "envMap system name",
                "secrets: {envMap: {NODE_ENV: {secretName: s, secretKey: k}}}",
                "spec.secrets.envMap.NODE_ENV",
            ),
            (
                "envMap bad secret",
                "secrets: {envMap: {A: {secretName: S, secretKey: k}}}",
                "spec.secrets.envMap.A.secretName",
            ),
            (
                "envFrom bad secret",
                "secrets: {envFrom: [ok, Not_Ok]}",
                "spec.secrets.envFrom[1]",
            ),
            (
                "token secret",
                "cache: {invalidateToken: {secretName: t, secretKey: token}}",
                "",
            ),
            (
                "token bad key",
                "cache: {invalidateToken: {secretName: t, secretKey: '../x'}}",
                "spec.cache.invalidateToken.secretKey",
            ),
            (
                "redis url with password",
                "cache: {provider: redis, url: 'redis://:pw@redis:6379'}",
                "spec.cache.url",
            ),
            (
                "redis url plain",
                "cache: {provider: redis, url: 'redis://redis:6379/0'}",
                "",
            ),
            (
                "cache dir relative",
                "cache: {dir: .next/cache}",
                "spec.cache.dir",
            ),
            ("cache dir under tmp", "cache: {dir: /tmp/next}", "spec.cache.dir"),
            ("cache dir dotdot", "cache: {dir: /app/../etc}", "spec.cache.dir"),
            (
                "otel endpoint with user",
                "observability: {enabled: true, tracing: {enabled: true, endpoint: 'http://u:p@otel:4317'}}",
                "spec.observability.tracing.endpoint",
            ),
            (
                "rum rate 2",
                "observability: {enabled: true, rum: {enabled: true, sampleRate: '2'}}",
                "spec.observability.rum.sampleRate",
            ),
            (
                "rum rate 0.3",
                "observability: {enabled: true, rum: {enabled: true, sampleRate: '0.3'}}",
                "",
            ),
            (
                "trace rate nan",
                "observability: {enabled: true, tracing: {sampleRate: NaN}}",
                "spec.observability.tracing.sampleRate",
            ),
            (
                "kafka url with creds",
                "revalidation: {queue: kafka, kafkaBrokerUrl: 'user:pw@kafka:9092'}",
                "spec.revalidation.kafkaBrokerUrl",
            ),
            (
                "provisionKafkaSource is never an error",
                "revalidation: {queue: kafka, provisionKafkaSource: true}",
                "",
            ),
            (
                "storage endpoint with creds",
                "storage: {provider: s3, bucket: b, endpoint: 'https://k:s@s3'}",
                "spec.storage.endpoint",
            ),
            ("timeout 9", "timeoutSeconds: 9", "spec.timeoutSeconds"),
            ("timeout 10", "timeoutSeconds: 10", ""),
            (
                "timeout 0 (old default marker)",
                "timeoutSeconds: 0",
                "spec.timeoutSeconds",
            ),
            ("timeout 3601", "timeoutSeconds: 3601", "spec.timeoutSeconds"),
            (
                "health path relative",
                "healthCheckPath: health",
                "spec.healthCheckPath",
            ),
            (
                "health path with space",
                "healthCheckPath: '/a b'",
                "spec.healthCheckPath",
            ),
            ("root uid", "security: {runAsUser: 0}", "spec.security.runAsUser"),
            (
                "root gid",
                "security: {runAsGroup: 0}",
                "spec.security.runAsGroup",
            ),
            ("high uid", "security: {runAsUser: 65532, runAsGroup: 65532}", ""),
            ("build id label", "buildId: 'a b'", "spec.buildId"),
            (
                "build id too long",
                &format!("buildId: {}", "a".repeat(64)),
                "spec.buildId",
            ),
            (
                "pr id",
                "preview: {enabled: true, prId: '#12'}",
                "spec.preview.prId",
            ),
        ];
        let mut failures = Vec::new();
        for (case, extra, want) in cases {
            let got = errors(extra);
            let ok = if want.is_empty() {
                got.is_empty()
            } else {
                got.iter().any(|g| g == want)
            };
            if !ok {
                failures.push(format!("{case}: want {want:?}, got {got:?}"));
            }
            // What the validator accepts, admission (the CRD's CEL rules) accepts too.
            if got.is_empty() && !admission(&app(extra)).is_empty() {
                failures.push(format!(
                    "{case}: accepted by the validator, rejected by admission"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} case(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_not_just_the_first() {
        let paths =
            errors("scaling: {minScale: -1, panicWindowPercentage: 0}\ntimeoutSeconds: 1\nenv: {PORT: x}\n");
        assert_eq!(
            paths,
            [
                "spec.scaling.minScale",
                "spec.scaling.panicWindowPercentage",
                "spec.env.PORT",
                "spec.timeoutSeconds"
            ]
        );
    }

    #[test]
    fn an_unpinned_image_is_reported_with_reason_invalid_image() {
        let mut a = app("");
        a.spec.image = "nginx:latest".into();
        let report = validate(&a).expect_err("latest is rejected");
        assert_eq!(report.reason(), reasons::INVALID_IMAGE);
        assert_eq!(report.problems[0].path, "spec.image");
        a.spec.timeout_seconds = Some(1);
        assert_eq!(
            validate(&a).expect_err("still invalid").reason(),
            reasons::INVALID_SPEC
        );
    }

    #[test]
    fn metadata_name_and_namespace_must_be_kubernetes_names() {
        let mut a = app("");
        a.metadata.name = Some("Web_App".into());
        a.metadata.namespace = Some("Apps".into());
        let paths: Vec<_> = validate(&a)
            .expect_err("bad names")
            .problems
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(paths, ["metadata.name", "metadata.namespace"]);
        a.metadata.name = None;
        a.metadata.namespace = None;
        assert_eq!(
            validate(&a).expect_err("no name").problems[0].path,
            "metadata.name"
        );
    }

    #[test]
    fn a_missing_namespace_defaults_to_default() {
        let mut a = app("");
        a.metadata.namespace = None;
        let (v, _) = validate(&a).expect("valid");
        assert_eq!(v.namespace(), "default");
    }

    #[test]
    fn env_entries_that_knext_manages_are_warnings_and_dropped() {
        assert_eq!(warnings("env: {NODE_ENV: development}"), ["spec.env.NODE_ENV"]);
        assert_eq!(
            warnings("observability: {enabled: true}\nenv: {KN_APP_NAME: x, OTHER: y}"),
            ["spec.env.KN_APP_NAME"]
        );
        // Not managed for this spec: no warning.
        assert!(warnings("env: {KN_APP_NAME: x}").is_empty());
    }

    #[test]
    fn every_in_a_warm_window_is_a_warning_that_the_window_is_never_active() {
        assert_eq!(
            warnings(
                "scaling: {warmSchedule: [{start: '@every 1h', end: '0 18 * * *', replicas: 2}, \
                 {start: '0 8 * * *', end: '@every 30m', replicas: 2}, \
                 {start: '@daily', end: '0 6 * * *', replicas: 2}]}"
            ),
            [
                "spec.scaling.warmSchedule[0].start",
                "spec.scaling.warmSchedule[1].end"
            ]
        );
        let app = app("scaling: {warmSchedule: [{start: '@every 1h', end: '0 18 * * *', replicas: 2}]}");
        let (_, report) = validate(&app).expect("valid");
        let warning = &report.problems[0];
        assert_eq!(warning.reason, reasons::SETTING_IGNORED);
        assert!(warning.message.contains("never active"), "{warning}");
        // A broken @every is still an error.
        assert_eq!(
            errors("scaling: {warmSchedule: [{start: '@every 0s', end: '0 18 * * *', replicas: 2}]}"),
            ["spec.scaling.warmSchedule[0].start"]
        );
    }

    #[test]
    fn secret_literals_in_env_are_errors_that_name_the_fix() {
        // The review's cases: each rendered as a plain `value:` before the SecretLiteral rule.
        let cases = [
            ("REDIS_PASSWORD: hunter2", "spec.env.REDIS_PASSWORD"),
            ("STRIPE_SECRET_KEY: x", "spec.env.STRIPE_SECRET_KEY"),
            ("API_TOKEN: x", "spec.env.API_TOKEN"),
            (
                "REDIS_URL: 'redis://app:hunter2@redis:6379/0'",
                "spec.env.REDIS_URL",
            ),
            (
                "UPSTREAM: 'https://api.example.com/?access_token=abc'",
                "spec.env.UPSTREAM",
            ),
            ("SIGNING: sk_live_0123456789abcdefghij", "spec.env.SIGNING"),
        ];
        for (env, path) in cases {
            let report = validate(&app(&format!("env: {{{env}}}\n"))).unwrap_err();
            let problems: Vec<&Problem> = report.errors().collect();
            assert_eq!(problems.len(), 1, "{env}: {problems:?}");
            assert_eq!(problems[0].path, path);
            assert_eq!(problems[0].reason, reasons::SECRET_LITERAL);
            assert!(
                problems[0].message.contains("spec.secrets.envMap."),
                "{}",
                problems[0].message
            );
            // An app with a secret literal is invalid like any other: the condition reason is InvalidSpec.
            assert_eq!(report.reason(), reasons::INVALID_SPEC);
        }
        // The secret itself is not repeated in the message.
        let report = validate(&app("env: {REDIS_URL: 'redis://app:hunter2@redis:6379/0'}\n")).unwrap_err();
        assert!(!report.problems[0].message.contains("hunter2"));
        // NEXT_PUBLIC_ names are public by design: a secret-looking one is a warning only.
        assert_eq!(
            warnings("env: {NEXT_PUBLIC_MAPS_API_KEY: AIzaSyPublishable}"),
            ["spec.env.NEXT_PUBLIC_MAPS_API_KEY"]
        );
        // Plain settings are untouched, and the envMap is the way to provision secrets.
        assert!(
            errors("env: {LOG_LEVEL: debug, TOKEN_TTL: '60', REDIS_URL: 'redis://redis:6379'}").is_empty()
        );
        assert!(
            errors("secrets: {envMap: {STRIPE_SECRET_KEY: {secretName: stripe, secretKey: key}}}").is_empty()
        );
    }

    #[test]
    fn key_paths_quote_keys_that_are_not_identifiers() {
        assert_eq!(key_path("spec.env", "FOO_1"), "spec.env.FOO_1");
        assert_eq!(key_path("spec.env", "a.b"), "spec.env[\"a.b\"]");
        assert_eq!(key_path("spec.env", "1X"), "spec.env[\"1X\"]");
        assert_eq!(key_path("spec.env", "q\""), "spec.env[\"q\\\"\"]");
    }
}
