//! A small fake Kubernetes API server on loopback for process-level tests and the operator benchmark:
//! a real HTTP/1.1 server (threads, keep-alive), not the in-process mock. It answers `/version`,
//! lists (NextApps per [`Cluster`], everything else empty), holds watches open, stores one Lease,
//! answers GETs of named objects from the objects it was given (404 otherwise; `PartialObjectMetadata`
//! when the client asks for metadata only), echoes server-side applies (refusing, as the real API
//! server does, one that would give an object a second controller) and counts status writes.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request the fake server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub accept: String,
    pub body: String,
}

/// How the fake API server answers.
#[derive(Clone, Copy, PartialEq)]
pub enum Cluster {
    /// The NextApp CRD is missing: listing NextApps is 404.
    NoCrd,
    /// Everything is installed and empty.
    Empty,
    /// This many valid NextApps; every write is echoed back.
    Apps(usize),
    /// The NextApps given to [`FakeApiServer::start_listing`].
    Listed,
}

pub struct FakeApiServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    status_writes: Arc<AtomicUsize>,
}

impl FakeApiServer {
    pub fn start(cluster: Cluster) -> Self {
        Self::start_with(cluster, Vec::new())
    }

    /// Lists exactly `apps` (NextApps, each also held at its path for GETs and merge patches).
    pub fn start_listing(apps: Vec<serde_json::Value>) -> Self {
        let objects = apps
            .iter()
            .map(|a| {
                let m = &a["metadata"];
                (
                    format!(
                        "/apis/apps.kn-next.dev/v1alpha1/namespaces/{}/nextapps/{}",
                        m["namespace"].as_str().unwrap(),
                        m["name"].as_str().unwrap()
                    ),
                    a.clone(),
                )
            })
            .collect();
        let list = serde_json::json!({
            "apiVersion": "apps.kn-next.dev/v1alpha1", "kind": "NextAppList",
            "metadata": {"resourceVersion": "1"}, "items": apps,
        });
        Self::start_inner(Cluster::Listed, list.to_string(), objects)
    }

    /// Also holds `objects`, each at its API path (e.g. `/api/v1/namespaces/ns/serviceaccounts/name`).
    pub fn start_with(cluster: Cluster, objects: Vec<(String, serde_json::Value)>) -> Self {
        Self::start_inner(cluster, apps_list(cluster), objects)
    }

    fn start_inner(cluster: Cluster, list: String, objects: Vec<(String, serde_json::Value)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let lease = Arc::new(Mutex::new(None::<String>));
        let status_writes = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(State {
            cluster,
            log: seen.clone(),
            lease,
            status_writes: status_writes.clone(),
            list,
            objects: objects.into_iter().collect(),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self {
            port,
            seen,
            status_writes,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Status writes (server-side applies on `/status`) so far.
    pub fn status_writes(&self) -> usize {
        self.status_writes.load(Ordering::Relaxed)
    }
}

struct State {
    cluster: Cluster,
    log: Arc<Mutex<Vec<Seen>>>,
    lease: Arc<Mutex<Option<String>>>,
    status_writes: Arc<AtomicUsize>,
    list: String,
    objects: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The NextApp list body for `cluster`.
fn apps_list(cluster: Cluster) -> String {
    let n = match cluster {
        Cluster::Apps(n) => n,
        _ => 0,
    };
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"apps.kn-next.dev/v1alpha1","kind":"NextApp","metadata":{{"name":"app-{i:05}","namespace":"team-{:02}","uid":"00000000-0000-4000-8000-{i:012}","generation":1,"resourceVersion":"{}"}},"spec":{{"image":"registry.example.com/team/app-{i:05}@sha256:{:064x}","scaling":{{"minScale":{},"maxScale":10}},"env":{{"LOG_LEVEL":"info"}}}}}}"#,
                i % 40,
                100 + i,
                (i as u128 + 1) * 0x9e37_79b9,
                i % 3
            )
        })
        .collect();
    format!(
        r#"{{"apiVersion":"apps.kn-next.dev/v1alpha1","kind":"NextAppList","metadata":{{"resourceVersion":"1"}},"items":[{}]}}"#,
        items.join(",")
    )
}

