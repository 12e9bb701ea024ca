//! `spec.security.signature`: the keyless identity an app's image must be signed by, and the image
//! globs of the Sigstore policy-controller `ClusterImagePolicy` that enforces it.
//!
//! Shared with `build.rs`; pure, no I/O. The globs come from the app's `spec.image` through the one
//! image-reference parser ([`super::image::check_pinned`]), qualified the way policy-controller
//! qualifies the image it matches: it matches globs against go-containerregistry's `Name()` of the
//! pod's image, which is `<registry>/<repository>@sha256:<hex>` (any tag dropped), with Docker Hub
//! written `index.docker.io` and its one-component names under `library/`. In a glob `*` matches any
//! run of characters but `/`, and `**` any run at all. knext renders two globs per repository,
//! `<registry>/<repository>@*` and `<registry>/<repository>:*`, which cover that repository's images
//! by digest and by tag and nothing else: not `<repository>-other`, not `<repository>/sub`.
//!
//! A glob that is not of that shape would also match other teams' images and make every one of them
//! need this app's signer ([`check_glob`], the last check of [`repository`]). The parser already keeps
//! `*` out of names, so the check is a guard against a future change of either side, tested on its own.

use crate::api::SignatureSpec;

/// The registry go-containerregistry (and so policy-controller) writes for Docker Hub.
pub const DOCKER_HUB: &str = "index.docker.io";

/// The repository of a validated image, as policy-controller names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repository<'a> {
    registry: &'a str,
    library: bool,
    path: &'a str,
}

impl Repository<'_> {
    /// `<registry>/<repository>`, e.g. `ghcr.io/acme/shop` or `index.docker.io/library/nginx`.
    pub fn name(&self) -> String {
        let library = if self.library { "library/" } else { "" };
        format!("{}/{library}{}", self.registry, self.path)
    }

    /// The policy's image globs: the repository by digest, then by tag.
    pub fn globs(&self) -> [String; 2] {
        let name = self.name();
        [format!("{name}@*"), format!("{name}:*")]
    }
}

/// The repository of `image` as policy-controller names it, or why no policy can cover exactly it.
/// Expects an image `spec.image` validation accepted (other input is an error, never a panic).
pub fn repository(image: &str) -> Result<Repository<'_>, String> {
    let r = super::image::check_pinned(image).map_err(|e| e.to_string())?;
    let (registry, library) = match r.domain {
        None | Some("docker.io") | Some(DOCKER_HUB) => (DOCKER_HUB, !r.path.contains('/')),
        Some(domain) if domain.starts_with('[') => {
            return Err(format!(
                "the registry {domain} is a bracketed IPv6 address, which a policy-controller image glob \
                 cannot express; use a host name for the registry"
            ));
        }
        // NB: docker (and knext's parser) read a first component `localhost` or one with an uppercase
        // letter as a registry; go-containerregistry reads it as a Docker Hub path, so a policy
        // would cover `index.docker.io/<image>` and not the image the kubelet pulls.
        Some(domain) if !domain.contains(['.', ':']) => {
            return Err(format!(
                "policy-controller reads the registry {domain:?} as part of a Docker Hub repository name \
                 (a registry needs a '.' or a ':port' for it), so its policy would not cover this image; \
                 write the registry with its port (e.g. {domain}:5000) or its full host name"
            ));
        }
        Some(domain) => (domain, false),
    };
    let repository = Repository {
        registry,
        library,
        path: r.path,
    };
    // go-containerregistry refuses repository names shorter than 2 characters: no glob matches them.
    if r.path.len() < 2 && !library {
        return Err(format!(
            "policy-controller refuses the one-character repository name {:?}, so no policy can cover it",
            r.path
        ));
    }
    for glob in repository.globs() {
        check_glob(&glob)?;
    }
    Ok(repository)
}

