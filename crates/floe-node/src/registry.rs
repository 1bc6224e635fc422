//! The node registry: every running node keeps a record of itself in the metadata
//! engine (kind `node`, named by the node's id) and refreshes its heartbeat there, so
//! that any client of the deployment — `floe status`, another node — sees which nodes
//! exist, where they listen, what backends they use and whether they are alive.
//!
//! A node that stops cleanly removes its record ([`NodeRegistry::deregister`]); one
//! that crashes or is cut off leaves it behind, and its heartbeat goes stale:
//! [`NodeRegistry::list`] reports it [`Liveness::Down`] once it missed
//! [`MISSED_BEATS`] beats. The record of a node that comes back under the same id (kept
//! in its data directory, [`NodeRegistry::node_id_in`]) is simply replaced.

use std::io;
use std::path::Path;
use std::time::Duration;

use floe_meta::{Expect, Meta, MetaError};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The record kind nodes register under.
pub const KIND: &str = "node";
/// How often a node refreshes its heartbeat unless told otherwise.
pub const DEFAULT_BEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How many beats in a row a node may miss before it is reported down: one late
/// beat (a slow metadata write, a paused machine) is not a dead node.
pub const MISSED_BEATS: u64 = 3;

/// The file in a node's directory that keeps its id across restarts.
const NODE_ID_FILE: &str = "node-id";

/// What a node says about itself, as stored in its record. Times are Unix
/// milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub hostname: String,
    pub pid: u32,
    /// Base URL of the AWS-compatible API.
    pub api_endpoint: String,
    /// Base URL of the HTTP trigger listener.
    pub trigger_endpoint: String,
    /// The floe version the node runs.
    pub version: String,
    /// The metadata backend's kind ("sqlite", "postgres").
    pub meta_backend: String,
    /// The object store, as the node describes it (no secrets).
    pub object_store: String,
    pub started_at: u64,
    pub heartbeat_at: u64,
    /// How often the node beats: readers judge its liveness against this.
    pub beat_interval_ms: u64,
}

/// What the caller tells the registry about the node it registers; the rest
/// (host, process, version, backend, times) the registry finds itself.
#[derive(Clone, Debug)]
pub struct NodeAnnouncement {
    /// The node's id, usually [`NodeRegistry::node_id_in`] of its data directory.
    pub id: String,
    pub api_endpoint: String,
    pub trigger_endpoint: String,
    /// A description of the object store, without credentials.
    pub object_store: String,
    /// How often to beat ([`DEFAULT_BEAT_INTERVAL`] in production).
    pub beat_interval: Duration,
}

/// Whether a node is alive, judged by the age of its last heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// It beat within its last [`MISSED_BEATS`] intervals.
    Up,
    /// Its heartbeat is stale: it crashed, hangs, or cannot reach the metadata engine.
    Down,
}

impl Liveness {
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Up => "up",
            Liveness::Down => "down",
        }
    }
}

/// A registered node with its liveness at the time of listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub record: NodeRecord,
    pub liveness: Liveness,
    /// How long ago the node last beat (zero when its clock is ahead of ours).
    pub beat_age: Duration,
}

impl NodeStatus {
    /// The status of `record` at `now_ms` (Unix milliseconds).
    pub fn at(record: NodeRecord, now_ms: u64) -> NodeStatus {
        let beat_age = Duration::from_millis(now_ms.saturating_sub(record.heartbeat_at));
        let ttl = Duration::from_millis(record.beat_interval_ms.max(1).saturating_mul(MISSED_BEATS));
        let liveness = if beat_age <= ttl { Liveness::Up } else { Liveness::Down };
        NodeStatus { record, liveness, beat_age }
    }
}

/// Why the registry could not do its work (one line).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("node registry: {0}")]
    Meta(#[from] MetaError),
    #[error("node registry: the heartbeat task failed: {0}")]
    Task(String),
    #[error("node registry: the beat interval must be at least 1 ms")]
    Interval,
}

/// This node's registration: its record in the metadata engine and the task that
/// keeps its heartbeat fresh. Dropping it stops the beats but leaves the record (as a
/// crash would); [`NodeRegistry::deregister`] removes it.
pub struct NodeRegistry {
    meta: Meta,
    id: String,
    stop: watch::Sender<bool>,
    beats: Option<JoinHandle<()>>,
}

