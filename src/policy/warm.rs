//! Warm floors: the replica floor `spec.scaling.warmSchedule` asks for at one instant, and the next
//! instant it may change.
//!
//! Shared with `build.rs`; pure: the clock is an argument, so only a caller that has one (the
//! operator, through [`crate::render::RenderOptions::now`]) gets a floor; GitOps renders have none.
//! No I/O: the time-zone database is chrono-tz's, compiled into the binary (the operator image is
//! `FROM scratch`, without `/usr/share/zoneinfo`), and it is the database the validator checks
//! `timezone` against, so every zone the validator accepts evaluates here.
//!
//! # Semantics
//!
//! - A window is **active** at `now` iff its next `end` comes before its next `start`, both strictly
//!   after `now`: windows are half-open, `[start, end)`, so at the start instant a window is active
//!   and at the end instant it is not. Windows may cross midnight (`0 22 * * *` to `0 6 * * *`).
//! - The **floor** is the largest `replicas` of the active windows; [`min_scale`] raises `minScale` to
//!   it, capped at a bounded `maxScale`. Previews stay at min-scale 0 (the renderer's rule).
//! - The **next boundary** is the soonest next start or end of any window: when the operator must
//!   render again.
//! - Fire times follow robfig/cron v3 `SpecSchedule.Next` (the Go operator's library, and what
//!   Kubernetes CronJobs use) in the window's `timezone` (default UTC), day-of-month and day-of-week
//!   combined with OR unless either is `*`. Daylight saving time as cron daemons treat it, where
//!   robfig does otherwise:
//!   - spring forward: a time in the skipped hour fires when the gap ends (at 03:00 when 02:00 jumps
//!     to 03:00). robfig skips it, so a window whose start fell in the gap stayed open from the
//!     previous day's end (a day of extra replicas) and one whose end fell in it did not happen. Now
//!     a window with both boundaries in the gap does not happen that day (it opens and closes at the
//!     same instant), and one with either boundary in it opens or closes at the gap's end;
//!   - fall back: a wall-clock time that occurs twice fires only the first time. robfig fires it
//!     twice, which made the Go operator see a window whose start repeats as inactive during the
//!     repeated hour, and one whose end repeats as active again.
//! - `@every <duration>` runs relative to when a scheduler started, which a stateless window does not
//!   have: a window with `@every` in either boundary is never active and has no boundaries (the
//!   validator warns, reason `SettingIgnored`).
//! - A boundary that does not fire within five years (robfig's horizon, e.g. `0 0 30 2 *`) makes its
//!   window never active. Each search is also capped at [`MAX_STEPS`] steps, so no input loops.
//! - An unknown time zone or an unparsable schedule (both rejected by the validator) skips the window.
//!
//! NB: chrono-tz's tables carry each zone's DST rules through 2099; after that its last offset holds
//! (Go's `time` would go on applying the rule). The IANA release is
//! [`chrono_tz::IANA_TZDB_VERSION`]; a zone that changes its rules needs a chrono-tz update.

use chrono::{DateTime, LocalResult, Offset, TimeZone};
use chrono_tz::Tz;
use k8s_openapi::jiff::Timestamp;

use super::cron::{self, STAR_BIT, Schedule};
use crate::api::{ScalingSpec, WarmWindow, defaults};

/// Steps one fire-time search may take before it gives up: far more than robfig's five-year horizon
/// needs (a few hundred for a date that never comes, such as `0 0 30 2 *`).
pub const MAX_STEPS: u32 = 100_000;

/// The warm schedule evaluated at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarmFloor {
    /// The largest `replicas` of the windows active at that instant; `None` when no window is active.
    /// Not capped at `maxScale` ([`min_scale`] caps it).
    pub floor: Option<i32>,
    /// The soonest next start or end of any window, strictly after that instant; `None` when no
    /// window has one (no windows, or only ones that are never active).
    pub next_boundary: Option<Timestamp>,
}

/// Evaluates `scaling.warmSchedule` at `now`: the floor of the active windows and the next boundary.
/// See the module documentation for the semantics.
pub fn warm_floor(scaling: &ScalingSpec, now: Timestamp) -> WarmFloor {
    let mut out = WarmFloor::default();
    for window in scaling.warm_schedule.iter().filter_map(Window::parse) {
        let (Some(start), Some(end)) = (
            next_fire(&window.start, window.tz, now),
            next_fire(&window.end, window.tz, now),
        ) else {
            continue;
        };
        if end < start {
            out.floor = Some(out.floor.map_or(window.replicas, |f| f.max(window.replicas)));
        }
        let soonest = start.min(end);
        out.next_boundary = Some(out.next_boundary.map_or(soonest, |b| b.min(soonest)));
    }
    out
}

/// The `autoscaling.knative.dev/min-scale` of a non-preview app: `minScale` (default 0), raised to the
/// warm floor at `now` when there is a clock, the floor capped at `maxScale` unless that is 0
/// (unbounded). Without a clock (`None`: GitOps output) it is `minScale`.
pub fn min_scale(scaling: &ScalingSpec, now: Option<Timestamp>) -> i32 {
    let base = scaling.min_scale.unwrap_or(defaults::MIN_SCALE);
    let Some(floor) = now.and_then(|now| warm_floor(scaling, now).floor) else {
        return base;
    };
    let max = scaling.max_scale.unwrap_or(defaults::MAX_SCALE);
    let floor = if max > 0 { floor.min(max) } else { floor };
    base.max(floor)
}

