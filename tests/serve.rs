//! `knext serve` as a process, with its real parts: a real `redis-server` (each test starts its own on
//! a free loopback port) and a real Node.js child (`tests/support/app-server.mjs`). Requests go over
//! TCP with a small HTTP/1.1 client that shows exactly what came back (status, headers, body,
//! trailers, and when each byte arrived).
//!
//! Needs `redis-server` and `node` on PATH (`.ci/run` installs them).

#![cfg(feature = "serve")]
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::serve::{
    Knext as Serve, Launch, Redis, free_addr, get, read_chunk, read_head, read_response, request, root, send,
    send_head,
};

const TOKEN: &str = "s3cret-invalidate-token";

fn invalidate(addr: SocketAddr, auth: Option<&str>, body: &str) -> support::serve::Response {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    request(addr, "POST", "/api/cache/invalidate", &headers, body.as_bytes())
}

// ---- knext serve in front of tests/support/app-server.mjs ---------------------------------------

struct Options<'a> {
    env: Vec<(&'a str, String)>,
    wait_ready: bool,
    /// Where knext serve's log (stderr, JSON lines) goes; nowhere by default.
    log: Option<std::fs::File>,
    /// Extra arguments before `--`.
    args: Vec<String>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            wait_ready: true,
            log: None,
            args: Vec::new(),
        }
    }
}

fn start(opts: Options<'_>) -> Serve {
    let mut env = vec![
        ("RUST_LOG", "info".to_owned()),
        ("KN_APP_NAME", "docs".to_owned()),
    ];
    env.extend(opts.env);
    let mut args: Vec<String> = ["--route", "/blog/[slug]", "--route", "/"]
        .map(str::to_owned)
        .to_vec();
    args.extend(opts.args);
    let serve = Serve::start(Launch {
        dir: root(),
        args,
        command: vec!["node".into(), root().join("tests/support/app-server.mjs").into()],
        env,
        log: None,
        stderr: opts.log,
    });
    if opts.wait_ready {
        assert_eq!(get(serve.listen, "/api/health").status, 200);
    }
    serve
}

