//! knext for your own `build.rs`: render your NextApps into a committed GitOps tree at build time, with
//! the same validator, admission rules, renderers, pin gate and writer knext's own build uses.
//!
//! ```no_run
//! // build.rs of your crate; `knext` is a [build-dependencies] entry.
//! fn main() -> Result<(), knext::build::Error> {
//!     knext::build::Bundle::new().apps_from_dir("apps")?.write("generated")?;
//!     Ok(())
//! }
//! ```
//!
//! [`Bundle::write`] follows the rules of knext's own `generated/`:
//! - nothing is written unless every NextApp is valid and every image in the output is digest-pinned;
//!   the error lists every problem with `file:line:column` and the field path, or the object and
//!   container of the image;
//! - a file is written only when its bytes differ, files knext generated earlier that are no longer
//!   produced are removed, anything else in the directory is left alone;
//! - when `CI` is set nothing is written: a difference is an error ("… is stale: run cargo build and
//!   commit");
//! - inside a build script it prints `cargo::rerun-if-changed` for every input it read and
//!   `cargo::rerun-if-env-changed=CI`, so a no-op `cargo build` does not rerun the script.
//!
//! The output layout is the one of `knext render -o`: `<dir>/<namespace>/<app>/*.yaml` with a
//! `kustomization.yaml` per app and one at the root; with [`Bundle::operator`] also
//! `<dir>/knext-install/install.yaml`, knext's operator install bundle.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::output::{self, SyncError, WriteReport};
use crate::pipeline::{self, Checks, Diagnostic, InstallFailure, PinViolation, Source};
use crate::render::RenderOptions;
use crate::render::bundle::{InstallError, InstallOptions};
use crate::render::layout::{self, REGENERATE_BUILD};

/// Directory of the operator install bundle inside the output tree.
pub const INSTALL_DIR: &str = "knext-install";

/// Why a [`Bundle`] could not be read, rendered or written. Its `Debug` output is its `Display`
/// output, so `fn main() -> Result<(), knext::build::Error>` prints a readable report.
pub enum Error {
    /// An input could not be read.
    Read(String),
    /// Inputs are invalid (every diagnostic, warnings included).
    Invalid(Vec<Diagnostic>),
    /// Images in the output are not digest-pinned.
    Unpinned(Vec<PinViolation>),
    /// The operator options are unusable.
    Install(InstallError),
    /// The output directory could not be written, or (in CI) is stale.
    Write(SyncError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "knext: {e}"),
            Self::Invalid(diagnostics) => {
                for d in diagnostics {
                    writeln!(f, "{d}")?;
                }
                let errors = diagnostics
                    .iter()
                    .filter(|d| d.class != pipeline::Class::Warning)
                    .count();
                write!(f, "knext: {errors} error(s); nothing was written")
            }
            Self::Unpinned(violations) => {
                for v in violations {
                    writeln!(f, "{v}")?;
                }
                write!(
                    f,
                    "knext: {} unpinned image(s); nothing was written",
                    violations.len()
                )
            }
            Self::Install(e) => write!(f, "knext: {e}"),
            Self::Write(e) => write!(f, "knext: {e}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

/// NextApp inputs and options; [`Bundle::write`] renders and writes them.
#[derive(Debug, Default, Clone)]
pub struct Bundle {
    sources: Vec<Source>,
    inputs: Vec<PathBuf>,
    operator: Option<(String, String)>,
}

impl Bundle {
    /// An empty bundle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every NextApp document of `dir`'s `*.yaml`/`*.yml` files, recursively, in sorted order
    /// (hidden entries and files knext generated are skipped). Relative paths are relative to the
    /// current directory, which is the package root in a build script.
    pub fn apps_from_dir(self, dir: impl AsRef<Path>) -> Result<Self, Error> {
        self.add(dir.as_ref())
    }

    /// Adds the NextApp documents of one file.
    pub fn app_file(self, file: impl AsRef<Path>) -> Result<Self, Error> {
        self.add(file.as_ref())
    }

    /// Adds NextApp documents from a string; `name` is what diagnostics call it.
    pub fn app_text(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.sources.push(Source {
            name: name.into(),
            text: text.into(),
        });
        self
    }

    /// Also writes knext's operator install bundle (CRD, RBAC, Deployment, ...) for `image` into
    /// `<dir>/knext-install/install.yaml`, installing into `namespace`. The image goes through the pin
    /// gate like every other.
    pub fn operator(mut self, image: impl Into<String>, namespace: impl Into<String>) -> Self {
        self.operator = Some((image.into(), namespace.into()));
        self
    }

    fn add(mut self, path: &Path) -> Result<Self, Error> {
        self.sources
            .extend(pipeline::read_path(path).map_err(Error::Read)?);
        self.inputs.push(path.to_path_buf());
        Ok(self)
    }

    /// Renders every file of the output tree (relative path → contents) without writing anything:
    /// validation (with the CRD's admission rules), rendering and the pin gate.
    pub fn render(&self) -> Result<BTreeMap<PathBuf, String>, Error> {
        let mut apps = Vec::new();
        let diagnostics = pipeline::render_each(
            &self.sources,
            &RenderOptions::default(),
            Checks { admission: true },
            |app| apps.push(app),
        );
        if pipeline::exit_code(&diagnostics) != 0 {
            return Err(Error::Invalid(diagnostics));
        }
        let mut files = layout::gitops_files(&apps, REGENERATE_BUILD);
        if let Some((image, namespace)) = &self.operator {
            let opts = InstallOptions {
                image,
                namespace,
                aggregated_roles: true,
                default_signature: None,
            };
            let text =
                crate::render::bundle::install_text(&opts, REGENERATE_BUILD).map_err(Error::Install)?;
            files.insert(Path::new(INSTALL_DIR).join("install.yaml"), text);
            files.insert(
                Path::new(INSTALL_DIR).join("kustomization.yaml"),
                layout::kustomization(
                    "knext's install bundle",
                    REGENERATE_BUILD,
                    &["install.yaml".into()],
                ),
            );
        }
        let violations = pipeline::pin_gate(
            files
                .iter()
                .filter_map(|(path, text)| Some((path.to_str()?, text.as_str())))
                .filter(|(name, _)| pipeline::is_yaml_name(name)),
        );
        if !violations.is_empty() {
            return Err(Error::Unpinned(violations));
        }
        Ok(files)
    }

    /// Renders and writes the tree under `dir` (or, with `CI` set, only compares); see the module
    /// documentation for the rules.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<WriteReport, Error> {
        let dir = dir.as_ref();
        // Inside a build script, rerun it only when an input or CI changes.
        if std::env::var_os("OUT_DIR").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
            for input in &self.inputs {
                println!("cargo::rerun-if-changed={}", input.display());
            }
            println!("cargo::rerun-if-env-changed=CI");
        }
        let files = self.render()?;
        let name = format!("{}/", dir.display());
        output::sync_tree(dir, &name, &files, layout::HEADER_PREFIX, output::is_ci()).map_err(Error::Write)
    }
}

