//! OCI / docker distribution image references (`ghcr.io/org/app:1.2@sha256:…`) and knext's
//! digest-pin rule.
//!
//! Pure functions with no I/O, shared by the NextApp validator, `build.rs` and the CLI.
//! [`parse`] checks the distribution/reference grammar, deciding the registry domain with
//! docker's normalisation rule; [`check_pinned`] additionally requires an immutable
//! `@sha256:<64 lowercase hex>` digest. The input is capped at [`MAX_LEN`] bytes before parsing
//! and every check is a linear byte scan, so hostile input costs bounded work.

/// Longest reference accepted, in bytes.
pub const MAX_LEN: usize = 4096;

/// Longest repository name (`domain/path`, without tag or digest), as in distribution/reference.
pub const NAME_MAX: usize = 255;

/// Longest tag.
pub const TAG_MAX: usize = 128;

/// Length of the hex part of a sha256 digest.
const SHA256_HEX_LEN: usize = 64;

/// A parsed image reference; every part borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// The registry host and optional port (`ghcr.io`, `localhost:5000`, `[::1]:5000`), when the
    /// reference names one; `None` means the default registry (Docker Hub).
    pub domain: Option<&'a str>,
    /// The repository path (`library/nginx`, `org/app`).
    pub path: &'a str,
    /// The tag after `:`, if any.
    pub tag: Option<&'a str>,
    /// The digest after `@`, if any.
    pub digest: Option<Digest<'a>>,
}

/// The digest part of a reference, `algorithm:hex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest<'a> {
    /// The algorithm, such as `sha256`.
    pub algorithm: &'a str,
    /// The encoded hash (hex for the standard algorithms).
    pub hex: &'a str,
}

/// Why an image reference was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The reference is empty.
    #[error(
        "the image reference is empty; set it to a digest-pinned reference such as \
         ghcr.io/org/app@sha256:<64 hex>"
    )]
    Empty,
    /// The reference does not match the distribution/reference grammar.
    #[error("image {reference:?} is malformed: {reason}")]
    Malformed {
        /// The reference (truncated when it exceeds [`MAX_LEN`]).
        reference: String,
        /// The bad part and how to fix it.
        reason: String,
    },
    /// The reference uses the `latest` tag without a digest.
    #[error(
        "image {reference:?} uses the mutable \"latest\" tag; pin it by digest: {}@sha256:<64 hex> {}",
        .reference.strip_suffix(":latest").unwrap_or(.reference),
        resolve_hint(.reference)
    )]
    LatestTag {
        /// The reference.
        reference: String,
    },
    /// The reference has a tag but no digest.
    #[error(
        "image {reference:?} is tag-only ({tag:?}), which is mutable; pin it by digest: \
         {reference}@sha256:<64 hex> {}",
        resolve_hint(.reference)
    )]
    TagOnly {
        /// The reference.
        reference: String,
        /// Its tag.
        tag: String,
    },
    /// The reference has neither tag nor digest, so it implicitly means `latest`.
    #[error(
        "image {reference:?} has no tag or digest, so it means the mutable \"latest\"; pin it by digest: \
         {reference}@sha256:<64 hex> {}",
        resolve_hint(.reference)
    )]
    Untagged {
        /// The reference.
        reference: String,
    },
    /// The digest uses an algorithm other than sha256.
    #[error(
        "image {reference:?} is pinned with a {algorithm} digest, but only sha256 digests are accepted; \
         pin it as {}@sha256:<64 hex> {}",
        name_of(.reference),
        resolve_hint(name_of(.reference))
    )]
    UnsupportedDigest {
        /// The reference.
        reference: String,
        /// The digest algorithm used.
        algorithm: String,
    },
    /// The digest is not `sha256:` followed by 64 lowercase hex characters (or, for [`parse`],
    /// does not match the digest grammar).
    #[error(
        "image {reference:?} has a malformed digest: {reason}; a pinned digest is \"sha256:\" followed by \
         exactly 64 lowercase hex characters {}",
        resolve_hint(name_of(.reference))
    )]
    MalformedDigest {
        /// The reference.
        reference: String,
        /// What is wrong with the digest.
        reason: String,
    },
}

impl ImageError {
    /// The Kubernetes condition reason for every image error: `"InvalidImage"`.
    pub fn reason(&self) -> &'static str {
        "InvalidImage"
    }
}