fn with_redis(redis: &Redis, extra: Vec<(&'static str, String)>) -> Serve {
    let mut env = vec![
        ("REDIS_URL", redis.url()),
        ("REDIS_KEY_PREFIX", "app".to_owned()),
        ("CACHE_INVALIDATE_TOKEN", TOKEN.to_owned()),
    ];
    env.extend(extra);
    start(Options {
        env,
        ..Options::default()
    })
}

// ---- tests ------------------------------------------------------------------------------------

#[test]
fn unauthenticated_requests_never_change_redis_and_the_right_token_invalidates() {
    let redis = Redis::start();
    redis.seed("app");
    let serve = with_redis(&redis, vec![]);
    let before = redis.dump();
    let body = r#"{"tag":"posts"}"#;
    let wrong_same_length = "x".repeat(TOKEN.len());
    for (what, auth) in [
        ("missing header", None),
        ("empty", Some(String::new())),
        ("wrong scheme", Some(format!("Basic {TOKEN}"))),
        ("lowercase bearer", Some(format!("bearer {TOKEN}"))),
        ("no space", Some(format!("Bearer{TOKEN}"))),
        (
            "wrong token, equal length",
            Some(format!("Bearer {wrong_same_length}")),
        ),
        ("wrong token, shorter", Some("Bearer s3cret".to_owned())),
        ("wrong token, longer", Some(format!("Bearer {TOKEN}x"))),
    ] {
        let r = invalidate(serve.listen, auth.as_deref(), body);
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "Unauthorized", "{what}");
    }
    // No GET (or any other method) on invalidate, even with the token.
    let bearer = format!("Bearer {TOKEN}");
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let r = request(
            serve.listen,
            method,
            "/api/cache/invalidate",
            &[("authorization", &bearer)],
            b"",
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("POST"), "{method}");
    }
    let r = request(serve.listen, "GET", "/api/cache/invalidate?tag=posts", &[], b"");
    assert_eq!(r.status, 405);
    // DELETE of the events log needs the same token.
    let _: () = redis.cmd(&["LPUSH", "app:cache-events", r#"{"type":"HIT"}"#]);
    let before_events = redis.dump();
    for auth in [None, Some("Bearer nope"), Some(&*format!("bearer {TOKEN}"))] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        assert_eq!(
            request(serve.listen, "DELETE", "/api/cache/events", &headers, b"").status,
            401
        );
    }
    assert_eq!(
        request(serve.listen, "POST", "/api/cache/events", &[], b"{}").status,
        405
    );
    assert_eq!(
        redis.dump(),
        before_events,
        "an unauthenticated request changed Redis"
    );
    let _: () = redis.cmd(&["DEL", "app:cache-events"]);
    assert_eq!(redis.dump(), before);

    // Authenticated, but a bad body: 400, nothing changes.
    for bad in ["", "{}", r#"{"tag":""}"#, r#"{"tag":7}"#, "not json"] {
        assert_eq!(
            invalidate(serve.listen, Some(&bearer), bad).status,
            400,
            "{bad:?}"
        );
    }
    let big = format!(r#"{{"tags":["{}"]}}"#, "a".repeat(9 * 1024));
    let r = invalidate(serve.listen, Some(&bearer), &big);
    assert_eq!(r.status, 400, "a body over 8 KiB");
    assert_eq!(redis.dump(), before);

    // The right token: the posts entries and their tag set go, users stays, an event is recorded.
    let r = invalidate(serve.listen, Some(&bearer), body);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["success"], true);
    assert_eq!(j["deleted"], 2);
    assert_eq!(j["tags"], serde_json::json!(["posts"]));
    let mut keys: Vec<String> = redis.cmd(&["KEYS", "*"]);
    keys.sort();
    assert_eq!(keys, ["app:cache-events", "app:cache:/team", "app:tag:users"]);
    let events: Vec<String> = redis.cmd(&["LRANGE", "app:cache-events", "0", "-1"]);
    assert_eq!(events.len(), 1);
    let e: serde_json::Value = serde_json::from_str(&events[0]).unwrap();
    assert_eq!(e["type"], "INVALIDATE");
    assert_eq!(e["source"], "knext-serve");
    assert_eq!(e["tag"], "posts");
    assert_eq!(e["key"], "posts");
    assert_eq!(e["details"]["deleted"], 2);

    // The events endpoint reads them (no auth: read-only); DELETE with the token clears them.
    let r = get(serve.listen, "/api/cache/events");
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["events"][0]["type"], "INVALIDATE");
    assert_eq!(j["stats"]["invalidations"], 1);
    assert_eq!(j["stats"]["totalEvents"], 1);
    let r = request(
        serve.listen,
        "DELETE",
        "/api/cache/events",
        &[("authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(redis.cmd::<i64>(&["EXISTS", "app:cache-events"]), 0);

    // The refusals were counted by reason.
    let m = serve.metrics_text();
    assert!(
        m.contains(r#"knext_serve_auth_refusals_total{handler="cache_invalidate",reason="wrong-token"} 3"#),
        "{m}"
    );
    assert!(
        m.contains(r#"knext_serve_auth_refusals_total{handler="cache_invalidate",reason="wrong-scheme"} 4"#)
    );
    assert!(m.contains(
        r#"knext_serve_auth_refusals_total{handler="cache_invalidate",reason="missing-header"} 1"#
    ));
}

#[test]
fn an_unset_or_empty_token_refuses_every_request() {
    let redis = Redis::start();
    redis.seed("app");
    let before = redis.dump();
    for token in [None, Some("")] {
        let mut env = vec![("REDIS_URL", redis.url()), ("REDIS_KEY_PREFIX", "app".to_owned())];
        if let Some(t) = token {
            env.push(("CACHE_INVALIDATE_TOKEN", t.to_owned()));
        }
        let serve = start(Options {
            env,
            ..Options::default()
        });
        for auth in [
            None,
            Some("Bearer "),
            Some("Bearer undefined"),
            Some(&*format!("Bearer {TOKEN}")),
        ] {
            assert_eq!(
                invalidate(serve.listen, auth, r#"{"tag":"posts"}"#).status,
                401,
                "{token:?} {auth:?}"
            );
            let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
            assert_eq!(
                request(serve.listen, "DELETE", "/api/cache/events", &headers, b"").status,
                401
            );
        }
        assert!(serve.metrics_text().contains(r#"reason="token-unset""#));
    }
    assert_eq!(redis.dump(), before);
}

/// knext serve's JSON log lines in `file`.
fn log_lines(file: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect()
}

#[test]
fn a_token_with_a_trailing_newline_is_warned_about_without_showing_it() {
    let redis = Redis::start();
    redis.seed("app");
    let before = redis.dump();
    let bearer = format!("Bearer {TOKEN}");
    let whitespace_warnings = |token: String| {
        let log = tempfile::NamedTempFile::new().unwrap();
        let serve = start(Options {
            env: vec![
                ("REDIS_URL", redis.url()),
                ("REDIS_KEY_PREFIX", "app".to_owned()),
                ("CACHE_INVALIDATE_TOKEN", token.clone()),
            ],
            log: Some(log.reopen().unwrap()),
            ..Options::default()
        });
        let status = invalidate(serve.listen, Some(&bearer), r#"{"tag":"posts"}"#).status;
        drop(serve);
        let text = std::fs::read_to_string(log.path()).unwrap();
        // Never the token, with or without its newline.
        assert!(!text.contains(TOKEN), "the token was logged: {text}");
        let warnings: Vec<serde_json::Value> = log_lines(log.path())
            .into_iter()
            .filter(|l| l["level"] == "WARN")
            .filter(|l| {
                let m = l["fields"]["message"].as_str().unwrap_or_default();
                m.contains("CACHE_INVALIDATE_TOKEN") && m.contains("whitespace")
            })
            .collect();
        (status, warnings)
    };

    // `echo $TOKEN | kubectl create secret generic … --from-file`: a trailing newline.
    let padded = format!("{TOKEN}\n");
    let (status, warnings) = whitespace_warnings(padded.clone());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &warnings[0];
    let message = warning["fields"]["message"].as_str().unwrap();
    assert!(message.contains("trailing"), "{message}");
    // Nor its length: the line has the message and nothing else of the token.
    let fields = warning["fields"].as_object().unwrap();
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["message"], "{warning}");
    assert!(!message.contains(&padded.len().to_string()), "{message}");
    assert!(!message.contains(&TOKEN.len().to_string()), "{message}");
    // Compared as is: the token without its newline does not authenticate (and changes nothing).
    assert_eq!(status, 401);
    assert_eq!(redis.dump(), before);

    // A clean token: no such warning, and it authenticates.
    let (status, warnings) = whitespace_warnings(TOKEN.to_owned());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(status, 200);
}

#[test]
fn redis_unreachable_answers_503_never_200_and_never_its_error() {
    let closed = free_addr();
    let log = tempfile::NamedTempFile::new().unwrap();
    let serve = start(Options {
        env: vec![
            ("REDIS_URL", format!("redis://{closed}/0")),
            ("CACHE_INVALIDATE_TOKEN", TOKEN.to_owned()),
            ("KNEXT_CACHE_TIMEOUT_MS", "300".to_owned()),
        ],
        log: Some(log.reopen().unwrap()),
        ..Options::default()
    });
    let bearer = format!("Bearer {TOKEN}");
    let started = Instant::now();
    let r = invalidate(serve.listen, Some(&bearer), r#"{"tag":"posts"}"#);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let answers = [
        ("invalidate", r),
        ("read events", get(serve.listen, "/api/cache/events")),
        (
            "clear events",
            request(
                serve.listen,
                "DELETE",
                "/api/cache/events",
                &[("authorization", &bearer)],
                b"",
            ),
        ),
    ];
    // A fixed sentence: not Redis's error, not its address.
    for (what, r) in &answers {
        assert_eq!(r.status, 503, "{what}: {}", r.text());
        assert_eq!(r.text(), r#"{"error":"the cache is unavailable"}"#, "{what}");
        assert_eq!(r.header("retry-after"), Some("5"), "{what}");
    }
    // Authentication still comes first.
    assert_eq!(invalidate(serve.listen, None, r#"{"tag":"posts"}"#).status, 401);
    assert!(
        serve
            .metrics_text()
            .contains(r#"knext_serve_cache_invalidations_total{result="unavailable"} 1"#)
    );
    // The detail is in the log, once per failed operation.
    drop(serve);
    let lines = log_lines(log.path());
    for (what, _) in &answers {
        let logged: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["level"] == "WARN" && l["fields"]["operation"] == *what)
            .collect();
        assert_eq!(logged.len(), 1, "{what}: {lines:?}");
        let error = logged[0]["fields"]["error"].as_str().unwrap();
        let detail = error.strip_prefix("the cache is unavailable: ").unwrap();
        assert!(!detail.is_empty(), "{what}: {error}");
        assert!(
            answers.iter().all(|(_, r)| !r.text().contains(detail)),
            "{detail}"
        );
    }

    // No REDIS_URL at all: 503 as well, with its own fixed sentence.
    let serve = start(Options {
        env: vec![("CACHE_INVALIDATE_TOKEN", TOKEN.to_owned())],
        ..Options::default()
    });
    let r = invalidate(serve.listen, Some(&bearer), r#"{"tag":"posts"}"#);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.text(),
        r#"{"error":"the cache is not configured: REDIS_URL is not set"}"#
    );
}

#[test]
fn a_502_says_nothing_of_the_upstream_error_and_the_log_has_it() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let serve = start(Options {
        log: Some(log.reopen().unwrap()),
        ..Options::default()
    });
    let r = get(serve.listen, "/drop");
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), r#"{"error":"The app did not answer"}"#);
    drop(serve);
    let lines = log_lines(log.path());
    let logged: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["level"] == "WARN" && l["fields"]["message"] == "the app server did not answer")
        .collect();
    assert_eq!(logged.len(), 1, "{lines:?}");
    let error = logged[0]["fields"]["error"].as_str().unwrap();
    assert!(!error.is_empty() && !r.text().contains(error), "{error}");
}

#[test]
fn reading_cache_events_is_rate_limited_apart_from_rum_and_delete() {
    use knext::serve::rum::{EVENTS_BURST, EVENTS_REFILL_PER_SEC, retry_after_secs};

    let redis = Redis::start();
    let serve = with_redis(&redis, vec![]);
    let started = Instant::now();
    let mut answered = 0;
    let refused = loop {
        let method = if answered % 2 == 0 { "GET" } else { "HEAD" };
        let r = request(serve.listen, method, "/api/cache/events", &[], b"");
        if r.status != 200 {
            break r;
        }
        answered += 1;
        assert!(answered < 1000, "reading events is not rate-limited");
    };
    // The burst, plus what refilled meanwhile (a slow machine refills more), and no more.
    let refilled = started.elapsed().as_secs_f64() * EVENTS_REFILL_PER_SEC;
    assert!(answered as f64 >= EVENTS_BURST, "{answered} answered");
    assert!(
        answered as f64 <= EVENTS_BURST + refilled.ceil(),
        "{answered} answered in {:?}",
        started.elapsed()
    );
    assert_eq!(refused.status, 429, "{}", refused.text());
    let wait = Duration::from_secs_f64(1.0 / EVENTS_REFILL_PER_SEC);
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=retry_after_secs(wait)).contains(&retry_after),
        "{retry_after}"
    );
    assert_eq!(refused.json()["error"], "Too many requests");
    // The RUM beacon and the authenticated DELETE do not draw on it.
    let beacon = br#"{"metric":"LCP","rating":"good","value":1800,"pathname":"/"}"#;
    assert_eq!(request(serve.listen, "POST", "/api/rum", &[], beacon).status, 204);
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        request(
            serve.listen,
            "DELETE",
            "/api/cache/events",
            &[("authorization", &bearer)],
            b""
        )
        .status,
        200
    );
    // It refills: reading works again (a refused read takes no token, so polling does not delay it).
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(serve.listen, "/api/cache/events").status != 200 {
        assert!(Instant::now() < deadline, "reading events never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = serve.metrics_text();
    assert!(
        m.contains(r#"handler="cache_events",method="GET",route="/api/cache/events",status_class="4xx"}"#),
        "{m}"
    );
}

#[test]
fn redis_coming_back_is_picked_up_without_a_restart() {
    let redis = Redis::start();
    let port = redis.port;
    let url = redis.url();
    drop(redis);
    let serve = start(Options {
        env: vec![
            ("REDIS_URL", url),
            ("REDIS_KEY_PREFIX", "app".to_owned()),
            ("CACHE_INVALIDATE_TOKEN", TOKEN.to_owned()),
            ("KNEXT_CACHE_TIMEOUT_MS", "300".to_owned()),
        ],
        ..Options::default()
    });
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        invalidate(serve.listen, Some(&bearer), r#"{"tag":"a"}"#).status,
        503
    );
    let redis = Redis::start_on(port);
    redis.seed("app");
    let r = invalidate(serve.listen, Some(&bearer), r#"{"tags":["posts","users"]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deleted"], 3);
    let keys: Vec<String> = redis.cmd(&["KEYS", "app:cache:*"]);
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn rum_rejects_every_bad_beacon_and_keeps_labels_bounded() {
    let serve = start(Options::default());
    let beacon =
        |path: &str| format!(r#"{{"metric":"LCP","rating":"good","value":1800,"pathname":"{path}"}}"#);
    let post = |body: &[u8]| {
        request(
            serve.listen,
            "POST",
            "/api/rum",
            &[("content-type", "application/json")],
            body,
        )
    };
    assert_eq!(post(beacon("/blog/hello").as_bytes()).status, 204);
    assert_eq!(request(serve.listen, "GET", "/api/rum", &[], b"").status, 405);
    assert_eq!(
        request(serve.listen, "GET", "/api/rum", &[], b"").header("allow"),
        Some("POST")
    );
    assert_eq!(post(&vec![b' '; 2049]).status, 413);
    assert_eq!(post(b"{not json").status, 400);
    assert_eq!(
        post(br#"{"metric":"FID","rating":"good","value":1,"pathname":"/"}"#).status,
        400
    );
    assert_eq!(
        post(br#"{"metric":"LCP","rating":"meh","value":1,"pathname":"/"}"#).status,
        400
    );
    assert_eq!(
        post(br#"{"metric":"LCP","rating":"good","value":-5,"pathname":"/"}"#).status,
        400
    );
    assert_eq!(
        post(br#"{"metric":"LCP","rating":"good","value":5,"pathname":""}"#).status,
        400
    );
    // A flood of unique paths: every beacon within the burst is accepted, the labels stay put.
    let mut accepted = 8; // the requests above each took a token
    for i in 0..150 {
        let r = post(beacon(&format!("/random/{i}/{}", i * 31)).as_bytes());
        assert_eq!(r.status, 204);
        accepted += 1;
    }
    let m = serve.metrics_text();
    let routes: BTreeSet<&str> = m
        .lines()
        .filter(|l| l.starts_with("kn_next_web_vitals_lcp_count"))
        .filter_map(|l| l.split("route=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(routes, BTreeSet::from(["/blog/[slug]", "other"]), "{m}");
    // Past the burst of 200 (plus what refilled meanwhile, 50 a second): 429.
    let mut sent = accepted;
    while post(beacon("/").as_bytes()).status != 429 {
        sent += 1;
        assert!(sent < 2000, "the token bucket never refused");
    }
    assert!(sent >= 200, "refused after only {sent} beacons");
    let m = serve.metrics_text();
    for reason in ["rate-limited", "too-large", "not-json", "invalid"] {
        assert!(
            m.contains(&format!(
                r#"knext_serve_rum_rejected_total{{handler="rum",reason="{reason}"}}"#
            )),
            "{reason}\n{m}"
        );
    }
}

/// The value of the sample `series` (name and labels exactly as exposed) in an exposition.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[test]
fn rum_values_over_a_vitals_ceiling_are_refused_and_the_sum_stays_finite() {
    let serve = start(Options::default());
    let post = |metric: &str, value: &str| {
        let body = format!(r#"{{"metric":"{metric}","rating":"poor","value":{value},"pathname":"/"}}"#);
        request(serve.listen, "POST", "/api/rum", &[], body.as_bytes()).status
    };
    // Two of these in one histogram would overflow its `_sum` to +Inf until a restart.
    for value in ["1.7e308", "1.7e308", "120000.001"] {
        assert_eq!(post("LCP", value), 400, "LCP {value}");
    }
    for value in ["1.7e308", "10.5"] {
        assert_eq!(post("CLS", value), 400, "CLS {value}");
    }
    // At the ceilings (120 s in ms, CLS 10) and below: accepted.
    for (metric, value) in [("LCP", "120000"), ("LCP", "1800"), ("CLS", "10"), ("CLS", "0.25")] {
        assert_eq!(post(metric, value), 204, "{metric} {value}");
    }
    let m = serve.metrics_text();
    let lcp = sample(
        &m,
        r#"kn_next_web_vitals_lcp_sum{app="docs",route="/",rating="poor"}"#,
    );
    let cls = sample(
        &m,
        r#"kn_next_web_vitals_cls_sum{app="docs",route="/",rating="poor"}"#,
    );
    assert_eq!((lcp, cls), (Some(121_800.0), Some(10.25)), "{m}");
    assert_eq!(
        sample(
            &m,
            r#"knext_serve_rum_rejected_total{handler="rum",reason="out-of-range"}"#
        ),
        Some(5.0),
        "{m}"
    );
}

#[test]
fn the_proxy_preserves_requests_and_responses() {
    let serve = start(Options {
        env: vec![("CACHE_INVALIDATE_TOKEN", TOKEN.to_owned())],
        ..Options::default()
    });
    let r = request(
        serve.listen,
        "PATCH",
        "/headers?a=1&b=two%20words",
        &[
            ("cookie", "session=abc"),
            ("x-custom", "kept"),
            ("authorization", "Bearer app-own-token"),
            ("x-forwarded-for", "203.0.113.5"),
            ("keep-alive", "timeout=99"),
        ],
        b"{}",
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["method"], "PATCH");
    assert_eq!(j["url"], "/headers?a=1&b=two%20words");
    let h = &j["headers"];
    assert_eq!(h["host"], "app.example");
    assert_eq!(h["cookie"], "session=abc");
    assert_eq!(h["x-custom"], "kept");
    assert_eq!(h["authorization"], "Bearer app-own-token");
    assert_eq!(h["x-forwarded-for"], "203.0.113.5, 127.0.0.1");
    assert_eq!(h["x-forwarded-host"], "app.example");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert!(h.get("keep-alive").is_none(), "hop-by-hop header forwarded: {h}");

    for status in [201, 302, 404, 418, 500, 503] {
        assert_eq!(get(serve.listen, &format!("/status/{status}")).status, status);
    }
    // An 8 MiB upload streams through.
    let body = vec![b'x'; 8 << 20];
    let r = request(serve.listen, "POST", "/upload", &[], &body);
    assert_eq!(r.json()["bytes"], 8 << 20);
    // Trailers reach a client that asked for them.
    let r = request(serve.listen, "GET", "/trailers", &[("te", "trailers")], b"");
    assert_eq!(r.text(), "body with trailers\n");
    assert_eq!(r.trailers, [("x-checksum".to_owned(), "abc123".to_owned())]);
    // The child listens on loopback, on its own port, without the invalidation token.
    let env = get(serve.listen, "/env").json();
    assert_eq!(env["HOSTNAME"], "127.0.0.1");
    assert_ne!(env["PORT"], serve.listen.port().to_string());
    assert_eq!(env["CACHE_INVALIDATE_TOKEN"], serde_json::Value::Null);

    let m = serve.metrics_text();
    for needle in [
        r#"kn_next_http_requests_total{app="docs",handler="proxy",method="GET",route="other",status_class="4xx"} 2"#,
        r#"kn_next_http_requests_total{app="docs",handler="proxy",method="PATCH",route="other",status_class="2xx"} 1"#,
        "knext_serve_child_up 1",
        "knext_serve_child_ready_seconds ",
    ] {
        assert!(m.contains(needle), "missing {needle}\n{m}");
    }
    assert_eq!(request(serve.metrics, "POST", "/metrics", &[], b"").status, 405);
    assert_eq!(get(serve.metrics, "/other").status, 404);
}

#[test]
fn owned_routes_are_answered_here_in_any_spelling_and_other_paths_forwarded_byte_for_byte() {
    let serve = start(Options {
        env: vec![("CACHE_INVALIDATE_TOKEN", TOKEN.to_owned())],
        ..Options::default()
    });
    // The child answers 404 {"path"} to all of these: only knext serve answers 401/405/503/204.
    for target in [
        "/api/cache/./invalidate",
        "/api/x/../cache/invalidate",
        "/api/cache%2Finvalidate",
        "/api/cache/invalidat%65",
        "/%61pi/cache/invalidate",
        "//api//cache//invalidate",
        "/api/x/%2E%2E/cache/invalidate",
        "/api/cache/%252e/invalidate",
        "/api\\cache\\invalidate",
        "/API/CACHE/INVALIDATE/",
        "/api/cache/invalidate.rsc",
        "http://app.example/api/cache/./invalidate",
    ] {
        let r = request(serve.listen, "POST", target, &[], b"{}");
        assert_eq!(r.status, 401, "POST {target}: {}", r.text());
        assert_eq!(r.json()["error"], "Unauthorized", "POST {target}");
        let r = request(serve.listen, "GET", target, &[], b"");
        assert_eq!((r.status, r.header("allow")), (405, Some("POST")), "GET {target}");
    }
    for target in [
        "/api/cache/./events",
        "/api/cache/event%73",
        "/api//cache/x/../events/",
    ] {
        let r = get(serve.listen, target);
        assert_eq!(r.status, 503, "{target}: {}", r.text());
        assert!(r.text().contains("REDIS_URL is not set"), "{target}");
    }
    let beacon = br#"{"metric":"LCP","rating":"good","value":1,"pathname":"/"}"#;
    for target in ["/api/./rum", "/api/ru%6D", "/Api/Rum/"] {
        assert_eq!(
            request(serve.listen, "POST", target, &[], beacon).status,
            204,
            "{target}"
        );
    }
    // Unreadable paths that may name an owned route: 400, not forwarded.
    for target in [
        "/api/cache/invalidate%00",
        "/api/cache/invalidate%",
        "/api/rum%3Fx",
        "/api/cache/invalidate/x//..",
    ] {
        let r = request(serve.listen, "POST", target, &[], b"{}");
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert_eq!(r.json()["error"], "Unreadable request path", "{target}");
    }
    // Everything else reaches the child with its raw path.
    for target in ["/x/../headers?q=%2F", "/./headers", "/api/cache/../../headers"] {
        let r = get(serve.listen, target);
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        assert_eq!(r.json()["url"], target);
    }
    for target in [
        "/api/cache/other",
        "/api/cache%2Fother",
        "/blog/100%",
        "/api/rumour",
        "/%68eaders",
    ] {
        let r = get(serve.listen, target);
        assert_eq!(r.status, 404, "{target}: {}", r.text());
        assert!(r.json()["path"].is_string(), "{target}: the child did not answer");
    }
    let m = serve.metrics_text();
    for needle in [
        r#"kn_next_http_requests_total{app="docs",handler="refused",method="POST",route="other",status_class="4xx"} 4"#,
        r#"kn_next_http_requests_total{app="docs",handler="cache_invalidate",method="POST",route="/api/cache/invalidate",status_class="4xx"} 12"#,
        r#"kn_next_http_requests_total{app="docs",handler="rum",method="POST",route="/api/rum",status_class="2xx"} 3"#,
    ] {
        assert!(m.contains(needle), "missing {needle}\n{m}");
    }
}

#[test]
fn next_internal_request_headers_are_dropped_and_what_clients_send_is_kept() {
    let serve = start(Options::default());
    let internal = [
        (
            "x-middleware-subrequest",
            "middleware:middleware:middleware:middleware:middleware",
        ),
        ("x-middleware-rewrite", "/admin"),
        ("x-middleware-next", "1"),
        ("x-middleware-override-headers", "authorization"),
        ("x-invoke-path", "/api/cache/invalidate"),
        ("x-invoke-query", "%7B%7D"),
        ("x-invoke-status", "200"),
        ("x-matched-path", "/api/cache/invalidate"),
        ("x-now-route-matches", "1"),
        ("next-resume", "1"),
        ("x-next-resume-state-length", "10"),
    ];
    let kept = [
        ("rsc", "1"),
        ("next-router-state-tree", "%5B%22%22%5D"),
        ("next-router-prefetch", "1"),
        ("next-router-segment-prefetch", "/_tree"),
        ("next-action", "abc123"),
        ("next-url", "/blog"),
        ("x-nextjs-data", "1"),
        ("x-middleware-prefetch", "1"),
    ];
    let all: Vec<(&str, &str)> = internal.iter().chain(&kept).copied().collect();
    let r = request(serve.listen, "GET", "/headers", &all, b"");
    assert_eq!(r.status, 200);
    let seen = &r.json()["headers"];
    for (name, _) in internal {
        assert!(seen.get(name).is_none(), "{name} reached the app: {seen}");
    }
    for (name, value) in kept {
        assert_eq!(seen[name], value, "{name}");
    }
}

#[test]
fn a_streamed_response_reaches_the_client_before_the_upstream_finishes() {
    let serve = start(Options::default());
    let s = send(serve.listen, "GET", "/stream", &[], b"");
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    );
    // The upstream is still waiting for /release: only a streaming proxy delivers this chunk now.
    assert_eq!(read_chunk(&mut r).unwrap(), b"first\n");
    // The open stream counts as in flight until its last frame.
    let in_flight = r#"knext_serve_inflight_requests{handler="proxy"}"#;
    assert!(serve.metrics_text().contains(&format!("{in_flight} 1")));
    assert_eq!(get(serve.listen, "/release").status, 200);
    let mut rest = Vec::new();
    while let Some(c) = read_chunk(&mut r) {
        rest.extend(c);
    }
    assert_eq!(rest, b"second\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !serve.metrics_text().contains(&format!("{in_flight} 0")) {
        assert!(Instant::now() < deadline, "the stream still counts as in flight");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn requests_wait_for_a_slow_starting_app_instead_of_failing() {
    let serve = start(Options {
        env: vec![("START_DELAY_MS", "1500".to_owned())],
        wait_ready: false,
        ..Options::default()
    });
    let started = Instant::now();
    let r = get(serve.listen, "/api/health");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
}

/// Reads until the server closes the connection (a reset counts); `false` if it is still open after
/// `within`.
fn closed_within(mut s: &TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            false
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn slow_silent_and_idle_clients_are_disconnected_but_bodies_take_their_time() {
    let timeout = Duration::from_secs(1);
    let log = tempfile::NamedTempFile::new().unwrap();
    let serve = start(Options {
        args: vec!["--header-read-timeout-secs".into(), "1".into()],
        log: Some(log.reopen().unwrap()),
        ..Options::default()
    });
    // Bodies are not timed: a stream and an upload that outlast the header timeout.
    let mut stream = BufReader::new(send(serve.listen, "GET", "/stream", &[], b""));
    assert_eq!(read_head(&mut stream).0, 200);
    assert_eq!(read_chunk(&mut stream).unwrap(), b"first\n");
    let upload_size = 64 * 1024;
    let mut upload = send_head(
        serve.listen,
        "POST",
        "/upload",
        &[("content-length", &upload_size.to_string())],
    );
    upload.write_all(&vec![b'x'; upload_size / 2]).unwrap();

    // Silent, half a head, idle after an answer: each closed, and not before the timeout.
    let started = Instant::now();
    let silent = TcpStream::connect(serve.listen).unwrap();
    let half = TcpStream::connect(serve.listen).unwrap();
    (&half)
        .write_all(b"GET /api/health HTTP/1.1\r\nhost: app.example\r\nx-slow: 1")
        .unwrap();
    let idle = TcpStream::connect(serve.listen).unwrap();
    (&idle)
        .write_all(b"GET /api/health HTTP/1.1\r\nhost: app.example\r\n\r\n")
        .unwrap();
    let mut idle_reader = BufReader::new(&idle);
    assert_eq!(read_response(&mut idle_reader, "GET").status, 200);
    // (Nothing else was sent: the reader holds nothing more.)
    drop(idle_reader);
    for (what, s) in [("idle", &idle), ("silent", &silent), ("half a head", &half)] {
        assert!(closed_within(s, Duration::from_secs(20)), "{what}: still open");
    }
    assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());

    // Both bodies are still going past the timeout, and finish.
    upload.write_all(&vec![b'x'; upload_size / 2]).unwrap();
    let r = read_response(&mut BufReader::new(upload), "POST");
    assert_eq!((r.status, &r.json()["bytes"]), (200, &upload_size.into()));
    assert_eq!(get(serve.listen, "/release").status, 200);
    assert_eq!(read_chunk(&mut stream).unwrap(), b"second\n");

    // The default cap (no --max-connections) is what the open-files limit leaves room for.
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    drop(serve);
    let started_line = log_lines(log.path())
        .into_iter()
        .find(|l| l["fields"]["message"] == "knext serve started")
        .unwrap();
    assert_eq!(
        started_line["fields"]["max_connections"],
        knext::serve::default_max_connections(Some(soft)) as u64,
        "{started_line}"
    );
    assert_eq!(started_line["fields"]["header_read_timeout_secs"], 1);
}

#[test]
fn connections_past_the_cap_wait_for_a_free_slot() {
    let serve = start(Options {
        args: vec!["--max-connections".into(), "2".into()],
        ..Options::default()
    });
    // Two silent connections hold both slots (the listen backlog is first in, first out).
    let held = [
        TcpStream::connect(serve.listen).unwrap(),
        TcpStream::connect(serve.listen).unwrap(),
    ];
    let mut waiting = send(serve.listen, "GET", "/api/health", &[], b"");
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let e = waiting.read(&mut [0; 1]).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "answered past the cap: {e}"
    );
    // Not accepted (two open), and the metrics server answers meanwhile.
    let m = serve.metrics_text();
    assert!(m.contains("knext_serve_open_connections 2\n"), "{m}");
    drop(held);
    waiting.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(read_response(&mut BufReader::new(waiting), "GET").status, 200);
    assert_eq!(get(serve.listen, "/api/health").status, 200);
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_0_with_metrics_last() {
    let mut serve = start(Options::default());
    let listen = serve.listen;
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        (get(listen, "/slow?ms=1500"), started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    serve.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    // A second signal does not restart or shorten the drain.
    serve.signal(Signal::SIGTERM);
    // Draining: new connections are refused (once the accept loop has seen the signal), metrics
    // still answer.
    let deadline = Instant::now() + Duration::from_secs(1);
    while TcpStream::connect(listen).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect(listen).is_err(),
        "still accepting after SIGTERM"
    );
    assert_eq!(get(serve.metrics, "/metrics").status, 200);
    let (r, took) = slow.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "slow done");
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    let (code, _) = serve.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(
        TcpStream::connect(serve.metrics).is_err(),
        "metrics still served after exit"
    );
}

#[test]
fn a_child_exiting_143_on_our_sigterm_drained_cleanly_and_serve_exits_0() {
    // Next.js exits 143 (128 + SIGTERM) once it has drained; any other status is the child's own.
    for (child_code, want) in [("143", 0), ("3", 3)] {
        let mut serve = start(Options {
            env: vec![("SIGTERM_EXIT_CODE", child_code.to_owned())],
            ..Options::default()
        });
        serve.signal(Signal::SIGTERM);
        let (code, _) = serve.wait(Duration::from_secs(10));
        assert_eq!(code, Some(want), "child exited {child_code}");
    }
}

#[test]
fn a_child_ignoring_sigterm_is_killed_at_the_cap_and_the_exit_is_nonzero() {
    let mut serve = start(Options {
        env: vec![
            ("IGNORE_SIGTERM", "1".to_owned()),
            ("KNEXT_SHUTDOWN_GRACE_MS", "1000".to_owned()),
        ],
        ..Options::default()
    });
    let env = get(serve.listen, "/env").json();
    let upstream: u16 = env["PORT"].as_str().unwrap().parse().unwrap();
    serve.signal(Signal::SIGTERM);
    let (code, took) = serve.wait(Duration::from_secs(10));
    assert_eq!(code, Some(1));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // The child is gone with it.
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        TcpStream::connect(("127.0.0.1", upstream)).is_err(),
        "the child survived"
    );
}

#[test]
fn a_child_that_exits_on_its_own_ends_serve_with_its_status() {
    let mut serve = start(Options::default());
    let _ = std::panic::catch_unwind(|| get(serve.listen, "/exit/3"));
    let (code, _) = serve.wait(Duration::from_secs(10));
    assert_eq!(code, Some(3));
}

#[test]
fn the_rendered_cache_handler_and_serve_close_the_loop() {
    let redis = Redis::start();
    let handler = root().join("generated/next/cache-handler.cjs");
    let serve = with_redis(
        &redis,
        vec![("KNEXT_CACHE_HANDLER", handler.to_string_lossy().into_owned())],
    );
    assert_eq!(get(serve.listen, "/cache/set?key=/blog/a&tag=posts").status, 200);
    assert_eq!(get(serve.listen, "/cache/set?key=/team&tag=users").status, 200);
    let hit = get(serve.listen, "/cache/get?key=/blog/a");
    assert_eq!(hit.status, 200);
    assert_eq!(hit.json()["html"], "<p>/blog/a</p>");
    let bearer = format!("Bearer {TOKEN}");
    let r = invalidate(serve.listen, Some(&bearer), r#"{"tag":"posts"}"#);
    assert_eq!(r.json()["deleted"], 1);
    assert_eq!(get(serve.listen, "/cache/get?key=/blog/a").status, 404);
    assert_eq!(get(serve.listen, "/cache/get?key=/team").status, 200);
    // Both sides log to the same list; the stats count them.
    // The handler logs fire-and-forget: wait (bounded) for its last event, the MISS.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut j = get(serve.listen, "/api/cache/events").json();
    while j["stats"]["misses"] != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        j = get(serve.listen, "/api/cache/events").json();
    }
    let stats = &j["stats"];
    assert_eq!(
        (stats["sets"].as_u64(), stats["hits"].as_u64()),
        (Some(2), Some(2)),
        "{j}"
    );
    assert_eq!(
        (stats["misses"].as_u64(), stats["invalidations"].as_u64()),
        (Some(1), Some(1)),
        "{j}"
    );
    let sources: BTreeSet<&str> = j["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["source"].as_str())
        .collect();
    assert_eq!(sources, BTreeSet::from(["cache-handler", "knext-serve"]));
}

/// The children of `pid` as (pid, state) from /proc.
fn children(pid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f[1].parse::<u32>().ok() == Some(pid) {
            out.push((p, f[0].chars().next().unwrap()));
        }
    }
    out
}

#[test]
fn orphans_the_app_leaves_behind_are_reaped() {
    let serve = start(Options::default());
    let pid = serve.pid().as_raw() as u32;
    for _ in 0..3 {
        assert_eq!(get(serve.listen, "/orphan").status, 200);
    }
    // The orphaned `sleep 0.2`s are re-parented to knext serve (a child subreaper); once they exit,
    // only the Node server is left: no zombies.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut kids = children(pid);
    while kids.len() != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        kids = children(pid);
    }
    assert_eq!(kids.len(), 1, "only the Node server should be left: {kids:?}");
    assert!(kids.iter().all(|(_, state)| *state != 'Z'), "zombies: {kids:?}");
    // knext serve still serves, and still knows its own child.
    assert_eq!(get(serve.listen, "/api/health").status, 200);
}

#[test]
fn bad_configuration_exits_2_before_starting_anything() {
    for (env, needle) in [
        (
            vec![("KNEXT_SHUTDOWN_GRACE_MS", "soon")],
            "KNEXT_SHUTDOWN_GRACE_MS",
        ),
        (vec![("REDIS_URL", "http://:pw@cache:6379")], "REDIS_URL"),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_knext"));
        cmd.args([
            "serve",
            "--listen",
            &free_addr().to_string(),
            "--metrics-addr",
            &free_addr().to_string(),
            "--",
            "true",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!stderr.contains(":pw@"), "a credential was logged: {stderr}");
    }
    // No command after `--`: a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_knext"))
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
