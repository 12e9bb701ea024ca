//! The small read-only HTTP servers of knext's processes: health (`/healthz`, `/readyz`, the operator)
//! and metrics (`/metrics`, the operator and `knext serve`). Only GET and HEAD; nothing they serve
//! changes anything.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

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

/// Serves `routes` on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, routes: Routes, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let response = respond(&routes, req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
