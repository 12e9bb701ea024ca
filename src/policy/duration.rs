//! Go `time.ParseDuration`, reimplemented faithfully, and Knative's
//! `autoscaling.knative.dev/scale-down-delay` rule built on it.
//!
//! Pure functions with no I/O, shared by the NextApp validator, `build.rs` and the CLI (and by
//! `super::cron` for `@every`). Input is capped at [`MAX_LEN`] bytes before any scanning, and the
//! scanner is a single linear pass with overflow checks, so hostile input costs bounded work.

use super::names::quote;

/// Longest duration string accepted, in bytes (Go has no cap; a real duration is a few bytes).
pub const MAX_LEN: usize = 256;

/// Nanoseconds in one second.
pub const SECOND: i128 = 1_000_000_000;

/// Largest scale-down delay Knative allows (its `WindowMax`, one hour), in nanoseconds.
pub const SCALE_DOWN_DELAY_MAX: i128 = 3600 * SECOND;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("the duration is empty; write a number with a unit such as \"30s\" or \"5m\"")]
    Empty,
    /// The string exceeds [`MAX_LEN`] bytes.
    #[error(
        "duration {input} exceeds the {MAX_LEN}-byte limit; write a short Go duration such as \"30s\" \
         or \"1h\""
    )]
    TooLong {
        /// The (truncated, quoted) input.
        input: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The string is not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`.
    #[error("{input:?} is not a Go duration: {reason}; write e.g. \"90s\", \"1m30s\" or \"1.5h\"")]
    Malformed {
        /// The input.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A number has no unit after it (e.g. `"300"`).
    #[error("{input:?} has no unit; {}", missing_unit_fix(.input))]
    MissingUnit {
        /// The input.
        input: String,
    },
    /// A unit is not one of `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`, `h`.
    #[error("{input:?} uses the unknown unit {unit:?}; use one of ns, us, ms, s, m or h")]
    UnknownUnit {
        /// The input.
        input: String,
        /// The unrecognised unit.
        unit: String,
    },
    /// The value does not fit in a Go `time.Duration` (signed 64-bit nanoseconds, about 292 years).
    #[error("{input:?} overflows a Go duration (at most about 2562047h); use a smaller value")]
    Overflow {
        /// The input.
        input: String,
    },
    /// A scale-down delay is negative.
    #[error("{input:?} is negative; a scale-down delay must be between \"0s\" and \"1h\"")]
    Negative {
        /// The input.
        input: String,
    },
    /// A scale-down delay exceeds one hour.
    #[error("{input:?} exceeds the 1h maximum Knative allows for a scale-down delay; use at most \"1h\"")]
    AboveMaximum {
        /// The input.
        input: String,
    },
    /// A scale-down delay has a sub-second part.
    #[error("{input:?} is not a whole number of seconds; use \"{floor}s\" or \"{ceil}s\"")]
    NotWholeSeconds {
        /// The input.
        input: String,
        /// The value rounded down to whole seconds.
        floor: i128,
        /// The value rounded up to whole seconds.
        ceil: i128,
    },
}

fn missing_unit_fix(input: &str) -> String {
    let digits = input.strip_prefix(['+', '-']).unwrap_or(input);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: Option<u64> = digits.parse().ok();
        return match seconds {
            Some(n) if n >= 60 && n % 60 == 0 => format!("write \"{input}s\" or \"{}m\"", n / 60),
            _ => format!("write \"{input}s\""),
        };
    }
    String::from("every number needs a unit (ns, us, ms, s, m or h), e.g. \"1m30s\"")
}

/// Nanoseconds per unit, or `None` for an unknown unit.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

const LIMIT: u64 = 1 << 63;

/// Parses a Go duration string exactly as Go's `time.ParseDuration` does, returning nanoseconds.
///
/// Accepts an optional sign followed by one or more `<number><unit>` terms, where a number is
/// digits with an optional fraction (`1`, `1.5`, `.5`, `1.`) and the unit is one of `ns`, `us`,
/// `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`; the bare strings `"0"`, `"+0"` and `"-0"`
/// are zero. Fractions are converted with the same `float64` arithmetic Go uses, so results agree
/// to the nanosecond; values outside a signed 64-bit nanosecond count are an error.
pub fn parse_go_duration(s: &str) -> Result<i128, DurationError> {
    if s.len() > MAX_LEN {
        return Err(DurationError::TooLong {
            input: quote(s),
            len: s.len(),
        });
    }
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let malformed = |reason: &str| DurationError::Malformed {
        input: s.to_owned(),
        reason: reason.to_owned(),
    };
    let overflow = || DurationError::Overflow { input: s.to_owned() };

    let mut rest = s.as_bytes();
    let mut negative = false;
    if let Some((&sign @ (b'-' | b'+'), tail)) = rest.split_first() {
        negative = sign == b'-';
        rest = tail;
    }
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(malformed("a sign must be followed by a number and a unit"));
    }

    let mut total: u64 = 0;
    while let Some(&first) = rest.first() {
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(malformed("each term must start with a digit or '.'"));
        }
        // Integer part: Go's leadingInt, an error as soon as it exceeds 2^63.
        let mut whole: u64 = 0;
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        for &digit in rest.iter().take(int_len) {
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .filter(|&v| v <= LIMIT)
                .ok_or_else(overflow)?;
        }
        rest = rest.get(int_len..).unwrap_or_default();
        // Fraction part: Go's leadingFraction, which stops accumulating (silently) on overflow.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some((b'.', tail)) = rest.split_first() {
            rest = tail;
            frac_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let mut overflowed = false;
            for &digit in rest.iter().take(frac_len) {
                if overflowed {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                {
                    Some(v) if fraction <= (LIMIT - 1) / 10 && v <= LIMIT => {
                        fraction = v;
                        scale *= 10.0;
                    }
                    _ => overflowed = true,
                }
            }
            rest = rest.get(frac_len..).unwrap_or_default();
        }
        if int_len == 0 && frac_len == 0 {
            return Err(malformed("'.' must have a digit before or after it"));
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = rest
            .iter()
            .take_while(|&&b| !(b == b'.' || b.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit { input: s.to_owned() });
        }
        let (unit_bytes, tail) = rest.split_at(unit_len);
        rest = tail;
        let unit_text = String::from_utf8_lossy(unit_bytes);
        let unit = unit_nanos(&unit_text).ok_or_else(|| DurationError::UnknownUnit {
            input: s.to_owned(),
            unit: unit_text.into_owned(),
        })?;
        if whole > LIMIT / unit {
            return Err(overflow());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // Go: v += uint64(float64(f) * (float64(unit) / scale)); the product is at most 3.6e12.
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let extra = (fraction as f64 * (unit as f64 / scale)) as u64;
            value = value
                .checked_add(extra)
                .filter(|&v| v <= LIMIT)
                .ok_or_else(overflow)?;
        }
        total = total
            .checked_add(value)
            .filter(|&v| v <= LIMIT)
            .ok_or_else(overflow)?;
    }
    if negative {
        return Ok(-i128::from(total));
    }
    if total > LIMIT - 1 {
        return Err(overflow());
    }
    Ok(i128::from(total))
}

/// Checks a Knative `autoscaling.knative.dev/scale-down-delay` value the way Knative's webhook
/// does: it must parse as a Go duration, lie between `0s` and `1h` inclusive, and be a whole
/// number of seconds.
pub fn check_scale_down_delay(s: &str) -> Result<(), DurationError> {
    let nanos = parse_go_duration(s)?;
    if nanos < 0 {
        return Err(DurationError::Negative { input: s.to_owned() });
    }
    if nanos > SCALE_DOWN_DELAY_MAX {
        return Err(DurationError::AboveMaximum { input: s.to_owned() });
    }
    if nanos % SECOND != 0 {
        let floor = nanos / SECOND;
        return Err(DurationError::NotWholeSeconds {
            input: s.to_owned(),
            floor,
            ceil: floor + 1,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i128 = 1;
    const US: i128 = 1_000;
    const MS: i128 = 1_000_000;
    const S: i128 = SECOND;
    const M: i128 = 60 * S;
    const H: i128 = 60 * M;

    #[test]
    fn go_parse_duration_examples_agree_with_go() {
        // Rows from Go's own time.ParseDuration tests (src/time/time_test.go).
        let rows: &[(&str, i128)] = &[
            ("0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600 * MS),
            ("5.s", 5 * S),
            (".5s", 500 * MS),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4 * MS),
            ("1.0040s", S + 4 * MS),
            ("100.00100s", 100 * S + MS),
            ("10ns", 10 * NS),
            ("11us", 11 * US),
            ("12\u{b5}s", 12 * US),
            ("12\u{3bc}s", 12 * US),
            ("13ms", 13 * MS),
            ("14s", 14 * S),
            ("15m", 15 * M),
            ("16h", 16 * H),
            ("3h30m", 3 * H + 30 * M),
            ("10.5s4m", 4 * M + 10 * S + 500 * MS),
            ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
            ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS),
            ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * M),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i128::from(i64::MAX)),
            ("9223372036854775.807us", i128::from(i64::MAX)),
            ("9223372036s854ms775us807ns", i128::from(i64::MAX)),
            ("-9223372036854775808ns", i128::from(i64::MIN)),
            ("-9223372036854775.808us", i128::from(i64::MIN)),
            ("-2562047h47m16.854775808s", i128::from(i64::MIN)),
            ("0.100000000000000000000h", 6 * M),
            ("0.830103483285477580700h", 49 * M + 48 * S + 372_539_827),
            ("1h15m30.918273645s", H + 15 * M + 30 * S + 918_273_645),
        ];
        for &(input, want) in rows {
            assert_eq!(parse_go_duration(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn go_parse_duration_rejections_agree_with_go() {
        for input in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{ffff}",
            "9223372036854775810ns",
            "9223372036854775808ns",
            "-9223372036854775809ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "1h-1m",
            " 1s",
            "1s ",
            "1 s",
            "9999999999h",
        ] {
            assert!(parse_go_duration(input).is_err(), "{input:?} should be rejected");
        }
    }

    #[test]
    fn errors_name_the_specific_problem() {
        assert_eq!(
            parse_go_duration("300"),
            Err(DurationError::MissingUnit { input: "300".into() })
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err(DurationError::UnknownUnit {
                input: "1d".into(),
                unit: "d".into()
            })
        );
        assert_eq!(
            parse_go_duration("9999999999h"),
            Err(DurationError::Overflow {
                input: "9999999999h".into()
            })
        );
        assert_eq!(parse_go_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_go_duration("abc"),
            Err(DurationError::Malformed { .. })
        ));
        let long = "1".repeat(MAX_LEN + 1);
        assert!(matches!(
            parse_go_duration(&long),
            Err(DurationError::TooLong { len: 257, .. })
        ));
    }

    #[test]
    fn messages_name_the_value_and_the_fix() {
        let message = |s: &str| check_scale_down_delay(s).unwrap_err().to_string();
        assert_eq!(message("300"), "\"300\" has no unit; write \"300s\" or \"5m\"");
        assert_eq!(
            message("42.5s"),
            "\"42.5s\" is not a whole number of seconds; use \"42s\" or \"43s\""
        );
        assert_eq!(
            message("2h"),
            "\"2h\" exceeds the 1h maximum Knative allows for a scale-down delay; use at most \"1h\""
        );
        assert!(message("-1s").contains("negative"));
        assert!(message("1h30").contains("every number needs a unit"));
        let huge = "9".repeat(100_000);
        assert!(message(&huge).len() < 300);
    }

    #[test]
    fn scale_down_delay_follows_the_knative_webhook() {
        let rows: &[(&str, bool)] = &[
            ("0", true),
            ("0s", true),
            ("-0s", true),
            ("30s", true),
            ("5m", true),
            ("1h", true),
            ("3600s", true),
            ("59m60s", true),
            ("1.5m", true),
            ("0.5m", true),
            ("1000ms", true),
            ("1h0m1s", false),
            ("3601s", false),
            ("42.5s", false),
            ("300", false),
            ("garbage", false),
            ("", false),
            ("-1s", false),
            ("1\u{b5}s", false),
            ("1ns", false),
            ("9999999999h", false),
            ("2h", false),
        ];
        for &(input, ok) in rows {
            let got = check_scale_down_delay(input);
            assert_eq!(got.is_ok(), ok, "{input:?} gave {got:?}");
        }
    }

    #[test]
    fn sub_second_delays_suggest_zero_or_one_second() {
        assert_eq!(
            check_scale_down_delay("1\u{b5}s"),
            Err(DurationError::NotWholeSeconds {
                input: "1\u{b5}s".into(),
                floor: 0,
                ceil: 1
            })
        );
    }

    proptest::proptest! {
        #[test]
        fn composite_durations_sum_their_terms(
            h in 0i128..10_000,
            m in 0i128..1_000,
            s in 0i128..1_000,
            ms in 0i128..1_000,
        ) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            proptest::prop_assert_eq!(parse_go_duration(&text), Ok(h * H + m * M + s * S + ms * MS));
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,80}") {
            let _ = parse_go_duration(&s);
            let _ = check_scale_down_delay(&s);
        }
    }
}
