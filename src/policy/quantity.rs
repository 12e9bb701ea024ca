//! Kubernetes `resource.Quantity` strings (`250m`, `1.5Gi`, `1e3`), parsed with bounded work and
//! compared exactly.
//!
//! Pure functions with no I/O, shared by the NextApp validator, `build.rs` and the CLI. The
//! grammar follows `k8s.io/apimachinery/pkg/api/resource.ParseQuantity`: an optional sign, a
//! number (`5`, `5.`, `.5`, `5.25`) and a suffix that is binary SI (`Ki`..`Ei`), decimal SI
//! (`n u m "" k M G T P E`) or a decimal exponent (`e3`, `E-2`). Bounds are checked before any
//! arithmetic: the input is at most [`MAX_LEN`] bytes and an exponent at most [`MAX_EXPONENT`] in
//! magnitude, so a value is at most a few dozen digits and every operation is linear in them.
//!
//! Values are kept exactly (a decimal digit string times a power of ten, with binary suffixes
//! multiplied in), so ordering never uses floating point: `1Gi == 1073741824`, `0.1 == 100m`,
//! `1e3 == 1k`, `1Ki > 1k`.

use std::cmp::Ordering;

/// Longest quantity string accepted, in bytes.
pub const MAX_LEN: usize = 64;

/// Largest decimal exponent magnitude accepted (`1e9999` is fine, `1e10000` is not).
pub const MAX_EXPONENT: u32 = 9999;

const DECIMAL_SUFFIXES: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BINARY_SUFFIXES: [(&str, u32); 6] = [("Ki", 1), ("Mi", 2), ("Gi", 3), ("Ti", 4), ("Pi", 5), ("Ei", 6)];
const SUFFIX_CHARS: &[u8] = b"eEinumkKMGTP";

/// An exactly represented quantity: `(-1)^negative × digits × 10^exponent`, in canonical form
/// (no leading or trailing zero digits; zero is no digits, exponent 0, not negative), so derived
/// equality is value equality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    /// Decimal digits, most significant first, each 0-9.
    digits: Vec<u8>,
    exponent: i32,
}

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string exceeds [`MAX_LEN`] bytes.
    #[error(
        "quantity {input} exceeds the {MAX_LEN}-byte limit; shorten it with a suffix such as \"Gi\" or \"m\""
    )]
    TooLong {
        /// The (truncated, quoted) input.
        input: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The string is empty.
    #[error("the quantity is empty; write a number with an optional suffix such as \"250m\" or \"512Mi\"")]
    Empty,
    /// The string does not match the quantity grammar.
    #[error("quantity {input:?} is invalid: {reason}")]
    Malformed {
        /// The input.
        input: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The decimal exponent exceeds [`MAX_EXPONENT`] in magnitude.
    #[error(
        "quantity {input:?} has an exponent outside -{MAX_EXPONENT}..{MAX_EXPONENT}; write a realistic \
         value such as \"1e3\" or \"2G\""
    )]
    ExponentOutOfRange {
        /// The input.
        input: String,
    },
}

