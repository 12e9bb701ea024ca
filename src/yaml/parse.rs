//! Multi-document YAML input: splitting a stream into documents and deserializing one document.
//!
//! The hot path is deliberately cheap and parallel-friendly:
//!
//! 1. [`split_documents`] scans the stream text line by line (no YAML parsing, no copying) and
//!    returns one [`Document`] per YAML document, each borrowing its text from the source and
//!    remembering the source line it starts on.
//! 2. [`from_document`] deserializes one document on its own (so documents can be handed to a
//!    thread pool). Errors are reported as [`ParseError`] with a 1-based line and column in the
//!    ORIGINAL source (the document's line offset is applied) and the field path when known.
//!
//! This module (together with [`super::spans`]) is the only place that touches `serde_yaml`,
//! so the YAML backend can be swapped without touching callers.
//!
//! # Conventions
//!
//! * Lines and columns in [`ParseError`] are 1-based. Columns count characters (Unicode scalar
//!   values), not bytes, as both libyaml and saphyr do. A UTF-8 byte order mark at the start of
//!   the stream is not part of any document and does not count as a column.
//! * [`Document::first_line`] and [`Document::index`] are 0-based.
//! * Errors whose document is not YAML at all (scanner/parser errors, unknown anchors,
//!   recursion limits) are [`ParseErrorKind::Syntax`]; errors where the document is valid YAML
//!   but does not fit the target type (wrong type, unknown/missing/duplicate field, bad enum
//!   variant, duplicate map entry, custom `Deserialize` errors, empty document) are
//!   [`ParseErrorKind::Schema`].

use std::fmt;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::spans::{PathSeg, SpanIndex, format_path};

/// One document of a multi-document stream, borrowed from the source text.
///
/// `text` always starts at the beginning of a source line, so a line `n` (1-based) reported by a
/// parser for `text` is line `first_line + n` (1-based) of the source, and columns are unchanged.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    /// The document's text, including its `---` start marker line (and any directives or
    /// comments before it) and its `...` end marker line when present.
    pub text: &'a str,
    /// 0-based line of the source where `text` starts.
    pub first_line: usize,
    /// 0-based index of the document in the stream (counting every document
    /// [`split_documents`] returns, blank ones included).
    pub index: usize,
}

impl Document<'_> {
    /// Whether the document holds no node at all: only whitespace, comments, `%` directives and
    /// `---` / `...` markers (a `---` line followed by anything but a comment is content).
    ///
    /// Such documents deserialize as null; callers normally skip them.
    pub fn is_blank(&self) -> bool {
        self.text.split('\n').all(|raw| {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let rest = match marker(line) {
                Some(_) => &line[3..],
                None if line.starts_with('%') => return true,
                None => line,
            };
            let rest = rest.trim_start_matches([' ', '\t']);
            rest.is_empty() || rest.starts_with('#')
        })
    }

    /// The 1-based source line of the document's first line.
    fn start_line(&self) -> usize {
        self.first_line + 1
    }
}

/// A document marker at column 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// `---`: start of a document.
    Start,
    /// `...`: end of a document.
    End,
}

/// Recognises `---` / `...` at column 0 followed by a space, a tab or the end of the line
/// (`line` has no line terminator).
fn marker(line: &str) -> Option<Marker> {
    let kind = if line.starts_with("---") {
        Marker::Start
    } else if line.starts_with("...") {
        Marker::End
    } else {
        return None;
    };
    match line.as_bytes().get(3) {
        None | Some(b' ' | b'\t') => Some(kind),
        Some(_) => None,
    }
}

/// Whether a line (without terminator) is blank or a comment line.
fn is_trivia(line: &str) -> bool {
    let rest = line.trim_start_matches([' ', '\t']);
    rest.is_empty() || rest.starts_with('#')
}

