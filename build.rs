//! Build script: renders the NextApp CRD, the NextApp JSON Schema and the bundled `examples/` NextApps
//! into `generated/` with the very modules the library and the CLI use (included below through `#[path]`);
//! the examples go through the CLI's own pipeline, admission rules included.
//!
//! - An invalid example (malformed YAML, unknown field, unpinned image, any broken rule) fails the build
//!   with `cargo::error=` lines naming `file:line:column` and the field; nothing is written.
//! - The pin gate: every container image of every rendered object is checked again, structurally, by
//!   `policy::images` (the validator already rejects unpinned NextApp images; the gate is what will
//!   guard knext's own install bundle too).
//! - A file is written only when its bytes differ; knext-generated YAML files that are no longer produced
//!   are removed.
//! - With `CI` set nothing is written: a difference fails the build with "generated/ is stale".
//!
//! It touches nothing outside `generated/` and reads only `examples/` (hence the rerun directives).

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

use render::layout::{self, REGENERATE_BUILD};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=examples");
    println!("cargo::rerun-if-env-changed=CI");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Err(errors) = run(&root) {
        for e in errors {
            // One line per error: cargo prints `error: <message>` and fails the build.
            println!("cargo::error={}", e.replace('\n', " "));
        }
    }
}

fn run(root: &Path) -> Result<(), Vec<String>> {
    let mut files = example_files(root)?;
    let schema = serde_json::to_string_pretty(&api::schema::nextapp_json_schema())
        .map_err(|e| vec![format!("failed to serialize the NextApp schema: {e}")])?;
    files.insert("schema/nextapp.schema.json".into(), schema + "\n");
    let crd = yaml::emit::to_string(&api::crd::nextapp_crd())
        .map_err(|e| vec![format!("failed to write the NextApp CRD: {e}")])?;
    let crd = layout::header("the NextApp Rust types", REGENERATE_BUILD) + &crd;
    files.insert("crd/nextapps.apps.kn-next.dev.yaml".into(), crd);

    let generated = root.join("generated");
    let header = layout::HEADER_PREFIX;
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        let stale = output::check_tree(&generated, &files, header).map_err(|e| vec![e.to_string()])?;
        if !stale.is_empty() {
            let list: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
            return Err(vec![format!(
                "generated/ is stale: run cargo build and commit (differs: {})",
                list.join(", ")
            )]);
        }
        return Ok(());
    }
    output::write_tree(&generated, &files, header)
        .map(|_| ())
        .map_err(|e| vec![e.to_string()])
}

/// Renders every NextApp of `examples/*.yaml` into the GitOps layout under `examples/`, through the
/// CLI's own pipeline (with the CRD's admission rules), then applies the pin gate to what it will write.
fn example_files(root: &Path) -> Result<BTreeMap<PathBuf, String>, Vec<String>> {
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
    let diagnostics = pipeline::render_each(&sources, &render::RenderOptions::default(), checks, |app| {
        apps.push(app)
    });
    let mut errors = Vec::new();
    for d in &diagnostics {
        if d.class == pipeline::Class::Warning {
            println!("cargo::warning={d}");
        } else {
            errors.push(d.to_string());
        }
    }
    for app in &apps {
        pin_gate(app, &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(layout::gitops_files(&apps, REGENERATE_BUILD)
        .into_iter()
        .map(|(path, text)| (Path::new("examples").join(path), text))
        .collect())
}

/// The build-time pin gate: every container image in every document about to be written must be
/// digest-pinned (checked on the written YAML itself, by the one image walker).
fn pin_gate(app: &layout::RenderedApp, errors: &mut Vec<String>) {
    for (stem, text) in app.documents() {
        let docs = yaml::parse::split_documents(text);
        let value = docs.first().map(yaml::parse::from_document::<serde_json::Value>);
        let value = match value {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                errors.push(format!(
                    "{}/{} {stem}: rendered YAML does not parse: {e}",
                    app.namespace, app.name
                ));
                continue;
            }
            None => continue,
        };
        for bad in policy::images::unpinned_images(&value) {
            errors.push(format!(
                "{}/{} {stem}: container {} ({}): {}",
                app.namespace,
                app.name,
                bad.found.container.as_deref().unwrap_or("-"),
                bad.found.path,
                bad.error
            ));
        }
    }
}