/// Parses a Kubernetes quantity string.
///
/// Follows `ParseQuantity`'s grammar, with two deliberate, stricter deviations: a string without
/// any digit (`"Mi"`, `"-"`, `"."`, which Kubernetes reads as zero) is rejected, and so is an
/// exponent beyond ±[`MAX_EXPONENT`] (Kubernetes truncates it to 32 bits).
pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
    if s.len() > MAX_LEN {
        return Err(QuantityError::TooLong {
            input: super::names::quote(s),
            len: s.len(),
        });
    }
    if s.is_empty() {
        return Err(QuantityError::Empty);
    }
    let malformed = |reason: String| QuantityError::Malformed {
        input: s.to_owned(),
        reason,
    };
    let bytes = s.as_bytes();
    let mut pos = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            pos += 1;
            true
        }
        Some(b'+') => {
            pos += 1;
            false
        }
        _ => false,
    };
    let digit_run = |from: usize| {
        bytes
            .get(from..)
            .map_or(0, |rest| rest.iter().take_while(|b| b.is_ascii_digit()).count())
    };
    let int_len = digit_run(pos);
    let int_part = &bytes[pos..pos + int_len];
    pos += int_len;
    let mut frac_part: &[u8] = &[];
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        let frac_len = digit_run(pos);
        frac_part = &bytes[pos..pos + frac_len];
        pos += frac_len;
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(malformed(String::from(
            "it has no number; write digits before the suffix, e.g. \"512Mi\"",
        )));
    }
    // Suffix: [eEinumkKMGTP]* [+-]? [0-9]*, and nothing after it.
    let suffix = &s[pos..];
    let letters = suffix.bytes().take_while(|b| SUFFIX_CHARS.contains(b)).count();
    let mut tail = &suffix.as_bytes()[letters..];
    if let Some((b'+' | b'-', rest)) = tail.split_first() {
        tail = rest;
    }
    if !tail.iter().all(u8::is_ascii_digit) {
        return Err(malformed(unknown_suffix(suffix)));
    }

    let mut exponent: i32;
    let mut binary_power = 0;
    if let Some(&(_, e)) = DECIMAL_SUFFIXES.iter().find(|(name, _)| *name == suffix) {
        exponent = e;
    } else if let Some(&(_, k)) = BINARY_SUFFIXES.iter().find(|(name, _)| *name == suffix) {
        exponent = 0;
        binary_power = k;
    } else if let Some(text) = suffix.strip_prefix(['e', 'E']).filter(|t| !t.is_empty()) {
        exponent = parse_exponent(text)
            .ok_or_else(|| malformed(unknown_suffix(suffix)))?
            .ok_or_else(|| QuantityError::ExponentOutOfRange { input: s.to_owned() })?;
    } else {
        return Err(malformed(unknown_suffix(suffix)));
    }

    // value = (int_part . frac_part) × 10^exponent × 1024^binary_power
    let mut digits: Vec<u8> = int_part.iter().chain(frac_part).map(|b| b - b'0').collect();
    exponent -= i32::try_from(frac_part.len()).unwrap_or(0);
    for _ in 0..binary_power {
        multiply(&mut digits, 1024);
    }
    Ok(Quantity::canonical(negative, digits, exponent))
}

/// The exponent after `e`/`E`: `None` if it is not `[+-]?[0-9]+`, `Some(None)` if its magnitude
/// exceeds [`MAX_EXPONENT`] (decided from the digit count before any arithmetic).
fn parse_exponent(text: &str) -> Option<Option<i32>> {
    let (negative, digits) = match text.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text.as_bytes()),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let significant = digits
        .iter()
        .position(|&d| d != b'0')
        .map_or(&[][..], |i| &digits[i..]);
    if significant.len() > 4 {
        return Some(None);
    }
    let magnitude = significant
        .iter()
        .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
    if magnitude.unsigned_abs() > MAX_EXPONENT {
        return Some(None);
    }
    Some(Some(if negative { -magnitude } else { magnitude }))
}

fn unknown_suffix(suffix: &str) -> String {
    if suffix.starts_with('.') {
        return String::from("it has more than one '.'; write a single decimal point, e.g. \"1.5Gi\"");
    }
    let known = DECIMAL_SUFFIXES
        .iter()
        .map(|(n, _)| *n)
        .chain(BINARY_SUFFIXES.iter().map(|(n, _)| *n));
    let hints: Vec<String> = known
        .filter(|n| !n.is_empty() && n.eq_ignore_ascii_case(suffix))
        .map(|n| format!("{n:?}"))
        .collect();
    let hint = if hints.is_empty() {
        String::new()
    } else {
        format!(
            " (suffixes are case-sensitive: did you mean {}?)",
            hints.join(" or ")
        )
    };
    format!(
        "{suffix:?} is not a quantity suffix{hint}; use Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E \
         or an exponent such as e3"
    )
}

