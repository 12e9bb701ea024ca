//! knext's GitHub workflows: `templates/workflows/*.j2` rendered with the pinned actions and the
//! image pipeline below. `cargo build` writes them to `.github/workflows/` (and, with `CI` set, fails
//! when the committed files differ).
//!
//! The release workflow's jobs (build → SBOM → vulnerability gate → push by digest → sign → attest →
//! verify) come from one macro, `image_pipeline` in `templates/workflows/parts.j2`, fed an
//! [`ImagePipeline`]: the app-image workflow renders from the same parts with its own build.
//!
//! Every third-party action is pinned by the full commit SHA of a release, with the version in a
//! comment ([`ACTIONS`]); the tools come from `scripts/tools.sh`, whose versions are pinned in
//! `scripts/tools-requirements.txt`. Pure: no I/O, clock or environment.

use serde::Serialize;

use crate::render::layout;

/// A GitHub action pinned to the commit of one of its releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedAction {
    /// Key the templates use (`uses.checkout`).
    pub key: &'static str,
    /// `owner/repo` (or `owner/repo/path`).
    pub repo: &'static str,
    /// The release's commit (the tag peeled to its commit), 40 hex digits.
    pub sha: &'static str,
    /// The release tag, written as a comment next to the SHA.
    pub version: &'static str,
}

impl PinnedAction {
    /// `owner/repo@<sha> # <version>`, as a `uses:` line carries it.
    pub fn uses(&self) -> String {
        format!("{}@{} # {}", self.repo, self.sha, self.version)
    }
}

/// The actions the workflows use. Each SHA is the commit its release tag points to, read from the
/// action's own repository (`git rev-parse '<tag>^{commit}'`), never typed from memory. To update
/// one: look up the new tag's commit the same way, change both fields, run `cargo build`.
///
/// `aquasecurity/trivy-action`: its tags before 0.35.0 were force-pushed to malicious commits in
/// March 2026 (GHSA-69fq-xp46-6x23). v0.36.0 is on the default branch, signed, and itself pins
/// `aquasecurity/setup-trivy` v0.2.6 by SHA; its Trivy version is set explicitly ([`TRIVY_VERSION`]).
pub const ACTIONS: [PinnedAction; 5] = [
    PinnedAction {
        key: "checkout",
        repo: "actions/checkout",
        sha: "3d3c42e5aac5ba805825da76410c181273ba90b1",
        version: "v7.0.1",
    },
    PinnedAction {
        key: "upload_artifact",
        repo: "actions/upload-artifact",
        sha: "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
        version: "v7.0.0",
    },
    PinnedAction {
        key: "download_artifact",
        repo: "actions/download-artifact",
        sha: "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c",
        version: "v8.0.1",
    },
    PinnedAction {
        key: "cosign_installer",
        repo: "sigstore/cosign-installer",
        sha: "6f9f17788090df1f26f669e9d70d6ae9567deba6",
        version: "v4.1.2",
    },
    PinnedAction {
        key: "trivy_action",
        repo: "aquasecurity/trivy-action",
        sha: "ed142fd0673e97e23eac54620cfb913e5ce36c25",
        version: "v0.36.0",
    },
];

/// The cosign release cosign-installer installs (its v4.1.2 default, written out).
pub const COSIGN_VERSION: &str = "v3.0.6";
/// The Trivy release the vulnerability gate runs (trivy-action v0.36.0's default, written out).
pub const TRIVY_VERSION: &str = "v0.70.0";
/// The GitHub-hosted runner image.
pub const RUNNER: &str = "ubuntu-24.04";
/// Where the release workflow keeps the SBOM between jobs.
pub const SBOM_PATH: &str = "target/sbom.spdx.json";
/// knext's own image repository.
pub const KNEXT_IMAGE: &str = "ghcr.io/kn-next/knext";

/// The template sources, compiled in.
const TEMPLATES: [(&str, &str); 4] = [
    ("parts.j2", include_str!("../../templates/workflows/parts.j2")),
    (
        "release.yml.j2",
        include_str!("../../templates/workflows/release.yml.j2"),
    ),
    ("ci.yml.j2", include_str!("../../templates/workflows/ci.yml.j2")),
    (
        "knext-image.yml.j2",
        include_str!("../../templates/workflows/knext-image.yml.j2"),
    ),
];

/// Where an app repository keeps its copies of knext's pipeline scripts (`knext scaffold` writes
/// them; [`APP_SCRIPTS`]).
pub const APP_SCRIPTS_DIR: &str = ".knext";

