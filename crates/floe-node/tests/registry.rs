//! The node registry on real metadata engines: SQLite always, PostgreSQL when
//! `FLOE_TEST_POSTGRES` names a server (`eval "$(scripts/postgres)"`; each test in a
//! schema of its own). Nodes registered on one engine list each other, a node that
//! stops beating goes down after its missed beats, a clean stop removes the record,
//! and a node's id survives its restarts.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use floe_meta::{open_url, Meta, SqliteStore};
use floe_node::registry::{NodeRegistry, KIND};
use floe_node::{Liveness, NodeAnnouncement, NodeStatus};

/// Keeps an engine's database alive for the test: a directory or a schema.
enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema { server: String, name: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Schema { server, name } = self {
            let _ = admin(server, &format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
        }
    }
}

/// Runs SQL on a connection of its own, on a thread of its own: the synchronous
/// client cannot run inside the tests' Tokio runtime.
fn admin(server: &str, sql: &str) -> Result<(), String> {
    let (server, sql) = (server.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&server, postgres::NoTls).map_err(|e| e.to_string())?;
        client.batch_execute(&sql).map_err(|e| format!("{sql}: {e}"))
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_string())?
}

fn sqlite() -> (Guard, Meta) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = Meta::new(SqliteStore::open(&dir.path().join("meta.db")).expect("sqlite"));
    (Guard::Dir(dir), meta)
}

/// A fresh PostgreSQL engine in a schema of its own, or `None` (after saying so) when
/// there is no server; under CI a missing server fails the test.
fn postgres() -> Option<(Guard, Meta)> {
    let server = match std::env::var("FLOE_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("FLOE_TEST_POSTGRES is not set, and CI must run the PostgreSQL tests (eval \"$(scripts/postgres)\")")
        }
        _ => {
            eprintln!("skipped: FLOE_TEST_POSTGRES is not set (scripts/postgres starts one)");
            return None;
        }
    };
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("floe_registry_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    admin(&server, &format!("CREATE SCHEMA {name}")).unwrap_or_else(|e| panic!("FLOE_TEST_POSTGRES: {e}"));
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-csearch_path%3D{name}");
    let guard = Guard::Schema { server, name };
    let meta = open_url(&url).unwrap_or_else(|e| panic!("open the test schema: {e}"));
    Some((guard, meta))
}

fn announce(id: &str, beat_interval: Duration) -> NodeAnnouncement {
    NodeAnnouncement {
        id: id.to_string(),
        api_endpoint: format!("http://{id}:9780"),
        trigger_endpoint: format!("http://{id}:9781"),
        object_store: "local directory /var/lib/floe/objects".into(),
        beat_interval,
    }
}

fn find(meta: &Meta, id: &str) -> Option<NodeStatus> {
    NodeRegistry::list(meta).expect("list nodes").into_iter().find(|n| n.record.id == id)
}

/// Polls `condition` until it holds, failing after a deadline far beyond what it needs.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn two_nodes_list_each_other(meta: Meta) {
    let a = NodeRegistry::register(meta.clone(), announce("node-a", Duration::from_secs(5))).await.expect("register a");
    let b = NodeRegistry::register(meta.clone(), announce("node-b", Duration::from_secs(5))).await.expect("register b");
    assert_eq!((a.id(), b.id()), ("node-a", "node-b"));

    let nodes = NodeRegistry::list(&meta).expect("list");
    let ids: Vec<&str> = nodes.iter().map(|n| n.record.id.as_str()).collect();
    assert_eq!(ids, ["node-a", "node-b"], "both nodes, in id order");
    let a_status = &nodes[0];
    assert_eq!(a_status.liveness, Liveness::Up, "{a_status:?}");
    let r = &a_status.record;
    assert_eq!((r.api_endpoint.as_str(), r.trigger_endpoint.as_str()), ("http://node-a:9780", "http://node-a:9781"));
    assert_eq!(r.pid, std::process::id());
    assert_eq!(r.hostname, floe_node::registry::hostname());
    assert_eq!(r.meta_backend, meta.backend_kind());
    assert_eq!(r.object_store, "local directory /var/lib/floe/objects");
    assert_eq!(r.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(r.beat_interval_ms, 5000);
    assert!(r.started_at > 0 && r.heartbeat_at >= r.started_at, "{r:?}");

    a.deregister().await.expect("deregister a");
    b.deregister().await.expect("deregister b");
    assert!(NodeRegistry::list(&meta).expect("list").is_empty());
}

