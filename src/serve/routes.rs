//! Route templating: a request path or a RUM beacon's pathname becomes the Next.js route that serves
//! it (`/blog/[slug]`), or `other`, so metric labels stay bounded however many distinct URLs arrive.
//!
//! The routes come from the app's own build: Next.js writes `.next/routes-manifest.json` (its
//! `staticRoutes` and `dynamicRoutes`, which the standalone server needs at run time), and
//! `--route PATTERN` adds more. At most [`MAX_ROUTES`] patterns are kept.

use std::collections::HashSet;
use std::path::Path;

/// Label of every path no route matches.
pub const OTHER: &str = "other";
/// Most route patterns kept (the label set is at most this plus `other`).
pub const MAX_ROUTES: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    /// A literal segment.
    Static(String),
    /// `[name]`: exactly one segment.
    Dynamic,
    /// `[...name]`: one or more segments.
    CatchAll,
    /// `[[...name]]`: zero or more segments.
    OptionalCatchAll,
}

#[derive(Debug, Clone)]
struct Pattern {
    label: String,
    segments: Vec<Segment>,
}

impl Pattern {
    fn parse(page: &str) -> Result<Self, String> {
        if !page.starts_with('/') {
            return Err(format!("route {page:?} does not start with `/`"));
        }
        let parts: Vec<&str> = page.split('/').filter(|s| !s.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let seg = if let Some(inner) = part.strip_prefix("[[...").and_then(|p| p.strip_suffix("]]")) {
                if inner.is_empty() || !last {
                    return Err(format!("route {page:?}: `[[...name]]` must be the last segment"));
                }
                Segment::OptionalCatchAll
            } else if let Some(inner) = part.strip_prefix("[...").and_then(|p| p.strip_suffix(']')) {
                if inner.is_empty() || !last {
                    return Err(format!("route {page:?}: `[...name]` must be the last segment"));
                }
                Segment::CatchAll
            } else if let Some(inner) = part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
                if inner.is_empty() || inner.contains(['[', ']']) {
                    return Err(format!("route {page:?}: bad segment {part:?}"));
                }
                Segment::Dynamic
            } else if part.contains(['[', ']']) {
                return Err(format!("route {page:?}: bad segment {part:?}"));
            } else {
                Segment::Static((*part).to_owned())
            };
            segments.push(seg);
        }
        Ok(Self {
            label: page.to_owned(),
            segments,
        })
    }

    fn is_static(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Static(_)))
    }

    fn matches(&self, parts: &[&str]) -> bool {
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Static(s) => {
                    if parts.get(i) != Some(&s.as_str()) {
                        return false;
                    }
                    i += 1;
                }
                Segment::Dynamic => {
                    if i >= parts.len() {
                        return false;
                    }
                    i += 1;
                }
                Segment::CatchAll => return i < parts.len(),
                Segment::OptionalCatchAll => return true,
            }
        }
        i == parts.len()
    }
}

/// The app's routes.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    base_path: String,
    locales: Vec<String>,
    statics: HashSet<String>,
    dynamics: Vec<Pattern>,
}

impl Routes {
    /// Routes from patterns (`/`, `/blog/[slug]`, `/docs/[...path]`, `/[[...slug]]`). Dynamic routes are
    /// tried most specific first, as Next.js does: literal segments before `[x]` before catch-alls.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>, base_path: &str) -> Result<Self, String> {
        let mut routes = Self {
            base_path: base_path.trim_end_matches('/').to_owned(),
            ..Self::default()
        };
        for page in patterns.into_iter().take(MAX_ROUTES) {
            let p = Pattern::parse(page)?;
            if p.is_static() {
                routes.statics.insert(normalize(&p.label).to_owned());
            } else if !routes.dynamics.iter().any(|d| d.label == p.label) {
                routes.dynamics.push(p);
            }
        }
        routes.dynamics.sort_by(|a, b| a.segments.cmp(&b.segments));
        Ok(routes)
    }

    /// Routes from a Next.js `routes-manifest.json` (its `basePath`, `i18n.locales`,
    /// `staticRoutes[].page` and `dynamicRoutes[].page`) plus `extra` patterns.
    pub fn from_manifest(text: &str, extra: &[String]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Manifest {
            #[serde(default)]
            base_path: String,
            #[serde(default)]
            i18n: Option<I18n>,
            #[serde(default)]
            static_routes: Vec<Route>,
            #[serde(default)]
            dynamic_routes: Vec<Route>,
        }
        #[derive(serde::Deserialize)]
        struct I18n {
            #[serde(default)]
            locales: Vec<String>,
        }
        #[derive(serde::Deserialize)]
        struct Route {
            page: String,
        }
        let m: Manifest =
            serde_json::from_str(text).map_err(|e| format!("not a Next.js routes manifest: {e}"))?;
        let pages = m
            .static_routes
            .iter()
            .chain(&m.dynamic_routes)
            .map(|r| r.page.as_str())
            .chain(extra.iter().map(String::as_str));
        let mut routes = Self::new(pages, &m.base_path)?;
        routes.locales = m.i18n.map(|i| i.locales).unwrap_or_default();
        Ok(routes)
    }

    /// Routes from the manifest at `path` when it exists, plus `extra` patterns.
    pub fn load(path: &Path, extra: &[String]) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_manifest(&text, extra).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Self::new(extra.iter().map(String::as_str), "")
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Where the app's routes sit (its `basePath` and i18n locales), for [`super::path::classify`].
    pub fn scope(&self) -> super::path::Scope {
        super::path::Scope::new(&self.base_path, &self.locales)
    }

    /// Number of patterns (the label set is at most this plus `other`).
    pub fn len(&self) -> usize {
        self.statics.len() + self.dynamics.len()
    }

    /// Whether no route is known (every path is `other`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The route label of a path or URL path (`?query` and `#fragment` ignored): the route pattern that
    /// serves it, or [`OTHER`].
    pub fn template<'a>(&'a self, path: &str) -> &'a str {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let path = if self.base_path.is_empty() {
            path
        } else {
            match path.strip_prefix(self.base_path.as_str()) {
                Some("") => "/",
                Some(rest) if rest.starts_with('/') => rest,
                _ => return OTHER,
            }
        };
        let path = normalize(path);
        if let Some(s) = self.statics.get(path) {
            return s;
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.dynamics
            .iter()
            .find(|p| p.matches(&parts))
            .map_or(OTHER, |p| p.label.as_str())
    }
}

