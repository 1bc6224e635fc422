//! `floe status`: the deployment as the metadata engine sees it — the backends this
//! command uses, the registered nodes with their liveness, and every file system's
//! client sessions (mounts and nodes), matched to the node that runs them.
//!
//! Gathering ([`Status::gather`]) and rendering ([`render_text`], [`render_json`]) are
//! apart, so the rendering is tested on fixed data.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use floe_fs::store::StoreUrl;
use floe_fs::FsConfig;
use floe_meta::{FileSystemInfo, Meta, SessionInfo};
use floe_node::{NodeRegistry, NodeStatus};
use serde_json::{json, Value};

use crate::config::DataDir;

#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON (for scripts) instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &DataDir, args: StatusArgs) -> Result<()> {
    let meta = paths.meta()?;
    let backends = Backends {
        meta_kind: meta.backend_kind().to_string(),
        meta_location: paths.meta_description(),
        object_store: paths.store_description(),
    };
    let status = Status::gather(&meta, backends, FsConfig::default().session_ttl)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&render_json(&status))?);
    } else {
        print!("{}", render_text(&status));
    }
    Ok(())
}

/// What `floe status` reports.
pub struct Status {
    pub backends: Backends,
    pub nodes: Vec<NodeStatus>,
    pub file_systems: Vec<(FileSystemInfo, Vec<SessionInfo>)>,
    /// A file system session that missed heartbeats this long is stale (its client died).
    pub session_ttl: Duration,
    /// When the status was taken, Unix milliseconds.
    pub now_ms: u64,
}

/// The backends this command opened.
pub struct Backends {
    pub meta_kind: String,
    /// A path or a URL, its password masked.
    pub meta_location: String,
    pub object_store: String,
}

impl Status {
    pub fn gather(meta: &Meta, backends: Backends, session_ttl: Duration) -> Result<Status> {
        let nodes = NodeRegistry::list(meta)?;
        let mut sessions = meta.sessions(None)?;
        let file_systems = meta
            .list_fs()?
            .into_iter()
            .map(|fs| {
                let (mine, rest) = sessions.drain(..).partition(|s| s.fs == fs.id);
                sessions = rest;
                (fs, mine)
            })
            .collect();
        Ok(Status { backends, nodes, file_systems, session_ttl, now_ms: floe_lambda::time::now_millis() })
    }

    /// The node running a session: file system clients describe themselves as
    /// "<hostname> pid <pid>", as nodes record their host and process.
    fn node_of(&self, session: &SessionInfo) -> Option<&NodeStatus> {
        let (host, pid) = session.info.rsplit_once(" pid ")?;
        let pid: u32 = pid.trim().parse().ok()?;
        self.nodes.iter().find(|n| n.record.pid == pid && n.record.hostname == host.trim())
    }

    fn session_age(&self, session: &SessionInfo) -> Duration {
        Duration::from_millis(self.now_ms.saturating_sub(millis(session.heartbeat.0)))
    }

    fn session_live(&self, session: &SessionInfo) -> bool {
        self.session_age(session) <= self.session_ttl
    }

    fn sessions_of(&self, node: &NodeStatus) -> usize {
        let ours = |s: &&SessionInfo| self.node_of(s).is_some_and(|n| n.record.id == node.record.id);
        self.file_systems.iter().map(|(_, sessions)| sessions.iter().filter(ours).count()).sum()
    }
}

