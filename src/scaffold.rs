//! `knext scaffold [DIR]`: writes [`crate::render::scaffold`]'s files into a Next.js app repository.
//!
//! Defaults come from the app's `package.json`: the NextApp name from `name` (scope dropped, made a
//! DNS label), the image repository from a GitHub `repository` (`ghcr.io/<owner>/<repo>`). Nothing is
//! written unless every file can be: an existing file stops the whole scaffold unless `--force`; a
//! `next.config.*` of the app's own is never replaced (the lines to add are printed instead).

use std::path::{Path, PathBuf};

use crate::render::scaffold::{self, ScaffoldFile, ScaffoldOptions};

/// The command line of `knext scaffold`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Next.js app repository (with its package.json).
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The NextApp's name [default: package.json's name, as a DNS label].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The NextApp's namespace [default: the name].
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The app image's repository, without tag or digest [default: ghcr.io/OWNER/REPO from
    /// package.json's GitHub repository].
    #[arg(long, value_name = "REPO")]
    pub image_repo: Option<String>,
    /// knext's image, pinned by digest, which the Dockerfile copies /knext from [default: the image
    /// this knext was built with].
    #[arg(long, value_name = "REF")]
    pub knext_image: Option<String>,
    /// The Node.js major version (22 or 24): the official node:VERSION-bookworm-slim image, pinned
    /// by the digest knext knows for it.
    #[arg(long, value_name = "VERSION", default_value_t = scaffold::DEFAULT_NODE_VERSION)]
    pub node_version: u32,
    /// Another Node.js image (a mirror, an internal base), pinned by digest, built like the official
    /// one: node at /usr/local/bin/node, npm, /bin/sh with ldd, grep and GNU cp [overrides
    /// --node-version].
    #[arg(long, value_name = "REF")]
    pub node_image: Option<String>,
    /// The GitHub repository (OWNER/REPO) whose knext-image workflow signs the image: nextapp.yaml's
    /// spec.security.signature requires its identity [default: package.json's GitHub repository,
    /// else OWNER/REPO of a ghcr.io image repository; none: the block is written commented out].
    #[arg(long, value_name = "OWNER/REPO")]
    pub github_repo: Option<String>,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
}

/// Why a scaffold did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum ScaffoldError {
    /// Bad input (flags, package.json, existing files): exit 2.
    Usage(Vec<String>),
    /// Writing failed: exit 2.
    Io(String),
}

/// What a scaffold wrote, and what the user must still do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Files written, relative to the app directory.
    pub written: Vec<&'static str>,
    /// The app's own next.config, when it has one (the scaffold then writes none).
    pub next_config: Option<&'static str>,
    /// What that next.config lacks, as lines to add ([`scaffold::next_config_advice`]).
    pub next_config_lines: Option<String>,
    /// Set when the app directory is inside a git repository but not at its root: where the
    /// repository starts (GitHub runs workflows only from the root's `.github/workflows/`, and the
    /// image workflow builds from the root).
    pub repository_root: Option<PathBuf>,
}

