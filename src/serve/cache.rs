//! The fleet-wide Next.js cache in Redis, as `knext serve` sees it: tag invalidation, the event log and
//! its statistics. The layout ([`crate::api::cache`]) is the one the cache handler knext renders
//! (`templates/cache-handler.cjs.j2`) reads and writes:
//!
//! - entries at `<prefix>:cache:<key>`;
//! - a tag index set `<prefix>:tag:<tag>` whose members are raw keys;
//! - events, JSON objects `{id, timestamp, type, source, key, tag?, durationMs?, details?}`, LPUSHed to
//!   `<prefix>:cache-events` and trimmed to 200.
//!
//! Invalidating tags reads each tag's members, then in one MULTI/EXEC deletes every member's entry,
//! removes exactly those members from the tag set (Redis drops a set when its last member goes, so the
//! set is deleted, yet a key tagged concurrently, between the read and the transaction, stays indexed
//! for the next invalidation); then it records one `INVALIDATE` event per tag with the number of
//! entries deleted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use crate::api::cache as layout;

/// Why the cache could not answer (every one is a 503: never a false "done").
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// No `REDIS_URL`.
    #[error("the cache is not configured: REDIS_URL is not set")]
    NotConfigured,
    /// Redis did not answer, or answered with an error.
    #[error("the cache is unavailable: {0}")]
    Unavailable(String),
}

impl CacheError {
    /// What a client is told: a fixed sentence per kind. The detail ([`std::fmt::Display`]: Redis's
    /// own error text, addresses, OS errors) is for the log, never for a response body.
    pub fn public_message(&self) -> &'static str {
        match self {
            Self::NotConfigured => "the cache is not configured: REDIS_URL is not set",
            Self::Unavailable(_) => "the cache is unavailable",
        }
    }
}

/// Counts of an event list.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// `HIT` events.
    pub hits: u64,
    /// `MISS` events.
    pub misses: u64,
    /// `SET` events.
    pub sets: u64,
    /// `DELETE` events.
    pub deletes: u64,
    /// `INVALIDATE` events (tags invalidated through `knext serve`).
    pub invalidations: u64,
    /// `REVALIDATE` events (tags revalidated by the app through its cache handler).
    pub revalidations: u64,
    /// hits / (hits + misses), 0 when neither occurred.
    pub hit_rate: f64,
    /// Events counted.
    pub total_events: u64,
}

impl Stats {
    /// Counts the events of a list.
    pub fn of(events: &[Value]) -> Self {
        let mut s = Self::default();
        for e in events {
            match e.get("type").and_then(Value::as_str) {
                Some("HIT") => s.hits += 1,
                Some("MISS") => s.misses += 1,
                Some("SET") => s.sets += 1,
                Some("DELETE") => s.deletes += 1,
                Some("INVALIDATE") => s.invalidations += 1,
                Some("REVALIDATE") => s.revalidations += 1,
                _ => {}
            }
        }
        s.total_events = events.len() as u64;
        let looked_up = s.hits + s.misses;
        if looked_up > 0 {
            s.hit_rate = s.hits as f64 / looked_up as f64;
        }
        s
    }
}

/// Result of an invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidated {
    /// Entries deleted, over all tags.
    pub deleted: u64,
}

/// Connection settings read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `REDIS_URL`.
    pub url: Option<String>,
    /// `REDIS_USERNAME` (overrides the URL's).
    pub username: Option<String>,
    /// `REDIS_PASSWORD` (overrides the URL's; from a Secret, never the manifest).
    pub password: Option<String>,
    /// `REDIS_KEY_PREFIX`, or [`layout::DEFAULT_PREFIX`].
    pub prefix: String,
    /// Connect and response timeout.
    pub timeout: Duration,
}

impl Config {
    /// From `REDIS_URL`, `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_KEY_PREFIX` and
    /// `KNEXT_CACHE_TIMEOUT_MS` (default 1000).
    pub fn from_env() -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Self {
            url: var("REDIS_URL"),
            username: var("REDIS_USERNAME"),
            password: var("REDIS_PASSWORD"),
            prefix: var("REDIS_KEY_PREFIX").unwrap_or_else(|| layout::DEFAULT_PREFIX.to_owned()),
            timeout: Duration::from_millis(
                var("KNEXT_CACHE_TIMEOUT_MS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1000),
            ),
        }
    }
}

/// The Redis cache. One multiplexed connection, opened on first use and dropped after any connection
/// error, so the next request reconnects; every command is bounded by the timeout.
pub struct Cache {
    client: Option<redis::Client>,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the password: print only what is safe.
        f.debug_struct("Cache")
            .field("configured", &self.client.is_some())
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn unavailable(e: impl std::fmt::Display) -> CacheError {
    CacheError::Unavailable(e.to_string())
}

impl Cache {
    /// A cache for `config`; an unparsable URL is an error (named without its credentials).
    pub fn new(config: &Config) -> Result<Self, String> {
        let client = match &config.url {
            None => None,
            Some(url) => {
                let mut info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
                    .map_err(|e| format!("REDIS_URL is not a Redis URL ({:?})", e.kind()))?;
                let mut settings = info.redis_settings().clone();
                if let Some(u) = &config.username {
                    settings = settings.set_username(u);
                }
                if let Some(p) = &config.password {
                    settings = settings.set_password(p);
                }
                info = info.set_redis_settings(settings);
                Some(redis::Client::open(info).map_err(|e| format!("REDIS_URL: {:?}", e.kind()))?)
            }
        };
        Ok(Self {
            client,
            conn: tokio::sync::Mutex::new(None),
            prefix: config.prefix.clone(),
            timeout: config.timeout,
        })
    }

