//! Pure renderers: validated NextApps in, typed Kubernetes objects and their YAML out.
//!
//! Shared with `build.rs`; no I/O, clock, environment or randomness. The same functions serve the CLI,
//! snapshots, users' build scripts and the operator, so every entry point emits identical objects; the
//! only input that differs is the operator's time ([`RenderOptions::now`], for warm floors).

pub mod app;
pub mod bundle;
pub mod cache_handler;
pub mod image_policy;
pub mod imgcache;
pub mod layout;
pub mod scaffold;
pub mod workflow;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::api::{ClusterImagePolicy, KnativeService};
use crate::policy::{Problem, ValidatedApp};
use crate::yaml::emit;

/// The delimiters of knext's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateSyntax {
    /// Jinja's own (`{{ }}`, `{% %}`, `{# #}`): `templates/cache-handler.cjs.j2`.
    Jinja,
    /// `[= value =]`, `{% block %}`, `[# comment #]`: `templates/workflows/`, whose output is full of
    /// GitHub's `${{ }}` and the shell's `${#…}`.
    Bracketed,
}

/// The template environment every renderer uses: no escaping, undefined values are errors, trailing
/// newlines kept.
pub fn template_environment(syntax: TemplateSyntax) -> Result<minijinja::Environment<'static>, String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let mut config = minijinja::syntax::SyntaxConfig::builder();
    config.keep_trailing_newline(true);
    if syntax == TemplateSyntax::Bracketed {
        config
            .block_delimiters("{%", "%}")
            .variable_delimiters("[=", "=]")
            .comment_delimiters("[#", "#]");
    }
    env.set_syntax(config.build().map_err(|e| e.to_string())?);
    Ok(env)
}

/// Inputs of a render that do not come from the NextApp itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions<'a> {
    /// UID of the live NextApp. When set (the operator), every object gets a controller owner reference
    /// to it; GitOps output leaves it unset.
    pub owner_uid: Option<&'a str>,
    /// The cluster-wide default of `spec.security.signature` (the operator's `--signature-*` flags from
    /// `knext install`), for apps without their own; already checked by
    /// [`crate::policy::signature::check`]. The CLI and build scripts leave it unset.
    pub default_signature: Option<&'a crate::api::SignatureSpec>,
    /// knext's own image, digest-pinned, which stages the knext binary in the image-prewarm
    /// DaemonSet's init container ([`imgcache`]). `None`: [`BUILT_KNEXT_IMAGE`], the image this knext
    /// was built with.
    pub knext_image: Option<&'a str>,
    /// The operator's clock at this reconcile. When set, `min-scale` is raised to the warm-schedule
    /// floor active at that instant ([`crate::policy::warm`]). GitOps output (the CLI, build scripts)
    /// has no clock and leaves it unset: it renders the base `minScale`, and [`warnings`] says so.
    pub now: Option<Timestamp>,
}

impl RenderOptions<'_> {
    /// [`RenderOptions::knext_image`], or the image this knext was built with.
    pub fn knext_image(&self) -> &str {
        self.knext_image.unwrap_or(BUILT_KNEXT_IMAGE)
    }
}

/// The operator image this knext was built with (`crate::install::DEFAULT_OPERATOR_IMAGE`), knext's
/// own image: `build.rs` hands it to the library's compilation as `KNEXT_DEFAULT_OPERATOR_IMAGE`.
///
/// NB: `build.rs` compiles its own copy of this module, without that variable, so there it is empty
/// and the build script passes its image in [`RenderOptions::knext_image`]; an empty image would fail
/// the pin gate, never reach a file.
pub const BUILT_KNEXT_IMAGE: &str = match option_env!("KNEXT_DEFAULT_OPERATOR_IMAGE") {
    Some(image) => image,
    None => "",
};

/// One rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// `serving.knative.dev/v1` Service.
    KnativeService(Box<KnativeService>),
    /// `v1` ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy(NetworkPolicy),
    /// `policy.sigstore.dev/v1beta1` ClusterImagePolicy (cluster-scoped).
    ClusterImagePolicy(Box<ClusterImagePolicy>),
    /// `apps/v1` DaemonSet: the image-prewarm DaemonSet `<app>-imgcache` ([`imgcache`]).
    DaemonSet(Box<DaemonSet>),
}