/// The reference without its digest.
fn name_of(reference: &str) -> &str {
    reference.split_once('@').map_or(reference, |(name, _)| name)
}

fn resolve_hint(name: &str) -> String {
    format!("(resolve with `crane digest {name}` or `skopeo inspect docker://{name}`)")
}

/// A reference cut to a bounded prefix for messages.
fn truncated(s: &str) -> String {
    let mut end = 80.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", s.get(..end).unwrap_or_default(), s.len())
}

/// A reference whose name and tag passed the grammar; the digest is not yet checked.
struct Parts<'a> {
    domain: Option<&'a str>,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Parses an image reference with the distribution/reference grammar (grammar only: any tag, any
/// well-formed digest, or neither).
///
/// The first path component is the registry domain when the name has a `/` and that component
/// contains `.` or `:`, is `localhost`, or has an uppercase letter (docker's rule); otherwise the
/// whole name is the repository path. A digest must be `algorithm:hex` with at least 32 hex
/// characters; [`check_pinned`] is stricter.
pub fn parse(reference: &str) -> Result<ImageRef<'_>, ImageError> {
    let parts = split(reference)?;
    let digest = match parts.digest {
        None => None,
        Some(raw) => Some(digest_grammar(raw).map_err(|reason| ImageError::MalformedDigest {
            reference: reference.to_owned(),
            reason,
        })?),
    };
    Ok(ImageRef {
        domain: parts.domain,
        path: parts.path,
        tag: parts.tag,
        digest,
    })
}

/// Parses an image reference and enforces knext's pin rule: the reference must carry an
/// `@sha256:` digest of exactly 64 lowercase hex characters. A tag alongside the digest is fine
/// (`ghcr.io/org/app:1.2@sha256:…`), since the digest wins.
pub fn check_pinned(reference: &str) -> Result<ImageRef<'_>, ImageError> {
    let parts = split(reference)?;
    let Some(raw) = parts.digest else {
        return Err(match parts.tag {
            Some("latest") => ImageError::LatestTag {
                reference: reference.to_owned(),
            },
            Some(tag) => ImageError::TagOnly {
                reference: reference.to_owned(),
                tag: tag.to_owned(),
            },
            None => ImageError::Untagged {
                reference: reference.to_owned(),
            },
        });
    };
    let malformed = |reason: String| ImageError::MalformedDigest {
        reference: reference.to_owned(),
        reason,
    };
    let Some((algorithm, hex)) = raw.split_once(':') else {
        return Err(malformed(format!("{raw:?} has no algorithm")));
    };
    if algorithm != "sha256" {
        if let Err(reason) = check_algorithm(algorithm) {
            return Err(malformed(reason));
        }
        return Err(ImageError::UnsupportedDigest {
            reference: reference.to_owned(),
            algorithm: algorithm.to_owned(),
        });
    }
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(malformed(format!(
            "the hash contains the non-hex character {bad:?}"
        )));
    }
    if hex.len() != SHA256_HEX_LEN {
        return Err(malformed(format!(
            "the hash has {} hex characters instead of 64",
            hex.len()
        )));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(malformed(String::from(
            "the hash has uppercase hex characters; write it in lowercase",
        )));
    }
    // The old guard let `@sha256:000…0` through as a "placeholder"; no image has that digest.
    if hex.bytes().all(|b| b == b'0') {
        return Err(malformed(String::from(
            "the all-zero hash is a placeholder, not the digest of a real image",
        )));
    }
    Ok(ImageRef {
        domain: parts.domain,
        path: parts.path,
        tag: parts.tag,
        digest: Some(Digest { algorithm, hex }),
    })
}

