//! A node's configuration (flags over `floe.toml` over defaults), the lock that
//! makes it the only node of its data directory, and the file through which the
//! CLI finds it.

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use floe_node::Deployment;
use serde::{Deserialize, Serialize};

use crate::config::DataDir;
use crate::up::UpArgs;

/// `floe.toml`: every key optional; unknown keys are refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen: Option<String>,
    trigger_listen: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    account_concurrency: Option<u32>,
    /// Read by `DataDir` (every command uses the same backends).
    #[allow(dead_code)]
    meta: Option<String>,
    #[allow(dead_code)]
    store: Option<String>,
    cache_size: Option<u64>,
    session_ttl: Option<f64>,
}

/// What `floe up` runs with.
#[derive(Clone, Debug)]
pub struct UpConfig {
    pub listen: SocketAddr,
    pub trigger_listen: SocketAddr,
    pub deployment: Deployment,
    pub account_concurrency: u32,
    /// MiB of the node-local disk cache of file blocks (0: none).
    pub cache_size: u64,
    /// How long a dead node's file system sessions (and their locks) outlive it.
    pub session_ttl: std::time::Duration,
}

fn addr(value: &str, key: &str, file: &Path) -> Result<SocketAddr> {
    value
        .parse()
        .with_context(|| format!("{}: {key} = {value:?} is not an address like 127.0.0.1:9780", file.display()))
}

impl UpConfig {
    pub fn load(paths: &DataDir, args: &UpArgs) -> Result<UpConfig> {
        let default_file = paths.root.join("floe.toml");
        let (file, path) = match &args.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                (parse(&text, p)?, p.clone())
            }
            None if default_file.is_file() => {
                let text = std::fs::read_to_string(&default_file)
                    .with_context(|| format!("cannot read {}", default_file.display()))?;
                (parse(&text, &default_file)?, default_file)
            }
            None => (ConfigFile::default(), default_file),
        };
        let listen = match (args.listen, &file.listen) {
            (Some(a), _) => a,
            (None, Some(v)) => addr(v, "listen", &path)?,
            (None, None) => "127.0.0.1:9780".parse().expect("a valid address"),
        };
        let trigger_listen = match (args.trigger_listen, &file.trigger_listen) {
            (Some(a), _) => a,
            (None, Some(v)) => addr(v, "trigger_listen", &path)?,
            (None, None) => "127.0.0.1:9781".parse().expect("a valid address"),
        };
        let region = args.region.clone().or(file.region).unwrap_or_else(|| "us-east-1".to_string());
        let account_id = args.account_id.clone().or(file.account_id).unwrap_or_else(|| "000000000000".to_string());
        let account_concurrency = args.account_concurrency.or(file.account_concurrency).unwrap_or(1000);
        let region_ok = !region.is_empty()
            && region.len() <= 32
            && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            bail!("region {region:?} is not a region name like us-east-1");
        }
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account id {account_id:?} is not 12 digits");
        }
        if account_concurrency == 0 {
            bail!("account concurrency must be at least 1");
        }
        let cache_size = args.cache_size.or(file.cache_size).unwrap_or(1024);
        let session_ttl = args.session_ttl.or(file.session_ttl).unwrap_or(60.0);
        if !(1.0..=86_400.0).contains(&session_ttl) {
            bail!("session ttl {session_ttl} is not between 1 and 86400 seconds");
        }
        Ok(UpConfig {
            listen,
            trigger_listen,
            deployment: Deployment { region, account_id },
            account_concurrency,
            cache_size,
            session_ttl: std::time::Duration::from_secs_f64(session_ttl),
        })
    }
}

fn parse(text: &str, path: &Path) -> Result<ConfigFile> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().to_string();
        anyhow::anyhow!("{}: {message}", path.display())
    })
}

/// Where a running node can be reached: `<data>/run/node.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeFile {
    pub pid: u32,
    pub endpoint: String,
    pub triggers: String,
    pub region: String,
    pub account_id: String,
}

/// The exclusive lock of `<data>/run/node.lock`, held by the one node (or one CLI
/// command acting as a node) of a data directory.
pub struct NodeLock {
    /// Closing it releases the lock.
    _file: std::fs::File,
    info: PathBuf,
}

impl NodeLock {
    fn lock_path(paths: &DataDir) -> PathBuf {
        paths.root.join("run").join("node.lock")
    }

    fn open(paths: &DataDir) -> Result<std::fs::File> {
        let path = NodeLock::lock_path(paths);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    /// Takes the lock, or fails in one line naming the node that holds it.
    pub fn take(paths: &DataDir) -> Result<NodeLock> {
        match NodeLock::try_take(paths)? {
            Some(lock) => Ok(lock),
            None => match running(paths) {
                Some(n) => {
                    bail!("a floe node is already running on {} (pid {}, {})", paths.root.display(), n.pid, n.endpoint)
                }
                None => bail!("another floe process is using {} as a node", paths.root.display()),
            },
        }
    }

    /// Takes the lock, waiting up to `patience` for another command that holds it
    /// without being a node (a node publishes `node.json`) to finish; `None` when a
    /// node holds it.
    pub fn wait(paths: &DataDir, patience: std::time::Duration) -> Result<Option<NodeLock>> {
        let deadline = std::time::Instant::now() + patience;
        loop {
            if let Some(lock) = NodeLock::try_take(paths)? {
                return Ok(Some(lock));
            }
            if running(paths).is_some() {
                return Ok(None);
            }
            if std::time::Instant::now() >= deadline {
                bail!("another floe command has been using {} for {patience:?}", paths.root.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Takes the lock if nobody holds it.
    pub fn try_take(paths: &DataDir) -> Result<Option<NodeLock>> {
        let file = NodeLock::open(paths)?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(e).context("cannot lock the node lock file");
        }
        Ok(Some(NodeLock { _file: file, info: paths.root.join("run").join("node.json") }))
    }

    /// Tells the CLI where this node listens.
    pub fn publish(&self, node: &NodeFile) -> Result<()> {
        let tmp = self.info.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(serde_json::to_string(node)?.as_bytes())?;
        std::fs::rename(&tmp, &self.info).with_context(|| format!("cannot write {}", self.info.display()))?;
        Ok(())
    }

    pub fn unpublish(&self) {
        let _ = std::fs::remove_file(&self.info);
    }
}

/// The node running on this data directory, if one is: its lock is held and it
/// published where it listens.
pub fn running(paths: &DataDir) -> Option<NodeFile> {
    let file = NodeLock::open(paths).ok()?;
    // SAFETY: as in `try_take`; a shared probe that is released at once.
    let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
    if free {
        return None;
    }
    let text = std::fs::read_to_string(paths.root.join("run").join("node.json")).ok()?;
    serde_json::from_str(&text).ok()
}
