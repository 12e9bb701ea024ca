//! The CLI's pipeline: sources → documents → NextApps → validation → manifests, with diagnostics that
//! name `file:line:column` and the field path.
//!
//! Also home of the pin gate ([`pin_gate`]) every producer of YAML runs. Shared with `build.rs`. Pure
//! apart from the thread pool and [`read_path`]; output order is input order.

use std::collections::BTreeMap;
use std::fmt;

use rayon::prelude::*;

use crate::api::{self, NextApp};
use crate::policy::{self, Severity, ValidatedApp};
use crate::render::layout::{self, RenderedApp};
use crate::render::{self, RenderOptions};
use crate::yaml::parse::{self, Document, ParseErrorKind};
use crate::yaml::spans::{self, SpanIndex};

/// One input: its display name (a path, or `<stdin>`) and its text.
#[derive(Debug, Clone)]
pub struct Source {
    /// Name used in diagnostics.
    pub name: String,
    /// Full text.
    pub text: String,
}

/// What kind of failure a diagnostic reports (decides the exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Not YAML, or unreadable: exit code 2.
    Syntax,
    /// Valid YAML that is not a valid NextApp: exit code 1.
    Invalid,
    /// A warning: rendering goes on.
    Warning,
}

/// A message about one place of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Syntax error, invalid document or warning.
    pub class: Class,
    /// Source name.
    pub file: String,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// Field path, when known.
    pub path: Option<String>,
    /// The validator's reason for validation problems: `InvalidImage`, `InvalidSpec`, `SecretLiteral` for
    /// errors, `ShortDrainBudget`, `EnvVarIgnored`, ... for warnings (see [`crate::api::reasons`]).
    pub reason: Option<&'static str>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        let level = if self.class == Class::Warning {
            "warning"
        } else {
            "error"
        };
        write!(f, ": {level}")?;
        if let Some(reason) = self.reason {
            write!(f, " [{reason}]")?;
        }
        write!(f, ": ")?;
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Everything a run produced: the apps (in input order) and every diagnostic.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rendered apps, only meaningful when [`Outcome::exit_code`] is 0.
    pub apps: Vec<RenderedApp>,
    /// Errors and warnings in input order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Outcome {
    /// See [`exit_code`].
    pub fn exit_code(&self) -> u8 {
        exit_code(&self.diagnostics)
    }
}

/// 0 when nothing failed, 2 when any input was not YAML, else 1 when any document was invalid.
pub fn exit_code(diagnostics: &[Diagnostic]) -> u8 {
    if diagnostics.iter().any(|d| d.class == Class::Syntax) {
        2
    } else if diagnostics.iter().any(|d| d.class == Class::Invalid) {
        1
    } else {
        0
    }
}

/// Apps rendered per parallel batch when streaming: large enough to keep every core busy, small enough
/// that output memory is reused instead of growing with the input.
const CHUNK: usize = 512;

/// Parses, validates and renders every NextApp document of `sources` and collects the result. Output
/// is in input order; see [`render_each`].
pub fn run(sources: &[Source], opts: &RenderOptions<'_>) -> Outcome {
    let mut apps = Vec::new();
    let diagnostics = render_each(sources, opts, Checks::default(), |app| apps.push(app));
    Outcome { apps, diagnostics }
}

/// Checks beyond the validator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Also evaluate the CRD's CEL admission rules ([`policy::admission`]) on every valid document:
    /// proves the API server would accept what knext accepts (costly: `knext validate` only).
    pub admission: bool,
}

