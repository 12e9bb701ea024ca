//! Bearer-token authentication of `knext serve`'s mutating endpoints.
//!
//! Fail-closed: an unset or empty token refuses every request. The header must be exactly
//! `Bearer <token>` (case-sensitive scheme, one space); lengths are compared first, then the bytes in
//! constant time, so the time a refusal takes says nothing about how much of the token matched.

use subtle::ConstantTimeEq;

/// The token mutating endpoints require, read once from the environment.
#[derive(Clone)]
pub struct Token(Option<Box<[u8]>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str(if self.0.is_some() {
            "Token(set)"
        } else {
            "Token(unset)"
        })
    }
}

/// Why a request was refused (logged and counted; the client only sees 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server has no token configured: every request is refused.
    NoToken,
    /// No `Authorization` header.
    Missing,
    /// The header is not `Bearer <token>`.
    Scheme,
    /// The token does not match.
    Mismatch,
}

impl Refusal {
    /// A short, stable label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoToken => "token-unset",
            Self::Missing => "missing-header",
            Self::Scheme => "wrong-scheme",
            Self::Mismatch => "wrong-token",
        }
    }
}

impl Token {
    /// A token from its value; `None` or empty means "refuse everything".
    pub fn new(value: Option<&str>) -> Self {
        Self(value.filter(|v| !v.is_empty()).map(|v| v.as_bytes().into()))
    }

    /// The token in the environment variable `name` (unset, empty or not UTF-8: refuse everything).
    pub fn from_env(name: &str) -> Self {
        Self::new(std::env::var(name).ok().as_deref())
    }

    /// Whether a token is configured.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the configured token starts or ends with whitespace: usually a Secret made with `echo`
    /// (a trailing newline). It is still compared as is (a secret is never altered behind the
    /// operator's back), but no client sends it that way, so it deserves a warning.
    pub fn has_surrounding_whitespace(&self) -> bool {
        self.0
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
            .is_some_and(|t| t.trim() != t)
    }

    /// Checks an `Authorization` header value.
    pub fn check(&self, header: Option<&[u8]>) -> Result<(), Refusal> {
        let Some(expected) = self.0.as_deref() else {
            return Err(Refusal::NoToken);
        };
        let header = header.ok_or(Refusal::Missing)?;
        let presented = header.strip_prefix(b"Bearer ").ok_or(Refusal::Scheme)?;
        if presented.len() != expected.len() {
            return Err(Refusal::Mismatch);
        }
        if bool::from(presented.ct_eq(expected)) {
            Ok(())
        } else {
            Err(Refusal::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_table() {
        let token = Token::new(Some("s3cret-token"));
        type Case<'a> = (&'a str, Option<&'a [u8]>, Result<(), Refusal>);
        let cases: [Case<'_>; 9] = [
            ("right token", Some(b"Bearer s3cret-token"), Ok(())),
            ("missing header", None, Err(Refusal::Missing)),
            (
                "lowercase scheme",
                Some(b"bearer s3cret-token"),
                Err(Refusal::Scheme),
            ),
            ("basic scheme", Some(b"Basic s3cret-token"), Err(Refusal::Scheme)),
            ("no space", Some(b"Bearers3cret-token"), Err(Refusal::Scheme)),
            (
                "two spaces",
                Some(b"Bearer  s3cret-token"),
                Err(Refusal::Mismatch),
            ),
            (
                "equal length, wrong",
                Some(b"Bearer s3cret-tokem"),
                Err(Refusal::Mismatch),
            ),
            ("shorter", Some(b"Bearer s3cret"), Err(Refusal::Mismatch)),
            ("longer", Some(b"Bearer s3cret-token2"), Err(Refusal::Mismatch)),
        ];
        for (what, header, want) in cases {
            assert_eq!(token.check(header), want, "{what}");
        }
    }

    #[test]
    fn unset_or_empty_token_refuses_everything() {
        for token in [Token::new(None), Token::new(Some(""))] {
            assert!(!token.is_set());
            for header in [None, Some(&b"Bearer "[..]), Some(&b"Bearer x"[..])] {
                assert_eq!(token.check(header), Err(Refusal::NoToken));
            }
        }
    }

    #[test]
    fn surrounding_whitespace_is_noticed_and_kept() {
        for (value, padded) in [
            ("s3cret\n", true),
            ("s3cret\r\n", true),
            ("s3cret ", true),
            (" s3cret", true),
            ("\ts3cret", true),
            ("s3cret\u{a0}", true),
            ("\n", true),
            ("s3cret", false),
            ("s3 cret", false),
            ("", false),
        ] {
            assert_eq!(
                Token::new(Some(value)).has_surrounding_whitespace(),
                padded,
                "{value:?}"
            );
        }
        assert!(!Token::new(None).has_surrounding_whitespace());
        // Compared as is: the trimmed token is not the token.
        let token = Token::new(Some("s3cret\n"));
        assert_eq!(token.check(Some(b"Bearer s3cret")), Err(Refusal::Mismatch));
        assert_eq!(token.check(Some(b"Bearer s3cret\n")), Ok(()));
    }

    #[test]
    fn debug_never_prints_the_token() {
        let shown = format!("{:?}", Token::new(Some("hunter2")));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
