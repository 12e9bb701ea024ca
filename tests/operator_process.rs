//! `knext operator` as a process, against a small fake API server on loopback (a real HTTP server,
//! not the in-process mock): the startup checks fail fast and clearly; a healthy start serves
//! `/healthz`, `/readyz` and `/metrics`, takes the leader-election Lease, and on SIGTERM releases it
//! and exits 0; every NextApp is inspected (metadata only), applied and given a status, except what
//! another owner controls; and the install bundle's RBAC grants every request the operator made.

#![cfg(feature = "operator")]
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fake_api::{Cluster, FakeApiServer, Seen, free_addr, kubeconfig};

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

/// Runs `knext operator` against `api` until it has written `statuses` statuses, then SIGTERM; returns
/// its stderr after asserting exit 0.
fn reconcile_all(api: &FakeApiServer, statuses: usize) -> String {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
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
    // Also until the ClusterImagePolicy sweep that follows the first complete NextApp list has run.
    let swept = || {
        api.seen()
            .iter()
            .any(|s| s.target.contains("/clusterimagepolicies"))
    };
    while (api.status_writes() < statuses || !swept()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(pid, Signal::SIGTERM).unwrap();
    let (code, err, _) = finish(child, Duration::from_secs(25));
    assert_eq!(
        api.status_writes(),
        statuses,
        "{err}\n{:#?}",
        api.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.target))
            .collect::<Vec<_>>()
    );
    assert_eq!(code, Some(0), "{err}");
    err
}

/// The paths of the three children of `app` in `ns`.
fn child_paths(ns: &str, app: &str) -> [String; 3] {
    [
        format!("/apis/serving.knative.dev/v1/namespaces/{ns}/services/{app}"),
        format!("/api/v1/namespaces/{ns}/serviceaccounts/{app}-sa"),
        format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/{app}-allow-ingress"),
    ]
}

fn path(s: &Seen) -> &str {
    s.target.split('?').next().unwrap_or_default()
}

#[test]
fn it_reconciles_every_listed_nextapp_and_writes_its_status() {
    let api = FakeApiServer::start(Cluster::Apps(3));
    reconcile_all(&api, 3);
    let seen = api.seen();
    let applies = seen
        .iter()
        .filter(|s| s.method == "PATCH" && s.target.contains("fieldManager=knext-operator"))
        .count();
    assert_eq!(applies, 3 * 4, "3 objects and a status per app");
    for i in 0..3 {
        let (ns, app) = (format!("team-{:02}", i % 40), format!("app-{i:05}"));
        for child in child_paths(&ns, &app) {
            // Who holds the name is read, metadata only and from the watch cache, before the object is
            // applied.
            let get = seen
                .iter()
                .position(|s| s.method == "GET" && path(s) == child)
                .unwrap_or_else(|| panic!("{child} was not inspected"));
            assert!(
                seen[get].accept.contains("as=PartialObjectMetadata"),
                "{}",
                seen[get].accept
            );
            assert!(
                seen[get].target.ends_with("?&resourceVersion=0"),
                "{}",
                seen[get].target
            );
            let apply = seen
                .iter()
                .position(|s| s.method == "PATCH" && path(s) == child)
                .unwrap_or_else(|| panic!("{child} was not applied"));
            assert!(get < apply, "{child}: inspected after the apply");
        }
    }
    assert!(!seen.iter().any(|s| s.method == "DELETE"), "{seen:#?}");
}

