//! A functions service on a temporary data directory, as a node runs it: real
//! SQLite, real local object storage, real sandboxes. Without root, tests say why
//! they are skipped (and fail under CI=true, where they must run).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use floe_lambda::code::Package;
use floe_lambda::{Functions, InvokeRequest, InvokeResponse, NodeConfig, Settings};
use floe_meta::{Meta, SqliteStore};

pub struct Node {
    pub functions: Functions,
    pub dir: tempfile::TempDir,
}

pub fn skip_reason() -> Option<String> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let reason = "functions need root for their sandboxes".to_string();
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {reason}");
    }
    eprintln!("skipped: {reason}");
    Some(reason)
}

pub async fn node_with(edit: impl FnOnce(&mut NodeConfig)) -> Node {
    let dir = tempfile::tempdir().expect("data dir");
    let meta = Meta::new(SqliteStore::open(&dir.path().join("meta.db")).expect("sqlite"));
    std::fs::create_dir_all(dir.path().join("objects")).unwrap();
    let objects = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path().join("objects")).unwrap());
    let mut config = NodeConfig::new(dir.path().join("node"));
    config.invoker.reap_interval = Duration::from_millis(100);
    edit(&mut config);
    let functions = Functions::open(meta, objects, config).await.expect("open functions");
    Node { functions, dir }
}

pub async fn node() -> Node {
    node_with(|_| {}).await
}

/// A node and the code of a function running [`SHELL_BOOTSTRAP`].
pub async fn shell_node(edit: impl FnOnce(&mut NodeConfig)) -> (Node, tempfile::TempDir) {
    let node = node_with(edit).await;
    let code = code(&[("bootstrap", SHELL_BOOTSTRAP, true)]);
    (node, code)
}

pub fn settings(runtime: &str, handler: &str) -> Settings {
    Settings { runtime: Some(runtime.into()), handler: Some(handler.into()), ..Settings::default() }
}

/// A code directory with the given files (path, content, executable).
pub fn code(files: &[(&str, &str, bool)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("code dir");
    for (path, content, exec) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        if *exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir
}

pub fn package(dir: &Path) -> Package {
    Package::from_dir(dir, &Default::default()).expect("package")
}

impl Node {
    pub async fn create(&self, name: &str, settings: Settings, code: &Path) {
        self.functions.create_function(name, settings, package(code)).await.expect("create function");
    }

    pub async fn invoke(&self, name: &str, payload: &str) -> InvokeResponse {
        self.functions.invoke(name, InvokeRequest::sync(payload.to_string())).await.expect("invoke")
    }

    pub async fn invoke_tail(&self, name: &str, payload: &str) -> InvokeResponse {
        let mut request = InvokeRequest::sync(payload.to_string());
        request.tail = true;
        self.functions.invoke(name, request).await.expect("invoke")
    }
}

pub fn json(response: &InvokeResponse) -> serde_json::Value {
    serde_json::from_slice(&response.payload)
        .unwrap_or_else(|e| panic!("payload {:?} is not JSON: {e}", String::from_utf8_lossy(&response.payload)))
}

pub fn tail(response: &InvokeResponse) -> String {
    use base64::Engine;
    let raw = response.log_result.as_deref().expect("a log tail");
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(raw).unwrap()).unwrap()
}

