//! The `SecretLiteral` rule: a plain (literal) environment value that is, or carries, a secret.
//!
//! Shared with `build.rs`; pure, no I/O, hand-written scanners (no regex engine). The validator applies
//! it to `spec.env`; it takes any `(name, value)` pair, so a scanner can apply it to every `env[].value`
//! of any manifest. A literal value is readable by anyone with `get` on the NextApp, the Knative Service
//! or its Revisions (the built-in `view` role): secrets belong in Kubernetes Secrets, mapped with
//! `spec.secrets.envMap`.
//!
//! What counts as a secret:
//! - a name ending in one of [`SECRET_NAME_SUFFIXES`] (ASCII case-insensitively), or equal to one
//!   without its leading `_` (`PASSWORD`, `API_KEY`). `NEXT_PUBLIC_*` names are exempt: Next.js inlines
//!   them into the browser bundle by design, so they must never hold a secret anyway, and a
//!   secret-looking one is a warning ([`Verdict::PublicSecretName`]);
//! - whatever the name, a value that is a URL with a password (`scheme://user:password@host`) or with a
//!   credential query parameter ([`CREDENTIAL_QUERY_PARAMS`], non-empty), or that has the shape of a
//!   well-known secret ([`KNOWN_SECRET_PREFIXES`], a PEM private key block).
//!
//! The NextApp CRD mirrors the name rule as a CEL admission rule on `spec.env` (a test in
//! [`super::admission`] keeps the two in step); the value rules run in the validator (CLI, build
//! scripts, operator) only: a scan of every value of an unbounded map is beyond the API server's CEL
//! cost budget.

use std::fmt;

/// Name suffixes that mark a variable as secret-bearing, upper case.
pub const SECRET_NAME_SUFFIXES: [&str; 8] = [
    "_TOKEN",
    "_SECRET",
    "_SECRET_KEY",
    "_PASSWORD",
    "_PASS",
    "_API_KEY",
    "_PRIVATE_KEY",
    "_CREDENTIALS",
];

/// Prefix of the variables Next.js inlines into client bundles.
pub const PUBLIC_PREFIX: &str = "NEXT_PUBLIC_";

/// URL query parameters that carry a credential (compared ASCII case-insensitively).
pub const CREDENTIAL_QUERY_PARAMS: [&str; 10] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "auth_token",
    "api_key",
    "apikey",
];

/// Prefixes of well-known secret formats: `(prefix, what)`. Only unambiguous, documented prefixes of
/// secret (not publishable) keys; a value must continue with at least 16 more token characters.
pub const KNOWN_SECRET_PREFIXES: [(&str, &str); 14] = [
    ("sk_live_", "a Stripe secret key"),
    ("sk_test_", "a Stripe secret key"),
    ("rk_live_", "a Stripe restricted key"),
    ("rk_test_", "a Stripe restricted key"),
    ("whsec_", "a Stripe webhook signing secret"),
    ("ghp_", "a GitHub personal access token"),
    ("gho_", "a GitHub OAuth token"),
    ("ghs_", "a GitHub app token"),
    ("ghu_", "a GitHub user-to-server token"),
    ("github_pat_", "a GitHub fine-grained token"),
    ("glpat-", "a GitLab personal access token"),
    ("xoxb-", "a Slack bot token"),
    ("xoxp-", "a Slack user token"),
    ("npm_", "an npm access token"),
];

/// Why a literal value is a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The name ends in a secret suffix (upper case, with its `_`; or the bare word).
    Name(&'static str),
    /// The value is a URL whose userinfo carries a password.
    UrlPassword,
    /// The value is a URL with a non-empty credential query parameter.
    UrlQuery(&'static str),
    /// The value has the shape of a well-known secret.
    Format(&'static str),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Name(suffix) => write!(f, "its name ends in {suffix}"),
            Finding::UrlPassword => f.write_str("its value is a URL with a password"),
            Finding::UrlQuery(param) => write!(f, "its value is a URL with a {param:?} query parameter"),
            Finding::Format(what) => write!(f, "its value looks like {what}"),
        }
    }
}