/// How many windows of `scaling.warmSchedule` [`warm_floor`] evaluates: those with fixed times (not
/// `@every`), a parsable schedule and a known time zone.
pub fn scheduled_windows(scaling: &ScalingSpec) -> usize {
    scaling.warm_schedule.iter().filter_map(Window::parse).count()
}

/// The first time strictly after `after` at which `schedule` fires in `tz`: robfig/cron v3's
/// `SpecSchedule.Next`, except that a wall-clock time occurring twice (fall back) fires only the
/// first time and one that does not exist (spring forward) fires when the gap ends. `None` for `@every`, when nothing fires within robfig's five-year horizon, after
/// [`MAX_STEPS`] steps, or beyond the range of [`Timestamp`].
pub fn next_fire(schedule: &Schedule, tz: Tz, after: Timestamp) -> Option<Timestamp> {
    if schedule.every.is_some() {
        return None;
    }
    let clock = Clock { tz };
    let mut budget = MAX_STEPS;
    // robfig drops the fraction of the second and starts at the next whole one.
    let start = i64::try_from(after.as_nanosecond().div_euclid(1_000_000_000)).ok()?;
    let mut t = start;
    loop {
        step(&mut budget)?;
        let fire = robfig_next(schedule, &clock, t, &mut budget)?;
        if !clock.repeats_earlier(fire)? {
            let fire = gap_fire(schedule, &clock, start, fire, &mut budget)?.unwrap_or(fire);
            return Timestamp::from_second(fire).ok();
        }
        t = fire;
    }
}

/// The end of the first spring-forward gap in (`after`, `fire`) during which `schedule` names a
/// wall-clock time that does not exist: such a time fires when the gap ends (the first instant of the
/// new offset), as cron daemons run a skipped hour's jobs when it is over. robfig skips it, which left
/// a window whose start falls in the gap open from the previous day's end (a day of extra replicas)
/// and dropped a window whose end falls in it. `Ok(None)` when there is no such gap; `None` (the
/// search gives up) past the step budget.
fn gap_fire(s: &Schedule, clock: &Clock, after: i64, fire: i64, budget: &mut u32) -> Option<Option<i64>> {
    let mut t = after;
    while t < fire {
        step(budget)?;
        let next = t.saturating_add(DAY).min(fire);
        let before = clock.offset(t)?;
        if clock.offset(next)? > before {
            // The transition: the first second with a larger offset.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                step(budget)?;
                let mid = lo + (hi - lo) / 2;
                if clock.offset(mid)? > before {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            let (from, to) = (hi.checked_add(before)?, hi.checked_add(clock.offset(hi)?)?);
            // The skipped wall-clock minutes: [from, to) in local seconds.
            let mut local = from + (MINUTE - from.rem_euclid(MINUTE)) % MINUTE;
            while local < to {
                step(budget)?;
                if hi > after && matches_wall(s, &wall_of_local(local)) {
                    return Some(Some(hi));
                }
                local += MINUTE;
            }
        }
        t = next;
    }
    Some(None)
}

/// Whether `schedule` names the wall-clock minute `w` (second 0).
fn matches_wall(s: &Schedule, w: &Wall) -> bool {
    has(s.months, w.month)
        && day_matches(s, w)
        && has(s.hours, w.hour)
        && has(s.minutes, w.minute)
        && has(SECONDS, w.second)
}

/// The wall clock of `local` seconds since the epoch, read as a local date and time (no zone).
fn wall_of_local(local: i64) -> Wall {
    let days = local.div_euclid(DAY);
    let secs = local.rem_euclid(DAY);
    let (year, month, day) = civil_from_days(days);
    Wall {
        year,
        month,
        day,
        hour: secs / HOUR,
        minute: secs % HOUR / MINUTE,
        second: secs % MINUTE,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7),
    }
}

/// A window whose boundaries have fixed times, ready to evaluate.
struct Window {
    start: Schedule,
    end: Schedule,
    tz: Tz,
    replicas: i32,
}

impl Window {
    fn parse(w: &WarmWindow) -> Option<Self> {
        let tz = match w.timezone.as_deref() {
            None => Tz::UTC,
            Some(name) => name.parse().ok()?,
        };
        let fixed = |spec: &str| cron::parse_standard(spec).ok().filter(|s| s.every.is_none());
        Some(Self {
            start: fixed(&w.start)?,
            end: fixed(&w.end)?,
            tz,
            replicas: w.replicas,
        })
    }
}