/// Splits a YAML stream at document markers (`---` / `...` at column 0 followed by space, tab
/// or end of line; `%` directives). Never fails; never allocates the text.
///
/// The split follows the YAML stream structure, so it yields the documents a YAML loader
/// (libyaml / `serde_yaml::Deserializer`) yields, in the same order:
///
/// * Comments, blank lines and `%` directives before a document belong to that document's text.
///   In particular a leading `---` does not create an empty first document: `# c\n---\na: 1\n`
///   is one document whose text starts at line 0.
/// * A `---` line starts a new document when the current one has already started (it has
///   content or its own `---`). Content after the marker (`--- !tag`, `--- {a: 1}`, `--- |`)
///   belongs to the new document, whose `text` and `first_line` start at the marker line.
/// * A `...` line ends the current document and is included in its text. What follows it up to
///   the next content, directive or `---` belongs to the next document; trailing comments after
///   the last `...` form no document.
/// * A `%` directive line after a started document ends it and starts the next one.
/// * Explicitly empty documents (`---\n---\na: 1\n` or a trailing `---`) ARE returned, as
///   [blank](Document::is_blank) documents, and they take an `index`: `index` is the position in
///   the stream as a YAML loader counts documents. A stream of only comments has no document.
/// * A UTF-8 BOM at the start of `src` is skipped. Lines end at `\n` (`\r\n` works; a lone `\r`
///   is not a line break here).
///
/// A `---` at column 0 inside a block scalar ends the document, as the YAML spec says, so plain
/// line scanning agrees with YAML parsers. Two deliberate leniencies compared to libyaml: an
/// implicit document after `...` (without `---`) is accepted, and a `%` line at column 0 is
/// always taken as a directive.
pub fn split_documents(src: &str) -> Vec<Document<'_>> {
    let body = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut docs = Vec::new();
    // Current segment: where its text starts, and whether a document has started in it.
    let mut start = 0;
    let mut start_line = 0;
    let mut started = false;

    let mut pos = 0;
    let mut line_no = 0;
    while pos < body.len() {
        let (line_end, next) = match body[pos..].find('\n') {
            Some(i) => (pos + i, pos + i + 1),
            None => (body.len(), body.len()),
        };
        let raw = &body[pos..line_end];
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match marker(line) {
            Some(Marker::Start) => {
                if started {
                    push_doc(&mut docs, &body[start..pos], start_line);
                    start = pos;
                    start_line = line_no;
                }
                started = true;
            }
            Some(Marker::End) => {
                if started {
                    push_doc(&mut docs, &body[start..next], start_line);
                    start = next;
                    start_line = line_no + 1;
                    started = false;
                }
            }
            None if line.starts_with('%') => {
                if started {
                    push_doc(&mut docs, &body[start..pos], start_line);
                    start = pos;
                    start_line = line_no;
                    started = false;
                }
            }
            None => {
                if !is_trivia(line) {
                    started = true;
                }
            }
        }
        pos = next;
        line_no += 1;
    }
    if started {
        push_doc(&mut docs, &body[start..], start_line);
    }
    docs
}

fn push_doc<'a>(docs: &mut Vec<Document<'a>>, text: &'a str, first_line: usize) {
    let index = docs.len();
    docs.push(Document {
        text,
        first_line,
        index,
    });
}

/// Deserializes one document into `T` with `serde_yaml`.
///
/// Errors carry the location in the ORIGINAL source (the document's line offset applied) and
/// the field path when `serde_yaml` gives one (rendered like [`super::spans::parse_path`]
/// reads it: `spec.items[1].name`, `metadata.labels["app.kubernetes.io/name"]`).
///
/// A [blank](Document::is_blank) document is a [`ParseErrorKind::Schema`] error
/// `"empty document"` located at the document's first line, whatever `T` is.
///
/// The success path costs one `serde_yaml` parse; the error path re-reads the document (to
/// classify the error and to find the path), which is fine since it is cold.
pub fn from_document<T: DeserializeOwned>(doc: &Document<'_>) -> Result<T, ParseError> {
    if doc.is_blank() {
        return Err(ParseError {
            kind: ParseErrorKind::Schema,
            line: Some(doc.start_line()),
            column: Some(1),
            path: None,
            message: "empty document".to_owned(),
        });
    }
    // The fast path answers only when serde_yaml would produce the very same value; anything else,
    // including every error, goes through serde_yaml.
    if let Some(value) = super::fast::from_str(doc.text) {
        return Ok(value);
    }
    serde_yaml::from_str(doc.text).map_err(|err| convert_error(doc, &err))
}

