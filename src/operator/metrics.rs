//! The operator's Prometheus metrics. Labels are bounded: never a per-object label.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `result` label of `knext_nextapp_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The registry and every metric the operator exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ResultLabel, Counter>,
    errors: Counter,
    duration: Histogram,
    in_flight: Gauge,
    scheduled: Gauge,
    leader: Gauge,
    scheduled_keys: Mutex<std::collections::BTreeSet<String>>,
    in_flight_count: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::admin_http::Exposition for Metrics {
    fn encode(&self) -> String {
        Metrics::encode(self)
    }
}

impl Metrics {
    /// A fresh registry with every metric registered (all at zero).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ResultLabel, Counter>::default();
        // prometheus-client appends `_total` to counters.
        registry.register(
            "knext_nextapp_reconcile",
            "NextApp reconciles, by result (success or error)",
            reconciles.clone(),
        );
        let errors = Counter::default();
        registry.register(
            "knext_nextapp_reconcile_errors",
            "NextApp reconciles that failed with an API or render error",
            errors.clone(),
        );
        let duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        registry.register(
            "knext_nextapp_reconcile_duration_seconds",
            "Time one NextApp reconcile took",
            duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "knext_nextapp_reconcile_in_flight",
            "NextApp reconciles running now",
            in_flight.clone(),
        );
        let scheduled = Gauge::default();
        registry.register(
            "knext_nextapp_queue_depth",
            "NextApps waiting for work: reconciles running plus timed requeues pending",
            scheduled.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "knext_operator_leader",
            "1 while this replica holds the leader-election lease (or runs without election)",
            leader.clone(),
        );
        for result in ["success", "error"] {
            let _ = reconciles.get_or_create(&ResultLabel { result });
        }
        Self {
            registry,
            reconciles,
            errors,
            duration,
            in_flight,
            scheduled,
            leader,
            scheduled_keys: Mutex::default(),
            in_flight_count: AtomicI64::new(0),
        }
    }

    /// A reconcile of `key` starts: it is no longer waiting.
    pub fn start(&self, key: &str) {
        if let Ok(mut keys) = self.scheduled_keys.lock() {
            keys.remove(key);
        }
        self.in_flight_count.fetch_add(1, Ordering::Relaxed);
        self.in_flight.inc();
        self.update_depth();
    }

    /// A reconcile of `key` ended after `elapsed`; `requeue` says whether a timed requeue is pending.
    pub fn finish(&self, key: &str, ok: bool, elapsed: Duration, requeue: bool) {
        self.reconciles
            .get_or_create(&ResultLabel {
                result: if ok { "success" } else { "error" },
            })
            .inc();
        if !ok {
            self.errors.inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
        self.in_flight_count.fetch_sub(1, Ordering::Relaxed);
        self.in_flight.dec();
        if requeue && let Ok(mut keys) = self.scheduled_keys.lock() {
            keys.insert(key.to_owned());
        }
        self.update_depth();
    }

    /// A NextApp is gone: it waits for nothing.
    pub fn forget(&self, key: &str) {
        if let Ok(mut keys) = self.scheduled_keys.lock() {
            keys.remove(key);
        }
        self.update_depth();
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    fn update_depth(&self) {
        let scheduled = self.scheduled_keys.lock().map(|k| k.len()).unwrap_or_default();
        let depth =
            i64::try_from(scheduled).unwrap_or(i64::MAX) + self.in_flight_count.load(Ordering::Relaxed);
        self.scheduled.set(depth);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_of_the_issue() {
        let m = Metrics::new();
        m.start("web/shop");
        m.finish("web/shop", true, Duration::from_millis(20), true);
        m.start("web/blog");
        m.finish("web/blog", false, Duration::from_millis(3), false);
        let text = m.encode();
        for line in [
            "knext_nextapp_reconcile_total{result=\"success\"} 1",
            "knext_nextapp_reconcile_total{result=\"error\"} 1",
            "knext_nextapp_reconcile_errors_total 1",
            "knext_nextapp_reconcile_duration_seconds_count 2",
            "knext_nextapp_reconcile_in_flight 0",
            "knext_nextapp_queue_depth 1",
            "knext_operator_leader 0",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        m.start("web/shop");
        assert!(m.encode().contains("knext_nextapp_queue_depth 1"));
        m.forget("web/shop");
        m.finish("web/shop", true, Duration::from_millis(1), false);
        assert!(m.encode().contains("knext_nextapp_queue_depth 0"));
    }
}