#[test]
fn an_object_another_owner_controls_is_left_alone_and_reported() {
    // app-00000's ServiceAccount name is taken by a Deployment's ServiceAccount.
    let [ksvc, sa, np] = child_paths("team-00", "app-00000");
    let foreign = serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "app-00000-sa", "namespace": "team-00", "uid": "sa-uid",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "billing",
                                          "uid": "d-uid", "controller": true}]},
    });
    let api = FakeApiServer::start_with(Cluster::Apps(2), vec![(sa.clone(), foreign)]);
    let err = reconcile_all(&api, 2);
    let seen = api.seen();
    let patched = |p: &str| seen.iter().any(|s| s.method == "PATCH" && path(s) == p);
    assert!(!patched(&sa) && !patched(&ksvc), "{err}");
    assert!(
        patched(&np),
        "the NetworkPolicy does not depend on the ServiceAccount"
    );
    assert!(child_paths("team-01", "app-00001").iter().all(|p| patched(p)));
    let status = seen
        .iter()
        .find(|s| s.method == "PATCH" && path(s).ends_with("/namespaces/team-00/nextapps/app-00000/status"))
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    let degraded = status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Degraded")
        .unwrap();
    assert_eq!(
        (degraded["status"].as_str(), degraded["reason"].as_str()),
        (Some("True"), Some("OwnershipConflict"))
    );
    assert!(
        degraded["message"].as_str().unwrap().starts_with(
            "ServiceAccount team-00/app-00000-sa is controlled by apps/v1 Deployment billing (uid d-uid)"
        ),
        "{degraded}"
    );
    let event = seen
        .iter()
        .find(|s| s.method == "POST" && path(s) == "/apis/events.k8s.io/v1/namespaces/team-00/events")
        .unwrap_or_else(|| panic!("no event: {seen:#?}"));
    let event: serde_json::Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("OwnershipConflict"))
    );
}

#[test]
fn the_install_bundles_rbac_grants_every_request_the_operator_makes() {
    use knext::render::bundle::{leader_election_rules, operator_rules};
    let [_, sa, _] = child_paths("team-00", "app-00000");
    let foreign = serde_json::json!({"metadata": {"name": "app-00000-sa", "uid": "sa-uid"}});
    let api = FakeApiServer::start_with(Cluster::Apps(2), vec![(sa, foreign)]);
    reconcile_all(&api, 2);
    let rules = [operator_rules(), leader_election_rules()].concat();
    let mut checked = std::collections::BTreeSet::new();
    for s in api.seen().iter().filter(|s| path(s) != "/version") {
        let (group, resource, named) = resource_of(path(s));
        let verb = match (s.method.as_str(), named) {
            ("GET", _) if s.target.contains("watch=true") => "watch",
            ("GET", true) => "get",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PATCH", _) => "patch",
            ("PUT", _) => "update",
            ("DELETE", _) => "delete",
            (m, _) => panic!("unexpected method {m}"),
        };
        let granted = rules.iter().any(|r| {
            r.api_groups.iter().flatten().any(|g| *g == group)
                && r.resources.iter().flatten().any(|x| *x == resource)
                && r.verbs.iter().any(|v| v == verb)
        });
        assert!(
            granted,
            "{} {} needs {verb} on {group}/{resource}",
            s.method, s.target
        );
        checked.insert(format!("{verb} {group}/{resource}"));
    }
    // The requests the reconciler makes for a NextApp were among them.
    for needed in [
        "get /serviceaccounts",
        "get networking.k8s.io/networkpolicies",
        "get serving.knative.dev/services",
        "patch apps.kn-next.dev/nextapps/status",
        "create events.k8s.io/events",
        // The ClusterImagePolicy sweep at start (policy-controller is not installed: 404).
        "list policy.sigstore.dev/clusterimagepolicies",
    ] {
        assert!(checked.contains(needed), "{needed}: {checked:#?}");
    }
}

/// API group, resource (with subresource) and whether the path names one object.
fn resource_of(path: &str) -> (String, String, bool) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest),
        _ => panic!("not a resource path: {path}"),
    };
    let rest = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => rest,
        rest => rest,
    };
    match rest {
        [resource] => (group, (*resource).to_owned(), false),
        [resource, _name] => (group, (*resource).to_owned(), true),
        [resource, _name, sub] => (group, format!("{resource}/{sub}"), true),
        _ => panic!("not a resource path: {path}"),
    }
}