/// The pipeline scripts an app's image workflow runs, by their path in the app repository (under
/// [`APP_SCRIPTS_DIR`]), as `knext scaffold` copies them: byte for byte the files knext's own
/// release runs from `scripts/`.
pub const APP_SCRIPTS: [(&str, &str); 5] = [
    (".knext/tools.sh", include_str!("../../scripts/tools.sh")),
    (
        ".knext/tools-requirements.txt",
        include_str!("../../scripts/tools-requirements.txt"),
    ),
    (
        ".knext/tools-requirements.lock",
        include_str!("../../scripts/tools-requirements.lock"),
    ),
    (".knext/sbom.sh", include_str!("../../scripts/sbom.sh")),
    (".knext/oci-sbom.sh", include_str!("../../scripts/oci-sbom.sh")),
];

/// What the shared image pipeline needs to know about one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePipeline {
    /// The directory of the pipeline scripts (`tools.sh`, `sbom.sh`, `oci-sbom.sh`) in the repository.
    pub scripts: &'static str,
    /// Said in the build job's name.
    pub build_what: &'static str,
    /// Debian/Ubuntu packages the build needs.
    pub build_packages: &'static str,
    /// Which of `tools.sh`'s tools the build needs (`all`, `python`, `cargo`; empty: none).
    pub build_tools: &'static str,
    /// Shell lines that build the OCI layout at `layout` (those tools are on `PATH`).
    pub build_run: Vec<&'static str>,
    /// The OCI image layout directory the build writes, holding one image.
    pub layout: &'static str,
    /// That image's tag in the layout.
    pub tag: &'static str,
    /// Extra SBOM checks after `sbom.sh validate`.
    pub sbom_checks: Vec<&'static str>,
    /// The tag the image is pushed under, beside its digest (inside double quotes in the script).
    pub push_tag: &'static str,
    /// The registry user and password (GitHub expressions) of the jobs that write to or read from it.
    pub registry_user: &'static str,
    /// See `registry_user`.
    pub registry_password: &'static str,
}

/// The pipeline of knext's own image: the auditable static binary in a reproducible layout.
pub fn knext_pipeline() -> ImagePipeline {
    ImagePipeline {
        scripts: "scripts",
        build_what: "auditable static binary, reproducible OCI layout",
        build_packages: "umoci musl-tools jq skopeo",
        build_tools: "cargo",
        build_run: vec!["scripts/operator-image.sh target/image"],
        layout: "target/image/oci",
        tag: "operator",
        sbom_checks: vec!["scripts/sbom.sh crates target/sbom.spdx.json"],
        push_tag: "$GITHUB_REF_NAME",
        registry_user: "${{ github.actor }}",
        registry_password: "${{ secrets.GITHUB_TOKEN }}",
    }
}

/// The pipeline of an app's image (`knext scaffold`): its Dockerfile built by buildah without a
/// Docker daemon (as root: the runner's user namespaces are not relied on), with the layers'
/// timestamps zeroed, into an OCI layout; the SBOM's npm packages checked against the lock.
pub fn app_pipeline() -> ImagePipeline {
    ImagePipeline {
        scripts: APP_SCRIPTS_DIR,
        build_what: "buildah, the repository's Dockerfile",
        build_packages: "buildah jq",
        build_tools: "",
        build_run: vec![
            "sudo buildah bud --storage-driver vfs --isolation chroot --timestamp 0 --tag knext-app --file Dockerfile .",
            "mkdir -p target/image",
            "sudo buildah push --storage-driver vfs --quiet knext-app oci:target/image/oci:app",
            "sudo chown -R \"$(id -u):$(id -g)\" target/image",
        ],
        layout: "target/image/oci",
        tag: "app",
        sbom_checks: vec![".knext/sbom.sh npm target/sbom.spdx.json package-lock.json"],
        push_tag: "git-$GITHUB_SHA",
        // ghcr.io takes the workflow's own token; another registry, the repository's settings.
        registry_user: "${{ vars.KNEXT_REGISTRY_USER || github.actor }}",
        registry_password: "${{ secrets.KNEXT_REGISTRY_PASSWORD || secrets.GITHUB_TOKEN }}",
    }
}

