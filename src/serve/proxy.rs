//! The streaming reverse proxy to the Next.js server on loopback.
//!
//! Bodies are never buffered: the request body streams to the child as the client sends it and the
//! response (chunked RSC payloads, server-sent events, trailers) streams back frame by frame. Method,
//! path, query, headers (including `Host`), status and trailers are preserved; hop-by-hop headers are
//! dropped, so are the request headers Next.js uses only between its own parts (`is_internal`), and
//! `X-Forwarded-For`/`-Host`/`-Proto` are added. Until the child first accepts a connection,
//! requests wait, bounded by `--upstream-wait-secs`, instead of failing.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

/// Why a request could not be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// The child did not start accepting connections in time: 503.
    NotReady,
    /// The child refused or dropped the request: 502.
    Upstream,
}

impl ProxyError {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotReady => "not-ready",
            Self::Upstream => "upstream",
        }
    }
}

/// The Next.js server behind `knext serve`.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Incoming>,
    authority: String,
    ready: watch::Receiver<bool>,
    wait: Duration,
}

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers: the fixed list and every header the `Connection` header names.
/// `TE: trailers` survives (it asks for trailers end to end).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    let wants_trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for n in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(n);
    }
    if wants_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Internal request headers with no prefix rule of their own.
const INTERNAL: [&str; 4] = [
    "x-matched-path",
    "x-now-route-matches",
    "next-resume",
    "x-next-resume-state-length",
];

/// Whether `name` is a request header only Next.js itself sets between its own parts (or the platform
/// in front of it sets in minimal mode), which no client legitimately sends and which some Next.js
/// version honoured from outside:
/// - `x-middleware-*` (but `x-middleware-prefetch`, which the pages router's client sends):
///   `x-middleware-subrequest` made Next.js skip the app's middleware (CVE-2025-29927, before
///   15.2.3/14.2.25); the others are middleware results (`-rewrite`, `-next`, `-override-headers`, …);
/// - `x-invoke-*`: the router-to-render-worker request of Next.js 13.4-14 (path, query, status);
/// - `x-matched-path`, `x-now-route-matches`: minimal mode's route, the latter poisoning the cache of
///   pages-router routes (CVE-2024-46982, before 14.2.10/13.5.7);
/// - `next-resume`, `x-next-resume-state-length`: minimal mode's partial-prerender resume (a
///   denial of service from outside before 16.2.5/15.5.16).
///
/// Next.js 16.4.6 drops most of these itself (`INTERNAL_HEADERS`, `server/lib/server-ipc/utils.js`)
/// unless `NEXT_PRIVATE_TEST_HEADERS` is set; `knext serve` drops them whatever the app's version.
/// What clients do send stays: `rsc`, `next-router-*`, `next-action`, `x-nextjs-data`, `next-url`.
fn is_internal(name: &HeaderName) -> bool {
    let n = name.as_str();
    (n.starts_with("x-middleware-") && n != "x-middleware-prefetch")
        || n.starts_with("x-invoke-")
        || INTERNAL.contains(&n)
}

/// Removes [`is_internal`] headers.
fn strip_internal(headers: &mut HeaderMap) {
    let internal: Vec<HeaderName> = headers.keys().filter(|n| is_internal(n)).cloned().collect();
    for n in internal {
        headers.remove(n);
    }
}

/// Adds `X-Forwarded-For` (appended), and `X-Forwarded-Host`/`-Proto` unless an earlier proxy (the
/// queue-proxy, the ingress) set them.
fn add_forwarded(headers: &mut HeaderMap, peer: SocketAddr) {
    const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    const XFH: HeaderName = HeaderName::from_static("x-forwarded-host");
    const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
    let ip = peer.ip().to_string();
    let xff = match headers.get(&XFF).and_then(|v| v.to_str().ok()) {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(XFF, v);
    }
    if !headers.contains_key(&XFH)
        && let Some(host) = headers.get(header::HOST).cloned()
    {
        headers.insert(XFH, host);
    }
    if !headers.contains_key(&XFP) {
        headers.insert(XFP, HeaderValue::from_static("http"));
    }
}

impl Upstream {
    /// The child at `127.0.0.1:port`; `ready` turns true once it accepts connections.
    pub fn new(port: u16, ready: watch::Receiver<bool>, wait: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            client,
            authority: format!("127.0.0.1:{port}"),
            ready,
            wait,
        }
    }

    /// Whether the child has accepted a connection.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Forwards one request.
    pub async fn forward(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Incoming>, ProxyError> {
        if !self.is_ready() {
            let mut ready = self.ready.clone();
            match tokio::time::timeout(self.wait, ready.wait_for(|r| *r)).await {
                Ok(Ok(_)) => {}
                _ => return Err(ProxyError::NotReady),
            }
        }
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(self.authority.as_str())
            .path_and_query(path)
            .build()
            .map_err(|_| ProxyError::Upstream)?;
        parts.version = http::Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        strip_internal(&mut parts.headers);
        add_forwarded(&mut parts.headers, peer);
        let mut response = self
            .client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|e| {
                // The client gets a fixed 502; what happened is for the log (Debug: the kind and
                // its source, e.g. the connect error).
                tracing::warn!(error = ?e, "the app server did not answer");
                ProxyError::Upstream
            })?;
        strip_hop_by_hop(response.headers_mut());
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("te", "gzip, trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("trailer", "x-checksum"),
            ("authorization", "Bearer app-token"),
            ("cookie", "a=b"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "cookie", "te", "trailer"]);
        assert_eq!(h[header::TE], "trailers");
    }

    #[test]
    fn internal_next_headers_go_and_what_clients_send_stays() {
        let mut h = HeaderMap::new();
        let internal = [
            "x-middleware-subrequest",
            "x-middleware-subrequest-id",
            "x-middleware-rewrite",
            "x-middleware-next",
            "x-middleware-override-headers",
            "x-middleware-request-cookie",
            "x-invoke-path",
            "x-invoke-query",
            "x-invoke-status",
            "x-matched-path",
            "x-now-route-matches",
            "next-resume",
            "x-next-resume-state-length",
        ];
        let kept = [
            "rsc",
            "next-router-state-tree",
            "next-router-prefetch",
            "next-router-segment-prefetch",
            "next-action",
            "next-url",
            "x-nextjs-data",
            "x-middleware-prefetch",
            "x-forwarded-for",
            "x-custom",
        ];
        for n in internal.iter().chain(&kept) {
            h.append(HeaderName::from_static(n), HeaderValue::from_static("1"));
        }
        strip_internal(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        let mut want = kept.to_vec();
        want.sort_unstable();
        assert_eq!(left, want);
    }

    #[test]
    fn forwarded_headers_append_or_keep() {
        let peer: SocketAddr = "10.0.0.7:5555".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("docs.example.com"));
        add_forwarded(&mut h, peer);
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
        assert_eq!(h["x-forwarded-host"], "docs.example.com");
        assert_eq!(h["x-forwarded-proto"], "http");

        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_static("public.example.com"));
        h.insert(header::HOST, HeaderValue::from_static("docs.web.svc"));
        add_forwarded(&mut h, "127.0.0.1:1".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "public.example.com");
    }
}