/// The tables a person reads.
pub fn render_text(status: &Status) -> String {
    let mut out = String::new();
    let b = &status.backends;
    out.push_str("Backends\n");
    out.push_str(&table(
        &[],
        &[
            vec!["metadata".into(), format!("{} {}", b.meta_kind, b.meta_location)],
            vec!["object store".into(), b.object_store.clone()],
        ],
    ));

    out.push_str("\nNodes\n");
    if status.nodes.is_empty() {
        out.push_str("  none registered: no `floe up` runs on this metadata engine\n");
    } else {
        let rows: Vec<Vec<String>> = status
            .nodes
            .iter()
            .map(|n| {
                let r = &n.record;
                vec![
                    r.id.clone(),
                    r.hostname.clone(),
                    r.pid.to_string(),
                    r.api_endpoint.clone(),
                    r.trigger_endpoint.clone(),
                    n.liveness.as_str().into(),
                    utc(r.started_at),
                    ago(n.beat_age),
                    status.sessions_of(n).to_string(),
                    r.version.clone(),
                ]
            })
            .collect();
        let header = ["ID", "HOST", "PID", "API", "TRIGGERS", "STATE", "SINCE", "LAST BEAT", "SESSIONS", "VERSION"];
        out.push_str(&table(&header, &rows));
        for n in &status.nodes {
            // Nodes that disagree on the object store write file contents where the
            // others cannot read them: worth a line of its own.
            if n.record.object_store != b.object_store {
                out.push_str(&format!(
                    "  note: node {} uses object store {:?}, not {:?}\n",
                    n.record.id, n.record.object_store, b.object_store
                ));
            }
        }
    }

    out.push_str("\nFile system sessions\n");
    if status.file_systems.is_empty() {
        out.push_str("  no file systems\n");
    }
    for (fs, sessions) in &status.file_systems {
        let live = sessions.iter().filter(|s| status.session_live(s)).count();
        if sessions.is_empty() {
            out.push_str(&format!("  {}: no sessions\n", fs.name));
            continue;
        }
        out.push_str(&format!("  {}: {} session{}, {live} live\n", fs.name, sessions.len(), plural(sessions.len())));
        // A node's sessions together, then the other clients (mounts), each in id order.
        let mut sorted: Vec<&SessionInfo> = sessions.iter().collect();
        sorted.sort_by_key(|s| (status.node_of(s).map(|n| n.record.id.clone()).is_none(), node_id(status, s), s.id));
        let rows: Vec<Vec<String>> = sorted
            .iter()
            .map(|s| {
                vec![
                    s.id.to_string(),
                    node_id(status, s).unwrap_or_else(|| "-".into()),
                    s.info.clone(),
                    utc(millis(s.started.0)),
                    ago(status.session_age(s)),
                    if status.session_live(s) { "live" } else { "stale" }.into(),
                ]
            })
            .collect();
        out.push_str(&indent(&table(&["SESSION", "NODE", "CLIENT", "STARTED", "LAST BEAT", "STATE"], &rows)));
    }
    out
}

/// The same, as one JSON document for scripts. Times are Unix milliseconds.
pub fn render_json(status: &Status) -> Value {
    let b = &status.backends;
    let nodes: Vec<Value> = status
        .nodes
        .iter()
        .map(|n| {
            let r = &n.record;
            json!({
                "id": r.id,
                "hostname": r.hostname,
                "pid": r.pid,
                "api_endpoint": r.api_endpoint,
                "trigger_endpoint": r.trigger_endpoint,
                "version": r.version,
                "meta_backend": r.meta_backend,
                "object_store": r.object_store,
                "state": n.liveness.as_str(),
                "started_at": r.started_at,
                "heartbeat_at": r.heartbeat_at,
                "heartbeat_age_ms": n.beat_age.as_millis() as u64,
                "sessions": status.sessions_of(n),
            })
        })
        .collect();
    let file_systems: Vec<Value> = status
        .file_systems
        .iter()
        .map(|(fs, sessions)| {
            let sessions: Vec<Value> = sessions
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id.0,
                        "client": s.info,
                        "node": node_id(status, s),
                        "started_at": millis(s.started.0),
                        "heartbeat_at": millis(s.heartbeat.0),
                        "heartbeat_age_ms": status.session_age(s).as_millis() as u64,
                        "state": if status.session_live(s) { "live" } else { "stale" },
                    })
                })
                .collect();
            json!({ "name": fs.name, "id": fs.id.0, "uuid": fs.uuid, "sessions": sessions })
        })
        .collect();
    json!({
        "backends": {
            "metadata": { "kind": b.meta_kind, "location": b.meta_location },
            "object_store": b.object_store,
        },
        "nodes": nodes,
        "file_systems": file_systems,
        "session_ttl_ms": status.session_ttl.as_millis() as u64,
    })
}

/// The object store a `FLOE_STORE`-style URL names (or the local directory), without
/// credentials (an S3 URL holds none: they come from the environment).
pub fn store_description(url: Option<&str>, local_root: &Path) -> String {
    match StoreUrl::parse(url, local_root) {
        Ok(StoreUrl::Local(dir)) => format!("local directory {}", dir.display()),
        Ok(StoreUrl::S3(s3)) => {
            let place = match &s3.prefix {
                Some(prefix) => format!("{}/{prefix}", s3.bucket),
                None => s3.bucket.clone(),
            };
            match &s3.endpoint {
                Some(endpoint) => format!("s3 bucket {place} at {endpoint}"),
                None => format!("s3 bucket {place} on AWS in {}", s3.region),
            }
        }
        // Not the error: it quotes the URL, and a wrong one may hold a secret.
        Err(_) => "unusable: the store URL does not parse (commands that use it say why)".into(),
    }
}