/// Turns a `serde_yaml` error for `doc` into a [`ParseError`] relative to the original source.
fn convert_error(doc: &Document<'_>, err: &serde_yaml::Error) -> ParseError {
    let offset = doc.first_line;
    let rendered = err.to_string();
    let location = err.location().map(|l| (l.line(), l.column()));
    // If the document does not even load as "any YAML", the problem is the YAML itself; otherwise
    // it is the shape. serde_yaml loads the whole document before deserializing, so a YAML error
    // always wins over a shape error and the two classifications cannot disagree.
    let syntax = serde_yaml::from_str::<IgnoredAny>(doc.text).err();

    let mut line = location.map(|(l, _)| l + offset);
    let mut column = location.map(|(_, c)| c);
    if let Some(err) = syntax {
        // NB: serde_yaml can hit a shape error on the events before the scanner error (`image: [x`
        // at the end of a document gives "invalid type: sequence"), so report the YAML error itself.
        let rendered = err.to_string();
        let location = err.location().map(|l| (l.line(), l.column()));
        line = location.map(|(l, _)| l + offset);
        column = location.map(|(_, c)| c);
        let message = match location {
            Some((l, c)) => {
                let without = rendered.replacen(&format!(" at line {l} column {c}"), "", 1);
                shift_context_marks(&without, offset)
            }
            None => rendered,
        };
        return ParseError {
            kind: ParseErrorKind::Syntax,
            line,
            column,
            path: None,
            message,
        };
    }

    let mut message = match location {
        Some((l, c)) => {
            let suffix = format!(" at line {l} column {c}");
            rendered.strip_suffix(&suffix).unwrap_or(&rendered).to_owned()
        }
        None => rendered,
    };
    let index = SpanIndex::build(doc);
    let mut path_segs = None;
    let mut path = None;
    if let Some(((segs, rendered), rest)) = split_path_prefix(&message, index.as_ref()) {
        path = Some(rendered);
        path_segs = segs;
        message = rest;
    }
    // serde reports a duplicate struct field at the start of the mapping; point at the second key.
    if let (Some(index), Some(field)) = (index.as_ref(), duplicate_field_name(&message)) {
        let mut segs = path_segs.unwrap_or_default();
        segs.push(PathSeg::Key(field.to_owned()));
        if let Some(loc) = index.locate_duplicate_key(&segs) {
            line = Some(loc.line);
            column = Some(loc.column);
        }
    }
    ParseError {
        kind: ParseErrorKind::Schema,
        line,
        column,
        path,
        message,
    }
}

/// A path found in front of a message: (structured path when resolved against the document,
/// rendered path).
type PathPrefix = (Option<Vec<PathSeg>>, String);

/// Splits `"<path>: <message>"` as serde_yaml renders errors below the document root.
///
/// With a span index, a prefix counts as a path only if it names a node of the document (keys
/// may contain dots or `": "`, and root-level messages such as `invalid type: ...` have no
/// path). Without one (the span parser rejected the document), fall back to the first `": "`
/// whose prefix contains no whitespace or quotes.
fn split_path_prefix(message: &str, index: Option<&SpanIndex>) -> Option<(PathPrefix, String)> {
    match index {
        Some(index) => message.match_indices(": ").find_map(|(i, _)| {
            let segs = index.resolve_serde_path(&message[..i])?;
            let rendered = format_path(&segs);
            Some(((Some(segs), rendered), message[i + 2..].to_owned()))
        }),
        None => {
            let (prefix, rest) = message.split_once(": ")?;
            let plausible = !prefix.is_empty()
                && !prefix.contains(|c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\''));
            plausible.then(|| {
                let prefix = prefix
                    .strip_prefix('.')
                    .filter(|p| p.starts_with('['))
                    .unwrap_or(prefix);
                ((None, prefix.to_owned()), rest.to_owned())
            })
        }
    }
}

/// The field name of serde's ``duplicate field `name` `` message.
fn duplicate_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("duplicate field `")?.strip_suffix('`')
}