fn serve(stream: TcpStream, state: &State) {
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
        let mut accept = String::new();
        let mut content_type = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("accept") {
                    accept = v.trim().to_owned();
                } else if k.eq_ignore_ascii_case("content-type") {
                    content_type = v.trim().to_owned();
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        state.log.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            accept: accept.clone(),
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
        let (status, reply) = if content_type == "application/merge-patch+json" {
            merge_patch(state, path, &body)
        } else {
            answer(state, &method, path, &accept, &body)
        };
        // One write per response: a head and a body in two small writes meet Nagle's algorithm and the
        // client's delayed ACK, which held every response ~40 ms.
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(state: &State, method: &str, path: &str, accept: &str, body: &str) -> (&'static str, String) {
    let cluster = state.cluster;
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
        let mut lease = state.lease.lock().unwrap();
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
    if method == "GET" && path.ends_with("/nextapps") {
        return ("200 OK", state.list.clone());
    }
    if method == "GET" && is_named(path) {
        return match state.objects.get(path) {
            Some(o) if accept.contains("as=PartialObjectMetadata") => (
                "200 OK",
                serde_json::json!({
                    "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": o["metadata"],
                })
                .to_string(),
            ),
            Some(o) => ("200 OK", o.to_string()),
            None => not_found(),
        };
    }
    if method == "GET" {
        return (
            "200 OK",
            r#"{"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"1"},"items":[]}"#.to_owned(),
        );
    }
    if method == "PATCH" {
        // Server-side apply: echo the applied object as if created; count status writes. Like the real
        // API server's validation of ownerReferences, refuse an object with two controllers.
        let mut v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let controller = |o: &serde_json::Value| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
                .map(|r| r["uid"].clone())
        };
        if let (Some(stored), Some(applied)) = (state.objects.get(path).and_then(controller), controller(&v))
            && stored != applied
        {
            return (
                "422 Unprocessable Entity",
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Invalid","code":422,"message":"metadata.ownerReferences: Invalid value: Only one reference can have Controller set to true"}"#.to_owned(),
            );
        }
        v["metadata"]["generation"] = 1.into();
        if path.ends_with("/status") {
            state.status_writes.fetch_add(1, Ordering::Relaxed);
        }
        return ("200 OK", v.to_string());
    }
    if method == "POST" {
        return ("201 Created", body.to_owned());
    }
    not_found()
}

/// A JSON merge patch of `metadata.finalizers` (the operator's finalizer), on condition of the
/// `resourceVersion` it names: answers the held object with the patch applied, 409 on another version,
/// 404 for an object not held.
fn merge_patch(state: &State, path: &str, body: &str) -> (&'static str, String) {
    let Some(stored) = state.objects.get(path) else {
        return (
            "404 Not Found",
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"}"#.to_owned(),
        );
    };
    let patch: serde_json::Value = serde_json::from_str(body).unwrap();
    if let Some(rv) = patch["metadata"]["resourceVersion"].as_str()
        && stored["metadata"]["resourceVersion"].as_str() != Some(rv)
    {
        return (
            "409 Conflict",
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409,"message":"the object has been modified"}"#.to_owned(),
        );
    }
    let mut patched = stored.clone();
    patched["metadata"]["finalizers"] = patch["metadata"]["finalizers"].clone();
    ("200 OK", patched.to_string())
}

/// Whether `path` names one object (`…/namespaces/<ns>/<resource>/<name>`), not a collection.
fn is_named(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    segments
        .iter()
        .position(|s| *s == "namespaces")
        .is_some_and(|i| segments.len() == i + 4)
}

/// A loopback address with a port that was free a moment ago (for `--metrics-addr`/`--health-addr`).
pub fn free_addr() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Writes a kubeconfig pointing at `server` (no credentials, namespace `knext-system`) into `dir`.
pub fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
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
