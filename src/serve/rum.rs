//! `POST /api/rum`: the bounded web-vitals aggregator.
//!
//! In order: a global token bucket ([`BURST`] tokens, [`REFILL_PER_SEC`] per second) → 429; a body over
//! [`MAX_BODY`] bytes → 413; anything but a JSON object with an allowed `metric`, an allowed `rating`,
//! a finite non-negative `value` and a non-empty `pathname` → 400 (other fields are ignored); a `value`
//! over its vital's ceiling ([`Vital::max`]: [`super::metrics::TIMING_MAX_MS`],
//! [`super::metrics::CLS_MAX`]) → 400, so no beacon can push a histogram's `_sum` to `+Inf`; the
//! pathname is templated to its route ([`super::routes`]) and the value observed → 204.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::metrics::Vital;

/// Beacons accepted in a burst.
pub const BURST: f64 = 200.0;
/// Beacons accepted per second, sustained.
pub const REFILL_PER_SEC: f64 = 50.0;
/// Largest beacon body, bytes.
pub const MAX_BODY: usize = 2048;

/// `GET`/`HEAD /api/cache/events` answered in a burst. Unauthenticated, and each one costs an
/// `LRANGE` of the whole event list on the fleet's shared Redis: its own bucket, so a flood of reads
/// neither starves the RUM beacon nor reaches Redis at more than the refill rate per pod.
pub const EVENTS_BURST: f64 = 20.0;
/// `GET`/`HEAD /api/cache/events` answered per second, sustained (a dashboard polling every second
/// from two tabs fits).
pub const EVENTS_REFILL_PER_SEC: f64 = 2.0;

/// A token bucket shared by every client (one pod, one bucket: a flood cannot grow any state).
#[derive(Debug)]
pub struct Bucket {
    state: Mutex<(f64, Instant)>,
    burst: f64,
    refill: f64,
}

impl Default for Bucket {
    fn default() -> Self {
        Self::new(BURST, REFILL_PER_SEC, Instant::now())
    }
}

impl Bucket {
    /// A full bucket.
    pub fn new(burst: f64, refill_per_sec: f64, now: Instant) -> Self {
        Self {
            state: Mutex::new((burst, now)),
            burst,
            refill: refill_per_sec,
        }
    }

    /// The bucket of `GET`/`HEAD /api/cache/events` ([`EVENTS_BURST`], [`EVENTS_REFILL_PER_SEC`]).
    pub fn events(now: Instant) -> Self {
        Self::new(EVENTS_BURST, EVENTS_REFILL_PER_SEC, now)
    }

    /// Takes one token at `now`; when the bucket is empty, how long until it holds one again.
    pub fn try_take_at(&self, now: Instant) -> Result<(), Duration> {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = &mut *guard;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.refill).min(self.burst);
        *last = now.max(*last);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            // A bucket that never refills (rate 0) says "an hour": a bound, not a promise.
            let wait = (1.0 - *tokens) / self.refill;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(3600)))
        }
    }

    /// Takes one token at `now`; false when the bucket is empty.
    pub fn take_at(&self, now: Instant) -> bool {
        self.try_take_at(now).is_ok()
    }

    /// Takes one token now.
    pub fn take(&self) -> bool {
        self.take_at(Instant::now())
    }
}

/// A `Retry-After` value (whole seconds, at least 1) for a wait.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// A valid beacon.
#[derive(Debug, Clone, PartialEq)]
pub struct Beacon {
    /// Which vital.
    pub metric: Vital,
    /// `good`, `needs-improvement` or `poor`.
    pub rating: &'static str,
    /// The measurement (ms, or unitless for CLS).
    pub value: f64,
    /// The page's path as the browser saw it.
    pub pathname: String,
}

/// Why a beacon was refused (the `reason` label of `knext_serve_rum_rejected_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Token bucket empty: 429.
    RateLimited,
    /// Body over [`MAX_BODY`]: 413.
    TooLarge,
    /// Not JSON: 400.
    NotJson,
    /// JSON, but not an allowed beacon: 400.
    Invalid,
    /// An allowed beacon whose value is over its vital's ceiling ([`Vital::max`]): 400.
    OutOfRange,
}