/// `/a/b/` → `/a/b`; `/` stays.
fn normalize(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    if t.is_empty() { "/" } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        Routes::new(
            [
                "/",
                "/blog",
                "/blog/[slug]",
                "/blog/new",
                "/docs/[...path]",
                "/shop/[[...rest]]",
                "/[team]/settings",
            ],
            "",
        )
        .unwrap()
    }

    #[test]
    fn paths_map_to_their_route_or_other() {
        let r = routes();
        for (path, want) in [
            ("/", "/"),
            ("", "/"),
            ("/?utm=1", "/"),
            ("/blog/", "/blog"),
            ("/blog/new", "/blog/new"),
            ("/blog/hello-world?x=1#top", "/blog/[slug]"),
            ("/blog/a/b", OTHER),
            ("/docs", OTHER),
            ("/docs/a", "/docs/[...path]"),
            ("/docs/a/b/c", "/docs/[...path]"),
            ("/shop", "/shop/[[...rest]]"),
            ("/shop/x/y", "/shop/[[...rest]]"),
            ("/acme/settings", "/[team]/settings"),
            ("/nope/nothing/here", OTHER),
        ] {
            assert_eq!(r.template(path), want, "{path}");
        }
    }

    #[test]
    fn specific_routes_win_over_catch_alls() {
        let r = Routes::new(["/[[...all]]", "/[id]", "/about/[x]"], "").unwrap();
        assert_eq!(r.template("/about/me"), "/about/[x]");
        assert_eq!(r.template("/42"), "/[id]");
        assert_eq!(r.template("/a/b/c"), "/[[...all]]");
    }

    #[test]
    fn a_flood_of_unique_paths_keeps_the_label_set_bounded() {
        let r = routes();
        let labels: HashSet<&str> = (0..20_000)
            .map(|i| format!("/{i}/x/{}", i * 7))
            .collect::<Vec<_>>()
            .iter()
            .map(|p| r.template(p))
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        assert_eq!(labels, HashSet::from([OTHER]));
        assert!(r.len() <= MAX_ROUTES);
    }

    #[test]
    fn reads_a_next_routes_manifest_with_base_path() {
        let manifest = r#"{"version":3,"basePath":"/app","pages404":true,
            "staticRoutes":[{"page":"/","regex":"^/(?:/)?$"},{"page":"/about","regex":"^/about(?:/)?$"}],
            "dynamicRoutes":[{"page":"/posts/[id]","regex":"^/posts/([^/]+?)(?:/)?$"}],
            "dataRoutes":[],"redirects":[]}"#;
        let r = Routes::from_manifest(manifest, &["/extra/[x]".to_owned()]).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r.template("/app"), "/");
        assert_eq!(r.template("/app/about"), "/about");
        assert_eq!(r.template("/app/posts/7"), "/posts/[id]");
        assert_eq!(r.template("/app/extra/1"), "/extra/[x]");
        assert_eq!(r.template("/about"), OTHER);
        assert_eq!(r.template("/application"), OTHER);
        assert_eq!(r.scope(), super::super::path::Scope::new("/app", &[]));
        let with_locales = r#"{"basePath":"","i18n":{"locales":["en","fr"],"defaultLocale":"en"}}"#;
        assert_eq!(
            Routes::from_manifest(with_locales, &[]).unwrap().scope(),
            super::super::path::Scope::new("", &["en".to_owned(), "fr".to_owned()])
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["blog", "/a/[...x]/b", "/[[...x]]/y", "/a/[]", "/a[b]"] {
            assert!(Routes::new([bad], "").is_err(), "{bad}");
        }
        assert!(Routes::from_manifest("{not json", &[]).is_err());
    }

    #[test]
    fn at_most_max_routes_are_kept() {
        let many: Vec<String> = (0..MAX_ROUTES + 50).map(|i| format!("/r{i}")).collect();
        let r = Routes::new(many.iter().map(String::as_str), "").unwrap();
        assert_eq!(r.len(), MAX_ROUTES);
    }
}
