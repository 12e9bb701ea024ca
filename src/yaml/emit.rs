//! Fast, deterministic block-style YAML emitter (`crate::yaml::emit`).
//!
//! This is the last step of the render output path: the renderers build typed manifests
//! (mostly `k8s-openapi` objects) and this module turns each one into a YAML document string
//! without going through an intermediate value tree. It is a plain [`serde::Serializer`] writing
//! straight into a caller-owned [`String`]; it is pure (no I/O, no global state) and produces the
//! same bytes for the same input.
//!
//! The layout follows `kubectl` / `serde_yaml`: two-space indentation, sequences inside a mapping
//! value are not extra-indented, a mapping as a sequence item starts on the dash line, empty
//! containers are written as `{}` / `[]`.
//!
//! Strings are emitted plain only when no YAML 1.1 (`PyYAML`, `go-yaml` as used by `kubectl`) or
//! YAML 1.2 (`serde_yaml`) reader could read them as anything but the same string; everything else is
//! double-quoted with escapes. See [`write_str_scalar`] for the exact rule.

use std::fmt::Display;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Error for values that block-style YAML output cannot represent here (for example a map key
/// that is not a scalar), or an error reported by a `Serialize` implementation.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct EmitError {
    msg: String,
}

impl EmitError {
    fn key_not_scalar(what: &str) -> Self {
        EmitError {
            msg: format!("yaml map key must be a string, bool, integer, char or unit variant, found {what}"),
        }
    }
}

impl ser::Error for EmitError {
    fn custom<T: Display>(msg: T) -> Self {
        EmitError { msg: msg.to_string() }
    }
}

/// Appends one YAML document (block style, no leading `---`, ends with `'\n'`) for `value` to `out`.
///
/// # Errors
///
/// Returns [`EmitError`] when a map key is not a scalar or a `Serialize` implementation fails.
/// On error, `out` may contain partial output; callers must discard it.
pub fn write<T: ?Sized + Serialize>(out: &mut String, value: &T) -> Result<(), EmitError> {
    value.serialize(ValueSer {
        out,
        pos: Pos::Inline(0),
    })
}

/// Convenience wrapper around [`write()`] returning a fresh `String`.
///
/// # Errors
///
/// Same as [`write()`].
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> Result<String, EmitError> {
    let mut out = String::new();
    write(&mut out, value)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

/// Byte may appear anywhere in a plain scalar.
const SAFE: u8 = 1;
/// Byte may appear in something a YAML 1.1/1.2 (or go-yaml) resolver reads as an int, float or
/// date: digits, hex digits (incl. `e`/`E`/`b`/`B`), radix letters `x X o O` and `. _ : + -`.
const NUM: u8 = 2;

const fn build_classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut cls = 0;
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'_' | b'.'
                    | b'/'
                    | b'-'
                    | b':'
                    | b'@'
                    | b'='
                    | b'+'
                    | b','
                    | b'('
                    | b')'
                    | b'~'
                    | b'%'
                    | b' '
            )
        {
            cls |= SAFE;
        }
        if c.is_ascii_hexdigit() || matches!(c, b'x' | b'X' | b'o' | b'O' | b'.' | b'_' | b':' | b'+' | b'-')
        {
            cls |= NUM;
        }
        t[i] = cls;
        i += 1;
    }
    t
}

static CLASSES: [u8; 256] = build_classes();

/// Words that some resolver (YAML 1.1 or 1.2) reads as null, bool, infinity or NaN, or that
/// YAML 1.1 gives a special meaning (`=` value key). Compared ASCII-case-insensitively, which is
/// a superset of the exact spellings the specs list (e.g. `yEs` is quoted too).
const SPECIAL_WORDS: &[&[u8]] = &[
    b"~", b"=", b"null", b"y", b"n", b"yes", b"no", b"true", b"false", b"on", b"off", b".inf", b"+.inf",
    b"-.inf", b".nan", b"+.nan", b"-.nan",
];

fn is_special_word(b: &[u8]) -> bool {
    // Every special word starts with one of these bytes; most keys and values do not.
    let first_may_match = matches!(
        b.first(),
        Some(
            b'~' | b'='
                | b'n'
                | b'N'
                | b'y'
                | b'Y'
                | b't'
                | b'T'
                | b'f'
                | b'F'
                | b'o'
                | b'O'
                | b'.'
                | b'+'
                | b'-'
        )
    );
    first_may_match && b.len() <= 6 && SPECIAL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(b))
}

/// Returns true when `s` can be written as a plain scalar and every YAML 1.1 / 1.2 reader we
/// target reads it back as exactly this string.
fn is_plain_safe(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false; // empty string is null
    };
    if first.is_ascii_alphabetic() {
        // The common case (keys, names, enum values, URLs, images), decided by one scan: the number,
        // timestamp and document-marker rules below all need a non-letter first byte, so only the
        // character set, `: `, the last byte and the special words can make it unsafe.
        let mut prev = 0u8;
        for &c in b {
            if CLASSES[c as usize] & SAFE == 0 || (c == b' ' && prev == b':') {
                return false;
            }
            prev = c;
        }
        return last != b' ' && last != b':' && !is_special_word(b);
    }
    // Trailing space would be stripped; a trailing ':' reads as a mapping key indicator.
    if last == b' ' || last == b':' {
        return false;
    }
    // First character must not be a YAML indicator. `-` is allowed when followed by a safe
    // non-space character (e.g. `--port=80`): YAML lets `-` start a plain scalar then.
    match first {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'/' | b'.' | b'(' | b')' | b'~' | b'=' | b'+' => {}
        b'-' => match b.get(1) {
            Some(&c) if c != b' ' && CLASSES[c as usize] & SAFE != 0 => {}
            _ => return false,
        },
        _ => return false,
    }
    let mut all_num = true;
    let mut has_digit_or_dot = false;
    let mut prev = 0u8;
    for &c in b {
        let cls = CLASSES[c as usize];
        if cls & SAFE == 0 || (c == b' ' && prev == b':') {
            return false;
        }
        all_num &= cls & NUM != 0;
        has_digit_or_dot |= c.is_ascii_digit() || c == b'.';
        prev = c;
    }
    // Document markers.
    if b.starts_with(b"---") || b.starts_with(b"...") {
        return false;
    }
    // Numbers in any base/notation of YAML 1.1, 1.2 core and go-yaml (which, for scalars starting
    // with a sign or digit, strips every `_` and uses Go's base-0 integer parsing, so even `+_1` is
    // an int there): they start with a sign, digit or `.`, contain a digit or `.`, and use only NUM
    // characters. Conservatively quote everything of that shape (`0.0.0.0`, `1.2.3`, `-.`), but
    // not e.g. `-c` or `-v`.
    if all_num && has_digit_or_dot && matches!(first, b'+' | b'-' | b'0'..=b'9' | b'.') {
        return false;
    }
    // YAML 1.1 timestamps: `YYYY-M...` (`2001-12-14t21:59:43.10-05:00`, `2001-12-14 21:59:43`).
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return false;
    }
    !is_special_word(b)
}