/// What the rule says about one literal variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing secret-looking.
    Clean,
    /// A secret as a literal: an error.
    Secret(Finding),
    /// A `NEXT_PUBLIC_*` name that looks like a secret: a warning (the value ends up in the browser).
    PublicSecretName(&'static str),
}

/// Applies the rule to one literal variable `name=value`.
pub fn check_literal(name: &str, value: &str) -> Verdict {
    if let Some(finding) = value_finding(value) {
        return Verdict::Secret(finding);
    }
    match secret_suffix(name) {
        None => Verdict::Clean,
        Some(suffix) if name.starts_with(PUBLIC_PREFIX) => Verdict::PublicSecretName(suffix),
        Some(suffix) => Verdict::Secret(Finding::Name(suffix)),
    }
}

/// The secret suffix a name ends in (ASCII case-insensitively), or that it equals without its `_`.
pub fn secret_suffix(name: &str) -> Option<&'static str> {
    SECRET_NAME_SUFFIXES
        .iter()
        .copied()
        // Longest first, so `MY_SECRET_KEY` reports `_SECRET_KEY`, not a shorter suffix.
        .filter(|suffix| {
            let bare = &suffix[1..];
            name.eq_ignore_ascii_case(bare)
                || (name.len() > suffix.len()
                    && name.is_char_boundary(name.len() - suffix.len())
                    && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
        })
        .max_by_key(|suffix| suffix.len())
}

/// A finding in the value alone, whatever the name.
pub fn value_finding(value: &str) -> Option<Finding> {
    let value = value.trim();
    if let Some(f) = url_finding(value) {
        return Some(f);
    }
    if value.contains("-----BEGIN") && value.contains("PRIVATE KEY-----") {
        return Some(Finding::Format("a PEM private key"));
    }
    KNOWN_SECRET_PREFIXES.iter().find_map(|(prefix, what)| {
        let rest = value.strip_prefix(prefix)?;
        let token = rest.len() >= 16
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        token.then_some(Finding::Format(what))
    })
}