/// Renders an app's image workflow, `.github/workflows/knext-image.yml`, for the image repository
/// `image` (`ghcr.io/acme/shop`, no tag or digest): [`app_pipeline`] through the same templates as
/// knext's release, then the GitOps pull request.
pub fn app_workflow(image: &str) -> Result<String, String> {
    let env = environment()?;
    let ctx = minijinja::context! {
        knext_version => env!("CARGO_PKG_VERSION"),
        uses => uses(),
        runner => RUNNER,
        image => image,
        sbom => SBOM_PATH,
        cosign_version => COSIGN_VERSION,
        trivy_version => TRIVY_VERSION,
        pipeline => minijinja::value::Serde(app_pipeline()),
    };
    env.get_template("knext-image.yml.j2")
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("templates/workflows/knext-image.yml.j2: {e:#}"))
}

/// `uses.<key>` of the templates: each action's pinned `uses:` value.
fn uses() -> std::collections::BTreeMap<&'static str, String> {
    ACTIONS.iter().map(|a| (a.key, a.uses())).collect()
}

/// One rendered workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// File name under `.github/workflows/`.
    pub file: &'static str,
    /// The YAML.
    pub text: String,
}

/// Renders knext's workflows: `release.yml` and `ci.yml`.
pub fn workflows() -> Result<Vec<Workflow>, String> {
    let env = environment()?;
    let uses = uses();
    ["release.yml", "ci.yml"]
        .into_iter()
        .map(|file| {
            let source = format!("templates/workflows/{file}.j2");
            let ctx = minijinja::context! {
                header => layout::header(&source, layout::REGENERATE_BUILD),
                uses => uses.clone(),
                runner => RUNNER,
                image => KNEXT_IMAGE,
                sbom => SBOM_PATH,
                cosign_version => COSIGN_VERSION,
                trivy_version => TRIVY_VERSION,
                pipeline => minijinja::value::Serde(knext_pipeline()),
            };
            let text = env
                .get_template(&format!("{file}.j2"))
                .and_then(|t| t.render(ctx))
                .map_err(|e| format!("{source}: {e:#}"))?;
            Ok(Workflow { file, text })
        })
        .collect()
}

