//! A fast-path YAML deserializer for the strict subset of block YAML that NextApp documents use.
//!
//! knext deserializes thousands of small documents per run, and `serde_yaml` (a libyaml port that
//! builds an event list per document) is the largest single cost. This module parses the common shape
//! (block mappings and sequences of single-line scalars, comments, blank lines, an optional `---`) into
//! a small borrowed tree and implements [`serde::Deserializer`] over it, mirroring `serde_yaml` 0.9.34's
//! `de.rs` method by method: the same scalar resolution (null, bool, the `0x`/`0o`/`0b` integer forms,
//! `.inf`/`.nan`, "leading zeros are a string"), the same rules for which `deserialize_*` accepts a
//! quoted or a plain scalar, the same recursion limit and the same empty-scalar-as-empty-collection
//! behaviour.
//!
//! The invariant: whenever [`from_str`] returns `Some(v)`, `serde_yaml::from_str(text)` would have
//! returned exactly `Ok(v)`. Anything outside the subset, anything ambiguous, and every deserialization
//! error yields `None`, and the caller falls back to `serde_yaml`, which stays the authority for values
//! and for error messages. This module never produces errors of its own.
//!
//! It is pure (std and serde only, no I/O, no global state) and shared with `build.rs`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::num::ParseIntError;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};

/// Deserializes one YAML document with a fast parser for a strict subset of block YAML. Returns `None`
/// whenever the document uses anything outside the subset, or whenever deserialization fails for any
/// reason: the caller then runs serde_yaml, which produces the authoritative value or error message.
/// Whenever it returns `Some(v)`, serde_yaml 0.9 would have returned exactly `Ok(v)` for the same text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Option<T> {
    let root = parse_document(text)?;
    T::deserialize(De {
        node: &root,
        depth: RECURSION_LIMIT,
    })
    .ok()
}

/// serde_yaml's `remaining_depth` at the document root (sequences, mappings and newtype structs).
const RECURSION_LIMIT: u8 = 128;
/// Nesting depth of collections beyond which the parser gives up (well below `RECURSION_LIMIT`).
const MAX_DEPTH: usize = 64;
/// libyaml refuses simple keys longer than 1024 characters; stay well clear of that.
const MAX_KEY_LEN: usize = 1000;
/// Deeper indentation than this is not worth scanning (and not written by anyone).
const MAX_INDENT: usize = 1000;

// ---------------------------------------------------------------------------------------------------
// Tree

/// A parsed node. Keys are always `Node::Scalar`.
enum Node<'a> {
    /// A scalar with its decoded value; `plain` is false for single- and double-quoted scalars.
    Scalar {
        value: Cow<'a, str>,
        plain: bool,
    },
    Map(Vec<(Node<'a>, Node<'a>)>),
    Seq(Vec<Node<'a>>),
}

const EMPTY: Node<'static> = Node::Scalar {
    value: Cow::Borrowed(""),
    plain: true,
};

/// A significant line: not blank, not a comment line, not a document marker.
#[derive(Clone, Copy)]
struct Line<'a> {
    /// Column of the first non-space character (for a virtual line after `- `, its column in the file).
    indent: usize,
    /// The line from its first non-space character, without the line break.
    text: &'a str,
}

fn parse_document(text: &str) -> Option<Node<'_>> {
    let ascii = text.is_ascii();
    if ascii && !ascii_ok(text) {
        return None;
    }
    let lines = significant_lines(text, !ascii || text.contains('\r'))?;
    let first = *lines.first()?;
    let mut parser = Parser { lines, pos: 0 };
    let root = parser.block(first.indent, 0)?;
    (parser.pos == parser.lines.len()).then_some(root)
}

/// An ASCII document: printable characters, line feeds and carriage returns (checked per line).
fn ascii_ok(text: &str) -> bool {
    text.bytes().fold(true, |ok, b| {
        ok & ((b >= 0x20) | (b == b'\n') | (b == b'\r')) & (b != 0x7F)
    })
}

/// Only printable characters that libyaml treats like we do: no tabs, no CR, no NEL/LS/PS (line breaks
/// for libyaml), no BOM, no C0/C1 controls.
fn chars_ok(line: &str) -> bool {
    line.chars().all(|c| {
        let c = u32::from(c);
        (0x20..0x7F).contains(&c)
            || ((0xA0..=0xFFFD).contains(&c) && !(0x2028..=0x2029).contains(&c) && c != 0xFEFF)
            || c >= 0x10000
    })
}

/// Splits into significant lines, handling the optional leading `---` and trailing `...` markers.
fn significant_lines(text: &str, check_lines: bool) -> Option<Vec<Line<'_>>> {
    let mut lines = Vec::with_capacity(text.len() / 24 + 1);
    let (mut started, mut ended) = (false, false);
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut more = true;
    while more {
        // Hand-rolled: lines are short, and memchr's setup costs more than it saves here.
        let mut first = start;
        while first < bytes.len() && bytes[first] == b' ' {
            first += 1;
        }
        let mut end = first;
        while end < bytes.len() && bytes[end] != b'\n' {
            end += 1;
        }
        more = end < bytes.len();
        let (line_start, next_start) = (start, end + 1);
        if end > line_start && bytes[end - 1] == b'\r' {
            if !more {
                return None;
            }
            end -= 1;
        }
        start = next_start;
        let line = &text[line_start..end];
        if check_lines && !chars_ok(line) {
            return None;
        }
        let indent = first.min(end) - line_start;
        let rest = &line[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if ended || indent > MAX_INDENT {
            return None;
        }
        if indent == 0 && (rest.starts_with("---") || rest.starts_with("...")) {
            if !trailing_ok(&rest[3..]) {
                return None;
            }
            if rest.starts_with("---") {
                if started || !lines.is_empty() {
                    return None;
                }
                started = true;
            } else {
                if lines.is_empty() {
                    return None;
                }
                ended = true;
            }
            continue;
        }
        lines.push(Line { indent, text: rest });
    }
    Some(lines)
}

/// After a complete value: nothing, or spaces optionally followed by a comment.
fn trailing_ok(after: &str) -> bool {
    if after.is_empty() {
        return true;
    }
    let rest = after.trim_start_matches(' ');
    rest.len() < after.len() && (rest.is_empty() || rest.starts_with('#'))
}

fn is_seq_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.pos).copied()
    }

    /// A block collection whose first line is the next line, at `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Option<Node<'a>> {
        let line = self.peek()?;
        if is_seq_item(line.text) {
            self.seq(indent, depth + 1)
        } else {
            self.pos += 1;
            self.map(line, depth + 1)
        }
    }

    /// The value of a key or of a `-` with nothing after it on its line.
    fn nested(&mut self, indent: usize, indentless_ok: bool, depth: usize) -> Option<Node<'a>> {
        match self.peek() {
            Some(next) if next.indent > indent => self.block(next.indent, depth),
            Some(next) if indentless_ok && next.indent == indent && is_seq_item(next.text) => {
                self.seq(indent, depth + 1)
            }
            _ => Some(EMPTY),
        }
    }

    /// After a value on the line of its key or dash: a deeper line would continue it.
    fn no_deeper(&self, indent: usize) -> Option<()> {
        match self.peek() {
            Some(next) if next.indent > indent => None,
            _ => Some(()),
        }
    }

    fn seq(&mut self, indent: usize, depth: usize) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent {
                return None;
            }
            if !is_seq_item(line.text) {
                break;
            }
            self.pos += 1;
            let after = &line.text[1..];
            let rest = after.trim_start_matches(' ');
            let item = if rest.is_empty() || rest.starts_with('#') {
                self.nested(indent, false, depth)?
            } else if is_seq_item(rest) {
                return None;
            } else if parse_key(rest).is_some() {
                let col = indent + 1 + (after.len() - rest.len());
                self.map(
                    Line {
                        indent: col,
                        text: rest,
                    },
                    depth + 1,
                )?
            } else {
                let value = inline_value(rest)?;
                self.no_deeper(indent)?;
                value
            };
            items.push(item);
        }
        Some(Node::Seq(items))
    }

    /// A block mapping whose first entry is `first` (already consumed), at `first.indent`.
    fn map(&mut self, first: Line<'a>, depth: usize) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let indent = first.indent;
        let mut entries = Vec::new();
        let mut line = first;
        loop {
            let (key, rest) = parse_key(line.text)?;
            let rest = rest.trim_start_matches(' ');
            let value = if rest.is_empty() || rest.starts_with('#') {
                self.nested(indent, true, depth)?
            } else {
                let value = inline_value(rest)?;
                self.no_deeper(indent)?;
                value
            };
            entries.push((key, value));
            match self.peek() {
                Some(next) if next.indent == indent => {
                    if is_seq_item(next.text) {
                        return None;
                    }
                    self.pos += 1;
                    line = next;
                }
                Some(next) if next.indent > indent => return None,
                _ => break,
            }
        }
        no_duplicates(&entries)?;
        Some(Node::Map(entries))
    }
}