/// Multiplies a most-significant-first decimal digit vector by a small factor, in place.
fn multiply(digits: &mut Vec<u8>, factor: u32) {
    let mut carry = 0u32;
    for digit in digits.iter_mut().rev() {
        let product = u32::from(*digit) * factor + carry;
        *digit = (product % 10) as u8;
        carry = product / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

impl Quantity {
    fn canonical(negative: bool, mut digits: Vec<u8>, mut exponent: i32) -> Self {
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        if digits.is_empty() {
            return Quantity {
                negative: false,
                digits,
                exponent: 0,
            };
        }
        Quantity {
            negative,
            digits,
            exponent,
        }
    }

    /// True when the quantity is greater than zero (any positive amount, however small).
    pub fn is_positive(&self) -> bool {
        !self.negative && !self.digits.is_empty()
    }

    /// True when the quantity is zero (`0`, `-0`, `0.0Gi`, `0e5`, ...).
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// True when the quantity is less than zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Compares absolute values.
    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        // Position of the most significant digit; digits have no leading zeros.
        let top = |q: &Self| i64::try_from(q.digits.len()).unwrap_or(i64::MAX) + i64::from(q.exponent);
        top(self)
            .cmp(&top(other))
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

impl Ord for Quantity {
    /// Exact numeric comparison.
    fn cmp(&self, other: &Self) -> Ordering {
        let class = |q: &Self| {
            if q.negative {
                -1
            } else {
                i32::from(!q.digits.is_empty())
            }
        };
        match class(self).cmp(&class(other)) {
            Ordering::Equal if self.negative => other.cmp_magnitude(self),
            Ordering::Equal => self.cmp_magnitude(other),
            unequal => unequal,
        }
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn q(s: &str) -> Quantity {
        parse(s).unwrap_or_else(|e| unreachable!("{s}: {e}"))
    }

    #[test]
    fn valid_and_invalid_quantities_follow_parse_quantity() {
        let rows: &[(&str, bool)] = &[
            ("0", true),
            ("1", true),
            ("+1", true),
            ("-1", true),
            ("1.5Gi", true),
            ("250m", true),
            ("1e3", true),
            ("1E3", true),
            ("1e+3", true),
            ("1e-3", true),
            ("1E-3", true),
            ("1E", true),
            ("1Ki", true),
            ("512Mi", true),
            ("2Ti", true),
            ("1Pi", true),
            ("8Ei", true),
            ("100n", true),
            ("100u", true),
            ("1k", true),
            ("1M", true),
            ("1G", true),
            ("1T", true),
            ("1P", true),
            (".5", true),
            ("5.", true),
            ("5.Gi", true),
            ("-.5m", true),
            ("007", true),
            ("0.000", true),
            ("1e9999", true),
            ("1e-9999", true),
            ("1e00003", true),
            ("", false),
            ("1Z", false),
            ("1.2.3", false),
            ("1e99999", false),
            ("1ki", false),
            ("1KI", false),
            ("1K", false),
            ("1mi", false),
            ("Mi", false),
            ("-", false),
            ("+", false),
            (".", false),
            ("1e", false),
            ("1e-", false),
            ("1ee3", false),
            ("1e3m", false),
            ("1m5", false),
            ("1Mi3", false),
            (" 1", false),
            ("1 ", false),
            ("--1", false),
            ("1,5", false),
            ("0x10", false),
            ("1e1.5", false),
            ("１", false),
            ("-3.01i", false),
            ("0.1mi", false),
        ];
        for &(input, ok) in rows {
            let got = parse(input);
            assert_eq!(got.is_ok(), ok, "{input:?} gave {got:?}");
        }
        let at_cap = "1".repeat(MAX_LEN);
        assert!(parse(&at_cap).is_ok());
        let over_cap = "1".repeat(MAX_LEN + 1);
        assert!(matches!(
            parse(&over_cap),
            Err(QuantityError::TooLong { len: 65, .. })
        ));
    }

    #[test]
    fn quantities_compare_exactly() {
        let equal = [
            ("1Gi", "1073741824"),
            ("0.1", "100m"),
            ("1e3", "1k"),
            ("1E3", "1000"),
            ("1.5Gi", "1536Mi"),
            ("1Ei", "1152921504606846976"),
            ("0", "-0"),
            ("0", "0Gi"),
            ("0.0", "0e5"),
            ("1e-9", "1n"),
            ("1000m", "1"),
            ("007", "7"),
            ("5.", "5"),
            (".5", "500m"),
            ("1e9999", "10e9998"),
            ("+1", "1"),
        ];
        for (a, b) in equal {
            assert_eq!(q(a), q(b), "{a} == {b}");
            assert_eq!(q(a).cmp(&q(b)), Ordering::Equal, "{a} == {b}");
        }
        let less = [
            ("1k", "1Ki"),
            ("999m", "1"),
            ("1", "1001m"),
            ("-1", "0"),
            ("-2", "-1"),
            ("-1Gi", "-1G"),
            ("0", "1n"),
            ("1e-9999", "1n"),
            ("9", "10"),
            ("99", "100"),
            ("12", "123"),
            ("1.23", "1.3"),
            ("1023", "1Ki"),
            ("1e9998", "1e9999"),
            ("-1e9999", "-1"),
            ("0.25G", "256Mi"),
        ];
        for (a, b) in less {
            assert!(q(a) < q(b), "{a} < {b}");
            assert!(q(b) > q(a), "{b} > {a}");
        }
    }

    #[test]
    fn sign_and_zero_predicates_are_exact() {
        assert!(q("1n").is_positive());
        assert!(q("1e-9999").is_positive());
        assert!(!q("0").is_positive());
        assert!(!q("-1").is_positive());
        assert!(q("-1").is_negative());
        assert!(q("0").is_zero());
        assert!(q("-0.0Mi").is_zero());
        assert!(!q("-0.0Mi").is_negative());
        assert!(!q("1m").is_zero());
    }

    #[test]
    fn errors_say_what_is_wrong_and_how_to_fix_it() {
        let message = parse("1ki").unwrap_err().to_string();
        assert!(message.contains("did you mean \"Ki\""), "{message}");
        let message = parse("Mi").unwrap_err().to_string();
        assert!(message.contains("no number"), "{message}");
        assert_eq!(parse(""), Err(QuantityError::Empty));
        assert_eq!(
            parse("1e99999"),
            Err(QuantityError::ExponentOutOfRange {
                input: "1e99999".into()
            })
        );
        assert!(
            parse("1Z")
                .unwrap_err()
                .to_string()
                .starts_with("quantity \"1Z\" is invalid")
        );
    }

    #[test]
    fn pathological_exponents_are_rejected_promptly() {
        let start = Instant::now();
        for input in [
            "1e9999999999",
            "1e-9999999999",
            "9e0000000000000000000000000000000010000",
            "1E99999999999999999999",
        ] {
            assert!(
                matches!(parse(input), Err(QuantityError::ExponentOutOfRange { .. })),
                "{input}"
            );
        }
        let huge = "9".repeat(10_000_000);
        assert!(matches!(parse(&huge), Err(QuantityError::TooLong { .. })));
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    proptest::proptest! {
        #[test]
        fn ordering_agrees_with_integer_ordering(a in proptest::num::i64::ANY, b in proptest::num::i64::ANY) {
            proptest::prop_assert_eq!(q(&a.to_string()).cmp(&q(&b.to_string())), a.cmp(&b));
        }

        #[test]
        fn binary_suffixes_equal_their_expansion(a in 0u64..1_000_000, power in 1u32..=6) {
            let suffix = BINARY_SUFFIXES[power as usize - 1].0;
            let expanded = u128::from(a) * 1024u128.pow(power);
            proptest::prop_assert_eq!(q(&format!("{a}{suffix}")), q(&expanded.to_string()));
        }

        #[test]
        fn milli_values_equal_their_decimal_form(a in 0u32..1_000_000) {
            let decimal = format!("{}.{:03}", a / 1000, a % 1000);
            proptest::prop_assert_eq!(q(&format!("{a}m")), q(&decimal));
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,80}") {
            let _ = parse(&s);
        }
    }
}