/// Appends `s` as a YAML scalar: plain when provably safe, otherwise double-quoted with escapes.
///
/// Plain only if all of these hold (otherwise double-quoted):
/// * non-empty, no leading or trailing space, does not end with `:`;
/// * only ASCII alphanumerics and `_ . / - : @ = + , ( ) ~ %` and space — none of these are
///   indicators inside a block-context plain scalar, and everything else (quotes, `#`, `&`, `*`,
///   `!`, `|`, `>`, brackets, `?`, backslash, tab, newline, any non-ASCII) is quoted;
/// * starts with an alphanumeric or `_ / . ( ) ~ = +`, or with `-` followed by a non-space safe
///   character;
/// * no `: ` inside (`#` is never plain, so ` #` cannot occur), no `---` / `...` prefix;
/// * not a null/bool/inf/nan word of YAML 1.1 or 1.2 (case-insensitively) nor `=`;
/// * not number-shaped: starting with a sign, digit or `.`, containing a digit or `.`, and
///   consisting only of `[0-9a-fA-FxXoO._:+-]` (covers decimal, hex, octal, binary, legacy octal,
///   sexagesimal, floats with exponents, go-yaml's `_`-stripping like `+_1`, and dotted versions
///   like `0.0.0.0`; `-c` stays plain);
/// * not starting like a YAML 1.1 timestamp (four digits then `-`).
pub fn write_str_scalar(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        write_double_quoted(out, s);
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut String, v: u32, digits: u32) {
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xF) as usize] as char);
    }
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        let simple = match ch {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            '\0' => "\\0",
            '\u{07}' => "\\a",
            '\u{08}' => "\\b",
            '\u{0B}' => "\\v",
            '\u{0C}' => "\\f",
            '\u{1B}' => "\\e",
            '\u{85}' => "\\N",
            '\u{2028}' => "\\L",
            '\u{2029}' => "\\P",
            ' '..='~' => continue,
            '\u{00}'..='\u{1F}' | '\u{7F}'..='\u{9F}' => {
                out.push_str(&s[start..i]);
                out.push_str("\\x");
                push_hex(out, ch as u32, 2);
                start = i + ch.len_utf8();
                continue;
            }
            '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}' => {
                out.push_str(&s[start..i]);
                out.push_str("\\u");
                push_hex(out, ch as u32, 4);
                start = i + ch.len_utf8();
                continue;
            }
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(simple);
        start = i + ch.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends ryu's shortest representation, adjusted so that YAML 1.1 also reads it as a float:
/// the mantissa always has a `.` and the exponent always has a sign (`1e16` → `1.0e+16`).
fn push_float_text(out: &mut String, s: &str) {
    match s.find(['e', 'E']) {
        None => {
            out.push_str(s);
            if !s.contains('.') {
                out.push_str(".0");
            }
        }
        Some(i) => {
            let (mantissa, exp) = (&s[..i], &s[i + 1..]);
            out.push_str(mantissa);
            if !mantissa.contains('.') {
                out.push_str(".0");
            }
            out.push('e');
            if !exp.starts_with(['-', '+']) {
                out.push('+');
            }
            out.push_str(exp);
        }
    }
}

fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str(".nan");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { ".inf" } else { "-.inf" });
    } else {
        push_float_text(out, ryu::Buffer::new().format_finite(v));
    }
}

fn write_f32(out: &mut String, v: f32) {
    if v.is_nan() {
        out.push_str(".nan");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { ".inf" } else { "-.inf" });
    } else {
        push_float_text(out, ryu::Buffer::new().format_finite(v));
    }
}

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

const SPACES: &str = "                                                                ";

fn indent(out: &mut String, mut n: usize) {
    while n > SPACES.len() {
        out.push_str(SPACES);
        n -= SPACES.len();
    }
    out.push_str(&SPACES[..n]);
}

/// Where the next value goes.
#[derive(Clone, Copy, Debug)]
enum Pos {
    /// The cursor is at column `.0` with nothing after it on the line: document start, or just
    /// after a sequence dash (`- `). Container content starts inline and continues at that column.
    Inline(usize),
    /// Just after `key:` (no space yet) where the key starts at column `.0`. Scalars follow after a
    /// space, mappings continue on the next line at `.0 + 2`, sequences at `.0`.
    AfterKey(usize),
}

/// Serializer for one value at a given position.
struct ValueSer<'a> {
    out: &'a mut String,
    pos: Pos,
}

impl<'a> ValueSer<'a> {
    #[inline]
    fn before_scalar(&mut self) {
        if let Pos::AfterKey(_) = self.pos {
            self.out.push(' ');
        }
    }

    #[inline]
    fn raw_scalar(self, text: &str) -> Result<(), EmitError> {
        let mut me = self;
        me.before_scalar();
        me.out.push_str(text);
        me.out.push('\n');
        Ok(())
    }

    /// Opens a one-entry mapping `{variant: ...}` and returns the output plus the position of
    /// the entry's value.
    fn variant_key(self, variant: &str) -> (&'a mut String, Pos) {
        let mut map = MapSer::new(self.out, self.pos);
        map.before_key();
        write_str_scalar(map.out, variant);
        map.out.push(':');
        let col = map.col;
        (map.out, Pos::AfterKey(col))
    }
}

/// Sequence (also tuples, bytes, tuple variants' payload), emptiness decided lazily.
struct SeqSer<'a> {
    out: &'a mut String,
    pos: Pos,
    started: bool,
}

