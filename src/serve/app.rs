//! Request routing: the routes `knext serve` owns (never forwarded) and everything else to the proxy.
//!
//! | route | methods | auth |
//! |---|---|---|
//! | `/api/cache/invalidate` | POST (else 405, `Allow: POST`) | Bearer `CACHE_INVALIDATE_TOKEN` |
//! | `/api/cache/events` | GET/HEAD (read-only), DELETE (else 405) | GET/HEAD: token bucket; DELETE: the same Bearer token |
//! | `/api/rum` | POST (else 405) | none; token bucket, size cap, strict allow-lists |
//!
//! Ownership is decided on the path as the Next.js server may read it ([`super::path`]): percent-
//! decoded, dot segments removed, slashes collapsed, case ignored, `basePath`, locale, data-route and
//! `.rsc`-style decorations stripped. Every spelling that names an owned route gets the owned answer
//! (as the canonical spelling would); a path that cannot be read unambiguously and might name one
//! (malformed escapes, encoded control characters, dot segments that parsers resolve differently)
//! gets 400; neither is ever forwarded. Authentication comes before the body is read, so a refused
//! request costs a header comparison and nothing else. Error bodies are fixed sentences: what went
//! wrong underneath (Redis's error text, the upstream's) goes to the log, never to the client.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Bytes;
use hyper::body::{Body as _, Incoming};
use serde_json::json;

use super::auth::Token;
use super::cache::{self, Cache, CacheError};
use super::metrics::{Handler, InFlight, Metrics, method_label};
use super::path::{self, Scope, Verdict};
use super::proxy::{ProxyError, Upstream};
use super::routes::{self, Routes};
use super::rum::{self, Bucket, Rejection};

/// The response body: the child's, streamed, or one of ours.
pub type Body = Either<Streamed, Full<Bytes>>;

/// The child's response body, streamed as it arrives; the request counts as in flight until the last
/// frame (a server-sent event stream is in flight for as long as it is open).
#[derive(Debug)]
pub struct Streamed {
    inner: Incoming,
    _in_flight: InFlight,
}

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Largest invalidation body, bytes.
pub const MAX_INVALIDATE_BODY: usize = 8 * 1024;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct State {
    /// The invalidation token.
    pub token: Token,
    /// The Redis cache.
    pub cache: Cache,
    /// The app's routes (metric labels).
    pub routes: Routes,
    /// Where the app's routes sit (`basePath`, locales): owned routes are recognised under them too.
    pub scope: Scope,
    /// The RUM rate limit.
    pub bucket: Bucket,
    /// The rate limit of reading the cache events (`GET`/`HEAD /api/cache/events`).
    pub events_bucket: Bucket,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The Next.js server.
    pub upstream: Upstream,
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(value.to_string()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &json!({ "error": message }))
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::new())));
    *r.status_mut() = status;
    r
}

/// The routes `knext serve` owns, in their canonical spelling (also their metric label).
const OWNED: [(Handler, &str); 3] = [
    (Handler::cache_invalidate, "/api/cache/invalidate"),
    (Handler::cache_events, "/api/cache/events"),
    (Handler::rum, "/api/rum"),
];

/// [`OWNED`]'s routes split into segments, once.
static OWNED_SEGMENTS: LazyLock<Vec<Vec<&'static str>>> = LazyLock::new(|| {
    OWNED
        .iter()
        .map(|(_, route)| path::route_segments(route))
        .collect()
});

/// Who answers a request path, and its route label: the one ownership decision.
fn owner<'a>(path: &str, scope: &Scope, routes: &'a Routes) -> (Handler, &'a str) {
    match path::classify(path, &OWNED_SEGMENTS, scope) {
        Verdict::Owned(i) => OWNED.get(i).copied().unwrap_or((Handler::refused, routes::OTHER)),
        Verdict::Refused => (Handler::refused, routes::OTHER),
        Verdict::Forward => (Handler::proxy, routes.template(path)),
    }
}

/// Reads a body of at most `limit` bytes (`Err(true)`: too large; `Err(false)`: unreadable). A
/// declared `Content-Length` over the limit is refused before reading anything.
async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, bool> {
    if body.size_hint().lower() > limit as u64 {
        return Err(true);
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(true),
        Err(_) => Err(false),
    }
}

