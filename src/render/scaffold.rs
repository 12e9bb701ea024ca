//! What `knext scaffold` writes into a Next.js app repository, rendered from `templates/scaffold/`:
//! the image's `Dockerfile` and `.dockerignore`, the cache handler, a `next.config.mjs` for apps
//! without one, and the app's NextApp; the image workflow `.github/workflows/knext-image.yml`
//! ([`super::workflow::app_workflow`], the same templates as knext's own release) and the pipeline
//! scripts it runs, copied into `.knext/` ([`super::workflow::APP_SCRIPTS`]). Pure: the options in,
//! the files out; the CLI decides what to write (never over an existing file without `--force`).

use crate::policy::{image, names};

/// The official Node.js images `knext scaffold --node-version` chooses from, each pinned by the
/// index digest docker-library/repo-info recorded for its tag (`repos/node/remote/<tag>.md`):
/// `22-bookworm-slim` (Node 22.23.3) at commit 4211a1635d906d705a873434b7336b27c7678802 and
/// `24-bookworm-slim` (Node 24.21.0) at commit 3179cb4d576b9929bf86873c87f279ac67661c6e. Debian
/// (glibc) rather than Alpine: the Dockerfile's runtime stage copies node with the libraries `ldd`
/// names. To move to a newer patch release, read the new digest the same way.
pub const NODE_IMAGES: [(u32, &str); 2] = [
    (
        22,
        "node:22-bookworm-slim@sha256:43ac6c60b8f89723f746e8a92ce91abd5017e627ce1ddfe4238355d3a30b772c",
    ),
    (
        24,
        "node:24-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6",
    ),
];

/// The Node.js major version a scaffold uses unless told otherwise: the Active LTS line.
pub const DEFAULT_NODE_VERSION: u32 = 24;

/// The pinned official image of a Node.js major version, if knext knows one.
pub fn node_image(major: u32) -> Option<&'static str> {
    NODE_IMAGES
        .iter()
        .find(|(m, _)| *m == major)
        .map(|(_, image)| *image)
}

/// Inputs of a scaffold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaffoldOptions {
    /// The NextApp's name (a DNS-1035 label).
    pub name: String,
    /// Its namespace (a DNS-1123 label).
    pub namespace: String,
    /// The app image's repository, without tag or digest (`ghcr.io/acme/shop`).
    pub image_repo: String,
    /// knext's image, digest-pinned: the Dockerfile copies `/knext` from it.
    pub knext_image: String,
    /// The Node.js image, digest-pinned.
    pub node_image: String,
    /// The GitHub repository (`owner/repo`) whose `knext-image.yml` signs the image; `None` writes
    /// the NextApp's `spec.security.signature` commented out.
    pub github_repo: Option<String>,
}

/// The keyless identity `knext-image.yml` signs with, on `main` of `github_repo` (`owner/repo`), as a
/// `subjectRegExp`: case-insensitive, because GitHub's names are and the certificate spells them as
/// GitHub stores them, which package.json need not match.
pub fn workflow_identity_regexp(github_repo: &str) -> String {
    let escaped = regex::escape(github_repo);
    format!("(?i)^https://github\\.com/{escaped}/\\.github/workflows/knext-image\\.yml@refs/heads/main$")
}

/// One file of the scaffold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaffoldFile {
    /// Path relative to the app repository.
    pub path: &'static str,
    /// Contents.
    pub text: String,
    /// Written only when the app has no file of that kind yet (`next.config.*`).
    pub only_if_absent_kind: Option<&'static [&'static str]>,
    /// Written executable (mode 0755; 0644 otherwise).
    pub executable: bool,
}

/// The `next.config.*` names Next.js reads.
pub const NEXT_CONFIG_NAMES: &[&str] = &[
    "next.config.js",
    "next.config.mjs",
    "next.config.ts",
    "next.config.cjs",
];

