//! The external cleanup a NextApp's finalizer runs when the app is deleted: what lives outside the
//! cluster and owner references cannot garbage-collect. It talks to the network (Redis, object
//! stores) and nothing else: no Kubernetes client, no events; the caller logs and reports the
//! [`Report`].
//!
//! - **Redis**, when `cache.provider` is `redis`, `cache.keyPrefix` is non-empty (trimmed) and
//!   `cache.url` is set: `SCAN <cursor> MATCH "<keyPrefix>:*" COUNT 500`, the prefix's glob
//!   metacharacters escaped, each batch removed with `UNLINK`. Never `KEYS`, `FLUSHDB` or `FLUSHALL`.
//! - **Object store**, when `storage.provider` and `storage.bucket` are set: every object under
//!   `<app>/`, listed and deleted in the store's batches (object_store's `list` and `delete_stream`).
//!   `local` has nothing outside the pod to delete.
//!
//! Both cleanups run at once, each bounded by [`STORE_TIMEOUT`] (inside the finalizer's 30 s), on a
//! task of its own, so neither a hang nor a panic reaches the caller. Every listed key and object is
//! checked against the prefix again before it is deleted.
//!
//! Credentials: the pod's environment first (object_store's `from_env`: IRSA, EKS Pod Identity,
//! workload identity, metadata servers, `AWS_*`/`GOOGLE_*`/`AZURE_*`), then the optional Secret
//! [`CLEANUP_SECRET`] mounted at [`CLEANUP_DIR`] ([`Credentials::from_dir`]).

use std::fmt;
use std::future::Future;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

pub use crate::api::operator::{CLEANUP_DIR, CLEANUP_SECRET};
use crate::api::{CacheProvider, NextAppSpec, StorageProvider, StorageSpec};

/// Longest time one store's cleanup may take (the finalizer's bound is 30 s; both run at once).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(25);
/// `SCAN … COUNT`: keys Redis looks at per round trip.
pub const SCAN_COUNT: usize = 500;
/// File of [`CLEANUP_SECRET`] holding the Redis ACL user name.
pub const REDIS_USERNAME_FILE: &str = "redis-username";
/// File of [`CLEANUP_SECRET`] holding the Redis password.
pub const REDIS_PASSWORD_FILE: &str = "redis-password";

/// Connecting to a store (Redis, or one HTTP connection of an object store).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One Redis command or one object-store request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A store the cleanup talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Redis (`spec.cache`).
    Redis,
    /// Amazon S3 (`spec.storage`).
    S3,
    /// MinIO, through the S3 API.
    Minio,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redis => "Redis",
            Self::S3 => "S3",
            Self::Minio => "MinIO",
            Self::Gcs => "GCS",
            Self::Azure => "Azure Blob Storage",
        })
    }
}

impl Store {
    fn of(provider: StorageProvider) -> Option<Self> {
        match provider {
            StorageProvider::S3 => Some(Self::S3),
            StorageProvider::Minio => Some(Self::Minio),
            StorageProvider::Gcs => Some(Self::Gcs),
            StorageProvider::Azure => Some(Self::Azure),
            StorageProvider::Local => None,
        }
    }

    /// What it holds.
    fn items(self) -> &'static str {
        match self {
            Self::Redis => "keys",
            _ => "objects",
        }
    }

    /// What to fix when the store cannot be reached.
    fn reach_hint(self) -> &'static str {
        match self {
            Self::Redis => {
                "check spec.cache.url and that the operator's pod may connect to it (for rediss://, with \
                 a certificate the system's CAs trust)"
            }
            Self::S3 | Self::Minio => {
                "check spec.storage.endpoint and spec.storage.region and that the operator's pod may \
                 connect to the store"
            }
            Self::Gcs | Self::Azure => "check that the operator's pod may connect to the store",
        }
    }

    /// Where the operator's credentials for this store come from.
    fn credentials_hint(self) -> &'static str {
        match self {
            Self::Redis => {
                "put the password in Secret knext-operator-cleanup key redis-password (and the ACL user, \
                 if any, in key redis-username)"
            }
            Self::S3 | Self::Minio => {
                "give the operator's pod AWS credentials (IRSA, EKS Pod Identity, the node's role, AWS_* \
                 variables) or put aws_access_key_id and aws_secret_access_key in Secret \
                 knext-operator-cleanup"
            }
            Self::Gcs => {
                "give the operator's pod a Google identity (workload identity, GOOGLE_* variables) or \
                 put google_service_account_key in Secret knext-operator-cleanup"
            }
            Self::Azure => {
                "give the operator's pod an Azure identity (workload identity, AZURE_* variables) or \
                 put azure_storage_account_name and azure_storage_account_key in Secret \
                 knext-operator-cleanup"
            }
        }
    }

    /// The permissions the cleanup needs.
    fn permission_hint(self) -> &'static str {
        match self {
            Self::Redis => "the Redis user needs the SCAN and UNLINK commands on the app's keys",
            Self::S3 | Self::Minio => "the credentials need s3:ListBucket and s3:DeleteObject on the bucket",
            Self::Gcs => "the identity needs storage.objects.list and storage.objects.delete on the bucket",
            Self::Azure => "the identity needs to list and delete blobs in the container",
        }
    }
}

