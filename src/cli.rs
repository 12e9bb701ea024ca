//! The `knext` command line: argument parsing, reading inputs, printing diagnostics, exit codes.
//!
//! Exit codes: 0 success, 1 invalid input (a document that is not a valid NextApp), 2 usage, I/O or
//! YAML syntax errors. Diagnostics go to stderr as `file:line:column: error: path: message`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::pipeline::{self, Class, Source};
use crate::render::RenderOptions;
use crate::render::layout;

/// knext runs Next.js apps on Kubernetes with Knative: scale to zero, security on by default.
///
/// One NextApp resource (apps.kn-next.dev/v1alpha1) describes an app; knext renders it into a Knative
/// Service, a ServiceAccount and a NetworkPolicy.
#[derive(Debug, Parser)]
#[command(name = "knext", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render NextApp documents into Kubernetes manifests.
    ///
    /// Inputs are files, directories (walked recursively for *.yaml and *.yml, in sorted order) or `-`
    /// for stdin, each holding one or more NextApp documents. Without -o the manifests go to stdout as
    /// one multi-document YAML stream. With -o DIR they are written as a GitOps layout
    /// DIR/<namespace>/<app>/{knative-service,service-account,network-policy,kustomization}.yaml plus
    /// DIR/kustomization.yaml. Nothing is written unless every input is valid; files knext generated
    /// earlier for apps no longer in the input are removed, anything else in DIR is left alone. Files
    /// knext generated are skipped when walking directories, so DIR may live inside an input directory.
    Render {
        /// NextApp files, directories, or `-` for stdin.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Write a GitOps directory layout here instead of printing a stream.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Check NextApp documents with the same rules as render, and with the NextApp CRD's CEL admission
    /// rules as the API server would apply them; prints nothing on success.
    Validate {
        /// NextApp files, directories, or `-` for stdin.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of a NextApp document (for editors, e.g. yaml-language-server).
    Schema,
    /// Print the Next.js cache handler (CommonJS, no dependencies) that reads and writes the Redis
    /// layout `knext serve` invalidates. Save it beside next.config and set
    /// `cacheHandler: require.resolve('./cache-handler.cjs'), cacheMaxMemorySize: 0`.
    CacheHandler,
    /// Print the NextApp CustomResourceDefinition (apply with `kubectl apply --server-side -f -`).
    Crd,
    /// Run the operator: watch NextApps and reconcile each into its Knative Service, ServiceAccount
    /// and NetworkPolicy (server-side apply, field manager knext-operator), with a truthful status.
    ///
    /// Uses the in-cluster configuration, or the kubeconfig (KUBECONFIG, ~/.kube/config). Exits 1
    /// within 30 s if the API server does not answer or the NextApp CRD is not installed.
    #[cfg(feature = "operator")]
    Operator(crate::operator::Args),
    /// Run an app container's entrypoint: start the Next.js server (the command after `--`) on
    /// loopback and serve in front of it, with authenticated cache invalidation, the RUM beacon,
    /// metrics and a graceful, capped shutdown.
    ///
    /// Owned routes (never forwarded): POST /api/cache/invalidate (Bearer CACHE_INVALIDATE_TOKEN;
    /// refused when the token is unset), GET|DELETE /api/cache/events (DELETE authenticated), POST
    /// /api/rum. Everything else streams to the Next.js server. Environment: REDIS_URL,
    /// REDIS_USERNAME, REDIS_PASSWORD, REDIS_KEY_PREFIX, CACHE_INVALIDATE_TOKEN, KN_APP_NAME,
    /// KNEXT_SHUTDOWN_GRACE_MS (default 25000), KNEXT_CACHE_TIMEOUT_MS (default 1000).
    #[cfg(feature = "serve")]
    Serve(crate::serve::Args),
    /// Write the files a Next.js app needs to run under knext: a Dockerfile (digest-pinned bases, a
    /// final stage with no shell or package manager, non-root 1000:1000, `/knext serve` as the
    /// entrypoint), .dockerignore, cache-handler.cjs, next.config.mjs (only if the app has none),
    /// nextapp.yaml, and the image workflow .github/workflows/knext-image.yml (build, SBOM,
    /// vulnerability gate, push by digest, keyless signing and SBOM attestation, a GitOps pull
    /// request) with the scripts it runs in .knext/. Never overwrites a file without --force; prints
    /// what it wrote and what is left.
    Scaffold(crate::scaffold::Args),
    /// Print knext's install bundle: the NextApp CRD and the operator (Namespace with Pod Security
    /// Admission `restricted`, NetworkPolicy, PodDisruptionBudget, ServiceAccount, least-privilege RBAC,
    /// metrics Service, Deployment). Apply with `kubectl apply --server-side -f -`.
    ///
    /// The operator image must be digest-pinned: anything else is refused (exit 1) and nothing is
    /// printed.
    Install {
        /// Operator image, pinned by digest (`registry/repo@sha256:<64 hex>`). Defaults to the image
        /// this knext was built with.
        #[arg(long, env = "KNEXT_OPERATOR_IMAGE", value_name = "REF")]
        image: Option<String>,
        /// Namespace to install the operator into (the bundle creates it).
        #[arg(short = 'n', long, default_value = crate::api::operator::NAMESPACE, value_name = "NS")]
        namespace: String,
        /// Leave out the NextApp admin/editor/viewer ClusterRoles that aggregate into the built-in
        /// admin, edit and view roles.
        #[arg(long)]
        no_aggregated_roles: bool,
        #[command(flatten)]
        signature: SignatureArgs,
    },
    /// Sleep until SIGTERM or SIGINT, then exit 0: the process of the image-prewarm DaemonSet's
    /// container, which runs the app image idle (docs/cli.md).
    #[cfg(unix)]
    #[command(hide = true, name = crate::api::imgcache::PAUSE)]
    Pause,
    /// Copy this knext executable to DEST with mode 0555 (through a temporary file beside it and a
    /// rename): the image-prewarm DaemonSet's init container stages knext with it, as knext's image
    /// has no `cp`.
    #[cfg(unix)]
    #[command(hide = true, name = crate::api::imgcache::COPY_SELF)]
    CopySelf {
        /// Where to write the copy; its directory must exist.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
    },
}

/// The cluster-wide default of `spec.security.signature`: flags of `knext install`, which passes them
/// on to `knext operator` in the bundle's Deployment. The operator applies it to every NextApp without
/// a signature of its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SignatureArgs {
    /// Cluster-wide default signature for NextApps without `spec.security.signature`: the OIDC issuer
    /// of the signing certificate (an https URL). Needs --signature-subject or
    /// --signature-subject-regexp.
    #[arg(long = crate::api::operator::FLAG_SIGNATURE_ISSUER, value_name = "URL")]
    pub issuer: Option<String>,
    /// The exact certificate subject of the default signature.
    #[arg(long = crate::api::operator::FLAG_SIGNATURE_SUBJECT, value_name = "SUBJECT")]
    pub subject: Option<String>,
    /// A regular expression (RE2) the certificate subject of the default signature must match; anchor
    /// it with ^...$.
    #[arg(long = crate::api::operator::FLAG_SIGNATURE_SUBJECT_REGEXP, value_name = "REGEXP")]
    pub subject_regexp: Option<String>,
    /// The default signature also requires a signed SPDX SBOM attestation.
    #[arg(long = crate::api::operator::FLAG_SIGNATURE_REQUIRE_SBOM)]
    pub require_sbom_attestation: bool,
}