impl State {
    /// Answers one request and records its metrics.
    pub async fn handle(&self, req: Request<Incoming>, peer: std::net::SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let method = method_label(req.method());
        let (handler, route) = owner(req.uri().path(), &self.scope, &self.routes);
        let in_flight = self.metrics.enter(handler);
        let response = match handler {
            Handler::cache_invalidate => self.invalidate(req).await,
            Handler::cache_events => self.events(req).await,
            Handler::rum => self.rum(req).await,
            Handler::refused => error(StatusCode::BAD_REQUEST, "Unreadable request path"),
            Handler::proxy => match self.upstream.forward(req, peer).await {
                Ok(r) => r.map(|inner| {
                    Either::Left(Streamed {
                        inner,
                        _in_flight: in_flight,
                    })
                }),
                Err(e) => {
                    self.metrics.upstream_error(e.as_str());
                    match e {
                        ProxyError::NotReady => {
                            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "The app is starting");
                            r.headers_mut()
                                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                            r
                        }
                        ProxyError::Upstream => error(StatusCode::BAD_GATEWAY, "The app did not answer"),
                    }
                }
            },
        };
        self.metrics.request(
            handler,
            method,
            route,
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        response
    }

    /// Checks the bearer token; on refusal returns the 401 to send.
    fn refused(&self, handler: Handler, req: &Request<Incoming>) -> Option<Response<Body>> {
        let header = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        let refusal = self.token.check(header).err()?;
        self.metrics.auth_refused(handler, refusal.as_str());
        Some(error(StatusCode::UNAUTHORIZED, "Unauthorized"))
    }

    async fn invalidate(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        if let Some(r) = self.refused(Handler::cache_invalidate, &req) {
            return r;
        }
        let body = match read_limited(req.into_body(), MAX_INVALIDATE_BODY).await {
            Ok(b) => b,
            Err(true) => return error(StatusCode::BAD_REQUEST, "Body over 8 KiB"),
            Err(false) => return error(StatusCode::BAD_REQUEST, "Unreadable body"),
        };
        let tags = match cache::parse_tags(&body) {
            Ok(t) => t,
            Err(message) => return error(StatusCode::BAD_REQUEST, message),
        };
        match self.cache.invalidate(&tags).await {
            Ok(done) => {
                self.metrics.invalidation("ok");
                tracing::info!(tags = ?tags, deleted = done.deleted, "cache tags invalidated");
                json_response(
                    StatusCode::OK,
                    &json!({
                        "success": true,
                        "message": format!("Invalidated {} tag(s)", tags.len()),
                        "tags": tags,
                        "deleted": done.deleted,
                        "timestamp": cache::iso8601_ms(k8s_openapi::jiff::Timestamp::now()),
                    }),
                )
            }
            Err(e) => {
                self.metrics.invalidation("unavailable");
                unavailable(&e, "invalidate")
            }
        }
    }

    async fn events(&self, req: Request<Incoming>) -> Response<Body> {
        match *req.method() {
            Method::GET | Method::HEAD => {
                if let Some(r) = self.events_rate_limited(Instant::now()) {
                    return r;
                }
                match self.cache.events().await {
                    Ok((events, stats)) => {
                        json_response(StatusCode::OK, &json!({ "events": events, "stats": stats }))
                    }
                    Err(e) => unavailable(&e, "read events"),
                }
            }
            Method::DELETE => {
                if let Some(r) = self.refused(Handler::cache_events, &req) {
                    return r;
                }
                match self.cache.clear_events().await {
                    Ok(()) => json_response(StatusCode::OK, &json!({ "success": true })),
                    Err(e) => unavailable(&e, "clear events"),
                }
            }
            _ => method_not_allowed("GET, HEAD, DELETE"),
        }
    }

    /// Takes a token from the events bucket at `now`; when it is empty, the 429 to send.
    fn events_rate_limited(&self, now: Instant) -> Option<Response<Body>> {
        let wait = self.events_bucket.try_take_at(now).err()?;
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
        r.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(rum::retry_after_secs(wait)),
        );
        Some(r)
    }

    async fn rum(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::POST {
            return method_not_allowed("POST");
        }
        let reject = |why: Rejection| {
            self.metrics.rum_rejected(why.as_str());
            empty(StatusCode::from_u16(why.status()).unwrap_or(StatusCode::BAD_REQUEST))
        };
        if !self.bucket.take() {
            return reject(Rejection::RateLimited);
        }
        let body = match read_limited(req.into_body(), rum::MAX_BODY).await {
            Ok(b) => b,
            Err(true) => return reject(Rejection::TooLarge),
            Err(false) => return reject(Rejection::NotJson),
        };
        match rum::parse(&body) {
            Ok(beacon) => {
                let route = self.routes.template(&beacon.pathname);
                self.metrics
                    .vital(beacon.metric, route, beacon.rating, beacon.value);
                empty(StatusCode::NO_CONTENT)
            }
            Err(why) => reject(why),
        }
    }
}