/// Parses and validates every NextApp document of `sources` (blank documents are skipped; the same
/// namespace/name twice is an error), and only if nothing is invalid renders them, handing each app to
/// `sink` in input order. Documents are parsed, validated and rendered in parallel; rendering happens
/// in batches so memory stays bounded by the parsed input, not the output. Returns every diagnostic:
/// the validator's, and [`render::warnings`] about what the output leaves out (without
/// [`RenderOptions::now`], the warm-schedule floors only the operator applies).
pub fn render_each(
    sources: &[Source],
    opts: &RenderOptions<'_>,
    checks: Checks,
    mut sink: impl FnMut(RenderedApp),
) -> Vec<Diagnostic> {
    let docs: Vec<(&Source, Document<'_>)> = sources
        .iter()
        .flat_map(|s| parse::split_documents(&s.text).into_iter().map(move |d| (s, d)))
        .filter(|(_, d)| !d.is_blank())
        .collect();
    let parsed: Vec<Result<NextApp, Diagnostic>> = docs
        .par_iter()
        .map(|(src, doc)| parse_document(src, doc))
        .collect();
    let checked: Vec<(Option<ValidatedApp<'_>>, Vec<Diagnostic>)> = parsed
        .par_iter()
        .zip(docs.par_iter())
        .map(|(parsed, (src, doc))| match parsed {
            Err(d) => (None, vec![d.clone()]),
            Ok(app) => match policy::validate(app) {
                Ok((valid, mut report)) => {
                    if checks.admission {
                        report.problems.extend(policy::admission(app));
                    }
                    let ok = !report.has_errors();
                    if ok {
                        // What this render (no clock: GitOps) leaves to the operator.
                        report.problems.extend(render::warnings(&valid, opts));
                    }
                    (ok.then_some(valid), diagnostics(src, doc, &report))
                }
                Err(report) => (None, diagnostics(src, doc, &report)),
            },
        })
        .collect();

    let mut out = Vec::new();
    let mut valid = Vec::with_capacity(checked.len());
    let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for ((src, doc), (app, diags)) in docs.iter().zip(checked) {
        out.extend(diags);
        let Some(app) = app else { continue };
        if let Some(first) = seen.insert((app.namespace(), app.name()), &src.name) {
            out.push(Diagnostic {
                class: Class::Invalid,
                file: src.name.clone(),
                location: locate(doc, "metadata.name"),
                path: Some("metadata.name".into()),
                reason: None,
                message: format!(
                    "NextApp {}/{} is defined twice (first in {first})",
                    app.namespace(),
                    app.name()
                ),
            });
            continue;
        }
        valid.push((*src, app));
    }
    if out.iter().any(|d| d.class != Class::Warning) {
        return out;
    }
    for chunk in valid.chunks(CHUNK) {
        let rendered: Vec<Result<RenderedApp, Diagnostic>> = chunk
            .par_iter()
            .map(|(src, app)| render_one(src, app, opts))
            .collect();
        for r in rendered {
            match r {
                Ok(app) => sink(app),
                Err(d) => {
                    out.push(d);
                    return out;
                }
            }
        }
    }
    out
}

fn parse_document(src: &Source, doc: &Document<'_>) -> Result<NextApp, Diagnostic> {
    api::parse_nextapp(doc).map_err(|e| {
        let location = match (e.line, e.column) {
            (Some(l), Some(c)) => Some((l, c)),
            _ => e.path.as_deref().and_then(|p| locate(doc, p)),
        };
        let class = if e.kind == ParseErrorKind::Syntax {
            Class::Syntax
        } else {
            Class::Invalid
        };
        Diagnostic {
            class,
            file: src.name.clone(),
            location,
            path: e.path,
            reason: None,
            message: e.message,
        }
    })
}

/// Renders one app to text; an emitter error (unreachable for knext's own types) becomes a diagnostic.
fn render_one(
    src: &Source,
    app: &ValidatedApp<'_>,
    opts: &RenderOptions<'_>,
) -> Result<RenderedApp, Diagnostic> {
    layout::render_text(app, opts).map_err(|e| Diagnostic {
        class: Class::Invalid,
        file: src.name.clone(),
        location: None,
        path: None,
        reason: None,
        message: e.to_string(),
    })
}

fn diagnostics(src: &Source, doc: &Document<'_>, report: &policy::Report) -> Vec<Diagnostic> {
    if report.problems.is_empty() {
        return Vec::new();
    }
    let index = SpanIndex::build(doc);
    let mut out: Vec<Diagnostic> = report
        .problems
        .iter()
        .map(|p| Diagnostic {
            class: if p.severity == Severity::Error {
                Class::Invalid
            } else {
                Class::Warning
            },
            file: src.name.clone(),
            location: index
                .as_ref()
                .and_then(|i| i.locate(&spans::parse_path(&p.path)))
                .map(|(l, _)| (l.line, l.column)),
            path: Some(p.path.clone()),
            reason: Some(p.reason),
            message: p.message.clone(),
        })
        .collect();
    // Report in reading order (stable, so problems at one place keep the validator's order).
    out.sort_by_key(|d| d.location.unwrap_or((usize::MAX, usize::MAX)));
    out
}

fn locate(doc: &Document<'_>, path: &str) -> Option<(usize, usize)> {
    SpanIndex::build(doc)?
        .locate(&spans::parse_path(path))
        .map(|(l, _)| (l.line, l.column))
}

/// Reads NextApp sources from `path`: a file as it is, a directory recursively (*.yaml and *.yml in
/// sorted order, hidden entries skipped, files knext generated skipped so output directories may live
/// inside input directories). An empty directory is an error. Errors name the path.
pub fn read_path(path: &std::path::Path) -> Result<Vec<Source>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![read_file(path)?]);
    }
    let mut files = Vec::new();
    walk(path, &mut files)?;
    if files.is_empty() {
        return Err(format!("{}: no *.yaml or *.yml files found", path.display()));
    }
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        let source = read_file(&f)?;
        // knext's own output (e.g. `knext render . -o out`, run twice) is not input.
        if !source.text.starts_with(layout::HEADER_PREFIX) {
            sources.push(source);
        }
    }
    Ok(sources)
}

