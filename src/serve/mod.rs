//! `knext serve`: the hardened entrypoint of app containers.
//!
//! It starts the Next.js server (the command after `--`) on loopback (`PORT`, `HOSTNAME=127.0.0.1`)
//! and sits in front of it on `--listen`: the routes it owns ([`app`]: authenticated cache
//! invalidation against the fleet's Redis, the cache event log, the RUM beacon) are answered here and
//! never forwarded; everything else streams through the reverse proxy ([`proxy`]). Prometheus metrics
//! are served on `--metrics-addr` ([`metrics`]).
//!
//! Client connections are bounded: a request's head must arrive within `--header-read-timeout-secs`
//! (a kept-alive connection idle that long is closed too), and at most `--max-connections` are served
//! at once ([`default_max_connections`]: what the open-files limit leaves room for); more wait in the
//! listen backlog until one closes. Bodies and responses are not timed: uploads and streams last as
//! long as they need.
//!
//! Shutdown on SIGTERM or SIGINT: stop accepting connections, forward SIGTERM to the child (Next.js
//! drains its requests and runs its `after()` callbacks), let in-flight proxied requests finish, then
//! close the metrics server and exit with the child's status, where 143 (128 + SIGTERM: Next.js exits
//! so after a clean drain) counts as 0 (`drained_code`). `KNEXT_SHUTDOWN_GRACE_MS` (the renderer
//! injects it below the pod's grace period; default 25000) caps the whole sequence: past it the child
//! is killed and the exit code is 1. A second signal changes nothing. A child that exits on its own
//! ends `knext serve` with its status (128 + signal when killed by one): the pod restarts, knext
//! serve never restarts the child behind the platform's back.

pub mod app;
pub mod auth;
pub mod cache;
pub mod child;
pub mod metrics;
pub mod path;
pub mod proxy;
pub mod routes;
pub mod rum;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use nix::sys::signal::Signal;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin_http;
use crate::api::serve as defaults;

/// Default hard cap of a graceful shutdown when `KNEXT_SHUTDOWN_GRACE_MS` is unset.
/// The renderer's full cap ([`crate::api::drain::FULL_CAP_MS`]), so an unrendered container behaves as
/// a rendered one with a long timeout.
pub const DEFAULT_SHUTDOWN_GRACE: Duration =
    Duration::from_millis(crate::api::drain::FULL_CAP_MS.unsigned_abs());

/// Ceiling of the default connection cap ([`default_max_connections`]).
pub const MAX_CONNECTIONS_CEILING: usize = 4096;

/// File descriptors kept out of the connection budget: the metrics server's connections
/// ([`admin_http::MAX_CONNECTIONS`]) and 32 for the rest (stdio, listeners, Redis, the runtime's own).
pub const FD_RESERVE: u64 = admin_http::MAX_CONNECTIONS as u64 + 32;

/// The connection cap when `--max-connections` is not given: two descriptors per connection (the
/// client's and, while a request is proxied, the upstream's), after [`FD_RESERVE`], out of the soft
/// open-files limit `nofile`; at most [`MAX_CONNECTIONS_CEILING`], at least 1. A connection refused
/// for want of a descriptor would fail (a 502, or an accept error); under the cap it waits instead.
/// Without a known limit: the ceiling.
pub fn default_max_connections(nofile: Option<u64>) -> usize {
    nofile.map_or(MAX_CONNECTIONS_CEILING, |n| {
        let budget = n.saturating_sub(FD_RESERVE) / 2;
        usize::try_from(budget)
            .unwrap_or(usize::MAX)
            .clamp(1, MAX_CONNECTIONS_CEILING)
    })
}

/// The soft open-files limit of this process.
fn nofile_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _hard)| soft)
}

/// A port of [`crate::api::serve`] (i32, as Kubernetes types have it) as a socket port.
const fn port(p: i32) -> u16 {
    // The constants are small positive numbers.
    p as u16
}

/// `0.0.0.0:<p>`.
const fn all_interfaces(p: i32) -> SocketAddr {
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), port(p))
}

