//! Whether a request path names a route `knext serve` owns, decided on the path as the Next.js server
//! behind it may read it, not on the raw bytes. Pure; no I/O.
//!
//! # Why
//!
//! An app may carry handlers of its own at the owned paths (`app/api/cache/invalidate/route.js`). The
//! Next.js server resolves dot segments (WHATWG URL parsing, which also reads `%2e` as `.`) and looks
//! its routes up once more percent-decoded, so `POST /api/cache/./invalidate` or
//! `/api/x/%2E%2E/cache/invalidate` reached such a handler while `knext serve` compared the raw path.
//! The rule that matters: the raw paths `knext serve` keeps to itself must be a **superset** of the raw
//! paths any Next.js version routes to those handlers. Owning too much is harmless (an app cannot have
//! `/api/cache/invalidate` of its own behind `knext serve` anyway); owning too little is the hole.
//!
//! # The rule
//!
//! 1. The path (without query; a stray `#` ends it) is percent-decoded, every `%XX` and not only the
//!    unreserved ones, round after round until nothing changes (`%252e` → `%2e` → `.`). A path still
//!    changing after [`MAX_DECODE_ROUNDS`] rounds is **refused** (400): no real client encodes that deep.
//! 2. `\` is read as `/` (WHATWG URL parsing does so for `http:`).
//! 3. The path is **irregular** when what is left holds a `%` (a malformed escape), a control
//!    character (NUL included), bytes that are not UTF-8, or a decoded `?` or `#`. Such a path has more
//!    than one plausible reading: decoders drop what they cannot read, stop at it, or split on it.
//! 4. Otherwise it is normalised ([`normalize`]): dot segments are removed as RFC 3986 §5.2.4 and
//!    WHATWG URL parsing do (empty segments count: `/a//..` is `/a/`; `..` at the root stays at the
//!    root), then repeated slashes collapse and a trailing slash is ignored.
//! 5. The normalised path **names** an owned route when, compared ASCII case-insensitively, it is the
//!    route, optionally (a) after the app's `basePath`, a `/_next/data/<…>` data-route prefix, one of
//!    the app's i18n locales and an `index` segment, in that order, and (b) with the route's last
//!    segment followed by `.rsc`, `.prefetch.rsc`, `.json`, a `.segments/…` segment-prefetch tail, or
//!    a final `/index` segment. These are every transformation Next.js applies between the raw path and
//!    a route (see below); `basePath` and locales come from the app's `routes-manifest.json`.
//!
//! A readable path that names an owned route is **owned**: `knext serve` answers it exactly as it
//! answers the canonical spelling (authentication, 405, body checks), whatever the spelling. A path
//! that does not name one is still **refused** (400) when it *mentions* one (its segments contain the
//! route's segments in order, the last possibly with a `.suffix`) and either has dot segments (whose
//! resolution differs between parsers: empty segments kept or collapsed, `%2F` and `\` split before or
//! after) or is irregular (read with the odd characters dropped, as a cut at the first of them, or as
//! separators). Everything else is forwarded with its raw path, byte for byte.
//!
//! # Non-canonical spellings get the owned answer
//!
//! `POST /api/cache/./invalidate` with the right token invalidates; without it, 401. Refusing every
//! non-canonical spelling with 400 would be as safe. The owned answer keeps one predicate (the
//! normalised path) deciding who answers, so the spelling changes nothing about the answer, and an
//! app with a `basePath` whose client posts RUM beacons to `<basePath>/api/rum` keeps them. 400 is
//! kept for paths that cannot be read unambiguously.
//!
//! # What Next.js 16.4.6 does (`next/dist/server/`)
//!
//! - `lib/router-utils/resolve-routes.js`: a raw path with `\` or `//` gets a 308 to its slash-collapsed
//!   form (so does an absolute-form request target, which contains `//`); the path is parsed with
//!   WHATWG `new URL` (dot segments, `%2e`/`%2E` included, are resolved; nothing else is decoded);
//!   `basePath`, i18n locale prefixes and `/_next/data/<buildId>/….json` are stripped; a trailing slash
//!   is redirected away (or added, with `trailingSlash: true`).
//! - `lib/router-utils/filesystem.js` (`getItem`): strips `basePath` and a trailing slash, then looks
//!   the route up as is, once `decodeURIComponent`-decoded (falling back to the raw form when that
//!   throws), and once re-encoded; in minimal mode it also strips `.rsc`.
//! - `base-server.js`, `normalizers/request/{rsc,segment-prefix-rsc,next-data,base-path,prefix,suffix}.js`:
//!   the `.rsc`, `.segments/<path>.segment.rsc` and `_next/data` normalisers, in minimal mode only
//!   (`NEXT_PRIVATE_MINIMAL_MODE`); earlier versions also stripped `.prefetch.rsc`.
//!   `shared/lib/page-path/denormalize-page-path.js` maps `/index/…` back for data routes.
//!
//! The path normalisation here is a superset of all of that; case-insensitivity and repeated decoding
//! go beyond it on purpose (other versions, and proxies in front, decode differently). What it cannot
//! see is the app's own `rewrites` or proxy (middleware) mapping an unrelated path onto such a handler.