/// Error of the YAML output path.
#[derive(Debug, thiserror::Error)]
#[error("failed to write {kind} {name} as YAML: {source}")]
pub struct Error {
    kind: &'static str,
    name: String,
    #[source]
    source: emit::EmitError,
}

impl Manifest {
    /// `apiVersion`.
    pub fn api_version(&self) -> &'static str {
        match self {
            Self::KnativeService(_) => crate::api::knative::API_VERSION,
            Self::ServiceAccount(_) => "v1",
            Self::NetworkPolicy(_) => "networking.k8s.io/v1",
            Self::ClusterImagePolicy(_) => crate::api::sigstore::API_VERSION,
            Self::DaemonSet(_) => "apps/v1",
        }
    }

    /// `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::KnativeService(_) => "Service",
            Self::ServiceAccount(_) => "ServiceAccount",
            Self::NetworkPolicy(_) => "NetworkPolicy",
            Self::ClusterImagePolicy(_) => crate::api::sigstore::KIND,
            Self::DaemonSet(_) => "DaemonSet",
        }
    }

    /// File stem used in GitOps layouts (`knative-service`, `service-account`, `network-policy`,
    /// `cluster-image-policy`, and `image-prewarm-network-policy`, `image-prewarm-daemon-set`).
    pub fn file_stem(&self) -> &'static str {
        match self {
            Self::KnativeService(_) => "knative-service",
            Self::ServiceAccount(_) => "service-account",
            Self::NetworkPolicy(p) if imgcache::is_image_prewarm(&p.metadata) => {
                "image-prewarm-network-policy"
            }
            Self::NetworkPolicy(_) => "network-policy",
            Self::ClusterImagePolicy(_) => "cluster-image-policy",
            Self::DaemonSet(_) => "image-prewarm-daemon-set",
        }
    }

    /// Object metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::KnativeService(s) => &s.metadata,
            Self::ServiceAccount(s) => &s.metadata,
            Self::NetworkPolicy(p) => &p.metadata,
            Self::ClusterImagePolicy(p) => &p.metadata,
            Self::DaemonSet(d) => &d.metadata,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The object as JSON (what the image walker and schema checks inspect).
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Self::KnativeService(s) => serde_json::to_value(s.as_ref()),
            Self::ServiceAccount(s) => serde_json::to_value(s),
            Self::NetworkPolicy(p) => serde_json::to_value(p),
            Self::ClusterImagePolicy(p) => serde_json::to_value(p.as_ref()),
            Self::DaemonSet(d) => serde_json::to_value(d.as_ref()),
        }
    }

    /// Appends the object as one YAML document (no `---`) to `out`. On error `out` holds partial text
    /// and must be discarded.
    pub fn write_yaml(&self, out: &mut String) -> Result<(), Error> {
        let result = match self {
            Self::KnativeService(s) => emit::write(out, s.as_ref()),
            // k8s-openapi's own Serialize writes apiVersion and kind for built-in types.
            Self::ServiceAccount(s) => emit::write(out, s),
            Self::NetworkPolicy(p) => emit::write(out, p),
            Self::ClusterImagePolicy(p) => emit::write(out, p.as_ref()),
            Self::DaemonSet(d) => emit::write(out, d.as_ref()),
        };
        result.map_err(|source| Error {
            kind: self.kind(),
            name: self.name().to_owned(),
            source,
        })
    }
}

/// Renders one validated app with the per-app renderers.
pub fn app(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> Vec<Manifest> {
    app::render(app, opts)
}

/// What rendering `app` with `opts` leaves out of the objects, as warnings for the GitOps paths
/// ([`crate::pipeline`]: `knext render`, `knext validate`, build scripts) to report next to the
/// validator's: without a clock ([`RenderOptions::now`] unset), the warm-schedule floors
/// (`WarmScheduleNotRendered`). Empty with a clock: the operator applies the floors itself, and must not
/// publish this as an event (it does not call this function).
pub fn warnings(app: &ValidatedApp<'_>, opts: &RenderOptions<'_>) -> Vec<Problem> {
    app::warm_schedule_warning(app, opts).into_iter().collect()
}
