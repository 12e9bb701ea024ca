//! `knext operator` as a process, against a small fake API server on loopback (a real HTTP server,
//! not the in-process mock): the startup checks fail fast and clearly; a healthy start serves
//! `/healthz`, `/readyz` and `/metrics`, takes the leader-election Lease, and on SIGTERM releases it
//! and exits 0.

#![cfg(feature = "operator")]
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fake_api::{Cluster, FakeApiServer, free_addr, kubeconfig};

fn free_port() -> u16 {
    free_addr().port()
}

fn operator(kubeconfig: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_knext"))
        .arg("operator")
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KNEXT_POD_NAMESPACE")
        .env("KNEXT_POD_NAME", "operator-test")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the child's exit (at most `limit`), returning its code and stderr.
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return (status.code(), err, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("knext operator still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text.split_once("\r\n\r\n")?.1.to_owned()))
}

#[test]
fn a_missing_crd_exits_1_naming_the_server_and_the_install_command() {
    let api = FakeApiServer::start(Cluster::NoCrd);
    let dir = tempfile::tempdir().unwrap();
    let child = operator(&kubeconfig(dir.path(), &api.url()), &[]);
    let (code, err, took) = finish(child, Duration::from_secs(40));
    assert_eq!(code, Some(1), "{err}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        err.contains("knext crd | kubectl apply --server-side -f -"),
        "{err}"
    );
    assert!(err.contains(&format!("127.0.0.1:{}", api.port)), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_unreachable_api_server_exits_1_naming_it() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = operator(&kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}")), &[]);
    let (code, err, took) = finish(child, Duration::from_secs(40));
    assert_eq!(code, Some(1), "{err}");
    assert!(took < Duration::from_secs(31), "{took:?}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("did not answer"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn it_serves_health_and_metrics_leads_and_releases_the_lease_on_sigterm() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let api = FakeApiServer::start(Cluster::Empty);
    let dir = tempfile::tempdir().unwrap();
    let (metrics, health) = (free_port(), free_port());
    let child = operator(
        &kubeconfig(dir.path(), &api.url()),
        &[
            "--leader-elect",
            &format!("--metrics-addr=127.0.0.1:{metrics}"),
            &format!("--health-addr=127.0.0.1:{health}"),
        ],
    );
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = get(health, "/readyz").is_some_and(|(c, _)| c == 200);
        let leading = get(metrics, "/metrics").is_some_and(|(_, m)| m.contains("knext_operator_leader 1"));
        if ready && leading {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready and leading in time: {:#?}",
            api.seen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(health, "/healthz").map(|(c, _)| c), Some(200));
    // The controller watches NextApps and its children.
    std::thread::sleep(Duration::from_millis(500));
    let seen = api.seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "POST" && s.target.contains("/leases")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().any(
            |s| s.target.starts_with("/apis/apps.kn-next.dev/v1alpha1/nextapps")
                && s.target.contains("watch")
        ),
        "{seen:#?}"
    );

    kill(pid, Signal::SIGTERM).unwrap();
    let (code, err, took) = finish(child, Duration::from_secs(25));
    assert_eq!(code, Some(0), "{err}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    let release = api
        .seen()
        .into_iter()
        .rev()
        .find(|s| s.method == "PUT" && s.target.contains("/leases/knext-operator-leader"))
        .unwrap_or_else(|| panic!("the lease was never updated: {err}"));
    let body: serde_json::Value = serde_json::from_str(&release.body).unwrap();
    assert!(
        body["spec"]
            .get("holderIdentity")
            .is_none_or(serde_json::Value::is_null),
        "{body}"
    );
    assert!(err.contains("released the lease"), "{err}");
    // Structured logs: every line is a JSON object.
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[test]
fn it_reconciles_every_listed_nextapp_and_writes_its_status() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let api = FakeApiServer::start(Cluster::Apps(3));
    let dir = tempfile::tempdir().unwrap();
    let child = operator(
        &kubeconfig(dir.path(), &api.url()),
        &[
            &format!("--metrics-addr=127.0.0.1:{}", free_port()),
            &format!("--health-addr=127.0.0.1:{}", free_port()),
        ],
    );
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(15);
    while api.status_writes() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(pid, Signal::SIGTERM).unwrap();
    let (code, err, _) = finish(child, Duration::from_secs(25));
    assert_eq!(
        api.status_writes(),
        3,
        "{err}\n{:#?}",
        api.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect::<Vec<_>>()
    );
    assert_eq!(code, Some(0), "{err}");
    let applies = api
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH" && s.target.contains("fieldManager=knext-operator"))
        .count();
    assert_eq!(applies, 3 * 4, "3 objects and a status per app");
}
