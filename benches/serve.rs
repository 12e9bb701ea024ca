//! `knext serve`'s cost, measured with `wrk` on loopback against the same Node.js server hit directly
//! (the baseline, same run): one Node process (`tests/support/app-server.mjs`, `GET /api/health`)
//! started by `knext serve` as its child, so "direct" and "through knext serve" reach the very same
//! server.
//!
//! 1. **Added latency**: one connection (`wrk -c1`), p50 and p99 direct and through knext serve; the
//!    difference is what the proxy adds.
//! 2. **Throughput**: `KNEXT_BENCH_CONNECTIONS` connections (default 32), requests/s direct and through
//!    knext serve, as a ratio.
//!    The same with `KNEXT_BENCH_WORK_US` (default 1000) microseconds of Node CPU per request
//!    (`/work`), as rendering a page costs.
//! 3. **Memory**: knext serve's resident set (VmRSS) and peak (VmHWM) after the load.
//! 4. **The brute-force path**: unauthenticated `POST /api/cache/invalidate` (a wrong bearer token of
//!    the right length), as fast as wrk sends it: knext serve's CPU time (utime + stime from
//!    /proc/<pid>/stat) per request, and requests/s.
//!
//! Each wrk run lasts `KNEXT_BENCH_SECS` seconds (default 10). Needs `wrk` and `node` on PATH.
//! Run: `cargo bench --bench serve` (figures in BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one wrk run reported.
#[derive(Debug, Default)]
struct Wrk {
    requests: u64,
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    non_2xx: u64,
}

fn micros(v: &str) -> f64 {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, connections: u64, secs: u64, script: Option<&std::path::Path>) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wrk ({e}): apt-get install wrk"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    let mut w = Wrk::default();
    for line in text.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["50%", v] => w.p50_us = micros(v),
            ["99%", v] => w.p99_us = micros(v),
            ["Requests/sec:", v] => w.per_sec = v.parse().unwrap(),
            [n, "requests", "in", ..] => w.requests = n.parse().unwrap(),
            ["Non-2xx", "or", "3xx", "responses:", n] => w.non_2xx = n.parse().unwrap(),
            _ => {}
        }
    }
    assert!(w.requests > 0, "wrk reported no requests:\n{text}");
    w
}

fn proc_status(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// utime + stime in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0 // USER_HZ
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGTERM to the group: knext serve drains and stops its child; SIGKILL if that hangs.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and friends
    }
    let secs = env_or("KNEXT_BENCH_SECS", 10);
    let conns = env_or("KNEXT_BENCH_CONNECTIONS", 32);
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let listen = free_addr();
    let metrics = free_addr();
    let upstream = free_addr();
    let token = "b".repeat(32);
    let child = Command::new(env!("CARGO_BIN_EXE_knext"))
        .args([
            "serve",
            "--listen",
            &listen.to_string(),
            "--metrics-addr",
            &metrics.to_string(),
            "--upstream-port",
            &upstream.port().to_string(),
            "--",
            "node",
        ])
        .arg(root.join("tests/support/app-server.mjs"))
        .env("CACHE_INVALIDATE_TOKEN", &token)
        .env("RUST_LOG", "warn")
        // Its own process group, so Drop takes the Node child down too (and no orphan keeps the
        // bench's stderr open).
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _serve = Serve(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(upstream).is_err() || TcpStream::connect(listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "knext serve or its child did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let direct = format!("http://{upstream}/api/health");
    let proxied = format!("http://{listen}/api/health");
    // Warm both paths (JIT, connection pool).
    wrk(&direct, 4, 2, None);
    wrk(&proxied, 4, 2, None);
    let rss_idle = proc_status(pid, "VmRSS:");

    println!("knext serve vs. the same Node server hit directly (wrk, loopback, {secs} s per run)");
    let d1 = wrk(&direct, 1, secs, None);
    let p1 = wrk(&proxied, 1, secs, None);
    println!(
        "1 connection: p50 {:.0} us direct, {:.0} us through knext serve: +{:.0} us; p99 {:.0} us vs {:.0} us",
        d1.p50_us,
        p1.p50_us,
        p1.p50_us - d1.p50_us,
        d1.p99_us,
        p1.p99_us
    );
    let dn = wrk(&direct, conns, secs, None);
    let cpu_before = cpu_seconds(pid);
    let pn = wrk(&proxied, conns, secs, None);
    let cpu_proxy = cpu_seconds(pid) - cpu_before;
    let rss = proc_status(pid, "VmRSS:");
    let hwm = proc_status(pid, "VmHWM:");
    println!(
        "{conns} connections: {:.0} req/s direct, {:.0} req/s through knext serve: {:.1}% of direct \
         (p50 {:.0} us vs {:.0} us); knext serve CPU {:.1} us per proxied request",
        dn.per_sec,
        pn.per_sec,
        100.0 * pn.per_sec / dn.per_sec,
        dn.p50_us,
        pn.p50_us,
        cpu_proxy * 1e6 / pn.requests as f64
    );
    assert_eq!(pn.non_2xx, 0, "proxied requests failed");
    println!(
        "knext serve memory: VmRSS {:.1} MiB idle, {:.1} MiB after load, peak (VmHWM) {:.1} MiB",
        rss_idle as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );

    // The same comparison when each request costs the Node server CPU, as rendering a page does.
    let work_us = env_or("KNEXT_BENCH_WORK_US", 1000);
    let direct_work = format!("http://{upstream}/work?us={work_us}");
    let proxied_work = format!("http://{listen}/work?us={work_us}");
    let dw = wrk(&direct_work, conns, secs, None);
    let pw = wrk(&proxied_work, conns, secs, None);
    println!(
        "{conns} connections, {work_us} us of Node CPU per request: {:.0} req/s direct, {:.0} req/s through \
         knext serve: {:.1}% of direct (p50 {:.0} us vs {:.0} us)",
        dw.per_sec,
        pw.per_sec,
        100.0 * pw.per_sec / dw.per_sec,
        dw.p50_us,
        pw.p50_us
    );
    assert_eq!(pw.non_2xx, 0, "proxied requests failed");

    let script = std::env::temp_dir().join(format!("knext-bench-invalidate-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{{\"tag\":\"posts\"}}'\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {}\"\n",
            "a".repeat(token.len())
        ),
    )
    .unwrap();
    let cpu_before = cpu_seconds(pid);
    let inv = wrk(
        &format!("http://{listen}/api/cache/invalidate"),
        conns,
        secs,
        Some(&script),
    );
    let cpu = cpu_seconds(pid) - cpu_before;
    let _ = std::fs::remove_file(&script);
    assert_eq!(
        inv.non_2xx, inv.requests,
        "every unauthenticated invalidation must be refused"
    );
    println!(
        "unauthenticated POST /api/cache/invalidate: {:.0} req/s, all 401; knext serve CPU {:.1} us per request, \
         p50 latency {:.0} us at {conns} connections",
        inv.per_sec,
        cpu * 1e6 / inv.requests as f64,
        inv.p50_us
    );
    let hwm = proc_status(pid, "VmHWM:");
    println!(
        "knext serve peak (VmHWM) after everything: {:.1} MiB",
        hwm as f64 / 1024.0
    );
}