/// Whether a plain scalar may start here: no indicator, and no `-`, `?`, `:` that could be one.
fn plain_start_ok(text: &str) -> bool {
    match text.as_bytes() {
        [] => false,
        [b'-', next, ..] => *next != b' ',
        [b'-'] => false,
        [first, ..] => !matches!(
            first,
            b'[' | b']'
                | b'{'
                | b'}'
                | b','
                | b'#'
                | b'&'
                | b'*'
                | b'!'
                | b'|'
                | b'>'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
                | b'`'
                | b'?'
                | b':'
        ),
    }
}

/// Parses `key:` at the start of `text`; returns the key and what follows the colon (empty or starting
/// with a space).
fn parse_key(text: &str) -> Option<(Node<'_>, &str)> {
    let (key, after) = match text.as_bytes().first()? {
        b'"' => {
            let (value, after) = double_quoted(&text[1..])?;
            (Node::Scalar { value, plain: false }, after)
        }
        b'\'' => {
            let (value, after) = single_quoted(&text[1..])?;
            (Node::Scalar { value, plain: false }, after)
        }
        _ => {
            if !plain_start_ok(text) {
                return None;
            }
            let bytes = text.as_bytes();
            let mut end = None;
            for (i, &b) in bytes.iter().enumerate() {
                if b == b':' && matches!(bytes.get(i + 1), None | Some(b' ')) {
                    end = Some(i);
                    break;
                }
                if b == b'#' && i > 0 && bytes[i - 1] == b' ' {
                    return None;
                }
            }
            let end = end?;
            let key = &text[..end];
            if key.ends_with(' ') {
                return None;
            }
            (
                Node::Scalar {
                    value: Cow::Borrowed(key),
                    plain: true,
                },
                &text[end..],
            )
        }
    };
    if text.len() - after.len() > MAX_KEY_LEN {
        return None;
    }
    let rest = after.strip_prefix(':')?;
    (rest.is_empty() || rest.starts_with(' ')).then_some((key, rest))
}

/// A value on the line of its key or dash: a one-line scalar, `{}` or `[]`, then an optional comment.
fn inline_value(text: &str) -> Option<Node<'_>> {
    match text.as_bytes().first()? {
        b'"' => {
            let (value, after) = double_quoted(&text[1..])?;
            trailing_ok(after).then_some(Node::Scalar { value, plain: false })
        }
        b'\'' => {
            let (value, after) = single_quoted(&text[1..])?;
            trailing_ok(after).then_some(Node::Scalar { value, plain: false })
        }
        b'{' if text.as_bytes().get(1) == Some(&b'}') && trailing_ok(&text[2..]) => {
            Some(Node::Map(Vec::new()))
        }
        b'[' if text.as_bytes().get(1) == Some(&b']') && trailing_ok(&text[2..]) => {
            Some(Node::Seq(Vec::new()))
        }
        _ => {
            if !plain_start_ok(text) {
                return None;
            }
            // Up to a comment; a `:` followed by a space or the end of the line would start a mapping.
            let bytes = text.as_bytes();
            let mut end = bytes.len();
            for (i, &b) in bytes.iter().enumerate() {
                if b == b':' && matches!(bytes.get(i + 1), None | Some(b' ')) {
                    return None;
                }
                if b == b'#' && i > 0 && bytes[i - 1] == b' ' {
                    end = i;
                    break;
                }
            }
            let value = text[..end].trim_end_matches(' ');
            Some(Node::Scalar {
                value: Cow::Borrowed(value),
                plain: true,
            })
        }
    }
}

/// A single-quoted scalar closed on this line; `text` starts after the opening quote.
fn single_quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let bytes = text.as_bytes();
    let mut owned: Option<String> = None;
    let (mut start, mut i) = (0, 0);
    loop {
        i += text[i..].find('\'')?;
        if bytes.get(i + 1) == Some(&b'\'') {
            owned.get_or_insert_with(String::new).push_str(&text[start..=i]);
            i += 2;
            start = i;
        } else {
            let value = match owned {
                None => Cow::Borrowed(&text[..i]),
                Some(mut buf) => {
                    buf.push_str(&text[start..i]);
                    Cow::Owned(buf)
                }
            };
            return Some((value, &text[i + 1..]));
        }
    }
}

