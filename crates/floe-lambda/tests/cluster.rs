//! Concurrency limits across nodes: several functions services ("nodes", each with
//! its own node directory and node id) on one metadata engine and one object
//! store, as `floe up` runs them on several machines. Invocations are held inside
//! their handler until the test creates a file in a directory the function mounts,
//! so "in flight" is something the test controls, never a sleep.
//!
//! The PostgreSQL variant runs with `FLOE_TEST_POSTGRES` (scripts/postgres), is
//! skipped (saying so) without it, and fails under `CI=true` without it.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{code, package, settings, skip_reason};
use floe_lambda::{Functions, InvokeRequest, LambdaError, MountConfig, NodeConfig};
use floe_meta::{Meta, Record, SqliteStore};
use object_store::ObjectStore;

/// A `provided` runtime whose invocations with `{"hold":"<key>"}` wait until
/// `/mnt/gate/<key>` exists; every invocation answers `"done"`.
const GATED_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | cut -d' ' -f2 | tr -d '\r\n')
  key=$(printf '%s' "$event" | sed -n 's/.*"hold":"\([a-z0-9]*\)".*/\1/p')
  if [ -n "$key" ]; then
    while [ ! -e "/mnt/gate/$key" ]; do sleep 0.02; done
  fi
  curl -sS -o /dev/null -X POST "$api/invocation/$id/response" -d '"done"'
  rm -f "$headers"
done
"#;

const RESERVED: &str = "ReservedFunctionConcurrentInvocationLimitExceeded";
const ACCOUNT: &str = "ConcurrentInvocationLimitExceeded";

/// Nodes sharing one metadata engine (each its own connection to it), one object
/// store, and a gate directory their functions mount.
struct Cluster {
    nodes: Vec<Functions>,
    metas: Vec<Meta>,
    gate: tempfile::TempDir,
    code: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `metas[i]` is node i's connection to the shared engine.
    async fn new(metas: Vec<Meta>, edit: impl Fn(usize, &mut NodeConfig)) -> Cluster {
        let dir = tempfile::tempdir().expect("data dir");
        std::fs::create_dir_all(dir.path().join("objects")).unwrap();
        let objects: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path().join("objects")).unwrap());
        let mut nodes = Vec::new();
        for (i, meta) in metas.iter().enumerate() {
            let mut config = NodeConfig::new(dir.path().join(format!("node-{i}")));
            config.invoker.reap_interval = Duration::from_millis(100);
            config.invoker.node_id = format!("node-{i}");
            config.invoker.lease_ttl = Duration::from_secs(2);
            config.invoker.lease_interval = Duration::from_millis(200);
            config.prepared_sandboxes = 1;
            edit(i, &mut config);
            nodes.push(Functions::open(meta.clone(), objects.clone(), config).await.expect("open functions"));
        }
        let gate = tempfile::tempdir().expect("gate dir");
        std::fs::set_permissions(gate.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let code = code(&[("bootstrap", GATED_BOOTSTRAP, true)]);
        Cluster { nodes, metas, gate, code, _dir: dir }
    }

    /// Creates a gated function (through node 0).
    async fn create(&self, name: &str) {
        let mut s = settings("provided", "x");
        s.timeout_s = Some(120);
        s.mounts = Some(vec![MountConfig {
            source: self.gate.path().display().to_string(),
            local_mount_path: "/mnt/gate".into(),
        }]);
        self.nodes[0].create_function(name, s, package(self.code.path())).await.expect("create function");
    }

    /// Starts an invocation on `node` held until [`Cluster::release`] of its key, and
    /// waits until the node counts it busy.
    async fn hold(&self, node: usize, name: &'static str) -> Held {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let key = format!("k{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let functions = self.nodes[node].clone();
        let busy_before = functions.pool_stats(name).busy;
        let payload = format!(r#"{{"hold":"{key}"}}"#);
        let task = tokio::spawn(async move { functions.invoke(name, InvokeRequest::sync(payload)).await });
        let functions = &self.nodes[node];
        wait_for(&format!("an invocation of {name} busy on node {node}"), || {
            assert!(!task.is_finished(), "the held invocation of {name} on node {node} ended early");
            functions.pool_stats(name).busy > busy_before
        })
        .await;
        Held { key, task }
    }

    /// Lets a held invocation finish and checks that it ran to the end.
    async fn release(&self, held: Held) {
        std::fs::write(self.gate.path().join(&held.key), b"").unwrap();
        let response = held.task.await.expect("task").expect("held invocation");
        assert_eq!(&response.payload[..], b"\"done\"");
    }

    /// An invocation that returns at once when admitted.
    async fn quick(&self, node: usize, name: &str) -> Result<(), LambdaError> {
        let response = self.nodes[node].invoke(name, InvokeRequest::sync("{}")).await?;
        assert_eq!(&response.payload[..], b"\"done\"");
        Ok(())
    }

    async fn assert_throttled(&self, node: usize, name: &str, reason: &str) {
        match self.quick(node, name).await {
            Err(e) => {
                assert_eq!(e.kind.code(), "TooManyRequestsException", "{e}");
                assert_eq!(e.reason, Some(reason), "{e}");
            }
            Ok(()) => panic!("an invocation of {name} on node {node} was admitted past the limit"),
        }
    }

    /// Invokes on `node` until admitted (another node gives slots back meanwhile).
    async fn admitted_eventually(&self, node: usize, name: &str, reason: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.quick(node, name).await {
                Ok(()) => return,
                Err(e) if e.reason == Some(reason) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("node {node} never admitted an invocation of {name}: {e}"),
            }
        }
    }

    /// The slots each node's lease of a group holds, by node id.
    fn leases(&self, group: &str) -> Vec<(String, u64, u64)> {
        self.metas[0]
            .records(&format!("concurrency-lease/{group}"))
            .unwrap()
            .into_iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                (r.name, v["count"].as_u64().unwrap(), v["expires_ms"].as_u64().unwrap())
            })
            .collect()
    }
}