impl<'a> SeqSer<'a> {
    fn new(out: &'a mut String, pos: Pos) -> Self {
        SeqSer {
            out,
            pos,
            started: false,
        }
    }

    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), EmitError> {
        let col = match self.pos {
            Pos::Inline(c) | Pos::AfterKey(c) => c,
        };
        if self.started {
            indent(self.out, col);
        } else {
            self.started = true;
            if let Pos::AfterKey(_) = self.pos {
                self.out.push('\n');
                indent(self.out, col);
            }
        }
        self.out.push_str("- ");
        value.serialize(ValueSer {
            out: &mut *self.out,
            pos: Pos::Inline(col + 2),
        })
    }

    fn finish(self) -> Result<(), EmitError> {
        if !self.started {
            self.out.push_str(match self.pos {
                Pos::AfterKey(_) => " []\n",
                Pos::Inline(_) => "[]\n",
            });
        }
        Ok(())
    }
}

/// Implicit keys longer than this (in bytes, which bounds the character count) are written as
/// explicit `? key` entries: YAML readers reject implicit keys longer than 1024 characters.
const MAX_IMPLICIT_KEY: usize = 1000;

/// Mapping (also structs, struct variants' payload), emptiness decided lazily.
struct MapSer<'a> {
    out: &'a mut String,
    pos: Pos,
    started: bool,
    /// Column of the keys, valid once `started`.
    col: usize,
}

impl<'a> MapSer<'a> {
    fn new(out: &'a mut String, pos: Pos) -> Self {
        MapSer {
            out,
            pos,
            started: false,
            col: 0,
        }
    }

    #[inline]
    fn before_key(&mut self) {
        if self.started {
            indent(self.out, self.col);
        } else {
            self.started = true;
            match self.pos {
                Pos::Inline(c) => self.col = c,
                Pos::AfterKey(k) => {
                    self.col = k + 2;
                    self.out.push('\n');
                    indent(self.out, self.col);
                }
            }
        }
    }

    /// Called after the key text (which started at byte `start`) has been written.
    #[inline]
    fn after_key(&mut self, start: usize) {
        if self.out.len() - start > MAX_IMPLICIT_KEY {
            self.out.insert_str(start, "? ");
            self.out.push('\n');
            indent(self.out, self.col);
        }
        self.out.push(':');
    }

