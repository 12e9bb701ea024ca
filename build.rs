//! Build script: renders the NextApp CRD, the NextApp JSON Schema and the bundled `examples/` NextApps
//! into `generated/`
//! with the very modules the library and the CLI use (included below through `#[path]`).
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
#[path = "src/policy/mod.rs"]
mod policy;
#[path = "src/render/mod.rs"]
mod render;
#[path = "src/yaml/mod.rs"]
mod yaml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use render::layout::{self, REGENERATE_BUILD};
use yaml::parse::Document;
use yaml::spans::{self, SpanIndex};

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

/// Renders every NextApp of `examples/*.yaml` into the GitOps layout under `examples/`.
fn example_files(root: &Path) -> Result<std::collections::BTreeMap<PathBuf, String>, Vec<String>> {
    let dir = root.join("examples");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| vec![format!("{}: {e}", dir.display())])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();

    let texts: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap_or(p).display().to_string();
            std::fs::read_to_string(p)
                .map(|t| (name, t))
                .map_err(|e| vec![format!("{}: {e}", p.display())])
        })
        .collect::<Result<_, _>>()?;

    let mut errors = Vec::new();
    let mut apps = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, text) in &texts {
        for doc in yaml::parse::split_documents(text)
            .iter()
            .filter(|d| !d.is_blank())
        {
            let app = match api::parse_nextapp(doc) {
                Ok(app) => app,
                Err(e) => {
                    let at = match (e.line, e.column) {
                        (Some(l), Some(c)) => format!("{l}:{c}"),
                        _ => locate(doc, e.path.as_deref().unwrap_or_default()),
                    };
                    errors.push(format!(
                        "{name}:{at}: {}{}",
                        e.path.map(|p| p + ": ").unwrap_or_default(),
                        e.message
                    ));
                    continue;
                }
            };
            let admitted = policy::admission(&app);
            for p in &admitted {
                errors.push(format!("{name}:{}: [{}] {p}", locate(doc, &p.path), p.reason));
            }
            match policy::validate(&app) {
                Err(report) => {
                    for p in report.errors() {
                        errors.push(format!("{name}:{}: [{}] {p}", locate(doc, &p.path), p.reason));
                    }
                }
                Ok((valid, report)) => {
                    for p in report.warnings() {
                        println!("cargo::warning={name}:{}: {p}", locate(doc, &p.path));
                    }
                    if !seen.insert((valid.namespace().to_owned(), valid.name().to_owned())) {
                        errors.push(format!(
                            "{name}:{}: NextApp {}/{} is defined twice in examples/",
                            locate(doc, "metadata.name"),
                            valid.namespace(),
                            valid.name()
                        ));
                        continue;
                    }
                    let manifests = render::app(&valid, &render::RenderOptions::default());
                    pin_gate(name, &manifests, &mut errors);
                    match layout::text_of(&valid, &manifests) {
                        Ok(rendered) => apps.push(rendered),
                        Err(e) => errors.push(format!("{name}: {e}")),
                    }
                }
            }
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

/// The build-time pin gate: every container image of every rendered object must be digest-pinned.
fn pin_gate(source: &str, manifests: &[render::Manifest], errors: &mut Vec<String>) {
    for m in manifests {
        let value = match m.to_json() {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{source}: {} {}: {e}", m.kind(), m.name()));
                continue;
            }
        };
        for bad in policy::images::unpinned_images(&value) {
            errors.push(format!(
                "{source}: {} {} container {} ({}): {}",
                m.kind(),
                m.name(),
                bad.found.container.as_deref().unwrap_or("-"),
                bad.found.path,
                bad.error
            ));
        }
    }
}

/// `line:column` of the node at `path`, or `?:?` when it cannot be found.
fn locate(doc: &Document<'_>, path: &str) -> String {
    SpanIndex::build(doc)
        .and_then(|index| index.locate(&spans::parse_path(path)))
        .map_or_else(|| "?:?".to_owned(), |(l, _)| format!("{}:{}", l.line, l.column))
}