/// Why one store's cleanup failed. `place` names the store and where it is (a Redis URL without
/// credentials, or a bucket and its endpoint); every message ends with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleanupError {
    /// The spec (or the operator's configuration) does not say enough to clean up.
    #[error("cannot clean up {place}: {problem}")]
    Config {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// What is wrong and what to fix.
        problem: String,
    },
    /// The store could not be reached.
    #[error("cannot reach {place} ({detail}): {}", .store.reach_hint())]
    Unreachable {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// The client's error.
        detail: String,
    },
    /// The store wants credentials the operator does not have.
    #[error("{place} requires credentials ({detail}): {}", .store.credentials_hint())]
    NoCredentials {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// The store's answer.
        detail: String,
    },
    /// The store refused the operator's credentials.
    #[error("{place} refused the operator's credentials ({detail}): {}", .store.credentials_hint())]
    CredentialsRefused {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// The store's answer.
        detail: String,
    },
    /// The credentials were accepted but may not list or delete.
    #[error("{place} denied the cleanup ({detail}): {}", .store.permission_hint())]
    Denied {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// The store's answer.
        detail: String,
    },
    /// The bucket (container) does not exist.
    #[error("{place} does not exist ({detail}): check spec.storage.bucket and spec.storage.region")]
    NoBucket {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// The store's answer.
        detail: String,
    },
    /// The cleanup did not finish in time; what was not deleted stays.
    #[error(
        "the cleanup of {place} did not finish within {} s ({deleted} {} deleted); the rest stays: \
         delete it by hand",
        .limit.as_secs(),
        .store.items()
    )]
    Timeout {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// The bound.
        limit: Duration,
        /// Keys or objects deleted before the bound.
        deleted: u64,
    },
    /// Anything else the store or the client reported.
    #[error("the cleanup of {place} failed: {detail}")]
    Failed {
        /// The store.
        store: Store,
        /// The store and where it is.
        place: String,
        /// The error.
        detail: String,
    },
}

impl CleanupError {
    /// The store the error is about.
    pub fn store(&self) -> Store {
        match self {
            Self::Config { store, .. }
            | Self::Unreachable { store, .. }
            | Self::NoCredentials { store, .. }
            | Self::CredentialsRefused { store, .. }
            | Self::Denied { store, .. }
            | Self::NoBucket { store, .. }
            | Self::Timeout { store, .. }
            | Self::Failed { store, .. } => *store,
        }
    }
}

/// What one cleanup did, per store. `None`: the spec gives that store nothing to clean up.
#[derive(Debug, Default)]
pub struct Report {
    /// Redis keys deleted.
    pub redis: Option<Result<u64, CleanupError>>,
    /// Objects deleted.
    pub objects: Option<Result<u64, CleanupError>>,
    /// Why a configured store was left alone (for the log), e.g. an empty `cache.keyPrefix`.
    pub notes: Vec<String>,
}

impl Report {
    /// The failures, Redis first.
    pub fn errors(&self) -> impl Iterator<Item = &CleanupError> {
        [&self.redis, &self.objects]
            .into_iter()
            .filter_map(|r| r.as_ref()?.as_ref().err())
    }
}

impl fmt::Display for Report {
    /// One line for a log or an event: `Redis: 3 keys deleted; objects: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        match &self.redis {
            Some(Ok(n)) => parts.push(format!("Redis: {n} keys deleted")),
            Some(Err(e)) => parts.push(format!("Redis: {e}")),
            None => {}
        }
        match &self.objects {
            Some(Ok(n)) => parts.push(format!("object store: {n} objects deleted")),
            Some(Err(e)) => parts.push(format!("object store: {e}")),
            None => {}
        }
        parts.extend(self.notes.iter().cloned());
        if parts.is_empty() {
            parts.push("nothing to clean up outside the cluster".into());
        }
        f.write_str(&parts.join("; "))
    }
}

/// The credentials of [`CLEANUP_SECRET`], as files ([`Credentials::from_dir`]). `Debug` shows which
/// are set, never their values.
#[derive(Clone, Default)]
pub struct Credentials {
    redis_username: Option<String>,
    redis_password: Option<String>,
    s3: Vec<(AmazonS3ConfigKey, String)>,
    gcs: Vec<(GoogleConfigKey, String)>,
    azure: Vec<(AzureConfigKey, String)>,
    ignored: Vec<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn keys<K: AsRef<str>>(pairs: &[(K, String)]) -> Vec<&str> {
            pairs.iter().map(|(k, _)| k.as_ref()).collect()
        }
        let set = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Credentials")
            .field("redis_username", &set(&self.redis_username))
            .field("redis_password", &set(&self.redis_password))
            .field("s3", &keys(&self.s3))
            .field("gcs", &keys(&self.gcs))
            .field("azure", &keys(&self.azure))
            .field("ignored", &self.ignored)
            .finish()
    }
}

/// A credentials directory that exists but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the cleanup credentials in {}: {detail}", .path.display())]
pub struct CredentialsError {
    /// The directory or file.
    pub path: PathBuf,
    /// What went wrong (never a secret value).
    pub detail: String,
}

impl Credentials {
    /// Reads a Secret volume such as [`CLEANUP_DIR`]: `redis-username`, `redis-password`, and every
    /// file named like an object_store config key of its provider (`aws_*` for S3 and MinIO,
    /// `google_*` for GCS, `azure_*` for Azure, e.g. `aws_access_key_id`). Dotfiles (a Secret
    /// volume's `..data` links) are skipped, trailing newlines trimmed, empty files treated as absent;
    /// other names are listed in [`Credentials::ignored`]. A missing directory means no credentials.
    pub fn from_dir(dir: impl AsRef<FsPath>) -> Result<Self, CredentialsError> {
        let dir = dir.as_ref();
        let fail = |path: &FsPath, e: std::io::Error| CredentialsError {
            path: path.to_owned(),
            detail: e.to_string(),
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(fail(dir, e)),
        };
        let mut creds = Self::default();
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| fail(dir, e))?;
            let path = entry.path();
            match entry.file_name().into_string() {
                // NB: a Secret volume holds `..data` and `..<timestamp>` (directories and links to
                // them); the keys are links through `..data`, so follow links and skip directories.
                Ok(name) if name.starts_with('.') || path.is_dir() => {}
                Ok(name) => files.push((name, path)),
                Err(name) => creds.ignored.push(name.to_string_lossy().into_owned()),
            }
        }
        files.sort();
        for (name, path) in files {
            let raw = std::fs::read(&path).map_err(|e| fail(&path, e))?;
            let Ok(text) = String::from_utf8(raw) else {
                return Err(CredentialsError {
                    path,
                    detail: "not UTF-8 text".into(),
                });
            };
            if !creds.insert(&name, text.trim_end_matches(['\n', '\r'])) {
                creds.ignored.push(name);
            }
        }
        creds.ignored.sort();
        Ok(creds)
    }

    /// Takes one file (an empty value is no value); false when its name means nothing here.
    fn insert(&mut self, name: &str, value: &str) -> bool {
        let value = Some(value.to_owned()).filter(|v| !v.is_empty());
        match name {
            REDIS_USERNAME_FILE => self.redis_username = value,
            REDIS_PASSWORD_FILE => self.redis_password = value,
            n if n.starts_with("aws_") => match n.parse() {
                Ok(k) => self.s3.extend(value.map(|v| (k, v))),
                Err(_) => return false,
            },
            n if n.starts_with("google_") => match n.parse() {
                Ok(k) => self.gcs.extend(value.map(|v| (k, v))),
                Err(_) => return false,
            },
            n if n.starts_with("azure_") => match n.parse() {
                Ok(k) => self.azure.extend(value.map(|v| (k, v))),
                Err(_) => return false,
            },
            _ => return false,
        }
        true
    }

    /// Redis credentials (either may be set alone).
    pub fn with_redis(mut self, username: Option<&str>, password: Option<&str>) -> Self {
        self.redis_username = username.map(str::to_owned);
        self.redis_password = password.map(str::to_owned);
        self
    }

    /// Files of the directory that were not used (names only), for a warning.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    fn has_redis(&self) -> bool {
        self.redis_username.is_some() || self.redis_password.is_some()
    }
}