fn read_file(path: &std::path::Path) -> Result<Source, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Source {
        name: path.display().to_string(),
        text,
    })
}

fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            files.push(path);
        }
    }
    Ok(())
}

/// Why [`install_yaml`] produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum InstallFailure {
    /// The options are unusable (e.g. an invalid namespace).
    #[error(transparent)]
    Options(#[from] crate::render::bundle::InstallError),
    /// The pin gate rejected images of the rendered bundle.
    #[error("{} unpinned image(s)", .0.len())]
    Unpinned(Vec<PinViolation>),
}

/// The install bundle as YAML text, with the pin gate applied: nothing is returned unless every image
/// is digest-pinned. `name` is what violations call the output (e.g. `install.yaml`).
pub fn install_yaml(
    opts: &crate::render::bundle::InstallOptions<'_>,
    name: &str,
    regenerate: &str,
) -> Result<String, InstallFailure> {
    let text = crate::render::bundle::install_text(opts, regenerate)?;
    let violations = pin_gate([(name, text.as_str())]);
    if violations.is_empty() {
        Ok(text)
    } else {
        Err(InstallFailure::Unpinned(violations))
    }
}

/// Whether a generated file's name says YAML (what [`pin_gate`] reads).
pub fn is_yaml_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// An image the pin gate rejected, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinViolation {
    /// The file (or other named text) the object is in.
    pub file: String,
    /// `Kind namespace/name` (or `Kind name` for cluster-scoped objects) of the object.
    pub object: String,
    /// The container's name, if it has one (`None` for a NextApp's `spec.image`).
    pub container: Option<String>,
    /// JSON path of the `image` field within the object.
    pub path: String,
    /// Why it is rejected, naming the image and the fix.
    pub message: String,
}