impl NodeRegistry {
    /// The id of the node whose directory is `dir`: read from `<dir>/node-id`, or made
    /// (this host's name and a random suffix) and written there the first time, so a
    /// restarted node rejoins under the same id.
    pub fn node_id_in(dir: &Path) -> io::Result<String> {
        let path = dir.join(NODE_ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse_node_id(&text, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))),
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))?;
        let id = new_node_id(&hostname());
        // Written under a temporary name and renamed, so a crash never leaves a
        // half-written id; a rename that lost a race keeps the winner's id.
        let tmp = dir.join(format!(".{NODE_ID_FILE}.{}", std::process::id()));
        std::fs::write(&tmp, format!("{id}\n"))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", tmp.display())))?;
        if let Err(e) = std::fs::hard_link(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            if e.kind() == io::ErrorKind::AlreadyExists {
                return parse_node_id(&std::fs::read_to_string(&path)?, &path);
            }
            return Err(io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())));
        }
        let _ = std::fs::remove_file(&tmp);
        Ok(id)
    }

    /// Registers the node (replacing the record a previous run under the same id left)
    /// and starts beating every `node.beat_interval`. Must run inside a Tokio runtime.
    pub async fn register(meta: Meta, node: NodeAnnouncement) -> Result<NodeRegistry, RegistryError> {
        let interval_ms = u64::try_from(node.beat_interval.as_millis()).unwrap_or(u64::MAX);
        if interval_ms == 0 {
            return Err(RegistryError::Interval);
        }
        let now = floe_lambda::time::now_millis();
        let record = NodeRecord {
            id: node.id.clone(),
            hostname: hostname(),
            pid: std::process::id(),
            api_endpoint: node.api_endpoint,
            trigger_endpoint: node.trigger_endpoint,
            version: env!("CARGO_PKG_VERSION").to_string(),
            meta_backend: meta.backend_kind().to_string(),
            object_store: node.object_store,
            started_at: now,
            heartbeat_at: now,
            beat_interval_ms: interval_ms,
        };
        let first = record.clone();
        blocking(meta.clone(), move |meta| {
            warn_if_taken_over(meta, &first);
            store(meta, &first)
        })
        .await?;
        let (stop, stopped) = watch::channel(false);
        let beats = tokio::spawn(beat(meta.clone(), record, node.beat_interval, stopped));
        Ok(NodeRegistry { meta, id: node.id, stop, beats: Some(beats) })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops the beats and removes the node's record: a clean shutdown, after which
    /// the node is no longer listed.
    pub async fn deregister(mut self) -> Result<(), RegistryError> {
        let _ = self.stop.send(true);
        if let Some(beats) = self.beats.take() {
            // Waiting for the task (rather than aborting it) lets a beat in flight
            // finish first, so it cannot write the record back after the delete.
            beats.await.map_err(|e| RegistryError::Task(e.to_string()))?;
        }
        let id = self.id.clone();
        blocking(self.meta.clone(), move |meta| match meta.delete_record(KIND, &id, Expect::Present) {
            Ok(_) | Err(MetaError::NotFound) => Ok(()),
            Err(e) => Err(e),
        })
        .await
    }

    /// Every registered node, in id order, with its liveness now. Records this floe
    /// cannot read (written by an incompatible version) are skipped with a warning.
    pub fn list(meta: &Meta) -> Result<Vec<NodeStatus>, RegistryError> {
        let now = floe_lambda::time::now_millis();
        let mut nodes = Vec::new();
        for r in meta.records(KIND)? {
            match serde_json::from_str::<NodeRecord>(&r.body) {
                Ok(record) => nodes.push(NodeStatus::at(record, now)),
                Err(e) => tracing::warn!(node = %r.name, error = %e, "skipping an unreadable node record"),
            }
        }
        Ok(nodes)
    }
}

impl Drop for NodeRegistry {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(beats) = self.beats.take() {
            beats.abort();
        }
    }
}

/// The heartbeat loop: refreshes the record every `interval` until told to stop. A
/// failed beat is logged and the next one tried: the metadata engine may be back by then.
async fn beat(meta: Meta, mut record: NodeRecord, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // The first tick is immediate, and registration just wrote the record.
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = ticks.tick() => {}
        }
        record.heartbeat_at = floe_lambda::time::now_millis();
        let current = record.clone();
        if let Err(e) = blocking(meta.clone(), move |meta| store(meta, &current)).await {
            tracing::warn!(node = %record.id, error = %e, "node heartbeat failed");
        }
    }
}