/// Runs the cleanups `spec` calls for (app `app`), at once, each bounded by [`STORE_TIMEOUT`]; never
/// panics, never fails: every outcome is in the [`Report`].
pub async fn run(app: &str, spec: &NextAppSpec, creds: &Credentials) -> Report {
    run_within(app, spec, creds, STORE_TIMEOUT).await
}

async fn run_within(app: &str, spec: &NextAppSpec, creds: &Credentials, limit: Duration) -> Report {
    let mut report = Report::default();
    let redis = redis_plan(spec, &mut report.notes).map(|(url, prefix)| {
        let place = format!("Redis at {}", without_credentials(&url));
        let creds = creds.clone();
        bounded(Store::Redis, place, limit, move |count| {
            delete_redis_keys(url, prefix, creds, count)
        })
    });
    let objects = object_plan(spec, &mut report.notes).map(|(store, storage)| {
        let place = bucket_place(&storage);
        let (app, creds) = (app.to_owned(), creds.clone());
        bounded(store, place, limit, move |count| {
            delete_objects(store, app, storage, creds, count)
        })
    });
    let (redis, objects) = futures::join!(maybe(redis), maybe(objects));
    report.redis = redis;
    report.objects = objects;
    report
}

async fn maybe<T>(f: Option<impl Future<Output = T>>) -> Option<T> {
    match f {
        Some(f) => Some(f.await),
        None => None,
    }
}

/// Runs `op` on a task of its own, bounded by `limit`; a panic or the bound becomes an error. `op`
/// counts what it deleted in the counter it is given, so a timeout still says how far it got.
async fn bounded<F, Fut>(store: Store, place: String, limit: Duration, op: F) -> Result<u64, CleanupError>
where
    F: FnOnce(Arc<AtomicU64>) -> Fut,
    Fut: Future<Output = Result<u64, CleanupError>> + Send + 'static,
{
    let count = Arc::new(AtomicU64::new(0));
    let mut task = tokio::spawn(op(Arc::clone(&count)));
    match tokio::time::timeout(limit, &mut task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(CleanupError::Failed {
            store,
            place,
            detail: format!("the cleanup task ended abnormally: {join}"),
        }),
        Err(_) => {
            task.abort();
            Err(CleanupError::Timeout {
                store,
                place,
                limit,
                deleted: count.load(Ordering::Relaxed),
            })
        }
    }
}

// ---- Redis ------------------------------------------------------------------------------------

/// The URL and the trimmed prefix, when Redis is to be cleaned.
fn redis_plan(spec: &NextAppSpec, notes: &mut Vec<String>) -> Option<(String, String)> {
    let cache = spec.cache.as_ref()?;
    if cache.provider != Some(CacheProvider::Redis) {
        return None;
    }
    let prefix = cache.key_prefix.as_deref().map(str::trim).unwrap_or_default();
    if prefix.is_empty() {
        notes.push(
            "Redis keys left alone: cache.keyPrefix is empty (the app's keys cannot be told from \
             other apps')"
                .into(),
        );
        return None;
    }
    let Some(url) = cache.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
        notes.push("Redis keys left alone: cache.url is not set".into());
        return None;
    };
    Some((url.to_owned(), prefix.to_owned()))
}

/// `pattern` with Redis glob metacharacters (`* ? [ ] \`) escaped, so it matches only itself.
pub fn escape_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `url` without a `user:password@` part (the validator refuses one; this is for safety in logs).
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

async fn delete_redis_keys(
    url: String,
    prefix: String,
    creds: Credentials,
    count: Arc<AtomicU64>,
) -> Result<u64, CleanupError> {
    let shown = without_credentials(&url);
    let place = format!("Redis at {shown}");
    let config_error = |problem: String| CleanupError::Config {
        store: Store::Redis,
        place: place.clone(),
        problem,
    };
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("redis" | "rediss")) {
        return Err(config_error(
            "spec.cache.url is not a redis:// or rediss:// URL: fix spec.cache.url".into(),
        ));
    }
    let mut info = redis::IntoConnectionInfo::into_connection_info(url.as_str()).map_err(|e| {
        config_error(format!(
            "spec.cache.url is not a usable Redis URL ({:?}): fix spec.cache.url",
            e.kind()
        ))
    })?;
    let mut settings = info.redis_settings().clone();
    if let Some(u) = &creds.redis_username {
        settings = settings.set_username(u);
    }
    if let Some(p) = &creds.redis_password {
        settings = settings.set_password(p);
    }
    info = info.set_redis_settings(settings);
    let has_credentials = creds.has_redis();
    let fail = |e: redis::RedisError| redis_error(&place, e, has_credentials);
    let client = redis::Client::open(info).map_err(fail)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(REQUEST_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(fail)?;
    let pattern = format!("{}:*", escape_glob(&prefix));
    let owned = format!("{prefix}:");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut conn)
            .await
            .map_err(fail)?;
        // NB: MATCH already selects exactly these; checked again since a deletion cannot be undone.
        let keys: Vec<Vec<u8>> = keys
            .into_iter()
            .filter(|k| k.starts_with(owned.as_bytes()))
            .collect();
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .map_err(fail)?;
            count.fetch_add(n, Ordering::Relaxed);
        }
        if next == 0 {
            return Ok(count.load(Ordering::Relaxed));
        }
        cursor = next;
    }
}

