//! A private `moto_server` (PyPI `moto[server]`, an S3-compatible server) on a free loopback port,
//! killed on drop, with raw-HTTP helpers for what the tests need (create a bucket, put and list
//! objects). `KNEXT_TEST_MOTO_SERVER`, `PATH`, or `scripts/test-tools.sh`'s venv, installed on first
//! use (as the operator's cleanup tests do).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
}

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KNEXT_TEST_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([root.join("target/test-tools/bin")])
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file());
    if let Some(found) = found {
        return found;
    }
    let out = Command::new("bash")
        .arg(root.join("scripts/test-tools.sh"))
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "moto_server is missing and scripts/test-tools.sh failed: install it with scripts/test-tools.sh"
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default(),
    )
    .join("moto_server")
}

impl Moto {
    pub fn start() -> Self {
        let port = super::fake_api::free_addr().port();
        let mut child = Command::new(binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "moto_server exited");
            assert!(Instant::now() < deadline, "moto_server did not listen");
            std::thread::sleep(Duration::from_millis(25));
        }
        Self { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One request without credentials (moto accepts them until told otherwise); the response text.
    fn request(&self, method: &str, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{method} {path}: {answer}");
        answer
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.request("PUT", &format!("/{bucket}"), "");
    }

    pub fn put(&self, bucket: &str, key: &str) {
        self.request("PUT", &format!("/{bucket}/{key}"), key);
    }

    /// Every key in `bucket` (one ListObjectsV2 page: tests keep under 1,000), sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let answer = self.request("GET", &format!("/{bucket}?list-type=2"), "");
        let mut keys: Vec<String> = answer
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