impl fmt::Display for PinViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.file, self.object)?;
        if let Some(c) = &self.container {
            write!(f, "container {c:?} ")?;
        }
        if !self.path.is_empty() {
            write!(f, "({}): ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The pin gate: every container image (every container, initContainer and ephemeralContainer of
/// every pod template of any kind, and NextApp `spec.image`) in every YAML document of every file must
/// be digest-pinned. `files` are `(name, YAML text)` pairs (callers leave out files that are not YAML).
/// A document that does not parse is a violation too: the gate never waves through what it cannot read.
pub fn pin_gate<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<PinViolation> {
    let mut out = Vec::new();
    for (file, text) in files {
        for doc in parse::split_documents(text) {
            if doc.is_blank() {
                continue;
            }
            let value = match parse::from_document::<serde_json::Value>(&doc) {
                Ok(v) => v,
                Err(e) => {
                    out.push(PinViolation {
                        file: file.to_owned(),
                        object: "document".into(),
                        container: None,
                        path: String::new(),
                        message: format!("does not parse, so its images cannot be checked: {e}"),
                    });
                    continue;
                }
            };
            let field = |key: &str| value.pointer(key).and_then(serde_json::Value::as_str);
            let object = match (field("/metadata/namespace"), field("/metadata/name")) {
                (Some(ns), Some(name)) => format!("{} {ns}/{name}", field("/kind").unwrap_or("object")),
                (None, Some(name)) => format!("{} {name}", field("/kind").unwrap_or("object")),
                _ => field("/kind").unwrap_or("object").to_owned(),
            };
            for bad in policy::images::unpinned_images(&value) {
                out.push(PinViolation {
                    file: file.to_owned(),
                    object: object.clone(),
                    container: bad.found.container,
                    path: bad.found.path,
                    message: bad.error.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings() -> insta::Settings {
        let mut s = insta::Settings::clone_current();
        s.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
        s.set_prepend_module_to_snapshot(false);
        s
    }

    fn source(path: &Path) -> Source {
        let name = path
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(path)
            .display()
            .to_string();
        Source {
            name,
            text: std::fs::read_to_string(path).unwrap(),
        }
    }

    #[test]
    fn valid_fixtures_render_to_their_snapshots() {
        settings().bind(|| {
            insta::glob!("../snapshots/inputs/valid", "*.yaml", |path| {
                let outcome = run(&[source(path)], &RenderOptions::default());
                assert_eq!(outcome.exit_code(), 0, "{:#?}", outcome.diagnostics);
                let mut out = String::new();
                for d in &outcome.diagnostics {
                    out.push_str(&format!("# {d}\n"));
                }
                layout::stream(&outcome.apps, &mut out);
                // knext's own image (the image-prewarm DaemonSet's init container) changes with every
                // re-pin of the operator image; the snapshots say where it goes.
                let out = out.replace(crate::install::DEFAULT_OPERATOR_IMAGE, "<knext image>");
                insta::assert_snapshot!(out);
            });
        });
    }

    #[test]
    fn invalid_fixtures_report_every_error_with_file_line_column() {
        settings().bind(|| {
            insta::glob!("../snapshots/inputs/invalid", "*.yaml", |path| {
                let outcome = run(&[source(path)], &RenderOptions::default());
                assert_ne!(outcome.exit_code(), 0);
                assert!(outcome.apps.is_empty());
                let mut out = format!("exit code {}\n", outcome.exit_code());
                for d in &outcome.diagnostics {
                    out.push_str(&format!("{d}\n"));
                }
                insta::assert_snapshot!(out);
            });
        });
    }

    #[test]
    fn owner_references_appear_only_when_a_uid_is_supplied() {
        let src = source(&Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/inputs/valid/minimal.yaml"));
        let plain = run(std::slice::from_ref(&src), &RenderOptions::default());
        let owned = run(
            &[src],
            &RenderOptions {
                owner_uid: Some("3d6e1a52-6a8c-4e34-9a1a-0c2b8f1b2c3d"),
                ..RenderOptions::default()
            },
        );
        for (_, yaml) in plain.apps[0].documents() {
            assert!(!yaml.contains("ownerReferences"));
        }
        for (_, yaml) in owned.apps[0].documents() {
            assert!(yaml.contains(
                "ownerReferences:\n  - apiVersion: apps.kn-next.dev/v1alpha1\n    blockOwnerDeletion: true\n    \
                 controller: true\n    kind: NextApp\n    name: minimal\n    uid: \"3d6e1a52-6a8c-4e34-9a1a-0c2b8f1b2c3d\"\n"
            ), "{yaml}");
        }
    }

    #[test]
    fn the_same_app_twice_is_an_error_naming_both_places() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots/inputs/valid/minimal.yaml"),
        )
        .unwrap();
        let a = Source {
            name: "a.yaml".into(),
            text: text.clone(),
        };
        let b = Source {
            name: "b.yaml".into(),
            text,
        };
        let outcome = run(&[a, b], &RenderOptions::default());
        assert_eq!(outcome.exit_code(), 1);
        assert_eq!(
            outcome.diagnostics[0].to_string(),
            "b.yaml:4:9: error: metadata.name: NextApp apps/minimal is defined twice (first in a.yaml)"
        );
    }

    #[test]
    fn documents_keep_their_order_and_line_numbers_in_a_stream() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!(
                "---\napiVersion: apps.kn-next.dev/v1alpha1\nkind: NextApp\nmetadata:\n  name: app-{i}\n  \
                 namespace: ns\nspec:\n  image: ghcr.io/a/b@{digest}\n"
            ));
        }
        text.push_str("---\napiVersion: apps.kn-next.dev/v1alpha1\nkind: NextApp\nmetadata:\n  name: bad\nspec:\n  image: x:latest\n");
        let outcome = run(
            &[Source {
                name: "s.yaml".into(),
                text: text.clone(),
            }],
            &RenderOptions::default(),
        );
        assert_eq!(outcome.diagnostics.len(), 1);
        assert_eq!(outcome.diagnostics[0].location, Some((50 * 8 + 7, 10)));
        let text = text.replace("x:latest", &format!("x@{digest}"));
        let outcome = run(
            &[Source {
                name: "s.yaml".into(),
                text,
            }],
            &RenderOptions::default(),
        );
        let names: Vec<_> = outcome.apps.iter().map(|a| a.name.clone()).collect();
        let mut want: Vec<_> = (0..50).map(|i| format!("app-{i}")).collect();
        want.push("bad".into());
        assert_eq!(names, want);
    }

    const PINNED: &str =
        "r.example/a@sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn the_pin_gate_names_file_object_container_image_and_fix() {
        let text = format!(
            "---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\n  namespace: ops\n\
             spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers:\n\
             \x20         - name: migrate\n            image: r.example/migrate:v2\n          containers:\n\
             \x20         - name: job\n            image: {PINNED}\n---\napiVersion: v1\nkind: Pod\n\
             metadata:\n  name: debug\nspec:\n  ephemeralContainers:\n  - name: shell\n    image: busybox\n\
             ---\napiVersion: apps.kn-next.dev/v1alpha1\nkind: NextApp\nmetadata:\n  name: shop\n\
             spec:\n  image: shop:latest\n---\nkind: ClusterThing\nmetadata:\n  name: fine\n"
        );
        let got: Vec<String> = pin_gate([("gitops/all.yaml", text.as_str())])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[0].starts_with(
                "gitops/all.yaml: CronJob ops/nightly: container \"migrate\" \
                 (spec.jobTemplate.spec.template.spec.initContainers[0].image): image \
                 \"r.example/migrate:v2\" is tag-only (\"v2\"), which is mutable; pin it by digest: \
                 r.example/migrate:v2@sha256:<64 hex>"
            ),
            "{}",
            got[0]
        );
        assert!(got[1].starts_with("gitops/all.yaml: Pod debug: container \"shell\" (spec.ephemeralContainers[0].image): image \"busybox\" has no tag or digest"), "{}", got[1]);
        assert!(got[2].starts_with("gitops/all.yaml: NextApp shop: (spec.image): image \"shop:latest\" uses the mutable \"latest\" tag"), "{}", got[2]);
    }

    #[test]
    fn the_pin_gate_does_not_wave_through_what_it_cannot_read() {
        let got = pin_gate([("x.yaml", "kind: [unclosed\n")]);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].to_string().starts_with("x.yaml: document: does not parse"),
            "{}",
            got[0]
        );
        assert!(pin_gate([("x.yaml", "---\n---\n")]).is_empty());
    }

    #[test]
    fn install_yaml_refuses_an_unpinned_operator_image_and_accepts_a_pinned_one() {
        use crate::render::bundle::InstallOptions;
        for bad in [
            "ghcr.io/x/knext:latest",
            "ghcr.io/x/knext:v1",
            "ghcr.io/x/knext",
            "",
        ] {
            match install_yaml(&InstallOptions::new(bad), "install.yaml", "t") {
                Err(InstallFailure::Unpinned(v)) => {
                    assert_eq!(v.len(), 1, "{bad}");
                    assert_eq!(v[0].object, "Deployment knext-system/knext-operator");
                    assert_eq!(v[0].container.as_deref(), Some("operator"));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let text = install_yaml(&InstallOptions::new(PINNED), "install.yaml", "t").unwrap();
        assert!(text.contains(&format!("image: {PINNED}\n")));
    }
}
