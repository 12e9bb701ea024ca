//! Validation of 5-field cron schedules with the semantics of robfig/cron v3 `ParseStandard`, the
//! parser Kubernetes CronJobs use.
//!
//! Pure functions with no I/O, shared by the NextApp validator, `build.rs` and the CLI. Input is
//! capped at [`MAX_LEN`] bytes before anything else; parsing is a linear scan over at most five
//! short fields, so hostile input costs bounded work. Unlike robfig, a `TZ=`/`CRON_TZ=` prefix is
//! rejected (knext windows carry their own timezone field) and so is a field that can never match.

use super::duration::{self, DurationError};
use super::names::quote;

/// Longest schedule accepted, in bytes.
pub const MAX_LEN: usize = 256;

/// Bit 63 of a field's bitset: set when the field was written as `*` or `?` (robfig's `starBit`),
/// which decides whether day-of-month and day-of-week are combined with AND or OR.
pub const STAR_BIT: u64 = 1 << 63;

/// A parsed schedule: one bitset per field, bit `n` set when value `n` matches (plus
/// [`STAR_BIT`] for `*`). Descriptors produce the same bitsets as their 5-field equivalents
/// (`@daily` equals `0 0 * * *`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Minutes 0-59.
    pub minutes: u64,
    /// Hours 0-23.
    pub hours: u64,
    /// Days of the month 1-31.
    pub days_of_month: u64,
    /// Months 1-12.
    pub months: u64,
    /// Days of the week 0-6, Sunday is 0.
    pub days_of_week: u64,
    /// For `@every <duration>`: the interval robfig runs at (the duration truncated to whole
    /// seconds), and all five bitsets are zero. `None` for every other schedule.
    pub every: Option<std::time::Duration>,
}

