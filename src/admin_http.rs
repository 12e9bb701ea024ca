//! The small read-only HTTP servers of knext's processes: health (`/healthz`, `/readyz`, the operator)
//! and metrics (`/metrics`, the operator and `knext serve`). Only GET and HEAD; nothing they serve
//! changes anything.
//!
//! Their clients are the kubelet's probes and Prometheus, so every connection is bounded ([`Limits`]):
//! one request per connection (no keep-alive), its head within [`HEADER_READ_TIMEOUT`], the whole
//! connection within [`MAX_CONNECTION_LIFETIME`], and at most [`MAX_CONNECTIONS`] at once. Past the
//! cap, new connections wait in the listen backlog until one closes ([`accept_capped`]): a client
//! that holds connections open without sending a request ties up slots for the header timeout at
//! most, and a probe queued behind it is answered then, in order, instead of being refused.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How long a client may take to send a request's head (request line and headers) before its
/// connection is closed. Probes and scrapers send theirs at once.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the listen backlog. The clients are a few probes and
/// scrapers.
pub const MAX_CONNECTIONS: usize = 32;
/// Longest a connection may stay open whatever it does (e.g. a client that sends its request, then
/// never reads the answer). Prometheus's default scrape timeout is 10 s.
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// The bounds of a server's connections (the constants above, smaller in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`MAX_CONNECTION_LIFETIME`].
    pub max_connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_connection_lifetime: MAX_CONNECTION_LIFETIME,
        }
    }
}

/// The slots of a connection cap: `max` (at least 1, at most what a semaphore holds).
pub fn connection_slots(max: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS)))
}

/// Accepts the next connection once a slot is free; `None` once `stop` turns true (or its sender is
/// gone). The slot is the caller's until the connection ends: drop it then.
///
/// NB: the slot comes before `accept`, so over the cap nothing is accepted and new connections wait
/// in the kernel's listen backlog, in order: no accept-then-close churn, and a waiting client is
/// served as soon as a slot frees instead of having to retry.
pub async fn accept_capped(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let slot = tokio::select! {
        slot = slots.clone().acquire_owned() => slot.ok()?,
        () = stopped(stop) => return None,
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => return Some((slot, stream, peer)),
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = stopped(stop) => return None,
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// A metrics registry that renders itself in the Prometheus text format.
pub trait Exposition: Send + Sync {
    /// The exposition text.
    fn encode(&self) -> String;
}

/// What the health endpoints report.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Mark the process ready (startup checks passed) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Which server a listener runs.
#[derive(Clone)]
pub enum Routes {
    /// `/healthz` (the process answers) and `/readyz` (startup checks passed; not shutting down).
    Health(Arc<Health>),
    /// `/metrics` in the Prometheus text format.
    Metrics(Arc<dyn Exposition>),
}

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// Answers one request (pure apart from reading the shared state).
pub fn respond(routes: &Routes, method: &Method, path: &str) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if method != Method::GET && method != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match (routes, path) {
        (Routes::Health(_), "/healthz") => text(StatusCode::OK, PLAIN, "ok\n"),
        (Routes::Health(h), "/readyz") if h.is_ready() => text(StatusCode::OK, PLAIN, "ok\n"),
        (Routes::Health(_), "/readyz") => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, "not ready\n"),
        (Routes::Metrics(m), "/metrics") => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            m.encode(),
        ),
        _ => text(StatusCode::NOT_FOUND, PLAIN, "not found\n"),
    }
}

/// Binds `addr` (errors name it).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Serves `routes` on `listener` until `shutdown` turns true, within the default [`Limits`].
pub async fn serve(listener: TcpListener, routes: Routes, shutdown: watch::Receiver<bool>) {
    serve_with(listener, routes, shutdown, Limits::default()).await;
}