    /// Whether `REDIS_URL` is set.
    pub fn is_configured(&self) -> bool {
        self.client.is_some()
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, segment: &str, rest: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + segment.len() + rest.len() + 2);
        k.extend_from_slice(self.prefix.as_bytes());
        k.push(b':');
        k.extend_from_slice(segment.as_bytes());
        k.push(b':');
        k.extend_from_slice(rest);
        k
    }

    fn events_key(&self) -> String {
        format!("{}:{}", self.prefix, layout::EVENTS_KEY)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, CacheError> {
        let client = self.client.as_ref().ok_or(CacheError::NotConfigured)?;
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Runs `op` on the connection; a failure drops the connection (the next call reconnects).
    async fn with_conn<T, F, Fut>(&self, op: F) -> Result<T, CacheError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection().await?;
        match tokio::time::timeout(self.timeout * 2, op(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()
                {
                    *self.conn.lock().await = None;
                }
                Err(unavailable(e))
            }
            Err(_) => {
                *self.conn.lock().await = None;
                Err(CacheError::Unavailable("Redis did not answer in time".into()))
            }
        }
    }

    /// Invalidates `tags`: deletes every entry tagged with one of them and records the events.
    pub async fn invalidate(&self, tags: &[String]) -> Result<Invalidated, CacheError> {
        let tag_keys: Vec<Vec<u8>> = tags
            .iter()
            .map(|t| self.key(layout::TAG_SEGMENT, t.as_bytes()))
            .collect();
        let mut read = redis::pipe();
        for k in &tag_keys {
            read.smembers(k);
        }
        let members: Vec<Vec<Vec<u8>>> = self
            .with_conn(|mut c| async move { read.query_async(&mut c).await })
            .await?;
        let mut tx = redis::pipe();
        tx.atomic();
        let events_key = self.events_key();
        for (tag_key, members) in tag_keys.iter().zip(&members) {
            for m in members {
                tx.del(self.key(layout::ENTRY_SEGMENT, m));
            }
            if !members.is_empty() {
                tx.srem(tag_key, members).ignore();
            }
        }
        let deleted: Vec<u64> = if members.iter().all(Vec::is_empty) {
            Vec::new()
        } else {
            self.with_conn(|mut c| async move { tx.query_async(&mut c).await })
                .await?
        };
        // The events, with what each tag deleted (DEL answers in member order).
        let mut log = redis::pipe();
        let mut results = deleted.iter();
        for (tag, members) in tags.iter().zip(&members) {
            let n: u64 = results.by_ref().take(members.len()).sum();
            let e = event("INVALIDATE", tag, Some(tag), Some(json!({ "deleted": n })));
            log.lpush(&events_key, e.to_string()).ignore();
        }
        log.ltrim(&events_key, 0, layout::EVENTS_CAP as isize - 1)
            .ignore();
        // The entries are gone; a failure to log that must not turn the answer into a 503.
        if let Err(e) = self
            .with_conn(|mut c| async move { log.query_async::<()>(&mut c).await })
            .await
        {
            tracing::warn!(error = %e, "cache invalidated, but its events were not recorded");
        }
        Ok(Invalidated {
            deleted: deleted.iter().sum(),
        })
    }

    /// The newest [`layout::EVENTS_SHOWN`] events and the statistics of every stored event.
    pub async fn events(&self) -> Result<(Vec<Value>, Stats), CacheError> {
        let key = self.events_key();
        let raw: Vec<Vec<u8>> = self
            .with_conn(|mut c| async move { c.lrange(key, 0, layout::EVENTS_CAP as isize - 1).await })
            .await?;
        let mut events: Vec<Value> = raw
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(r).ok())
            .filter(Value::is_object)
            .collect();
        let stats = Stats::of(&events);
        events.truncate(layout::EVENTS_SHOWN);
        Ok((events, stats))
    }

    /// Deletes the event list.
    pub async fn clear_events(&self) -> Result<(), CacheError> {
        let key = self.events_key();
        self.with_conn(|mut c| async move { c.del::<_, u64>(key).await })
            .await
            .map(drop)
    }
}

