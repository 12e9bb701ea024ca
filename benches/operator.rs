//! Reconcile planning cost and the reconciler's memory, for `KNEXT_BENCH_APPS` NextApps (default 1000).
//!
//! 1. **Planning** (what each reconcile computes besides API calls): validate → render with owner
//!    references → decide what may be applied (ownership of the three child names, all free here) →
//!    serialize every object for server-side apply → compute the status → compare it with the live
//!    one (the "diff" that decides whether to write). Baseline, same process: decoding
//!    the same NextApps from JSON, which the watcher does for every one anyway. Median of
//!    `KNEXT_BENCH_RUNS` runs (default 7).
//! 2. **Memory**: the real controller (`knext::operator::build_controller` + `reconcile`) against kube's
//!    tower-test mock API, which lists N NextApps, answers 404 to every GET of a child's name (all
//!    free), answers every apply and status write, and holds every watch open. Once every NextApp has been reconciled (N status writes), the process's
//!    resident set (VmRSS) and peak (VmHWM) are read from /proc/self/status, next to the same figures
//!    before the controller started.
//!
//! 3. **The operator process**: the knext binary (`knext operator`, with the allocator settings of the
//!    install bundle's Deployment, `api::operator::ALLOCATOR_ENV`) against a loopback fake API server
//!    (`tests/support/fake_api.rs`, another thread of this process) that lists N NextApps: its own
//!    VmRSS and VmHWM from /proc/<pid>/status once it has written N statuses, then SIGTERM.
//!
//! Run: `cargo bench --bench operator` (figures in BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../tests/support/fake_api.rs"]
mod fake_api;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::jiff::Timestamp;
use knext::api::NextApp;
use knext::operator::ownership::{self, Child, Holders};
use knext::operator::{metrics::Metrics, reconcile, status};
use knext::render::{self, RenderOptions};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

// The same allocator as the knext binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn apps_json(n: usize) -> Vec<Value> {
    (0..n).map(app_json).collect()
}