/// The settings knext needs in `next.config.*`: a substring that shows one is there, and its line.
const NEXT_CONFIG_SETTINGS: [(&str, &str); 3] = [
    ("standalone", "output: 'standalone',"),
    (
        "cacheHandler",
        "cacheHandler: require.resolve('./cache-handler.cjs'),",
    ),
    ("cacheMaxMemorySize", "cacheMaxMemorySize: 0,"),
];

/// What an app's own `next.config.*` (named `file`, holding `text`) still needs, as lines to add to
/// its config object, or `None` when every setting is there. An ES module config (`.mjs`, `.ts`,
/// `.mts`, or `export default`) without `createRequire` gets the two lines that define `require`
/// first. A text search, not a parse: a setting spelt differently is reported as missing.
pub fn next_config_advice(file: &str, text: &str) -> Option<String> {
    let missing: Vec<&str> = NEXT_CONFIG_SETTINGS
        .iter()
        .filter(|(shows, _)| !text.contains(shows))
        .map(|(_, line)| *line)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let esm = [".mjs", ".ts", ".mts"].iter().any(|e| file.ends_with(e)) || text.contains("export default");
    let mut out = String::new();
    if esm && missing.iter().any(|l| l.contains("require.resolve")) && !text.contains("createRequire") {
        out.push_str(
            "// at the top of the file:\n\
             import { createRequire } from 'node:module';\n\
             const require = createRequire(import.meta.url);\n\
             // in the config object:\n",
        );
    }
    for line in missing {
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

const TEMPLATES: [(&str, &str); 4] = [
    (
        "Dockerfile",
        include_str!("../../templates/scaffold/Dockerfile.j2"),
    ),
    (
        ".dockerignore",
        include_str!("../../templates/scaffold/dockerignore.j2"),
    ),
    (
        "nextapp.yaml",
        include_str!("../../templates/scaffold/nextapp.yaml.j2"),
    ),
    (
        "next.config.mjs",
        include_str!("../../templates/scaffold/next.config.mjs.j2"),
    ),
];

/// Checks the options with knext's own rules; every problem, each naming its flag.
pub fn check(opts: &ScaffoldOptions) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if let Err(e) = names::check_dns1035_label(&opts.name) {
        errors.push(format!("--name {:?}: {e}", opts.name));
    }
    if let Err(e) = names::check_dns1123_label(&opts.namespace) {
        errors.push(format!("--namespace {:?}: {e}", opts.namespace));
    }
    match image::parse(&opts.image_repo) {
        Err(e) => errors.push(format!("--image-repo: {e}")),
        Ok(r) if r.tag.is_some() || r.digest.is_some() => errors.push(format!(
            "--image-repo {:?}: give the repository only (no tag or digest): the image workflow pins \
             the digest it pushes",
            opts.image_repo
        )),
        Ok(r) if r.domain.is_none() => errors.push(format!(
            "--image-repo {:?}: name the registry (ghcr.io/OWNER/APP): the workflow pushes there",
            opts.image_repo
        )),
        Ok(_) => {}
    }
    for (flag, value) in [
        ("--knext-image", &opts.knext_image),
        ("--node-image", &opts.node_image),
    ] {
        if let Err(e) = image::check_pinned(value) {
            errors.push(format!("{flag}: {e}"));
        }
    }
    if let Some(repo) = &opts.github_repo {
        let ok = repo.split_once('/').is_some_and(|(owner, name)| {
            let part =
                |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            part(owner) && part(name)
        });
        if !ok {
            errors.push(format!(
                "--github-repo {repo:?}: want OWNER/REPO, as in github.com/OWNER/REPO"
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Renders the scaffold's files, in a fixed order.
pub fn scaffold(opts: &ScaffoldOptions) -> Result<Vec<ScaffoldFile>, Vec<String>> {
    check(opts)?;
    let env = super::template_environment(super::TemplateSyntax::Bracketed).map_err(|e| vec![e])?;
    let ctx = minijinja::context! {
        knext_version => env!("CARGO_PKG_VERSION"),
        name => &opts.name,
        namespace => &opts.namespace,
        image_repo => &opts.image_repo,
        knext_image => &opts.knext_image,
        node_image => &opts.node_image,
        signer => opts.github_repo.as_deref(),
        signer_regexp => opts.github_repo.as_deref().map(workflow_identity_regexp),
    };
    let mut files = Vec::new();
    for (path, source) in TEMPLATES {
        let text = env
            .render_str(source, &ctx)
            .map_err(|e| vec![format!("templates/scaffold/{path}: {e:#}")])?;
        let only_if_absent_kind = (path == "next.config.mjs").then_some(NEXT_CONFIG_NAMES);
        files.push(ScaffoldFile {
            path,
            text,
            only_if_absent_kind,
            executable: false,
        });
    }
    let plain = |path, text| ScaffoldFile {
        path,
        text,
        only_if_absent_kind: None,
        executable: false,
    };
    files.push(plain(
        "cache-handler.cjs",
        super::cache_handler::cache_handler().map_err(|e| vec![e])?,
    ));
    files.push(plain(
        ".github/workflows/knext-image.yml",
        super::workflow::app_workflow(&opts.image_repo).map_err(|e| vec![e])?,
    ));
    for (path, text) in super::workflow::APP_SCRIPTS {
        files.push(ScaffoldFile {
            executable: path.ends_with(".sh"),
            ..plain(path, text.to_owned())
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ScaffoldOptions {
        ScaffoldOptions {
            name: "shop".into(),
            namespace: "web".into(),
            image_repo: "ghcr.io/acme/shop".into(),
            knext_image: "ghcr.io/kn-next/knext@sha256:f07fb9b075ad50940fa58ad126c57a93f66221edd548b3dcb3e133247c8f661d".into(),
            node_image: node_image(DEFAULT_NODE_VERSION).unwrap().into(),
            github_repo: Some("Acme/shop".into()),
        }
    }

    fn file<'a>(files: &'a [ScaffoldFile], path: &str) -> &'a str {
        &files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .text
    }

    #[test]
    fn every_base_image_of_the_dockerfile_is_digest_pinned() {
        let files = scaffold(&opts()).unwrap();
        let docker = file(&files, "Dockerfile");
        let args: Vec<&str> = docker.lines().filter(|l| l.starts_with("ARG ")).collect();
        assert_eq!(args.len(), 2, "{docker}");
        for arg in args {
            let (_, value) = arg.split_once('=').unwrap();
            image::check_pinned(value).unwrap_or_else(|e| panic!("{arg}: {e}"));
        }
        for from in docker.lines().filter(|l| l.starts_with("FROM ")) {
            let base = from.split_whitespace().nth(1).unwrap();
            assert!(
                base == "scratch" || base.starts_with("${"),
                "{from}: a base outside the pinned ARGs"
            );
        }
        assert!(docker.contains("USER 1000:1000"));
        assert!(docker.contains("ENTRYPOINT [\"/knext\", \"serve\", \"--\"]"));
        assert!(docker.contains("CMD [\"node\", \"server.js\"]"));
    }

    #[test]
    fn the_nextapp_validates_once_the_workflow_fills_in_the_digest() {
        let files = scaffold(&opts()).unwrap();
        let yaml = file(&files, "nextapp.yaml");
        let check = |text: &str| {
            let sources = [crate::pipeline::Source {
                name: "nextapp.yaml".into(),
                text: text.into(),
            }];
            crate::pipeline::render_each(
                &sources,
                &crate::render::RenderOptions::default(),
                crate::pipeline::Checks { admission: true },
                |_| {},
            )
            .into_iter()
            .filter(|d| d.class != crate::pipeline::Class::Warning)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
        };
        let before = check(yaml);
        assert!(!before.is_empty(), "the placeholder digest must not validate");
        let filled = yaml.replace(&"0".repeat(64), &"ab".repeat(32));
        assert_eq!(check(&filled), Vec::<String>::new());
        // It requires the workflow's signature, and renders the ClusterImagePolicy for it.
        assert!(yaml.contains("  security:\n    signature:\n"), "{yaml}");
        assert!(
            yaml.contains(r"subjectRegExp: '(?i)^https://github\.com/Acme/shop/\.github/workflows/knext-image\.yml@refs/heads/main$'"),
            "{yaml}"
        );
        // Without a GitHub repository the block is there, commented out, and the app still validates.
        let unsigned = scaffold(&ScaffoldOptions {
            github_repo: None,
            ..opts()
        })
        .unwrap();
        let yaml = file(&unsigned, "nextapp.yaml");
        assert!(yaml.contains("  # security:\n  #   signature:\n"), "{yaml}");
        assert_eq!(
            check(&yaml.replace(&"0".repeat(64), &"ab".repeat(32))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn bad_options_are_refused_naming_each_flag() {
        let bad = ScaffoldOptions {
            name: "Shop_1".into(),
            namespace: "-web".into(),
            image_repo: "ghcr.io/acme/shop:latest".into(),
            knext_image: "ghcr.io/kn-next/knext:latest".into(),
            node_image: "node:22".into(),
            github_repo: Some("acme/shop/extra".into()),
        };
        let errors = scaffold(&bad).unwrap_err();
        for flag in [
            "--name",
            "--namespace",
            "--image-repo",
            "--knext-image",
            "--node-image",
            "--github-repo",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(flag)),
                "{flag} not named: {errors:#?}"
            );
        }
        let unqualified = ScaffoldOptions {
            image_repo: "shop".into(),
            ..opts()
        };
        assert!(scaffold(&unqualified).unwrap_err()[0].contains("name the registry"));
    }

    #[test]
    fn an_apps_own_next_config_is_told_only_what_it_lacks() {
        let all = "module.exports = {\n  output: 'standalone',\n  cacheHandler: require.resolve('./cache-handler.cjs'),\n  cacheMaxMemorySize: 0,\n};\n";
        assert_eq!(next_config_advice("next.config.js", all), None);
        let cjs = next_config_advice("next.config.js", "module.exports = { output: 'standalone' };").unwrap();
        assert_eq!(
            cjs,
            "cacheHandler: require.resolve('./cache-handler.cjs'),\ncacheMaxMemorySize: 0,\n"
        );
        let esm = next_config_advice("next.config.ts", "export default { reactStrictMode: true };").unwrap();
        assert!(
            esm.starts_with("// at the top of the file:\nimport { createRequire }"),
            "{esm}"
        );
        assert!(esm.contains("output: 'standalone',\n"), "{esm}");
        // An ES module that already defines require, or that only lacks the memory setting, gets no
        // preamble.
        let with_require = "import { createRequire } from 'node:module';\nexport default {};";
        assert!(
            !next_config_advice("next.config.mjs", with_require)
                .unwrap()
                .contains("at the top")
        );
        let only_memory = "export default { output: 'standalone', cacheHandler: x };";
        assert_eq!(
            next_config_advice("next.config.mjs", only_memory).unwrap(),
            "cacheMaxMemorySize: 0,\n"
        );
        // The template's own next.config.mjs has everything.
        let files = scaffold(&opts()).unwrap();
        assert_eq!(
            next_config_advice("next.config.mjs", file(&files, "next.config.mjs")),
            None
        );
    }

    #[test]
    fn scaffold_matches_its_snapshots() {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| {
            for f in scaffold(&opts()).unwrap() {
                // generated/next/cache-handler.cjs is the cache handler's snapshot,
                // workflow_knext-image.snap the workflow's; the scripts are knext's own.
                if f.path == "cache-handler.cjs"
                    || f.path.starts_with(".github/")
                    || f.path.starts_with(".knext/")
                {
                    continue;
                }
                insta::assert_snapshot!(format!("scaffold_{}", f.path.trim_start_matches('.')), f.text);
            }
        });
    }
}
