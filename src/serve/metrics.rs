//! `knext serve`'s Prometheus metrics. Every label has a bounded value set: handlers and methods are
//! fixed lists, routes are templated ([`super::routes`]), statuses are classes.

use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Which part of `knext serve` answered a request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values as they appear in queries
pub enum Handler {
    /// Forwarded to the Next.js server.
    proxy,
    /// `POST /api/cache/invalidate`.
    cache_invalidate,
    /// `GET`/`DELETE /api/cache/events`.
    cache_events,
    /// `POST /api/rum`.
    rum,
    /// A path that cannot be read unambiguously and may name an owned route: 400, never forwarded
    /// ([`super::path`]).
    refused,
}

/// The web vitals the RUM beacon accepts.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Vital {
    /// Largest Contentful Paint (ms).
    Lcp,
    /// Interaction to Next Paint (ms).
    Inp,
    /// Cumulative Layout Shift (unitless).
    Cls,
    /// First Contentful Paint (ms).
    Fcp,
    /// Time to First Byte (ms).
    Ttfb,
}

/// Largest value a beacon may report for a timing vital (LCP, INP, FCP, TTFB), in milliseconds as the
/// web-vitals library reports them: 120 s, far past the top bucket (16 s), beyond any page a person
/// waited for. Anything larger is forged or broken, and one value near `f64::MAX` would turn the
/// histogram's `_sum` into `+Inf` for the life of the process.
pub const TIMING_MAX_MS: f64 = 120_000.0;

/// Largest Cumulative Layout Shift a beacon may report (unitless). One layout shift scores at most 1
/// (impact fraction × distance fraction, each at most 1) and CLS is the worst 5-second window of
/// shifts; 10 is ten whole-viewport, whole-height shifts in one window, 40 times the "poor" threshold
/// (0.25) and 10 times the top bucket.
pub const CLS_MAX: f64 = 10.0;