fn app_json(i: usize) -> Value {
    json!({
        "apiVersion": "apps.kn-next.dev/v1alpha1",
        "kind": "NextApp",
        "metadata": {
            "name": format!("app-{i:05}"),
            "namespace": format!("team-{:02}", i % 40),
            "uid": format!("00000000-0000-4000-8000-{i:012}"),
            "generation": 1,
            "resourceVersion": format!("{}", 100 + i),
        },
        "spec": {
            "image": format!("registry.example.com/team/app-{i:05}@sha256:{:064x}", (i as u128 + 1) * 0x9e37_79b9),
            "scaling": {"minScale": i % 3, "maxScale": 10},
            "env": {"LOG_LEVEL": "info"},
        },
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// validate → render (owner refs) → JSON bodies → status → compare; returns a checksum so nothing is
/// optimised away.
fn plan(apps: &[NextApp], now: Timestamp) -> usize {
    let mut bytes = 0;
    for app in apps {
        let (valid, _) = knext::policy::validate(app).unwrap();
        let uid = app.metadata.uid.as_deref();
        let manifests = render::app(
            &valid,
            &RenderOptions {
                owner_uid: uid,
                ..RenderOptions::default()
            },
        );
        let rendered: Vec<Child> = manifests.iter().filter_map(Child::of).collect();
        let plan = ownership::plan(valid.name(), valid.namespace(), &rendered, &Holders::absent());
        for m in manifests
            .iter()
            .filter(|m| Child::of(m).is_some_and(|c| plan.applies(c)))
        {
            bytes += serde_json::to_vec(&m.to_json().unwrap()).unwrap().len();
        }
        let verdict = status::applied(app, &status::Observed::default(), now);
        bytes += usize::from(app.status.as_ref() != Some(&verdict.status));
    }
    bytes
}

fn planning(n: usize, runs: usize) {
    let docs = apps_json(n);
    let text = serde_json::to_string(&docs).unwrap();
    let decode = || serde_json::from_str::<Vec<NextApp>>(&text).unwrap();
    let apps = decode();
    let now = Timestamp::now();
    let mut base = Vec::new();
    let mut work = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(decode());
        base.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(plan(&apps, now));
        work.push(t.elapsed());
    }
    let (base, work) = (median(base), median(work));
    println!(
        "planning {n} NextApps (validate + render + SSA bodies + status + compare): {:.1} ms ({:.1} µs/app); \
         decoding them from JSON (baseline): {:.1} ms; ratio {:.1}x",
        ms(work),
        work.as_secs_f64() * 1e6 / n as f64,
        ms(base),
        work.as_secs_f64() / base.as_secs_f64()
    );
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Whether `uri` names one object (`…/namespaces/<ns>/<resource>/<name>`), not a collection.
fn is_named(uri: &str) -> bool {
    let path = uri.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    segments
        .iter()
        .position(|s| *s == "namespaces")
        .is_some_and(|i| segments.len() == i + 4)
}

fn respond(send: tower_test::mock::SendResponse<Response<Body>>, body: &Value) {
    send.send_response(
        Response::builder()
            .status(StatusCode::OK)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap(),
    );
}

async fn memory(n: usize) {
    // The mock's side first (the list it serves), so the "before" figures include it.
    let mut list = br#"{"apiVersion":"apps.kn-next.dev/v1alpha1","kind":"NextAppList","metadata":{"resourceVersion":"1"},"items":["#.to_vec();
    for i in 0..n {
        if i > 0 {
            list.push(b',');
        }
        list.extend(serde_json::to_vec(&app_json(i)).unwrap());
    }
    list.extend(b"]}");
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let status_writes = Arc::new(AtomicUsize::new(0));
    let writes = status_writes.clone();
    let (rss0, hwm0) = (proc_status_kib("VmRSS:"), proc_status_kib("VmHWM:"));
    tokio::spawn(async move {
        let mut open_watches = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let uri = request.uri().to_string();
            let method = request.method().clone();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            if uri.contains("watch=true") {
                open_watches.push(send); // never answered: the watch stays open
            } else if method == http::Method::GET && uri.contains("/nextapps?") {
                send.send_response(
                    Response::builder()
                        .status(StatusCode::OK)
                        .body(Body::from(list.clone()))
                        .unwrap(),
                );
            } else if method == http::Method::GET && !uri.contains("watch=") && is_named(&uri) {
                // A child's name (metadata-only GET) or a Revision: free.
                send.send_response(
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Body::from(
                            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#
                                .to_vec(),
                        ))
                        .unwrap(),
                );
            } else if method == http::Method::GET {
                respond(
                    send,
                    &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}),
                );
            } else {
                let mut echo: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if uri.contains("/status?") {
                    writes.fetch_add(1, Ordering::Relaxed);
                }
                echo["metadata"]["generation"] = json!(1);
                respond(send, &echo);
            }
        }
    });
    let ctx = Arc::new(reconcile::Context::new(
        client.clone(),
        Arc::new(Metrics::new()),
        None,
    ));
    let started = Instant::now();
    let controller = knext::operator::build_controller(&client, None)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|_| async {});
    let mut controller = std::pin::pin!(controller);
    loop {
        tokio::select! {
            () = &mut controller => panic!("the controller stopped"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        if status_writes.load(Ordering::Relaxed) >= n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not every NextApp was reconciled"
        );
    }
    let took = started.elapsed();
    let (rss, hwm) = (proc_status_kib("VmRSS:"), proc_status_kib("VmHWM:"));
    println!(
        "controller holding {n} NextApps, all reconciled once against the mock API in {:.0} ms: \
         RSS {:.1} MiB (peak {:.1} MiB); before the controller: RSS {:.1} MiB (peak {:.1} MiB); \
         growth {:.1} MiB",
        ms(took),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss0 as f64 / 1024.0,
        hwm0 as f64 / 1024.0,
        (rss.saturating_sub(rss0)) as f64 / 1024.0
    );
}

/// The knext binary itself against the fake API server (a separate process, so the figures are the
/// operator's alone): peak RSS once it has reconciled every NextApp.
fn process_memory(n: usize) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let api = fake_api::FakeApiServer::start(fake_api::Cluster::Apps(n));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake_api::kubeconfig(dir.path(), &api.url());
    let free = fake_api::free_addr;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_knext"))
        .args([
            "operator",
            &format!("--metrics-addr={}", free()),
            &format!("--health-addr={}", free()),
        ])
        .env("KUBECONFIG", &kubeconfig)
        // The allocator settings the install bundle's Deployment sets, unless the caller overrides them.
        .envs(
            knext::api::operator::ALLOCATOR_ENV
                .into_iter()
                .filter(|(k, _)| std::env::var_os(k).is_none()),
        )
        .env(
            "RUST_LOG",
            std::env::var("KNEXT_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(if std::env::var_os("KNEXT_BENCH_LOG").is_some() {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        })
        .spawn()
        .unwrap();
    let started = Instant::now();
    while api.status_writes() < n {
        if started.elapsed() > Duration::from_secs(120) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("knext operator reconciled only {} of {n}", api.status_writes());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
            / 1024.0
    };
    let (rss, hwm) = (field("VmRSS:"), field("VmHWM:"));
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), Signal::SIGTERM).unwrap();
    let exit = child.wait().unwrap();
    println!(
        "knext operator process, {n} NextApps listed and reconciled through a loopback fake API server in \
         {:.0} ms: RSS {rss:.1} MiB, peak {hwm:.1} MiB; SIGTERM exit {:?}",
        ms(took),
        exit.code()
    );
}

fn main() {
    let n: usize = std::env::var("KNEXT_BENCH_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runs: usize = std::env::var("KNEXT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    // Memory first, so the planning run's allocations do not inflate the peak.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(memory(n));
    drop(runtime);
    process_memory(n);
    planning(n, runs.max(1));
}