/// Serves `routes` on `listener` until `shutdown` turns true, within `limits`.
pub async fn serve_with(
    listener: TcpListener,
    routes: Routes,
    mut shutdown: watch::Receiver<bool>,
    limits: Limits,
) {
    let slots = connection_slots(limits.max_connections);
    while let Some((slot, stream, _)) = accept_capped(&listener, &slots, &mut shutdown).await {
        let routes = routes.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |req: Request<Incoming>| {
                let response = respond(&routes, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.max_connection_lifetime, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
                Err(_) => tracing::debug!("connection closed: open past its lifetime"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use super::*;

    /// Serves `routes` within `limits` on a thread of its own; stops when the sender is dropped.
    fn start(routes: Routes, limits: Limits) -> (SocketAddr, watch::Sender<bool>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                serve_with(listener, routes, stopped, limits).await;
            });
        });
        (addr, stop)
    }

    fn health() -> Routes {
        let h = Arc::new(Health::default());
        h.set_ready(true);
        Routes::Health(h)
    }

    const GET_HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";

    /// Everything the server sends until it closes the connection (a reset counts as a close), or
    /// `None` if it is still open after `within`.
    fn until_closed(s: &mut std::net::TcpStream, within: Duration) -> Option<String> {
        s.set_read_timeout(Some(within)).unwrap();
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("{e}"),
        }
        Some(String::from_utf8_lossy(&got).into_owned())
    }

    #[test]
    fn a_request_head_not_sent_in_time_closes_the_connection() {
        let timeout = Duration::from_millis(300);
        let (addr, _stop) = start(
            health(),
            Limits {
                header_read_timeout: timeout,
                ..Limits::default()
            },
        );
        for (what, sent) in [
            ("nothing", &b""[..]),
            ("half a request line", b"GET /heal"),
            (
                "headers without their end",
                b"GET /healthz HTTP/1.1\r\nhost: x\r\n",
            ),
        ] {
            let started = Instant::now();
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(sent).unwrap();
            let answer = until_closed(&mut s, Duration::from_secs(10))
                .unwrap_or_else(|| panic!("{what}: still open after 10 s"));
            assert!(started.elapsed() >= timeout, "{what}: closed early");
            assert!(!answer.contains(" 200 "), "{what}: {answer}");
        }
    }

    #[test]
    fn one_request_per_connection() {
        // An idle connection would be closed at the header timeout: make that longer than the wait.
        let (addr, _stop) = start(
            health(),
            Limits {
                header_read_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
        );
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(GET_HEALTHZ).unwrap();
        let answer = until_closed(&mut s, Duration::from_secs(10)).expect("kept open after the answer");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close\r\n"),
            "{answer}"
        );
    }

    #[test]
    fn connections_past_the_cap_wait_and_are_served_once_one_closes() {
        let (addr, _stop) = start(
            health(),
            Limits {
                max_connections: 2,
                header_read_timeout: Duration::from_secs(60),
                max_connection_lifetime: Duration::from_secs(60),
            },
        );
        // Two silent connections take both slots (the listen backlog is first in, first out).
        let held: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let mut waiting = std::net::TcpStream::connect(addr).unwrap();
        waiting.write_all(GET_HEALTHZ).unwrap();
        assert_eq!(
            until_closed(&mut waiting, Duration::from_millis(300)),
            None,
            "answered past the cap"
        );
        drop(held);
        let answer = until_closed(&mut waiting, Duration::from_secs(10)).expect("never answered");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let mut next = std::net::TcpStream::connect(addr).unwrap();
        next.write_all(GET_HEALTHZ).unwrap();
        let answer = until_closed(&mut next, Duration::from_secs(10)).expect("never answered");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }

    #[test]
    fn a_client_that_never_reads_its_answer_loses_the_connection_at_its_lifetime() {
        /// An exposition far larger than the loopback socket buffers hold.
        struct Huge;
        impl Exposition for Huge {
            fn encode(&self) -> String {
                "#".repeat(64 << 20)
            }
        }
        let lifetime = Duration::from_millis(300);
        let (addr, _stop) = start(
            Routes::Metrics(Arc::new(Huge)),
            Limits {
                max_connections: 1,
                header_read_timeout: Duration::from_secs(60),
                max_connection_lifetime: lifetime,
            },
        );
        let started = Instant::now();
        let mut stuck = std::net::TcpStream::connect(addr).unwrap();
        stuck
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        // The only slot is the stuck one's until its lifetime ends; then this one is answered.
        let mut next = std::net::TcpStream::connect(addr).unwrap();
        next.write_all(b"GET /other HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let answer = until_closed(&mut next, Duration::from_secs(10)).expect("never answered");
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
        assert!(started.elapsed() >= lifetime);
        drop(stuck);
    }

    #[test]
    fn health_and_metrics_answer_gets_and_refuse_everything_else() {
        let health = Arc::new(Health::default());
        let h = Routes::Health(health.clone());
        assert_eq!(respond(&h, &Method::GET, "/healthz").status(), StatusCode::OK);
        assert_eq!(
            respond(&h, &Method::GET, "/readyz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(respond(&h, &Method::GET, "/readyz").status(), StatusCode::OK);
        let post = respond(&h, &Method::POST, "/healthz");
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
        assert_eq!(
            respond(&h, &Method::GET, "/metrics").status(),
            StatusCode::NOT_FOUND
        );

        struct Fixed;
        impl Exposition for Fixed {
            fn encode(&self) -> String {
                "up 1\n".to_owned()
            }
        }
        let m = Routes::Metrics(Arc::new(Fixed));
        let r = respond(&m, &Method::GET, "/metrics");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        assert_eq!(
            respond(&m, &Method::DELETE, "/metrics").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
