//! knext: Next.js apps on Kubernetes with Knative, security on by default.
//!
//! One `NextApp` resource (`apps.kn-next.dev/v1alpha1`) describes an app; knext validates it with one
//! validator ([`policy::validate`]) and renders it with pure renderers ([`render::app()`]) into a Knative
//! Service, a ServiceAccount and a NetworkPolicy.
//!
//! Module map: [`api`] (types, constants), [`policy`] (the validator and its rules), [`render`] (pure
//! renderers), [`yaml`] (the YAML boundary: parsing with locations, knext's own emitter) are shared with
//! `build.rs`; [`pipeline`], [`output`] and [`cli`] serve the command line.

pub mod api;
pub mod build;
pub mod cli;
pub mod install;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod render;
pub mod yaml;