async fn stopped_beat_goes_down(meta: Meta) {
    let interval = Duration::from_millis(50);
    let node = NodeRegistry::register(meta.clone(), announce("beating", interval)).await.expect("register");
    let first = find(&meta, "beating").expect("registered").record;
    until("the node beats again", || {
        find(&meta, "beating").is_some_and(|n| n.record.heartbeat_at > first.heartbeat_at)
    })
    .await;
    until("the node is up", || find(&meta, "beating").is_some_and(|n| n.liveness == Liveness::Up)).await;

    // Dropping the registry stops the beats as a crash would, leaving the record.
    drop(node);
    until("the node is down", || find(&meta, "beating").is_some_and(|n| n.liveness == Liveness::Down)).await;
    let down = find(&meta, "beating").expect("a crashed node stays listed");
    assert!(down.beat_age > interval * 3, "{down:?}");
    assert_eq!(down.record.started_at, first.started_at);
}

async fn deregister_removes_the_node(meta: Meta) {
    let interval = Duration::from_millis(20);
    let node = NodeRegistry::register(meta.clone(), announce("leaving", interval)).await.expect("register");
    let first = find(&meta, "leaving").expect("registered").record;
    until("the node beats again", || {
        find(&meta, "leaving").is_some_and(|n| n.record.heartbeat_at > first.heartbeat_at)
    })
    .await;
    node.deregister().await.expect("deregister");
    assert_eq!(find(&meta, "leaving"), None, "a node that stopped cleanly is not listed");
    // No beat left in flight writes the record back.
    tokio::time::sleep(interval * 5).await;
    assert_eq!(meta.record(KIND, "leaving").expect("record"), None);
}

async fn restart_keeps_the_id(meta: Meta, dir: &Path) {
    let node_dir = dir.join("node");
    let id = NodeRegistry::node_id_in(&node_dir).expect("make a node id");
    assert_eq!(std::fs::read_to_string(node_dir.join("node-id")).expect("node-id file").trim(), id);
    assert_eq!(NodeRegistry::node_id_in(&node_dir).expect("read the node id"), id, "the id is kept");
    let other = NodeRegistry::node_id_in(&dir.join("other")).expect("another node's id");
    assert_ne!(other, id, "another directory, another node");

    let first = NodeRegistry::register(meta.clone(), announce(&id, Duration::from_secs(5))).await.expect("register");
    let started = find(&meta, &id).expect("registered").record.started_at;
    drop(first); // A crash: the record stays.
    until("the clock moves", || floe_lambda::time::now_millis() > started).await;
    let again = NodeRegistry::node_id_in(&node_dir).expect("read the node id");
    let second = NodeRegistry::register(meta.clone(), announce(&again, Duration::from_secs(5))).await.expect("rejoin");
    let nodes = NodeRegistry::list(&meta).expect("list");
    assert_eq!(nodes.len(), 1, "the restarted node replaced its record: {nodes:?}");
    assert_eq!((nodes[0].record.id.as_str(), nodes[0].liveness), (id.as_str(), Liveness::Up));
    assert!(nodes[0].record.started_at > started, "the record is the new run's");
    second.deregister().await.expect("deregister");

    std::fs::write(node_dir.join("node-id"), "not an id\n").expect("corrupt the id");
    let e = NodeRegistry::node_id_in(&node_dir).expect_err("a corrupt id is refused");
    assert!(e.to_string().contains("node-id") && !e.to_string().contains('\n'), "{e}");
}

macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (_guard, meta) = super::sqlite();
                    super::$check(meta).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some((_guard, meta)) = super::postgres() else { return };
                    super::$check(meta).await;
                }
            )*
        }
    };
}

on_both_backends!(two_nodes_list_each_other, stopped_beat_goes_down, deregister_removes_the_node);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_id_sqlite() {
    let (_guard, meta) = sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    restart_keeps_the_id(meta, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_id_postgres() {
    let Some((_guard, meta)) = postgres() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    restart_keeps_the_id(meta, dir.path()).await;
}

#[tokio::test]
async fn a_zero_beat_interval_is_refused() {
    let (_guard, meta) = sqlite();
    let e = NodeRegistry::register(meta, announce("n", Duration::ZERO)).await.err().expect("refused");
    assert_eq!(e.to_string(), "node registry: the beat interval must be at least 1 ms");
}