/// A double-quoted scalar closed on this line; `text` starts after the opening quote.
fn double_quoted(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let bytes = text.as_bytes();
    let mut owned: Option<String> = None;
    let (mut start, mut i) = (0, 0);
    loop {
        match *bytes.get(i)? {
            b'"' => {
                let value = match owned {
                    None => Cow::Borrowed(&text[..i]),
                    Some(mut buf) => {
                        buf.push_str(&text[start..i]);
                        Cow::Owned(buf)
                    }
                };
                return Some((value, &text[i + 1..]));
            }
            b'\\' => {
                let buf = owned.get_or_insert_with(String::new);
                buf.push_str(&text[start..i]);
                let simple = match *bytes.get(i + 1)? {
                    b'0' => Some('\0'),
                    b'a' => Some('\x07'),
                    b'b' => Some('\x08'),
                    b't' => Some('\t'),
                    b'n' => Some('\n'),
                    b'v' => Some('\x0B'),
                    b'f' => Some('\x0C'),
                    b'r' => Some('\r'),
                    b'e' => Some('\x1B'),
                    b' ' => Some(' '),
                    b'"' => Some('"'),
                    b'/' => Some('/'),
                    b'\\' => Some('\\'),
                    b'N' => Some('\u{85}'),
                    b'_' => Some('\u{A0}'),
                    b'L' => Some('\u{2028}'),
                    b'P' => Some('\u{2029}'),
                    _ => None,
                };
                if let Some(c) = simple {
                    buf.push(c);
                    i += 2;
                } else {
                    let len = match bytes[i + 1] {
                        b'x' => 2,
                        b'u' => 4,
                        b'U' => 8,
                        _ => return None,
                    };
                    let hex = text.get(i + 2..i + 2 + len)?;
                    if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                        return None;
                    }
                    buf.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                    i += 2 + len;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
}

/// How a key compares in `serde_yaml::Value` when it is not a string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum KeyClass {
    Null,
    Bool(bool),
    Int(bool, u128),
}

/// `None` for a float key (not worth comparing), `Some(None)` for a string key.
fn key_class(key: &Node<'_>) -> Option<Option<KeyClass>> {
    let Node::Scalar { value, plain: true } = key else {
        return Some(None);
    };
    let v = value.as_ref();
    if !may_resolve(v) {
        return Some(None);
    }
    Some(if v.is_empty() || is_null(v) {
        Some(KeyClass::Null)
    } else if let Some(b) = parse_bool(v) {
        Some(KeyClass::Bool(b))
    } else if let Some(n) = parse_unsigned_int(v, u64::from_str_radix) {
        Some(KeyClass::Int(false, u128::from(n)))
    } else if let Some(n) = parse_negative_int(v, i64::from_str_radix) {
        Some(KeyClass::Int(n < 0, u128::from(n.unsigned_abs())))
    } else if let Some(n) = parse_unsigned_int(v, u128::from_str_radix) {
        Some(KeyClass::Int(false, n))
    } else if let Some(n) = parse_negative_int(v, i128::from_str_radix) {
        Some(KeyClass::Int(n < 0, n.unsigned_abs()))
    } else if !digits_but_not_number(v) && parse_f64(v).is_some() {
        return None;
    } else {
        None
    })
}

fn key_text<'n>(key: &'n Node<'_>) -> &'n str {
    match key {
        Node::Scalar { value, .. } => value,
        _ => "",
    }
}

/// Refuses any two keys with the same text or the same non-string value: serde_yaml's `Value`,
/// string-keyed maps and structs disagree about duplicates, so the fast path takes none of them.
fn no_duplicates(entries: &[(Node<'_>, Node<'_>)]) -> Option<()> {
    const SMALL: usize = 16;
    if entries.len() <= SMALL {
        for (i, (key, _)) in entries.iter().enumerate() {
            let class = key_class(key)?;
            for (other, _) in &entries[..i] {
                if key_text(key) == key_text(other) || (class.is_some() && class == key_class(other)?) {
                    return None;
                }
            }
        }
    } else {
        let mut texts = HashSet::with_capacity(entries.len());
        let mut values = HashSet::new();
        for (key, _) in entries {
            if !texts.insert(key_text(key)) || key_class(key)?.is_some_and(|c| !values.insert(c)) {
                return None;
            }
        }
    }
    Some(())
}

// ---------------------------------------------------------------------------------------------------
// Scalar resolution, as in serde_yaml 0.9.34 de.rs

type FromStrRadix<T> = fn(&str, u32) -> std::result::Result<T, ParseIntError>;

/// Whether a plain scalar can resolve to anything but a string: int and float forms start with a digit,
/// a sign or a dot (`inf`/`nan` without a dot parse as non-finite floats and stay strings).
fn may_resolve(scalar: &str) -> bool {
    match scalar.as_bytes().first() {
        None => true,
        Some(b'0'..=b'9' | b'+' | b'-' | b'.') => true,
        Some(b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F') => {
            is_null(scalar) || parse_bool(scalar).is_some()
        }
        Some(_) => false,
    }
}

fn is_null(scalar: &str) -> bool {
    matches!(scalar, "null" | "Null" | "NULL" | "~")
}

fn parse_bool(scalar: &str) -> Option<bool> {
    match scalar {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// `0x`/`0o`/`0b` after an optional `+`, with no sign after the prefix.
fn parse_radix_prefixed<T>(
    unpositive: &str,
    from_str_radix: FromStrRadix<T>,
) -> std::result::Result<Option<T>, ()> {
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return Err(());
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Ok(Some(int));
            }
        }
    }
    Ok(None)
}

/// `-0x`/`-0o`/`-0b`.
fn parse_negative_radix_prefixed<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = scalar.strip_prefix(prefix)
            && let Ok(int) = from_str_radix(&format!("-{rest}"), radix)
        {
            return Some(int);
        }
    }
    None
}

fn parse_unsigned_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
    if let Some(int) = parse_radix_prefixed(unpositive, from_str_radix).ok()? {
        return Some(int);
    }
    if unpositive.starts_with(['+', '-']) || digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

fn parse_signed_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    let unpositive = match scalar.strip_prefix('+') {
        Some(unpositive) if unpositive.starts_with(['+', '-']) => return None,
        Some(unpositive) => unpositive,
        None => scalar,
    };
    // serde_yaml interleaves the positive and negative prefix checks; they cannot both match.
    if let Some(int) = parse_radix_prefixed(unpositive, from_str_radix).ok()? {
        return Some(int);
    }
    if let Some(int) = parse_negative_radix_prefixed(scalar, from_str_radix) {
        return Some(int);
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

fn parse_negative_int<T>(scalar: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    if let Some(int) = parse_negative_radix_prefixed(scalar, from_str_radix) {
        return Some(int);
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(scalar, 10).ok()
}

fn parse_f64(scalar: &str) -> Option<f64> {
    let unpositive = match scalar.strip_prefix('+') {
        Some(unpositive) if unpositive.starts_with(['+', '-']) => return None,
        Some(unpositive) => unpositive,
        None => scalar,
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = scalar {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = scalar {
        return Some(f64::NAN.copysign(1.0));
    }
    unpositive.parse::<f64>().ok().filter(|float| float.is_finite())
}

/// Leading zero(s) followed by digits is a string (YAML 1.2).
fn digits_but_not_number(scalar: &str) -> bool {
    let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    scalar.len() > 1 && scalar.starts_with('0') && scalar[1..].bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------------
// Deserializer

/// The only error: its content never leaves this module.
#[derive(Debug)]
struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("outside the YAML fast path")
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Error
    }
}

type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Copy)]
struct De<'n, 'a> {
    node: &'n Node<'a>,
    /// serde_yaml's `remaining_depth`.
    depth: u8,
}

fn visit_text<'de, V: Visitor<'de>>(visitor: V, value: &Cow<'de, str>) -> Result<V::Value> {
    match value {
        Cow::Borrowed(borrowed) => visitor.visit_borrowed_str(borrowed),
        Cow::Owned(owned) => visitor.visit_str(owned),
    }
}

/// serde_yaml's `visit_untagged_scalar`.
fn visit_plain<'de, V: Visitor<'de>>(visitor: V, value: &Cow<'de, str>) -> Result<V::Value> {
    let v = value.as_ref();
    if !may_resolve(v) {
        return visit_text(visitor, value);
    }
    if v.is_empty() || is_null(v) {
        return visitor.visit_unit();
    }
    if let Some(boolean) = parse_bool(v) {
        return visitor.visit_bool(boolean);
    }
    if let Some(int) = parse_unsigned_int(v, u64::from_str_radix) {
        return visitor.visit_u64(int);
    }
    if let Some(int) = parse_negative_int(v, i64::from_str_radix) {
        return visitor.visit_i64(int);
    }
    if let Some(int) = parse_unsigned_int(v, u128::from_str_radix) {
        return visitor.visit_u128(int);
    }
    if let Some(int) = parse_negative_int(v, i128::from_str_radix) {
        return visitor.visit_i128(int);
    }
    if !digits_but_not_number(v)
        && let Some(float) = parse_f64(v)
    {
        return visitor.visit_f64(float);
    }
    visit_text(visitor, value)
}

impl<'n, 'de> De<'n, 'de> {
    fn plain(&self) -> Option<&'n str> {
        match self.node {
            Node::Scalar { value, plain: true } => Some(value),
            _ => None,
        }
    }

    fn is_plain_empty(&self) -> bool {
        self.plain() == Some("")
    }

    fn visit_map<V: Visitor<'de>>(
        self,
        entries: &'n [(Node<'de>, Node<'de>)],
        visitor: V,
    ) -> Result<V::Value> {
        let depth = self.depth.checked_sub(1).ok_or(Error)?;
        let mut access = MapAccess {
            iter: entries.iter(),
            value: None,
            depth,
        };
        let value = visitor.visit_map(&mut access)?;
        if access.iter.len() == 0 && access.value.is_none() {
            Ok(value)
        } else {
            Err(Error)
        }
    }

    fn visit_seq<V: Visitor<'de>>(self, items: &'n [Node<'de>], visitor: V) -> Result<V::Value> {
        let depth = self.depth.checked_sub(1).ok_or(Error)?;
        let mut access = SeqAccess {
            iter: items.iter(),
            depth,
        };
        let value = visitor.visit_seq(&mut access)?;
        if access.iter.len() == 0 {
            Ok(value)
        } else {
            Err(Error)
        }
    }
}