impl SignatureArgs {
    /// The default signature, `None` without flags; an error names the flags and what is wrong
    /// ([`crate::policy::signature::check`], the validator's own rules). Warnings (an unanchored
    /// regexp) are returned with it.
    pub fn spec(&self) -> Result<Option<(crate::api::SignatureSpec, Vec<String>)>, String> {
        use crate::api::operator::{
            FLAG_SIGNATURE_ISSUER, FLAG_SIGNATURE_REQUIRE_SBOM, FLAG_SIGNATURE_SUBJECT,
            FLAG_SIGNATURE_SUBJECT_REGEXP,
        };
        let Some(issuer) = &self.issuer else {
            if self.subject.is_some() || self.subject_regexp.is_some() || self.require_sbom_attestation {
                return Err(format!(
                    "--{FLAG_SIGNATURE_SUBJECT}, --{FLAG_SIGNATURE_SUBJECT_REGEXP} and \
                     --{FLAG_SIGNATURE_REQUIRE_SBOM} need --{FLAG_SIGNATURE_ISSUER}"
                ));
            }
            return Ok(None);
        };
        let spec = crate::api::SignatureSpec {
            issuer: issuer.clone(),
            subject: self.subject.clone(),
            subject_reg_exp: self.subject_regexp.clone(),
            require_sbom_attestation: self.require_sbom_attestation,
        };
        let flag = |field: &str| match field {
            "issuer" => FLAG_SIGNATURE_ISSUER,
            "subject" => FLAG_SIGNATURE_SUBJECT,
            "subjectRegExp" => FLAG_SIGNATURE_SUBJECT_REGEXP,
            _ => "signature-*",
        };
        let (warnings, errors): (Vec<_>, Vec<_>) = crate::policy::signature::check(&spec)
            .into_iter()
            .map(|f| (f.warning, format!("--{}: {}", flag(f.field), f.message)))
            .partition(|(warning, _)| *warning);
        if !errors.is_empty() {
            return Err(errors.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; "));
        }
        Ok(Some((spec, warnings.into_iter().map(|(_, m)| m).collect())))
    }
}

/// Runs the CLI and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Render { paths, output } => render(&paths, output.as_deref(), false),
        Command::Validate { paths } => render(&paths, None, true),
        Command::CacheHandler => match crate::render::cache_handler::cache_handler() {
            Ok(js) => print_stdout(&js),
            Err(e) => fail(&format!("knext: {e}")),
        },
        Command::Crd => match crate::yaml::emit::to_string(&crate::api::crd::nextapp_crd()) {
            Ok(yaml) => print_stdout(&(layout::header("the NextApp Rust types", "knext crd") + &yaml)),
            Err(e) => fail(&format!("knext: failed to write the CRD: {e}")),
        },
        #[cfg(feature = "operator")]
        Command::Operator(args) => crate::operator::main(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => crate::serve::main(args),
        Command::Install {
            image,
            namespace,
            no_aggregated_roles,
            signature,
        } => match signature.spec() {
            Err(e) => {
                eprintln!("knext install: {e}");
                ExitCode::from(2)
            }
            Ok(default_signature) => {
                for warning in default_signature.iter().flat_map(|(_, w)| w) {
                    eprintln!("knext install: warning: {warning}");
                }
                install(
                    image.as_deref().unwrap_or(crate::install::DEFAULT_OPERATOR_IMAGE),
                    &namespace,
                    !no_aggregated_roles,
                    default_signature.as_ref().map(|(s, _)| s),
                )
            }
        },
        Command::Scaffold(args) => scaffold(&args),
        #[cfg(unix)]
        Command::Pause => match crate::pause::pause() {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("knext pause: cannot wait for a signal: {e}")),
        },
        #[cfg(unix)]
        Command::CopySelf { dest } => match crate::pause::copy_self(&dest) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("knext copy-self: {}: {e}", dest.display())),
        },
        Command::Schema => match serde_json::to_string_pretty(&crate::api::schema::nextapp_json_schema()) {
            Ok(s) => print_stdout(&(s + "\n")),
            Err(e) => fail(&format!("knext: failed to serialize the schema: {e}")),
        },
    }
}