/// Checks that `glob` is valid in policy-controller's glob language and covers one repository only:
/// a literal registry and repository path, then `@*` or `:*`. Anything else, such as `**`, `*/*`,
/// `ghcr.io/**`, `ghcr.io/*/app@*` or `ghcr.io/acme/app*`, would match other repositories' images
/// (all of them, for `**`).
pub fn check_glob(glob: &str) -> Result<(), String> {
    // policy-controller's own charset: ^[a-zA-Z0-9-_:\/\*\.@]+$
    if glob.is_empty()
        || !glob
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:/*.@".contains(&b))
    {
        return Err(format!(
            "the image glob {glob:?} has characters policy-controller does not accept"
        ));
    }
    let broad = || {
        format!(
            "the image glob {glob:?} would match images of other repositories (with \"**\" every image), \
             making all of them need this app's signer; a glob must name one registry and repository"
        )
    };
    let Some(literal) = glob.strip_suffix("@*").or_else(|| glob.strip_suffix(":*")) else {
        return Err(broad());
    };
    let Some((registry, path)) = literal.split_once('/') else {
        return Err(broad());
    };
    let literal_part = |s: &str| !s.is_empty() && !s.contains('*');
    let path_ok = path.split('/').all(|c| {
        literal_part(c)
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    });
    if !literal_part(registry) || !path_ok || literal.contains('@') {
        return Err(broad());
    }
    Ok(())
}

/// One problem with a signature spec: the field (relative to `spec.security.signature`, empty for
/// the object itself), the message and whether it is only a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Field under `signature` (`issuer`, `subjectRegExp`, …), or empty.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
    /// A warning ([`crate::api::reasons::UNANCHORED_REGEXP`]) rather than an error.
    pub warning: bool,
}

/// Checks a signature spec on its own (the image is checked by [`repository`]): issuer, subject or
/// subject regexp.
pub fn check(sig: &SignatureSpec) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut error = |field, message: String| {
        out.push(Finding {
            field,
            message,
            warning: false,
        })
    };
    if let Err(message) = check_issuer(&sig.issuer) {
        error("issuer", message);
    }
    let subject = sig.subject.as_deref();
    let regexp = sig.subject_reg_exp.as_deref();
    match (subject, regexp) {
        (Some(_), Some(_)) => error(
            "",
            String::from(
                "set exactly one of subject and subjectRegExp, not both (policy-controller refuses both)",
            ),
        ),
        (None, None) => error(
            "",
            String::from(
                "set subject (the exact signing identity, e.g. https://github.com/<owner>/<repo>/.github/\
                 workflows/knext-image.yml@refs/heads/main) or subjectRegExp",
            ),
        ),
        (Some(""), None) => error(
            "subject",
            String::from("is empty; set the exact signing identity"),
        ),
        (None, Some("")) => error(
            "subjectRegExp",
            String::from("is empty; it would match every subject"),
        ),
        (Some(s), None) if s.chars().any(|c| c.is_whitespace() || c.is_control()) => error(
            "subject",
            format!("{s:?} contains whitespace or control characters"),
        ),
        (None, Some(re)) => match regex::Regex::new(re) {
            Err(e) => error(
                "subjectRegExp",
                format!("{re:?} is not a valid regular expression: {}", regex_error(&e)),
            ),
            Ok(_) if let Some(what) = go_incompatible(re) => error(
                "subjectRegExp",
                format!(
                    "{re:?} uses {what}, which Rust's regex accepts but Go's regexp (policy-controller's) \
                     refuses; write it in RE2 syntax"
                ),
            ),
            Ok(_) if !(without_flags(re).starts_with('^') && re.ends_with('$')) => out.push(Finding {
                field: "subjectRegExp",
                message: format!(
                    "{re:?} is not anchored: policy-controller accepts any subject containing a match, so \
                     a longer subject (another repository, workflow or branch) can match too; write \
                     ^...$"
                ),
                warning: true,
            }),
            Ok(_) => {}
        },
        (Some(_), None) => {}
    }
    out
}

/// The issuer must be an https URL with a host and nothing secret or odd in it: policy-controller
/// compares it exactly with the certificate's issuer.
fn check_issuer(issuer: &str) -> Result<(), String> {
    if issuer.is_empty() {
        return Err(String::from(
            "is required: the OIDC issuer of the signing certificate, e.g. \
             https://token.actions.githubusercontent.com",
        ));
    }
    if issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{issuer:?} contains whitespace or control characters"));
    }
    let Some(rest) = issuer.strip_prefix("https://") else {
        return Err(format!(
            "{issuer:?} must be an https URL, e.g. https://token.actions.githubusercontent.com"
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{issuer:?} has no host"));
    }
    if host.contains('@') {
        return Err(format!("{issuer:?} must not carry credentials"));
    }
    Ok(())
}

/// What in `re` (which Rust's regex compiles) Go's `regexp` refuses, if anything: the syntax the regex
/// crate has beyond RE2's.
fn go_incompatible(re: &str) -> Option<&'static str> {
    use regex_syntax::ast::{
        self, AssertionKind, Ast, ClassSetItem, Flag, FlagsItemKind, GroupKind, HexLiteralKind, LiteralKind,
    };
    fn flags(f: &ast::Flags) -> Option<&'static str> {
        f.items
            .iter()
            .any(|i| {
                matches!(
                    i.kind,
                    FlagsItemKind::Flag(Flag::IgnoreWhitespace | Flag::Unicode | Flag::CRLF)
                )
            })
            .then_some("the flags x, u or R (Go knows i, m, s and U)")
    }
    fn literal(l: &ast::Literal) -> Option<&'static str> {
        let unicode = |k: &HexLiteralKind| !matches!(k, HexLiteralKind::X);
        match &l.kind {
            LiteralKind::HexFixed(k) | LiteralKind::HexBrace(k) if unicode(k) => {
                Some("a \\u or \\U escape (Go knows \\x{...})")
            }
            _ => None,
        }
    }
    struct Finder(Option<&'static str>);
    impl ast::Visitor for Finder {
        type Output = Option<&'static str>;
        type Err = ();
        fn finish(self) -> Result<Self::Output, ()> {
            Ok(self.0)
        }
        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
            let found = match ast {
                Ast::Assertion(a) => (!matches!(
                    a.kind,
                    AssertionKind::StartLine
                        | AssertionKind::EndLine
                        | AssertionKind::StartText
                        | AssertionKind::EndText
                        | AssertionKind::WordBoundary
                        | AssertionKind::NotWordBoundary
                ))
                .then_some("a word-boundary assertion other than \\b and \\B (\\<, \\>, \\b{start}, ...)"),
                Ast::Flags(f) => flags(&f.flags),
                Ast::Group(g) => match &g.kind {
                    GroupKind::NonCapturing(f) => flags(f),
                    _ => None,
                },
                Ast::Literal(l) => literal(l),
                _ => None,
            };
            self.0 = self.0.or(found);
            Ok(())
        }
        fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), ()> {
            let found = match item {
                ClassSetItem::Bracketed(_) => Some("a nested character class"),
                ClassSetItem::Literal(l) => literal(l),
                _ => None,
            };
            self.0 = self.0.or(found);
            Ok(())
        }
        fn visit_class_set_binary_op_in(&mut self, _: &ast::ClassSetBinaryOp) -> Result<(), ()> {
            self.0 = self.0.or(Some("a character class operation (&&, -- or ~~)"));
            Ok(())
        }
    }
    let ast = ast::parse::Parser::new().parse(re).ok()?;
    ast::visit(&ast, Finder(None)).ok().flatten()
}

/// The regex crate's multi-line error (pattern, caret, `error: …`) as its `error:` line.
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or(text.lines().next().unwrap_or_default())
        .to_owned()
}

/// `re` without a leading flag group such as `(?i)`, which comes before the `^` of an anchored
/// expression.
fn without_flags(re: &str) -> &str {
    re.strip_prefix("(?")
        .and_then(|rest| rest.split_once(')'))
        .filter(|(flags, _)| !flags.is_empty() && flags.chars().all(|c| c.is_ascii_alphabetic() || c == '-'))
        .map_or(re, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn globs(image: &str) -> Result<[String; 2], String> {
        repository(image).map(|r| r.globs())
    }

    #[test]
    fn globs_name_the_repository_as_policy_controller_qualifies_it() {
        for (image, name) in [
            ("ghcr.io/acme/shop", "ghcr.io/acme/shop"),
            ("ghcr.io/acme/shop:1.2", "ghcr.io/acme/shop"),
            (
                "registry.example.com:5000/team/web/app",
                "registry.example.com:5000/team/web/app",
            ),
            ("localhost:5000/app", "localhost:5000/app"),
            ("nginx", "index.docker.io/library/nginx"),
            ("docker.io/nginx", "index.docker.io/library/nginx"),
            ("index.docker.io/nginx", "index.docker.io/library/nginx"),
            ("acme/shop", "index.docker.io/acme/shop"),
            ("docker.io/acme/shop", "index.docker.io/acme/shop"),
            ("ghcr.io/acme/my.app__x-y", "ghcr.io/acme/my.app__x-y"),
        ] {
            let got = globs(&format!("{image}@sha256:{HEX}")).unwrap();
            assert_eq!(got, [format!("{name}@*"), format!("{name}:*")], "{image}");
        }
    }

    #[test]
    fn a_registry_policy_controller_would_read_differently_is_an_error() {
        for image in [
            "localhost/app",
            "MyRegistry/app",
            "[::1]:5000/app",
            "[fe80::1]/app",
        ] {
            let err = globs(&format!("{image}@sha256:{HEX}")).unwrap_err();
            assert!(err.contains("registry"), "{image}: {err}");
        }
        let err = globs(&format!("ghcr.io/a@sha256:{HEX}")).unwrap_err();
        assert!(err.contains("one-character"), "{err}");
        // Docker Hub's one-character names become library/<name>, which is long enough.
        assert!(globs(&format!("a@sha256:{HEX}")).is_ok());
    }

    #[test]
    fn an_invalid_image_is_an_error_not_a_panic() {
        for image in [
            "",
            "ghcr.io/acme/shop:1.0",
            "ghcr.io/Acme/shop@sha256:00",
            "**",
            "*/*@sha256:x",
        ] {
            assert!(repository(image).is_err(), "{image}");
        }
    }

    #[test]
    fn globs_that_would_match_other_repositories_are_refused() {
        for glob in [
            "**",
            "*",
            "*/*",
            "*/**",
            "ghcr.io/**",
            "ghcr.io/*",
            "ghcr.io/*@*",
            "ghcr.io/*/shop@*",
            "*/acme/shop@*",
            "ghcr.io/acme/shop*",
            "ghcr.io/acme/shop**",
            "ghcr.io/acme/shop@**",
            "ghcr.io/acme/shop:**",
            "ghcr.io/acme//shop@*",
            "ghcr.io/acme/shop/@*",
            "/acme/shop@*",
            "ghcr.io@*",
            "ghcr.io/acme/shop",
            "ghcr.io/acme@x/shop@*",
            "ghcr.io/[a-z]+/shop@*",
            "",
        ] {
            assert!(check_glob(glob).is_err(), "{glob:?} was accepted");
        }
        for glob in [
            "ghcr.io/acme/shop@*",
            "ghcr.io/acme/shop:*",
            "index.docker.io/library/nginx@*",
        ] {
            assert_eq!(check_glob(glob), Ok(()), "{glob}");
        }
    }

    fn sig(issuer: &str, subject: Option<&str>, regexp: Option<&str>) -> SignatureSpec {
        SignatureSpec {
            issuer: issuer.into(),
            subject: subject.map(Into::into),
            subject_reg_exp: regexp.map(Into::into),
            require_sbom_attestation: false,
        }
    }

    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    const SUBJECT: &str = "https://github.com/acme/shop/.github/workflows/knext-image.yml@refs/heads/main";

    fn fields(f: &[Finding]) -> Vec<(&'static str, bool)> {
        f.iter().map(|f| (f.field, f.warning)).collect()
    }

    #[test]
    fn a_well_formed_identity_has_no_findings() {
        assert_eq!(check(&sig(GITHUB, Some(SUBJECT), None)), vec![]);
        let anchored =
            "^https://github\\.com/acme/shop/\\.github/workflows/knext-image\\.yml@refs/heads/main$";
        assert_eq!(check(&sig(GITHUB, None, Some(anchored))), vec![]);
    }

    #[test]
    fn issuer_problems_are_errors() {
        for (issuer, says) in [
            ("", "is required"),
            (
                "http://token.actions.githubusercontent.com",
                "must be an https URL",
            ),
            ("token.actions.githubusercontent.com", "must be an https URL"),
            ("https://", "has no host"),
            ("https://u:p@issuer.example", "credentials"),
            ("https://issuer.example ", "whitespace"),
        ] {
            let f = check(&sig(issuer, Some(SUBJECT), None));
            assert_eq!(fields(&f), vec![("issuer", false)], "{issuer}");
            assert!(f[0].message.contains(says), "{issuer}: {}", f[0].message);
        }
    }

    #[test]
    fn exactly_one_of_subject_and_subject_regexp() {
        assert_eq!(fields(&check(&sig(GITHUB, None, None))), vec![("", false)]);
        assert_eq!(
            fields(&check(&sig(GITHUB, Some(SUBJECT), Some("^a$")))),
            vec![("", false)]
        );
        assert_eq!(
            fields(&check(&sig(GITHUB, Some(""), None))),
            vec![("subject", false)]
        );
        assert_eq!(
            fields(&check(&sig(GITHUB, None, Some("")))),
            vec![("subjectRegExp", false)]
        );
    }

    #[test]
    fn a_regexp_that_does_not_compile_is_an_error_and_an_unanchored_one_a_warning() {
        for bad in [
            "^https://github.com/acme/(shop$",
            "^[z-a]$",
            "^a{2,1}$",
            "^(?<n>a)(?<n>b)$",
        ] {
            let f = check(&sig(GITHUB, None, Some(bad)));
            assert_eq!(fields(&f), vec![("subjectRegExp", false)], "{bad}");
            assert!(
                f[0].message.contains("not a valid regular expression"),
                "{}",
                f[0].message
            );
            assert!(!f[0].message.contains('\n'));
        }
        for rust_only in [
            "^(?x) a b $",
            "^(?u:a)$",
            "^\\<acme\\>$",
            "^\\b{start}acme$",
            "^[a-z&&[^x]]+$",
            "^[[a-z]]+$",
            "^\\u0041$",
            "^[\\U00000041]$",
        ] {
            let f = check(&sig(GITHUB, None, Some(rust_only)));
            assert_eq!(fields(&f), vec![("subjectRegExp", false)], "{rust_only}");
            assert!(
                f[0].message.contains("Go's regexp"),
                "{rust_only}: {}",
                f[0].message
            );
        }
        // RE2 syntax Go accepts passes: flags i, m, s, U; \x escapes; POSIX classes; named groups.
        for go_ok in [
            "^(?i)https://github\\.com/Acme/.+$",
            "^(?ms:a.b)$",
            "^\\x41\\x{42}[[:alpha:]]\\pL\\b(?P<n>x)(?<m>y)\\z$",
        ] {
            assert_eq!(check(&sig(GITHUB, None, Some(go_ok))), vec![], "{go_ok}");
        }
        // A leading flag group comes before the anchor (GitHub names are case-insensitive).
        assert_eq!(
            check(&sig(GITHUB, None, Some("(?i)^https://github\\.com/Acme/$"))),
            vec![]
        );
        for unanchored in [
            "https://github.com/acme/",
            "^https://github.com/acme/",
            "acme$",
            "(?i)acme$",
            "(?:x)^a$",
        ] {
            let f = check(&sig(GITHUB, None, Some(unanchored)));
            assert_eq!(fields(&f), vec![("subjectRegExp", true)], "{unanchored}");
        }
    }
}
