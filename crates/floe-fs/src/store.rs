//! Where block objects (and the code packages of functions) live, named by one URL:
//!
//! - no URL: the data directory's `objects/`; `file:///path`: another directory.
//!   Objects are files, synced before the commit that references them.
//! - `s3://bucket[/prefix]?endpoint=http://host:port&region=us-east-1&path_style=true`:
//!   a bucket of any S3-compatible store, with the credentials in `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` when set).
//!
//! Opening an S3 store checks it at once (a probe object is written, read back and
//! deleted), so that a wrong endpoint, wrong credentials or a missing bucket stop the
//! program at start-up with one line that says what to fix, rather than as EIO on the
//! first write. Requests are retried with exponential backoff on throttling (429,
//! SlowDown), server errors and dropped connections, a bounded number of times within
//! a bounded time (see [`S3Url`]); after that the operation fails and the file system
//! reports EIO without committing anything (see ADR 0012).

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Retries of one request after its first attempt, unless `max_retries=` says otherwise.
pub const MAX_RETRIES: usize = 10;
/// Time after a request's first attempt past which it is not retried, unless
/// `retry_timeout=` (seconds) says otherwise.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// The first wait before a retry; each next wait is drawn at random between this and
/// twice the previous one, up to [`MAX_BACKOFF`].
pub const INIT_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a store cannot be opened. Each message is one line that says what to fix.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("invalid object store URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("object directory {}: {reason}", dir.display())]
    Local { dir: PathBuf, reason: String },
    #[error("the S3 store {url} needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoCredentials { url: String },
    #[error("cannot reach the S3 endpoint {endpoint} ({reason}): check endpoint= in the store URL and that the server is up")]
    Unreachable { endpoint: String, reason: String },
    #[error("the S3 endpoint {endpoint} rejected the credentials for bucket {bucket} ({reason}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    Credentials { endpoint: String, bucket: String, reason: String },
    #[error("bucket {bucket} does not exist at {endpoint}: create it, or fix the bucket in the store URL")]
    NoBucket { endpoint: String, bucket: String },
    #[error("the S3 store {url} failed its start-up check: {reason}")]
    Check { url: String, reason: String },
}

/// Where objects are stored, parsed from a store URL.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreUrl {
    Local(PathBuf),
    S3(S3Url),
}

/// An S3 bucket (and a key prefix in it) and how to talk to it.
#[derive(Clone, Debug, PartialEq)]
pub struct S3Url {
    /// The URL as given, for messages (it holds no secrets).
    pub url: String,
    pub bucket: String,
    /// Keys are stored under `prefix/` when set.
    pub prefix: Option<String>,
    /// `endpoint=`: the server's base URL; AWS's endpoint for the region when absent.
    pub endpoint: Option<String>,
    /// `region=`, default `us-east-1`.
    pub region: String,
    /// `path_style=true`: `endpoint/bucket/key` rather than `bucket.endpoint/key`
    /// (most self-hosted servers want this).
    pub path_style: bool,
    /// `max_retries=`, default [`MAX_RETRIES`].
    pub max_retries: usize,
    /// `retry_timeout=` in seconds, default [`RETRY_TIMEOUT`].
    pub retry_timeout: Duration,
}

/// S3 credentials.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl S3Credentials {
    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Option<S3Credentials> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Some(S3Credentials {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// Opens the store that `url` names (the directory `local_root` when `None`), with S3
/// credentials from the environment, and checks that it works.
pub fn open_url(url: Option<&str>, local_root: &Path) -> Result<Arc<dyn ObjectStore>, StoreError> {
    match StoreUrl::parse(url, local_root)? {
        StoreUrl::Local(dir) => open_local(&dir),
        StoreUrl::S3(s3) => {
            let credentials =
                S3Credentials::from_env().ok_or_else(|| StoreError::NoCredentials { url: s3.url.clone() })?;
            open_s3(&s3, &credentials)
        }
    }
}

/// A directory of object files, synced before they are referenced (ADR 0007) and
/// written with `O_DIRECT` (ADR 0014).
pub fn open_local(dir: &Path) -> Result<Arc<dyn ObjectStore>, StoreError> {
    if !dir.is_dir() {
        return Err(StoreError::Local { dir: dir.to_path_buf(), reason: "not a directory: create it".into() });
    }
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| StoreError::Local { dir: dir.to_path_buf(), reason: one_line(&e.to_string()) })?;
    Ok(Arc::new(crate::direct::DirectLocal::new(store.with_fsync(true), dir.to_path_buf())))
}

/// A bucket of an S3-compatible store, checked with a probe object before it is
/// returned.
pub fn open_s3(url: &S3Url, credentials: &S3Credentials) -> Result<Arc<dyn ObjectStore>, StoreError> {
    // The check runs on a client of its own with few retries, so that a wrong
    // endpoint is reported in seconds rather than after the full retry time, and so
    // that no connection of the client handed out belongs to the check's runtime.
    let quick = S3Url { max_retries: 2, retry_timeout: Duration::from_secs(3), ..url.clone() };
    check(url, &*build_s3(&quick, credentials)?)?;
    build_s3(url, credentials)
}

fn build_s3(url: &S3Url, credentials: &S3Credentials) -> Result<Arc<dyn ObjectStore>, StoreError> {
    // HTTPS endpoints use rustls with ring (see Cargo.toml); an error only says that a
    // provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = RetryConfig {
        backoff: BackoffConfig { init_backoff: INIT_BACKOFF, max_backoff: MAX_BACKOFF, base: 2.0 },
        max_retries: url.max_retries,
        retry_timeout: url.retry_timeout,
    };
    let plain_http = url.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&url.bucket)
        .with_region(&url.region)
        .with_access_key_id(&credentials.access_key_id)
        .with_secret_access_key(&credentials.secret_access_key)
        .with_virtual_hosted_style_request(!url.path_style)
        .with_retry(retry)
        .with_client_options(ClientOptions::new().with_allow_http(plain_http));
    if let Some(endpoint) = &url.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(token) = &credentials.session_token {
        builder = builder.with_token(token);
    }
    let s3 =
        builder.build().map_err(|e| StoreError::BadUrl { url: url.url.clone(), reason: one_line(&e.to_string()) })?;
    Ok(match &url.prefix {
        Some(prefix) => Arc::new(PrefixStore::new(s3, prefix.as_str())),
        None => Arc::new(s3),
    })
}