use std::borrow::Cow;

/// Most rounds of percent-decoding before a path is refused as too deeply encoded.
pub const MAX_DECODE_ROUNDS: usize = 16;

/// Suffixes Next.js strips (or stripped, in some version or mode) from a route's last segment.
const SUFFIXES: [&str; 3] = [".prefetch.rsc", ".rsc", ".json"];
/// The segment-prefetch directory suffix: `<route>.segments/<segment path>.segment.rsc`.
const SEGMENTS_DIR: &str = ".segments";

/// What `knext serve` does with a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The path names the owned route at this index of the routes asked about: answered here.
    Owned(usize),
    /// The path cannot be read unambiguously and might name an owned route: 400, never forwarded.
    Refused,
    /// No reading of the path names an owned route: forwarded with its raw path.
    Forward,
}

/// Where an app's routes sit: its `basePath` and i18n locales (from `.next/routes-manifest.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    base_path: Vec<String>,
    locales: Vec<String>,
}

impl Scope {
    /// The scope of an app with this `basePath` (`""` for none) and these locales.
    pub fn new(base_path: &str, locales: &[String]) -> Self {
        Self {
            base_path: segments(base_path).map(str::to_owned).collect(),
            locales: locales.iter().filter(|l| !l.is_empty()).cloned().collect(),
        }
    }

    /// Whether the prefix before a route is one Next.js strips: `basePath`, then a data-route
    /// prefix (`_next/data/<anything>`), a locale and an `index` segment, each optional.
    fn prefix_ok(&self, prefix: &[&str]) -> bool {
        let n = self.base_path.len();
        let has_base =
            n > 0 && prefix.len() >= n && prefix.iter().zip(&self.base_path).all(|(a, b)| eq(a, b));
        (has_base && self.after_base_ok(&prefix[n..])) || self.after_base_ok(prefix)
    }

    fn after_base_ok(&self, p: &[&str]) -> bool {
        if p.len() >= 3 && eq(p[0], "_next") && eq(p[1], "data") {
            return true;
        }
        let p = match p.split_first() {
            Some((first, rest)) if self.locales.iter().any(|l| eq(first, l)) => rest,
            _ => p,
        };
        let p = match p.split_first() {
            Some((first, rest)) if eq(first, "index") => rest,
            _ => p,
        };
        p.is_empty()
    }

    /// Whether normalised segments `segs` name `route` (rule 5 of the module doc).
    fn names(&self, segs: &[&str], route: &[&str]) -> bool {
        let Some((name, parents)) = route.split_last() else {
            return segs.is_empty();
        };
        let Some((last, _)) = segs.split_last() else {
            return false;
        };
        let n = segs.len();
        // Where the route's last segment sits (index into segs): ...
        let mut at: [Option<usize>; 3] = [None; 3];
        // ... last, bare or with a suffix;
        if eq(last, name) || SUFFIXES.iter().any(|s| is_name_with(last, name, s)) {
            at[0] = Some(n - 1);
        }
        // ... before a final `index` (with or without a suffix);
        if n >= 2
            && eq(segs[n - 2], name)
            && (eq(last, "index") || SUFFIXES.iter().any(|s| is_name_with(last, "index", s)))
        {
            at[1] = Some(n - 2);
        }
        // ... as `<name>.segments` followed by the segment path.
        at[2] = segs[..n - 1]
            .iter()
            .position(|s| is_name_with(s, name, SEGMENTS_DIR));
        at.into_iter().flatten().any(|k| {
            k >= parents.len()
                && segs[k - parents.len()..k]
                    .iter()
                    .zip(parents)
                    .all(|(a, b)| eq(a, b))
                && self.prefix_ok(&segs[..k - parents.len()])
        })
    }
}