/// Options from the flags, with package.json's defaults.
pub fn options(args: &Args) -> Result<ScaffoldOptions, ScaffoldError> {
    let package_path = args.dir.join("package.json");
    let package: serde_json::Value = std::fs::read_to_string(&package_path)
        .map_err(|e| {
            usage(format!(
                "{}: {e} (run knext scaffold in a Next.js app)",
                package_path.display()
            ))
        })
        .and_then(|text| {
            serde_json::from_str(&text).map_err(|e| {
                usage(format!(
                    "{}:{}:{}: {e}",
                    package_path.display(),
                    e.line(),
                    e.column()
                ))
            })
        })?;
    // The Dockerfile runs `npm ci` and `npm run build`.
    if !args.dir.join("package-lock.json").is_file() {
        let other = ["yarn.lock", "pnpm-lock.yaml", "bun.lock", "bun.lockb"]
            .into_iter()
            .find(|f| args.dir.join(f).exists());
        return Err(usage(match other {
            Some(lock) => format!(
                "{}: the scaffold's Dockerfile installs with npm ci, and this app has {lock}: switch it to npm \
                 (npm install writes package-lock.json) or write your own Dockerfile",
                args.dir.display()
            ),
            None => format!(
                "{}: no package-lock.json: the Dockerfile installs with npm ci; run npm install and commit the lock",
                args.dir.display()
            ),
        }));
    }
    if package
        .pointer("/scripts/build")
        .and_then(serde_json::Value::as_str)
        .is_none()
    {
        return Err(usage(format!(
            "{}: no \"scripts\": {{\"build\": …}}: the Dockerfile runs npm run build (usually \"next build\")",
            package_path.display()
        )));
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => package
            .get("name")
            .and_then(serde_json::Value::as_str)
            .map(dns_label)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                usage(format!(
                    "{}: no usable \"name\": pass --name",
                    package_path.display()
                ))
            })?,
    };
    let image_repo = match &args.image_repo {
        Some(r) => r.clone(),
        None => github_repo(&package).map(|(owner, repo)| format!("ghcr.io/{owner}/{repo}").to_ascii_lowercase()).ok_or_else(|| {
            usage(format!(
                "{}: no GitHub \"repository\" to derive the image from: pass --image-repo REGISTRY/OWNER/APP",
                package_path.display()
            ))
        })?,
    };
    let github = args
        .github_repo
        .clone()
        .or_else(|| github_repo(&package).map(|(owner, repo)| format!("{owner}/{repo}")))
        .or_else(|| {
            let rest = image_repo.strip_prefix("ghcr.io/")?;
            (rest.matches('/').count() == 1).then(|| rest.to_owned())
        });
    Ok(ScaffoldOptions {
        github_repo: github,
        namespace: args.namespace.clone().unwrap_or_else(|| name.clone()),
        name,
        image_repo,
        knext_image: args
            .knext_image
            .clone()
            .unwrap_or_else(|| crate::install::DEFAULT_OPERATOR_IMAGE.to_owned()),
        node_image: match &args.node_image {
            Some(image) => image.clone(),
            None => scaffold::node_image(args.node_version)
                .ok_or_else(|| {
                    let known: Vec<String> =
                        scaffold::NODE_IMAGES.iter().map(|(m, _)| m.to_string()).collect();
                    usage(format!(
                        "--node-version {}: knext pins images for Node.js {} only (or pass --node-image REF@sha256:…)",
                        args.node_version,
                        known.join(" and ")
                    ))
                })?
                .to_owned(),
        },
    })
}

/// Renders and writes the scaffold into `dir`; all or nothing (up to I/O failures mid-way, which are
/// reported with the files already written).
pub fn write(dir: &Path, opts: &ScaffoldOptions, force: bool) -> Result<Report, ScaffoldError> {
    let files = scaffold::scaffold(opts).map_err(ScaffoldError::Usage)?;
    let mut report = Report {
        repository_root: repository_root(dir),
        ..Report::default()
    };
    let mut plan: Vec<&ScaffoldFile> = Vec::new();
    let mut conflicts = Vec::new();
    for f in &files {
        if let Some(own) = f
            .only_if_absent_kind
            .and_then(|kinds| kinds.iter().find(|k| dir.join(k).exists()))
        {
            let path = dir.join(own);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ScaffoldError::Io(format!("{}: {e}", path.display())))?;
            report.next_config = Some(own);
            report.next_config_lines = scaffold::next_config_advice(own, &text);
            continue;
        }
        if dir.join(f.path).exists() && !force {
            conflicts.push(format!(
                "{}: exists (pass --force to overwrite it)",
                dir.join(f.path).display()
            ));
        }
        plan.push(f);
    }
    if !conflicts.is_empty() {
        conflicts.push("nothing was written".to_owned());
        return Err(ScaffoldError::Usage(conflicts));
    }
    for f in plan {
        let path = dir.join(f.path);
        let tmp = path.with_extension("knext-tmp");
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, &f.text))
            .and_then(|()| set_mode(&tmp, f.executable))
            .and_then(|()| std::fs::rename(&tmp, &path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ScaffoldError::Io(format!(
                "{}: {e} (written before it: {:?})",
                path.display(),
                report.written
            ))
        })?;
        report.written.push(f.path);
    }
    Ok(report)
}

