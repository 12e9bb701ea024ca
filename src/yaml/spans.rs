//! Source locations of the nodes of one YAML document, for error reporting.
//!
//! The hot path never builds spans: documents are deserialized straight into typed structs.
//! When the validator reports a problem at a path such as `spec.scaling.maxScale`,
//! `spec.env.FOO` or `spec.secrets.envFrom[2]`, the caller parses the path with [`parse_path`],
//! re-scans that one document with [`SpanIndex::build`] (saphyr-parser's event API, which keeps
//! markers) and asks [`SpanIndex::locate`] / [`SpanIndex::locate_key`] for the line and column.
//!
//! Locations are 1-based lines and columns in the ORIGINAL source (the document's
//! [`first_line`](super::parse::Document::first_line) is applied); columns count characters.
//! A node starts at its first character including any anchor or tag (`&a value`, `!!str 3`);
//! a block mapping starts at its first key, a block sequence at its first item (after the `-`),
//! a block scalar (`|`, `>`) at its first content line, a flow collection at its bracket, and an
//! empty value (`key:`) at the `:` after its key. These are saphyr-parser's spans.

use std::collections::HashMap;
use std::fmt::Write as _;

use saphyr_parser::{Event, Parser, Span};

use super::parse::Document;

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// Parses a dotted path as the validator prints it: `spec.env.FOO`, `spec.secrets.envFrom[2]`,
/// `metadata.labels["app.kubernetes.io/name"]` (bracket-quoted keys may contain dots; `\"` and
/// `\\` escape inside them, and single quotes work too).
///
/// Lenient: a leading `.` and empty segments are ignored (`""` and `"."` are the root), and a
/// malformed bracket is read as part of a key.
pub fn parse_path(path: &str) -> Vec<PathSeg> {
    let mut segs = Vec::new();
    let mut key = String::new();
    let mut chars = path.chars().peekable();
    let flush = |key: &mut String, segs: &mut Vec<PathSeg>| {
        if !key.is_empty() {
            segs.push(PathSeg::Key(std::mem::take(key)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut key, &mut segs),
            '[' => {
                let rest: String = chars.clone().collect();
                match parse_bracket(&rest) {
                    Some((seg, consumed)) => {
                        flush(&mut key, &mut segs);
                        segs.push(seg);
                        for _ in 0..consumed {
                            chars.next();
                        }
                    }
                    None => key.push(c),
                }
            }
            _ => key.push(c),
        }
    }
    flush(&mut key, &mut segs);
    segs
}

/// Parses the inside of a bracket (`2]`, `"a.b"]`, `'a.b']`) following a `[`; returns the
/// segment and how many characters it used, including the closing `]`.
fn parse_bracket(rest: &str) -> Option<(PathSeg, usize)> {
    let mut chars = rest.chars();
    match chars.next()? {
        quote @ ('"' | '\'') => {
            let mut key = String::new();
            let mut used = 1;
            loop {
                let c = chars.next()?;
                used += 1;
                match c {
                    '\\' => {
                        key.push(chars.next()?);
                        used += 1;
                    }
                    c if c == quote => break,
                    c => key.push(c),
                }
            }
            (chars.next()? == ']').then_some((PathSeg::Key(key), used + 1))
        }
        _ => {
            let end = rest.find(']')?;
            let index = rest[..end].parse().ok()?;
            Some((PathSeg::Index(index), end + 1))
        }
    }
}

/// Renders a path so that [`parse_path`] reads it back: plain keys joined by `.`, indices as
/// `[n]`, keys that are empty or contain `.`, `[`, `]`, quotes, backslashes or whitespace as
/// `["..."]`.
pub fn format_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            PathSeg::Key(k) if is_plain_key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Key(k) => {
                out.push_str("[\"");
                for c in k.chars() {
                    if matches!(c, '"' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push_str("\"]");
            }
        }
    }
    out
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains(|c: char| matches!(c, '.' | '[' | ']' | '"' | '\'' | '\\') || c.is_whitespace())
}

/// Source location, 1-based, in the ORIGINAL file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