struct Held {
    key: String,
    task: tokio::task::JoinHandle<Result<floe_lambda::InvokeResponse, LambdaError>>,
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sqlite_metas(dir: &Path, n: usize) -> Vec<Meta> {
    (0..n).map(|_| Meta::new(SqliteStore::open(&dir.join("meta.db")).expect("sqlite"))).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Reserved concurrency 2, two nodes: one in flight on each, a third on either is
/// throttled; when one ends, the other node gets the slot.
async fn reserved_holds_across_nodes(metas: Vec<Meta>) {
    let c = Cluster::new(metas, |_, _| {}).await;
    c.create("held").await;
    // Reserved through node 1: node 0 learns it from the function's record.
    c.nodes[1].put_function_concurrency("held", 2).unwrap();
    // A burst on both nodes at once: two nodes never both take the last slot.
    let burst: Vec<_> = (0..6)
        .map(|i| {
            let functions = c.nodes[i % 2].clone();
            let payload = format!(r#"{{"hold":"burst{i}"}}"#);
            tokio::spawn(async move { functions.invoke("held", InvokeRequest::sync(payload)).await })
        })
        .collect();
    let busy = || c.nodes.iter().map(|n| n.pool_stats("held").busy).sum::<u32>();
    wait_for("the burst to be admitted or throttled", || {
        burst.iter().filter(|t| t.is_finished()).count() + busy() as usize == burst.len()
    })
    .await;
    assert_eq!(busy(), 2);
    for i in 0..burst.len() {
        std::fs::write(c.gate.path().join(format!("burst{i}")), b"").unwrap();
    }
    let mut admitted = 0;
    for task in burst {
        match task.await.expect("task") {
            Ok(response) => {
                assert_eq!(&response.payload[..], b"\"done\"");
                admitted += 1;
            }
            Err(e) => assert_eq!(e.reason, Some(RESERVED), "{e}"),
        }
    }
    assert_eq!(admitted, 2);
    wait_for("the slots to go back", || c.leases("fn:held").is_empty()).await;

    let first = c.hold(0, "held").await;
    let second = c.hold(1, "held").await;
    c.assert_throttled(0, "held", RESERVED).await;
    c.assert_throttled(1, "held", RESERVED).await;
    // Node 0 gives its slot back within a couple of lease rounds; node 1 takes it.
    c.release(first).await;
    c.admitted_eventually(1, "held", RESERVED).await;
    let third = c.hold(1, "held").await;
    assert_eq!(c.nodes[1].pool_stats("held").busy, 2);
    c.assert_throttled(0, "held", RESERVED).await;
    c.assert_throttled(1, "held", RESERVED).await;
    c.release(second).await;
    c.release(third).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_concurrency_holds_across_nodes() {
    if skip_reason().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    reserved_holds_across_nodes(sqlite_metas(dir.path(), 2)).await;
}

/// The unreserved pool is the account's limit minus every reservation, wherever it
/// was made, shared by every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreserved_pool_is_shared_by_the_nodes() {
    if skip_reason().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::new(sqlite_metas(dir.path(), 2), |_, config| config.invoker.account_concurrency = 4).await;
    c.create("open").await;
    c.create("other").await;
    c.nodes[0].put_function_concurrency("other", 2).unwrap();
    // The account floor counts every function's reservation, not only the node's.
    let e = c.nodes[1].put_function_concurrency("open", 3).unwrap_err();
    assert_eq!(e.kind.code(), "InvalidParameterValueException", "{e}");
    assert_eq!(c.nodes[1].get_function_concurrency("open").unwrap(), None);
    // 4 - 2 reserved = 2 unreserved slots for the cluster.
    let a = c.hold(0, "open").await;
    let b = c.hold(1, "open").await;
    c.assert_throttled(0, "open", ACCOUNT).await;
    c.assert_throttled(1, "open", ACCOUNT).await;
    // The reservation goes (through node 0): node 1 may use all 4.
    c.nodes[0].delete_function_concurrency("other").unwrap();
    let d = c.hold(1, "open").await;
    let other = c.hold(1, "other").await;
    c.assert_throttled(0, "open", ACCOUNT).await;
    c.assert_throttled(1, "other", ACCOUNT).await;
    let total: u64 = c.leases("unreserved").iter().map(|(_, n, _)| n).sum();
    assert_eq!(total, 4, "{:?}", c.leases("unreserved"));
    // Node 1 learns of the deletion at its next lease round.
    wait_for("node 1 to see 4 unreserved", || c.nodes[1].invoker().unreserved_concurrency() == 4).await;
    for held in [a, b, d, other] {
        c.release(held).await;
    }
}

/// A lease stops counting when it expires: a node that died without cleanup gives
/// its slots back after the lease ttl; a node that shuts down, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_leases_stop_counting() {
    if skip_reason().is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Node 0 never renews (as if killed right after taking its slots); the others
    // keep expired leases around for long enough to look at.
    let c = Cluster::new(sqlite_metas(dir.path(), 3), |i, config| {
        if i == 0 {
            config.invoker.lease_interval = Duration::from_secs(3600);
        } else {
            config.invoker.lease_ttl = Duration::from_secs(60);
        }
    })
    .await;
    c.create("held").await;
    c.nodes[1].put_function_concurrency("held", 2).unwrap();

    // A lease of another node, unexpired, counts; the same lease expired does not.
    let ghost = |expires_ms: u64| {
        let body = format!(r#"{{"count":2,"expires_ms":{expires_ms}}}"#);
        c.metas[0]
            .write_txn(|t| {
                let revision = t.get_record("concurrency-lease/fn:held", "ghost")?.map_or(1, |r| r.revision + 1);
                t.put_record(
                    "concurrency-lease/fn:held",
                    &Record { name: "ghost".into(), body: body.clone(), revision },
                )
            })
            .unwrap();
    };
    ghost(now_ms() + 3_600_000);
    c.assert_throttled(1, "held", RESERVED).await;
    ghost(now_ms() - 1);
    c.quick(1, "held").await.unwrap();
    wait_for("node 1 to give its slot back", || c.leases("fn:held").iter().all(|(n, _, _)| n != "node-1")).await;

    // Node 0 takes both slots, then dies: its tasks go, its lease stays behind.
    let first = c.hold(0, "held").await;
    let second = c.hold(0, "held").await;
    first.task.abort();
    second.task.abort();
    let Cluster { mut nodes, metas, gate, code, _dir } = c;
    drop(nodes.remove(0));
    let c = Cluster { nodes, metas, gate, code, _dir };
    let (_, count, _) = c.leases("fn:held").into_iter().find(|(n, _, _)| n == "node-0").expect("node 0's lease");
    assert_eq!(count, 2);
    // Now node index 0 is node-1, index 1 is node-2.
    c.admitted_eventually(0, "held", RESERVED).await;
    let expired = c.leases("fn:held").into_iter().all(|(n, _, expires)| n != "node-0" || expires <= now_ms());
    assert!(expired, "slots of a live lease were taken: {:?}", c.leases("fn:held"));

    // A node that shuts down gives its slots back at once.
    wait_for("node 1 to give its slot back", || c.leases("fn:held").iter().all(|(n, _, _)| n != "node-1")).await;
    let held = c.hold(1, "held").await;
    let on_two = c.hold(1, "held").await;
    assert!(c.leases("fn:held").iter().any(|(n, count, _)| n == "node-2" && *count == 2));
    c.assert_throttled(0, "held", RESERVED).await;
    c.nodes[1].shutdown();
    assert!(c.leases("fn:held").iter().all(|(n, _, _)| n != "node-2"), "{:?}", c.leases("fn:held"));
    c.quick(0, "held").await.unwrap();
    std::fs::write(c.gate.path().join(&held.key), b"").unwrap();
    std::fs::write(c.gate.path().join(&on_two.key), b"").unwrap();
    let _ = held.task.await;
    let _ = on_two.task.await;
}

/// The reserved test on PostgreSQL: serializable transactions from two nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_concurrency_holds_across_nodes_on_postgres() {
    if skip_reason().is_some() {
        return;
    }
    let Some(schema) = pg::Schema::new() else { return };
    let metas = (0..2)
        .map(|_| floe_meta::open_url(&schema.url()).unwrap_or_else(|e| panic!("open {}: {e}", schema.url())))
        .collect::<Vec<_>>();
    assert_eq!(metas[0].backend_kind(), "postgres");
    reserved_holds_across_nodes(metas).await;
}

mod pg {
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn server_url() -> Option<String> {
        match std::env::var("FLOE_TEST_POSTGRES") {
            Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("FLOE_TEST_POSTGRES is not set, and CI must run the PostgreSQL tests (eval \"$(scripts/postgres)\")")
            }
            _ => {
                eprintln!("skipped: FLOE_TEST_POSTGRES is not set (scripts/postgres starts one)");
                None
            }
        }
    }

    /// A schema of its own for one test, dropped at the end.
    pub struct Schema {
        server: String,
        name: String,
    }

    impl Schema {
        pub fn new() -> Option<Schema> {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let server = server_url()?;
            let name = format!("floe_lambda_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            admin(&server, &format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
                .unwrap_or_else(|e| panic!("create schema {name}: {e}"));
            Some(Schema { server, name })
        }

        pub fn url(&self) -> String {
            let sep = if self.server.contains('?') { '&' } else { '?' };
            format!("{}{sep}options=-csearch_path%3D{}", self.server, self.name)
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let _ = admin(&self.server, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }

    /// Runs SQL on a connection of its own, on a thread of its own (the
    /// synchronous client refuses to run inside the tests' runtime).
    fn admin(server: &str, sql: &str) -> Result<(), postgres::Error> {
        std::thread::scope(|s| {
            s.spawn(|| postgres::Client::connect(server, postgres::NoTls)?.batch_execute(sql))
                .join()
                .expect("admin thread")
        })
    }
}