    fn value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), EmitError> {
        value.serialize(ValueSer {
            out: &mut *self.out,
            pos: Pos::AfterKey(self.col),
        })
    }

    fn finish(self) -> Result<(), EmitError> {
        if !self.started {
            self.out.push_str(match self.pos {
                Pos::AfterKey(_) => " {}\n",
                Pos::Inline(_) => "{}\n",
            });
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for ValueSer<'a> {
    type Ok = ();
    type Error = EmitError;
    type SerializeSeq = SeqSer<'a>;
    type SerializeTuple = SeqSer<'a>;
    type SerializeTupleStruct = SeqSer<'a>;
    type SerializeTupleVariant = SeqSer<'a>;
    type SerializeMap = MapSer<'a>;
    type SerializeStruct = MapSer<'a>;
    type SerializeStructVariant = MapSer<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), EmitError> {
        self.raw_scalar(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), EmitError> {
        self.raw_scalar(itoa::Buffer::new().format(v))
    }
    fn serialize_f32(mut self, v: f32) -> Result<(), EmitError> {
        self.before_scalar();
        write_f32(self.out, v);
        self.out.push('\n');
        Ok(())
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), EmitError> {
        self.before_scalar();
        write_f64(self.out, v);
        self.out.push('\n');
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), EmitError> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(mut self, v: &str) -> Result<(), EmitError> {
        self.before_scalar();
        write_str_scalar(self.out, v);
        self.out.push('\n');
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EmitError> {
        let mut seq = SeqSer::new(self.out, self.pos);
        for b in v {
            seq.element(b)?;
        }
        seq.finish()
    }
    fn serialize_none(self) -> Result<(), EmitError> {
        self.raw_scalar("null")
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), EmitError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EmitError> {
        self.raw_scalar("null")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EmitError> {
        self.raw_scalar("null")
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EmitError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        let (out, pos) = self.variant_key(variant);
        value.serialize(ValueSer { out, pos })
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<SeqSer<'a>, EmitError> {
        Ok(SeqSer::new(self.out, self.pos))
    }
    fn serialize_tuple(self, _len: usize) -> Result<SeqSer<'a>, EmitError> {
        Ok(SeqSer::new(self.out, self.pos))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<SeqSer<'a>, EmitError> {
        Ok(SeqSer::new(self.out, self.pos))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<SeqSer<'a>, EmitError> {
        let (out, pos) = self.variant_key(variant);
        Ok(SeqSer::new(out, pos))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer<'a>, EmitError> {
        Ok(MapSer::new(self.out, self.pos))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapSer<'a>, EmitError> {
        Ok(MapSer::new(self.out, self.pos))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapSer<'a>, EmitError> {
        let (out, pos) = self.variant_key(variant);
        Ok(MapSer::new(out, pos))
    }
}

impl ser::SerializeSeq for SeqSer<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), EmitError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTuple for SeqSer<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), EmitError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for SeqSer<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), EmitError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for SeqSer<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), EmitError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeMap for MapSer<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), EmitError> {
        self.before_key();
        let start = self.out.len();
        key.serialize(KeySer { out: &mut *self.out })?;
        self.after_key(start);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), EmitError> {
        self.value(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapSer<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        self.before_key();
        let start = self.out.len();
        write_str_scalar(self.out, key);
        self.after_key(start);
        self.value(value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapSer<'_> {
    type Ok = ();
    type Error = EmitError;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), EmitError> {
        self.finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Map keys
// ---------------------------------------------------------------------------------------------

/// Serializer for a mapping key: writes a scalar (no newline), rejects everything else.
struct KeySer<'a> {
    out: &'a mut String,
}

impl KeySer<'_> {
    fn raw(self, text: &str) -> Result<(), EmitError> {
        self.out.push_str(text);
        Ok(())
    }
}

impl ser::Serializer for KeySer<'_> {
    type Ok = ();
    type Error = EmitError;
    type SerializeSeq = Impossible<(), EmitError>;
    type SerializeTuple = Impossible<(), EmitError>;
    type SerializeTupleStruct = Impossible<(), EmitError>;
    type SerializeTupleVariant = Impossible<(), EmitError>;
    type SerializeMap = Impossible<(), EmitError>;
    type SerializeStruct = Impossible<(), EmitError>;
    type SerializeStructVariant = Impossible<(), EmitError>;

    fn serialize_bool(self, v: bool) -> Result<(), EmitError> {
        self.raw(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), EmitError> {
        self.raw(itoa::Buffer::new().format(v))
    }
    fn serialize_f32(self, _v: f32) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("a float"))
    }
    fn serialize_f64(self, _v: f64) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("a float"))
    }
    fn serialize_char(self, v: char) -> Result<(), EmitError> {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), EmitError> {
        write_str_scalar(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("bytes"))
    }
    fn serialize_none(self) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("none"))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _value: &T) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("an option"))
    }
    fn serialize_unit(self) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("unit"))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("a unit struct"))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), EmitError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EmitError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), EmitError> {
        Err(EmitError::key_not_scalar("a newtype variant"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, EmitError> {
        Err(EmitError::key_not_scalar("a sequence"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, EmitError> {
        Err(EmitError::key_not_scalar("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, EmitError> {
        Err(EmitError::key_not_scalar("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, EmitError> {
        Err(EmitError::key_not_scalar("a tuple variant"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, EmitError> {
        Err(EmitError::key_not_scalar("a map"))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, EmitError> {
        Err(EmitError::key_not_scalar("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, EmitError> {
        Err(EmitError::key_not_scalar("a struct variant"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_yaml::{Mapping, Value};

    use super::*;

    fn scalar(s: &str) -> String {
        let mut out = String::new();
        write_str_scalar(&mut out, s);
        out
    }

    fn is_quoted(s: &str) -> bool {
        scalar(s).starts_with('"')
    }

    /// Parses `k: <scalar>` and `<scalar>: 1` back with serde_yaml and checks both are the string.
    fn roundtrips_as_string(s: &str) -> bool {
        let doc = to_string(&BTreeMap::from([("k", s)])).unwrap();
        let v: Value = serde_yaml::from_str(&doc).unwrap();
        let as_value = v.get("k") == Some(&Value::String(s.to_owned()));
        let doc = to_string(&BTreeMap::from([(s, 1)])).unwrap();
        let v: Value = serde_yaml::from_str(&doc).unwrap();
        let as_key = v.as_mapping().and_then(|m| m.keys().next()) == Some(&Value::String(s.to_owned()));
        as_value && as_key
    }

    // ---- an independent YAML 1.1 / 1.2 / go-yaml "resolves as non-string" predicate ----------

    fn strip_sign(s: &str) -> &str {
        s.strip_prefix(['+', '-']).unwrap_or(s)
    }
    fn all(s: &str, f: impl Fn(u8) -> bool) -> bool {
        s.bytes().all(f)
    }
    fn dec(c: u8) -> bool {
        c.is_ascii_digit()
    }
    fn dec_(c: u8) -> bool {
        c.is_ascii_digit() || c == b'_'
    }
    /// `[0-5]?[0-9]`
    fn sexa_part(p: &str) -> bool {
        all(p, dec) && (p.len() == 1 || (p.len() == 2 && p.as_bytes()[0] <= b'5'))
    }
    /// `[1-9][0-9_]*` (or `[0-9][0-9_]*` when `zero_ok`)
    fn int_head(h: &str, zero_ok: bool) -> bool {
        h.bytes()
            .next()
            .is_some_and(|c| if zero_ok { dec(c) } else { matches!(c, b'1'..=b'9') })
            && all(h, dec_)
    }

    /// YAML 1.1 int (tag:yaml.org,2002:int regexp).
    fn is_int_11(s: &str) -> bool {
        let t = strip_sign(s);
        if let Some(r) = t.strip_prefix("0b") {
            return !r.is_empty() && all(r, |c| matches!(c, b'0' | b'1' | b'_'));
        }
        if let Some(r) = t.strip_prefix("0x") {
            return !r.is_empty() && all(r, |c| c.is_ascii_hexdigit() || c == b'_');
        }
        if t == "0" {
            return true;
        }
        if let Some(r) = t.strip_prefix('0') {
            return all(r, |c| matches!(c, b'0'..=b'7' | b'_'));
        }
        let mut parts = t.split(':');
        int_head(parts.next().unwrap_or(""), false) && parts.all(sexa_part)
    }

    /// YAML 1.1 float: union of the spec regexp and PyYAML's.
    fn is_float_11(s: &str) -> bool {
        let t = strip_sign(s);
        if matches!(t, ".inf" | ".Inf" | ".INF") || matches!(s, ".nan" | ".NaN" | ".NAN") {
            return true;
        }
        let Some((int_part, frac)) = t.split_once('.') else {
            return false;
        };
        if int_part.contains(':') {
            let mut parts = int_part.split(':');
            return int_head(parts.next().unwrap_or(""), true) && parts.all(sexa_part) && all(frac, dec_);
        }
        let int_ok = int_part.is_empty() || int_head(int_part, true);
        let (frac_part, exp) = match frac.find(['e', 'E']) {
            Some(i) => (&frac[..i], Some(&frac[i + 1..])),
            None => (frac, None),
        };
        let frac_ok = all(frac_part, |c| dec(c) || c == b'.' || c == b'_');
        let exp_ok =
            exp.is_none_or(|e| e.len() >= 2 && matches!(e.as_bytes()[0], b'+' | b'-') && all(&e[1..], dec));
        int_ok && frac_ok && exp_ok
    }

    /// YAML 1.1 timestamp: starts with `[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}`.
    fn is_timestamp_11(s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
            return false;
        }
        let rest = &s[5..];
        let mut it = rest.splitn(3, '-');
        let (m, d) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        let d: String = d.chars().take_while(char::is_ascii_digit).collect();
        (1..=2).contains(&m.len()) && all(m, dec) && (1..=2).contains(&d.len())
    }

    /// YAML 1.2 core / serde_yaml (Rust float parsing, 0x/0o/0b ints) / go-yaml (`_` stripped,
    /// Go base-0 integers).
    fn is_number_12_or_go(s: &str) -> bool {
        let u = s.strip_prefix('+').unwrap_or(s);
        if u.parse::<f64>().is_ok_and(f64::is_finite) {
            return true;
        }
        if !s.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-') {
            return false; // go-yaml only tries numbers for these first characters ('.' handled above)
        }
        let p = s.replace('_', "");
        let t = strip_sign(&p);
        let (digits, radix) = if let Some(r) = t.strip_prefix("0x").or(t.strip_prefix("0X")) {
            (r, 16)
        } else if let Some(r) = t.strip_prefix("0o").or(t.strip_prefix("0O")) {
            (r, 8)
        } else if let Some(r) = t.strip_prefix("0b").or(t.strip_prefix("0B")) {
            (r, 2)
        } else {
            (t, 10)
        };
        !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix))
    }

    const WORDS_11: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true",
        "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "=", "<<",
    ];

    fn resolves_as_non_string(s: &str) -> bool {
        WORDS_11.contains(&s) || is_int_11(s) || is_float_11(s) || is_timestamp_11(s) || is_number_12_or_go(s)
    }

    #[test]
    fn predicate_sanity() {
        for s in [
            "0755",
            "1:30",
            "190:20:30.15",
            "1.",
            ".5",
            "1e3",
            "+1.5e+3",
            "0x1F",
            "0o17",
            "2001-12-14",
            "=",
            "1_0",
            "+_1",
            "-0_x1",
        ] {
            assert!(resolves_as_non_string(s), "{s}");
        }
        for s in ["250m", "1Gi", "a", "v1.2", "inf", "0x", "1.5e3x", "--1"] {
            assert!(!resolves_as_non_string(s), "{s}");
        }
    }

    // ---- quoting tables ------------------------------------------------------------------

    const MUST_QUOTE: &[&str] = &[
        "",
        " ",
        " a",
        "a ",
        "~",
        "null",
        "Null",
        "NULL",
        "nUll",
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "0",
        "1",
        "-1",
        "+1",
        "1_000",
        "0x1F",
        "0X1f",
        "0x_1F",
        "0o17",
        "0O17",
        "0b101",
        "0B1",
        "0755",
        "-0755",
        "1:30",
        "190:20:30",
        "-1:30",
        "1.5",
        ".5",
        "1.",
        "1e3",
        "1E-3",
        "+1.5e+3",
        "6.8523015e+5",
        "190:20:30.15",
        "-.5",
        "1_0.5",
        "._5",
        ".inf",
        "-.inf",
        "+.inf",
        ".Inf",
        "-.Inf",
        ".INF",
        ".nan",
        ".NaN",
        ".NAN",
        "=",
        "<<",
        "0.0.0.0",
        "1.2.3",
        ".",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "2002-1-1",
        "---",
        "...",
        "--- a",
        "...a",
        "- a",
        "-",
        "a: b",
        "a:",
        "a #b",
        "#a",
        "*x",
        "&y",
        "!z",
        "%p",
        "@q",
        "`r",
        "|",
        "|-",
        ">",
        "'",
        "\"",
        "a'b",
        "a\"b",
        "[a]",
        "{a}",
        "a{",
        "?",
        "? a",
        ",a",
        ":a",
        "a\tb",
        "a\nb",
        "\t",
        "\n",
        "\r",
        "\u{85}",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}",
        "\u{ffff}",
        "é",
        "a\\b",
        "a#b",
        "a&b",
        "a*b",
        "a!b",
        "a|b",
        "a>b",
        "a?b",
        "a`b",
        "a\u{0}b",
        "\u{7f}",
        "\u{9f}",
        "- ",
        "-\t",
        "+_1",
        "-_0",
        "+0_x1",
        "-.",
        "+.",
    ];

    const MUST_BE_PLAIN: &[&str] = &[
        "250m",
        "512Mi",
        "1Gi",
        "app.kubernetes.io/name",
        "serving.knative.dev/service",
        "ghcr.io/acme/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "/api/health",
        "RuntimeDefault",
        "kourier-system",
        "In",
        "ALL",
        "http://x:4317",
        "production",
        "demo-sa",
        "v1",
        "--port=8080",
        "-v",
        "a b",
        "10.0.0.0/8",
        "db-0",
        "e2e-test",
        "50%",
        "a:b",
        "x=y",
        "(a)",
        "~a",
        "_x",
        ".dockerignore",
        "inf",
        "nan",
        "a - b",
        "TCP",
        "ClusterIP",
        "0.5Gi",
        "100m",
        "-c",
        "_0",
        "+",
        "+x",
    ];

    #[test]
    fn resolver_lookalikes_are_quoted_and_round_trip() {
        for s in MUST_QUOTE {
            assert!(is_quoted(s), "{s:?} should be quoted, got {}", scalar(s));
            assert!(
                roundtrips_as_string(s),
                "{s:?} does not round-trip: {}",
                scalar(s)
            );
        }
    }

    #[test]
    fn ordinary_values_stay_plain() {
        for s in MUST_BE_PLAIN {
            assert_eq!(scalar(s), *s);
            assert!(!resolves_as_non_string(s), "{s:?}");
            assert!(roundtrips_as_string(s), "{s:?}");
        }
    }

    #[test]
    fn escapes() {
        let cases = [
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\n\t\r\0", r#""\n\t\r\0""#),
            ("\u{7}\u{8}\u{b}\u{c}\u{1b}", r#""\a\b\v\f\e""#),
            ("\u{1}\u{1f}\u{7f}\u{80}\u{9f}", r#""\x01\x1F\x7F\x80\x9F""#),
            ("\u{85}\u{2028}\u{2029}", r#""\N\L\P""#),
            ("\u{feff}\u{fffe}\u{ffff}", r#""\uFEFF\uFFFE\uFFFF""#),
            ("é \u{a0}😀", "\"é \u{a0}😀\""),
            ("it's #1", "\"it's #1\""),
        ];
        for (input, expected) in cases {
            assert_eq!(scalar(input), expected);
            assert!(roundtrips_as_string(input), "{input:?}");
        }
        for c in (0u32..=0xA0).chain([0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF, 0x1F600]) {
            let s = format!("x{}y", char::from_u32(c).unwrap());
            assert!(roundtrips_as_string(&s), "{c:#x}: {}", scalar(&s));
        }
    }

    // ---- layout ----------------------------------------------------------------------------

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Doc {
        api_version: &'static str,
        kind: &'static str,
        metadata: Meta,
        list: Vec<Item>,
        empty_map: BTreeMap<String, String>,
        empty_seq: Vec<u8>,
        nothing: Option<u8>,
    }

    #[derive(Serialize)]
    struct Meta {
        labels: BTreeMap<&'static str, &'static str>,
        name: &'static str,
    }

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Item {
        S(&'static str),
        M(BTreeMap<&'static str, &'static str>),
        L(Vec<&'static str>),
    }

    #[test]
    fn brief_example_layout() {
        let doc = Doc {
            api_version: "v1",
            kind: "ServiceAccount",
            metadata: Meta {
                labels: BTreeMap::from([("app.kubernetes.io/name", "demo")]),
                name: "demo-sa",
            },
            list: vec![
                Item::S("a"),
                Item::M(BTreeMap::from([("key", "v"), ("other", "w")])),
                Item::L(vec!["nested"]),
            ],
            empty_map: BTreeMap::new(),
            empty_seq: vec![],
            nothing: None,
        };
        let expected = "\
apiVersion: v1
kind: ServiceAccount
metadata:
  labels:
    app.kubernetes.io/name: demo
  name: demo-sa
list:
- a
- key: v
  other: w
- - nested
emptyMap: {}
emptySeq: []
nothing: null
";
        assert_eq!(to_string(&doc).unwrap(), expected);
    }

    #[derive(Serialize)]
    enum E {
        Unit,
        New(u32),
        Tup(u8, u8),
        Str { a: u8, b: Vec<u8> },
        EmptyTup(),
        EmptyStr {},
    }

    #[test]
    fn enums_in_sequences_and_maps() {
        let v = vec![
            E::Unit,
            E::New(1),
            E::Tup(1, 2),
            E::Str { a: 1, b: vec![1] },
            E::EmptyTup(),
            E::EmptyStr {},
        ];
        let expected = "\
- Unit
- New: 1
- Tup:
  - 1
  - 2
- Str:
    a: 1
    b:
    - 1
- EmptyTup: []
- EmptyStr: {}
";
        assert_eq!(to_string(&v).unwrap(), expected);
        let m = BTreeMap::from([
            ("a", E::Unit),
            ("b", E::New(7)),
            ("c", E::Tup(3, 4)),
            ("d", E::Str { a: 5, b: vec![] }),
        ]);
        let expected = "\
a: Unit
b:
  New: 7
c:
  Tup:
  - 3
  - 4
d:
  Str:
    a: 5
    b: []
";
        assert_eq!(to_string(&m).unwrap(), expected);
        let parsed: Value = serde_yaml::from_str(&to_string(&m).unwrap()).unwrap();
        let mut unit_as_str = serde_yaml::to_value(&m).unwrap();
        // serde_yaml represents non-unit variants with tags; compare the untagged shapes only.
        unit_as_str = untag(unit_as_str);
        assert_eq!(parsed, unit_as_str);
    }

    fn untag(v: Value) -> Value {
        match v {
            Value::Tagged(t) => {
                let mut m = Mapping::new();
                m.insert(
                    Value::String(t.tag.to_string().trim_start_matches('!').to_owned()),
                    untag(t.value),
                );
                Value::Mapping(m)
            }
            Value::Sequence(s) => Value::Sequence(s.into_iter().map(untag).collect()),
            Value::Mapping(m) => Value::Mapping(m.into_iter().map(|(k, v)| (k, untag(v))).collect()),
            other => other,
        }
    }

    #[derive(Serialize)]
    struct Flat {
        name: &'static str,
        #[serde(flatten)]
        extra: BTreeMap<&'static str, u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        opt: Option<u8>,
    }

    #[derive(Serialize)]
    struct OnlyFlat {
        #[serde(flatten)]
        extra: BTreeMap<&'static str, u8>,
    }

    #[derive(Serialize)]
    struct AllSkipped {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        b: Vec<u8>,
    }

    #[derive(Serialize)]
    struct Holder {
        flat: Flat,
        only: OnlyFlat,
        skipped: AllSkipped,
        list: Vec<OnlyFlat>,
        skipped_list: Vec<AllSkipped>,
        some: Option<AllSkipped>,
    }

    #[test]
    fn flatten_skip_and_option_layout() {
        let h = Holder {
            flat: Flat {
                name: "nm",
                extra: BTreeMap::from([("x", 1), ("z", 2)]),
                opt: Some(3),
            },
            only: OnlyFlat {
                extra: BTreeMap::new(),
            },
            skipped: AllSkipped { a: None, b: vec![] },
            list: vec![
                OnlyFlat {
                    extra: BTreeMap::new(),
                },
                OnlyFlat {
                    extra: BTreeMap::from([("k", 1)]),
                },
            ],
            skipped_list: vec![
                AllSkipped { a: None, b: vec![] },
                AllSkipped {
                    a: Some(1),
                    b: vec![2],
                },
            ],
            some: Some(AllSkipped {
                a: Some(4),
                b: vec![],
            }),
        };
        let expected = "\
flat:
  name: nm
  x: 1
  z: 2
  opt: 3
only: {}
skipped: {}
list:
- {}
- k: 1
skipped_list:
- {}
- a: 1
  b:
  - 2
some:
  a: 4
";
        assert_eq!(to_string(&h).unwrap(), expected);
        assert_eq!(
            to_string(&OnlyFlat {
                extra: BTreeMap::new()
            })
            .unwrap(),
            "{}\n"
        );
        assert_eq!(to_string(&AllSkipped { a: None, b: vec![] }).unwrap(), "{}\n");
        assert_eq!(
            to_string(&Flat {
                name: "a",
                extra: BTreeMap::new(),
                opt: None
            })
            .unwrap(),
            "name: a\n"
        );
    }

    #[test]
    fn nested_sequences_and_top_level_values() {
        let v = vec![vec![vec![1, 2], vec![]], vec![], vec![vec![3]]];
        assert_eq!(
            to_string(&v).unwrap(),
            "- - - 1\n    - 2\n  - []\n- []\n- - - 3\n"
        );
        let m = BTreeMap::from([(
            "a",
            vec![BTreeMap::from([("b", vec![BTreeMap::from([("c", 1)])])])],
        )]);
        assert_eq!(to_string(&m).unwrap(), "a:\n- b:\n  - c: 1\n");
        assert_eq!(to_string("hello").unwrap(), "hello\n");
        assert_eq!(to_string("null").unwrap(), "\"null\"\n");
        assert_eq!(to_string(&5u8).unwrap(), "5\n");
        assert_eq!(to_string(&None::<u8>).unwrap(), "null\n");
        assert_eq!(to_string(&()).unwrap(), "null\n");
        assert_eq!(to_string(&Vec::<u8>::new()).unwrap(), "[]\n");
        assert_eq!(to_string(&BTreeMap::<u8, u8>::new()).unwrap(), "{}\n");
        assert_eq!(to_string(&(1, "x", true)).unwrap(), "- 1\n- x\n- true\n");
        assert_eq!(to_string(&'#').unwrap(), "\"#\"\n");
        assert_eq!(
            to_string(&i128::MIN).unwrap(),
            "-170141183460469231731687303715884105728\n"
        );
        let mut out = String::from("---\n");
        write(&mut out, &BTreeMap::from([("k", "v")])).unwrap();
        assert_eq!(out, "---\nk: v\n");
    }

    struct Bytes(&'static [u8]);
    impl Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    #[test]
    fn scalars_of_every_kind() {
        #[derive(Serialize)]
        struct Newtype(u8);
        #[derive(Serialize)]
        struct UnitStruct;
        #[derive(Serialize)]
        struct S {
            f: f64,
            big: f64,
            small: f64,
            neg_zero: f64,
            nan: f64,
            inf: f64,
            ninf: f64,
            f32: f32,
            b: Bytes,
            e: Bytes,
            nt: Newtype,
            us: UnitStruct,
            t: bool,
            c: char,
        }
        let s = S {
            f: 1.0,
            big: 1e16,
            small: 1.5e-7,
            neg_zero: -0.0,
            nan: f64::NAN,
            inf: f64::INFINITY,
            ninf: f64::NEG_INFINITY,
            f32: 1.5,
            b: Bytes(&[1, 255]),
            e: Bytes(&[]),
            nt: Newtype(9),
            us: UnitStruct,
            t: true,
            c: 'x',
        };
        let expected = "\
f: 1.0
big: 1.0e+16
small: 1.5e-7
neg_zero: -0.0
nan: .nan
inf: .inf
ninf: -.inf
f32: 1.5
b:
- 1
- 255
e: []
nt: 9
us: null
t: true
c: x
";
        let out = to_string(&s).unwrap();
        assert_eq!(out, expected);
        let v: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["big"].as_f64(), Some(1e16));
        assert_eq!(v["small"].as_f64(), Some(1.5e-7));
        assert!(v["nan"].as_f64().unwrap().is_nan());
        assert_eq!(v["ninf"].as_f64(), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn non_string_keys() {
        let m = BTreeMap::from([(1i64, "a"), (-2, "b")]);
        assert_eq!(to_string(&m).unwrap(), "-2: b\n1: a\n");
        let m = BTreeMap::from([(true, 1)]);
        assert_eq!(to_string(&m).unwrap(), "true: 1\n");
        let m = BTreeMap::from([('y', 1)]);
        assert_eq!(to_string(&m).unwrap(), "\"y\": 1\n");
        #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
        enum K {
            On,
            Off,
        }
        let m = BTreeMap::from([(K::On, 1), (K::Off, 2)]);
        assert_eq!(to_string(&m).unwrap(), "\"On\": 1\n\"Off\": 2\n");
    }

    #[test]
    fn non_scalar_keys_are_errors() {
        let m = BTreeMap::from([(vec![1u8], 1u8)]);
        let err = to_string(&m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "yaml map key must be a string, bool, integer, char or unit variant, found a sequence"
        );
        let m = BTreeMap::from([(Some("a"), 1u8)]);
        assert!(to_string(&m).is_err());
        let m = vec![(1.5f64, 1u8)];
        struct FloatKeyed(Vec<(f64, u8)>);
        impl Serialize for FloatKeyed {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                for (k, v) in &self.0 {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
        assert!(to_string(&FloatKeyed(m)).is_err());
    }

    #[test]
    fn custom_errors_propagate() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("boom"))
            }
        }
        let err = to_string(&BTreeMap::from([("a", Fails)])).unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }

    #[test]
    fn long_keys_use_explicit_entries() {
        let long = "k".repeat(1500);
        let quoted_long = format!("é{}", "x".repeat(1200));
        let m = BTreeMap::from([
            (long.clone(), Value::from(1)),
            (
                quoted_long.clone(),
                serde_yaml::from_str("{a: [1, {b: 2}], c: []}").unwrap(),
            ),
            (
                "z".to_owned(),
                Value::Sequence(vec![Value::from("s"), Value::Sequence(vec![])]),
            ),
        ]);
        let wrapper = vec![m.clone()];
        for out in [to_string(&m).unwrap(), to_string(&wrapper).unwrap()] {
            assert!(out.contains(&format!("? {long}\n")), "{out}");
            let parsed: Value = serde_yaml::from_str(&out).unwrap();
            let expected = serde_yaml::to_value(if out.starts_with('-') {
                serde_yaml::to_value(&wrapper).unwrap()
            } else {
                serde_yaml::to_value(&m).unwrap()
            })
            .unwrap();
            assert_eq!(parsed, expected, "{out}");
        }
        assert_eq!(
            to_string(&BTreeMap::from([(long.as_str(), 1)])).unwrap(),
            format!("? {long}\n: 1\n")
        );
    }

    #[derive(Serialize)]
    struct L1 {
        name: String,
        inner: L2,
        items: Vec<L2>,
        tags: BTreeMap<String, String>,
    }

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct L2 {
        count: u32,
        ratio: f64,
        leaf: Option<L3>,
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<String>,
        values: Vec<String>,
    }

    #[derive(Serialize)]
    struct L3 {
        flag: bool,
        text: String,
        numbers: Vec<i64>,
        map: BTreeMap<String, Vec<String>>,
    }

    #[test]
    fn three_level_struct_matches_serde_yaml() {
        let l3 = |t: &str| L3 {
            flag: true,
            text: t.to_owned(),
            numbers: vec![-1, 0, i64::MAX],
            map: BTreeMap::from([("on".to_owned(), vec!["yes".to_owned(), "a: b".to_owned()])]),
        };
        let l2 = |n: u32| L2 {
            count: n,
            ratio: 0.25,
            leaf: Some(l3("multi\nline\n")),
            maybe: n.is_multiple_of(2).then(|| "0755".to_owned()),
            values: vec!["1.0".into(), "".into(), "~".into(), "plain".into()],
        };
        let v = L1 {
            name: "web".into(),
            inner: l2(1),
            items: vec![
                l2(2),
                L2 {
                    leaf: None,
                    values: vec![],
                    ..l2(3)
                },
            ],
            tags: BTreeMap::from([
                ("app.kubernetes.io/name".into(), "web".into()),
                ("#".into(), "".into()),
            ]),
        };
        let out = to_string(&v).unwrap();
        let parsed: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(parsed, serde_yaml::to_value(&v).unwrap(), "{out}");
        let reparsed: Value = serde_yaml::from_str(&serde_yaml::to_string(&v).unwrap()).unwrap();
        assert_eq!(parsed, reparsed);
    }

    // ---- property tests ----------------------------------------------------------------------

    const NASTY: &[&str] = &[
        "on",
        "0",
        "0x1F",
        "1:30",
        ".inf",
        "- a",
        "a: b",
        "a #b",
        "*x",
        "&y",
        "!z",
        "%p",
        "@q",
        "`r",
        "---",
        "...",
        "\u{2028}",
        "\u{85}",
        "\t",
        "\n",
        "'",
        "\"",
        "~",
        "<<",
        "=",
        "",
        " ",
        "null",
        "Yes",
        "OFF",
        "0755",
        "1e3",
        "1_0",
        ".5",
        "-",
        ":",
        "?",
        "#",
        "0.0.0.0",
        "2001-12-14",
        "\\",
        "\r\n",
        "\u{feff}",
        "é",
        "a",
        "1",
        "-1",
        "+",
        ".",
        "0o7",
        "0b1",
        "-.Inf",
        ".NaN",
        "y",
        "N",
        "{",
        "}",
        "[",
        "]",
        ",",
        "|",
        ">",
    ];

    fn nasty_string() -> impl Strategy<Value = String> {
        let nasty = prop::sample::select(NASTY);
        prop_oneof![
            any::<String>(),
            "[ -~]{0,12}",
            "[0-9a-fA-FxXoO._:+eE -]{0,8}",
            "[a-zA-Z0-9._/:@=+,()~% -]{0,12}",
            nasty.clone().prop_map(String::from),
            (nasty.clone(), nasty, "[a-z0-9 ]{0,2}").prop_map(|(a, b, c)| format!("{a}{c}{b}")),
        ]
    }

    fn value_tree() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            nasty_string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Sequence),
                prop::collection::vec((nasty_string(), inner), 0..6).prop_map(|kv| {
                    Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect())
                }),
            ]
        })
    }

    /// Equality with floats compared bit-exactly (so `-0.0` must stay `-0.0`).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
                x.is_f64() && y.is_f64() && x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
            }
            (Value::Sequence(x), Value::Sequence(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (Value::Mapping(x), Value::Mapping(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
            }
            _ => a == b,
        }
    }

    fn collect_strings<'v>(v: &'v Value, acc: &mut Vec<&'v str>) {
        match v {
            Value::String(s) => acc.push(s),
            Value::Sequence(s) => s.iter().for_each(|v| collect_strings(v, acc)),
            Value::Mapping(m) => m.iter().for_each(|(k, v)| {
                collect_strings(k, acc);
                collect_strings(v, acc);
            }),
            _ => {}
        }
    }

    fn resolver_lookalike() -> impl Strategy<Value = String> {
        prop_oneof![
            "[-+]?0b[01_]{1,8}",
            "[-+]?0x[0-9a-fA-F_]{1,8}",
            "[-+]?0[0-7_]{0,8}",
            "[-+]?[1-9][0-9_]{0,8}(:[0-5]?[0-9]){0,3}",
            "[-+]?([0-9][0-9_]{0,5})?\\.[0-9.]{0,6}([eE][-+][0-9]{1,3})?",
            "\\.[0-9_]{1,6}([eE][-+][0-9]{1,3})?",
            "[-+]?[0-9][0-9_]{0,4}(:[0-5]?[0-9]){1,3}\\.[0-9_]{0,4}",
            "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)",
            "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,3})?([ \t]*Z|[-+][0-9]{1,2}(:[0-9]{2})?)?)?",
            "[-+]?[0-9]{1,10}|0o[0-7]{1,6}|0x[0-9a-fA-F]{1,6}",
            "[-+]?(\\.[0-9]{1,4}|[0-9]{1,4}(\\.[0-9]{0,4})?)([eE][-+]?[0-9]{1,3})?",
            "[-+]?(0[xXoObB][0-9a-fA-F_]{1,6}|[0-9][0-9_]{0,6})",
            "y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
            "null|Null|NULL|~|=|<<|---|\\.\\.\\.",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2500, ..ProptestConfig::default() })]

        #[test]
        fn tree_round_trips_through_serde_yaml(v in value_tree()) {
            let out = to_string(&v).unwrap();
            prop_assert!(out.ends_with('\n'));
            let parsed: Value = serde_yaml::from_str(&out).unwrap();
            prop_assert!(same(&parsed, &v), "emitted:\n{}\nparsed: {:?}\noriginal: {:?}", out, parsed, v);
            let mut strings = Vec::new();
            collect_strings(&v, &mut strings);
            for s in strings {
                if !is_quoted(s) {
                    prop_assert!(!resolves_as_non_string(s), "plain {:?} resolves as non-string", s);
                }
            }
        }

        #[test]
        fn plain_strings_never_resolve_as_other_types(s in nasty_string()) {
            let out = scalar(&s);
            if out.starts_with('"') {
                prop_assert!(out.ends_with('"') && out.len() >= 2);
            } else {
                prop_assert_eq!(&out, &s);
                prop_assert!(!resolves_as_non_string(&s), "plain {:?} resolves as non-string", s);
            }
            prop_assert!(roundtrips_as_string(&s), "{:?} -> {}", s, out);
        }

        #[test]
        fn resolver_lookalikes_are_always_quoted(s in resolver_lookalike()) {
            prop_assert!(is_quoted(&s), "{:?} -> {}", s, scalar(&s));
            prop_assert!(roundtrips_as_string(&s), "{:?} -> {}", s, scalar(&s));
        }
    }
}