/// `2026-11-29T06:50:00.123Z`: the timestamp format of the cache handler (JavaScript's
/// `toISOString`), used in events and answers.
pub fn iso8601_ms(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A cache event object as knext serve records it.
pub fn event(kind: &str, key: &str, tag: Option<&str>, details: Option<Value>) -> Value {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = k8s_openapi::jiff::Timestamp::now();
    let id = format!(
        "{:x}-{:x}-{:x}",
        now.as_nanosecond(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut e = json!({
        "id": id,
        "timestamp": iso8601_ms(now),
        "type": kind,
        "source": "knext-serve",
        "key": key,
    });
    if let Some(obj) = e.as_object_mut() {
        if let Some(t) = tag {
            obj.insert("tag".into(), Value::String(t.to_owned()));
        }
        if let Some(d) = details {
            obj.insert("details".into(), d);
        }
    }
    e
}

/// Parses an invalidation body: `{"tag": "t"}` or `{"tags": ["a", "b"]}`; each tag non-empty, at most
/// [`layout::TAG_MAX_LEN`] bytes, at most [`layout::TAGS_MAX`] tags. Duplicates are dropped.
pub fn parse_tags(body: &[u8]) -> Result<Vec<String>, &'static str> {
    const MESSAGE: &str = "Missing or invalid \"tag\" parameter";
    let v: Value = serde_json::from_slice(body).map_err(|_| MESSAGE)?;
    let obj = v.as_object().ok_or(MESSAGE)?;
    let tags: Vec<&Value> = match (obj.get("tag"), obj.get("tags")) {
        (Some(t), None) => vec![t],
        (None, Some(Value::Array(ts))) if !ts.is_empty() && ts.len() <= layout::TAGS_MAX => {
            ts.iter().collect()
        }
        _ => return Err(MESSAGE),
    };
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = t
            .as_str()
            .filter(|t| !t.is_empty() && t.len() <= layout::TAG_MAX_LEN)
            .ok_or(MESSAGE)?;
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_bodies() {
        assert_eq!(parse_tags(br#"{"tag":"posts"}"#), Ok(vec!["posts".to_owned()]));
        assert_eq!(
            parse_tags(br#"{"tags":["a","b","a"]}"#),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        let too_many = format!(
            r#"{{"tags":[{}]}}"#,
            vec![r#""x""#; layout::TAGS_MAX + 1].join(",")
        );
        let too_long = format!(r#"{{"tag":"{}"}}"#, "x".repeat(layout::TAG_MAX_LEN + 1));
        for bad in [
            &b""[..],
            b"{}",
            b"[]",
            br#"{"tag":""}"#,
            br#"{"tag":1}"#,
            br#"{"tag":null}"#,
            br#"{"tags":[]}"#,
            br#"{"tags":"a"}"#,
            br#"{"tags":["a",2]}"#,
            br#"{"tag":"a","tags":["b"]}"#,
            too_many.as_bytes(),
            too_long.as_bytes(),
        ] {
            assert!(parse_tags(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn stats_count_every_kind() {
        let events: Vec<Value> = [
            "HIT",
            "HIT",
            "HIT",
            "MISS",
            "SET",
            "DELETE",
            "INVALIDATE",
            "REVALIDATE",
            "?",
        ]
        .iter()
        .map(|t| json!({ "type": t }))
        .collect();
        let s = Stats::of(&events);
        assert_eq!(
            (
                s.hits,
                s.misses,
                s.sets,
                s.deletes,
                s.invalidations,
                s.revalidations,
                s.total_events
            ),
            (3, 1, 1, 1, 1, 1, 9)
        );
        assert!((s.hit_rate - 0.75).abs() < 1e-9);
        assert_eq!(Stats::of(&[]).hit_rate, 0.0);
    }

    #[test]
    fn events_have_the_shared_shape() {
        let e = event("INVALIDATE", "posts", Some("posts"), Some(json!({"members": 2})));
        let o = e.as_object().unwrap();
        assert_eq!(o["type"], "INVALIDATE");
        assert_eq!(o["source"], "knext-serve");
        assert_eq!(o["key"], "posts");
        assert_eq!(o["tag"], "posts");
        let ts = o["timestamp"].as_str().unwrap();
        assert!(ts.len() == 24 && ts.ends_with('Z'), "{ts}");
        assert_ne!(o["id"], event("INVALIDATE", "posts", None, None)["id"]);
        assert!(
            !event("X", "k", None, None)
                .as_object()
                .unwrap()
                .contains_key("tag")
        );
    }

    #[test]
    fn the_public_message_is_fixed_and_never_the_detail() {
        let detail = "Connection refused (os error 111) at 10.0.0.7:6379";
        let e = CacheError::Unavailable(detail.to_owned());
        assert!(e.to_string().contains(detail), "the log keeps the detail");
        assert_eq!(e.public_message(), "the cache is unavailable");
        assert_eq!(
            CacheError::NotConfigured.public_message(),
            CacheError::NotConfigured.to_string()
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let c = Cache::new(&Config {
            url: Some("redis://:hunter2@127.0.0.1:1/0".into()),
            username: None,
            password: Some("s3cret".into()),
            prefix: "p".into(),
            timeout: Duration::from_millis(10),
        })
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert!(
            Cache::new(&Config {
                url: Some("http://nope".into()),
                ..Config::from_env()
            })
            .is_err()
        );
    }
}