impl Vital {
    /// The largest value a beacon may report for this vital (inclusive; larger is refused).
    pub const fn max(self) -> f64 {
        match self {
            Self::Cls => CLS_MAX,
            Self::Lcp | Self::Inp | Self::Fcp | Self::Ttfb => TIMING_MAX_MS,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    app: String,
    handler: Handler,
    method: &'static str,
    route: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VitalLabels {
    app: String,
    route: String,
    rating: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerLabel {
    handler: Handler,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    handler: Handler,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

const MS_BUCKETS: [f64; 9] = [50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0];
const INP_BUCKETS: [f64; 8] = [50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 4000.0];
const CLS_BUCKETS: [f64; 7] = [0.01, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0];
const SECONDS_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every metric `knext serve` exports.
#[derive(Debug)]
pub struct Metrics {
    app: String,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram>,
    in_flight: Family<HandlerLabel, Gauge>,
    auth_refusals: Family<ReasonLabels, Counter>,
    rum_rejected: Family<ReasonLabels, Counter>,
    invalidations: Family<ResultLabel, Counter>,
    upstream_errors: Family<ResultLabel, Counter>,
    vitals: [Family<VitalLabels, Histogram>; 5],
    child_up: Gauge,
    child_ready_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    child_exits: Counter,
    connections: Gauge,
    open_connections: AtomicI64,
}

/// Method label: the common methods by name, anything else `other`.
pub fn method_label(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

impl crate::admin_http::Exposition for Metrics {
    fn encode(&self) -> String {
        Metrics::encode(self)
    }
}

impl Metrics {
    /// A registry with every metric registered; `app` labels the request and RUM series.
    pub fn new(app: &str) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kn_next_http_requests",
            "HTTP requests by handler, method, route template and status class",
            requests.clone(),
        );
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(SECONDS_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "kn_next_http_request_duration_seconds",
            "Time to the response head, by handler, method, route template and status class",
            duration.clone(),
        );
        let in_flight = Family::<HandlerLabel, Gauge>::default();
        registry.register(
            "knext_serve_inflight_requests",
            "Requests being answered now, by handler",
            in_flight.clone(),
        );
        let auth_refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "knext_serve_auth_refusals",
            "Requests to mutating endpoints refused by authentication, by reason",
            auth_refusals.clone(),
        );
        let rum_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "knext_serve_rum_rejected",
            "RUM beacons refused, by reason",
            rum_rejected.clone(),
        );
        let invalidations = Family::<ResultLabel, Counter>::default();
        registry.register(
            "knext_serve_cache_invalidations",
            "Authenticated cache invalidations, by result (ok, unavailable)",
            invalidations.clone(),
        );
        let upstream_errors = Family::<ResultLabel, Counter>::default();
        registry.register(
            "knext_serve_upstream_errors",
            "Proxied requests the Next.js server did not answer, by kind",
            upstream_errors.clone(),
        );
        fn ms() -> Histogram {
            Histogram::new(MS_BUCKETS)
        }
        fn inp() -> Histogram {
            Histogram::new(INP_BUCKETS)
        }
        fn cls() -> Histogram {
            Histogram::new(CLS_BUCKETS)
        }
        let vital = Family::<VitalLabels, Histogram>::new_with_constructor;
        let vitals = [vital(ms), vital(inp), vital(cls), vital(ms), vital(ms)];
        for (name, help, family) in [
            (
                "kn_next_web_vitals_lcp",
                "Largest Contentful Paint from RUM beacons (ms)",
                &vitals[0],
            ),
            (
                "kn_next_web_vitals_inp",
                "Interaction to Next Paint from RUM beacons (ms)",
                &vitals[1],
            ),
            (
                "kn_next_web_vitals_cls",
                "Cumulative Layout Shift from RUM beacons",
                &vitals[2],
            ),
            (
                "kn_next_web_vitals_fcp",
                "First Contentful Paint from RUM beacons (ms)",
                &vitals[3],
            ),
            (
                "kn_next_web_vitals_ttfb",
                "Time to First Byte from RUM beacons (ms)",
                &vitals[4],
            ),
        ] {
            registry.register(name, help, family.clone());
        }
        let child_up = Gauge::default();
        registry.register(
            "knext_serve_child_up",
            "1 while the Next.js server accepts connections",
            child_up.clone(),
        );
        let child_ready_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "knext_serve_child_ready_seconds",
            "Seconds from starting the Next.js server until it accepted connections (cold start)",
            child_ready_seconds.clone(),
        );
        let child_exits = Counter::default();
        registry.register(
            "knext_serve_child_exits",
            "Times the Next.js server exited (knext serve never restarts it; the pod restarts)",
            child_exits.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "knext_serve_open_connections",
            "Client connections open now",
            connections.clone(),
        );
        Self {
            app: app.to_owned(),
            registry,
            requests,
            duration,
            in_flight,
            auth_refusals,
            rum_rejected,
            invalidations,
            upstream_errors,
            vitals,
            child_up,
            child_ready_seconds,
            child_exits,
            connections,
            open_connections: AtomicI64::new(0),
        }
    }

    /// Records one answered request.
    pub fn request(&self, handler: Handler, method: &'static str, route: &str, status: u16, seconds: f64) {
        let labels = RequestLabels {
            app: self.app.clone(),
            handler,
            method,
            route: route.to_owned(),
            status_class: status_class(status),
        };
        self.duration.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// A request entered `handler`; the guard leaves it when dropped.
    pub fn enter(&self, handler: Handler) -> InFlight {
        let gauge = self.in_flight.get_or_create(&HandlerLabel { handler }).clone();
        gauge.inc();
        InFlight(gauge)
    }

    /// A request to a mutating endpoint was refused.
    pub fn auth_refused(&self, handler: Handler, reason: &'static str) {
        self.auth_refusals
            .get_or_create(&ReasonLabels { handler, reason })
            .inc();
    }

    /// A RUM beacon was refused.
    pub fn rum_rejected(&self, reason: &'static str) {
        self.rum_rejected
            .get_or_create(&ReasonLabels {
                handler: Handler::rum,
                reason,
            })
            .inc();
    }

    /// An authenticated invalidation ended (`ok` or `unavailable`).
    pub fn invalidation(&self, result: &'static str) {
        self.invalidations.get_or_create(&ResultLabel { result }).inc();
    }

    /// A proxied request failed before the Next.js server answered.
    pub fn upstream_error(&self, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&ResultLabel { result: kind })
            .inc();
    }

    /// A web vital from a beacon.
    pub fn vital(&self, vital: Vital, route: &str, rating: &'static str, value: f64) {
        let i = match vital {
            Vital::Lcp => 0,
            Vital::Inp => 1,
            Vital::Cls => 2,
            Vital::Fcp => 3,
            Vital::Ttfb => 4,
        };
        self.vitals[i]
            .get_or_create(&VitalLabels {
                app: self.app.clone(),
                route: route.to_owned(),
                rating,
            })
            .observe(value);
    }

    /// The Next.js server accepted its first connection `seconds` after it was started.
    pub fn child_ready(&self, seconds: f64) {
        self.child_ready_seconds.set(seconds);
        self.child_up.set(1);
    }

    /// The Next.js server exited.
    pub fn child_exited(&self) {
        self.child_up.set(0);
        self.child_exits.inc();
    }

    /// A client connection opened; the guard closes it.
    pub fn connection(self: &std::sync::Arc<Self>) -> Connection {
        let n = self.open_connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.connections.set(n);
        Connection(self.clone())
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Counts a request in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts an open connection until dropped.
#[derive(Debug)]
pub struct Connection(std::sync::Arc<Metrics>);

impl Drop for Connection {
    fn drop(&mut self) {
        let n = self.0.open_connections.fetch_sub(1, Ordering::Relaxed) - 1;
        self.0.connections.set(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_bounded_labels() {
        let m = Metrics::new("docs");
        m.request(Handler::proxy, "GET", "/blog/[slug]", 200, 0.01);
        m.request(
            Handler::cache_invalidate,
            "POST",
            "/api/cache/invalidate",
            401,
            0.0001,
        );
        m.vital(Vital::Lcp, "/", "good", 1200.0);
        m.vital(Vital::Cls, "/", "poor", 0.3);
        m.auth_refused(Handler::cache_invalidate, "wrong-token");
        {
            let _g = m.enter(Handler::proxy);
            assert!(
                m.encode()
                    .contains(r#"knext_serve_inflight_requests{handler="proxy"} 1"#)
            );
        }
        let text = m.encode();
        for needle in [
            r#"kn_next_http_requests_total{app="docs",handler="proxy",method="GET",route="/blog/[slug]",status_class="2xx"} 1"#,
            r#"kn_next_http_requests_total{app="docs",handler="cache_invalidate",method="POST",route="/api/cache/invalidate",status_class="4xx"} 1"#,
            r#"kn_next_web_vitals_lcp_bucket{le="2000.0",app="docs",route="/",rating="good"} 1"#,
            r#"kn_next_web_vitals_cls_count{app="docs",route="/",rating="poor"} 1"#,
            r#"knext_serve_auth_refusals_total{handler="cache_invalidate",reason="wrong-token"} 1"#,
            r#"knext_serve_inflight_requests{handler="proxy"} 0"#,
            "knext_serve_child_up 0",
        ] {
            assert!(text.contains(needle), "missing {needle}\n{text}");
        }
        assert_eq!(
            method_label(&http::Method::from_bytes(b"PURGE").unwrap()),
            "other"
        );
        assert_eq!(status_class(599), "5xx");
    }
}
