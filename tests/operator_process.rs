//! `knext operator` as a process, against a small fake API server on loopback (a real HTTP server,
//! not the in-process mock): the startup checks fail fast and clearly; a healthy start serves
//! `/healthz`, `/readyz` and `/metrics`, takes the leader-election Lease, and on SIGTERM releases it
//! and exits 0.

#![cfg(feature = "operator")]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the fake server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    body: String,
}

/// How the fake API server answers.
#[derive(Clone, Copy, PartialEq)]
enum Cluster {
    /// The NextApp CRD is missing: listing NextApps is 404.
    NoCrd,
    /// Everything is installed and empty.
    Empty,
}

struct FakeApiServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApiServer {
    fn start(cluster: Cluster) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let lease = Arc::new(Mutex::new(None::<String>));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, lease) = (log.clone(), lease.clone());
                std::thread::spawn(move || serve(stream, cluster, &log, &lease));
            }
        });
        Self { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, cluster: Cluster, log: &Mutex<Vec<Seen>>, lease: &Mutex<Option<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        log.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            body: body.clone(),
        });
        let path = target.split('?').next().unwrap_or("");
        if target.contains("watch=true") || target.contains("watch=1") {
            // A watch that never sends an event: hold the connection until the client goes away.
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            let _ = out.flush();
            let mut sink = [0; 64];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
            return;
        }
        let (status, reply) = answer(cluster, &method, path, &body, lease);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(reply.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}

fn answer(
    cluster: Cluster,
    method: &str,
    path: &str,
    body: &str,
    lease: &Mutex<Option<String>>,
) -> (&'static str, String) {
    let not_found = || {
        (
            "404 Not Found",
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"}"#.to_owned(),
        )
    };
    if path == "/version" {
        return ("200 OK", r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#.to_owned());
    }
    if path.contains("/leases") {
        let mut lease = lease.lock().unwrap();
        return match method {
            "GET" => lease.clone().map_or_else(not_found, |l| ("200 OK", l)),
            "POST" | "PUT" => {
                let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
                v["metadata"]["resourceVersion"] = "1".into();
                let stored = v.to_string();
                *lease = Some(stored.clone());
                (if method == "POST" { "201 Created" } else { "200 OK" }, stored)
            }
            _ => not_found(),
        };
    }
    if cluster == Cluster::NoCrd && path.contains("/apis/apps.kn-next.dev/") {
        return not_found();
    }
    if method == "GET" {
        return (
            "200 OK",
            r#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[]}"#.to_owned(),
        );
    }
    not_found()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
             users:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    \
             user: nobody\n    namespace: knext-system\ncurrent-context: fake\n"
        ),
    )
    .unwrap();
    path
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