impl<'n, 'de> de::Deserializer<'de> for De<'n, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.node {
            Node::Scalar { value, plain: true } => visit_plain(visitor, value),
            Node::Scalar { value, plain: false } => visit_text(visitor, value),
            Node::Map(entries) => self.visit_map(entries, visitor),
            Node::Seq(items) => self.visit_seq(items, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.plain().and_then(parse_bool) {
            Some(boolean) => visitor.visit_bool(boolean),
            None => Err(Error),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self
            .plain()
            .and_then(|v| parse_signed_int(v, i64::from_str_radix))
        {
            Some(int) => visitor.visit_i64(int),
            None => Err(Error),
        }
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self
            .plain()
            .and_then(|v| parse_signed_int(v, i128::from_str_radix))
        {
            Some(int) => visitor.visit_i128(int),
            None => Err(Error),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_u64(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self
            .plain()
            .and_then(|v| parse_unsigned_int(v, u64::from_str_radix))
        {
            Some(int) => visitor.visit_u64(int),
            None => Err(Error),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self
            .plain()
            .and_then(|v| parse_unsigned_int(v, u128::from_str_radix))
        {
            Some(int) => visitor.visit_u128(int),
            None => Err(Error),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // NB: unlike deserialize_any, serde_yaml does not apply digits_but_not_number here.
        match self.plain().and_then(parse_f64) {
            Some(float) => visitor.visit_f64(float),
            None => Err(Error),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.node {
            Node::Scalar { value, .. } => visit_text(visitor, value),
            _ => Err(Error),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(Error)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.plain() {
            Some(v) if v.is_empty() || is_null(v) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.plain() {
            Some(v) if v.is_empty() || is_null(v) => visitor.visit_unit(),
            _ => Err(Error),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let depth = self.depth.checked_sub(1).ok_or(Error)?;
        visitor.visit_newtype_struct(De {
            node: self.node,
            depth,
        })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.node {
            Node::Seq(items) => self.visit_seq(items, visitor),
            _ if self.is_plain_empty() => visitor.visit_seq(SeqAccess {
                iter: [].iter(),
                depth: self.depth,
            }),
            _ => Err(Error),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.node {
            Node::Map(entries) => self.visit_map(entries, visitor),
            _ if self.is_plain_empty() => visitor.visit_map(MapAccess {
                iter: [].iter(),
                value: None,
                depth: self.depth,
            }),
            _ => Err(Error),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        // Without tags, serde_yaml only takes unit variants, named by a scalar.
        match self.node {
            Node::Scalar { .. } => visitor.visit_enum(self),
            _ => Err(Error),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }
}

impl<'n, 'de> de::EnumAccess<'de> for De<'n, 'de> {
    type Error = Error;
    type Variant = UnitOnly;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, UnitOnly)> {
        Ok((seed.deserialize(self)?, UnitOnly))
    }
}

/// serde_yaml's `UnitVariantAccess`.
struct UnitOnly;

impl<'de> de::VariantAccess<'de> for UnitOnly {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _seed: S) -> Result<S::Value> {
        Err(Error)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(Error)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(Error)
    }
}

struct SeqAccess<'n, 'a> {
    iter: std::slice::Iter<'n, Node<'a>>,
    depth: u8,
}

impl<'n, 'de> de::SeqAccess<'de> for SeqAccess<'n, 'de> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        match self.iter.next() {
            Some(node) => seed
                .deserialize(De {
                    node,
                    depth: self.depth,
                })
                .map(Some),
            None => Ok(None),
        }
    }
}

struct MapAccess<'n, 'a> {
    iter: std::slice::Iter<'n, (Node<'a>, Node<'a>)>,
    value: Option<&'n Node<'a>>,
    depth: u8,
}

impl<'n, 'de> de::MapAccess<'de> for MapAccess<'n, 'de> {
    type Error = Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(De {
                    node: key,
                    depth: self.depth,
                })
                .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let node = self.value.take().ok_or(Error)?;
        seed.deserialize(De {
            node,
            depth: self.depth,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fmt::Debug;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde::Deserialize;
    use serde::de::DeserializeOwned;

    use super::from_str;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct App {
        api_version: String,
        kind: String,
        metadata: Meta,
        #[serde(default)]
        spec: Spec,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Meta {
        name: String,
        namespace: Option<String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        annotations: Option<BTreeMap<String, String>>,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Spec {
        image: Option<String>,
        scaling: Option<Scaling>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        secrets: Option<Secrets>,
        traffic: Option<BTreeMap<String, String>>,
        tier: Option<Tier>,
        enabled: Option<bool>,
        max_bytes: Option<i64>,
        replicas: Option<u32>,
        args: Option<Vec<String>>,
        ports: Option<Vec<Port>>,
        target: Option<IntOrString>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Scaling {
        min_scale: Option<i32>,
        max_scale: Option<i32>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Secrets {
        #[serde(default)]
        env_from: Vec<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Port {
        name: String,
        port: u16,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Tier {
        Small,
        Large,
    }

    /// `#[serde(flatten)]` and untagged enums buffer through `deserialize_any`.
    #[derive(Debug, PartialEq, Deserialize)]
    struct Flat {
        kind: Option<String>,
        #[serde(flatten)]
        rest: BTreeMap<String, Untagged>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Untagged {
        Int(i64),
        Bool(bool),
        Str(String),
        List(Vec<Option<String>>),
        Map(BTreeMap<String, Option<String>>),
        Null(()),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct K8sDoc {
        metadata: ObjectMeta,
    }

    /// Asserts the invariant for `T`; returns whether the fast path was taken.
    fn agree<T: DeserializeOwned + PartialEq + Debug>(text: &str) -> bool {
        let Some(fast) = from_str::<T>(text) else {
            return false;
        };
        match serde_yaml::from_str::<T>(text) {
            Ok(slow) => assert_eq!(fast, slow, "fast path disagrees on {text:?}"),
            Err(err) => panic!("fast path gave {fast:?} where serde_yaml failed ({err}) on {text:?}"),
        }
        true
    }

    /// The invariant for every target; returns whether the fast path was taken for `serde_yaml::Value`.
    fn agree_all(text: &str) -> bool {
        let taken = agree::<serde_yaml::Value>(text);
        let json = agree::<serde_json::Value>(text);
        agree::<App>(text);
        agree::<Flat>(text);
        agree::<K8sDoc>(text);
        agree::<BTreeMap<String, String>>(text);
        agree::<BTreeMap<String, serde_yaml::Value>>(text);
        agree::<Vec<String>>(text);
        agree::<Option<BTreeMap<String, Option<i64>>>>(text);
        if json {
            // serde_json::Value accepts less (e.g. non-string keys stay strings) but never more.
            assert!(taken || from_str::<serde_yaml::Value>(text).is_none());
        }
        taken
    }

    const EXAMPLE: &str = "---
# comment
apiVersion: apps.kn-next.dev/v1alpha1
kind: NextApp
metadata:
  name: app-00001
  namespace: team-01
  labels:
    app.kubernetes.io/name: \"web\"
spec:
  image: registry.example.com/team/app@sha256:0123abcd
  scaling:
    minScale: 1
    maxScale: 10
  env:
    LOG_LEVEL: info
    QUOTED: 'it''s'
  secrets:
    envFrom:
    - a
    - b
  traffic: {}
";

    /// Documents in the subset: the fast path must be taken (for `serde_yaml::Value`).
    const IN_SUBSET: &[&str] = &[
        EXAMPLE,
        "a: 1\n",
        "a: 1",
        "a: 1\r\nb: two\r\n",
        "--- # start\na: b\n...\n# trailing\n",
        "# only a comment\n\n---\na: b\n",
        "a:\n  b:\n    c: d\n  e: f\ng: h\n",
        "a:\n- x\n- y\nb: z\n",
        "a:\n  - x\n  -   y\nb: z\n",
        "- a\n- b\n",
        "- name: x\n  value: y\n- name: z\n",
        "-   name: x\n    value: y\n",
        "- a:\n  - 1\n  b: 2\n",
        "-\n  a: 1\n-\n- ~\n",
        "-\n  - x\n",
        "a:\nb: ~\nc: null\nd: Null\ne: NULL\nf:   # nothing\n",
        "t: true\nT: True\nU: TRUE\nf: false\nF: False\nG: FALSE\ny: yes\nn: no\non: on\n",
        "i: 1\nn: -1\np: +1\nh: 0x1F\no: 0o17\nb: 0b101\nnh: -0x1F\nz: 0\nnz: -0\n",
        "f: 1.5\ne: 1e3\nd: .5\ninf: .inf\nninf: -.Inf\nnan: .NaN\npinf: +.INF\ng: 1.\n",
        "oct: 0755\nnoct: -012\nsep: 1_000\nhuge: 1234567890123456789012345678901234567890\n",
        "u64: 18446744073709551615\nmin: -9223372036854775808\nf: 18446744073709551616e0\n",
        "s: 'single'\nd: \"double\"\ne: ''\nf: \"\"\n",
        "q: 'it''s'\nr: 'a # b'\nt: 'x: y'\n",
        "d: \"\\\" \\\\ \\/ \\n \\t \\r \\0 \\a \\b \\e \\f \\v \\N \\_ \\L \\P \"\n\
         x: \"\\x41 \\u00e9 \\U0001F600 \\ \"\n",
        "url: http://example.com:8080/path?q=1#frag\n",
        "hash: a#b\ncomment: a #b\nspaces: a b   c   \n",
        "\"quoted key\": v\n'single key': w\n\"k\\u0041\": x\n",
        "a.b/c-d_e: v\n",
        "unicode: héllo wörld ✓ 😀\nключ: значение\n",
        "empty_map: {}\nempty_seq: []\nwith_comment: {} # c\n",
        "a: [] # c\n",
        "  a: 1\n  b: 2\n",
        "a:\n    deep: 1\nb: 2\n",
        "a: 1\n\n\n   \nb: 2\n",
        "a: 1\n    # indented comment\nb: 2\n",
        "a: x]\nb: x,y\nc: x}\nd: -x\ne: x!\nf: x&y\ng: x*y\nh: x|y\n",
        "a: \"x\" # c\nb: 'y'   # c\n",
        "apiVersion: v1\nkind: K\nmetadata:\n  name: n\n  labels:\n    a: '1'\n",
        "metadata:\n  name: n\n  namespace: ns\n  labels:\n    app: web\n  annotations:\n    a.b/c: d\n  \
         generation: 3\n  finalizers:\n  - f\n",
        "1: one\n2: two\ntrue: t\n~: n\n",
        "k: v\n...\n",
        "kind: Thing\nextra: 5\nlist:\n- a\n- ~\nmap:\n  x: y\n",
        "<<: merge-key-is-a-plain-key\n",
        "a: 'x''y''z'\n",
        "a: -1.5e-3\nb: +12\n",
        "- 'a'\n- \"b\"\n- c\n",
        "---\n  a: 1\n  b: 2\n",
        "a:\n- b\n-\n- c\n",
        "a:\n  -\n    b: 1\n",
        "- a: 1\n  b:\n  - x\n  c: 2\n",
        "a: \u{a0}x\n",
        "a: # c\n  b: 1\n",
        "a: 1\n\r\nb: 2\r\n",
        "a: 1 # c: d\n",
        "a: x # c\n  # c2\nb: y\n",
        "- 'a': 1\n  b: 2\n",
        "a:\n  - b: 1\n    c: 2\n  - d\n",
        "x: 0o\nx2: 1:2\n",
        "-   # a comment\n  a: 1\n",
    ];

    /// Documents outside the subset (or invalid YAML): the fast path must not be taken.
    const OUT_OF_SUBSET: &[&str] = &[
        "",
        "# just a comment\n",
        "---\n",
        "a: 1\n---\nb: 2\n",
        "a: |\n  text\n",
        "a: >\n  text\n",
        "a: &x 1\nb: *x\n",
        "a: !tag x\n",
        "? a\n: b\n",
        "%YAML 1.2\n---\na: b\n",
        "a: b: c\n",
        "a: b:\n",
        "a: [1, 2]\n",
        "a: {b: c}\n",
        "a: { }\n",
        "a: 'multi\n  line'\n",
        "a: \"multi\n  line\"\n",
        "a: plain\n  continued\n",
        "a: \"\\q\"\n",
        "a: \"\\uD800\"\n",
        "a:\tb\n",
        "\ta: b\n",
        "a: b\rc: d\n",
        "a: 1\n a2: 2\n",
        "a:\n    b: 1\n  c: 2\n",
        "a: 1\na: 2\n",
        "a: 1\n'a': 2\n",
        "1: x\n0x1: y\n",
        "~: x\nnull: y\n",
        "1.5: x\n",
        "- - x\n",
        "a: - x\n",
        "a: 1\n- x\n",
        "- x\na: 1\n",
        "a: 'x'y\n",
        "a: \"x\"#c\n",
        "\"a\" : 1\n",
        "a : 1\n",
        "scalar\n",
        "a: @x\n",
        "a: `x\n",
        "a: %x\n",
        "a: ?x\n",
        "a: :x\n",
        "a: ,x\n",
        "a: #x\nb\n",
        "\u{feff}a: 1\n",
        "a: x\u{85}y\n",
        "a: x\u{2028}y\n",
        "a: \u{7}\n",
        "a: 1\n...\nb: 2\n",
        "big: 123456789012345678901234567890\n",
        "over: 18446744073709551616\n",
        "under: -9223372036854775809\n",
        "...\na: 1\n",
        "--- a: 1\n",
        "---x: 1\n",
        "a:\n  - x\n   - y\n",
        "- x\n  y\n",
        "a:\n  b\n",
        "- a: 1\n  - x\n",
        "a: {}x\n",
        "a: \"x\"\n  b: 1\n",
        "x: -\n",
        "x: :\n",
    ];

    #[test]
    fn documents_in_the_subset_take_the_fast_path_and_agree_with_serde_yaml() {
        for text in IN_SUBSET {
            assert!(agree_all(text), "fast path not taken for {text:?}");
            assert!(
                agree::<serde_json::Value>(text) || text.contains("1: one"),
                "json: {text:?}"
            );
        }
    }

    #[test]
    fn documents_outside_the_subset_do_not_take_the_fast_path() {
        for text in OUT_OF_SUBSET {
            assert!(!agree_all(text), "fast path taken for {text:?}");
            assert!(from_str::<serde_json::Value>(text).is_none(), "json: {text:?}");
        }
    }

    #[test]
    fn the_example_deserializes_into_the_typed_tree_on_the_fast_path() {
        assert!(agree::<App>(EXAMPLE));
        let app = from_str::<App>(EXAMPLE).unwrap();
        assert_eq!(app.spec.env["QUOTED"], "it's");
        assert_eq!(app.spec.scaling.unwrap().max_scale, Some(10));
        assert_eq!(app.spec.secrets.unwrap().env_from, ["a", "b"]);
        assert!(agree::<serde_json::Value>(EXAMPLE));
    }

    /// Typed documents: each is checked for every scalar-resolving `deserialize_*` a derive calls.
    const TYPED: &[(&str, bool)] = &[
        ("apiVersion: v\nkind: k\nmetadata:\n  name: n\n", true),
        ("apiVersion: 1\nkind: true\nmetadata:\n  name: ~\n", true),
        ("apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n", true),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  replicas: 3\n  enabled: True\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  replicas: '3'\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  replicas: -3\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  replicas: 0x10\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  replicas: 010\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  maxBytes: -0b11\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  maxBytes: 99999999999999999999\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  enabled: 'true'\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  enabled: yes\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  enabled: ~\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  enabled: '~'\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  tier: small\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  tier: 'large'\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  tier: medium\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  tier: {}\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  target: 8080\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  target: http\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  target: '8080'\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  args:\n  - 1\n  - true\n  - ~\n  - ''\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  args:\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  ports:\n  - name: h\n    port: 80\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  ports:\n  - name: h\n    port: 70000\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  env:\n    A: 1\n    B: ~\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  env:\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  unknown: 1\n",
            false,
        ),
        ("apiVersion: v\nkind: k\nmetadata:\n  name: n\n  name: m\n", false),
        ("apiVersion: v\nkind: k\nmetadata:\n  name: []\n", false),
        ("apiVersion: v\nkind: k\nmetadata:\n  name: {}\n", false),
        ("apiVersion: v\nkind: k\n", false),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  scaling:\n    minScale: +0o7\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  scaling:\n    minScale: 1.0\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  scaling: {}\n",
            true,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  scaling: []\n",
            false,
        ),
        (
            "apiVersion: v\nkind: k\nmetadata:\n  name: n\nspec:\n  traffic: []\n",
            false,
        ),
    ];

    #[test]
    fn typed_documents_agree_with_serde_yaml_field_by_field() {
        for (text, fast) in TYPED {
            assert_eq!(agree::<App>(text), *fast, "{text:?}");
            assert_eq!(
                serde_yaml::from_str::<App>(text).is_ok(),
                *fast,
                "serde_yaml on {text:?}"
            );
            let value_ok = serde_yaml::from_str::<serde_yaml::Value>(text).is_ok();
            assert_eq!(agree::<serde_yaml::Value>(text), value_ok, "{text:?}");
            // The one document with a duplicate key: serde_json::Value keeps the last, the fast path bails.
            let json_ok =
                serde_yaml::from_str::<serde_json::Value>(text).is_ok() && !text.contains("name: m");
            assert_eq!(agree::<serde_json::Value>(text), json_ok, "{text:?}");
        }
    }

    #[test]
    fn scalar_resolution_agrees_for_every_primitive_target() {
        let scalars = [
            "0",
            "-0",
            "+0",
            "00",
            "0755",
            "-012",
            "1",
            "+1",
            "-1",
            "++1",
            "+-1",
            "0x1F",
            "0X1F",
            "-0x1F",
            "+0x1F",
            "0x-1",
            "0x+1",
            "0o17",
            "-0o17",
            "0b101",
            "-0b101",
            "0b",
            "0x",
            "1_000",
            "1e3",
            "1E3",
            "-1e-3",
            ".5",
            "-.5",
            "+.5",
            "1.",
            "5.",
            ".",
            "-",
            "+",
            "1e400",
            ".inf",
            ".Inf",
            ".INF",
            "+.inf",
            "-.inf",
            ".nan",
            ".NaN",
            ".NAN",
            "-.nan",
            "nan",
            "inf",
            "infinity",
            "NaN",
            "true",
            "True",
            "TRUE",
            "tRue",
            "false",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "~",
            "null",
            "Null",
            "NULL",
            "nULL",
            "''",
            "'1'",
            "'true'",
            "'~'",
            "\"1\"",
            "\"\"",
            "a",
            "x y",
            "é",
            "255",
            "256",
            "-128",
            "-129",
            "65535",
            "4294967296",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "340282366920938463463374607431768211455",
            "340282366920938463463374607431768211456",
            "-170141183460469231731687303715884105728",
            "-170141183460469231731687303715884105729",
            "1.7976931348623157e308",
            "0.1",
            "3.14",
            "{}",
            "[]",
            "",
        ];
        let mut taken = 0;
        for scalar in scalars {
            let text = format!("v: {scalar}\n");
            macro_rules! check {
                ($($t:ty),*) => {$(
                    taken += usize::from(agree::<BTreeMap<String, $t>>(&text));
                    agree::<BTreeMap<String, Option<$t>>>(&text);
                )*};
            }
            check!(
                i8,
                i16,
                i32,
                i64,
                i128,
                u8,
                u16,
                u32,
                u64,
                u128,
                bool,
                String,
                char,
                (),
                Tier
            );
            check!(
                serde_yaml::Value,
                serde_json::Value,
                Untagged,
                IntOrString,
                Vec<String>
            );
            check!(BTreeMap<String, String>);
            // Floats: compare bit patterns so NaN agrees with NaN.
            if let Some(fast) = from_str::<BTreeMap<String, f64>>(&text) {
                let slow: BTreeMap<String, f64> = serde_yaml::from_str(&text).unwrap();
                assert_eq!(fast["v"].to_bits(), slow["v"].to_bits(), "{text:?}");
            }
            if let Some(fast) = from_str::<BTreeMap<String, f32>>(&text) {
                let slow: BTreeMap<String, f32> = serde_yaml::from_str(&text).unwrap();
                assert_eq!(fast["v"].to_bits(), slow["v"].to_bits(), "{text:?}");
            }
        }
        assert!(taken > 500, "{taken}");
    }

    #[test]
    fn object_meta_from_k8s_openapi_agrees() {
        let text = "metadata:\n  name: web\n  namespace: team\n  labels:\n    app: web\n    tier: '1'\n  \
                    annotations:\n    a.b/c: \"x\\ty\"\n  generation: 7\n  finalizers:\n  - a/b\n  \
                    creationTimestamp: 2024-01-02T03:04:05Z\n  ownerReferences:\n  - apiVersion: v1\n    \
                    kind: K\n    name: o\n    uid: u\n    controller: true\n";
        assert!(agree::<K8sDoc>(text));
        assert!(!agree::<K8sDoc>("metadata:\n  generation: x\n"));
        assert!(!agree::<K8sDoc>("metadata:\n  creationTimestamp: yesterday\n"));
    }

    #[test]
    fn newtypes_tuples_and_units_agree_with_serde_yaml() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Name(String);
        #[derive(Debug, PartialEq, Deserialize)]
        struct Pair(String, i32);
        #[derive(Debug, PartialEq, Deserialize)]
        struct Unit;
        #[derive(Debug, PartialEq, Deserialize)]
        struct Doc {
            name: Option<Name>,
            pair: Option<Pair>,
            unit: Option<Unit>,
            tuple: Option<(u8, bool)>,
        }
        let taken = [
            "name: x\npair:\n- a\n- 1\nunit: ~\ntuple:\n- 1\n- true\n",
            "name: 1\n",
            "pair:\ntuple:\n",
            "name: ~\n",
        ];
        for text in taken {
            assert!(agree::<Doc>(text), "{text:?}");
        }
        for text in [
            "pair:\n- a\n",
            "pair:\n- a\n- 1\n- 2\n",
            "unit: x\n",
            "tuple: []\n",
            "name: []\n",
        ] {
            assert!(!agree::<Doc>(text), "{text:?}");
        }
    }

    // -----------------------------------------------------------------------------------------------
    // Property tests

    #[derive(Debug, Clone)]
    enum Style {
        Plain,
        Single,
        Double,
    }

    #[derive(Debug, Clone)]
    enum Gen {
        Scalar(String, Style, bool),
        Map(Vec<(String, Style, Gen)>, usize),
        Seq(Vec<Gen>, bool),
        EmptyMap,
        EmptySeq,
        Null,
    }

    fn tricky() -> BoxedStrategy<String> {
        let fixed = prop::sample::select(vec![
            "0",
            "0x1F",
            "1e3",
            "-1",
            "+1",
            ".5",
            "true",
            "True",
            "yes",
            "on",
            "~",
            "null",
            "",
            "a: b",
            "a #b",
            "#x",
            "'q'",
            "\"d\"",
            "- x",
            "x:",
            "trailing  ",
            "é",
            "😀 ok",
            "123456789012345678901234567890",
            "0755",
            "1_000",
            ".inf",
            "-.NaN",
            "x y",
            "http://a:1/b",
            "a\\b",
            "it's",
            "q\"x",
            "-x",
            "?x",
            ":x",
            "[a]",
            "{a}",
            "a]",
            "&a",
            "*a",
            "!a",
            "|",
            ">",
            "%",
            "@a",
            "`a",
            "a\tb",
            "a\nb",
            "---",
            "...",
            "false",
            "NULL",
            "0o17",
            "-0b1",
            "1.5",
            "web",
            "app-00001",
            "team/app@sha256:01",
            "\u{85}",
            "a\u{a0}",
            "\u{a0}",
            "x:y",
            "a'b",
            "a\"b",
            "%x",
            "- ",
            "-",
            "? x",
            ": x",
            "a,b",
            "\u{2028}",
            "\r",
        ])
        .prop_map(str::to_owned);
        prop_oneof![
            6 => fixed,
            3 => "[a-z][a-z0-9.-]{0,10}",
            1 => "[ -~]{0,12}",
            1 => "[0-9]{18,42}",
            1 => "[0-9a-zé😀 #:'\"\\\\-]{0,6}",
        ]
        .boxed()
    }

    fn style() -> impl Strategy<Value = Style> {
        prop_oneof![4 => Just(Style::Plain), 1 => Just(Style::Single), 1 => Just(Style::Double)]
    }

    fn key() -> impl Strategy<Value = (String, Style)> {
        let keys = prop::sample::select(vec![
            "a",
            "b",
            "name",
            "app.kubernetes.io/name",
            "x-y_z",
            "1",
            "true",
            "~",
            "key with space",
            "-k",
            "0x1",
            "LOG_LEVEL",
            "c",
            "d",
            "e",
            "f",
            "g",
            "h",
        ]);
        (
            prop_oneof![8 => keys.prop_map(str::to_owned), 1 => tricky()],
            prop_oneof![6 => Just(Style::Plain), 1 => style()],
        )
    }

    fn tree() -> impl Strategy<Value = Gen> {
        let leaf = prop_oneof![
            8 => (tricky(), style(), prop::bool::weighted(0.1)).prop_map(|(s, st, c)| Gen::Scalar(s, st, c)),
            1 => Just(Gen::EmptyMap),
            1 => Just(Gen::EmptySeq),
            1 => Just(Gen::Null),
        ];
        leaf.prop_recursive(5, 40, 5, |inner| {
            prop_oneof![
                (
                    prop::collection::vec((key(), inner.clone()), 1..5),
                    prop::sample::select(vec![1usize, 2, 4])
                )
                    .prop_map(|(entries, step)| Gen::Map(
                        entries.into_iter().map(|((k, ks), v)| (k, ks, v)).collect(),
                        step
                    )),
                (prop::collection::vec(inner, 1..5), any::<bool>())
                    .prop_map(|(items, il)| Gen::Seq(items, il)),
            ]
        })
    }

    fn quote(s: &str, style: &Style) -> String {
        match style {
            Style::Plain => s.to_owned(),
            Style::Single => format!("'{}'", s.replace('\'', "''")),
            Style::Double => {
                let mut out = String::from("\"");
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        'é' => out.push_str("\\u00e9"),
                        '\u{85}' => out.push_str("\\N"),
                        '😀' => out.push_str("\\U0001F600"),
                        c => out.push(c),
                    }
                }
                out.push('"');
                out
            }
        }
    }

    /// Renders a value after `key:` or `-` (the caller has written that much of the line).
    fn render_value(node: &Gen, indent: usize, indentless_ok: bool, out: &mut String) {
        match node {
            Gen::Scalar(s, style, comment) => {
                out.push(' ');
                out.push_str(&quote(s, style));
                if *comment {
                    out.push_str(" # c");
                }
                out.push('\n');
            }
            Gen::EmptyMap => out.push_str(" {}\n"),
            Gen::EmptySeq => out.push_str(" []\n"),
            Gen::Null => out.push('\n'),
            Gen::Map(entries, step) => {
                if *step == 2 {
                    out.push_str("  # c");
                }
                out.push('\n');
                render_map(entries, indent + step, *step, false, out);
            }
            Gen::Seq(items, indentless) => {
                out.push('\n');
                let at = if *indentless && indentless_ok {
                    indent
                } else {
                    indent + 2
                };
                render_seq(items, at, out);
            }
        }
    }

    fn render_map(
        entries: &[(String, Style, Gen)],
        indent: usize,
        step: usize,
        inline: bool,
        out: &mut String,
    ) {
        for (i, (key, style, value)) in entries.iter().enumerate() {
            if !(inline && i == 0) {
                out.push_str(&" ".repeat(indent));
            }
            out.push_str(&quote(key, style));
            out.push(':');
            let _ = step;
            render_value(value, indent, true, out);
        }
    }

    fn render_seq(items: &[Gen], indent: usize, out: &mut String) {
        for item in items {
            out.push_str(&" ".repeat(indent));
            out.push('-');
            match item {
                Gen::Map(entries, step) if *step != 2 => {
                    out.push_str(&" ".repeat(*step));
                    render_map(entries, indent + 1 + step, 2, true, out);
                }
                _ => render_value(item, indent, false, out),
            }
        }
    }

    /// Document-level decoration and an optional mutation that may leave the subset.
    #[derive(Debug, Clone)]
    struct Doc {
        root: Gen,
        marker: bool,
        crlf: bool,
        comments: Vec<(usize, String)>,
        mutation: Option<(usize, &'static str)>,
    }

    fn render(doc: &Doc) -> String {
        let mut body = String::new();
        match &doc.root {
            Gen::Map(entries, step) => render_map(entries, 0, *step, false, &mut body),
            Gen::Seq(items, _) => render_seq(items, 0, &mut body),
            other => {
                body.push_str("root:");
                render_value(other, 0, true, &mut body);
            }
        }
        let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
        for (at, comment) in &doc.comments {
            let at = at % (lines.len() + 1);
            lines.insert(at, comment.clone());
        }
        if doc.marker {
            lines.insert(0, "--- # doc".to_owned());
        }
        let mut text = lines.join(if doc.crlf { "\r\n" } else { "\n" });
        text.push('\n');
        if let Some((at, insert)) = doc.mutation {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, insert);
        }
        text
    }

    fn doc(root: impl Strategy<Value = Gen>, mutate: bool) -> impl Strategy<Value = Doc> {
        let comment = prop::sample::select(vec!["# c", "  # indented", "", "   ", "#", "      # deep"]);
        let mutation = prop::sample::select(vec![
            "\t", " ", "  ", "- ", ": ", "#", " #", "&a ", "*a", "!t ", "|", ">", "? ", "'", "\"", "\\",
            "\n", "\n  ", "\n---\n", "\n...\n", "{", "[a]", ",", "\r", "x", ":", "-", "\u{feff}", "%",
        ]);
        let mutation = if mutate {
            prop::option::weighted(0.7, (any::<usize>(), mutation)).boxed()
        } else {
            Just(None).boxed()
        };
        (
            root,
            any::<bool>(),
            prop::bool::weighted(0.2),
            prop::collection::vec((any::<usize>(), comment.prop_map(str::to_owned)), 0..3),
            mutation,
        )
            .prop_map(|(root, marker, crlf, comments, mutation)| Doc {
                root,
                marker,
                crlf,
                comments,
                mutation,
            })
    }

    fn app_tree() -> impl Strategy<Value = Gen> {
        let s =
            || (tricky(), style(), prop::bool::weighted(0.1)).prop_map(|(s, st, c)| Gen::Scalar(s, st, c));
        let num = || {
            (
                prop::sample::select(vec![
                    "1", "10", "-3", "0x10", "+7", "0", "08", "1.5", "~", "", "65536",
                ]),
                style(),
            )
                .prop_map(|(s, st)| Gen::Scalar(s.to_owned(), st, false))
        };
        let plain = |k: &str, v: Gen| (k.to_owned(), Style::Plain, v);
        (
            (s(), s(), s(), s(), s(), s()),
            (num(), num(), num(), num(), s(), s()),
            prop::collection::vec(any::<bool>(), 12),
            prop::collection::vec(s(), 0..3),
        )
            .prop_map(
                move |((a, k, n, ns, l, img), (min, max, rep, bytes, tier, en), keep, args)| {
                    let opt = |i: usize, e: (String, Style, Gen)| keep[i].then_some(e);
                    let meta: Vec<_> = [
                        Some(plain("name", n)),
                        opt(0, plain("namespace", ns)),
                        opt(
                            1,
                            plain("labels", Gen::Map(vec![plain("app.kubernetes.io/name", l)], 2)),
                        ),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let spec: Vec<_> = [
                        opt(2, plain("image", img)),
                        opt(
                            3,
                            plain(
                                "scaling",
                                Gen::Map(vec![plain("minScale", min), plain("maxScale", max)], 2),
                            ),
                        ),
                        opt(4, plain("replicas", rep)),
                        opt(5, plain("maxBytes", bytes)),
                        opt(6, plain("tier", tier)),
                        opt(7, plain("enabled", en)),
                        opt(8, plain("args", Gen::Seq(args, keep[9]))),
                        opt(10, plain("traffic", Gen::EmptyMap)),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    let mut root = vec![
                        plain("apiVersion", a),
                        plain("kind", k),
                        plain("metadata", Gen::Map(meta, 2)),
                    ];
                    if keep[11] {
                        root.push(plain(
                            "spec",
                            if spec.is_empty() {
                                Gen::Null
                            } else {
                                Gen::Map(spec, 2)
                            },
                        ));
                    }
                    Gen::Map(root, 2)
                },
            )
    }

    fn run(strategy: impl Strategy<Value = Doc>, cases: u32, check: impl Fn(&str) -> bool) -> (u32, u32) {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let taken = std::cell::Cell::new(0);
        let result = runner.run(&strategy, |doc| {
            let text = render(&doc);
            if check(&text) {
                taken.set(taken.get() + 1);
            }
            Ok(())
        });
        if let Err(err) = result {
            panic!("{err}");
        }
        (taken.get(), cases)
    }

    #[test]
    fn random_in_subset_documents_agree_with_serde_yaml_and_mostly_take_the_fast_path() {
        let (taken, cases) = run(doc(tree(), false), 3000, |text| {
            let json = agree::<serde_json::Value>(text);
            agree::<App>(text);
            agree::<BTreeMap<String, Untagged>>(text);
            agree::<serde_yaml::Value>(text) || json
        });
        assert!(
            taken * 100 > cases * 30,
            "fast path taken for only {taken} of {cases} documents"
        );
    }

    #[test]
    fn random_documents_around_the_subset_never_disagree_with_serde_yaml() {
        run(doc(tree(), true), 3000, agree_all);
    }

    #[test]
    fn random_typed_documents_agree_with_serde_yaml() {
        let (taken, cases) = run(doc(app_tree(), false), 3000, |text| {
            agree::<serde_yaml::Value>(text);
            agree::<App>(text)
        });
        assert!(
            taken * 100 > cases * 10,
            "typed fast path taken for only {taken} of {cases} documents"
        );
        let (taken, cases) = run(doc(app_tree(), true), 3000, |text| {
            agree::<serde_json::Value>(text);
            agree::<App>(text)
        });
        assert!(taken > 0 && taken < cases);
    }

    #[test]
    fn random_yaml_shaped_noise_never_disagrees_with_serde_yaml() {
        let line = "( {0,4})(- |[a-c]|1|0x|~|'|\"|#|: |:|\\\\|\\[\\]|\\{\\}|,|&|!|\\?|\\.| |é|---|\r){0,7}";
        let noise = prop::collection::vec(line, 1..6).prop_map(|lines| lines.join("\n"));
        let mut runner = TestRunner::new(Config {
            cases: 3000,
            failure_persistence: None,
            ..Config::default()
        });
        let taken = std::cell::Cell::new(0);
        let result = runner.run(&noise, |text| {
            if agree_all(&text) {
                taken.set(taken.get() + 1);
            }
            Ok(())
        });
        if let Err(err) = result {
            panic!("{err}");
        }
        assert!(taken.get() > 5, "{}", taken.get());
    }

    // -----------------------------------------------------------------------------------------------
    // Hostile input

    #[test]
    fn ten_thousand_levels_of_nesting_return_none_without_overflowing_the_stack() {
        // One more space per level: 10,000 levels take 50 MB of indentation each.
        let mut maps = String::new();
        let mut seqs = String::new();
        for depth in 0..10_000 {
            maps.push_str(&" ".repeat(depth));
            maps.push_str("a:\n");
            seqs.push_str(&" ".repeat(depth));
            seqs.push_str("-\n");
        }
        let indentless: String = (0..3_000)
            .map(|depth| format!("{}- a:\n", " ".repeat(depth * 2)))
            .collect();
        for text in [
            &maps,
            &seqs,
            &indentless,
            &"- ".repeat(10_000),
            &"[".repeat(10_000),
        ] {
            assert!(from_str::<serde_yaml::Value>(text).is_none());
            assert!(from_str::<serde_json::Value>(text).is_none());
        }
        let mut ok = String::new();
        for depth in 0..60 {
            ok.push_str(&" ".repeat(depth));
            ok.push_str("a:\n");
        }
        assert!(agree::<serde_yaml::Value>(&ok));
    }

    #[test]
    fn huge_lines_and_many_keys_are_handled_in_linear_time() {
        let long = "x".repeat(1 << 20);
        assert!(agree::<serde_yaml::Value>(&format!("a: {long}\n")));
        assert!(agree::<serde_yaml::Value>(&format!("a: '{long}'\n")));
        assert!(!agree::<serde_yaml::Value>(&format!("{long}: a\n")));
        assert!(!agree::<serde_yaml::Value>(&format!("a: \"{long}\n")));
        let many: String = (0..20_000).map(|i| format!("k{i}: {i}\n")).collect();
        assert!(agree::<serde_yaml::Value>(&many));
        let dup = format!("{many}k7: again\n");
        assert!(from_str::<serde_yaml::Value>(&dup).is_none());
        let items: String = (0..20_000).map(|i| format!("- {i}\n")).collect();
        assert!(agree::<serde_json::Value>(&items));
    }
}