/// Locations of every node of one document, keyed by path.
///
/// Internally a tree of nodes, so paths can go through aliases: a path that continues below an
/// alias (`spec.base.x` with `base: *defaults`) is resolved inside the anchored node, while the
/// location of an alias node itself is where the alias appears.
#[derive(Debug, Clone)]
pub struct SpanIndex {
    nodes: Vec<Node>,
    root: Option<usize>,
    /// Anchor id (as numbered by saphyr) to node.
    anchors: HashMap<usize, usize>,
}

#[derive(Debug, Clone)]
struct Node {
    loc: Location,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar,
    Alias(usize),
    Seq(Vec<usize>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone)]
struct Entry {
    /// The key's value when it is a scalar; `None` for alias, sequence or mapping keys.
    key: Option<String>,
    key_loc: Location,
    value: usize,
}

/// A collection being filled while scanning.
struct Frame {
    node: usize,
    /// For a mapping: the key read, waiting for its value.
    pending_key: Option<(Option<String>, Location)>,
}

impl SpanIndex {
    /// Scans `doc` with saphyr-parser's event API. Returns None if the document does not parse.
    ///
    /// Only the first document of `doc.text` is indexed (after [`split_documents`] there is
    /// only one).
    ///
    /// [`split_documents`]: super::parse::split_documents
    pub fn build(doc: &Document<'_>) -> Option<SpanIndex> {
        let mut index = SpanIndex {
            nodes: Vec::new(),
            root: None,
            anchors: HashMap::new(),
        };
        let mut stack: Vec<Frame> = Vec::new();
        let to_loc = |span: &Span| Location {
            line: doc.first_line + span.start.line(),
            column: span.start.col() + 1,
        };
        for event in Parser::new_from_str(doc.text) {
            let (event, span) = event.ok()?;
            let loc = to_loc(&span);
            match event {
                Event::Scalar(value, _, anchor, _) => {
                    if let Some(frame) = stack.last_mut().filter(|f| index.expects_key(f)) {
                        frame.pending_key = Some((Some(value.into_owned()), loc));
                    } else {
                        let node = index.push(loc, Kind::Scalar, anchor);
                        index.attach(&mut stack, node);
                    }
                }
                Event::Alias(id) => {
                    if let Some(frame) = stack.last_mut().filter(|f| index.expects_key(f)) {
                        frame.pending_key = Some((None, loc));
                    } else {
                        let node = index.push(loc, Kind::Alias(id), 0);
                        index.attach(&mut stack, node);
                    }
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    let kind = match event {
                        Event::SequenceStart(..) => Kind::Seq(Vec::new()),
                        _ => Kind::Map(Vec::new()),
                    };
                    let node = index.push(loc, kind, anchor);
                    if let Some(frame) = stack.last_mut().filter(|f| index.expects_key(f)) {
                        // A complex key: scanned (to keep the stack right) but not addressable.
                        frame.pending_key = Some((None, loc));
                    } else {
                        index.attach(&mut stack, node);
                    }
                    stack.push(Frame {
                        node,
                        pending_key: None,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    stack.pop();
                }
                Event::DocumentEnd if index.root.is_some() => break,
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(_)
                | Event::DocumentEnd
                | Event::Nothing => {}
            }
        }
        Some(index)
    }

    fn push(&mut self, loc: Location, kind: Kind, anchor: usize) -> usize {
        let id = self.nodes.len();
        self.nodes.push(Node { loc, kind });
        if anchor != 0 {
            self.anchors.insert(anchor, id);
        }
        id
    }

    /// Whether the next node in `frame` is a mapping key.
    fn expects_key(&self, frame: &Frame) -> bool {
        matches!(self.nodes[frame.node].kind, Kind::Map(_)) && frame.pending_key.is_none()
    }

    /// Adds `node` as the next value of the innermost collection (or as the root).
    fn attach(&mut self, stack: &mut [Frame], node: usize) {
        let Some(frame) = stack.last_mut() else {
            self.root.get_or_insert(node);
            return;
        };
        match &mut self.nodes[frame.node].kind {
            Kind::Seq(items) => items.push(node),
            Kind::Map(entries) => {
                if let Some((key, key_loc)) = frame.pending_key.take() {
                    entries.push(Entry {
                        key,
                        key_loc,
                        value: node,
                    });
                }
            }
            Kind::Scalar | Kind::Alias(_) => {}
        }
    }

    /// Follows an alias to its anchored node (anchors never sit on aliases, so once is enough).
    fn resolve(&self, node: usize) -> usize {
        match self.nodes[node].kind {
            Kind::Alias(id) => self.anchors.get(&id).copied().unwrap_or(node),
            _ => node,
        }
    }

    /// The child of `node` at `seg` (through an alias), if any. For a key present more than once,
    /// the last occurrence (the one a map deserializer keeps).
    fn child(&self, node: usize, seg: &PathSeg) -> Option<usize> {
        match (&self.nodes[self.resolve(node)].kind, seg) {
            (Kind::Map(entries), PathSeg::Key(k)) => entries
                .iter()
                .rev()
                .find(|e| e.key.as_deref() == Some(k.as_str()))
                .map(|e| e.value),
            (Kind::Seq(items), PathSeg::Index(i)) => items.get(*i).copied(),
            _ => None,
        }
    }

    /// The mapping entries of the node at `path` (through aliases), if it is a mapping.
    fn entries_at(&self, path: &[PathSeg]) -> Option<&[Entry]> {
        let mut node = self.root?;
        for seg in path {
            node = self.child(node, seg)?;
        }
        match &self.nodes[self.resolve(node)].kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// Location of the VALUE node at `path` (for a map key path, where the value starts; for a
    /// missing path, the deepest existing ancestor, with `exact == false`).
    ///
    /// The empty path is the document's root node. None only when the document has no node.
    pub fn locate(&self, path: &[PathSeg]) -> Option<(Location, bool)> {
        let mut node = self.root?;
        for seg in path {
            match self.child(node, seg) {
                Some(child) => node = child,
                None => return Some((self.nodes[node].loc, false)),
            }
        }
        Some((self.nodes[node].loc, true))
    }

    /// Location of the KEY of the mapping entry at `path` (useful for "this field is not allowed"
    /// errors); None when the last segment is not a map key or the entry does not exist.
    pub fn locate_key(&self, path: &[PathSeg]) -> Option<Location> {
        let (PathSeg::Key(key), parent) = path.split_last()? else {
            return None;
        };
        let entries = self.entries_at(parent)?;
        entries
            .iter()
            .rev()
            .find(|e| e.key.as_deref() == Some(key.as_str()))
            .map(|e| e.key_loc)
    }

    /// Location of the second occurrence of the KEY at `path` when that key appears more than
    /// once in its mapping (YAML forbids it; map deserializers silently keep the last one).
    pub fn locate_duplicate_key(&self, path: &[PathSeg]) -> Option<Location> {
        let (PathSeg::Key(key), parent) = path.split_last()? else {
            return None;
        };
        let entries = self.entries_at(parent)?;
        entries
            .iter()
            .filter(|e| e.key.as_deref() == Some(key.as_str()))
            .nth(1)
            .map(|e| e.key_loc)
    }

    /// Interprets a path as `serde_yaml` prints it in error messages (`spec.items[1].name`,
    /// `.[0]` for a root sequence, map keys unquoted even when they contain dots, `?` for a
    /// non-scalar key) against this document, returning the structured path when it names an
    /// existing node. Ambiguities (dotted keys) are settled by the document's actual keys.
    pub fn resolve_serde_path(&self, path: &str) -> Option<Vec<PathSeg>> {
        let root = self.root?;
        let mut out = Vec::new();
        let found = match path {
            "." => true,
            _ if path.starts_with(".[") => self.match_rest(root, &path[1..], &mut out),
            _ if path.starts_with('[') => self.match_rest(root, path, &mut out),
            _ => self.match_key(root, path, &mut out),
        };
        found.then_some(out)
    }

    /// Matches `rest` (empty, `[n]...` or `.key...`) below `node`, pushing segments to `out`.
    fn match_rest(&self, node: usize, rest: &str, out: &mut Vec<PathSeg>) -> bool {
        if rest.is_empty() {
            return true;
        }
        if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else { return false };
            let Ok(i) = after[..end].parse::<usize>() else {
                return false;
            };
            let seg = PathSeg::Index(i);
            let Some(child) = self.child(node, &seg) else {
                return false;
            };
            out.push(seg);
            if self.match_rest(child, &after[end + 1..], out) {
                return true;
            }
            out.pop();
            return false;
        }
        match rest.strip_prefix('.') {
            Some(after) => self.match_key(node, after, out),
            None => false,
        }
    }

    /// Matches `text`, which starts with a map key, below mapping `node`.
    fn match_key(&self, node: usize, text: &str, out: &mut Vec<PathSeg>) -> bool {
        let Kind::Map(entries) = &self.nodes[self.resolve(node)].kind else {
            return false;
        };
        for entry in entries.iter().rev() {
            let key = entry.key.as_deref().unwrap_or("?");
            let Some(rest) = text.strip_prefix(key) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with(['.', '['])) {
                continue;
            }
            out.push(PathSeg::Key(key.to_owned()));
            if self.match_rest(entry.value, rest, out) {
                return true;
            }
            out.pop();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use indoc::indoc;

    use super::super::parse::split_documents;
    use super::*;

    fn key(k: &str) -> PathSeg {
        PathSeg::Key(k.to_owned())
    }

    fn loc(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    /// Index of the only document of `src`.
    fn index(src: &str) -> SpanIndex {
        let docs = split_documents(src);
        assert_eq!(docs.len(), 1, "{docs:?}");
        SpanIndex::build(&docs[0]).unwrap()
    }

    /// Exact location of `path`, as (line, column).
    fn at(index: &SpanIndex, path: &str) -> (usize, usize) {
        match index.locate(&parse_path(path)) {
            Some((l, true)) => (l.line, l.column),
            other => panic!("{path}: {other:?}"),
        }
    }

    const APP: &str = indoc! {"
        # a comment
        name: web
        spec:
          scaling:
            minScale: 1   # trailing comment
            maxScale: 10
          env:
            FOO: bar
            \"QUOTED.KEY\": 'v'
          secrets:
            envFrom:
            - db
            - name: cache
              optional: true
            - [x, y]
          script: |
            echo hi
            # not a comment
          flow: {a: 1, b: [x, {c: 2}]}
          empty:
    "};

    #[test]
    fn parse_path_reads_dots_indices_and_bracket_quoted_keys() {
        assert_eq!(
            parse_path("spec.env.FOO"),
            vec![key("spec"), key("env"), key("FOO")]
        );
        assert_eq!(
            parse_path("spec.secrets.envFrom[2]"),
            vec![key("spec"), key("secrets"), key("envFrom"), PathSeg::Index(2)]
        );
        assert_eq!(
            parse_path("metadata.labels[\"app.kubernetes.io/name\"].x"),
            vec![
                key("metadata"),
                key("labels"),
                key("app.kubernetes.io/name"),
                key("x")
            ]
        );
        assert_eq!(
            parse_path("a['q\\'d'][0][1]"),
            vec![key("a"), key("q'd"), PathSeg::Index(0), PathSeg::Index(1)]
        );
        assert_eq!(parse_path("[3].name"), vec![PathSeg::Index(3), key("name")]);
        assert_eq!(parse_path(""), vec![]);
        assert_eq!(parse_path("."), vec![]);
        assert_eq!(parse_path("a[oops"), vec![key("a[oops")]);
    }

    #[test]
    fn format_path_round_trips_through_parse_path() {
        let paths = [
            vec![key("spec"), key("env"), key("FOO")],
            vec![key("metadata"), key("labels"), key("app.kubernetes.io/name")],
            vec![
                PathSeg::Index(0),
                key("with \"quotes\" and \\"),
                PathSeg::Index(2),
            ],
            vec![key(""), key("a b")],
        ];
        for path in paths {
            assert_eq!(parse_path(&format_path(&path)), path, "{}", format_path(&path));
        }
        assert_eq!(
            format_path(&[key("spec"), key("ports"), PathSeg::Index(1)]),
            "spec.ports[1]"
        );
        assert_eq!(format_path(&[key("l"), key("a.b")]), "l[\"a.b\"]");
    }

    #[test]
    fn map_values_are_located_where_the_value_starts() {
        let index = index(APP);
        assert_eq!(at(&index, "name"), (2, 7));
        assert_eq!(at(&index, "spec.scaling.minScale"), (5, 15));
        assert_eq!(at(&index, "spec.scaling.maxScale"), (6, 15));
        assert_eq!(at(&index, "spec.env.FOO"), (8, 10));
        // A block mapping value starts at its first key.
        assert_eq!(at(&index, "spec.scaling"), (5, 5));
        assert_eq!(at(&index, ""), (2, 1));
        // A block scalar starts at its content (saphyr's span); an empty value at the colon.
        assert_eq!(at(&index, "spec.script"), (17, 5));
        assert_eq!(at(&index, "spec.empty"), (20, 8));
    }

    #[test]
    fn sequence_items_are_located_by_index() {
        let index = index(APP);
        // A block sequence starts at its first item (saphyr's span), not at the `-`.
        assert_eq!(at(&index, "spec.secrets.envFrom"), (12, 7));
        assert_eq!(at(&index, "spec.secrets.envFrom[0]"), (12, 7));
        assert_eq!(at(&index, "spec.secrets.envFrom[1]"), (13, 7));
        assert_eq!(at(&index, "spec.secrets.envFrom[1].optional"), (14, 17));
        assert_eq!(at(&index, "spec.secrets.envFrom[2]"), (15, 7));
        assert_eq!(at(&index, "spec.secrets.envFrom[2][1]"), (15, 11));
    }

    #[test]
    fn flow_collections_are_indexed_like_block_ones() {
        let index = index(APP);
        assert_eq!(at(&index, "spec.flow"), (19, 9));
        assert_eq!(at(&index, "spec.flow.a"), (19, 13));
        assert_eq!(at(&index, "spec.flow.b"), (19, 19));
        assert_eq!(at(&index, "spec.flow.b[1].c"), (19, 27));
        assert_eq!(index.locate_key(&parse_path("spec.flow.b")), Some(loc(19, 16)));
    }

    #[test]
    fn quoted_keys_are_matched_by_their_value() {
        let index = index(APP);
        assert_eq!(at(&index, "spec.env[\"QUOTED.KEY\"]"), (9, 19));
        assert_eq!(
            index.locate_key(&parse_path("spec.env[\"QUOTED.KEY\"]")),
            Some(loc(9, 5))
        );
    }

    #[test]
    fn a_missing_path_gives_the_deepest_existing_ancestor_not_exactly() {
        let index = index(APP);
        assert_eq!(
            index.locate(&parse_path("spec.scaling.target")),
            Some((loc(5, 5), false))
        );
        assert_eq!(
            index.locate(&parse_path("spec.secrets.envFrom[7].name")),
            Some((loc(12, 7), false))
        );
        assert_eq!(index.locate(&parse_path("nope.deeper")), Some((loc(2, 1), false)));
        // Wrong kind of step: an index into a mapping, a key into a scalar.
        assert_eq!(index.locate(&parse_path("spec[0]")), Some((loc(4, 3), false)));
        assert_eq!(index.locate(&parse_path("name.first")), Some((loc(2, 7), false)));
    }

    #[test]
    fn locate_key_finds_the_key_of_a_mapping_entry() {
        let index = index(APP);
        assert_eq!(
            index.locate_key(&parse_path("spec.scaling.maxScale")),
            Some(loc(6, 5))
        );
        assert_eq!(
            index.locate_key(&parse_path("spec.secrets.envFrom[1].optional")),
            Some(loc(14, 7))
        );
        assert_eq!(index.locate_key(&parse_path("spec.secrets.envFrom[1]")), None);
        assert_eq!(index.locate_key(&parse_path("spec.scaling.absent")), None);
        assert_eq!(index.locate_key(&[]), None);
    }

    #[test]
    fn locations_are_in_the_original_stream_for_later_documents() {
        let src = indoc! {"
            first: 1
            ---
            # second document
            spec:
              scaling:
                maxScale: 3
        "};
        let docs = split_documents(src);
        let index = SpanIndex::build(&docs[1]).unwrap();
        assert_eq!(
            index.locate(&parse_path("spec.scaling.maxScale")),
            Some((loc(6, 15), true))
        );
        assert_eq!(
            index.locate_key(&parse_path("spec.scaling.maxScale")),
            Some(loc(6, 5))
        );
    }

    #[test]
    fn crlf_documents_are_located_like_lf_ones() {
        let src = "a: 1\r\n---\r\nspec:\r\n  env:\r\n    FOO: bar\r\n";
        let docs = split_documents(src);
        let index = SpanIndex::build(&docs[1]).unwrap();
        assert_eq!(
            index.locate(&parse_path("spec.env.FOO")),
            Some((loc(5, 10), true))
        );
    }

    #[test]
    fn aliases_are_located_where_they_appear_and_paths_continue_through_them() {
        let index = index(indoc! {"
            defaults: &defaults
              minScale: 1
              maxScale: 3
            spec:
              scaling: *defaults
              tag: !!str 42
              anchored: &x value
        "});
        assert_eq!(at(&index, "spec.scaling"), (5, 12));
        assert_eq!(at(&index, "spec.scaling.maxScale"), (3, 13));
        assert_eq!(
            index.locate_key(&parse_path("spec.scaling.minScale")),
            Some(loc(2, 3))
        );
        // Anchors and tags are part of the node.
        assert_eq!(at(&index, "defaults"), (1, 11));
        assert_eq!(at(&index, "spec.tag"), (6, 8));
        assert_eq!(at(&index, "spec.anchored"), (7, 13));
    }

    #[test]
    fn non_ascii_text_is_counted_in_characters() {
        let index = index("é: 1\nnamé: {ü: ß}\n");
        assert_eq!(at(&index, "namé.ü"), (2, 11));
    }

    #[test]
    fn duplicate_keys_are_found_and_the_last_one_wins() {
        let index = index("env:\n  A: 1\n  B: 2\n  A: 3\n");
        assert_eq!(index.locate_duplicate_key(&parse_path("env.A")), Some(loc(4, 3)));
        assert_eq!(index.locate_duplicate_key(&parse_path("env.B")), None);
        assert_eq!(at(&index, "env.A"), (4, 6));
    }

    #[test]
    fn serde_yaml_paths_resolve_against_the_actual_keys() {
        let index = index(indoc! {"
            metadata:
              labels:
                app.kubernetes.io/name: web
                app: x
            items:
            - [a, {b.c: 1}]
            ? [complex, key]
            : v
        "});
        let resolve = |p: &str| index.resolve_serde_path(p).map(|segs| format_path(&segs));
        assert_eq!(
            resolve("metadata.labels.app.kubernetes.io/name").as_deref(),
            Some("metadata.labels[\"app.kubernetes.io/name\"]")
        );
        assert_eq!(
            resolve("metadata.labels.app").as_deref(),
            Some("metadata.labels.app")
        );
        assert_eq!(
            resolve("items[0][1].b.c").as_deref(),
            Some("items[0][1][\"b.c\"]")
        );
        assert_eq!(resolve(".").as_deref(), Some(""));
        assert_eq!(resolve("invalid type"), None);
        assert_eq!(resolve("items[9]"), None);
        assert_eq!(index.resolve_serde_path("?"), Some(vec![key("?")]));
        let seq = super::tests::index("- a\n- {b: 1}\n");
        assert_eq!(
            seq.resolve_serde_path(".[1].b"),
            Some(vec![PathSeg::Index(1), key("b")])
        );
    }

    #[test]
    fn documents_that_do_not_parse_have_no_index() {
        let docs = split_documents("a: [1\n");
        assert!(SpanIndex::build(&docs[0]).is_none());
        let docs = split_documents("--- # nothing\n");
        let index = SpanIndex::build(&docs[0]).unwrap();
        assert_eq!(index.locate(&[]), Some((loc(2, 1), true)));
    }
}