fn redis_error(place: &str, e: redis::RedisError, has_credentials: bool) -> CleanupError {
    let (store, place, detail) = (Store::Redis, place.to_owned(), one_line(&e.to_string()));
    match e.code() {
        Some("NOAUTH") if !has_credentials => return CleanupError::NoCredentials { store, place, detail },
        Some("NOAUTH" | "WRONGPASS") => return CleanupError::CredentialsRefused { store, place, detail },
        Some("NOPERM") => return CleanupError::Denied { store, place, detail },
        _ => {}
    }
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        CleanupError::CredentialsRefused { store, place, detail }
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        CleanupError::Unreachable { store, place, detail }
    } else {
        CleanupError::Failed { store, place, detail }
    }
}

// ---- Object stores ----------------------------------------------------------------------------

/// The store and the storage spec, when objects are to be cleaned.
fn object_plan(spec: &NextAppSpec, notes: &mut Vec<String>) -> Option<(Store, StorageSpec)> {
    let storage = spec.storage.as_ref()?;
    let provider = storage.provider?;
    let Some(store) = Store::of(provider) else {
        notes.push("storage.provider local: no object store outside the pod, nothing to delete".into());
        return None;
    };
    if storage.bucket.as_deref().is_none_or(|b| b.trim().is_empty()) {
        notes.push(format!("{store} objects left alone: storage.bucket is empty"));
        return None;
    }
    Some((store, storage.clone()))
}

/// Whether [`run`] has anything to clean for `spec`: the finalizer is kept exactly on such apps.
pub fn has_external_state(spec: &NextAppSpec) -> bool {
    let mut notes = Vec::new();
    redis_plan(spec, &mut notes).is_some() || object_plan(spec, &mut notes).is_some()
}

/// `S3 bucket assets at https://minio:9000`, `GCS bucket assets`, `Azure container assets`.
fn bucket_place(storage: &StorageSpec) -> String {
    let bucket = storage.bucket.as_deref().unwrap_or_default().trim();
    let endpoint = storage
        .endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    match (storage.provider, endpoint) {
        (Some(StorageProvider::Azure), _) => format!("Azure container {bucket}"),
        (Some(StorageProvider::Gcs), _) => format!("GCS bucket {bucket}"),
        (Some(StorageProvider::Minio), Some(e)) => {
            format!("MinIO bucket {bucket} at {}", without_credentials(e))
        }
        (Some(StorageProvider::Minio), None) => format!("MinIO bucket {bucket}"),
        (_, Some(e)) => format!("S3 bucket {bucket} at {}", without_credentials(e)),
        (_, None) => format!("S3 bucket {bucket}"),
    }
}

/// The object_store client of `storage`: the pod's environment, then the Secret's keys, then the
/// spec (bucket, and for S3 and MinIO region and endpoint) on top. Its credentials are fetched here,
/// so that a missing identity is told apart from a store that cannot be reached.
async fn open_store(
    store: Store,
    place: &str,
    storage: &StorageSpec,
    creds: &Credentials,
) -> Result<Arc<dyn ObjectStore>, CleanupError> {
    let config = |e: object_store::Error| CleanupError::Config {
        store,
        place: place.to_owned(),
        problem: format!("{}: {}", chain(&e), store.credentials_hint()),
    };
    let no_credentials = |e: object_store::Error| CleanupError::NoCredentials {
        store,
        place: place.to_owned(),
        detail: chain(&e),
    };
    // NB: reqwest is built without a rustls provider of its own and asks for the process's; kube's
    // client installs ring on first use, but this may run first (or alone, in tests).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bucket = storage.bucket.as_deref().unwrap_or_default().trim().to_owned();
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: REQUEST_TIMEOUT,
    };
    let options = ClientOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    Ok(match store {
        Store::S3 | Store::Minio => {
            let mut b = AmazonS3Builder::from_env();
            for (k, v) in &creds.s3 {
                b = b.with_config(*k, v);
            }
            b = b
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_client_options(options);
            if let Some(region) = storage.region.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
                b = b.with_region(region);
            }
            let endpoint = storage
                .endpoint
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty());
            if let Some(e) = endpoint {
                // Path-style requests: S3-compatible endpoints rarely resolve `<bucket>.<host>`.
                b = b
                    .with_endpoint(e)
                    .with_config(AmazonS3ConfigKey::S3Endpoint, e)
                    .with_virtual_hosted_style_request(false);
            }
            b = b.with_allow_http(endpoint.is_some_and(|e| e.to_ascii_lowercase().starts_with("http://")));
            let s3 = b.build().map_err(config)?;
            s3.credentials().get_credential().await.map_err(no_credentials)?;
            Arc::new(s3)
        }
        Store::Gcs => {
            let mut b = GoogleCloudStorageBuilder::from_env();
            for (k, v) in &creds.gcs {
                b = b.with_config(*k, v);
            }
            let gcs = b
                .with_bucket_name(bucket)
                .with_retry(retry)
                .with_client_options(options)
                .build()
                .map_err(config)?;
            gcs.credentials().get_credential().await.map_err(no_credentials)?;
            Arc::new(gcs)
        }
        Store::Azure => {
            let mut b = MicrosoftAzureBuilder::from_env();
            for (k, v) in &creds.azure {
                b = b.with_config(*k, v);
            }
            let azure = b
                .with_container_name(bucket)
                .with_retry(retry)
                .with_client_options(options)
                .build()
                .map_err(config)?;
            azure
                .credentials()
                .get_credential()
                .await
                .map_err(no_credentials)?;
            Arc::new(azure)
        }
        Store::Redis => {
            return Err(CleanupError::Config {
                store,
                place: place.to_owned(),
                problem: "Redis is not an object store".into(),
            });
        }
    })
}