fn scaffold(args: &crate::scaffold::Args) -> ExitCode {
    use crate::scaffold::ScaffoldError;
    let result = crate::scaffold::options(args)
        .and_then(|opts| crate::scaffold::write(&args.dir, &opts, args.force).map(|r| (opts, r)));
    match result {
        Ok((opts, report)) => {
            let mut out = String::new();
            for path in &report.written {
                out.push_str(&format!("wrote {}\n", args.dir.join(path).display()));
            }
            match (report.next_config, &report.next_config_lines) {
                (Some(own), Some(lines)) => out.push_str(&format!(
                    "\nyour {own} is yours, left as it is: add these lines to it\n{lines}"
                )),
                (Some(own), None) => out.push_str(&format!(
                    "\nyour {own} is yours, left as it is: it has what knext needs\n"
                )),
                _ => {}
            }
            if let Some(root) = &report.repository_root {
                out.push_str(&format!(
                    "\nnote: {} is not the root of its git repository ({}): GitHub runs workflows only from\n\
                     \x20 the root's .github/workflows/, and knext-image.yml builds the root's Dockerfile. Move\n\
                     \x20 .github/workflows/knext-image.yml there and adjust its paths, or keep the app in a\n\
                     \x20 repository of its own\n",
                    args.dir.display(),
                    root.display()
                ));
            }
            out.push_str(&format!(
                "\nstill to do:\n\
                 \x20 - commit these files; on the next push to main, .github/workflows/knext-image.yml builds\n\
                 \x20   {image}, gates, pushes, signs and attests it, and opens a pull request setting\n\
                 \x20   nextapp.yaml's spec.image to the digest (until then `knext validate` refuses the\n\
                 \x20   all-zero placeholder, on purpose)\n\
                 \x20 - to send that pull request to a separate GitOps repository, set the repository variables\n\
                 \x20   KNEXT_GITOPS_REPOSITORY and KNEXT_GITOPS_PATH and the secret KNEXT_GITOPS_TOKEN\n\
                 \x20 - the workflow signs in to the registry with its own GITHUB_TOKEN, which ghcr.io takes (if the\n\
                 \x20   package exists already, give this repository's Actions write access to it); for another\n\
                 \x20   registry, set the variable KNEXT_REGISTRY_USER and the secret KNEXT_REGISTRY_PASSWORD\n\
                 \x20 - to enforce the signature at deploy time, set spec.security.signature (docs/security.md)\n",
                image = opts.image_repo
            ));
            print_stdout(&out)
        }
        Err(ScaffoldError::Usage(errors)) => {
            for e in errors {
                eprintln!("knext scaffold: {e}");
            }
            ExitCode::from(2)
        }
        Err(ScaffoldError::Io(e)) => {
            eprintln!("knext scaffold: {e}");
            ExitCode::from(2)
        }
    }
}

