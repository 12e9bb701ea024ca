//! What the `knext serve` process tests share (tests/serve.rs, tests/nextjs.rs): a private
//! `redis-server` on a free loopback port, a small HTTP/1.1 client over `TcpStream` that sends request
//! targets byte for byte (no normalisation) and shows exactly what came back (status, headers, body,
//! trailers), and `knext serve` itself as a process in its own process group.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A loopback address nothing listens on (yet).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Polls `ready` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} (waited {limit:?})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- Redis ------------------------------------------------------------------------------------

/// A private redis-server, killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_on(free_addr().port())
    }

    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it (apt-get install redis-server)")
            });
        let redis = Self { child, port };
        wait_until(Duration::from_secs(10), "redis-server did not start", || {
            redis.conn_try().is_ok()
        });
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn conn_try(&self) -> redis::RedisResult<redis::Connection> {
        let c = redis::Client::open(self.url())?.get_connection()?;
        Ok(c)
    }

    fn conn(&self) -> redis::Connection {
        self.conn_try().unwrap()
    }

    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(&mut self.conn()).unwrap()
    }

    /// Keys matching `pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.cmd(&["KEYS", pattern]);
        keys.sort();
        keys
    }

    /// Every key with its type and value, sorted: what "unchanged" means.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for k in self.keys("*") {
            let kind: String = self.cmd(&["TYPE", &k]);
            let value = match kind.as_str() {
                "string" => self.cmd::<String>(&["GET", &k]),
                "set" => {
                    let m: BTreeSet<String> = self.cmd(&["SMEMBERS", &k]);
                    format!("{m:?}")
                }
                "list" => format!("{:?}", self.cmd::<Vec<String>>(&["LRANGE", &k, "0", "-1"])),
                other => other.to_owned(),
            };
            out.push_str(&format!("{k} {kind} {value}\n"));
        }
        out
    }

    /// The layout the cache handler writes: two entries tagged `posts`, one tagged `users`.
    pub fn seed(&self, prefix: &str) {
        for (key, tag) in [("/blog/a", "posts"), ("/blog/b", "posts"), ("/team", "users")] {
            let _: () = self.cmd(&[
                "SET",
                &format!("{prefix}:cache:{key}"),
                &format!(r#"{{"value":"{key}"}}"#),
            ]);
            let _: () = self.cmd(&["SADD", &format!("{prefix}:tag:{tag}"), key]);
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- HTTP client ------------------------------------------------------------------------------

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

pub fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no status line: {line:?}"))
        .parse()
        .unwrap();
    (status, read_fields(r))
}

pub fn read_fields(r: &mut impl BufRead) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            return headers;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
}

/// Reads one chunk of a chunked body; `None` at the last chunk.
pub fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    r.read_line(&mut size).unwrap();
    let n = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
    if n == 0 {
        return None;
    }
    let mut data = vec![0; n];
    r.read_exact(&mut data).unwrap();
    let mut crlf = [0; 2];
    r.read_exact(&mut crlf).unwrap();
    Some(data)
}

/// Sends one request; `target` goes on the request line exactly as given.
pub fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: app.example\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

/// Sends a request's head only (the body is the caller's to write).
pub fn send_head(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: app.example\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// One request and its whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let s = send(addr, method, target, headers, body);
    read_response(&mut BufReader::new(s), method)
}

/// Reads one response (to a request with `method`) off a connection.
pub fn read_response(r: &mut impl BufRead, method: &str) -> Response {
    let (status, headers) = read_head(r);
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
    };
    if method == "HEAD" || status == 204 || status == 304 {
        return resp;
    }
    if resp.header("transfer-encoding") == Some("chunked") {
        while let Some(chunk) = read_chunk(r) {
            resp.body.extend(chunk);
        }
        resp.trailers = read_fields(r);
    } else if let Some(n) = resp.header("content-length") {
        let mut body = vec![0; n.parse().unwrap()];
        r.read_exact(&mut body).unwrap();
        resp.body = body;
    } else {
        r.read_to_end(&mut resp.body).unwrap();
    }
    resp
}

pub fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, "GET", target, &[], b"")
}

// ---- knext serve ------------------------------------------------------------------------------

/// How to start `knext serve`.
pub struct Launch<'a> {
    /// Its working directory (where `.next/routes-manifest.json` is looked for).
    pub dir: PathBuf,
    /// Options before `--` beyond `--listen`, `--metrics-addr` and `--upstream-port`.
    pub args: Vec<String>,
    /// The app server's command, after `--`.
    pub command: Vec<OsString>,
    /// The whole environment besides `PATH`.
    pub env: Vec<(&'a str, String)>,
    /// Where its (and the child's) stdout and stderr go; nowhere when `None`.
    pub log: Option<PathBuf>,
    /// Where its (and the child's) stderr alone goes, instead of `log` (knext serve logs JSON lines to
    /// stderr).
    pub stderr: Option<std::fs::File>,
}

/// A running `knext serve` (and its child), in a process group of its own that Drop kills.
pub struct Knext {
    child: Option<Child>,
    pub listen: SocketAddr,
    pub metrics: SocketAddr,
    pub upstream: SocketAddr,
}

impl Knext {
    /// Starts it and waits (bounded) until both of its listeners accept connections.
    pub fn start(launch: Launch<'_>) -> Self {
        let listen = free_addr();
        let metrics = free_addr();
        let upstream = free_addr();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_knext"));
        cmd.current_dir(&launch.dir)
            .args(["serve", "--listen", &listen.to_string()])
            .args(["--metrics-addr", &metrics.to_string()])
            .args(["--upstream-port", &upstream.port().to_string()])
            .args(&launch.args)
            .arg("--")
            .args(&launch.command)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Its own process group, so Drop can take the child down with it.
            .process_group(0);
        match &launch.log {
            Some(path) => {
                let file = std::fs::File::create(path).unwrap();
                cmd.stdout(file.try_clone().unwrap()).stderr(file);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        if let Some(file) = launch.stderr {
            cmd.stderr(file);
        }
        for (k, v) in &launch.env {
            cmd.env(k, v);
        }
        let knext = Self {
            child: Some(cmd.spawn().unwrap()),
            listen,
            metrics,
            upstream,
        };
        wait_until(
            Duration::from_secs(20),
            "knext serve did not start listening",
            || TcpStream::connect(listen).is_ok() && TcpStream::connect(metrics).is_ok(),
        );
        knext
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    pub fn signal(&self, s: Signal) {
        kill(self.pid(), s).unwrap();
    }

    /// Waits for the exit (at most `limit`); returns the code and how long it took.
    pub fn wait(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let mut child = self.child.take().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = kill(Pid::from_raw(-(child.id() as i32)), Signal::SIGKILL);
                let _ = child.wait();
                panic!("knext serve did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn metrics_text(&self) -> String {
        get(self.metrics, "/metrics").text()
    }
}

impl Drop for Knext {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The whole group: knext serve and its child (SIGKILL leaves knext serve no chance to
            // stop it).
            let _ = kill(Pid::from_raw(-(c.id() as i32)), Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}