/// A `provided` runtime in bash and curl, the way Lambda's custom runtime tutorial
/// writes one: echoes the event back.
pub const SHELL_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
echo "init ${_HANDLER}"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | cut -d' ' -f2 | tr -d '\r\n')
  echo "handling $id"
  if [ -d /mnt/out ]; then echo "$id $event" >> /mnt/out/seen; fi
  case "$event" in
    *'"fail"'*) curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Unhandled' "$api/invocation/$id/error" -d '{"errorMessage":"failed","errorType":"ShellError"}' ;;
    *'"exit"'*) exit 7 ;;
    *'"sleep"'*) sleep 30 ;;
    *'"oom"'*) /usr/bin/python3 -S -c 'b = bytearray(400 << 20)' || true; curl -sS -o /dev/null -X POST "$api/invocation/$id/response" -d '"survived"' ;;
    *'"forkbomb"'*) bomb() { bomb | bomb & }; bomb; sleep 5 ;;
    *'"fill"'*) n=$( (dd if=/dev/zero of=/tmp/fill bs=1M count=2000 2>&1 || true) | grep -c 'No space'); curl -sS -o /dev/null -X POST "$api/invocation/$id/response" -d "{\"enospc\":$n,\"size\":$(stat -c %s /tmp/fill)}" ;;
    *'"nap"'*) sleep 1; curl -sS -o /dev/null -X POST "$api/invocation/$id/response" -d '"napped"' ;;
    *'"big"'*) head -c 7000000 /dev/zero | tr '\0' 'a' | sed 's/^/"/; s/$/"/' > /tmp/big; curl -sS -o /dev/null -X POST "$api/invocation/$id/response" --data-binary @/tmp/big ;;
    *) curl -sS -o /dev/null -X POST "$api/invocation/$id/response" -d "{\"echo\":$event,\"pid\":$$,\"init_type\":\"$AWS_LAMBDA_INITIALIZATION_TYPE\",\"api\":\"$AWS_LAMBDA_RUNTIME_API\",\"user\":\"$(id -un)\",\"host_users\":$(grep -c . /etc/passwd)}" ;;
  esac
  rm -f "$headers"
done
"#;

/// What a test counts before and after to show nothing leaked: this process's
/// sandbox cgroups, its child processes (an environment's first process is one;
/// the rest die with its pid namespace; zombies count), open fds, and temporary
/// directories under the node directory.
#[derive(Debug, PartialEq, Eq)]
pub struct Footprint {
    pub cgroups: usize,
    pub sandbox_processes: usize,
    pub fds: usize,
    pub temp_dirs: usize,
}

pub fn footprint(node_dir: &Path) -> Footprint {
    let prefix = format!("env-{}-", std::process::id());
    let count = |dir: &Path, pred: &dyn Fn(&std::fs::DirEntry) -> bool| {
        std::fs::read_dir(dir).into_iter().flatten().flatten().filter(|e| pred(e)).count()
    };
    let cgroups = ["memory", "pids", "cpu", "freezer"]
        .iter()
        .map(|c| {
            count(&Path::new("/sys/fs/cgroup").join(c).join("floe"), &|e| {
                e.file_name().to_string_lossy().starts_with(&prefix)
            })
        })
        .sum::<usize>()
        + count(Path::new("/sys/fs/cgroup/floe"), &|e| e.file_name().to_string_lossy().starts_with(&prefix));
    let me = std::process::id().to_string();
    let sandbox_processes = count(Path::new("/proc"), &|e| {
        e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())
            && std::fs::read_to_string(e.path().join("status"))
                .is_ok_and(|s| s.lines().any(|l| l.strip_prefix("PPid:").is_some_and(|p| p.trim() == me)))
    });
    // Loop devices of /tmp disks made ahead are the node's, like prepared sandboxes.
    let fds = count(Path::new("/proc/self/fd"), &|e| {
        !std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("/dev/loop"))
    });
    let mut temp_dirs = 0;
    for sub in ["code", "runtime"] {
        temp_dirs += count(&node_dir.join(sub), &|e| e.file_name().to_string_lossy().starts_with('.'));
    }
    Footprint { cgroups, sandbox_processes, fds, temp_dirs }
}

/// Waits (up to 5 s) until the footprint is back to `before`.
pub async fn assert_no_leaks(node_dir: &Path, before: &Footprint) {
    let mut now = footprint(node_dir);
    for _ in 0..100 {
        if now.cgroups == before.cgroups
            && now.sandbox_processes == before.sandbox_processes
            && now.temp_dirs == before.temp_dirs
            && now.fds <= before.fds
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        now = footprint(node_dir);
    }
    panic!("leaked: before {before:?}, after {now:?}");
}