/// Splits a reference into its parts and checks the name and tag grammar.
fn split(reference: &str) -> Result<Parts<'_>, ImageError> {
    if reference.len() > MAX_LEN {
        return Err(ImageError::Malformed {
            reference: truncated(reference),
            reason: format!(
                "it is {} bytes long; an image reference is at most {MAX_LEN} bytes",
                reference.len()
            ),
        });
    }
    if reference.is_empty() {
        return Err(ImageError::Empty);
    }
    let malformed = |reason: String| ImageError::Malformed {
        reference: reference.to_owned(),
        reason,
    };
    if reference.starts_with(char::is_whitespace) || reference.ends_with(char::is_whitespace) {
        return Err(malformed(String::from(
            "it has leading or trailing whitespace; remove it",
        )));
    }
    let (name_and_tag, digest) = match reference.split_once('@') {
        Some((_, digest)) if digest.contains('@') => {
            return Err(malformed(String::from(
                "it has more than one '@'; write name[:tag]@sha256:<hex>",
            )));
        }
        Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
        None => (reference, None),
    };
    let last_slash = name_and_tag.rfind('/');
    let (name, tag) = match name_and_tag.rsplit_once(':') {
        Some((name, tag)) if last_slash.is_none_or(|slash| name.len() > slash) => (name, Some(tag)),
        _ => (name_and_tag, None),
    };
    if name.is_empty() {
        return Err(malformed(String::from(
            "it has no repository name; write e.g. ghcr.io/org/app@sha256:<64 hex>",
        )));
    }
    if name.len() > NAME_MAX {
        return Err(malformed(format!(
            "the repository name is {} characters long; the limit is {NAME_MAX}",
            name.len()
        )));
    }
    if let Some(tag) = tag {
        check_tag(tag).map_err(&malformed)?;
    }
    if digest == Some("") {
        return Err(ImageError::MalformedDigest {
            reference: reference.to_owned(),
            reason: String::from("nothing follows '@'"),
        });
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            check_domain(first).map_err(&malformed)?;
            (Some(first), rest)
        }
        _ => (None, name),
    };
    check_path(path).map_err(&malformed)?;
    Ok(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

/// `[\w][\w.-]{0,127}`
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let Some(&first) = tag.as_bytes().first() else {
        return Err(String::from(
            "the tag after ':' is empty; remove the ':' or write a tag",
        ));
    };
    if tag.len() > TAG_MAX {
        return Err(format!(
            "the tag is {} characters long; tags are at most {TAG_MAX}",
            tag.len()
        ));
    }
    if !word(first) {
        return Err(format!("the tag {tag:?} must start with a letter, digit or '_'"));
    }
    if let Some(bad) = tag
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "the tag {tag:?} contains the character {bad:?}; tags use letters, digits, '_', '.' and '-'"
        ));
    }
    Ok(())
}

/// `host [':' port]` where host is a dotted domain name or a bracketed IPv6 address.
fn check_domain(domain: &str) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("the registry {domain:?} is invalid: {why}"));
    let (host, port) = if let Some(inner_and_rest) = domain.strip_prefix('[') {
        let Some((inner, rest)) = inner_and_rest.split_once(']') else {
            return invalid("'[' has no matching ']'");
        };
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return invalid("an IPv6 address in brackets uses only hex digits and ':'");
        }
        match rest.strip_prefix(':') {
            Some(port) => (None, Some(port)),
            None if rest.is_empty() => (None, None),
            None => return invalid("only ':<port>' may follow the ']'"),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return invalid("the port after ':' must be digits, e.g. localhost:5000");
    }
    if let Some(host) = host {
        for component in host.split('.') {
            let bytes = component.as_bytes();
            if bytes.is_empty() {
                return invalid("it has an empty name between dots");
            }
            if !bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-') {
                return invalid("host names use only letters, digits, '-' and '.'");
            }
            if bytes.first() == Some(&b'-') || bytes.last() == Some(&b'-') {
                return invalid("a host name part must not start or end with '-'");
            }
        }
    }
    Ok(())
}

/// `path-component ['/' path-component]*` with
/// `path-component := [a-z0-9]+ (([._]|__|-+) [a-z0-9]+)*`.
fn check_path(path: &str) -> Result<(), String> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "the repository path {path:?} has uppercase letters; repository paths must be lowercase"
        ));
    }
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/');
    if let Some(bad) = path.chars().find(|&c| !allowed(c)) {
        return Err(format!(
            "the repository path {path:?} contains the character {bad:?}; use lowercase letters, digits, \
             '.', '_', '-' and '/'"
        ));
    }
    for component in path.split('/') {
        check_path_component(component).map_err(|why| format!("the repository path {path:?} {why}"))?;
    }
    Ok(())
}

fn check_path_component(component: &str) -> Result<(), String> {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err(String::from(
            "has an empty component; remove the doubled, leading or trailing '/'",
        ));
    }
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return Err(format!(
            "has the component {component:?}, which must start and end with a letter or digit"
        ));
    }
    for separator in component.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        let ok = separator.is_empty()
            || separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!(
                "has the separator {separator:?} in {component:?}; separators are '.', '_', '__' or dashes"
            ));
        }
    }
    Ok(())
}