/// An app the existing operator created (it carries the finalizer) is deleted: the operator deletes its
/// Redis keys (a real redis-server on loopback, another app's keys beside them) and its objects (a real
/// S3-compatible moto_server, another app's objects beside them), says so in an event and removes the
/// finalizer, on condition of the version it read.
#[cfg(feature = "serve")]
#[test]
fn deleting_an_app_with_the_finalizer_removes_its_redis_keys_objects_and_the_finalizer() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let redis = support::serve::Redis::start();
    for key in [
        "shop:cache:/a",
        "shop:tag:posts",
        "shopfront:cache:/a",
        "other:x",
        "shop",
    ] {
        let _: () = redis.cmd(&["SET", key, "1"]);
    }
    for i in 0..1200 {
        let _: () = redis.cmd(&["SET", &format!("shop:cache:/p/{i}"), "1"]);
    }
    let s3 = support::moto::Moto::start();
    s3.create_bucket("assets");
    for key in ["shop/a.png", "shop/b/c.css", "shopfront/x", "shop", "other/y"] {
        s3.put("assets", key);
    }
    let app = serde_json::json!({
        "apiVersion": "apps.kn-next.dev/v1alpha1", "kind": "NextApp",
        "metadata": {"name": "shop", "namespace": "web", "uid": "00000000-0000-4000-8000-00000000beef",
                     "generation": 3, "resourceVersion": "42",
                     "deletionTimestamp": "2026-12-01T10:00:00Z",
                     "finalizers": ["apps.kn-next.dev/external-cleanup"]},
        "spec": {"image": format!("registry.example.com/web/shop@sha256:{}", "a".repeat(64)),
                 "cache": {"provider": "redis", "url": redis.url(), "keyPrefix": "shop"},
                 "storage": {"provider": "s3", "bucket": "assets", "region": "us-east-1",
                             "endpoint": s3.endpoint()}},
    });
    let api = FakeApiServer::start_listing(vec![app]);
    let dir = tempfile::tempdir().unwrap();
    // Credentials from the pod's environment, as the cloud SDKs read them (moto takes any).
    let child = Command::new(env!("CARGO_BIN_EXE_knext"))
        .args([
            "operator",
            &format!("--metrics-addr=127.0.0.1:{}", free_port()),
            &format!("--health-addr=127.0.0.1:{}", free_port()),
        ])
        .env("KUBECONFIG", kubeconfig(dir.path(), &api.url()))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let nextapp = "/apis/apps.kn-next.dev/v1alpha1/namespaces/web/nextapps/shop";
    let patched = || {
        api.seen()
            .into_iter()
            .find(|s| s.method == "PATCH" && path(s) == nextapp)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while patched().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), Signal::SIGTERM).unwrap();
    let (code, err, _) = finish(child, Duration::from_secs(25));
    assert_eq!(code, Some(0), "{err}");
    let patch = patched().unwrap_or_else(|| panic!("the finalizer was not removed: {err}"));
    let patch: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(
        patch,
        serde_json::json!({"metadata": {"finalizers": [], "resourceVersion": "42"}})
    );
    assert_eq!(
        redis.keys("*"),
        ["other:x", "shop", "shopfront:cache:/a"],
        "only the deleted app's keys go"
    );
    assert_eq!(
        s3.keys("assets"),
        ["other/y", "shop", "shopfront/x"],
        "only the deleted app's objects go"
    );
    let seen = api.seen();
    let events: Vec<serde_json::Value> = seen
        .iter()
        .filter(|s| s.method == "POST" && path(s) == "/apis/events.k8s.io/v1/namespaces/web/events")
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect();
    let cleaned = events
        .iter()
        .find(|e| e["reason"] == "CleanedUp")
        .unwrap_or_else(|| panic!("no CleanedUp event: {events:#?}"));
    assert_eq!(cleaned["type"], "Normal");
    assert_eq!(
        cleaned["note"],
        "deleted 1202 Redis keys matching shop:*; deleted 2 objects under shop/ in bucket assets"
    );
    // The bundle grants the finalizer's patch.
    assert!(
        knext::render::bundle::operator_rules().iter().any(|r| {
            r.api_groups.iter().flatten().any(|g| g == "apps.kn-next.dev")
                && r.resources.iter().flatten().any(|x| x == "nextapps")
                && r.verbs.iter().any(|v| v == "patch")
        }),
        "patch on nextapps"
    );
    // Nothing is applied for an app being deleted.
    assert!(
        !seen
            .iter()
            .any(|s| s.method == "PATCH" && s.target.contains("fieldManager")),
        "{seen:#?}"
    );
}