async fn delete_objects(
    store: Store,
    app: String,
    storage: StorageSpec,
    creds: Credentials,
    count: Arc<AtomicU64>,
) -> Result<u64, CleanupError> {
    let place = bucket_place(&storage);
    let prefix = format!("{app}/");
    // NB: the one guard between an empty or nested name and deleting a whole bucket (or another
    // app's objects): one non-empty path segment, and the listing is of `<app>/` exactly.
    let single_segment = !app.is_empty() && !app.contains('/') && prefix.len() > 1 && prefix.ends_with('/');
    let path = Path::parse(&app)
        .ok()
        .filter(|p| single_segment && p.as_ref() == app);
    let Some(path) = path else {
        return Err(CleanupError::Config {
            store,
            place,
            problem: format!("the app name {app:?} is not a single path segment, so nothing is deleted"),
        });
    };
    let client = open_store(store, &place, &storage, &creds).await?;
    let owned = prefix.clone();
    let listed = client
        .list(Some(&path))
        .try_filter(move |meta| {
            // NB: object_store lists `<app>/` (it appends the delimiter); checked again since a
            // deletion cannot be undone.
            let ours = meta.location.as_ref().starts_with(&owned);
            if !ours {
                tracing::warn!(object = %meta.location, "listed outside the app's prefix; left alone");
            }
            futures::future::ready(ours)
        })
        .map_ok(|meta| meta.location)
        .boxed();
    let mut deleted = client.delete_stream(listed);
    while let Some(result) = deleted.next().await {
        match result {
            Ok(_) => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            // Gone already (deleted concurrently): what the cleanup wants.
            Err(object_store::Error::NotFound { ref path, .. }) if path.starts_with(&prefix) => {}
            Err(e) => return Err(object_error(store, &place, e)),
        }
    }
    Ok(count.load(Ordering::Relaxed))
}

fn object_error(store: Store, place: &str, e: object_store::Error) -> CleanupError {
    // Listing errors come as `Generic` with the HTTP status and the store's error code in the text
    // only (object_store's request error type is private): the codes of S3, GCS and Azure.
    const REFUSED: [&str; 7] = [
        "401 Unauthorized",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AuthenticationFailed",
        "InvalidAuthenticationInfo",
    ];
    const DENIED: [&str; 4] = [
        "403 Forbidden",
        "AccessDenied",
        "AuthorizationPermissionMismatch",
        "AuthorizationFailure",
    ];
    const NO_BUCKET: [&str; 3] = ["NoSuchBucket", "ContainerNotFound", "404 Not Found"];
    let place = place.to_owned();
    let detail = chain(&e);
    let says = |codes: &[&str]| codes.iter().any(|c| detail.contains(c));
    let unreachable = http_kind(&e).is_some_and(|k| {
        matches!(
            k,
            HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
        )
    });
    match e {
        _ if says(&REFUSED) => CleanupError::CredentialsRefused { store, place, detail },
        object_store::Error::Unauthenticated { .. } => {
            CleanupError::CredentialsRefused { store, place, detail }
        }
        object_store::Error::PermissionDenied { .. } => CleanupError::Denied { store, place, detail },
        object_store::Error::NotFound { .. } => CleanupError::NoBucket { store, place, detail },
        _ if says(&DENIED) => CleanupError::Denied { store, place, detail },
        _ if says(&NO_BUCKET) => CleanupError::NoBucket { store, place, detail },
        _ if unreachable => CleanupError::Unreachable { store, place, detail },
        _ => CleanupError::Failed { store, place, detail },
    }
}

/// The kind of the HTTP error under `e`, if any.
fn http_kind(e: &(dyn std::error::Error + 'static)) -> Option<HttpErrorKind> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(h) = e.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        next = e.source();
    }
    None
}

/// `e` and its sources, each once (client errors often repeat their source's text), as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    one_line(&out)
}

/// Longest detail kept from a store's error (an event's message is at most 1 KiB).
const DETAIL_MAX: usize = 480;