/// The 503 of a cache operation that failed: a fixed sentence for the client, the detail in the log.
fn unavailable(e: &CacheError, operation: &'static str) -> Response<Body> {
    tracing::warn!(operation, error = %e, "the cache did not answer");
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, e.public_message());
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    r
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn mk_state(now: Instant) -> State {
        State {
            token: Token::new(None),
            cache: Cache::new(&cache::Config {
                url: None,
                username: None,
                password: None,
                prefix: "app".into(),
                timeout: Duration::from_millis(10),
            })
            .unwrap(),
            scope: Scope::default(),
            routes: Routes::new(["/"], "").unwrap(),
            bucket: Bucket::new(rum::BURST, rum::REFILL_PER_SEC, now),
            events_bucket: Bucket::events(now),
            metrics: Arc::new(Metrics::new("test")),
            upstream: Upstream::new(1, tokio::sync::watch::channel(false).1, Duration::ZERO),
        }
    }

    #[test]
    fn reading_events_has_its_own_bucket_and_says_when_to_retry() {
        let t0 = Instant::now();
        let state = mk_state(t0);
        for i in 0..rum::EVENTS_BURST as usize {
            assert!(state.events_rate_limited(t0).is_none(), "read {i}");
        }
        let r = state.events_rate_limited(t0).unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        // 1 / EVENTS_REFILL_PER_SEC seconds to the next token, rounded up.
        let wait = Duration::from_secs_f64(1.0 / rum::EVENTS_REFILL_PER_SEC);
        assert_eq!(
            r.headers()[header::RETRY_AFTER],
            rum::retry_after_secs(wait).to_string()
        );
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        // The RUM beacon's bucket is untouched.
        assert!(state.bucket.take_at(t0));
        // Refilled at the events rate.
        assert!(state.events_rate_limited(t0 + wait).is_none());
        assert!(state.events_rate_limited(t0 + wait).is_some());
    }

    #[tokio::test]
    async fn a_503_names_no_detail() {
        let detail = "Connection refused (os error 111)";
        let r = unavailable(&CacheError::Unavailable(detail.into()), "read events");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
        let Either::Right(body) = r.into_body() else {
            panic!("not one of ours")
        };
        let body = body.collect().await.unwrap().to_bytes();
        assert_eq!(body, r#"{"error":"the cache is unavailable"}"#);
    }

    #[test]
    fn owned_routes_in_any_spelling_and_everything_else_proxied() {
        let routes = Routes::new(["/", "/blog/[slug]"], "").unwrap();
        let scope = Scope::default();
        let who = |p: &str| owner(p, &scope, &routes);
        for (path, handler, route) in [
            (
                "/api/cache/invalidate",
                Handler::cache_invalidate,
                "/api/cache/invalidate",
            ),
            (
                "/api/cache/invalidate/",
                Handler::cache_invalidate,
                "/api/cache/invalidate",
            ),
            (
                "/api/cache/./invalidate",
                Handler::cache_invalidate,
                "/api/cache/invalidate",
            ),
            (
                "/api/x/../cache/invalidate",
                Handler::cache_invalidate,
                "/api/cache/invalidate",
            ),
            (
                "/%61pi/cache/invalidat%65",
                Handler::cache_invalidate,
                "/api/cache/invalidate",
            ),
            ("/api/cache/events", Handler::cache_events, "/api/cache/events"),
            ("/API/rum/", Handler::rum, "/api/rum"),
            ("/api/cache/invalidate%00", Handler::refused, routes::OTHER),
            ("/api/rum%", Handler::refused, routes::OTHER),
            ("/", Handler::proxy, "/"),
            ("/blog/x", Handler::proxy, "/blog/[slug]"),
            ("/api/cache", Handler::proxy, routes::OTHER),
            ("/api/cache/invalidate/x", Handler::proxy, routes::OTHER),
            ("/api/rumx", Handler::proxy, routes::OTHER),
        ] {
            assert_eq!(who(path), (handler, route), "{path}");
        }
    }
}