/// A URL (`scheme://…`) with a password in its userinfo or a credential query parameter.
fn url_finding(value: &str) -> Option<Finding> {
    let (scheme, rest) = value.split_once("://")?;
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // The userinfo ends at the authority's last '@' (a raw '@' in a password is common in practice).
    if let Some((userinfo, _host)) = authority.rsplit_once('@')
        && userinfo
            .split_once(':')
            .is_some_and(|(_, password)| !password.is_empty())
    {
        return Some(Finding::UrlPassword);
    }
    let query = rest[authority_end..].split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (key, val) = pair.split_once('=')?;
        if val.is_empty() {
            return None;
        }
        CREDENTIAL_QUERY_PARAMS
            .iter()
            .copied()
            .find(|p| p.eq_ignore_ascii_case(key))
            .map(Finding::UrlQuery)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_found_by_suffix_or_bare_word_in_any_case() {
        let secret = [
            ("REDIS_PASSWORD", "_PASSWORD"),
            ("STRIPE_SECRET_KEY", "_SECRET_KEY"),
            ("API_TOKEN", "_TOKEN"),
            ("NEXTAUTH_SECRET", "_SECRET"),
            ("SMTP_PASS", "_PASS"),
            ("OPENAI_API_KEY", "_API_KEY"),
            ("JWT_PRIVATE_KEY", "_PRIVATE_KEY"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "_CREDENTIALS"),
            ("PASSWORD", "_PASSWORD"),
            ("api_key", "_API_KEY"),
            ("github_token", "_TOKEN"),
            ("Secret", "_SECRET"),
        ];
        for (name, suffix) in secret {
            assert_eq!(secret_suffix(name), Some(suffix), "{name}");
            assert_eq!(
                check_literal(name, "x"),
                Verdict::Secret(Finding::Name(suffix)),
                "{name}"
            );
        }
        let plain = [
            "LOG_LEVEL",
            "TOKEN_TTL_SECONDS",
            "PASSWORD_MIN_LENGTH",
            "BYPASS",
            "COMPASS",
            "SECRETARY",
            "JWT_PUBLIC_KEY",
            "API_KEY_HEADER",
            "TOKENS",
            "_TOKENX",
            "NODE_OPTIONS",
        ];
        for name in plain {
            assert_eq!(secret_suffix(name), None, "{name}");
            assert_eq!(check_literal(name, "x"), Verdict::Clean, "{name}");
        }
    }

    #[test]
    fn public_names_that_look_secret_are_warnings_not_errors() {
        assert_eq!(
            check_literal("NEXT_PUBLIC_MAPS_API_KEY", "AIzaSy"),
            Verdict::PublicSecretName("_API_KEY")
        );
        assert_eq!(check_literal("NEXT_PUBLIC_SITE_URL", "https://x"), Verdict::Clean);
        // Only Next.js's exact prefix is public: the lower-case spelling is a normal (secret) name.
        assert_eq!(
            check_literal("next_public_token", "x"),
            Verdict::Secret(Finding::Name("_TOKEN"))
        );
        // A secret value is an error under any name, public ones included.
        assert_eq!(
            check_literal("NEXT_PUBLIC_REDIS", "redis://:hunter2@redis:6379"),
            Verdict::Secret(Finding::UrlPassword)
        );
    }

    #[test]
    fn urls_with_passwords_or_credential_parameters_are_secrets_under_any_name() {
        let secret = [
            ("redis://:hunter2@redis:6379/0", Finding::UrlPassword),
            ("redis://default:hunter2@redis:6379", Finding::UrlPassword),
            ("postgres://app:p@ss@db/app", Finding::UrlPassword),
            ("rediss://u:x@h", Finding::UrlPassword),
            (" https://u:pw@example.com ", Finding::UrlPassword),
            ("https://api.example.com/v1?token=abc", Finding::UrlQuery("token")),
            ("https://h/p?a=1&Password=x#f", Finding::UrlQuery("password")),
            ("https://h?apikey=1", Finding::UrlQuery("apikey")),
        ];
        for (value, finding) in secret {
            assert_eq!(
                check_literal("UPSTREAM", value),
                Verdict::Secret(finding),
                "{value}"
            );
        }
        let plain = [
            "redis://redis:6379/0",
            "redis://user@redis:6379",
            "redis://user:@redis:6379",
            "https://example.com/a:b@c",
            "https://example.com/?page=2&token=",
            "https://example.com/#token=x",
            "host:port@x",
            "1://a:b@c",
            "mailto:a@b.c",
            "",
        ];
        for value in plain {
            assert_eq!(check_literal("UPSTREAM", value), Verdict::Clean, "{value}");
        }
    }

    #[test]
    fn well_known_secret_formats_are_secrets_under_any_name() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            check_literal("CERT", pem),
            Verdict::Secret(Finding::Format("a PEM private key"))
        );
        assert_eq!(
            check_literal("STRIPE", "sk_live_51Habcdefghijklmnop"),
            Verdict::Secret(Finding::Format("a Stripe secret key"))
        );
        assert_eq!(
            check_literal("GH", "ghp_0123456789abcdefghij0123456789abcdef"),
            Verdict::Secret(Finding::Format("a GitHub personal access token"))
        );
        // Publishable keys, public certificates and short look-alikes are not secrets.
        for value in [
            "pk_live_51Habcdefghijklmnop",
            "-----BEGIN CERTIFICATE-----\nMIIE\n-----END CERTIFICATE-----",
            "sk_live_short",
            "ghp_ not a token at all, just prose",
        ] {
            assert_eq!(check_literal("V", value), Verdict::Clean, "{value}");
        }
    }

    #[test]
    fn a_hostile_value_is_scanned_in_linear_time_without_panicking() {
        let long = "a".repeat(1 << 20);
        for value in [
            format!("https://{long}"),
            format!("https://x/?{}", "token&".repeat(100_000)),
            format!("sk_live_{long}é"),
            "é://ü:ö@ä".to_owned(),
        ] {
            let _ = check_literal("X", &value);
        }
        assert_eq!(secret_suffix("é_TOKEN"), Some("_TOKEN"));
        assert_eq!(secret_suffix("éTOKEN"), None);
    }
}