/// The workflow templates, loaded, with delimiters that leave GitHub's `${{ }}` and the shell's
/// `${#…}` and `[[ ]]` alone.
fn environment() -> Result<minijinja::Environment<'static>, String> {
    let mut env = super::template_environment(super::TemplateSyntax::Bracketed)?;
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| format!("templates/workflows/{name}: {e:#}"))?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// knext's workflows and, as `knext-image.yml`, an app's.
    fn rendered() -> Vec<Workflow> {
        let mut all = workflows().unwrap();
        all.push(Workflow {
            file: "knext-image.yml",
            text: app_workflow("ghcr.io/acme/shop").unwrap(),
        });
        all
    }

    fn yaml(w: &Workflow) -> serde_yaml::Value {
        serde_yaml::from_str(&w.text).unwrap_or_else(|e| panic!("{}: {e}", w.file))
    }

    fn is_sha(s: &str) -> bool {
        s.len() == 40
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn every_action_is_pinned_by_a_full_commit_sha_with_its_version() {
        for a in ACTIONS {
            assert!(
                is_sha(a.sha),
                "{}: {:?} is not a 40-hex commit SHA",
                a.repo,
                a.sha
            );
            assert!(a.version.starts_with('v'), "{}: version {:?}", a.repo, a.version);
        }
        for w in rendered() {
            let mut seen = 0;
            for (n, line) in w.text.lines().enumerate() {
                let Some(rest) = line.trim_start().trim_start_matches("- ").strip_prefix("uses:") else {
                    continue;
                };
                seen += 1;
                let at = |what: &str| format!("{}:{}: {what}: {line}", w.file, n + 1);
                let (action, comment) = rest
                    .trim()
                    .split_once(" # ")
                    .unwrap_or_else(|| panic!("{}", at("no version comment")));
                let (repo, sha) = action
                    .split_once('@')
                    .unwrap_or_else(|| panic!("{}", at("no @ref")));
                assert!(
                    is_sha(sha),
                    "{}",
                    at("not pinned by a 40-hex commit SHA (a tag or branch?)")
                );
                let pinned = ACTIONS
                    .iter()
                    .find(|a| a.repo == repo)
                    .unwrap_or_else(|| panic!("{}", at("not in ACTIONS")));
                assert_eq!(
                    (sha, comment),
                    (pinned.sha, pinned.version),
                    "{}",
                    at("differs from ACTIONS")
                );
            }
            assert!(seen > 0, "{}: no uses: lines", w.file);
            assert!(
                !w.text.contains("[=") && !w.text.contains("{%"),
                "{}: template syntax left",
                w.file
            );
        }
    }

    /// The jobs of knext's release and of an app's image workflow, in order, each needing the
    /// previous one; and least privilege: the workflow grants nothing, each job only what its step
    /// needs.
    #[test]
    fn image_workflows_chain_and_hold_least_privilege() {
        for (file, last) in [("release.yml", "repin"), ("knext-image.yml", "gitops")] {
            let w = rendered().into_iter().find(|w| w.file == file).unwrap();
            jobs_chain_and_hold_least_privilege(&w, last);
        }
    }

    fn jobs_chain_and_hold_least_privilege(w: &Workflow, last: &str) {
        let doc = yaml(w);
        assert_eq!(doc["permissions"], serde_yaml::Value::Mapping(Default::default()));
        let jobs = doc["jobs"].as_mapping().unwrap();
        let order: Vec<&str> = jobs.keys().map(|k| k.as_str().unwrap()).collect();
        assert_eq!(
            order,
            ["build", "sbom", "scan", "push", "sign", "attest", "verify", last],
            "{}",
            w.file
        );
        for pair in order.windows(2) {
            let needs = &jobs[pair[1]]["needs"];
            let list: Vec<&str> = match needs {
                serde_yaml::Value::String(s) => vec![s.as_str()],
                serde_yaml::Value::Sequence(s) => s.iter().map(|v| v.as_str().unwrap()).collect(),
                other => panic!("{}: needs {other:?}", pair[1]),
            };
            assert!(list.contains(&pair[0]), "{} does not need {}", pair[1], pair[0]);
        }
        let grants = |job: &str| -> Vec<(String, String)> {
            let perms = jobs[job]["permissions"]
                .as_mapping()
                .unwrap_or_else(|| panic!("{job}: no permissions"));
            perms
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.as_str().unwrap().to_owned()))
                .collect()
        };
        for job in &order {
            for (scope, level) in grants(job) {
                let allowed = match (scope.as_str(), level.as_str()) {
                    (_, "read") => true,
                    ("id-token", "write") => ["sign", "attest"].contains(job),
                    ("packages", "write") => ["push", "sign", "attest"].contains(job),
                    ("contents" | "pull-requests", "write") => *job == last,
                    _ => false,
                };
                assert!(allowed, "{}: job {job} holds {scope}: {level}", w.file);
            }
        }
        // The gate runs before anything is pushed, and fails on findings.
        let scan = serde_yaml::to_string(&jobs["scan"]).unwrap();
        for needle in ["severity: HIGH,CRITICAL", "exit-code: '1'", "scan-type: image"] {
            assert!(scan.contains(needle), "scan job lacks {needle}:\n{scan}");
        }
    }

    #[test]
    fn workflows_match_their_snapshots() {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| {
            for w in rendered() {
                insta::assert_snapshot!(format!("workflow_{}", w.file.trim_end_matches(".yml")), w.text);
            }
        });
    }

    /// The app's build runs the repository's Dockerfile with buildah, its SBOM is checked against
    /// the lock, and every script it runs is one `knext scaffold` copies into `.knext/`.
    #[test]
    fn the_app_workflow_runs_the_scaffolded_scripts() {
        let text = app_workflow("ghcr.io/acme/shop").unwrap();
        assert!(text.contains("buildah bud --storage-driver vfs --isolation chroot"));
        assert!(text.contains(".knext/sbom.sh npm target/sbom.spdx.json package-lock.json"));
        assert!(
            !text.contains("scripts/"),
            "a knext repository path in the app's workflow"
        );
        for word in text.split_whitespace() {
            let word = word.trim_start_matches("\"$(");
            if let Some(script) = word.strip_prefix(".knext/") {
                assert!(
                    APP_SCRIPTS
                        .iter()
                        .any(|(p, _)| p.strip_prefix(".knext/") == Some(script)),
                    "{word}: not among the scaffold's scripts"
                );
            }
        }
        assert!(text.contains("IMAGE: ghcr.io/acme/shop\n"));
    }

    /// `cargo build` keeps `.github/workflows/` current; this catches a checkout where it did not run.
    #[test]
    fn committed_workflows_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows");
        for w in workflows().unwrap() {
            let path = dir.join(w.file);
            let committed =
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == w.text,
                "{} is stale: run cargo build and commit",
                path.display()
            );
        }
    }
}
