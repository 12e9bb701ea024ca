//! knext: Next.js apps on Kubernetes with Knative, security on by default.
//!
//! One `NextApp` resource (`apps.kn-next.dev/v1alpha1`) describes an app; knext validates it with one
//! validator ([`policy::validate`]) and renders it with pure renderers ([`render::app()`]) into a Knative
//! Service, a ServiceAccount and a NetworkPolicy; [`render::bundle`] renders knext's own operator
//! install bundle.
//!
//! Module map: [`api`] (types, constants), [`policy`] (the validator and its rules), [`render`] (pure
//! renderers), [`yaml`] (the YAML boundary: parsing with locations, knext's own emitter), [`pipeline`]
//! (parallel parse/validate/render with located diagnostics, and the pin gate) and [`output`] (the
//! atomic tree writer) are shared with `build.rs`; [`cli`] is the command line, [`build`] serves users'
//! build scripts, [`install`] holds the bundle as this build pinned it, [`pause`] is the idle process
//! of the image-prewarm DaemonSet.

#[cfg(any(feature = "operator", feature = "serve"))]
pub mod admin_http;
pub mod api;
pub mod build;
pub mod cli;
pub mod install;
#[cfg(any(feature = "operator", feature = "serve"))]
pub mod logs;
#[cfg(feature = "operator")]
pub mod operator;
pub mod output;
#[cfg(unix)]
pub mod pause;
pub mod pipeline;
pub mod policy;
pub mod render;
pub mod scaffold;
#[cfg(feature = "serve")]
pub mod serve;
pub mod yaml;