/// `algorithm ':' hex` with `hex := [0-9a-fA-F]{32,}`.
fn digest_grammar(raw: &str) -> Result<Digest<'_>, String> {
    let Some((algorithm, hex)) = raw.split_once(':') else {
        return Err(format!("{raw:?} has no algorithm"));
    };
    check_algorithm(algorithm)?;
    if let Some(bad) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("the hash contains the non-hex character {bad:?}"));
    }
    if hex.len() < 32 {
        return Err(format!(
            "the hash has {} hex characters, fewer than the minimum 32",
            hex.len()
        ));
    }
    Ok(Digest { algorithm, hex })
}

/// `[A-Za-z][A-Za-z0-9]*` components joined by one of `+ . - _`.
fn check_algorithm(algorithm: &str) -> Result<(), String> {
    let ok = algorithm.split(['+', '.', '-', '_']).all(|component| {
        let mut bytes = component.bytes();
        bytes.next().is_some_and(|b| b.is_ascii_alphabetic()) && bytes.all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(format!("the digest algorithm {algorithm:?} is malformed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn kind(result: &Result<ImageRef<'_>, ImageError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(ImageError::Empty) => "Empty",
            Err(ImageError::Malformed { .. }) => "Malformed",
            Err(ImageError::LatestTag { .. }) => "LatestTag",
            Err(ImageError::TagOnly { .. }) => "TagOnly",
            Err(ImageError::Untagged { .. }) => "Untagged",
            Err(ImageError::UnsupportedDigest { .. }) => "UnsupportedDigest",
            Err(ImageError::MalformedDigest { .. }) => "MalformedDigest",
        }
    }

    #[test]
    fn the_pin_rule_accepts_and_rejects_the_table() {
        let upper = HEX.to_uppercase();
        let sha512 = HEX.repeat(2);
        let long_tag = "t".repeat(129);
        let max_tag = "t".repeat(128);
        let long_name = format!("a/{}", "b".repeat(254));
        let max_name = format!("a/{}", "b".repeat(253));
        let d = |prefix: &str| format!("{prefix}@sha256:{HEX}");
        let rows: Vec<(String, &str)> = vec![
            (d("nginx"), "ok"),
            (d("nginx:1.27"), "ok"),
            (d("ghcr.io/a/b:1.2"), "ok"),
            (d("localhost:5000/a"), "ok"),
            (d("localhost/a"), "ok"),
            (d("[::1]:5000/a"), "ok"),
            (d("[fe80::1]/a"), "ok"),
            (d("docker.io/library/nginx"), "ok"),
            (d("library/nginx"), "ok"),
            (d("nginx:latest"), "ok"),
            (d("registry.example.com:443/team/app/web"), "ok"),
            (d("UPPER/app"), "ok"),
            (d("a__b"), "ok"),
            (d("a--b"), "ok"),
            (d("a-----b"), "ok"),
            (d("a.b_c-d"), "ok"),
            (d("my-registry.io/x"), "ok"),
            (d(&format!("app:{max_tag}")), "ok"),
            (d(&max_name), "ok"),
            (d("app:_v1"), "ok"),
            (String::from("nginx:latest"), "LatestTag"),
            (String::from("nginx"), "Untagged"),
            (String::from("ghcr.io/a/b"), "Untagged"),
            (String::from("localhost:5000/a"), "Untagged"),
            (String::from("nginx:1.27"), "TagOnly"),
            (String::from("ghcr.io/a/b:LATEST"), "TagOnly"),
            (format!("app:sha256-{HEX}"), "TagOnly"),
            (String::from("app@sha256:abc123"), "MalformedDigest"),
            (format!("app@sha256:{upper}"), "MalformedDigest"),
            (format!("app@sha256:{HEX}0"), "MalformedDigest"),
            (format!("app@sha256:{}", &HEX[1..]), "MalformedDigest"),
            (format!("app@sha256:{}g", &HEX[1..]), "MalformedDigest"),
            (String::from("app@"), "MalformedDigest"),
            (format!("app@{HEX}"), "MalformedDigest"),
            (format!("app@sha512:{sha512}"), "UnsupportedDigest"),
            (format!("app@SHA256:{HEX}"), "UnsupportedDigest"),
            (format!("app@1sha:{HEX}"), "MalformedDigest"),
            (d("app:"), "Malformed"),
            (String::new(), "Empty"),
            (d(" nginx"), "Malformed"),
            (format!("{} ", d("nginx")), "Malformed"),
            (d("ngi nx"), "Malformed"),
            (d("app/UPPER"), "Malformed"),
            (d("UPPER"), "Malformed"),
            (d("a___b"), "Malformed"),
            (d("a._b"), "Malformed"),
            (d("-a"), "Malformed"),
            (d("a-"), "Malformed"),
            (d("a/"), "Malformed"),
            (d("/a"), "Malformed"),
            (d("a//b"), "Malformed"),
            (d("ghcr.io//a"), "Malformed"),
            (d("ghcr.io/"), "Malformed"),
            (d(&format!("app:{long_tag}")), "Malformed"),
            (d(&long_name), "Malformed"),
            (d("app:.v1"), "Malformed"),
            (d("app:v1+x"), "Malformed"),
            (d("-bad.io/a"), "Malformed"),
            (d("bad-.io/a"), "Malformed"),
            (d("a..b.io/a"), "Malformed"),
            (d("localhost:/a"), "Malformed"),
            (d("localhost:50a0/a"), "Malformed"),
            (d("[::1/a"), "Malformed"),
            (d("[zz::1]:5000/a"), "Malformed"),
            (format!("a@sha256:{HEX}@sha256:{HEX}"), "Malformed"),
            (d(""), "Malformed"),
            (d("é"), "Malformed"),
            (d("a:b:c"), "Malformed"),
        ];
        assert!(rows.len() >= 40);
        for (reference, want) in &rows {
            let got = check_pinned(reference);
            assert_eq!(kind(&got), *want, "{reference:?} gave {got:?}");
            if let Err(error) = got {
                assert_eq!(error.reason(), "InvalidImage");
                let message = error.to_string();
                assert!(!message.starts_with(char::is_uppercase), "{message}");
            }
        }
    }

    #[test]
    fn parse_splits_domain_path_tag_and_digest() {
        let reference = format!("ghcr.io/a/b:1.2@sha256:{HEX}");
        let parsed = parse(&reference).unwrap();
        assert_eq!(parsed.domain, Some("ghcr.io"));
        assert_eq!(parsed.path, "a/b");
        assert_eq!(parsed.tag, Some("1.2"));
        assert_eq!(
            parsed.digest,
            Some(Digest {
                algorithm: "sha256",
                hex: HEX
            })
        );

        let parsed = parse("library/nginx").unwrap();
        assert_eq!(
            (parsed.domain, parsed.path, parsed.tag, parsed.digest),
            (None, "library/nginx", None, None)
        );
        let parsed = parse("Foo/bar").unwrap();
        assert_eq!((parsed.domain, parsed.path), (Some("Foo"), "bar"));
        let parsed = parse("localhost:5000/a:v1").unwrap();
        assert_eq!(
            (parsed.domain, parsed.path, parsed.tag),
            (Some("localhost:5000"), "a", Some("v1"))
        );
        let parsed = parse("[::1]:5000/a").unwrap();
        assert_eq!(
            (parsed.domain, parsed.path, parsed.tag),
            (Some("[::1]:5000"), "a", None)
        );
        let parsed = parse("localhost:5000").unwrap();
        assert_eq!(
            (parsed.domain, parsed.path, parsed.tag),
            (None, "localhost", Some("5000"))
        );
        assert!(parse("foo/Bar").is_err());
    }

    #[test]
    fn the_all_zero_placeholder_digest_is_not_a_pin() {
        let zeros = format!("ghcr.io/kn-next/knext@sha256:{}", "0".repeat(64));
        let err = check_pinned(&zeros).unwrap_err();
        assert!(matches!(err, ImageError::MalformedDigest { .. }), "{err:?}");
        assert!(err.to_string().contains("placeholder"), "{err}");
        // One non-zero character makes it an ordinary digest again.
        let almost = format!("ghcr.io/kn-next/knext@sha256:{}1", "0".repeat(63));
        assert!(check_pinned(&almost).is_ok());
    }

    #[test]
    fn parse_checks_the_digest_grammar_but_not_the_pin_rule() {
        assert!(parse("nginx:latest").is_ok());
        assert!(parse("nginx").is_ok());
        assert!(parse(&format!("app@sha512:{}", HEX.repeat(2))).is_ok());
        assert!(parse(&format!("app@sha256:{}", HEX.to_uppercase())).is_ok());
        assert!(parse(&format!("app@multihash+base58:{}", &HEX[..32])).is_ok());
        assert!(matches!(
            parse("app@sha256:abc123"),
            Err(ImageError::MalformedDigest { .. })
        ));
        assert!(matches!(
            parse(&format!("app@sha_:{HEX}")),
            Err(ImageError::MalformedDigest { .. })
        ));
        assert!(matches!(
            parse(&format!("app@sha256:{HEX}x")),
            Err(ImageError::MalformedDigest { .. })
        ));
    }

    #[test]
    fn messages_name_the_reference_and_the_fix() {
        let message = check_pinned("nginx:1.27").unwrap_err().to_string();
        assert_eq!(
            message,
            "image \"nginx:1.27\" is tag-only (\"1.27\"), which is mutable; pin it by digest: \
             nginx:1.27@sha256:<64 hex> (resolve with `crane digest nginx:1.27` or \
             `skopeo inspect docker://nginx:1.27`)"
        );
        let message = check_pinned("nginx:latest").unwrap_err().to_string();
        assert!(
            message.contains("pin it by digest: nginx@sha256:<64 hex>"),
            "{message}"
        );
        assert!(message.contains("`crane digest nginx:latest`"), "{message}");
        let message = check_pinned("nginx").unwrap_err().to_string();
        assert!(message.contains("no tag or digest"), "{message}");
        let message = check_pinned(&format!("app@sha512:{}", HEX.repeat(2)))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("sha512") && message.contains("pin it as app@sha256:<64 hex>"),
            "{message}"
        );
        let message = check_pinned("app@sha256:abc123").unwrap_err().to_string();
        assert!(message.contains("6 hex characters instead of 64"), "{message}");
        assert!(message.contains("`crane digest app`"), "{message}");
        let message = check_pinned(&format!("app/UPPER@sha256:{HEX}"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("must be lowercase"), "{message}");
        let message = check_pinned(&format!("a//b@sha256:{HEX}"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("empty component"), "{message}");
        let message = check_pinned(&format!(" a@sha256:{HEX}")).unwrap_err().to_string();
        assert!(message.contains("leading or trailing whitespace"), "{message}");
    }

    #[test]
    fn every_error_reports_the_invalid_image_reason() {
        for reference in ["", "nginx", "nginx:latest", "nginx:1", "a@sha1:00", "A", "a@"] {
            assert_eq!(check_pinned(reference).unwrap_err().reason(), "InvalidImage");
        }
    }

    #[test]
    fn huge_references_are_rejected_before_parsing() {
        let huge = format!("{}@sha256:{HEX}", "a".repeat(1_000_000));
        let error = check_pinned(&huge).unwrap_err();
        assert!(matches!(error, ImageError::Malformed { .. }));
        assert!(error.to_string().len() < 400);
        let at_limit = format!("{}:{}", "a".repeat(MAX_LEN - 10), "t");
        assert!(matches!(parse(&at_limit), Err(ImageError::Malformed { .. })));
    }

    proptest::proptest! {
        #[test]
        fn generated_valid_references_are_pinned(
            domain in "(ghcr\\.io|localhost:5000|\\[::1\\]:5000|[a-z]{1,8}\\.[a-z]{2,3})",
            path in "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}(/[a-z0-9]{1,6}){0,2}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            hex in "[0-9a-f]{64}",
        ) {
            let tag_part = tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default();
            let reference = format!("{domain}/{path}{tag_part}@sha256:{hex}");
            let parsed = check_pinned(&reference).unwrap();
            proptest::prop_assert_eq!(parsed.domain, Some(domain.as_str()));
            proptest::prop_assert_eq!(parsed.path, path.as_str());
            proptest::prop_assert_eq!(parsed.tag, tag.as_deref());
        }

        #[test]
        fn arbitrary_input_never_panics(s in "[a-zA-Z0-9:/@._\\-\\[\\] ]{0,60}|\\PC{0,60}") {
            let _ = parse(&s);
            let _ = check_pinned(&s);
        }
    }
}