/// ASCII case-insensitive equality.
fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `seg` is `name` followed by exactly `suffix` (ASCII case-insensitively).
fn is_name_with(seg: &str, name: &str, suffix: &str) -> bool {
    seg.len() == name.len() + suffix.len()
        && seg.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        && seg.as_bytes()[name.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// Non-empty `/`-separated segments.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Whether `segs` contain `route`'s segments in order (the last one possibly followed by `.…`).
fn mentions(segs: &[&str], route: &[&str]) -> bool {
    let mut i = 0;
    for s in segs {
        let Some(want) = route.get(i) else { break };
        let last = i + 1 == route.len();
        let b = s.as_bytes();
        let with_suffix = last
            && b.len() > want.len()
            && b[..want.len()].eq_ignore_ascii_case(want.as_bytes())
            && b[want.len()] == b'.';
        if eq(s, want) || with_suffix {
            i += 1;
        }
    }
    i == route.len()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One round of percent-decoding (every `%XX`); `None` when there was nothing to decode.
fn decode_once(s: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
        {
            out.get_or_insert_with(|| s[..i].to_vec()).push(h << 4 | l);
            i += 3;
            continue;
        }
        if let Some(o) = out.as_mut() {
            o.push(s[i]);
        }
        i += 1;
    }
    out
}

/// Decodes to a fixed point; `None` if still changing after [`MAX_DECODE_ROUNDS`] rounds.
fn decode(path: &str) -> Option<Cow<'_, [u8]>> {
    let mut cur = Cow::Borrowed(path.as_bytes());
    for _ in 0..MAX_DECODE_ROUNDS {
        match decode_once(&cur) {
            None => return Some(cur),
            Some(next) => cur = Cow::Owned(next),
        }
    }
    decode_once(&cur).is_none().then_some(cur)
}

/// A character that makes a decoded path irregular (rule 3).
fn is_odd(c: char) -> bool {
    c == '%' || c == '?' || c == '#' || c == char::REPLACEMENT_CHARACTER || c.is_control()
}

/// The decoded text of a path (rules 1-3): `None` when it does not settle; `\` read as `/`.
fn decoded(path: &str) -> Option<Cow<'_, str>> {
    let path = path.split('#').next().unwrap_or_default();
    let text = match decode(path)? {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(v) => Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
    };
    Some(if text.contains('\\') {
        Cow::Owned(text.replace('\\', "/"))
    } else {
        text
    })
}

