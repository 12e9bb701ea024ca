//! `knext serve` in front of a real Next.js app: `tests/nextjs-app` (App Router, next 16.4.6 pinned by
//! its lockfile), built with `output: 'standalone'` and knext's generated cache handler by
//! `scripts/nextjs-test-app.sh` into `<target>/tmp/nextjs-app` (once per checkout and input change;
//! the first build needs the npm registry), run as `knext serve -- node server.js` in the standalone
//! directory with the environment the renderer gives app containers, and a real `redis-server`.
//!
//! The app defines its own `/api/cache/invalidate`, `/api/cache/events` and `/api/rum` (and a control,
//! `/api/cache/other`), each answering a marker body for every method: the marker must never come
//! back through `knext serve` for any spelling of an owned route.
//!
//! Needs `node` (>= 20.9) and `npm` besides `redis-server`. Without them the tests **fail** with the
//! script's message, in CI and locally alike: a skipped test would hide the one check that the
//! platform works with Next.js itself.

#![cfg(feature = "serve")]
#![allow(clippy::unwrap_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::serve::{Knext, Launch, Redis, Response, get, request, root, wait_until};

const TOKEN: &str = "nextjs-test-invalidate-token";
const PREFIX: &str = "itest";
/// What the app's own handlers answer (tests/nextjs-app/lib/marker.js).
const MARKER: &str = "NEXTJS-APP-HANDLER-REACHED";