/// Options of `knext serve` (the defaults are the ports the renderers assume, [`crate::api::serve`]).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Where to accept requests (the Knative container port).
    #[arg(long, default_value_t = all_interfaces(defaults::LISTEN_PORT), value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The loopback port the Next.js server listens on (its PORT).
    #[arg(long, default_value_t = port(defaults::UPSTREAM_PORT), value_name = "PORT")]
    pub upstream_port: u16,
    /// Where to serve Prometheus metrics (`/metrics`). Not 9091: Knative's queue-proxy binds it in
    /// the same pod.
    #[arg(long, default_value_t = all_interfaces(defaults::METRICS_PORT), value_name = "ADDR")]
    pub metrics_addr: SocketAddr,
    /// How long a request may wait for the Next.js server to start accepting connections (then 503).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub upstream_wait_secs: u64,
    /// How long a client may take to send a request's head (request line and headers); a kept-alive
    /// connection idle that long between requests is closed too.
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub header_read_timeout_secs: u64,
    /// Most client connections served at once; more wait in the listen backlog until one closes.
    /// Default: what the open-files limit leaves room for (two descriptors a connection), at most 4096.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Threads serving requests (1: a single-threaded runtime).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// Next.js routes manifest whose routes label metrics (read if it exists).
    #[arg(long, default_value = ".next/routes-manifest.json", value_name = "FILE")]
    pub routes_manifest: PathBuf,
    /// Another route pattern for metric labels (`/blog/[slug]`, `/docs/[...path]`); repeatable.
    #[arg(long = "route", value_name = "PATTERN")]
    pub extra_routes: Vec<String>,
    /// The Next.js server's command and arguments (after `--`), e.g. `-- node server.js`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `knext serve`; returns the exit code.
pub fn main(args: Args) -> ExitCode {
    crate::logs::init();
    // One thread by default: the container's CPU belongs to Next.js, and a single-threaded runtime
    // spends the least CPU per proxied request (no cross-thread wake-ups; see BENCHMARKS.md).
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run(args));
    // Do not wait for lingering connection tasks.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

/// The shutdown cap from `KNEXT_SHUTDOWN_GRACE_MS`.
fn shutdown_grace() -> Result<Duration, String> {
    match std::env::var(defaults::ENV_SHUTDOWN_GRACE_MS) {
        Err(_) => Ok(DEFAULT_SHUTDOWN_GRACE),
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| {
                format!(
                    "{} must be a positive number of milliseconds, not {v:?}",
                    defaults::ENV_SHUTDOWN_GRACE_MS
                )
            }),
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, u8> {
    admin_http::bind(addr).await.map_err(|e| {
        tracing::error!("{e}");
        2
    })
}

async fn run(args: Args) -> u8 {
    let grace = match shutdown_grace() {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("{e}");
            return 2;
        }
    };
    let routes = match routes::Routes::load(&args.routes_manifest, &args.extra_routes) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return 2;
        }
    };
    let cache = match cache::Cache::new(&cache::Config::from_env()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return 2;
        }
    };
    let token = auth::Token::from_env(defaults::ENV_INVALIDATE_TOKEN);
    if !token.is_set() {
        tracing::warn!(
            "{} is not set: every cache invalidation is refused (401)",
            defaults::ENV_INVALIDATE_TOKEN
        );
    }
    // Named, never shown: not the token, not its length.
    if token.has_surrounding_whitespace() {
        tracing::warn!(
            "{} has leading or trailing whitespace (often the newline `echo` adds when the Secret \
             is made): it is used as is, so invalidations that present the token without it are \
             refused (401); recreate the Secret without it (printf '%s', or kubectl create secret \
             --from-literal)",
            defaults::ENV_INVALIDATE_TOKEN
        );
    }
    if !cache.is_configured() {
        tracing::warn!("REDIS_URL is not set: cache invalidation and events answer 503");
    }
    let listener = match bind(args.listen).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    let metrics_listener = match bind(args.metrics_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };

    let app_name = std::env::var("KN_APP_NAME").unwrap_or_else(|_| "unknown".to_owned());
    let metrics = Arc::new(metrics::Metrics::new(&app_name));
    let (metrics_stop, metrics_stopped) = watch::channel(false);
    let metrics_task = tokio::spawn(admin_http::serve(
        metrics_listener,
        admin_http::Routes::Metrics(metrics.clone()),
        metrics_stopped,
    ));

    // Before the child exists: a SIGTERM from now on starts the graceful sequence.
    let (mut term, mut int) = match signals() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            let _ = metrics_stop.send(true);
            return 2;
        }
    };
    // The child: loopback only, without the invalidation token (it is knext serve's, not the app's).
    let started = Instant::now();
    let child = match child::AppServer::spawn(
        &args.command,
        args.upstream_port,
        &[defaults::ENV_INVALIDATE_TOKEN],
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(command = ?args.command, error = %e, "cannot start the app server");
            let _ = metrics_stop.send(true);
            return 2;
        }
    };
    let limits = Limits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        max_connections: args.max_connections.map_or_else(
            || default_max_connections(nofile_limit()),
            |n| usize::try_from(n).unwrap_or(usize::MAX),
        ),
    };
    tracing::info!(
        listen = %args.listen,
        metrics = %args.metrics_addr,
        upstream_port = args.upstream_port,
        command = ?args.command,
        routes = routes.len(),
        max_connections = limits.max_connections,
        header_read_timeout_secs = args.header_read_timeout_secs,
        "knext serve started"
    );

    let (ready_tx, ready_rx) = watch::channel(false);
    let probe = tokio::spawn(probe_child(
        args.upstream_port,
        ready_tx,
        metrics.clone(),
        started,
    ));
    let state = Arc::new(app::State {
        token,
        cache,
        scope: routes.scope(),
        routes,
        bucket: rum::Bucket::default(),
        events_bucket: rum::Bucket::events(Instant::now()),
        metrics: metrics.clone(),
        upstream: proxy::Upstream::new(
            args.upstream_port,
            ready_rx,
            Duration::from_secs(args.upstream_wait_secs),
        ),
    });

    let (stop_accepting, accepting) = watch::channel(false);
    let accept_task = tokio::spawn(accept_loop(listener, state, accepting, limits));

    // Phase 1: serve until a signal or the child's own exit.
    let early_exit = tokio::select! {
        code = child.wait() => Some(code),
        _ = term.recv() => None,
        _ = int.recv() => None,
    };
    probe.abort();
    let _ = stop_accepting.send(true);
    // The listener closes here: new connections are refused from now on.
    let graceful = accept_task.await.ok();

    let code = match early_exit {
        Some(code) => {
            metrics.child_exited();
            tracing::warn!(code, "the app server exited on its own; stopping");
            // Connections to a dead child end at once; do not wait for them.
            drop(graceful);
            code
        }
        None => drain(&child, graceful, grace, &metrics, &mut term, &mut int).await,
    };
    // Last: the metrics server (scrapes see the drain to the end).
    let _ = metrics_stop.send(true);
    let _ = metrics_task.await;
    tracing::info!(code, "knext serve stopped");
    code
}