fn install(
    image: &str,
    namespace: &str,
    aggregated_roles: bool,
    default_signature: Option<&crate::api::SignatureSpec>,
) -> ExitCode {
    use crate::pipeline::InstallFailure;
    use crate::render::bundle::InstallOptions;
    let opts = InstallOptions {
        image,
        namespace,
        aggregated_roles,
        default_signature,
    };
    match pipeline::install_yaml(&opts, "<install bundle>", "knext install") {
        Ok(text) => print_stdout(&text),
        Err(InstallFailure::Options(e)) => fail(&format!("knext: {e}")),
        Err(InstallFailure::Unpinned(violations)) => {
            let mut stderr = std::io::stderr().lock();
            for v in &violations {
                let _ = writeln!(stderr, "{v}");
            }
            let _ = writeln!(
                stderr,
                "knext: the operator image must be digest-pinned; nothing was printed"
            );
            ExitCode::from(1)
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(2)
}

fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`knext render | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&format!("knext: cannot write to stdout: {e}")),
    }
}

fn render(paths: &[PathBuf], output: Option<&Path>, check_only: bool) -> ExitCode {
    let sources = match read_sources(paths) {
        Ok(s) => s,
        Err(message) => return fail(&message),
    };
    let opts = RenderOptions::default();
    let mut written: std::io::Result<()> = Ok(());
    let mut apps = Vec::new();
    // `validate` also proves that the API server's admission rules agree.
    let checks = pipeline::Checks {
        admission: check_only,
    };
    let diagnostics = if check_only {
        pipeline::render_each(&sources, &opts, checks, drop)
    } else if output.is_some() {
        pipeline::render_each(&sources, &opts, checks, |app| apps.push(app))
    } else {
        // Stream to stdout batch by batch; render_each calls the sink only once every input is valid.
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let mut started = false;
        let diagnostics = pipeline::render_each(&sources, &opts, checks, |app| {
            if !started {
                started = true;
                written = out.write_all(layout::stream_header().as_bytes());
            }
            if written.is_ok() {
                written = out.write_all(app.text.as_bytes());
            }
        });
        if written.is_ok() && pipeline::exit_code(&diagnostics) == 0 {
            written = out.flush();
        }
        diagnostics
    };

    let mut stderr = std::io::stderr().lock();
    for d in &diagnostics {
        let _ = writeln!(stderr, "{d}");
    }
    let code = pipeline::exit_code(&diagnostics);
    if code != 0 {
        let errors = diagnostics.iter().filter(|d| d.class != Class::Warning).count();
        let tail = if check_only { "" } else { "; nothing was written" };
        let _ = writeln!(stderr, "knext: {errors} error(s){tail}");
        return ExitCode::from(code);
    }
    if apps.is_empty() && !check_only && output.is_some() {
        let _ = writeln!(stderr, "knext: warning: the input holds no NextApp documents");
    }
    drop(stderr);
    match (written, output) {
        // A closed pipe (`knext render | head`) is not worth a message.
        (Err(e), _) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (Err(e), _) => fail(&format!("knext: cannot write to stdout: {e}")),
        (Ok(()), Some(dir)) if !check_only => {
            let files = layout::gitops_files(&apps, layout::REGENERATE_CLI);
            match crate::output::write_tree(dir, &files, layout::HEADER_PREFIX) {
                Ok(report) => {
                    eprintln!(
                        "knext: {} app(s) into {}: {} written, {} unchanged, {} removed",
                        apps.len(),
                        dir.display(),
                        report.written.len(),
                        report.unchanged.len(),
                        report.removed.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("knext: {e}")),
            }
        }
        (Ok(()), _) => ExitCode::SUCCESS,
    }
}

/// Reads every input: files as given, directories recursively (sorted; *.yaml and *.yml), `-` as stdin.
fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, String> {
    let mut sources = Vec::new();
    let mut stdin_used = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_used {
                return Err("knext: `-` (stdin) given more than once".into());
            }
            stdin_used = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("knext: cannot read stdin: {e}"))?;
            sources.push(Source {
                name: "<stdin>".into(),
                text,
            });
            continue;
        }
        sources.extend(pipeline::read_path(path).map_err(|e| format!("knext: {e}"))?);
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "operator")]
    #[test]
    fn the_operator_reads_back_the_default_signature_flags_the_bundle_writes() {
        for sig in [
            crate::api::SignatureSpec {
                issuer: "https://token.actions.githubusercontent.com".into(),
                subject: Some(
                    "https://github.com/acme/shop/.github/workflows/knext-image.yml@refs/heads/main".into(),
                ),
                subject_reg_exp: None,
                require_sbom_attestation: true,
            },
            crate::api::SignatureSpec {
                issuer: "https://accounts.google.com".into(),
                subject: None,
                subject_reg_exp: Some("^ci@acme\\.iam\\.gserviceaccount\\.com$".into()),
                require_sbom_attestation: false,
            },
        ] {
            let args = crate::render::bundle::signature_args(&sig);
            let cli =
                Cli::try_parse_from(["knext", "operator"].into_iter().map(String::from).chain(args)).unwrap();
            let Command::Operator(op) = cli.command else {
                panic!("not the operator command");
            };
            let (back, warnings) = op.signature.spec().unwrap().unwrap();
            assert_eq!(back, sig);
            assert!(warnings.is_empty(), "{warnings:?}");
        }
        let none = Cli::try_parse_from(["knext", "operator"]).unwrap();
        let Command::Operator(op) = none.command else {
            panic!("not the operator command");
        };
        assert_eq!(op.signature.spec(), Ok(None));
    }

    #[test]
    fn an_unanchored_default_regexp_is_a_warning_naming_its_flag() {
        let args = SignatureArgs {
            issuer: Some("https://i.example".into()),
            subject_regexp: Some("acme".into()),
            ..SignatureArgs::default()
        };
        let (_, warnings) = args.spec().unwrap().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("--signature-subject-regexp: \"acme\" is not anchored"),
            "{warnings:?}"
        );
    }
}