/// Writes, reads back and deletes one small object: proves the endpoint answers, the
/// credentials are accepted, the bucket exists and objects round-trip.
fn check(url: &S3Url, store: &dyn ObjectStore) -> Result<(), StoreError> {
    let key = ObjectPath::from(format!(
        ".floe-probe/{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    ));
    let body = bytes::Bytes::from_static(b"floe start-up check");
    let probe = async {
        // A listing first: some servers create a missing bucket on a put, but none
        // lists one. It asks for one key at most, so a full bucket costs nothing more.
        let listing = ObjectPath::from(".floe-probe");
        if let Err(e) = store.list_with_delimiter(Some(&listing)).await {
            return Err(match e {
                object_store::Error::NotFound { .. } => Err(()),
                other => Ok(other),
            });
        }
        let round_trip = async {
            store.put(&key, PutPayload::from(body.clone())).await?;
            let read = store.get(&key).await?.bytes().await?;
            store.delete(&key).await?;
            Ok::<_, object_store::Error>(read)
        };
        round_trip.await.map_err(Ok)
    };
    // Callers may or may not be inside a Tokio runtime: run the probe on a thread and
    // runtime of its own either way.
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
                    StoreError::Check { url: url.url.clone(), reason: format!("cannot start a runtime: {e}") }
                })?;
                runtime.block_on(probe).map_err(|e| match e {
                    Ok(e) => classify(url, &e),
                    Err(()) => StoreError::NoBucket { endpoint: endpoint(url), bucket: url.bucket.clone() },
                })
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Check { url: url.url.clone(), reason: "the check panicked".into() }))
    })?;
    if outcome != body {
        return Err(StoreError::Check {
            url: url.url.clone(),
            reason: format!("a probe object of {} bytes read back as {} different bytes", body.len(), outcome.len()),
        });
    }
    Ok(())
}

/// Turns the check's failure into the error that says what to fix.
fn classify(url: &S3Url, e: &object_store::Error) -> StoreError {
    let endpoint = endpoint(url);
    let bucket = url.bucket.clone();
    let text = e.to_string();
    let code = xml_field(&text, "Code");
    // Transport failures (refused, reset, timed out, TLS) are below any S3 status.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind;
            if matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Request) {
                return StoreError::Unreachable { endpoint, reason: innermost(http) };
            }
        }
        source = err.source();
    }
    let reason = match (&code, xml_field(&text, "Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        _ => one_line(&text),
    };
    match (e, code.as_deref()) {
        (_, Some("NoSuchBucket")) => StoreError::NoBucket { endpoint, bucket },
        (
            _,
            Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied" | "InvalidToken" | "ExpiredToken"),
        )
        | (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }, _) => {
            StoreError::Credentials { endpoint, bucket, reason }
        }
        _ => StoreError::Check { url: url.url.clone(), reason },
    }
}

fn endpoint(url: &S3Url) -> String {
    url.endpoint.clone().unwrap_or_else(|| format!("AWS S3 in {}", url.region))
}

/// The deepest cause of a transport error, e.g. "Connection refused (os error 111)".
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    one_line(&last.to_string())
}