/// The graceful part of a shutdown: SIGTERM to the child, wait for it and for in-flight requests,
/// bounded by `grace` (measured from the signal). Returns the exit code.
async fn drain(
    child: &child::AppServer,
    graceful: Option<GracefulShutdown>,
    grace: Duration,
    metrics: &metrics::Metrics,
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
) -> u8 {
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: draining");
    child.signal(Signal::SIGTERM);
    let connections = async {
        if let Some(g) = graceful {
            g.shutdown().await;
        }
    };
    {
        let both = async {
            let (code, ()) = tokio::join!(child.wait(), connections);
            code
        };
        tokio::pin!(both);
        loop {
            tokio::select! {
                code = &mut both => {
                    metrics.child_exited();
                    tracing::info!(code, "drained");
                    return drained_code(code);
                }
                _ = term.recv() => tracing::info!("signal during shutdown ignored: already draining"),
                _ = int.recv() => tracing::info!("signal during shutdown ignored: already draining"),
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
    }
    tracing::error!(
        grace_ms = grace.as_millis() as u64,
        "drain exceeded the cap: killing the app server"
    );
    child.signal(Signal::SIGKILL);
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    metrics.child_exited();
    1
}

/// The exit code of `knext serve` for a child that exited with `code` after the SIGTERM `knext serve`
/// sent it. Node.js servers report a shutdown on SIGTERM as 128 + 15 even when it drained cleanly
/// (Next.js 16: `process.exit(143)` in `next/dist/server/lib/start-server.js`), and a child the
/// signal killed reads the same: either is the end `knext serve` asked for, so 0. Anything else is
/// the child's own status.
fn drained_code(code: u8) -> u8 {
    if i32::from(code) == 128 + Signal::SIGTERM as i32 {
        0
    } else {
        code
    }
}

fn signals() -> std::io::Result<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{SignalKind, signal};
    Ok((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
}

/// Polls the child's port until it accepts a connection, then marks the upstream ready.
async fn probe_child(
    port: u16,
    ready: watch::Sender<bool>,
    metrics: Arc<metrics::Metrics>,
    started: Instant,
) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr)).await
        {
            let seconds = started.elapsed().as_secs_f64();
            metrics.child_ready(seconds);
            tracing::info!(
                ms = (seconds * 1000.0) as u64,
                "the app server accepts connections"
            );
            let _ = ready.send(true);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bounds of client connections.
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    max_connections: usize,
}

/// Accepts connections until told to stop; returns the watcher of the open ones.
async fn accept_loop(
    listener: TcpListener,
    state: Arc<app::State>,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let slots = admin_http::connection_slots(limits.max_connections);
    loop {
        let Some((slot, stream, peer)) = admin_http::accept_capped(&listener, &slots, &mut stop).await else {
            return graceful;
        };
        let _ = stream.set_nodelay(true);
        let handler_state = state.clone();
        let service = service_fn(move |req: hyper::Request<Incoming>| {
            let state = handler_state.clone();
            async move { Ok::<_, Infallible>(state.handle(req, peer).await) }
        });
        // NB: hyper starts the header timer when a connection opens and again whenever a kept-alive
        // one goes idle, so this bounds idle connections as well. No timeout on bodies: uploads and
        // streamed answers take as long as they take.
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        let open = state.metrics.connection();
        tokio::spawn(async move {
            let _open = open;
            let _slot = slot;
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Serve(Args),
    }

    fn parse(argv: &[&str]) -> Args {
        match Cli::try_parse_from(std::iter::once("knext").chain(argv.iter().copied())) {
            Ok(Cli {
                command: Sub::Serve(a),
            }) => a,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_rendered_container_command_is_what_the_defaults_are() {
        let rendered = crate::render::app::serve_command();
        assert_eq!(rendered[0], defaults::BINARY);
        let mut argv: Vec<&str> = rendered[1..].iter().map(String::as_str).collect();
        argv.extend(defaults::NODE_COMMAND);
        let from_manifest = parse(&argv);
        let from_defaults = parse(&["serve", "--", "node", "server.js"]);
        assert_eq!(from_manifest.listen, from_defaults.listen);
        assert_eq!(from_manifest.metrics_addr, from_defaults.metrics_addr);
        assert_eq!(from_manifest.upstream_port, from_defaults.upstream_port);
        assert_eq!(from_manifest.command, ["node", "server.js"]);
        assert_eq!(from_defaults.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(from_defaults.metrics_addr.to_string(), "0.0.0.0:9464");
        assert_eq!(from_defaults.upstream_port, 3000);
        assert_eq!(from_defaults.threads, 1);
    }

    #[test]
    fn the_default_connection_cap_fits_the_open_files_limit() {
        for (nofile, cap) in [
            // Docker's and containerd's default soft limit: (1024 - 64) / 2.
            (Some(1024), 480),
            (Some(FD_RESERVE + 2 * 100 + 1), 100),
            (Some(65_536), MAX_CONNECTIONS_CEILING),
            (Some(u64::MAX), MAX_CONNECTIONS_CEILING),
            // No room at all: still one connection, never zero (that would accept nothing).
            (Some(FD_RESERVE), 1),
            (Some(0), 1),
            (None, MAX_CONNECTIONS_CEILING),
        ] {
            assert_eq!(default_max_connections(nofile), cap, "{nofile:?}");
        }
        assert_eq!(FD_RESERVE, 64);
        // This process's own limit is known on Linux.
        assert!(nofile_limit().is_some());
    }

    #[test]
    fn connection_bounds_are_flags_with_safe_defaults() {
        let a = parse(&["serve", "--", "node", "server.js"]);
        assert_eq!((a.header_read_timeout_secs, a.max_connections), (30, None));
        let a = parse(&[
            "serve",
            "--header-read-timeout-secs",
            "2",
            "--max-connections",
            "8",
            "--",
            "node",
        ]);
        assert_eq!((a.header_read_timeout_secs, a.max_connections), (2, Some(8)));
        for zero in ["--header-read-timeout-secs", "--max-connections"] {
            assert!(
                Cli::try_parse_from(["knext", "serve", zero, "0", "--", "node"]).is_err(),
                "{zero} 0"
            );
        }
    }

    #[test]
    fn a_child_ending_on_our_sigterm_is_a_clean_drain() {
        assert_eq!(drained_code(143), 0);
        assert_eq!(drained_code(0), 0);
        assert_eq!(drained_code(1), 1);
        assert_eq!(drained_code(137), 137);
        assert_eq!(drained_code(130), 130);
    }

    #[test]
    fn the_child_command_comes_after_the_double_dash_and_is_required() {
        let a = parse(&[
            "serve",
            "--route",
            "/x/[y]",
            "--",
            "node",
            "--inspect=0",
            "server.js",
        ]);
        assert_eq!(a.command, ["node", "--inspect=0", "server.js"]);
        assert_eq!(a.extra_routes, ["/x/[y]"]);
        assert!(Cli::try_parse_from(["knext", "serve"]).is_err());
    }
}
