//! Build script: renders knext's shipped manifests into `generated/` with the very modules the library
//! and the CLI use (included below through `#[path]`):
//!
//! - `crd/nextapps.apps.kn-next.dev.yaml`: the NextApp CRD;
//! - `install.yaml`: the operator install bundle (CRD first), and `kustomization.yaml` over it;
//! - `schema/nextapp.schema.json`: the editor JSON Schema;
//! - `next/cache-handler.cjs`: the Next.js cache handler, rendered from `templates/`;
//! - `examples/`: the bundled `examples/*.yaml` NextApps in GitOps layout, through the CLI's own
//!   pipeline, admission rules included;
//! - and, outside `generated/`, knext's GitHub workflows `.github/workflows/{release,ci}.yml`, rendered
//!   from `templates/workflows/` ([`render::workflow`]).
//!
//! The operator image comes from `[package.metadata.knext] operator-image` in Cargo.toml, or from the
//! `KNEXT_OPERATOR_IMAGE` environment variable when set; it is also compiled into the binary as the
//! default of `knext install`.
//!
//! Rules:
//! - An invalid example fails the build with `cargo::error=` lines naming `file:line:column` and the
//!   field; nothing is written.
//! - The pin gate ([`pipeline::pin_gate`]) walks every object of every YAML file about to be written;
//!   any image that is not digest-pinned fails the build, naming the file, object, container, image
//!   and fix; nothing is written.
//! - A file is written only when its bytes differ; knext-generated YAML files that are no longer
//!   produced are removed. With `CI` set nothing is written: a difference fails the build with
//!   "generated/ is stale: run cargo build and commit".
//! - The bundle is also written to `OUT_DIR/install.yaml`, which the library embeds.
//!
//! It touches nothing outside `generated/`, `.github/workflows/` and `OUT_DIR`, and reads only
//! Cargo.toml, `examples/` and `templates/` (hence the rerun directives).

#![allow(dead_code)] // the shared modules carry more than the build script uses

#[path = "src/api/mod.rs"]
mod api;
#[path = "src/output.rs"]
mod output;
#[path = "src/pipeline.rs"]
mod pipeline;
#[path = "src/policy/mod.rs"]
mod policy;
#[path = "src/render/mod.rs"]
mod render;
#[path = "src/yaml/mod.rs"]
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use render::bundle::{self, InstallOptions};
use render::layout::{self, REGENERATE_BUILD};

/// The environment variable that overrides the operator image at build time.
const IMAGE_ENV: &str = "KNEXT_OPERATOR_IMAGE";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=Cargo.toml");
    println!("cargo::rerun-if-changed=examples");
    println!("cargo::rerun-if-changed=templates");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed={IMAGE_ENV}");
    // NB: read at run time, not with `env!`: Cargo gives checkouts of this package at different paths
    // the same build-script hash, so with a shared CARGO_TARGET_DIR one compiled script serves them all.
    let Some(root) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        println!("cargo::error=CARGO_MANIFEST_DIR is not set: run the build script through cargo");
        return;
    };
    let out_dir = std::env::var_os("OUT_DIR").map(PathBuf::from);
    if let Err(errors) = run(&root, out_dir.as_deref()) {
        for e in errors {
            // One line per error: cargo prints `error: <message>` and fails the build.
            println!("cargo::error={}", e.replace('\n', " "));
        }
    }
}