/// The built standalone app, built (or found up to date) once per test process.
fn standalone() -> &'static Path {
    static APP: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = APP.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nextjs-app");
        let run = Command::new("bash")
            .arg(root().join("scripts/nextjs-test-app.sh"))
            .arg(&out)
            .output()
            .map_err(|e| format!("cannot run scripts/nextjs-test-app.sh: {e}"))?;
        let log = String::from_utf8_lossy(&run.stderr);
        if !run.status.success() {
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(format!(
                "scripts/nextjs-test-app.sh {} failed ({}):\n{}",
                out.display(),
                run.status,
                tail.join("\n")
            ));
        }
        Ok(out.join("standalone"))
    });
    match built {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// `knext serve -- node server.js` in the standalone app, with the environment the renderer sets
/// (`render::app::system_env`) and `extra`; its log and the app's go to `<target>/tmp/<name>.log`.
fn serve(name: &str, redis: &Redis, extra: Vec<(&'static str, String)>) -> Knext {
    let dir = standalone();
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("nextjs-{name}.log"));
    let mut env = vec![
        ("NODE_ENV", "production".to_owned()),
        ("NEXT_TELEMETRY_DISABLED", "1".to_owned()),
        ("KN_APP_NAME", "nextjs-test-app".to_owned()),
        ("KNEXT_SHUTDOWN_GRACE_MS", "20000".to_owned()),
        ("CACHE_PROVIDER", "redis".to_owned()),
        ("REDIS_URL", redis.url()),
        ("REDIS_KEY_PREFIX", PREFIX.to_owned()),
        ("CACHE_INVALIDATE_TOKEN", TOKEN.to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    env.extend(extra);
    let knext = Knext::start(Launch {
        dir: dir.to_owned(),
        args: Vec::new(),
        command: vec!["node".into(), "server.js".into()],
        env,
        log: Some(log.clone()),
        stderr: None,
    });
    // Through knext serve to the app: waits (bounded by --upstream-wait-secs) for Next.js to listen.
    let r = get(knext.listen, "/api/health");
    assert_eq!(r.status, 200, "the app did not come up: see {}", log.display());
    knext
}

/// The spellings of `route` (`/api/rum`, `/api/cache/invalidate`) the table tries: encodings, dot
/// segments, slashes, case, the decorations Next.js strips, request-target forms, unreadable forms.
fn spellings(route: &str, build_id: &str) -> Vec<String> {
    let (parent, last) = route.rsplit_once('/').unwrap();
    let rest = route.strip_prefix("/api").unwrap();
    let (body, final_char) = last.split_at(last.len() - 1);
    vec![
        route.to_owned(),
        format!("{route}/"),
        format!("{parent}/./{last}"),
        format!("/api/x/..{rest}"),
        format!("{parent}%2F{last}"),
        format!("{parent}%2f{last}"),
        format!("{parent}/{body}%{:02x}", final_char.as_bytes()[0]),
        format!("/%61pi{rest}"),
        route.replace('/', "//"),
        format!("{parent}/%2e/{last}"),
        format!("/api/x/%2E%2E{rest}"),
        format!("/api/x/.%2e{rest}"),
        format!("{parent}/%252e/{last}"),
        format!("{parent}%252F{last}"),
        format!("/{}", route[1..].replace('/', "\\")),
        route.to_ascii_uppercase(),
        format!("{route}.rsc"),
        format!("{route}.prefetch.rsc"),
        format!("{route}.segments/_tree.segment.rsc"),
        format!("/_next/data/{build_id}{route}.json"),
        format!("{route}/index"),
        format!("http://app.example{route}"),
        format!("http://app.example{parent}/./{last}"),
        format!("{route}?x=1"),
        format!("{route}#fragment"),
        format!("{route}%00"),
        format!("{route}/%ZZ/.."),
        format!("{route}/x//.."),
    ]
}

const OWNED: [&str; 3] = ["/api/cache/invalidate", "/api/cache/events", "/api/rum"];
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn marker(r: &Response) -> bool {
    r.text().contains(MARKER)
}

#[test]
fn no_spelling_of_an_owned_route_reaches_the_apps_own_handlers() {
    let redis = Redis::start();
    let knext = serve("spellings", &redis, vec![]);
    let build_id = std::fs::read_to_string(standalone().join(".next/BUILD_ID")).unwrap();
    let internal = [
        (
            "x-middleware-subrequest",
            "middleware:middleware:middleware:middleware:middleware",
        ),
        ("x-invoke-path", "/api/cache/invalidate"),
        ("x-matched-path", "/api/cache/invalidate"),
        ("x-now-route-matches", "1"),
    ];
    let mut table = Vec::new();
    let mut leaked = Vec::new();
    let mut sent = 0;
    for route in OWNED {
        for target in spellings(route, build_id.trim()) {
            // Next.js itself, without knext serve: which spellings reach the handler?
            let direct = request(knext.upstream, "POST", &target, &[], b"{}");
            table.push(format!(
                "{:>4} {:6} {target}",
                direct.status,
                if marker(&direct) { MARKER } else { "" }
            ));
            for method in METHODS {
                for headers in [&[][..], &internal[..]] {
                    let r = request(knext.listen, method, &target, headers, b"{}");
                    sent += 1;
                    if marker(&r) {
                        leaked.push(format!(
                            "{method} {target} ({} headers): {}",
                            headers.len(),
                            r.text()
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "POST straight to Next.js 16.4.6 (status, marker, target):\n{}",
        table.join("\n")
    );
    assert!(sent >= 3 * 12 * 4, "{sent}");
    assert!(
        leaked.is_empty(),
        "reached the app's handler through knext serve:\n{}",
        leaked.join("\n")
    );

    // The table is worth something: Next.js on its own routes these to the app's handler (the
    // issue's report), and through knext serve the same handlers answer other paths.
    for target in [
        "/api/cache/./invalidate",
        "/api/x/../cache/invalidate",
        "/api/x/%2E%2E/cache/invalidate",
    ] {
        let direct = request(knext.upstream, "POST", target, &[], b"{}");
        assert!(
            marker(&direct),
            "Next.js did not route {target} to the handler: {}",
            direct.text()
        );
    }
    for (target, handler) in [
        ("/api/cache/other", "/api/cache/other"),
        ("/api/cache/./other", "/api/cache/other"),
        ("/api/x/../cache/other", "/api/cache/other"),
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let r = request(knext.listen, method, target, &[], b"");
            assert_eq!(r.status, 200, "{method} {target}: {}", r.text());
            assert!(
                r.text().starts_with(&format!("{MARKER} {handler} {method} ")),
                "{}",
                r.text()
            );
        }
    }
    // Internal headers cannot send a forwarded request to an owned route's handler either.
    let r = request(knext.listen, "POST", "/api/cache/other", &internal, b"{}");
    assert!(
        r.text().starts_with(&format!("{MARKER} /api/cache/other POST")),
        "{}",
        r.text()
    );
    // The owned routes answered as themselves.
    let r = request(knext.listen, "POST", "/api/cache/./invalidate", &[], b"{}");
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("Unauthorized"))
    );
    // A spelling of the events endpoint shares its token bucket (20 burst, 2/s; the table's reads
    // have drawn on it): it is rate-limited like the canonical path, and answered once a token is back.
    let r = (0..100)
        .map(|_| get(knext.listen, "/api/cache/event%73"))
        .find(|r| r.status != 200)
        .expect("100 reads in a row were never rate-limited");
    assert_eq!(r.status, 429, "{}", r.text());
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    std::thread::sleep(std::time::Duration::from_secs(wait));
    let r = get(knext.listen, "/api/cache/event%73");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["stats"].is_object());
}

/// The page's `run=N` (tests/nextjs-app/app/isr/page.js): how many times its data was computed.
fn run_of(page: &Response) -> u64 {
    let text = page.text();
    let at = text
        .find("posts run=")
        .unwrap_or_else(|| panic!("no run in the page: {text}"));
    let digits: String = text[at + 10..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

fn invalidate(addr: SocketAddr, auth: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    request(
        addr,
        "POST",
        "/api/cache/invalidate",
        &headers,
        br#"{"tag":"posts"}"#,
    )
}

#[test]
fn isr_lives_in_redis_and_an_authenticated_invalidation_renders_fresh_content() {
    let redis = Redis::start();
    let knext = serve("isr", &redis, vec![]);
    let first = get(knext.listen, "/isr");
    assert_eq!(first.status, 200, "{}", first.text());
    // The entries land in Redis, under the prefix, through knext's cache handler (it writes them
    // after answering: poll). Next.js 16 keys the page `/route-cache/APP_PAGE/<hash>/$/isr`.
    let page_cached = || {
        redis
            .keys(&format!("{PREFIX}:cache:*"))
            .iter()
            .any(|k| k.ends_with("/isr"))
    };
    wait_until(Duration::from_secs(10), "no ISR entry in Redis", page_cached);
    let entries = redis.keys(&format!("{PREFIX}:cache:*"));
    assert!(
        entries.len() >= 2,
        "the page and its unstable_cache data: {entries:?}"
    );
    let mut tagged: Vec<String> = redis.cmd(&["SMEMBERS", &format!("{PREFIX}:tag:posts")]);
    tagged.sort();
    let mut keys: Vec<String> = entries.iter().map(|k| k[PREFIX.len() + 7..].to_owned()).collect();
    keys.sort();
    assert_eq!(tagged, keys, "both entries are tagged posts");

    // Cached: the same render comes back.
    let cached = get(knext.listen, "/isr");
    let run = run_of(&cached);
    assert_eq!(run_of(&get(knext.listen, "/isr")), run);

    // Without the token nothing changes.
    let before = redis.dump();
    for auth in [None, Some("Bearer wrong"), Some(&*format!("bearer {TOKEN}"))] {
        assert_eq!(invalidate(knext.listen, auth).status, 401, "{auth:?}");
    }
    assert_eq!(
        redis
            .dump()
            .lines()
            .filter(|l| !l.contains("cache-events"))
            .collect::<Vec<_>>(),
        before
            .lines()
            .filter(|l| !l.contains("cache-events"))
            .collect::<Vec<_>>()
    );
    assert_eq!(run_of(&get(knext.listen, "/isr")), run);

    // With it, the tag's entries go and the next request renders fresh data.
    let r = invalidate(knext.listen, Some(&format!("Bearer {TOKEN}")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["deleted"].as_u64().unwrap() >= 2, "{}", r.text());
    assert!(!page_cached(), "{:?}", redis.keys("*"));
    let fresh = get(knext.listen, "/isr");
    assert_eq!(fresh.status, 200);
    assert!(run_of(&fresh) > run, "not fresh: {} after {run}", run_of(&fresh));
    // ... and is cached again.
    wait_until(
        Duration::from_secs(10),
        "the fresh render was not cached",
        page_cached,
    );
    assert_eq!(run_of(&get(knext.listen, "/isr")), run_of(&fresh));
}

#[test]
fn sigterm_lets_an_in_flight_request_finish_and_after_run_then_exits_0() {
    let redis = Redis::start();
    let marker_dir = tempfile::tempdir().unwrap();
    let marker_file = marker_dir.path().join("after-ran");
    let mut knext = serve(
        "sigterm",
        &redis,
        vec![("AFTER_MARKER_FILE", marker_file.to_string_lossy().into_owned())],
    );
    let listen = knext.listen;
    let slow = std::thread::spawn(move || get(listen, "/api/slow?ms=1500&after_ms=500"));
    let in_flight = r#"knext_serve_inflight_requests{handler="proxy"} 1"#;
    wait_until(
        Duration::from_secs(10),
        "the slow request is not in flight",
        || knext.metrics_text().contains(in_flight),
    );
    knext.signal(Signal::SIGTERM);
    let r = slow.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"));
    let (code, took) = knext.wait(Duration::from_secs(25));
    assert_eq!(code, Some(0), "after {took:?}");
    // Next.js exits only after its after() callbacks: the marker is there once knext serve is gone.
    let written =
        std::fs::read_to_string(&marker_file).unwrap_or_else(|e| panic!("after() did not run: {e}"));
    assert!(written.starts_with("after "), "{written}");
}