impl Rejection {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Self::RateLimited => 429,
            Self::TooLarge => 413,
            Self::NotJson | Self::Invalid | Self::OutOfRange => 400,
        }
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate-limited",
            Self::TooLarge => "too-large",
            Self::NotJson => "not-json",
            Self::Invalid => "invalid",
            Self::OutOfRange => "out-of-range",
        }
    }
}

/// Parses a beacon body (already known to be at most [`MAX_BODY`] bytes).
pub fn parse(body: &[u8]) -> Result<Beacon, Rejection> {
    if body.len() > MAX_BODY {
        return Err(Rejection::TooLarge);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Rejection::NotJson)?;
    let obj = value.as_object().ok_or(Rejection::Invalid)?;
    let metric = match obj.get("metric").and_then(|m| m.as_str()) {
        Some("LCP") => Vital::Lcp,
        Some("INP") => Vital::Inp,
        Some("CLS") => Vital::Cls,
        Some("FCP") => Vital::Fcp,
        Some("TTFB") => Vital::Ttfb,
        _ => return Err(Rejection::Invalid),
    };
    let rating = match obj.get("rating").and_then(|r| r.as_str()) {
        Some("good") => "good",
        Some("needs-improvement") => "needs-improvement",
        Some("poor") => "poor",
        _ => return Err(Rejection::Invalid),
    };
    let value = obj
        .get("value")
        .and_then(serde_json::Value::as_f64)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or(Rejection::Invalid)?;
    let pathname = obj
        .get("pathname")
        .and_then(|p| p.as_str())
        .filter(|p| !p.is_empty())
        .ok_or(Rejection::Invalid)?;
    if value > metric.max() {
        return Err(Rejection::OutOfRange);
    }
    Ok(Beacon {
        metric,
        rating,
        value,
        pathname: pathname.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::metrics::{CLS_MAX, TIMING_MAX_MS};
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let b = Bucket::new(BURST, REFILL_PER_SEC, t0);
        assert_eq!((0..250).filter(|_| b.take_at(t0)).count(), 200);
        assert!(!b.take_at(t0));
        // 100 ms refills 5 tokens.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!((0..10).filter(|_| b.take_at(t1)).count(), 5);
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..1000).filter(|_| b.take_at(t2)).count(), 200);
    }

    #[test]
    fn values_at_and_around_each_vitals_ceiling() {
        let beacon = |metric: &str, value: f64| {
            // `{:?}` writes every f64 so that it parses back to the same value.
            format!(r#"{{"metric":"{metric}","rating":"poor","value":{value:?},"pathname":"/"}}"#)
        };
        for (metric, vital, max) in [
            ("LCP", Vital::Lcp, TIMING_MAX_MS),
            ("INP", Vital::Inp, TIMING_MAX_MS),
            ("FCP", Vital::Fcp, TIMING_MAX_MS),
            ("TTFB", Vital::Ttfb, TIMING_MAX_MS),
            ("CLS", Vital::Cls, CLS_MAX),
        ] {
            assert_eq!(vital.max(), max, "{metric}");
            // A millionth of the ceiling either side (serde_json parses decimals to within an ulp,
            // so the neighbours of the ceiling itself would not survive the round trip).
            let step = max * 1e-6;
            for (value, want) in [
                (0.0, Ok(())),
                (max - step, Ok(())),
                (max, Ok(())),
                (max + step, Err(Rejection::OutOfRange)),
                (max * 2.0, Err(Rejection::OutOfRange)),
                (1.7e308, Err(Rejection::OutOfRange)),
                (f64::MAX, Err(Rejection::OutOfRange)),
            ] {
                let got = parse(beacon(metric, value).as_bytes());
                assert_eq!(got.as_ref().map(drop).map_err(|e| *e), want, "{metric} {value:?}");
                if let Ok(b) = got {
                    assert_eq!(b.metric, vital);
                    assert!((b.value - value).abs() <= value * 1e-12, "{metric} {value:?}");
                }
            }
        }
        // The ceilings are in the beacon's units: a 30 s LCP (ms) is accepted, a CLS of 30 is not.
        assert!(parse(beacon("LCP", 30_000.0).as_bytes()).is_ok());
        assert_eq!(parse(beacon("CLS", 30.0).as_bytes()), Err(Rejection::OutOfRange));
    }

    #[test]
    fn an_empty_bucket_says_how_long_until_the_next_token() {
        let t0 = Instant::now();
        let b = Bucket::events(t0);
        for _ in 0..EVENTS_BURST as usize {
            assert_eq!(b.try_take_at(t0), Ok(()));
        }
        // One token takes 1 / 2 per second = 500 ms to refill; 200 ms later, 300 ms are left.
        assert_eq!(b.try_take_at(t0), Err(Duration::from_millis(500)));
        let t1 = t0 + Duration::from_millis(200);
        let left = b.try_take_at(t1).unwrap_err();
        assert!(
            left.abs_diff(Duration::from_millis(300)) < Duration::from_micros(1),
            "{left:?}"
        );
        assert_eq!(b.try_take_at(t0 + Duration::from_millis(600)), Ok(()));
        assert_eq!(
            Bucket::new(0.0, 0.0, t0).try_take_at(t0),
            Err(Duration::from_secs(3600))
        );
        for (wait_ms, secs) in [(0, 1), (1, 1), (500, 1), (1000, 1), (1001, 2), (2500, 3)] {
            assert_eq!(
                retry_after_secs(Duration::from_millis(wait_ms)),
                secs,
                "{wait_ms} ms"
            );
        }
    }

    #[test]
    fn beacons_accepted_and_refused() {
        let ok = br#"{"metric":"LCP","rating":"good","value":1234.5,"pathname":"/blog/x","id":"v3-1","extra":[1]}"#;
        assert_eq!(
            parse(ok),
            Ok(Beacon {
                metric: Vital::Lcp,
                rating: "good",
                value: 1234.5,
                pathname: "/blog/x".into()
            })
        );
        for (body, want) in [
            (&b"not json"[..], Rejection::NotJson),
            (b"{\"metric\":\"LCP\"", Rejection::NotJson),
            (b"[1,2]", Rejection::Invalid),
            (
                br#"{"metric":"FID","rating":"good","value":1,"pathname":"/"}"#,
                Rejection::Invalid,
            ),
            (
                br#"{"metric":"lcp","rating":"good","value":1,"pathname":"/"}"#,
                Rejection::Invalid,
            ),
            (
                br#"{"metric":"LCP","rating":"great","value":1,"pathname":"/"}"#,
                Rejection::Invalid,
            ),
            (
                br#"{"metric":"LCP","rating":"good","value":-1,"pathname":"/"}"#,
                Rejection::Invalid,
            ),
            (
                br#"{"metric":"LCP","rating":"good","value":"1","pathname":"/"}"#,
                Rejection::Invalid,
            ),
            (
                br#"{"metric":"LCP","rating":"good","value":1e400,"pathname":"/"}"#,
                Rejection::NotJson,
            ),
            (
                br#"{"metric":"LCP","rating":"good","value":1,"pathname":""}"#,
                Rejection::Invalid,
            ),
            (
                br#"{"metric":"LCP","rating":"good","value":1}"#,
                Rejection::Invalid,
            ),
        ] {
            assert_eq!(parse(body), Err(want), "{}", String::from_utf8_lossy(body));
        }
        let big = format!(
            r#"{{"metric":"CLS","rating":"good","value":0.1,"pathname":"/{}"}}"#,
            "a".repeat(MAX_BODY)
        );
        assert_eq!(parse(big.as_bytes()), Err(Rejection::TooLarge));
    }
}