/// Why a cron schedule was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The schedule is empty.
    #[error(
        "the schedule is empty; write five fields such as \"0 9 * * 1-5\" or a descriptor such as \"@daily\""
    )]
    Empty,
    /// The schedule exceeds [`MAX_LEN`] bytes.
    #[error(
        "schedule {spec} exceeds the {MAX_LEN}-byte limit; write five short fields such as \"0 9 * * 1-5\""
    )]
    TooLong {
        /// The (truncated, quoted) schedule.
        spec: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The schedule starts with `TZ=` or `CRON_TZ=`.
    #[error(
        "schedule {spec:?} starts with a timezone prefix; set the window's timezone field instead of a \
         TZ= prefix"
    )]
    TimezonePrefix {
        /// The schedule.
        spec: String,
    },
    /// The schedule does not have exactly five whitespace-separated fields.
    #[error(
        "schedule {spec:?} has {found} fields; expected exactly 5 fields (minute hour day-of-month month \
         day-of-week), e.g. \"0 9 * * 1-5\""
    )]
    FieldCount {
        /// The schedule.
        spec: String,
        /// How many fields it has.
        found: usize,
    },
    /// One field is invalid.
    #[error("cron {field} field {value:?} is invalid: {reason}")]
    Field {
        /// The field name (`minute`, `hour`, `day-of-month`, `month`, `day-of-week`).
        field: &'static str,
        /// The offending field or list element.
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A `@` descriptor is not one robfig knows.
    #[error(
        "schedule {spec:?} is not a known descriptor; use @yearly, @annually, @monthly, @weekly, @daily, \
         @midnight, @hourly or \"@every <duration>\" (exactly one space, no trailing space)"
    )]
    UnknownDescriptor {
        /// The schedule.
        spec: String,
    },
    /// The duration of `@every` is invalid.
    #[error("schedule {spec:?}: {reason}")]
    Every {
        /// The schedule.
        spec: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    name: "day-of-week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Bits `min..=max` with the given step (robfig's `getBits`); callers guarantee `max <= 62`.
fn bits(min: u32, max: u32, step: u32) -> u64 {
    (min..=max)
        .step_by(step.max(1) as usize)
        .fold(0, |acc, v| acc | (1u64 << v))
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR_BIT
}

/// Parses a standard 5-field cron schedule (minute hour day-of-month month day-of-week) or a
/// descriptor, with the semantics of robfig/cron v3 `ParseStandard`.
///
/// Each field is a comma list of `*`, `?`, `n`, `a-b`, each with an optional `/step`; `n/step`
/// means `n-max/step`. Months accept `jan`-`dec` and days of the week `sun`-`sat`, in any case.
/// Descriptors are `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`,
/// `@hourly` and `@every <go duration>`. Deviations from robfig, all stricter: a `TZ=` or
/// `CRON_TZ=` prefix is rejected, a field whose list is empty (such as `,`) is rejected, and
/// `@every` needs a duration of at least one second (robfig silently rounds it up to 1s).
pub fn parse_standard(spec: &str) -> Result<Schedule, CronError> {
    if spec.len() > MAX_LEN {
        return Err(CronError::TooLong {
            spec: quote(spec),
            len: spec.len(),
        });
    }
    if spec.is_empty() {
        return Err(CronError::Empty);
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        return Err(CronError::TimezonePrefix {
            spec: spec.to_owned(),
        });
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().take(7).collect();
    let [minute, hour, dom, month, dow] = fields.as_slice() else {
        let found = spec.split_whitespace().count();
        return Err(CronError::FieldCount {
            spec: spec.to_owned(),
            found,
        });
    };
    Ok(Schedule {
        minutes: field(minute, &MINUTES)?,
        hours: field(hour, &HOURS)?,
        days_of_month: field(dom, &DOM)?,
        months: field(month, &MONTHS)?,
        days_of_week: field(dow, &DOW)?,
        every: None,
    })
}

fn parse_descriptor(spec: &str) -> Result<Schedule, CronError> {
    let (minutes, hours, days_of_month, months, days_of_week) = match spec {
        "@yearly" | "@annually" => (1, 1, 1 << 1, 1 << 1, all(&DOW)),
        "@monthly" => (1, 1, 1 << 1, all(&MONTHS), all(&DOW)),
        "@weekly" => (1, 1, all(&DOM), all(&MONTHS), 1),
        "@daily" | "@midnight" => (1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => (1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => {
            let Some(text) = spec.strip_prefix("@every ") else {
                return Err(CronError::UnknownDescriptor {
                    spec: spec.to_owned(),
                });
            };
            return parse_every(spec, text);
        }
    };
    Ok(Schedule {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
        every: None,
    })
}

fn parse_every(spec: &str, text: &str) -> Result<Schedule, CronError> {
    let every_error = |reason: String| CronError::Every {
        spec: spec.to_owned(),
        reason,
    };
    let nanos = duration::parse_go_duration(text)
        .map_err(|error: DurationError| every_error(format!("the @every duration is invalid: {error}")))?;
    if nanos < duration::SECOND {
        return Err(every_error(format!(
            "the @every interval {text:?} is shorter than one second; use at least \"1s\", e.g. \"@every 5m\""
        )));
    }
    let seconds = u64::try_from(nanos / duration::SECOND).map_err(|_| {
        every_error(String::from(
            "the @every interval is too large; use a smaller duration",
        ))
    })?;
    Ok(Schedule {
        minutes: 0,
        hours: 0,
        days_of_month: 0,
        months: 0,
        days_of_week: 0,
        every: Some(std::time::Duration::from_secs(seconds)),
    })
}

/// robfig's `getField`: a comma list, where empty list elements are skipped.
fn field(text: &str, b: &Bounds) -> Result<u64, CronError> {
    let mut set = 0;
    for expr in text.split(',').filter(|e| !e.is_empty()) {
        set |= range(expr, b)?;
    }
    if set & !STAR_BIT == 0 {
        return Err(field_error(
            b,
            text,
            String::from("it has no values; write e.g. \"*\" or \"0\""),
        ));
    }
    Ok(set)
}

fn field_error(b: &Bounds, value: &str, reason: String) -> CronError {
    CronError::Field {
        field: b.name,
        value: value.to_owned(),
        reason,
    }
}

/// robfig's `getRange` for one list element: `*`, `?`, `a`, `a-b`, each with an optional `/step`.
fn range(expr: &str, b: &Bounds) -> Result<u64, CronError> {
    let err = |reason: String| field_error(b, expr, reason);
    let mut range_and_step = expr.split('/');
    let range_part = range_and_step.next().unwrap_or_default();
    let step_part = range_and_step.next();
    if range_and_step.next().is_some() {
        return Err(err(String::from("it has more than one '/'; write e.g. \"*/15\"")));
    }
    let mut low_and_high = range_part.split('-');
    let low = low_and_high.next().unwrap_or_default();
    let high = low_and_high.next();
    let single = high.is_none();

    let (start, mut end, mut extra) = if low == "*" || low == "?" {
        // robfig ignores anything after "*-" here, and so do we.
        (b.min, b.max, STAR_BIT)
    } else {
        if low_and_high.next().is_some() {
            return Err(err(String::from(
                "it has more than one '-'; write a range as \"a-b\"",
            )));
        }
        let start = value(low, b).map_err(&err)?;
        let end = match high {
            Some(high) => value(high, b).map_err(&err)?,
            None => start,
        };
        (start, end, 0)
    };
    let step = match step_part {
        None => 1,
        Some(step) => {
            let step = integer(step).map_err(|reason| err(format!("the step {reason}")))?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
    };
    if start < b.min {
        return Err(err(format!(
            "{start} is below the minimum {}; use {}-{}",
            b.min, b.min, b.max
        )));
    }
    if end > b.max {
        return Err(err(format!(
            "{end} is above the maximum {}; use {}-{}",
            b.max, b.min, b.max
        )));
    }
    if start > end {
        return Err(err(format!(
            "the range starts at {start}, after its end {end}; write the smaller value first"
        )));
    }
    if step == 0 {
        return Err(err(String::from("the step must be at least 1, e.g. \"*/15\"")));
    }
    Ok(bits(start, end, step) | extra)
}

/// robfig's `parseIntOrName`: a name from the field's list (case-insensitive), or an integer.
fn value(text: &str, b: &Bounds) -> Result<u32, String> {
    if let Some(index) = b.names.iter().position(|name| eq_ignore_case_go(text, name)) {
        let offset = u32::try_from(index).unwrap_or(u32::MAX);
        return Ok(b.min.saturating_add(offset));
    }
    integer(text).map_err(|reason| {
        if b.names.is_empty() {
            format!("the value {reason}")
        } else {
            format!(
                "the value {reason}, or is not a name such as {:?}",
                b.names.first().unwrap_or(&"")
            )
        }
    })
}

/// Go's `strings.ToLower(text) == name` for an ASCII lowercase `name`, including the two
/// non-ASCII letters whose lowercase is ASCII (KELVIN SIGN and LATIN CAPITAL I WITH DOT ABOVE).
fn eq_ignore_case_go(text: &str, name: &str) -> bool {
    let mut chars = text.chars();
    for expected in name.chars() {
        let lowered = match chars.next() {
            Some('\u{212a}') => 'k',
            Some('\u{130}') => 'i',
            Some(c) => c.to_ascii_lowercase(),
            None => return false,
        };
        if lowered != expected {
            return false;
        }
    }
    chars.next().is_none()
}

/// Go's `strconv.Atoi` followed by robfig's non-negative check, bounded: an optional sign, then
/// decimal digits. Values that cannot be in range saturate (and are rejected by the range check).
fn integer(text: &str) -> Result<u32, String> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a number"));
    }
    let magnitude = digits.bytes().fold(0u32, |acc, d| {
        acc.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    });
    if negative && magnitude != 0 {
        return Err(format!("{text:?} is negative"));
    }
    Ok(magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[u32]) -> u64 {
        values.iter().fold(0, |acc, &v| acc | (1u64 << v))
    }

    #[test]
    fn valid_schedules_parse_to_the_expected_bitsets() {
        let weekdays_at_nine = parse_standard("0 9 * * 1-5").unwrap();
        assert_eq!(weekdays_at_nine.minutes, set(&[0]));
        assert_eq!(weekdays_at_nine.hours, set(&[9]));
        assert_eq!(weekdays_at_nine.days_of_month, bits(1, 31, 1) | STAR_BIT);
        assert_eq!(weekdays_at_nine.months, bits(1, 12, 1) | STAR_BIT);
        assert_eq!(weekdays_at_nine.days_of_week, set(&[1, 2, 3, 4, 5]));
        assert_eq!(weekdays_at_nine.every, None);

        let quarter_hours = parse_standard("*/15 * * * *").unwrap();
        assert_eq!(quarter_hours.minutes, set(&[0, 15, 30, 45]));

        assert_eq!(parse_standard("0 0 1 jan *").unwrap().months, set(&[1]));
        assert_eq!(parse_standard("0 0 1 DEC *").unwrap().months, set(&[12]));
        assert_eq!(parse_standard("0 0 * * SUN").unwrap().days_of_week, set(&[0]));
        assert_eq!(
            parse_standard("0 0 * * mon-Fri").unwrap().days_of_week,
            set(&[1, 2, 3, 4, 5])
        );
        assert_eq!(parse_standard("5/20 * * * *").unwrap().minutes, set(&[5, 25, 45]));
        assert_eq!(
            parse_standard("0-10/5 * * * *").unwrap().minutes,
            set(&[0, 5, 10])
        );
        assert_eq!(parse_standard("1,,2 * * * *").unwrap().minutes, set(&[1, 2]));
        assert_eq!(parse_standard("+5 * * * *").unwrap().minutes, set(&[5]));
        assert_eq!(
            parse_standard("0 0 ? * *").unwrap().days_of_month,
            bits(1, 31, 1) | STAR_BIT
        );
        assert_eq!(
            parse_standard("*/1 * * * *").unwrap().minutes,
            bits(0, 59, 1) | STAR_BIT
        );
        assert_eq!(parse_standard("*/2 * * * *").unwrap().minutes & STAR_BIT, 0);
        assert_eq!(parse_standard("0\t9  *\n* *").unwrap().hours, set(&[9]));
    }

    #[test]
    fn descriptors_equal_their_five_field_forms() {
        let same = |descriptor: &str, fields: &str| {
            assert_eq!(
                parse_standard(descriptor).unwrap(),
                parse_standard(fields).unwrap(),
                "{descriptor}"
            );
        };
        same("@yearly", "0 0 1 1 *");
        same("@annually", "0 0 1 1 *");
        same("@monthly", "0 0 1 * *");
        same("@weekly", "0 0 * * 0");
        same("@daily", "0 0 * * *");
        same("@midnight", "0 0 * * *");
        same("@hourly", "0 * * * *");
    }

    #[test]
    fn every_takes_a_go_duration_of_at_least_one_second() {
        let hourly = parse_standard("@every 1h").unwrap();
        assert_eq!(hourly.every, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(hourly.minutes, 0);
        let truncated = parse_standard("@every 1.5s").unwrap();
        assert_eq!(truncated.every, Some(std::time::Duration::from_secs(1)));
        for bad in [
            "@every 0s",
            "@every -1h",
            "@every 500ms",
            "@every 1",
            "@every",
            "@every  1h",
            "@every 1h ",
        ] {
            assert!(parse_standard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_schedules_are_rejected_with_the_right_error() {
        assert_eq!(parse_standard(""), Err(CronError::Empty));
        assert!(matches!(
            parse_standard("   "),
            Err(CronError::FieldCount { found: 0, .. })
        ));
        assert!(matches!(
            parse_standard("* * * *"),
            Err(CronError::FieldCount { found: 4, .. })
        ));
        assert!(matches!(
            parse_standard("0 9 * * * *"),
            Err(CronError::FieldCount { found: 6, .. })
        ));
        assert!(matches!(
            parse_standard("@daily "),
            Err(CronError::UnknownDescriptor { .. })
        ));
        assert!(matches!(
            parse_standard("@reboot"),
            Err(CronError::UnknownDescriptor { .. })
        ));
        assert!(matches!(
            parse_standard(" @daily"),
            Err(CronError::FieldCount { found: 1, .. })
        ));
        assert!(matches!(
            parse_standard("TZ=UTC 0 9 * * *"),
            Err(CronError::TimezonePrefix { .. })
        ));
        assert!(matches!(
            parse_standard("CRON_TZ=Europe/Paris 0 9 * * *"),
            Err(CronError::TimezonePrefix { .. })
        ));
        let field_of = |spec: &str| match parse_standard(spec) {
            Err(CronError::Field { field, .. }) => field,
            other => unreachable!("{spec}: {other:?}"),
        };
        assert_eq!(field_of("60 * * * *"), "minute");
        assert_eq!(field_of("0 24 * * *"), "hour");
        assert_eq!(field_of("0 0 0 * *"), "day-of-month");
        assert_eq!(field_of("0 0 32 * *"), "day-of-month");
        assert_eq!(field_of("0 0 * 13 *"), "month");
        assert_eq!(field_of("0 0 * 0 *"), "month");
        assert_eq!(field_of("0 0 * * 7"), "day-of-week");
        assert_eq!(field_of("5-1 * * * *"), "minute");
        assert_eq!(field_of("*/0 * * * *"), "minute");
        assert_eq!(field_of("1-2-3 * * * *"), "minute");
        assert_eq!(field_of("*/2/3 * * * *"), "minute");
        assert_eq!(field_of("-1 * * * *"), "minute");
        assert_eq!(field_of("*/-1 * * * *"), "minute");
        assert_eq!(field_of("a * * * *"), "minute");
        assert_eq!(field_of(", * * * *"), "minute");
        assert_eq!(field_of("0 0 * janu *"), "month");
        assert_eq!(field_of("0 0 * * sunday"), "day-of-week");
        assert_eq!(field_of("99999999999999999999 * * * *"), "minute");
    }

    #[test]
    fn accept_reject_table_matches_robfig() {
        let rows: &[(&str, bool)] = &[
            ("0 9 * * 1-5", true),
            ("*/15 * * * *", true),
            ("0 0 1 jan *", true),
            ("0 0 * * SUN", true),
            ("@daily", true),
            ("@every 1h", true),
            ("59 23 31 12 6", true),
            ("0 0 1,15 * *", true),
            ("*-5 * * * *", true),
            ("0 0 * * fr\u{130}", true),
            ("", false),
            ("* * * *", false),
            ("0 9 * * * *", false),
            ("60 * * * *", false),
            ("0 24 * * *", false),
            ("0 0 0 * *", false),
            ("0 0 * 13 *", false),
            ("0 0 * * 7", false),
            ("5-1 * * * *", false),
            ("*/0 * * * *", false),
            ("TZ=UTC 0 9 * * *", false),
            ("0 9 * * 1-5 # comment", false),
        ];
        for &(spec, ok) in rows {
            let got = parse_standard(spec);
            assert_eq!(got.is_ok(), ok, "{spec:?} gave {got:?}");
        }
    }

    #[test]
    fn messages_name_the_field_the_value_and_the_fix() {
        let message = parse_standard("0 24 * * *").unwrap_err().to_string();
        assert_eq!(
            message,
            "cron hour field \"24\" is invalid: 24 is above the maximum 23; use 0-23"
        );
        let message = parse_standard("TZ=UTC 0 9 * * *").unwrap_err().to_string();
        assert!(
            message.contains("set the window's timezone field instead of a TZ= prefix"),
            "{message}"
        );
        let message = parse_standard("0 9 * * * *").unwrap_err().to_string();
        assert!(message.contains("expected exactly 5 fields"), "{message}");
        let message = parse_standard("5-1 * * * *").unwrap_err().to_string();
        assert!(message.contains("write the smaller value first"), "{message}");
    }

    #[test]
    fn long_schedules_are_rejected_before_parsing() {
        let spec = "1,".repeat(100_000);
        let error = parse_standard(&spec).unwrap_err();
        assert!(matches!(error, CronError::TooLong { len: 200_000, .. }));
        assert!(error.to_string().len() < 300);
    }

    proptest::proptest! {
        #[test]
        fn single_values_set_exactly_one_bit(
            minute in 0u32..60,
            hour in 0u32..24,
            dom in 1u32..32,
            month in 1u32..13,
            dow in 0u32..7,
        ) {
            let schedule = parse_standard(&format!("{minute} {hour} {dom} {month} {dow}")).unwrap();
            proptest::prop_assert_eq!(schedule.minutes, 1u64 << minute);
            proptest::prop_assert_eq!(schedule.hours, 1u64 << hour);
            proptest::prop_assert_eq!(schedule.days_of_month, 1u64 << dom);
            proptest::prop_assert_eq!(schedule.months, 1u64 << month);
            proptest::prop_assert_eq!(schedule.days_of_week, 1u64 << dow);
        }

        #[test]
        fn arbitrary_input_never_panics(s in "[0-9*/,\\- a-zA-Z@?]{0,40}|\\PC{0,40}") {
            let _ = parse_standard(&s);
        }
    }
}