/// The root of the git repository `dir` lies in, when that is not `dir` itself.
fn repository_root(dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    if dir.join(".git").exists() {
        return None;
    }
    dir.ancestors()
        .skip(1)
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
}

/// 0755 for the scripts, 0644 for the rest (whatever the umask would have made them).
fn set_mode(path: &Path, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn usage(message: String) -> ScaffoldError {
    ScaffoldError::Usage(vec![message])
}

/// A package name as a DNS-1035 label: scope dropped, lowercase, other characters as `-`, trimmed
/// to 63 characters, starting with a letter.
fn dns_label(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let mut out: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    let mut out: String = out.chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// `(owner, repo)`, as written, from package.json's `repository` when it names GitHub.
fn github_repo(package: &serde_json::Value) -> Option<(String, String)> {
    let repo = package.get("repository")?;
    let url = repo.as_str().or_else(|| repo.get("url")?.as_str())?;
    let rest = url
        .strip_prefix("github:")
        .or_else(|| url.split_once("github.com/").map(|(_, r)| r))
        .or_else(|| url.split_once("github.com:").map(|(_, r)| r))
        .or_else(|| (!url.contains(':') && url.matches('/').count() == 1).then_some(url))?;
    let (owner, repo) = rest.split_once('/')?;
    let repo = repo.trim_end_matches('/').trim_end_matches(".git");
    (!owner.is_empty() && !repo.is_empty() && !repo.contains('/'))
        .then(|| (owner.to_owned(), repo.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path) -> Args {
        Args {
            dir: dir.to_owned(),
            name: None,
            namespace: None,
            image_repo: None,
            knext_image: None,
            node_version: scaffold::DEFAULT_NODE_VERSION,
            node_image: None,
            github_repo: None,
            force: false,
        }
    }

    #[test]
    fn names_and_repositories_from_package_json() {
        assert_eq!(dns_label("@acme/Shop_Front"), "shop-front");
        assert_eq!(dns_label("123-app"), "app");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
        for (repository, want) in [
            (serde_json::json!("github:Acme/Shop"), Some(("Acme", "Shop"))),
            (serde_json::json!("acme/shop"), Some(("acme", "shop"))),
            (
                serde_json::json!({"type": "git", "url": "git+https://github.com/Acme/Shop.git"}),
                Some(("Acme", "Shop")),
            ),
            (
                serde_json::json!({"url": "git@github.com:acme/shop.git"}),
                Some(("acme", "shop")),
            ),
            (serde_json::json!("https://gitlab.com/acme/shop"), None),
        ] {
            let got = github_repo(&serde_json::json!({ "repository": repository }));
            assert_eq!(
                got,
                want.map(|(o, r)| (o.to_owned(), r.to_owned())),
                "{repository}"
            );
        }
    }

    #[test]
    fn writes_everything_once_and_never_over_a_file_without_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"name":"@acme/shop","repository":"github:acme/shop","scripts":{"build":"next build"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("package-lock.json"), "{}").unwrap();
        let opts = options(&args(dir.path())).unwrap();
        assert_eq!(
            (
                opts.name.as_str(),
                opts.namespace.as_str(),
                opts.image_repo.as_str()
            ),
            ("shop", "shop", "ghcr.io/acme/shop")
        );
        let report = write(dir.path(), &opts, false).unwrap();
        assert_eq!(
            report.written,
            [
                "Dockerfile",
                ".dockerignore",
                "nextapp.yaml",
                "next.config.mjs",
                "cache-handler.cjs",
                ".github/workflows/knext-image.yml",
                ".knext/tools.sh",
                ".knext/tools-requirements.txt",
                ".knext/tools-requirements.lock",
                ".knext/sbom.sh",
                ".knext/oci-sbom.sh",
            ]
        );
        assert_eq!((report.next_config, report.next_config_lines), (None, None));
        // The pipeline's scripts are knext's own, byte for byte, and executable.
        use std::os::unix::fs::PermissionsExt;
        for (path, source) in [
            (".knext/sbom.sh", "scripts/sbom.sh"),
            (
                ".knext/tools-requirements.lock",
                "scripts/tools-requirements.lock",
            ),
        ] {
            let ours = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(source)).unwrap();
            assert_eq!(std::fs::read(dir.path().join(path)).unwrap(), ours, "{path}");
        }
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode(".knext/sbom.sh"), mode("Dockerfile")), (0o755, 0o644));

        // Again: every existing file is named (next.config.mjs now counts as the app's own, so it
        // is left alone rather than a conflict), and nothing changes.
        std::fs::write(dir.path().join("Dockerfile"), "mine").unwrap();
        let Err(ScaffoldError::Usage(errors)) = write(dir.path(), &opts, false) else {
            panic!("overwrote without --force")
        };
        assert_eq!(errors.len(), 10 + 1, "{errors:#?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
            "mine"
        );

        // Inside a repository but not at its root: said.
        assert_eq!(report.repository_root, None);
        let sub = dir.path().join("apps/shop");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        assert_eq!(repository_root(&sub), Some(dir.path().canonicalize().unwrap()));
        assert_eq!(repository_root(dir.path()), None);

        // --force rewrites them, but the app's own next.config stays.
        std::fs::remove_file(dir.path().join("next.config.mjs")).unwrap();
        std::fs::write(dir.path().join("next.config.ts"), "export default {}").unwrap();
        let report = write(dir.path(), &opts, true).unwrap();
        assert!(!report.written.contains(&"next.config.mjs"));
        assert_eq!(report.next_config, Some("next.config.ts"));
        assert!(
            report
                .next_config_lines
                .unwrap()
                .contains("import { createRequire }")
        );
        assert_ne!(
            std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("next.config.ts")).unwrap(),
            "export default {}"
        );
    }

    #[test]
    fn without_package_json_lock_build_or_repository_it_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let error = |dir: &Path| match options(&args(dir)) {
            Err(ScaffoldError::Usage(e)) => e.join("\n"),
            other => panic!("{other:?}"),
        };
        assert!(error(dir.path()).contains("package.json"));
        let package = |json: &str| std::fs::write(dir.path().join("package.json"), json).unwrap();
        package(r#"{"name":"shop","scripts":{"build":"next build"}}"#);
        assert!(error(dir.path()).contains("no package-lock.json"));
        std::fs::write(dir.path().join("pnpm-lock.yaml"), "").unwrap();
        assert!(error(dir.path()).contains("this app has pnpm-lock.yaml"));
        std::fs::write(dir.path().join("package-lock.json"), "{}").unwrap();
        assert!(error(dir.path()).contains("--image-repo"));
        package(r#"{"name":"shop","repository":"github:acme/shop"}"#);
        assert!(error(dir.path()).contains("npm run build"));
        package("{\n  \"name\": ,\n}");
        assert!(error(dir.path()).contains("package.json:2:"));
        package(r#"{"name":"shop","repository":"github:acme/shop","scripts":{"build":"next build"}}"#);
        let unknown_node = Args {
            node_version: 18,
            ..args(dir.path())
        };
        let Err(ScaffoldError::Usage(e)) = options(&unknown_node) else {
            panic!()
        };
        assert!(e[0].contains("Node.js 22 and 24 only"), "{e:?}");
        assert_eq!(
            options(&args(dir.path())).unwrap().node_image,
            scaffold::NODE_IMAGES[1].1
        );
    }
}