fn node_id(status: &Status, session: &SessionInfo) -> Option<String> {
    status.node_of(session).map(|n| n.record.id.clone())
}

/// Rows with aligned columns, two spaces of indent and between columns; the last
/// column is not padded.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut all: Vec<Vec<String>> = Vec::new();
    if !header.is_empty() {
        all.push(header.iter().map(|h| h.to_string()).collect());
    }
    all.extend(rows.iter().cloned());
    let columns = all.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| all.iter().filter_map(|r| r.get(c)).map(|v| v.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &all {
        let mut line = String::from(" ");
        for (c, value) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(value);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - value.chars().count() + 1));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// "5s ago", "3m ago", "2h ago", "4d ago".
fn ago(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

/// `2026-11-23 14:05:09Z`.
fn utc(ms: u64) -> String {
    let t = floe_lambda::time::Utc::from_millis(ms);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// Nanoseconds since the epoch (as the metadata engine keeps times) to milliseconds.
fn millis(nanos: i64) -> u64 {
    (nanos.max(0) / 1_000_000) as u64
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_meta::{FileSystemId, SessionId, TimeSpec};
    use floe_node::NodeRecord;

    const NOW: u64 = 1_800_000_000_000;

    fn node(id: &str, host: &str, pid: u32, beat_ms_ago: u64) -> NodeStatus {
        NodeStatus::at(
            NodeRecord {
                id: id.into(),
                hostname: host.into(),
                pid,
                api_endpoint: format!("http://{host}:9780"),
                trigger_endpoint: format!("http://{host}:9781"),
                version: "0.1.0".into(),
                meta_backend: "postgres".into(),
                object_store: "s3 bucket floe at http://s3:9000".into(),
                started_at: NOW - 3_600_000,
                heartbeat_at: NOW - beat_ms_ago,
                beat_interval_ms: 5000,
            },
            NOW,
        )
    }

    fn session(id: u64, fs: u64, info: &str, beat_ms_ago: u64) -> SessionInfo {
        SessionInfo {
            id: SessionId(id),
            fs: FileSystemId(fs),
            info: info.into(),
            started: TimeSpec(((NOW - 600_000) * 1_000_000) as i64),
            heartbeat: TimeSpec(((NOW - beat_ms_ago) * 1_000_000) as i64),
        }
    }

    fn fs(id: u64, name: &str) -> FileSystemInfo {
        FileSystemInfo {
            id: FileSystemId(id),
            name: name.into(),
            uuid: format!("uuid-{name}"),
            created: TimeSpec(0),
            used_bytes: 0,
            used_inodes: 1,
        }
    }

    fn status(nodes: Vec<NodeStatus>, file_systems: Vec<(FileSystemInfo, Vec<SessionInfo>)>) -> Status {
        Status {
            backends: Backends {
                meta_kind: "postgres".into(),
                meta_location: floe_meta::redact_url("postgres://floe:secret@db:5432/floe"),
                object_store: "s3 bucket floe at http://s3:9000".into(),
            },
            nodes,
            file_systems,
            session_ttl: Duration::from_secs(60),
            now_ms: NOW,
        }
    }

    fn deployment() -> Status {
        status(
            vec![node("web1-0000abcd", "web1", 100, 2000), node("web2-0000ef01", "web2", 200, 40_000)],
            vec![
                (
                    fs(1, "data"),
                    vec![
                        session(7, 1, "laptop pid 55", 120_000),
                        session(3, 1, "web2 pid 200", 40_000),
                        session(5, 1, "web1 pid 100", 1000),
                    ],
                ),
                (fs(2, "empty"), vec![]),
            ],
        )
    }

    #[test]
    fn text_has_aligned_tables() {
        let text = render_text(&deployment());
        let expected = "\
Backends
  metadata      postgres postgres://floe:***@db:5432/floe
  object store  s3 bucket floe at http://s3:9000

Nodes
  ID             HOST  PID  API               TRIGGERS          STATE  SINCE                 LAST BEAT  SESSIONS  VERSION
  web1-0000abcd  web1  100  http://web1:9780  http://web1:9781  up     2027-01-15 07:00:00Z  2s ago     1         0.1.0
  web2-0000ef01  web2  200  http://web2:9780  http://web2:9781  down   2027-01-15 07:00:00Z  40s ago    1         0.1.0

File system sessions
  data: 3 sessions, 2 live
    SESSION  NODE           CLIENT         STARTED               LAST BEAT  STATE
    5        web1-0000abcd  web1 pid 100   2027-01-15 07:50:00Z  1s ago     live
    3        web2-0000ef01  web2 pid 200   2027-01-15 07:50:00Z  40s ago    live
    7        -              laptop pid 55  2027-01-15 07:50:00Z  2m ago     stale
  empty: no sessions
";
        assert_eq!(text, expected, "got:\n{text}");
        assert!(!text.contains("secret"));
    }

    #[test]
    fn text_without_nodes_says_so() {
        let mut s = status(vec![], vec![]);
        s.backends = Backends {
            meta_kind: "sqlite".into(),
            meta_location: "/var/lib/floe/meta.db".into(),
            object_store: store_description(None, Path::new("/var/lib/floe/objects")),
        };
        let text = render_text(&s);
        assert!(text.contains("  metadata      sqlite /var/lib/floe/meta.db\n"), "{text}");
        assert!(text.contains("  object store  local directory /var/lib/floe/objects\n"), "{text}");
        assert!(text.contains("Nodes\n  none registered: no `floe up` runs on this metadata engine\n"), "{text}");
        assert!(text.contains("File system sessions\n  no file systems\n"), "{text}");
    }

    #[test]
    fn a_node_on_another_object_store_is_pointed_out() {
        let mut other = node("odd-1", "odd", 1, 0);
        other.record.object_store = "local directory /srv/objects".into();
        let text = render_text(&status(vec![other], vec![]));
        assert!(
            text.contains(
                "  note: node odd-1 uses object store \"local directory /srv/objects\", not \"s3 bucket floe at http://s3:9000\"\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_carries_everything() {
        let v = render_json(&deployment());
        assert_eq!(v["backends"]["metadata"]["kind"], "postgres");
        assert_eq!(v["backends"]["metadata"]["location"], "postgres://floe:***@db:5432/floe");
        assert_eq!(v["nodes"][0]["id"], "web1-0000abcd");
        assert_eq!(v["nodes"][0]["state"], "up");
        assert_eq!(v["nodes"][1]["state"], "down");
        assert_eq!(v["nodes"][1]["heartbeat_age_ms"], 40_000);
        assert_eq!(v["nodes"][0]["sessions"], 1);
        let sessions = &v["file_systems"][0]["sessions"];
        assert_eq!(sessions[0]["id"], 7);
        assert_eq!(sessions[0]["node"], Value::Null);
        assert_eq!(sessions[0]["state"], "stale");
        assert_eq!(sessions[2]["node"], "web1-0000abcd");
        assert_eq!(sessions[2]["heartbeat_age_ms"], 1000);
        assert_eq!(v["file_systems"][1]["sessions"].as_array().map(Vec::len), Some(0));
        assert_eq!(v["session_ttl_ms"], 60_000);
    }

    #[test]
    fn sessions_match_nodes_by_host_and_pid() {
        let s = deployment();
        let of = |info: &str| s.node_of(&session(1, 1, info, 0)).map(|n| n.record.id.clone());
        assert_eq!(of("web1 pid 100").as_deref(), Some("web1-0000abcd"));
        assert_eq!(of("web1 pid 101"), None, "another process on the node's host");
        assert_eq!(of("web3 pid 100"), None, "the same pid on another host");
        assert_eq!(of("garbage"), None);
    }

    #[test]
    fn store_descriptions_hold_no_secrets() {
        let root = Path::new("/d/objects");
        assert_eq!(store_description(Some("file:///srv/o"), root), "local directory /srv/o");
        assert_eq!(
            store_description(Some("s3://b/p?endpoint=http://s3:9000&path_style=true"), root),
            "s3 bucket b/p at http://s3:9000"
        );
        assert_eq!(store_description(Some("s3://b?region=eu-west-3"), root), "s3 bucket b on AWS in eu-west-3");
        let bad = store_description(Some("s3://k:secret@b"), root);
        assert!(bad.starts_with("unusable") && !bad.contains("secret"), "{bad}");
    }

    #[test]
    fn ages_are_short() {
        assert_eq!(ago(Duration::from_millis(999)), "0s ago");
        assert_eq!(ago(Duration::from_secs(59)), "59s ago");
        assert_eq!(ago(Duration::from_secs(60)), "1m ago");
        assert_eq!(ago(Duration::from_secs(7200)), "2h ago");
        assert_eq!(ago(Duration::from_secs(200_000)), "2d ago");
    }
}