/// Writes the node's record, creating it when it is missing (a first registration, or
/// a record someone removed while the node was cut off).
fn store(meta: &Meta, record: &NodeRecord) -> Result<(), MetaError> {
    let body = serde_json::to_string(record).expect("a node record always serializes");
    match meta.put_record(KIND, &record.id, &body, Expect::Present) {
        Err(MetaError::NotFound) => meta.put_record(KIND, &record.id, &body, Expect::Absent).map(|_| ()),
        other => other.map(|_| ()),
    }
}

/// Two live processes under one id would overwrite each other's record: say so when
/// the record being replaced still looks alive and is not ours.
fn warn_if_taken_over(meta: &Meta, ours: &NodeRecord) {
    let Ok(Some(previous)) = meta.record(KIND, &ours.id) else { return };
    let Ok(previous) = serde_json::from_str::<NodeRecord>(&previous.body) else { return };
    let status = NodeStatus::at(previous, ours.started_at);
    let previous = &status.record;
    // On this host, a previous process that is gone (a restart after a crash) is no rival.
    let rival = if previous.hostname == ours.hostname {
        previous.pid != ours.pid && Path::new(&format!("/proc/{}", previous.pid)).exists()
    } else {
        true
    };
    if status.liveness == Liveness::Up && rival {
        tracing::warn!(
            node = %ours.id,
            previous_host = %status.record.hostname,
            previous_pid = status.record.pid,
            "another live process registered this node id; replacing its record \
             (two nodes must not share one data directory)"
        );
    }
}

/// Runs a metadata call on a thread made for blocking work.
async fn blocking<R: Send + 'static>(
    meta: Meta,
    f: impl FnOnce(&Meta) -> Result<R, MetaError> + Send + 'static,
) -> Result<R, RegistryError> {
    tokio::task::spawn_blocking(move || f(&meta))
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))?
        .map_err(Into::into)
}

/// This host's name, as file system clients write it into their session info (so
/// `floe status` can match a node with its sessions).
pub fn hostname() -> String {
    for source in ["/etc/hostname", "/proc/sys/kernel/hostname"] {
        if let Ok(name) = std::fs::read_to_string(source) {
            let name = name.trim();
            if !name.is_empty() {
                return name.to_string();
            }
        }
    }
    "localhost".to_string()
}

/// `<host>-<8 hex digits>`, the host part reduced to what is safe in a record name
/// and a log line.
fn new_node_id(host: &str) -> String {
    let host: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c.to_ascii_lowercase() } else { '-' })
        .take(48)
        .collect();
    let host = host.trim_matches(['-', '.']);
    let suffix: u32 = rand::rng().random();
    if host.is_empty() {
        format!("node-{suffix:08x}")
    } else {
        format!("{host}-{suffix:08x}")
    }
}

fn parse_node_id(text: &str, path: &Path) -> io::Result<String> {
    let id = text.trim();
    let valid = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if valid {
        Ok(id.to_string())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} does not hold a node id (delete it and a new one is made)", path.display()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(heartbeat_at: u64, beat_interval_ms: u64) -> NodeRecord {
        NodeRecord {
            id: "n".into(),
            hostname: "h".into(),
            pid: 1,
            api_endpoint: String::new(),
            trigger_endpoint: String::new(),
            version: String::new(),
            meta_backend: "sqlite".into(),
            object_store: String::new(),
            started_at: 0,
            heartbeat_at,
            beat_interval_ms,
        }
    }

    #[test]
    fn liveness_follows_missed_beats() {
        let now = 100_000;
        assert_eq!(NodeStatus::at(record(now, 1000), now).liveness, Liveness::Up);
        assert_eq!(NodeStatus::at(record(now - 3000, 1000), now).liveness, Liveness::Up, "three missed beats");
        let late = NodeStatus::at(record(now - 3001, 1000), now);
        assert_eq!((late.liveness, late.beat_age), (Liveness::Down, Duration::from_millis(3001)));
        let ahead = NodeStatus::at(record(now + 500, 1000), now);
        assert_eq!((ahead.liveness, ahead.beat_age), (Liveness::Up, Duration::ZERO), "a clock ahead of ours");
    }

    #[test]
    fn node_ids_are_safe_names() {
        let id = new_node_id("Web_1.example.com");
        assert!(id.starts_with("web-1.example.com-") && id.len() == "web-1.example.com-".len() + 8, "{id}");
        assert!(new_node_id("").starts_with("node-"));
        assert_ne!(new_node_id("h"), new_node_id("h"), "ids are random past the host");
        let path = Path::new("/x/node-id");
        assert_eq!(parse_node_id("a-1\n", path).unwrap(), "a-1");
        assert!(parse_node_id("", path).is_err());
        assert!(parse_node_id("a b", path).is_err());
    }
}