/// Adds `offset` to the line of every ` at line N column M` in a libyaml message (the context
/// mark, e.g. `..., while parsing a flow mapping at line 3 column 12`). libyaml messages are fixed
/// texts, so no user data can be rewritten by accident.
fn shift_context_marks(message: &str, offset: usize) -> String {
    const NEEDLE: &str = " at line ";
    let mut out = String::with_capacity(message.len() + 4);
    let mut rest = message;
    while let Some(i) = rest.find(NEEDLE) {
        let after = &rest[i + NEEDLE.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..i + NEEDLE.len()]);
        match after[..digits].parse::<usize>() {
            Ok(n) if after[digits..].starts_with(" column ") => out.push_str(&(n + offset).to_string()),
            _ => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// What kind of problem a [`ParseError`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not YAML at all (scanner/parser error, unknown anchor, recursion limit).
    Syntax,
    /// YAML but not the expected shape: wrong type, unknown field, missing field, duplicate
    /// field or map entry, bad enum variant, empty document.
    Schema,
}

/// An error deserializing one document, located in the original source.
///
/// Displays as `line:column: path: message`, each piece present only when known; the caller
/// prefixes the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Rendered(self))]
pub struct ParseError {
    /// Whether the document is not YAML at all, or YAML of the wrong shape.
    pub kind: ParseErrorKind,
    /// 1-based line in the original source.
    pub line: Option<usize>,
    /// 1-based column (in characters) in the original source.
    pub column: Option<usize>,
    /// Path of the offending node, e.g. `spec.scaling.minScale` or `spec.items[1]`, readable by
    /// [`super::spans::parse_path`]. For an unknown or missing field it is the enclosing mapping.
    pub path: Option<String>,
    /// The message, without the ` at line X column Y` suffix and without the path prefix.
    pub message: String,
}

/// Display helper for [`ParseError`].
struct Rendered<'a>(&'a ParseError);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        match (e.line, e.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: ")?,
            (Some(line), None) => write!(f, "{line}: ")?,
            _ => {}
        }
        if let Some(path) = &e.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&e.message)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use indoc::indoc;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct App {
        name: String,
        spec: Spec,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Spec {
        scaling: Scaling,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        ports: Vec<Port>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Scaling {
        min_scale: u32,
        max_scale: Option<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Port {
        name: String,
        number: u16,
    }

    /// (first_line, index, text) of every document.
    fn summary(src: &str) -> Vec<(usize, usize, &str)> {
        split_documents(src)
            .iter()
            .map(|d| (d.first_line, d.index, d.text))
            .collect()
    }

    fn first_lines(src: &str) -> Vec<usize> {
        split_documents(src).iter().map(|d| d.first_line).collect()
    }

    /// Parses `src` as a single document and returns the error.
    fn error_of<T: DeserializeOwned + fmt::Debug>(src: &str) -> ParseError {
        let docs = split_documents(src);
        assert_eq!(docs.len(), 1, "{docs:?}");
        from_document::<T>(&docs[0]).unwrap_err()
    }

    /// A stream whose second document starts (with `---`) on line 20 (1-based).
    fn stream_with_doc_on_line_20(doc: &str) -> String {
        let first = indoc! {"
            name: first
            spec:
              scaling:
                minScale: 1
        "};
        format!("{first}{}---\n{doc}", "# padding\n".repeat(15))
    }

    fn error_on_line_20(doc: &str) -> ParseError {
        let src = stream_with_doc_on_line_20(doc);
        let docs = split_documents(&src);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].first_line, 19);
        from_document::<App>(&docs[0]).unwrap();
        from_document::<App>(&docs[1]).unwrap_err()
    }

    #[test]
    fn three_documents_get_their_exact_first_lines_and_indices() {
        let src = indoc! {"
            a: 1
            ---
            b: 2
            c: 3
            ---
            # comment
            d: 4
        "};
        assert_eq!(
            summary(src),
            vec![
                (0, 0, "a: 1\n"),
                (1, 1, "---\nb: 2\nc: 3\n"),
                (4, 2, "---\n# comment\nd: 4\n")
            ]
        );
    }

    #[test]
    fn a_leading_marker_does_not_create_an_empty_first_document() {
        assert_eq!(
            summary("---\na: 1\n---\nb: 2\n"),
            vec![(0, 0, "---\na: 1\n"), (2, 1, "---\nb: 2\n")]
        );
        // Comments and directives before the first marker belong to the first document.
        let src = "# header\n%YAML 1.2\n---\na: 1\n";
        assert_eq!(summary(src), vec![(0, 0, src)]);
    }

    #[test]
    fn a_trailing_marker_yields_a_blank_document_like_yaml_loaders_do() {
        let docs = split_documents("a: 1\n---\n");
        assert_eq!(docs.len(), 2);
        assert!(!docs[0].is_blank());
        assert!(docs[1].is_blank());
        assert_eq!((docs[1].first_line, docs[1].index, docs[1].text), (1, 1, "---\n"));
    }

    #[test]
    fn explicitly_empty_documents_are_kept_and_counted() {
        let docs = split_documents("---\n---\n# nothing here\n---\na: 1\n");
        let blank: Vec<bool> = docs.iter().map(Document::is_blank).collect();
        assert_eq!(blank, vec![true, true, false]);
        assert_eq!(docs[2].index, 2);
        assert_eq!(docs[2].first_line, 3);
    }

    #[test]
    fn document_end_markers_close_documents_and_are_part_of_their_text() {
        let src = indoc! {"
            a: 1
            ...
            # between documents
            ---
            b: 2
            ...
            # trailing comment, no document
        "};
        assert_eq!(
            summary(src),
            vec![
                (0, 0, "a: 1\n...\n"),
                (2, 1, "# between documents\n---\nb: 2\n...\n")
            ]
        );
    }

    #[test]
    fn comment_only_streams_and_documents() {
        assert!(split_documents("").is_empty());
        assert!(split_documents("# just\n\n  # comments\n").is_empty());
        let docs = split_documents("--- # empty\n# c\n...\n");
        assert_eq!(docs.len(), 1);
        assert!(docs[0].is_blank());
        let err = from_document::<serde_yaml::Value>(&docs[0]).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::Schema);
        assert_eq!(err.message, "empty document");
        assert_eq!((err.line, err.column), (Some(1), Some(1)));
    }

    #[test]
    fn directives_start_a_new_document_after_content() {
        let src = "a: 1\n%YAML 1.2\n---\nb: 2\n";
        assert_eq!(
            summary(src),
            vec![(0, 0, "a: 1\n"), (1, 1, "%YAML 1.2\n---\nb: 2\n")]
        );
        let value: serde_yaml::Value = from_document(&split_documents(src)[1]).unwrap();
        assert_eq!(value["b"], 2);
    }

    #[test]
    fn crlf_line_endings_are_split_and_counted_like_lf() {
        let src = "a: 1\r\n---\r\nb: 2\r\n...\r\n---\tx\r\n";
        assert_eq!(first_lines(src), vec![0, 1, 4]);
        let docs = split_documents(src);
        assert_eq!(docs[1].text, "---\r\nb: 2\r\n...\r\n");
        let value: serde_yaml::Value = from_document(&docs[2]).unwrap();
        assert_eq!(value, "x");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_document() {
        let src = "\u{feff}name: a\nspec:\n  scaling:\n    minScale: 1\n    nope: 1\n";
        let docs = split_documents(src);
        assert_eq!(docs.len(), 1);
        assert!(docs[0].text.starts_with("name"));
        let err = from_document::<App>(&docs[0]).unwrap_err();
        assert_eq!((err.line, err.column), (Some(5), Some(5)));
    }

    #[test]
    fn content_after_a_start_marker_belongs_to_the_new_document() {
        let src = indoc! {"
            a: 1
            --- {name: b, spec: {scaling: {minScale: 2}}}
            --- !app
            name: c
            spec:
              scaling:
                minScale: 3
            --- |
              text
        "};
        let docs = split_documents(src);
        assert_eq!(first_lines(src), vec![0, 1, 2, 7]);
        assert!(docs[1].text.starts_with("--- {name: b"));
        assert_eq!(from_document::<App>(&docs[1]).unwrap().spec.scaling.min_scale, 2);
        assert_eq!(from_document::<App>(&docs[2]).unwrap().spec.scaling.min_scale, 3);
        assert_eq!(from_document::<String>(&docs[3]).unwrap(), "text\n");
        assert!(docs.iter().all(|d| !d.is_blank()));
    }

    #[test]
    fn markers_need_a_separator_to_count() {
        let src = "a: ---x\n---x: 1\n...y: 2\n----\n";
        assert_eq!(first_lines(src), vec![0]);
    }

    #[test]
    fn a_column_zero_marker_ends_a_block_scalar_as_the_yaml_spec_says() {
        let src = indoc! {"
            script: |
              echo one
            ---
            other: 2
        "};
        let docs = split_documents(src);
        assert_eq!(first_lines(src), vec![0, 2]);
        let first: serde_yaml::Value = from_document(&docs[0]).unwrap();
        assert_eq!(first["script"], "echo one\n");
    }

    /// Documents as serde_yaml's own multi-document iteration sees them (stops at the first error:
    /// serde_yaml 0.9 repeats a failed document forever).
    fn serde_yaml_documents(src: &str) -> Vec<serde_yaml::Value> {
        let mut out = Vec::new();
        for de in serde_yaml::Deserializer::from_str(src) {
            match serde_yaml::Value::deserialize(de) {
                Ok(value) => out.push(value),
                Err(err) => panic!("serde_yaml rejects {src:?}: {err}"),
            }
        }
        out
    }

    #[test]
    fn the_split_agrees_with_serde_yaml_multi_document_iteration() {
        let streams = [
            "a: 1\n---\nb: 2\n",
            "# head\n---\na: 1\n---\n---\nb: [1, 2]\n",
            "a: 1\n---\n",
            "a: 1\n...\n---\nb: 2\n...\n",
            "--- |\n  x\n---\n--- >\n folded\n text\n",
            "key: |\n  line\n---\nkey: 2\n",
            "--- {a: 1}\n--- [1, 2]\n--- !t scalar\n",
            "%YAML 1.2\n---\na: 1\n...\n%YAML 1.2\n---\nb: 1\n",
            "a: 1\r\n---\r\nb: 2\r\n",
            "\u{feff}a: 1\n---\nb: 2\n",
            indoc! {"
                apiVersion: v1
                kind: App
                spec:
                  script: |
                    #!/bin/sh
                    echo ok
                  list:
                  - a
                  - b
                ---
                # second
                apiVersion: v1
            "},
        ];
        for src in streams {
            let ours: Vec<serde_yaml::Value> = split_documents(src)
                .iter()
                .map(|d| serde_yaml::from_str(d.text).unwrap())
                .collect();
            assert_eq!(ours, serde_yaml_documents(src), "stream {src:?}");
        }
        // The one divergence: for a stream without any document, serde_yaml yields one null.
        assert_eq!(serde_yaml_documents("# only\n"), vec![serde_yaml::Value::Null]);
        assert!(split_documents("# only\n").is_empty());
    }

    #[test]
    fn an_unknown_field_is_a_schema_error_located_in_the_original_stream() {
        let err = error_on_line_20(indoc! {"
            name: web
            spec:
              scaling:
                minScale: 1
                maxScal: 3
        "});
        assert_eq!(err.kind, ParseErrorKind::Schema);
        assert_eq!(err.path.as_deref(), Some("spec.scaling"));
        assert_eq!((err.line, err.column), (Some(25), Some(5)));
        assert_eq!(
            err.message,
            "unknown field `maxScal`, expected `minScale` or `maxScale`"
        );
        assert_eq!(
            err.to_string(),
            "25:5: spec.scaling: unknown field `maxScal`, expected `minScale` or `maxScale`"
        );
    }

    #[test]
    fn a_wrong_type_points_at_the_value() {
        let err = error_on_line_20(indoc! {"
            name: web
            spec:
              scaling:
                minScale: many
        "});
        assert_eq!(err.kind, ParseErrorKind::Schema);
        assert_eq!(err.path.as_deref(), Some("spec.scaling.minScale"));
        assert_eq!((err.line, err.column), (Some(24), Some(15)));
        assert_eq!(err.message, "invalid type: string \"many\", expected u32");
    }

    #[test]
    fn a_missing_field_names_the_enclosing_mapping() {
        let err = error_on_line_20(indoc! {"
            name: web
            spec:
              scaling: {maxScale: 3}
        "});
        assert_eq!(err.kind, ParseErrorKind::Schema);
        assert_eq!(err.path.as_deref(), Some("spec.scaling"));
        assert_eq!(err.message, "missing field `minScale`");
        assert_eq!((err.line, err.column), (Some(23), Some(12)));
    }

    #[test]
    fn bad_yaml_is_a_syntax_error_with_original_locations_in_the_message_too() {
        let err = error_on_line_20(indoc! {"
            name: web
            spec:
              scaling: {minScale: 1
        "});
        assert_eq!(err.kind, ParseErrorKind::Syntax);
        assert_eq!(err.path, None);
        assert_eq!((err.line, err.column), (Some(24), Some(1)));
        assert_eq!(
            err.message,
            "did not find expected ',' or '}', while parsing a flow mapping at line 23 column 12"
        );

        let err = error_of::<App>("name: a\n  spec: b: c\n");
        assert_eq!(err.kind, ParseErrorKind::Syntax);
        assert_eq!(err.message, "mapping values are not allowed in this context");
        assert_eq!((err.line, err.column), (Some(2), Some(7)));

        let err = error_of::<App>("name: \"unterminated\n");
        assert_eq!(err.kind, ParseErrorKind::Syntax);
        assert!(err.message.starts_with("found unexpected end of stream"), "{err}");
    }

    #[test]
    fn unknown_anchors_are_syntax_errors() {
        let err = error_of::<serde_yaml::Value>("a: *nowhere\n");
        assert_eq!(err.kind, ParseErrorKind::Syntax);
        assert_eq!(err.message, "unknown anchor");
        assert_eq!((err.line, err.column), (Some(1), Some(4)));
    }

    #[test]
    fn a_duplicate_field_is_a_schema_error_at_the_second_key() {
        let err = error_of::<App>(indoc! {"
            name: a
            spec:
              scaling:
                minScale: 1
                minScale: 2
        "});
        assert_eq!(err.kind, ParseErrorKind::Schema);
        assert_eq!(err.path.as_deref(), Some("spec.scaling"));
        assert_eq!(err.message, "duplicate field `minScale`");
        assert_eq!((err.line, err.column), (Some(5), Some(5)));

        let err = error_on_line_20("name: a\nname: b\n");
        assert_eq!((err.kind, err.path.as_deref()), (ParseErrorKind::Schema, None));
        assert_eq!((err.line, err.column), (Some(22), Some(1)));
    }

    #[test]
    fn a_duplicate_map_entry_is_a_schema_error_for_values() {
        let err = error_of::<serde_yaml::Value>("env:\n  A: 1\n  A: 2\n");
        assert_eq!(err.kind, ParseErrorKind::Schema);
        assert_eq!(err.path.as_deref(), Some("env"));
        assert_eq!(err.message, "duplicate entry with key \"A\"");
    }

    #[test]
    fn sequence_and_dotted_key_paths_are_rendered_for_parse_path() {
        let err = error_of::<App>(indoc! {"
            name: a
            spec:
              scaling: {minScale: 1}
              ports:
              - {name: http, number: 80}
              - {name: grpc, number: 70000}
        "});
        assert_eq!(err.path.as_deref(), Some("spec.ports[1].number"));
        assert_eq!((err.line, err.column), (Some(6), Some(26)));

        let err = error_of::<App>(indoc! {"
            name: a
            spec: {scaling: {minScale: 1}}
            labels:
              app.kubernetes.io/name: [web]
        "});
        assert_eq!(err.path.as_deref(), Some("labels[\"app.kubernetes.io/name\"]"));
        assert_eq!(err.message, "invalid type: sequence, expected a string");
        assert_eq!((err.line, err.column), (Some(4), Some(27)));

        let err = error_of::<Vec<Port>>("- {name: a, number: 1}\n- {name: b, number: x}\n");
        assert_eq!(err.path.as_deref(), Some("[1].number"));
    }

    #[test]
    fn root_level_errors_have_no_path_even_when_the_message_contains_a_colon() {
        let err = error_of::<App>("- 1\n- 2\n");
        assert_eq!(err.kind, ParseErrorKind::Schema);
        assert_eq!(err.path, None);
        assert_eq!(err.message, "invalid type: sequence, expected struct App");
        assert_eq!((err.line, err.column), (Some(1), Some(1)));
        assert_eq!(
            err.to_string(),
            "1:1: invalid type: sequence, expected struct App"
        );
    }

    #[test]
    fn errors_in_crlf_documents_have_lf_style_locations() {
        let src = "a: 1\r\n---\r\nname: a\r\nspec:\r\n  scaling:\r\n    minScale: x\r\n";
        let docs = split_documents(src);
        let err = from_document::<App>(&docs[1]).unwrap_err();
        assert_eq!(err.path.as_deref(), Some("spec.scaling.minScale"));
        assert_eq!((err.line, err.column), (Some(6), Some(15)));
    }

    #[test]
    fn display_shows_only_the_known_pieces() {
        let mut err = ParseError {
            kind: ParseErrorKind::Syntax,
            line: None,
            column: None,
            path: None,
            message: "boom".to_owned(),
        };
        assert_eq!(err.to_string(), "boom");
        err.line = Some(3);
        assert_eq!(err.to_string(), "3: boom");
        err.column = Some(7);
        err.path = Some("spec.x".to_owned());
        assert_eq!(err.to_string(), "3:7: spec.x: boom");
    }

    #[test]
    fn context_marks_are_shifted_but_other_numbers_are_not() {
        assert_eq!(
            shift_context_marks("x, while parsing at line 3 column 12", 10),
            "x, while parsing at line 13 column 12"
        );
        assert_eq!(shift_context_marks("at line 3 only", 10), "at line 3 only");
    }
}