/// `<Name>value</Name>` in an S3 error body.
fn xml_field(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(one_line(&text[start..start + len]))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl StoreUrl {
    /// Parses a store URL; `None` is the directory `local_root`.
    pub fn parse(url: Option<&str>, local_root: &Path) -> Result<StoreUrl, StoreError> {
        let Some(raw) = url else { return Ok(StoreUrl::Local(local_root.to_path_buf())) };
        let bad = |reason: String| StoreError::BadUrl { url: raw.to_string(), reason };
        let parsed =
            url::Url::parse(raw).map_err(|e| bad(format!("{e} (expected file:///path or s3://bucket?...)")))?;
        match parsed.scheme() {
            "file" => {
                if parsed.query().is_some() || parsed.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(bad("a file URL is file:///absolute/path, with no host or parameters".into()));
                }
                let dir = parsed.to_file_path().map_err(|()| bad("not a local path".into()))?;
                Ok(StoreUrl::Local(dir))
            }
            "s3" => S3Url::from_url(raw, &parsed).map(StoreUrl::S3).map_err(bad),
            other => Err(bad(format!("unknown scheme {other}: use file:///path or s3://bucket"))),
        }
    }
}

impl S3Url {
    fn from_url(raw: &str, parsed: &url::Url) -> Result<S3Url, String> {
        let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or("no bucket: s3://bucket[/prefix]")?;
        if !parsed.username().is_empty() || parsed.password().is_some() || parsed.port().is_some() {
            return Err("credentials and ports do not go in the URL: use AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and endpoint=".into());
        }
        let prefix = parsed.path().trim_matches('/');
        let mut s3 = S3Url {
            url: raw.to_string(),
            bucket: bucket.to_string(),
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
            endpoint: None,
            region: "us-east-1".into(),
            path_style: false,
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
        };
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "endpoint" => {
                    let wrong = || format!("endpoint={value}: expected http://host[:port] or https://host[:port]");
                    let endpoint = url::Url::parse(&value).map_err(|_| wrong())?;
                    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
                        return Err(wrong());
                    }
                    s3.endpoint = Some(value.trim_end_matches('/').to_string());
                }
                "region" if !value.is_empty() => s3.region = value.into_owned(),
                "path_style" => {
                    s3.path_style = value.parse().map_err(|_| format!("path_style={value}: expected true or false"))?
                }
                "max_retries" => {
                    s3.max_retries =
                        value.parse().map_err(|_| format!("max_retries={value}: expected a number of retries"))?
                }
                "retry_timeout" => {
                    let secs: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| format!("retry_timeout={value}: expected seconds"))?;
                    s3.retry_timeout = Duration::from_secs_f64(secs);
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other}= (known: endpoint, region, path_style, max_retries, retry_timeout)"
                    ))
                }
            }
        }
        Ok(s3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(url: &str) -> S3Url {
        match StoreUrl::parse(Some(url), Path::new("/unused")).expect("parses") {
            StoreUrl::S3(s3) => s3,
            other => panic!("not S3: {other:?}"),
        }
    }

    #[test]
    fn urls_parse_into_what_they_name() {
        assert_eq!(
            StoreUrl::parse(None, Path::new("/d/objects")).expect("default"),
            StoreUrl::Local("/d/objects".into())
        );
        assert_eq!(
            StoreUrl::parse(Some("file:///srv/objects"), Path::new("/d")).expect("file"),
            StoreUrl::Local("/srv/objects".into())
        );
        let u = s3("s3://b/some/prefix/?endpoint=http://127.0.0.1:9000/&region=eu-west-3&path_style=true&retry_timeout=1.5&max_retries=3");
        assert_eq!(u.bucket, "b");
        assert_eq!(u.prefix.as_deref(), Some("some/prefix"));
        assert_eq!(u.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(u.region, "eu-west-3");
        assert!(u.path_style);
        assert_eq!((u.max_retries, u.retry_timeout), (3, Duration::from_millis(1500)));
        let d = s3("s3://bucket");
        assert_eq!((d.prefix, d.endpoint, d.region.as_str(), d.path_style), (None, None, "us-east-1", false));
        assert_eq!((d.max_retries, d.retry_timeout), (MAX_RETRIES, RETRY_TIMEOUT));
    }

    #[test]
    fn malformed_urls_are_one_line_errors_that_say_what_is_wrong() {
        for (url, says) in [
            ("objects", "expected file:///path or s3://bucket"),
            ("gs://bucket", "unknown scheme gs"),
            ("s3://", "no bucket"),
            ("s3://key:secret@bucket", "credentials and ports do not go in the URL"),
            ("s3://b?endpoint=localhost:9000", "expected http://host"),
            ("s3://b?path_style=yes", "path_style=yes: expected true or false"),
            ("s3://b?retry_timeout=-1", "retry_timeout=-1: expected seconds"),
            ("s3://b?bucket=c", "unknown parameter bucket="),
            ("file://host/x", "file:///absolute/path"),
        ] {
            let err = StoreUrl::parse(Some(url), Path::new("/d")).expect_err(url).to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains('\n'), "{url}: {err}");
        }
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = open_url(Some(&format!("file://{}", missing.display())), dir.path()).expect_err("missing dir");
        assert!(err.to_string().contains("nope") && err.to_string().contains("create it"), "{err}");
        assert!(open_url(None, dir.path()).is_ok());
    }
}