/// `text` on one line (a store's XML error body spans several), at most [`DETAIL_MAX`] bytes.
fn one_line(text: &str) -> String {
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > DETAIL_MAX {
        let mut end = DETAIL_MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    //! Against real servers on loopback: `redis-server` (installed by `.ci/run`) and `moto_server`,
    //! an S3-compatible server from PyPI (`scripts/test-tools.sh`). A missing server fails the test
    //! with the command that installs it.

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use object_store::{ObjectStoreExt, PutPayload};

    use super::*;
    use crate::api::{CacheSpec, NextAppSpec};

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Waits until something accepts connections on `port`.
    fn wait_for_port(port: u16, what: &str, limit: Duration, child: &mut Child) {
        let deadline = Instant::now() + limit;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{what} exited before it listened: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not listen on {port} within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// A child process killed on drop.
    struct Server {
        child: Child,
        port: u16,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    // ---- Redis ----

    fn redis_server(requirepass: Option<&str>) -> Server {
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        if let Some(p) = requirepass {
            cmd.args(["--requirepass", p]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it (apt-get install redis-server)")
            });
        wait_for_port(port, "redis-server", Duration::from_secs(10), &mut child);
        Server { child, port }
    }

    impl Server {
        fn redis_url(&self) -> String {
            format!("redis://127.0.0.1:{}/0", self.port)
        }

        fn redis(&self, password: Option<&str>) -> redis::Connection {
            let url = match password {
                Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
                None => self.redis_url(),
            };
            redis::Client::open(url).unwrap().get_connection().unwrap()
        }

        fn set(&self, password: Option<&str>, keys: &[String]) {
            let mut pipe = redis::pipe();
            for k in keys {
                pipe.set(k, "v").ignore();
            }
            pipe.query::<()>(&mut self.redis(password)).unwrap();
        }

        fn keys(&self, password: Option<&str>) -> Vec<String> {
            let mut keys: Vec<String> = redis::cmd("KEYS")
                .arg("*")
                .query(&mut self.redis(password))
                .unwrap();
            keys.sort();
            keys
        }
    }

    fn redis_spec(url: &str, prefix: &str) -> NextAppSpec {
        NextAppSpec {
            cache: Some(CacheSpec {
                provider: Some(CacheProvider::Redis),
                url: Some(url.to_owned()),
                key_prefix: Some(prefix.to_owned()),
                ..CacheSpec::default()
            }),
            ..NextAppSpec::default()
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn redis_cleanup_deletes_exactly_the_prefix_over_many_scan_rounds() {
        let redis = redis_server(None);
        let mut keys = strings(&["shop:a", "shop:cache:/blog", "shop:tag:posts", "shop:"]);
        keys.extend((0..1200).map(|i| format!("shop:many:{i}")));
        let others = strings(&["other:x", "shop", "shopfront:a", "shopfront:cache:/x", "xshop:a"]);
        redis.set(None, &keys);
        redis.set(None, &others);

        let report = run(
            "shop",
            &redis_spec(&redis.redis_url(), " shop "),
            &Credentials::default(),
        )
        .await;
        assert_eq!(report.redis, Some(Ok(1204)), "{report}");
        assert!(report.objects.is_none() && report.notes.is_empty(), "{report:?}");
        assert_eq!(redis.keys(None), others);

        // A second run finds nothing left.
        let again = run(
            "shop",
            &redis_spec(&redis.redis_url(), "shop"),
            &Credentials::default(),
        )
        .await;
        assert_eq!(again.redis, Some(Ok(0)));
    }

    #[tokio::test]
    async fn redis_prefix_glob_metacharacters_match_only_themselves() {
        let redis = redis_server(None);
        let all = strings(&[
            "a*:1", "a*:2", "ab:1", "a*b:1", "a?:1", "ax:1", "[x]:1", "x:1", "[x]y:1", r"a\:1", "a:1",
            r"a\\:1", "a]:1",
        ]);
        redis.set(None, &all);
        for (prefix, deleted) in [("a*", 2), ("a?", 1), ("[x]", 1), (r"a\", 1), ("a]", 1)] {
            let report = run(
                "app",
                &redis_spec(&redis.redis_url(), prefix),
                &Credentials::default(),
            )
            .await;
            assert_eq!(report.redis, Some(Ok(deleted)), "prefix {prefix}: {report}");
        }
        assert_eq!(
            redis.keys(None),
            strings(&["a*b:1", "a:1", r"a\\:1", "ab:1", "ax:1", "x:1", "[x]y:1"])
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn redis_with_a_password_needs_the_secrets_credentials() {
        let redis = redis_server(Some("s3cret-pw"));
        redis.set(Some("s3cret-pw"), &strings(&["shop:a", "shop:b", "other:x"]));
        let spec = redis_spec(&redis.redis_url(), "shop");

        let report = run("shop", &spec, &Credentials::default()).await;
        let Some(Err(e)) = &report.redis else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::NoCredentials { .. }), "{e:?}");
        let message = e.to_string();
        for part in [
            "Redis at redis://127.0.0.1:",
            "knext-operator-cleanup",
            "redis-password",
        ] {
            assert!(message.contains(part), "{message}");
        }

        let wrong = Credentials::default().with_redis(None, Some("nope"));
        let report = run("shop", &spec, &wrong).await;
        let Some(Err(e)) = &report.redis else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::CredentialsRefused { .. }), "{e:?}");
        assert!(e.to_string().contains("redis-password"), "{e}");
        assert!(!e.to_string().contains("nope"), "{e}");

        let right = Credentials::default().with_redis(None, Some("s3cret-pw"));
        let report = run("shop", &spec, &right).await;
        assert_eq!(report.redis, Some(Ok(2)), "{report}");
        assert_eq!(redis.keys(Some("s3cret-pw")), strings(&["other:x"]));
    }

    #[tokio::test]
    async fn redis_unreachable_or_misnamed_is_an_error_that_names_it() {
        let start = Instant::now();
        let url = format!("redis://127.0.0.1:{}/0", free_port());
        let report = run("shop", &redis_spec(&url, "shop"), &Credentials::default()).await;
        let Some(Err(e)) = &report.redis else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&url) && e.to_string().contains("spec.cache.url"),
            "{e}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));

        let report = run(
            "shop",
            &redis_spec("http://cache:6379", "shop"),
            &Credentials::default(),
        )
        .await;
        let Some(Err(e)) = &report.redis else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::Config { .. }), "{e:?}");
        assert!(e.to_string().contains("fix spec.cache.url"), "{e}");
    }

    #[tokio::test]
    async fn rediss_speaks_tls_and_verifies_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install it (apt-get install openssl)"));
        assert!(status.success());
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--tls-auth-clients", "no", "--tls-cert-file"])
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "redis-server (TLS)", Duration::from_secs(10), &mut child);
        let _server = Server { child, port };
        // A self-signed certificate no system CA vouches for: the handshake fails, and says why.
        let url = format!("rediss://localhost:{port}/0");
        let report = run("shop", &redis_spec(&url, "shop"), &Credentials::default()).await;
        let Some(Err(e)) = &report.redis else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string().contains("certificate") && e.to_string().contains(&url),
            "{e}"
        );
    }

    #[tokio::test]
    async fn no_redis_configured_means_no_connection() {
        // Something listens, so an attempt would be seen as a pending connection.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("redis://{}/0", listener.local_addr().unwrap());
        let memory = NextAppSpec {
            cache: Some(CacheSpec {
                provider: Some(CacheProvider::Memory),
                ..redis_spec(&url, "shop").cache.unwrap()
            }),
            ..NextAppSpec::default()
        };
        let no_url = NextAppSpec {
            cache: Some(CacheSpec {
                url: None,
                ..redis_spec(&url, "shop").cache.unwrap()
            }),
            ..NextAppSpec::default()
        };
        for (spec, notes) in [
            (NextAppSpec::default(), 0),
            (memory, 0),
            (redis_spec(&url, ""), 1),
            (redis_spec(&url, "  "), 1),
            (no_url, 1),
        ] {
            let report = run("shop", &spec, &Credentials::default()).await;
            assert!(report.redis.is_none() && report.objects.is_none(), "{report:?}");
            assert_eq!(report.notes.len(), notes, "{report:?}");
        }
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "a connection was attempted"
        );
    }

    // ---- Object store (moto_server) ----

    /// How to get `moto_server`, for the failure when it is missing.
    const MOTO_INSTALL: &str = "moto_server (PyPI moto[server], pinned in scripts/test-requirements.txt) is \
        needed: install it with scripts/test-tools.sh and run the tests with \
        PATH=\"$(scripts/test-tools.sh | tail -n 1):$PATH\" cargo test, or set KNEXT_TEST_MOTO_SERVER to its path";

    /// `moto_server`: `KNEXT_TEST_MOTO_SERVER`, else on `PATH`, else where scripts/test-tools.sh puts
    /// it, installing it there on first use (once per test process, like tests/nextjs.rs's app), so a
    /// plain `cargo test` works on a fresh clone with python3 and PyPI.
    fn moto_binary() -> PathBuf {
        static INSTALLED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
        if let Some(p) = std::env::var_os("KNEXT_TEST_MOTO_SERVER") {
            return PathBuf::from(p);
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let venv = root.join("target/test-tools/bin");
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .chain([venv])
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file());
        if let Some(found) = found {
            return found;
        }
        INSTALLED
            .get_or_init(|| {
                let out = Command::new("bash")
                    .arg(root.join("scripts/test-tools.sh"))
                    .current_dir(&root)
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(|e| format!("cannot run scripts/test-tools.sh: {e}"))?;
                let dir = String::from_utf8_lossy(&out.stdout);
                let bin = PathBuf::from(dir.lines().last().unwrap_or_default()).join("moto_server");
                if out.status.success() && bin.is_file() {
                    Ok(bin)
                } else {
                    Err(format!("scripts/test-tools.sh failed ({})", out.status))
                }
            })
            .clone()
            .unwrap_or_else(|e| panic!("moto_server is not on PATH and {e}. {MOTO_INSTALL}"))
    }

    fn moto_server() -> Server {
        moto_server_with(&[])
    }

    fn moto_server_with(env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server ({e}). {MOTO_INSTALL}"));
        wait_for_port(port, "moto_server", Duration::from_secs(60), &mut child);
        Server { child, port }
    }

    impl Server {
        fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// `PUT /<bucket>`: S3's CreateBucket (object_store has no call for it).
        fn create_bucket(&self, bucket: &str) {
            let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
            write!(
                s,
                "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.port
            )
            .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
    }

    /// A Secret volume as the kubelet lays it out: the keys are links through `..data`.
    fn secret_volume(dir: &FsPath, files: &[(&str, &str)]) {
        let data = dir.join("..2026_11_30_12_00_00.000000001");
        std::fs::create_dir(&data).unwrap();
        for (name, value) in files {
            std::fs::write(data.join(name), value).unwrap();
        }
        std::os::unix::fs::symlink(data.file_name().unwrap(), dir.join("..data")).unwrap();
        for (name, _) in files {
            std::os::unix::fs::symlink(FsPath::new("..data").join(name), dir.join(name)).unwrap();
        }
    }

    fn s3_creds() -> (tempfile::TempDir, Credentials) {
        let dir = tempfile::tempdir().unwrap();
        secret_volume(
            dir.path(),
            &[
                ("aws_access_key_id", "testing\n"),
                ("aws_secret_access_key", "testing\n"),
            ],
        );
        let creds = Credentials::from_dir(dir.path()).unwrap();
        assert!(creds.ignored().is_empty(), "{creds:?}");
        (dir, creds)
    }

    fn s3_spec(endpoint: &str, bucket: &str) -> NextAppSpec {
        NextAppSpec {
            storage: Some(StorageSpec {
                provider: Some(StorageProvider::S3),
                bucket: Some(bucket.to_owned()),
                region: Some("us-east-1".into()),
                endpoint: Some(endpoint.to_owned()),
            }),
            ..NextAppSpec::default()
        }
    }

    async fn list_all(store: &dyn ObjectStore) -> Vec<String> {
        let mut names: Vec<String> = store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        names.sort();
        names
    }

    #[tokio::test]
    async fn object_cleanup_deletes_exactly_the_apps_prefix() {
        let moto = moto_server();
        moto.create_bucket("assets");
        let (_dir, creds) = s3_creds();
        let spec = s3_spec(&moto.endpoint(), "assets");
        let storage = spec.storage.clone().unwrap();
        let store = open_store(Store::S3, "test", &storage, &creds).await.unwrap();

        let mut ours: Vec<String> = strings(&["shop/a", "shop/b/c"]);
        ours.extend((0..1100).map(|i| format!("shop/many/{i:04}")));
        let others = strings(&["other/y", "shop", "shopfront/x"]);
        futures::stream::iter(ours.iter().chain(&others))
            .map(|name| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .put(&Path::from(name.as_str()), PutPayload::from_static(b"x"))
                        .await
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await
            .unwrap();
        assert_eq!(list_all(store.as_ref()).await.len(), 1105);

        let report = run("shop", &spec, &creds).await;
        assert_eq!(report.objects, Some(Ok(1102)), "{report}");
        assert!(report.redis.is_none(), "{report:?}");
        assert_eq!(list_all(store.as_ref()).await, others);

        let again = run("shop", &spec, &creds).await;
        assert_eq!(again.objects, Some(Ok(0)), "{again}");
    }

    #[tokio::test]
    async fn object_store_errors_are_bounded_and_say_what_to_fix() {
        let moto = moto_server();
        moto.create_bucket("assets");
        let (_dir, creds) = s3_creds();

        // Nothing listens there: refused at once, retried a few times, then an error.
        let start = Instant::now();
        let closed = format!("http://127.0.0.1:{}", free_port());
        let report = run("shop", &s3_spec(&closed, "assets"), &creds).await;
        let Some(Err(e)) = &report.objects else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&closed) && e.to_string().contains("spec.storage.endpoint"),
            "{e}"
        );
        assert!(start.elapsed() < STORE_TIMEOUT, "{:?}", start.elapsed());

        // Accepts connections and never answers: the store's bound ends it.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", silent.local_addr().unwrap());
        let start = Instant::now();
        let report = run_within(
            "shop",
            &s3_spec(&endpoint, "assets"),
            &creds,
            Duration::from_secs(2),
        )
        .await;
        let Some(Err(e)) = &report.objects else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::Timeout { deleted: 0, .. }), "{e:?}");
        assert!(e.to_string().contains("within 2 s"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());

        // A bucket that does not exist.
        let report = run("shop", &s3_spec(&moto.endpoint(), "missing"), &creds).await;
        let Some(Err(e)) = &report.objects else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::NoBucket { .. }), "{e:?}");
        assert!(e.to_string().contains("spec.storage.bucket"), "{e}");

        // No prefix can be made from these names: nothing is listed.
        for app in ["", "a/b", "."] {
            let report = run(app, &s3_spec(&moto.endpoint(), "assets"), &creds).await;
            let Some(Err(e)) = &report.objects else {
                panic!("{app:?}: {report:?}")
            };
            assert!(matches!(e, CleanupError::Config { .. }), "{app:?}: {e:?}");
        }
    }

    #[tokio::test]
    async fn object_store_credentials_refused_or_missing_say_where_they_come_from() {
        // moto checks access keys once this many requests went unchecked (none).
        let moto = moto_server_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
        let (_dir, creds) = s3_creds();
        let report = run("shop", &s3_spec(&moto.endpoint(), "assets"), &creds).await;
        let Some(Err(e)) = &report.objects else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::CredentialsRefused { .. }), "{e:?}");
        let message = e.to_string();
        for part in [
            "InvalidAccessKeyId",
            "aws_access_key_id",
            "knext-operator-cleanup",
            "IRSA",
        ] {
            assert!(message.contains(part), "{message}");
        }

        // No keys: the instance metadata service is asked (here a closed port on loopback).
        let dir = tempfile::tempdir().unwrap();
        let metadata = format!("http://127.0.0.1:{}", free_port());
        std::fs::write(dir.path().join("aws_metadata_endpoint"), &metadata).unwrap();
        let creds = Credentials::from_dir(dir.path()).unwrap();
        let report = run("shop", &s3_spec(&moto.endpoint(), "assets"), &creds).await;
        let Some(Err(e)) = &report.objects else {
            panic!("{report:?}")
        };
        assert!(matches!(e, CleanupError::NoCredentials { .. }), "{e:?}");
        assert!(
            e.to_string().contains(&metadata) && e.to_string().contains("IRSA"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn local_or_bucketless_storage_has_nothing_to_delete() {
        for (provider, bucket) in [
            (StorageProvider::Local, Some("assets")),
            (StorageProvider::S3, None),
            (StorageProvider::Gcs, Some(" ")),
        ] {
            let spec = NextAppSpec {
                storage: Some(StorageSpec {
                    provider: Some(provider),
                    bucket: bucket.map(str::to_owned),
                    ..StorageSpec::default()
                }),
                ..NextAppSpec::default()
            };
            let report = run("shop", &spec, &Credentials::default()).await;
            assert!(report.objects.is_none(), "{report:?}");
            assert_eq!(report.notes.len(), 1, "{report:?}");
            assert_eq!(report.errors().count(), 0);
        }
    }

    // ---- Credentials ----

    #[test]
    fn credentials_come_from_a_secret_volume() {
        let dir = tempfile::tempdir().unwrap();
        secret_volume(
            dir.path(),
            &[
                ("redis-username", "cleaner\n"),
                ("redis-password", "pa ss\r\n"),
                ("aws_access_key_id", "AKIDEXAMPLE"),
                ("aws_secret_access_key", "s3cr3t-value\n"),
                ("google_service_account_key", "{\"k\": \"gcs-secret\"}\n"),
                ("azure_storage_account_key", "azure-secret\n"),
                ("aws_no_such_key", "x"),
                ("notes.txt", "x"),
            ],
        );
        std::fs::write(dir.path().join(".hidden"), "x").unwrap();
        let c = Credentials::from_dir(dir.path()).unwrap();
        assert_eq!(c.redis_username.as_deref(), Some("cleaner"));
        assert_eq!(c.redis_password.as_deref(), Some("pa ss"));
        assert_eq!(
            c.s3,
            vec![
                (AmazonS3ConfigKey::AccessKeyId, "AKIDEXAMPLE".to_owned()),
                (AmazonS3ConfigKey::SecretAccessKey, "s3cr3t-value".to_owned())
            ]
        );
        assert_eq!(
            c.gcs,
            vec![(
                GoogleConfigKey::ServiceAccountKey,
                "{\"k\": \"gcs-secret\"}".to_owned()
            )]
        );
        assert_eq!(
            c.azure,
            vec![(AzureConfigKey::AccessKey, "azure-secret".to_owned())]
        );
        assert_eq!(c.ignored(), ["aws_no_such_key", "notes.txt"]);

        let shown = format!("{c:?}");
        for secret in [
            "cleaner",
            "pa ss",
            "AKIDEXAMPLE",
            "s3cr3t-value",
            "gcs-secret",
            "azure-secret",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        for name in [
            "aws_access_key_id",
            "aws_secret_access_key",
            "azure_storage_account_key",
            "<redacted>",
        ] {
            assert!(shown.contains(name), "{shown}");
        }
    }

    #[test]
    fn a_missing_directory_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::from_dir(dir.path().join("absent")).unwrap();
        assert!(!c.has_redis() && c.s3.is_empty() && c.ignored().is_empty());
        let empty = Credentials::from_dir(dir.path()).unwrap();
        assert!(!empty.has_redis());
        std::fs::write(dir.path().join("redis-password"), "\n").unwrap();
        assert!(
            !Credentials::from_dir(dir.path()).unwrap().has_redis(),
            "an empty file is no password"
        );
        std::fs::write(dir.path().join("redis-password"), [0xff, 0xfe]).unwrap();
        let e = Credentials::from_dir(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("redis-password") && e.to_string().contains("UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn glob_escaping_and_url_redaction() {
        assert_eq!(escape_glob(r"a*b?c[d]e\f-g^h"), r"a\*b\?c\[d\]e\\f-g^h");
        assert_eq!(escape_glob("shop"), "shop");
        assert_eq!(
            without_credentials("redis://u:p@cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(without_credentials("rediss://cache:6380"), "rediss://cache:6380");
        assert_eq!(without_credentials("cache:6379"), "cache:6379");
    }
}