/// The segments of `text` with dot segments removed as RFC 3986 §5.2.4 (and WHATWG URL parsing) do,
/// empty segments taking part (`/a//..` is `/a/`); then empty segments dropped. Also whether there
/// were dot segments.
fn remove_dots(text: &str) -> (Vec<&str>, bool) {
    let mut out = Vec::new();
    let mut dotty = false;
    for s in text.split('/') {
        match s {
            "." => dotty = true,
            ".." => {
                dotty = true;
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.retain(|s| !s.is_empty());
    (out, dotty)
}

/// The canonical form of a readable path: decoded to a fixed point, `\` as `/`, repeated slashes
/// collapsed, dot segments removed, no trailing slash (`/` for the root). `None` for a path that does
/// not settle or is irregular (rules 1-4 of the module doc). Idempotent.
pub fn normalize(path: &str) -> Option<String> {
    let text = decoded(path)?;
    if text.contains(is_odd) {
        return None;
    }
    let (canonical, _) = remove_dots(&text);
    if canonical.is_empty() {
        return Some("/".to_owned());
    }
    let mut out = String::with_capacity(text.len());
    for s in canonical {
        out.push('/');
        out.push_str(s);
    }
    Some(out)
}

/// A route's segments (`/api/rum` → `["api", "rum"]`), as [`classify`] takes the owned routes: split
/// once, not per request.
pub fn route_segments(route: &str) -> Vec<&str> {
    segments(route).collect()
}

/// Decides what to do with request path `path` given the owned routes (canonical spellings split by
/// [`route_segments`]): see the module doc. Cheap for ordinary paths (no allocation beyond the
/// segment list unless the path is percent-encoded).
pub fn classify(path: &str, route_segs: &[Vec<&str>], scope: &Scope) -> Verdict {
    let Some(text) = decoded(path) else {
        return Verdict::Refused;
    };
    let mentioned = |reading: &str| {
        let segs: Vec<&str> = segments(reading).collect();
        route_segs.iter().any(|r| mentions(&segs, r))
    };
    if text.contains(is_odd) {
        // Read with the odd characters dropped, as a cut at the first one, and as separators.
        let dropped: String = text.chars().filter(|c| !is_odd(*c)).collect();
        let cut = text.split(is_odd).next().unwrap_or_default();
        let split = text.replace(is_odd, "/");
        return if mentioned(&dropped) || mentioned(cut) || mentioned(&split) {
            Verdict::Refused
        } else {
            Verdict::Forward
        };
    }
    let (canonical, dotty) = remove_dots(&text);
    if let Some(i) = route_segs.iter().position(|r| scope.names(&canonical, r)) {
        return Verdict::Owned(i);
    }
    if dotty && mentioned(&text) {
        return Verdict::Refused;
    }
    Verdict::Forward
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ROUTES: [&str; 3] = ["/api/cache/invalidate", "/api/cache/events", "/api/rum"];

    fn owned() -> Vec<Vec<&'static str>> {
        ROUTES.iter().map(|r| route_segments(r)).collect()
    }

    fn verdict(path: &str) -> Verdict {
        classify(path, &owned(), &Scope::default())
    }

    #[test]
    fn spellings_of_owned_routes_are_owned() {
        for (path, want) in [
            ("/api/cache/invalidate", 0),
            ("/api/cache/invalidate/", 0),
            ("/api/cache/./invalidate", 0),
            ("/api/x/../cache/invalidate", 0),
            ("/../api/cache/invalidate", 0),
            ("/api/cache%2Finvalidate", 0),
            ("/api/cache%2finvalidate", 0),
            ("/api/cache/invalidat%65", 0),
            ("/%61pi/cache/invalidate", 0),
            ("//api//cache//invalidate", 0),
            ("/api/cache/%2e/invalidate", 0),
            ("/api/x/%2E%2E/cache/invalidate", 0),
            ("/api/x/.%2e/cache/invalidate", 0),
            ("/api/cache/%252e/invalidate", 0),
            ("/api/cache%252Finvalidate", 0),
            ("/api/cache%25252Finvalidate", 0),
            ("/api\\cache\\invalidate", 0),
            ("/api%5Ccache%5cinvalidate", 0),
            ("/API/Cache/INVALIDATE", 0),
            ("/api/cache/invalidate.rsc", 0),
            ("/api/cache/invalidate.prefetch.rsc", 0),
            ("/api/cache/invalidate.segments/_tree.segment.rsc", 0),
            ("/api/cache/invalidate.json", 0),
            ("/api/cache/invalidate/index", 0),
            ("/api/cache/invalidate/index.rsc", 0),
            ("/_next/data/build-id/api/cache/invalidate.json", 0),
            ("/_next/data/build-id/index/api/cache/invalidate.json", 0),
            ("/api/cache/invalidate#fragment", 0),
            ("/api/cache/events", 1),
            ("/api/cache/./events/", 1),
            ("/api/cache/event%73", 1),
            ("/api/rum", 2),
            ("/api/./rum", 2),
            ("/api/ru%6D", 2),
            ("/api/rum/x/..", 2),
            ("/api//../rum", 2),
            ("/api/rum//..", 2),
        ] {
            assert_eq!(verdict(path), Verdict::Owned(want), "{path}");
        }
    }

    #[test]
    fn unreadable_paths_that_may_name_an_owned_route_are_refused() {
        for path in [
            // Malformed escapes: read as dropped, cut or split, each names the route.
            "/api/cache/invalidate%",
            "/api/cache/invalidat%e",
            "/api/cache/invalidate%zz",
            "/api/cache/invalidate/%ZZ/..",
            // Control characters, NUL included, decoded or double-encoded.
            "/api/cache/invalidate%00",
            "/api/cache/invalidate%00.png",
            "/api/cache/inval%00idate",
            "/api/rum%2500",
            "/api/rum%0a",
            // Not UTF-8.
            "/api/rum%ff",
            "/api/r%C3um",
            // A decoded `?` or `#`: a second parse would end the path there.
            "/api/rum%3Fx=1",
            "/api/rum%23x",
            // Dot segments whose resolution differs between parsers: `..` over a segment that
            // another parser collapses away, or over a `%2F`/`\` it keeps whole.
            "/api/cache/invalidate/x//..",
            "/api/cache/invalidate/x%2Fy/..",
            "/api/cache/invalidate/x%5Cy/..",
            // Encoded deeper than any client would.
            &format!("/api/rum%{}41", "25".repeat(MAX_DECODE_ROUNDS)),
            &format!("/blog/%{}41", "25".repeat(MAX_DECODE_ROUNDS)),
        ] {
            assert_eq!(verdict(path), Verdict::Refused, "{path}");
        }
        // The deepest encoding still read: MAX_DECODE_ROUNDS rounds.
        let deepest = format!("/blog/%{}41", "25".repeat(MAX_DECODE_ROUNDS - 1));
        assert_eq!(normalize(&deepest).as_deref(), Some("/blog/A"));
        assert_eq!(verdict(&deepest), Verdict::Forward);
    }

    #[test]
    fn everything_else_is_forwarded() {
        for path in [
            "/",
            "/blog/hello-world",
            "/api",
            "/api/cache",
            "/api/cache/other",
            "/api/cache/invalidated",
            "/api/cache/invalidate-all",
            "/api/cache/invalidate/x",
            "/api/rumour",
            "/api/rum-stats",
            "/api/rum/x",
            "/docs/api/rum",
            "/api/v2/rum",
            "/_next/static/chunks/app.js",
            "/_next/data/build-id/blog.json",
            "/blog/100%25",
            "/blog/100%",
            "/search/what%3F",
            "/caf%C3%A9",
            "/blog/./post",
            "/blog/x/../post",
            "/a//b",
        ] {
            assert_eq!(verdict(path), Verdict::Forward, "{path}");
        }
    }

    #[test]
    fn base_path_and_locales_come_from_the_scope() {
        let scope = Scope::new("/docs", &["en".to_owned(), "fr-CA".to_owned()]);
        let v = |p: &str| classify(p, &owned(), &scope);
        for (path, want) in [
            ("/api/rum", Verdict::Owned(2)),
            ("/docs/api/rum", Verdict::Owned(2)),
            ("/DOCS/api/rum/", Verdict::Owned(2)),
            ("/docs/en/api/rum", Verdict::Owned(2)),
            ("/fr-ca/api/cache/invalidate", Verdict::Owned(0)),
            (
                "/docs/_next/data/b/fr-CA/api/cache/events.json",
                Verdict::Owned(1),
            ),
            ("/docs/de/api/rum", Verdict::Forward),
            ("/doc/api/rum", Verdict::Forward),
            ("/en/docs/api/rum", Verdict::Forward),
        ] {
            assert_eq!(v(path), want, "{path}");
        }
        // Without them, the prefixes are ordinary segments.
        assert_eq!(verdict("/docs/api/rum"), Verdict::Forward);
        assert_eq!(verdict("/en/api/rum"), Verdict::Forward);
    }

    #[test]
    fn normalize_reads_like_a_url_parser_and_a_decoder_in_turn() {
        for (path, want) in [
            ("/", Some("/")),
            ("", Some("/")),
            ("/..", Some("/")),
            ("/a/./b/../c//d/", Some("/a/c/d")),
            ("/a/%2e%2E/b", Some("/b")),
            ("/a\\b", Some("/a/b")),
            ("/%2561", Some("/a")),
            ("/Caf%C3%A9", Some("/Café")),
            ("/a%", None),
            ("/a%00", None),
            ("/a%3Fb", None),
            ("/a%C3", None),
        ] {
            assert_eq!(normalize(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn decoding_borrows_when_there_is_nothing_to_decode() {
        assert!(matches!(decode("/blog/a-b_c.d~e"), Some(Cow::Borrowed(_))));
        assert!(matches!(decoded("/blog/post"), Some(Cow::Borrowed(_))));
        assert_eq!(decode_once(b"%41%4a%zz%4").as_deref(), Some(&b"AJ%zz%4"[..]));
    }

    // ---- properties -------------------------------------------------------------------------

    /// Ways to spell one character of a route, and of its slashes.
    fn spell_char(c: char) -> BoxedStrategy<String> {
        let byte = c as u8;
        let mut options = vec![
            Just(c.to_string()).boxed(),
            Just(format!("%{byte:02X}")).boxed(),
            Just(format!("%{byte:02x}")).boxed(),
            Just(format!("%25{byte:02X}")).boxed(),
            Just(format!("%2525{byte:02x}")).boxed(),
        ];
        if c.is_ascii_lowercase() {
            options.push(Just(c.to_ascii_uppercase().to_string()).boxed());
        }
        proptest::strategy::Union::new(options).boxed()
    }

    fn spell_slash() -> BoxedStrategy<String> {
        prop_oneof![
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just("\\".to_owned()),
            Just("%2F".to_owned()),
            Just("%5c".to_owned()),
            Just("/./".to_owned()),
            Just("/%2e/".to_owned()),
            Just("/%252E/".to_owned()),
            Just("/x/../".to_owned()),
            Just("/x/%2E%2e/".to_owned()),
            Just("/x/.%2e/".to_owned()),
        ]
        .boxed()
    }

    /// Any spelling of `route` that every URL parser and decoder reads as `route`.
    fn spelling(route: &'static str) -> impl Strategy<Value = String> {
        let parts: Vec<BoxedStrategy<String>> = route
            .chars()
            .map(|c| if c == '/' { spell_slash() } else { spell_char(c) })
            .collect();
        let tail = prop_oneof![Just(""), Just("/"), Just("/."), Just("//"), Just("/x/..")];
        (parts, tail).prop_map(|(parts, tail)| format!("/{}{tail}", parts.concat()))
    }

    /// Tokens that change how a path reads: dot segments in their spellings, escapes of `/`, `\`,
    /// `%` and NUL, malformed escapes, suffixes, and route words out of place.
    fn noise() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("x"),
            Just("."),
            Just(".."),
            Just("%2e"),
            Just("%2E%2e"),
            Just(".%2E"),
            Just("%252e"),
            Just("%2F"),
            Just("%5C"),
            Just("\\"),
            Just("%25"),
            Just("%"),
            Just("%00"),
            Just("%zz"),
            Just(".rsc"),
            Just("api"),
            Just("rum"),
        ]
    }

    /// Paths built around an owned route's segments (spelt plainly, encoded or in upper case), with
    /// noise before, between and after them, joined by `/`, `//`, `\` or nothing.
    fn tricky_path() -> impl Strategy<Value = String> {
        let sep = || prop_oneof![Just("/"), Just("/"), Just("//"), Just("\\"), Just("")];
        let noise_run = move || proptest::collection::vec((sep(), noise()), 0..3);
        (0..ROUTES.len())
            .prop_flat_map(move |i| {
                let segs: Vec<&'static str> = ROUTES[i].split('/').filter(|s| !s.is_empty()).collect();
                let parts: Vec<_> = segs
                    .into_iter()
                    .map(|seg| {
                        let spelt = prop_oneof![
                            Just(seg.to_owned()),
                            Just(seg.to_ascii_uppercase()),
                            Just(format!("%{:02X}{}", seg.as_bytes()[0], &seg[1..])),
                        ];
                        (noise_run(), sep(), spelt)
                    })
                    .collect();
                (parts, noise_run())
            })
            .prop_map(|(parts, tail)| {
                let mut path = String::new();
                for (noise, sep, seg) in parts {
                    for (s, t) in noise {
                        path.push_str(s);
                        path.push_str(t);
                    }
                    path.push('/');
                    path.push_str(sep.trim_start_matches('/'));
                    path.push_str(&seg);
                }
                for (s, t) in tail {
                    path.push_str(s);
                    path.push_str(t);
                }
                path
            })
    }

    // A model of the readings a Next.js server may make of a raw path, independent of the code above.

    /// WHATWG URL path parsing: `\` is `/`; `.`/`%2e` and `..`/`.%2e`/`%2e.`/`%2e%2e` are dot
    /// segments; empty segments stay; a final dot segment leaves a trailing slash.
    fn whatwg(path: &str) -> String {
        let path = path.replace('\\', "/");
        let parts: Vec<&str> = path.strip_prefix('/').unwrap_or(&path).split('/').collect();
        let mut out: Vec<&str> = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let lower = p.to_ascii_lowercase();
            if matches!(lower.as_str(), ".." | ".%2e" | "%2e." | "%2e%2e") {
                out.pop();
                if last {
                    out.push("");
                }
            } else if matches!(lower.as_str(), "." | "%2e") {
                if last {
                    out.push("");
                }
            } else {
                out.push(p);
            }
        }
        format!("/{}", out.join("/"))
    }

    /// `decodeURIComponent`: every `%XX`, `None` on a malformed escape or bytes that are not UTF-8.
    fn decode_uri_component(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let h = b.get(i + 1).copied().and_then(hex)?;
                let l = b.get(i + 2).copied().and_then(hex)?;
                out.push(h << 4 | l);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    fn strip_trailing_slash(s: &str) -> &str {
        if s.len() > 1 {
            s.strip_suffix('/').unwrap_or(s)
        } else {
            s
        }
    }

    /// Next.js 16.4.6 (`resolve-routes` then `filesystem.getItem`), and the other orders a server
    /// or a proxy in front may apply the same steps in.
    fn model_readings(raw: &str) -> Vec<String> {
        let mut out = Vec::new();
        let w = whatwg(raw);
        out.push(strip_trailing_slash(&w).to_owned());
        let d = decode_uri_component(&w).unwrap_or_else(|| w.clone());
        out.push(strip_trailing_slash(&d).to_owned());
        out.push(strip_trailing_slash(&whatwg(&d)).to_owned());
        if let Some(d) = decode_uri_component(raw) {
            out.push(strip_trailing_slash(&whatwg(&d)).to_owned());
            if let Some(dd) = decode_uri_component(&d) {
                out.push(strip_trailing_slash(&whatwg(&dd)).to_owned());
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn no_spelling_of_an_owned_route_is_forwarded(
            (i, path) in (0..ROUTES.len()).prop_flat_map(|i| (Just(i), spelling(ROUTES[i])))
        ) {
            prop_assert_eq!(verdict(&path), Verdict::Owned(i), "{}", path);
        }

        #[test]
        fn whatever_a_model_reading_routes_to_an_owned_handler_is_never_forwarded(path in tricky_path()) {
            let readings = model_readings(&path);
            if readings.iter().any(|r| ROUTES.contains(&r.as_str())) {
                prop_assert_ne!(verdict(&path), Verdict::Forward, "{} reads as {:?}", path, readings);
            }
        }

        #[test]
        fn a_path_whose_normalisation_names_an_owned_route_is_owned(path in tricky_path()) {
            if let Some(n) = normalize(&path)
                && let Some(i) = ROUTES.iter().position(|r| r.eq_ignore_ascii_case(&n))
            {
                prop_assert_eq!(verdict(&path), Verdict::Owned(i), "{} -> {}", path, n);
            }
        }

        #[test]
        fn normalisation_is_idempotent_and_keeps_the_verdict(path in tricky_path()) {
            if let Some(n) = normalize(&path) {
                let again = normalize(&n);
                prop_assert_eq!(again.as_deref(), Some(n.as_str()));
                if let Verdict::Owned(i) = verdict(&path) {
                    prop_assert_eq!(verdict(&n), Verdict::Owned(i));
                }
            }
        }

        #[test]
        fn plain_paths_without_route_words_are_forwarded(
            segs in proptest::collection::vec("[a-z0-9_.~-]{1,12}", 0..6)
        ) {
            let path = format!("/{}", segs.join("/"));
            let words = ["api", "cache", "invalidate", "events", "rum"];
            prop_assume!(!segs.iter().any(|s| words.iter().any(|w| s.starts_with(w))));
            prop_assert_eq!(verdict(&path), Verdict::Forward, "{}", path);
        }
    }
}