fn run(root: &Path, out_dir: Option<&Path>) -> Result<(), Vec<String>> {
    let image = operator_image(root).map_err(|e| vec![e])?;
    let mut files = example_files(root, &image)?;

    let schema = serde_json::to_string_pretty(&api::schema::nextapp_json_schema())
        .map_err(|e| vec![format!("failed to serialize the NextApp schema: {e}")])?;
    files.insert("schema/nextapp.schema.json".into(), schema + "\n");

    let crd = yaml::emit::to_string(&api::crd::nextapp_crd())
        .map_err(|e| vec![format!("failed to write the NextApp CRD: {e}")])?;
    let crd = layout::header("the NextApp Rust types", REGENERATE_BUILD) + &crd;
    files.insert("crd/nextapps.apps.kn-next.dev.yaml".into(), crd);

    files.insert(
        render::cache_handler::GENERATED_PATH.into(),
        render::cache_handler::cache_handler().map_err(|e| vec![e])?,
    );

    let install = bundle::install_text(&InstallOptions::new(&image), REGENERATE_BUILD)
        .map_err(|e| vec![e.to_string()])?;
    files.insert("install.yaml".into(), install.clone());
    files.insert(
        "kustomization.yaml".into(),
        layout::kustomization(
            "knext's install bundle",
            REGENERATE_BUILD,
            &["install.yaml".into()],
        ),
    );

    let named: Vec<(String, &str)> = files
        .iter()
        .map(|(path, text)| (format!("generated/{}", path.display()), text.as_str()))
        .filter(|(name, _)| pipeline::is_yaml_name(name))
        .collect();
    let violations = pipeline::pin_gate(named.iter().map(|(n, t)| (n.as_str(), *t)));
    if !violations.is_empty() {
        let mut errors: Vec<String> = violations.iter().map(ToString::to_string).collect();
        if std::env::var_os(IMAGE_ENV).is_some() {
            errors.push(format!(
                "(the operator image came from the {IMAGE_ENV} environment variable)"
            ));
        }
        errors.push(format!(
            "{} unpinned image(s): nothing was written",
            violations.len()
        ));
        return Err(errors);
    }

    if let Some(out_dir) = out_dir {
        std::fs::write(out_dir.join("install.yaml"), &install)
            .map_err(|e| vec![format!("{}: {e}", out_dir.display())])?;
    }
    output::sync_tree(
        &root.join("generated"),
        "generated/",
        &files,
        layout::HEADER_PREFIX,
        output::is_ci(),
    )
    .map_err(|e| vec![e.to_string()])?;

    let workflows: BTreeMap<PathBuf, String> = render::workflow::workflows()
        .map_err(|e| vec![e])?
        .into_iter()
        .map(|w| (PathBuf::from(w.file), w.text))
        .collect();
    output::sync_tree(
        &root.join(".github/workflows"),
        ".github/workflows/",
        &workflows,
        layout::HEADER_PREFIX,
        output::is_ci(),
    )
    .map(|_| ())
    .map_err(|e| vec![e.to_string()])
}

/// The operator image: `KNEXT_OPERATOR_IMAGE` if set, else Cargo.toml's
/// `[package.metadata.knext] operator-image`. Compiled into the library as `knext install`'s default.
fn operator_image(root: &Path) -> Result<String, String> {
    let image = match std::env::var(IMAGE_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
        _ => {
            let path = root.join("Cargo.toml");
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let manifest: toml::Table = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
            manifest
                .get("package")
                .and_then(|p| p.get("metadata"))
                .and_then(|m| m.get("knext"))
                .and_then(|k| k.get("operator-image"))
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!(
                        "{}: [package.metadata.knext] operator-image is missing: set it to the \
                         digest-pinned operator image",
                        path.display()
                    )
                })?
        }
    };
    println!("cargo::rustc-env=KNEXT_DEFAULT_OPERATOR_IMAGE={image}");
    Ok(image)
}

/// Renders every NextApp of `examples/*.yaml` into the GitOps layout under `examples/`, through the
/// CLI's own pipeline (with the CRD's admission rules). `image` is knext's own image, which the
/// library renders by default (an app with `imagePrewarm` stages knext from it).
fn example_files(root: &Path, image: &str) -> Result<BTreeMap<PathBuf, String>, Vec<String>> {
    let dir = root.join("examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| vec![format!("{}: {e}", dir.display())])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    let sources: Vec<pipeline::Source> = paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap_or(p).display().to_string();
            std::fs::read_to_string(p)
                .map(|text| pipeline::Source { name, text })
                .map_err(|e| vec![format!("{}: {e}", p.display())])
        })
        .collect::<Result<_, _>>()?;

    let mut apps = Vec::new();
    let checks = pipeline::Checks { admission: true };
    let opts = render::RenderOptions {
        knext_image: Some(image),
        ..render::RenderOptions::default()
    };
    let diagnostics = pipeline::render_each(&sources, &opts, checks, |app| apps.push(app));
    let mut errors = Vec::new();
    for d in &diagnostics {
        if d.class == pipeline::Class::Warning {
            println!("cargo::warning={d}");
        } else {
            errors.push(d.to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(layout::gitops_files(&apps, REGENERATE_BUILD)
        .into_iter()
        .map(|(path, text)| (Path::new("examples").join(path), text))
        .collect())
}