fn step(budget: &mut u32) -> Option<()> {
    *budget = budget.checked_sub(1)?;
    Some(())
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The seconds field of a 5-field schedule: second 0 only.
const SECONDS: u64 = 1;

/// robfig's `SpecSchedule.Next` on Unix seconds in `clock`'s zone, line by line: the first time
/// strictly after `after` (a whole second) that matches, or `None` past the five-year horizon or the
/// step budget.
fn robfig_next(s: &Schedule, clock: &Clock, after: i64, budget: &mut u32) -> Option<i64> {
    let mut t = after.checked_add(1)?;
    let mut added = false;
    let year_limit = clock.wall(t)?.year + 5;
    'wrap: loop {
        step(budget)?;
        let mut w = clock.wall(t)?;
        if w.year > year_limit {
            return None;
        }
        while !has(s.months, w.month) {
            step(budget)?;
            if !added {
                added = true;
                t = clock.date(w.year, w.month, 1, 0, 0, 0)?;
            }
            t = clock.add_date(t, 1, 0)?;
            w = clock.wall(t)?;
            if w.month == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(s, &w) {
            step(budget)?;
            if !added {
                added = true;
                t = clock.date(w.year, w.month, w.day, 0, 0, 0)?;
            }
            t = clock.add_date(t, 0, 1)?;
            w = clock.wall(t)?;
            // NB: robfig's fix for zones where midnight does not exist (America/Sao_Paulo until 2019):
            // back to the day's first hour, or on to the next midnight.
            if w.hour != 0 {
                t += if w.hour > 12 {
                    (24 - w.hour) * HOUR
                } else {
                    -w.hour * HOUR
                };
                w = clock.wall(t)?;
            }
            if w.day == 1 {
                continue 'wrap;
            }
        }
        while !has(s.hours, w.hour) {
            step(budget)?;
            if !added {
                added = true;
                t = clock.date(w.year, w.month, w.day, w.hour, 0, 0)?;
            }
            t += HOUR;
            w = clock.wall(t)?;
            if w.hour == 0 {
                continue 'wrap;
            }
        }
        while !has(s.minutes, w.minute) {
            step(budget)?;
            if !added {
                added = true;
                t -= t.rem_euclid(MINUTE);
            }
            t += MINUTE;
            w = clock.wall(t)?;
            if w.minute == 0 {
                continue 'wrap;
            }
        }
        while !has(SECONDS, w.second) {
            step(budget)?;
            added = true;
            t += 1;
            w = clock.wall(t)?;
            if w.second == 0 {
                continue 'wrap;
            }
        }
        return Some(t);
    }
}

/// Whether bit `value` is set (values are 0 to 59; anything else matches nothing).
fn has(bits: u64, value: i64) -> bool {
    (0..63).contains(&value) && bits & (1 << value) != 0
}

/// robfig's `dayMatches`: day-of-month AND day-of-week when either was written `*` (or `?`), else OR.
fn day_matches(s: &Schedule, w: &Wall) -> bool {
    let dom = has(s.days_of_month, w.day);
    let dow = has(s.days_of_week, w.weekday);
    if (s.days_of_month | s.days_of_week) & STAR_BIT != 0 {
        dom && dow
    } else {
        dom || dow
    }
}

/// The wall clock of an instant in one zone, as Go's `time.Time` accessors give it.
struct Wall {
    year: i64,
    /// 1 to 12.
    month: i64,
    /// 1 to 31.
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    /// 0 (Sunday) to 6.
    weekday: i64,
}

/// Go's `time` package in one location, to the second, over Unix seconds: what robfig computes with.
/// Every method is `None` only outside chrono's range, far beyond [`Timestamp`]'s.
struct Clock {
    tz: Tz,
}

impl Clock {
    /// UTC offset in seconds at instant `t`.
    fn offset(&self, t: i64) -> Option<i64> {
        let utc = DateTime::from_timestamp(t, 0)?.naive_utc();
        Some(i64::from(
            self.tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
        ))
    }

    /// `t.Date()`, `t.Clock()` and `t.Weekday()`.
    fn wall(&self, t: i64) -> Option<Wall> {
        Some(wall_of_local(t.checked_add(self.offset(t)?)?))
    }

    /// `time.Date(year, month, day, hour, minute, second, 0, loc)`: out-of-range months and days
    /// normalise into the next ones; a wall time that does not exist or exists twice resolves as Go
    /// resolves it, with the offset in effect at the wall time read as UTC, corrected once.
    fn date(&self, year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
        let year = year.checked_add((month - 1).div_euclid(12))?;
        let month = (month - 1).rem_euclid(12) + 1;
        let days = days_from_civil(year, month, 1).checked_add(day - 1)?;
        let local = days
            .checked_mul(DAY)?
            .checked_add(hour * HOUR + minute * MINUTE + second)?;
        // Go's `Date`: look the offset up at `local` as if it were UTC; if the resulting instant lies
        // outside that offset's period, take the offset at the resulting instant instead. Both cases
        // are the offset at `local - offset(local)`.
        let guess = self.offset(local)?;
        Some(local - self.offset(local - guess)?)
    }

    /// `t.AddDate(0, months, days)`: the same wall clock `months` and `days` later, via [`Clock::date`].
    fn add_date(&self, t: i64, months: i64, days: i64) -> Option<i64> {
        let w = self.wall(t)?;
        self.date(w.year, w.month + months, w.day + days, w.hour, w.minute, w.second)
    }

    /// Whether the wall-clock time of `t` also occurred earlier (fall back: `t` is its second
    /// occurrence).
    fn repeats_earlier(&self, t: i64) -> Option<bool> {
        let local = t.checked_add(self.offset(t)?)?;
        let naive = DateTime::from_timestamp(local, 0)?.naive_utc();
        Some(match self.tz.from_local_datetime(&naive) {
            LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()) < t,
            LocalResult::Single(_) | LocalResult::None => false,
        })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1 to 12; Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01: year, month 1 to 12, day 1 to 31.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn scaling(yaml: &str) -> ScalingSpec {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn fire(spec: &str, tz: &str, after: &str) -> Option<Timestamp> {
        next_fire(
            &cron::parse_standard(spec).unwrap(),
            tz.parse().unwrap(),
            ts(after),
        )
    }

    #[test]
    fn civil_dates_round_trip_over_four_centuries() {
        for days in (-200_000..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{days}");
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    /// robfig/cron v3's own `TestNext` table (the rows a 5-field schedule can express) as
    /// `schedule | zone | after | next fire` (`-`: none), with the times in the zone the row names (the
    /// Go test's `time.Local` rows read as UTC). The rows where robfig fires a repeated wall-clock time
    /// a second time are in the next two tests.
    #[test]
    fn next_fire_matches_robfigs_test_table() {
        let rows: &[&str] = &[
            // Simple cases, wrap around hours, days, months, years.
            "0/15 * * * * | UTC | 2012-07-09T14:45:00Z | 2012-07-09T15:00:00Z",
            "0/15 * * * * | UTC | 2012-07-09T14:59:00Z | 2012-07-09T15:00:00Z",
            "0/15 * * * * | UTC | 2012-07-09T14:59:59Z | 2012-07-09T15:00:00Z",
            "20-35/15 * * * * | UTC | 2012-07-09T15:45:00Z | 2012-07-09T16:20:00Z",
            "*/15 * * * * | UTC | 2012-07-09T23:46:00Z | 2012-07-10T00:00:00Z",
            "20-35/15 * * * * | UTC | 2012-07-09T23:45:00Z | 2012-07-10T00:20:00Z",
            "20-35/15 1/2 * * * | UTC | 2012-07-09T23:35:51Z | 2012-07-10T01:20:00Z",
            "20-35/15 10-12 * * * | UTC | 2012-07-09T23:35:51Z | 2012-07-10T10:20:00Z",
            "20-35/15 1/2 */2 * * | UTC | 2012-07-09T23:35:51Z | 2012-07-11T01:20:00Z",
            "20-35/15 * 9-20 * * | UTC | 2012-07-09T23:35:51Z | 2012-07-10T00:20:00Z",
            "20-35/15 * 9-20 Jul * | UTC | 2012-07-09T23:35:51Z | 2012-07-10T00:20:00Z",
            "0 0 9 Apr-Oct ? | UTC | 2012-07-09T23:35:00Z | 2012-08-09T00:00:00Z",
            "0 0 */5 Apr,Aug,Oct Mon | UTC | 2012-07-09T23:35:00Z | 2012-08-01T00:00:00Z",
            "0 0 */5 Oct Mon | UTC | 2012-07-09T23:35:00Z | 2012-10-01T00:00:00Z",
            "0 0 * Feb Mon | UTC | 2012-07-09T23:35:00Z | 2013-02-04T00:00:00Z",
            "0 0 * Feb Mon/2 | UTC | 2012-07-09T23:35:00Z | 2013-02-01T00:00:00Z",
            "* * * * * | UTC | 2012-12-31T23:59:45Z | 2013-01-01T00:00:00Z",
            "0 0 29 Feb ? | UTC | 2012-07-09T23:35:00Z | 2016-02-29T00:00:00Z",
            // Spring forward, New York: 2am EST -> 3am EDT.
            // knext: the skipped 02:30 fires when the gap ends (robfig: 2013-03-11T02:30:00-04:00).
            "30 2 11 Mar ? | America/New_York | 2012-03-11T00:00:00-05:00 | 2012-03-11T03:00:00-04:00",
            "0 * * * ? | America/New_York | 2012-03-11T00:00:00-05:00 | 2012-03-11T01:00:00-05:00",
            "0 * * * ? | America/New_York | 2012-03-11T01:00:00-05:00 | 2012-03-11T03:00:00-04:00",
            "0 * * * ? | America/New_York | 2012-03-11T03:00:00-04:00 | 2012-03-11T04:00:00-04:00",
            "0 1 * * ? | America/New_York | 2012-03-11T00:00:00-05:00 | 2012-03-11T01:00:00-05:00",
            "0 1 * * ? | America/New_York | 2012-03-11T01:00:00-05:00 | 2012-03-12T01:00:00-04:00",
            // 2am nightly job: knext runs it when the gap ends (robfig skips it:
            // 2012-03-12T02:00:00-04:00).
            "0 2 * * ? | America/New_York | 2012-03-11T00:00:00-05:00 | 2012-03-11T03:00:00-04:00",
            "0 2 * * ? | America/New_York | 2012-03-11T03:00:00-04:00 | 2012-03-12T02:00:00-04:00",
            // Fall back, New York: 2am EDT -> 1am EST.
            "30 2 04 Nov ? | America/New_York | 2012-11-04T00:00:00-04:00 | 2012-11-04T02:30:00-05:00",
            "0 * * * ? | America/New_York | 2012-11-04T00:00:00-04:00 | 2012-11-04T01:00:00-04:00",
            "0 1 * * ? | America/New_York | 2012-11-04T00:00:00-04:00 | 2012-11-04T01:00:00-04:00",
            "0 2 * * ? | America/New_York | 2012-11-04T00:00:00-04:00 | 2012-11-04T02:00:00-05:00",
            "0 2 * * ? | America/New_York | 2012-11-04T02:00:00-05:00 | 2012-11-05T02:00:00-05:00",
            "0 3 * * ? | America/New_York | 2012-11-04T00:00:00-04:00 | 2012-11-04T03:00:00-05:00",
            "0 3 * * ? | America/New_York | 2012-11-04T03:00:00-05:00 | 2012-11-05T03:00:00-05:00",
            // Unsatisfiable.
            "0 0 30 Feb ? | UTC | 2012-07-09T23:35:00Z | -",
            "0 0 31 Apr ? | UTC | 2012-07-09T23:35:00Z | -",
            // Monthly job.
            "0 3 3 * ? | America/New_York | 2012-11-04T00:00:00-04:00 | 2012-12-03T03:00:00-05:00",
            // Midnight does not exist (robfig/cron#157).
            "0 9 10 * ? | America/Sao_Paulo | 2018-10-17T05:00:00-04:00 | 2018-11-10T06:00:00-05:00",
            "0 9 22 * ? | America/Sao_Paulo | 2018-02-14T05:00:00-05:00 | 2018-02-22T07:00:00-05:00",
            // TestNextWithTz.
            "14 14 * * * | Asia/Kolkata | 2016-01-03T13:09:03+05:30 | 2016-01-03T14:14:00+05:30",
            "14 14 * * ? | Asia/Kolkata | 2016-01-03T04:09:03+05:30 | 2016-01-03T14:14:00+05:30",
            "14 14 * * * | Asia/Kolkata | 2016-01-03T14:09:03+05:30 | 2016-01-03T14:14:00+05:30",
        ];
        for row in rows {
            let [spec, tz, after, want] = row.split(" | ").collect::<Vec<_>>()[..] else {
                panic!("{row}")
            };
            let want = (want != "-").then(|| ts(want));
            assert_eq!(fire(spec, tz, after), want, "{row}");
        }
    }

    /// The port itself, without the fire-once layer, reproduces robfig's rows for repeated times too.
    #[test]
    fn the_bare_port_fires_a_repeated_time_twice_as_robfig_does() {
        let ny = Clock {
            tz: Tz::America__New_York,
        };
        let next = |spec: &str, after: &str| {
            let after = ts(after).as_second();
            let fire = robfig_next(&cron::parse_standard(spec).unwrap(), &ny, after, &mut {
                MAX_STEPS
            });
            fire.map(|t| Timestamp::from_second(t).unwrap())
        };
        let rows = [
            (
                "30 1 04 Nov ?",
                "2012-11-04T01:45:00-04:00",
                "2012-11-04T01:30:00-05:00",
            ),
            (
                "0 * * * ?",
                "2012-11-04T01:00:00-04:00",
                "2012-11-04T01:00:00-05:00",
            ),
            (
                "0 * * * ?",
                "2012-11-04T01:00:00-05:00",
                "2012-11-04T02:00:00-05:00",
            ),
            (
                "0 1 * * ?",
                "2012-11-04T00:00:00-04:00",
                "2012-11-04T01:00:00-04:00",
            ),
            (
                "0 1 * * ?",
                "2012-11-04T01:00:00-04:00",
                "2012-11-04T01:00:00-05:00",
            ),
            (
                "0 1 * * ?",
                "2012-11-04T01:00:00-05:00",
                "2012-11-05T01:00:00-05:00",
            ),
        ];
        for (spec, after, want) in rows {
            assert_eq!(next(spec, after), Some(ts(want)), "{spec} after {after}");
        }
    }

    #[test]
    fn the_zone_rules_hold_through_2099_and_then_stay_put() {
        // chrono-tz's tables carry today's DST rules through 2099 (past 2038, unlike 32-bit tzfiles);
        // afterwards the last offset holds, where Go would go on applying the rule.
        let berlin = Clock {
            tz: Tz::Europe__Berlin,
        };
        for (instant, offset) in [
            ("2038-07-01T12:00:00Z", 2 * HOUR),
            ("2099-07-01T12:00:00Z", 2 * HOUR),
            ("2099-12-01T12:00:00Z", HOUR),
            ("2100-07-01T12:00:00Z", HOUR),
        ] {
            assert_eq!(berlin.offset(ts(instant).as_second()), Some(offset), "{instant}");
        }
    }

    #[test]
    fn a_wall_clock_time_that_occurs_twice_fires_once_where_robfig_fires_twice() {
        let ny = "America/New_York";
        // robfig: 2012-11-04T01:30:00-05:00, the repeat.
        assert_eq!(
            fire("30 1 04 Nov ?", ny, "2012-11-04T01:45:00-04:00"),
            Some(ts("2013-11-04T01:30:00-05:00"))
        );
        // robfig: 2012-11-04T01:00:00-05:00.
        assert_eq!(
            fire("0 * * * ?", ny, "2012-11-04T01:00:00-04:00"),
            Some(ts("2012-11-04T02:00:00-05:00"))
        );
        assert_eq!(
            fire("0 1 * * ?", ny, "2012-11-04T01:00:00-04:00"),
            Some(ts("2012-11-05T01:00:00-05:00"))
        );
        // From inside the repeated hour, the repeat does not fire either.
        assert_eq!(
            fire("* * * * *", ny, "2012-11-04T01:10:00-05:00"),
            Some(ts("2012-11-04T02:00:00-05:00"))
        );
        // Berlin repeats 02:00 to 02:59 on 2026-10-25.
        assert_eq!(
            fire("30 2 * * *", "Europe/Berlin", "2026-10-25T02:00:00+02:00"),
            Some(ts("2026-10-25T02:30:00+02:00"))
        );
        assert_eq!(
            fire("30 2 * * *", "Europe/Berlin", "2026-10-25T02:30:00+02:00"),
            Some(ts("2026-10-26T02:30:00+01:00"))
        );
    }

    #[test]
    fn fractions_of_a_second_and_exact_fire_times_move_to_the_next_fire() {
        let start = ts("2026-06-01T08:00:00Z");
        let daily = cron::parse_standard("0 8 * * *").unwrap();
        let tomorrow = Some(ts("2026-06-02T08:00:00Z"));
        assert_eq!(next_fire(&daily, Tz::UTC, start), tomorrow);
        let just_before = Timestamp::new(start.as_second() - 1, 999_999_999).unwrap();
        assert_eq!(next_fire(&daily, Tz::UTC, just_before), Some(start));
        let just_after = Timestamp::new(start.as_second(), 1).unwrap();
        assert_eq!(next_fire(&daily, Tz::UTC, just_after), tomorrow);
        let negative = Timestamp::new(-1, -500_000_000).unwrap();
        assert_eq!(
            next_fire(&cron::parse_standard("* * * * *").unwrap(), Tz::UTC, negative),
            Some(ts("1970-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn every_never_fires_and_the_search_ends_at_the_edge_of_time() {
        let every = cron::parse_standard("@every 1h").unwrap();
        assert_eq!(next_fire(&every, Tz::UTC, ts("2026-01-01T00:00:00Z")), None);
        let yearly = cron::parse_standard("@yearly").unwrap();
        assert_eq!(next_fire(&yearly, Tz::UTC, Timestamp::MAX), None);
        // Berlin's local mean time was UTC+00:53:28: whole-minute steps still land on second 0.
        let first = next_fire(&yearly, Tz::Europe__Berlin, Timestamp::MIN).unwrap();
        let clock = Clock {
            tz: Tz::Europe__Berlin,
        };
        let w = clock.wall(first.as_second()).unwrap();
        let wall = (w.year, w.month, w.day, w.hour, w.minute, w.second);
        assert_eq!(wall, (-9998, 1, 1, 0, 0, 0));
        assert_eq!(clock.offset(first.as_second()), Some(53 * MINUTE + 28));
    }

    /// One row of the `warm_floor` table: the windows (YAML), the instant, the floor and next boundary.
    struct Case {
        name: &'static str,
        windows: &'static str,
        now: &'static str,
        floor: Option<i32>,
        next: Option<&'static str>,
    }

    const BERLIN_GAP_DAY: &str =
        "[{start: '0 2 * * *', end: '30 2 * * *', replicas: 2, timezone: Europe/Berlin}]";
    const BERLIN_NIGHT: &str =
        "[{start: '0 22 * * *', end: '0 6 * * *', replicas: 4, timezone: Europe/Berlin}]";
    const BERLIN_OFFICE: &str =
        "[{start: '0 8 * * 1-5', end: '0 18 * * 1-5', replicas: 3, timezone: Europe/Berlin}]";
    const OVERLAP: &str = "[{start: '0 8 * * *', end: '0 20 * * *', replicas: 2}, \
                           {start: '0 12 * * *', end: '0 14 * * *', replicas: 5}, \
                           {start: '0 9 * * *', end: '0 13 * * *', replicas: 3, timezone: Europe/Berlin}]";

    const CASES: &[Case] = &[
        Case {
            name: "gap-day window: both boundaries in the skipped hour, before it",
            windows: BERLIN_GAP_DAY,
            now: "2026-03-29T01:59:00+01:00",
            floor: None,
            next: Some("2026-03-29T03:00:00+02:00"),
        },
        Case {
            name: "gap-day window: after the skipped hour, the window did not happen",
            windows: BERLIN_GAP_DAY,
            now: "2026-03-29T03:15:00+02:00",
            floor: None,
            next: Some("2026-03-30T02:00:00+02:00"),
        },
        Case {
            name: "gap-day window on the day before: an ordinary night",
            windows: BERLIN_GAP_DAY,
            now: "2026-03-28T02:10:00+01:00",
            floor: Some(2),
            next: Some("2026-03-28T02:30:00+01:00"),
        },
        Case {
            name: "fall back, first pass of the repeated hour: active",
            windows: BERLIN_GAP_DAY,
            now: "2026-10-25T02:15:00+02:00",
            floor: Some(2),
            next: Some("2026-10-25T02:30:00+02:00"),
        },
        Case {
            name: "fall back, second pass of the repeated hour: the window ran once",
            windows: BERLIN_GAP_DAY,
            now: "2026-10-25T02:15:00+01:00",
            floor: None,
            next: Some("2026-10-26T02:00:00+01:00"),
        },
        Case {
            name: "fall back: a window around the repeated hour covers both passes",
            windows: "[{start: '0 1 * * *', end: '0 3 * * *', replicas: 2, timezone: Europe/Berlin}]",
            now: "2026-10-25T02:30:00+01:00",
            floor: Some(2),
            next: Some("2026-10-25T03:00:00+01:00"),
        },
        Case {
            name: "overnight window, evening before spring forward",
            windows: BERLIN_NIGHT,
            now: "2026-03-28T23:00:00+01:00",
            floor: Some(4),
            next: Some("2026-03-29T06:00:00+02:00"),
        },
        Case {
            name: "overnight window, last second",
            windows: BERLIN_NIGHT,
            now: "2026-03-29T05:59:59+02:00",
            floor: Some(4),
            next: Some("2026-03-29T06:00:00+02:00"),
        },
        Case {
            name: "overnight window, at its end",
            windows: BERLIN_NIGHT,
            now: "2026-03-29T06:00:00+02:00",
            floor: None,
            next: Some("2026-03-29T22:00:00+02:00"),
        },
        Case {
            name: "overnight window, at its start",
            windows: BERLIN_NIGHT,
            now: "2026-10-24T22:00:00+02:00",
            floor: Some(4),
            next: Some("2026-10-25T06:00:00+01:00"),
        },
        Case {
            name: "weekday window, Friday evening inside",
            windows: BERLIN_OFFICE,
            now: "2026-03-27T17:59:59+01:00",
            floor: Some(3),
            next: Some("2026-03-27T18:00:00+01:00"),
        },
        Case {
            name: "weekday window, Friday at the end",
            windows: BERLIN_OFFICE,
            now: "2026-03-27T18:00:00+01:00",
            floor: None,
            next: Some("2026-03-30T08:00:00+02:00"),
        },
        Case {
            name: "weekday window, Saturday noon",
            windows: BERLIN_OFFICE,
            now: "2026-03-28T12:00:00+01:00",
            floor: None,
            next: Some("2026-03-30T08:00:00+02:00"),
        },
        Case {
            name: "weekday window, Monday at the start (after spring forward)",
            windows: BERLIN_OFFICE,
            now: "2026-03-30T08:00:00+02:00",
            floor: Some(3),
            next: Some("2026-03-30T18:00:00+02:00"),
        },
        Case {
            name: "overlap: the largest active window wins",
            windows: OVERLAP,
            now: "2026-06-01T12:30:00Z",
            floor: Some(5),
            next: Some("2026-06-01T14:00:00Z"),
        },
        Case {
            name: "overlap: a window in another zone",
            windows: OVERLAP,
            now: "2026-06-01T10:30:00Z",
            floor: Some(3),
            next: Some("2026-06-01T11:00:00Z"),
        },
        Case {
            name: "overlap: one left",
            windows: OVERLAP,
            now: "2026-06-01T15:00:00Z",
            floor: Some(2),
            next: Some("2026-06-01T20:00:00Z"),
        },
        Case {
            name: "overlap: none active",
            windows: OVERLAP,
            now: "2026-06-01T21:00:00Z",
            floor: None,
            next: Some("2026-06-02T07:00:00Z"),
        },
        Case {
            name: "New York spring forward: an overnight window across the gap",
            windows: "[{start: '0 1 * * *', end: '0 4 * * *', replicas: 2, timezone: America/New_York}]",
            now: "2026-03-08T03:30:00-04:00",
            floor: Some(2),
            next: Some("2026-03-08T04:00:00-04:00"),
        },
        Case {
            name: "New York spring forward: a start in the gap, the day before: closed (robfig: open)",
            windows: "[{start: '30 2 * * *', end: '0 4 * * *', replicas: 2, timezone: America/New_York}]",
            now: "2026-03-07T12:00:00-05:00",
            floor: None,
            next: Some("2026-03-08T03:00:00-04:00"),
        },
        Case {
            name: "New York spring forward: a start in the gap opens the window when the gap ends",
            windows: "[{start: '30 2 * * *', end: '0 4 * * *', replicas: 2, timezone: America/New_York}]",
            now: "2026-03-08T03:00:00-04:00",
            floor: Some(2),
            next: Some("2026-03-08T04:00:00-04:00"),
        },
        Case {
            name: "New York spring forward: an end in the gap closes the window when the gap ends",
            windows: "[{start: '30 1 * * *', end: '30 2 * * *', replicas: 2, timezone: America/New_York}]",
            now: "2026-03-08T01:45:00-05:00",
            floor: Some(2),
            next: Some("2026-03-08T03:00:00-04:00"),
        },
        Case {
            name: "New York spring forward: the window closed at the gap's end",
            windows: "[{start: '30 1 * * *', end: '30 2 * * *', replicas: 2, timezone: America/New_York}]",
            now: "2026-03-08T03:00:00-04:00",
            floor: None,
            next: Some("2026-03-09T01:30:00-04:00"),
        },
        Case {
            name: "New York fall back: first pass of 01:00-01:30",
            windows: "[{start: '0 1 * * *', end: '30 1 * * *', replicas: 2, timezone: America/New_York}]",
            now: "2026-11-01T01:10:00-04:00",
            floor: Some(2),
            next: Some("2026-11-01T01:30:00-04:00"),
        },
        Case {
            name: "New York fall back: second pass of 01:00-01:30",
            windows: "[{start: '0 1 * * *', end: '30 1 * * *', replicas: 2, timezone: America/New_York}]",
            now: "2026-11-01T01:10:00-05:00",
            floor: None,
            next: Some("2026-11-02T01:00:00-05:00"),
        },
        Case {
            name: "day-of-month OR day-of-week: the 1st, a Wednesday",
            windows: "[{start: '0 9 1 * 1', end: '0 17 1 * 1', replicas: 2}]",
            now: "2026-04-01T10:00:00Z",
            floor: Some(2),
            next: Some("2026-04-01T17:00:00Z"),
        },
        Case {
            name: "day-of-month OR day-of-week: a Tuesday, neither",
            windows: "[{start: '0 9 1 * 1', end: '0 17 1 * 1', replicas: 2}]",
            now: "2026-04-07T10:00:00Z",
            floor: None,
            next: Some("2026-04-13T09:00:00Z"),
        },
        Case {
            name: "day-of-month * AND day-of-week: only Mondays",
            windows: "[{start: '0 9 * * 1', end: '0 17 * * 1', replicas: 2}]",
            now: "2026-04-01T10:00:00Z",
            floor: None,
            next: Some("2026-04-06T09:00:00Z"),
        },
        Case {
            name: "no timezone is UTC; descriptors work",
            windows: "[{start: '@daily', end: '0 6 * * *', replicas: 1}]",
            now: "2026-06-01T05:00:00Z",
            floor: Some(1),
            next: Some("2026-06-01T06:00:00Z"),
        },
        Case {
            name: "@every is never active and has no boundary",
            windows: "[{start: '@every 1h', end: '0 18 * * *', replicas: 9}, \
                      {start: '0 8 * * *', end: '@every 2h', replicas: 9}]",
            now: "2026-06-01T12:00:00Z",
            floor: None,
            next: None,
        },
        Case {
            name: "a start that never comes: never active",
            windows: "[{start: '0 0 30 2 *', end: '0 18 * * *', replicas: 9}]",
            now: "2026-06-01T12:00:00Z",
            floor: None,
            next: None,
        },
        Case {
            name: "unknown zone and broken cron (validated away) are skipped",
            windows: "[{start: '0 8 * * *', end: '0 18 * * *', replicas: 9, timezone: Mars/Base}, \
                      {start: 'soon', end: '0 18 * * *', replicas: 9}, \
                      {start: '0 8 * * *', end: '0 18 * * *', replicas: 1, timezone: ''}]",
            now: "2026-06-01T12:00:00Z",
            floor: None,
            next: None,
        },
        Case {
            name: "start and end the same: never active",
            windows: "[{start: '0 8 * * *', end: '0 8 * * *', replicas: 2}]",
            now: "2026-06-01T12:00:00Z",
            floor: None,
            next: Some("2026-06-02T08:00:00Z"),
        },
        Case {
            name: "no windows",
            windows: "[]",
            now: "2026-06-01T12:00:00Z",
            floor: None,
            next: None,
        },
    ];

    #[test]
    fn warm_floor_table() {
        assert!(CASES.len() >= 20);
        for case in CASES {
            let s = scaling(&format!("warmSchedule: {}", case.windows));
            let got = warm_floor(&s, ts(case.now));
            let want = WarmFloor {
                floor: case.floor,
                next_boundary: case.next.map(ts),
            };
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn min_scale_is_raised_to_the_floor_and_capped_at_a_bounded_max_scale() {
        let inside = Some(ts("2026-06-01T12:00:00Z"));
        let outside = Some(ts("2026-06-01T20:00:00Z"));
        let window = |extra: &str| {
            scaling(&format!(
                "{{{extra} warmSchedule: [{{start: '0 8 * * *', end: '0 18 * * *', replicas: 5}}]}}"
            ))
        };
        assert_eq!(min_scale(&window("minScale: 1,"), inside), 5);
        assert_eq!(min_scale(&window("minScale: 1,"), outside), 1);
        assert_eq!(min_scale(&window("minScale: 1,"), None), 1);
        assert_eq!(min_scale(&window(""), inside), 5);
        assert_eq!(min_scale(&window(""), None), 0);
        // A floor below minScale changes nothing.
        assert_eq!(min_scale(&window("minScale: 7, maxScale: 8,"), inside), 7);
        // Capped at maxScale (the validator refuses such windows; the cap holds regardless) ...
        assert_eq!(min_scale(&window("maxScale: 3,"), inside), 3);
        // ... at the default maxScale ...
        assert_eq!(
            min_scale(
                &scaling("warmSchedule: [{start: '0 8 * * *', end: '0 18 * * *', replicas: 50}]"),
                inside
            ),
            defaults::MAX_SCALE
        );
        // ... and not when maxScale is 0 (unbounded).
        assert_eq!(min_scale(&window("maxScale: 0,"), inside), 5);
        assert_eq!(min_scale(&ScalingSpec::default(), inside), 0);
    }

    #[test]
    fn scheduled_windows_counts_what_warm_floor_evaluates() {
        let s = scaling(
            "warmSchedule: [{start: '0 8 * * *', end: '0 18 * * *', replicas: 1}, \
             {start: '@every 1h', end: '0 18 * * *', replicas: 1}, \
             {start: '@daily', end: '0 6 * * *', replicas: 1, timezone: Asia/Tokyo}]",
        );
        assert_eq!(scheduled_windows(&s), 2);
        assert_eq!(scheduled_windows(&ScalingSpec::default()), 0);
    }

    const SCHEDULES: &[&str] = &[
        "0 8 * * 1-5",
        "0 18 * * 1-5",
        "0 22 * * *",
        "0 6 * * *",
        "0 2 * * *",
        "30 2 * * *",
        "30 1 * * *",
        "* * * * *",
        "*/7 */5 * * *",
        "0 0 29 2 *",
        "0 0 30 2 *",
        "0 9 1 * 1",
        "@hourly",
        "@monthly",
        "@every 90m",
        "15 3 31 */2 sat",
    ];

    const ZONES: &[&str] = &[
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "America/Sao_Paulo",
        "Australia/Lord_Howe",
        "Pacific/Apia",
        "Asia/Kathmandu",
        "America/Havana",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn warm_floor_never_panics_and_the_next_boundary_is_after_now(
            windows in proptest::collection::vec(
                (0..SCHEDULES.len(), 0..SCHEDULES.len(), 0..ZONES.len(), 1..20i32),
                0..4,
            ),
            second in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            near_now in proptest::bool::ANY,
            nanos in 0..1_000_000_000i32,
        ) {
            // Half the instants within a few decades of today, where the zones' rules change most.
            let second = if near_now { 1_000_000_000 + second.rem_euclid(1_500_000_000) } else { second };
            let now = Timestamp::new(second, nanos).unwrap_or(Timestamp::MAX);
            let s = ScalingSpec {
                warm_schedule: windows
                    .iter()
                    .map(|&(start, end, tz, replicas)| WarmWindow {
                        start: SCHEDULES[start].to_owned(),
                        end: SCHEDULES[end].to_owned(),
                        replicas,
                        timezone: Some(ZONES[tz].to_owned()),
                    })
                    .collect(),
                ..ScalingSpec::default()
            };
            let got = warm_floor(&s, now);
            if let Some(next) = got.next_boundary {
                proptest::prop_assert!(next > now, "{next} <= {now}");
            }
            if let Some(floor) = got.floor {
                proptest::prop_assert!(windows.iter().any(|w| w.3 == floor));
            }
        }
    }
}