impl From<InstallFailure> for Error {
    fn from(e: InstallFailure) -> Self {
        match e {
            InstallFailure::Options(e) => Self::Install(e),
            InstallFailure::Unpinned(v) => Self::Unpinned(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: &str =
        "ghcr.io/acme/shop@sha256:3f9a9b3c5d7e1f20304a5b6c7d8e9f00112233445566778899aabbccddeeff00";

    fn app(image: &str) -> String {
        format!(
            "apiVersion: apps.kn-next.dev/v1alpha1\nkind: NextApp\nmetadata:\n  name: shop\n  \
             namespace: web\nspec:\n  image: {image}\n"
        )
    }

    #[test]
    fn renders_the_gitops_layout() {
        let files = Bundle::new()
            .app_text("apps/shop.yaml", app(PINNED))
            .render()
            .unwrap();
        let names: Vec<String> = files.keys().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "kustomization.yaml",
                "web/shop/knative-service.yaml",
                "web/shop/kustomization.yaml",
                "web/shop/network-policy.yaml",
                "web/shop/service-account.yaml",
            ]
        );
        assert!(files.values().all(|t| t.starts_with(layout::HEADER_PREFIX)));
    }

    #[test]
    fn an_invalid_app_is_reported_with_its_location_and_nothing_is_rendered() {
        let err = Bundle::new()
            .app_text("apps/shop.yaml", app("ghcr.io/acme/shop:1.0"))
            .render()
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Invalid(_)), "{text}");
        assert!(
            text.starts_with("apps/shop.yaml:7:10: error [InvalidImage]: spec.image: "),
            "{text}"
        );
        assert!(text.contains("tag-only"), "{text}");
        assert_eq!(format!("{err:?}"), text);
    }

    #[test]
    fn the_operator_bundle_goes_through_the_pin_gate() {
        let err = Bundle::new()
            .operator("ghcr.io/x/knext:latest", "ops")
            .render()
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Unpinned(_)), "{text}");
        assert!(
            text.starts_with(
                "knext-install/install.yaml: Deployment ops/knext-operator: container \"operator\" \
                 (spec.template.spec.containers[0].image): image \"ghcr.io/x/knext:latest\" uses the \
                 mutable \"latest\" tag"
            ),
            "{text}"
        );

        let files = Bundle::new().operator(PINNED, "ops").render().unwrap();
        assert!(files[Path::new("knext-install/install.yaml")].contains("namespace: ops\n"));
        assert!(files.contains_key(Path::new("knext-install/kustomization.yaml")));
    }

    #[test]
    fn an_unreadable_input_names_the_path() {
        let err = Bundle::new().apps_from_dir("/nonexistent/apps").unwrap_err();
        assert!(err.to_string().starts_with("knext: /nonexistent/apps: "), "{err}");
    }
}
