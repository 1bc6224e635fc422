//! The failure table of execution environments, and proof that failures leak
//! nothing: cgroups, processes, file descriptors, temporary directories are
//! counted before and after. Alone in its test binary, so that no other test's
//! environments are counted.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_get_lambda_errors_and_leak_nothing() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|c| c.init_timeout = std::time::Duration::from_secs(1)).await;
    let node_dir = node.dir.path().join("node");
    // Prepared sandboxes (cgroups waiting for a cold start) are part of the node.
    let wait_prepared = || async {
        for _ in 0..200 {
            if node.functions.prepared_sandboxes() == 2 && node.functions.background_settled() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the sandbox pool did not fill");
    };
    wait_prepared().await;
    let before = footprint(&node_dir);
    let mut s = settings("provided", "x");
    s.timeout_s = Some(3);
    node.create("shell", s.clone(), code.path()).await;

    // Memory: going over the limit kills the environment; the caller is told.
    let oom = node.invoke_tail("shell", r#"{"oom":1}"#).await;
    assert_eq!(json(&oom)["errorType"], "Runtime.OutOfMemory", "{}", tail(&oom));
    assert!(tail(&oom).contains("Error Type: Runtime.OutOfMemory"), "{}", tail(&oom));

    // A fork bomb meets the pids limit and the timeout; nothing hangs.
    let started = std::time::Instant::now();
    let bomb = node.invoke("shell", r#"{"forkbomb":1}"#).await;
    assert!(bomb.function_error.is_some(), "{:?}", bomb.payload);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // /tmp is full at its size (512 MB, beyond the 128 MB of memory): the function
    // sees ENOSPC, the environment lives on.
    let mut long = settings("provided", "x");
    long.timeout_s = Some(60);
    node.create("filler", long, code.path()).await;
    let fill = node.invoke("filler", r#"{"fill":1}"#).await;
    let v = json(&fill);
    assert_eq!(v["enospc"], 1, "{v}");
    let size = v["size"].as_u64().unwrap();
    assert!((500 << 20..=560 << 20).contains(&size), "{v}");

    // A bootstrap that never asks for work: the init phase times out.
    let stuck = code_dir_with("#!/bin/sh\nsleep 100\n");
    node.create("stuck", settings("provided", "x"), stuck.path()).await;
    let e = node.invoke("stuck", "{}").await;
    assert_eq!(e.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(json(&e)["errorType"], "Sandbox.Timedout");

    // A bootstrap that exits during init.
    let dies = code_dir_with("#!/bin/sh\necho dying >&2\nexit 2\n");
    node.create("dies", settings("provided", "x"), dies.path()).await;
    let e = node.invoke("dies", "{}").await;
    let v = json(&e);
    assert_eq!(v["errorType"], "Runtime.ExitError", "{v}");
    assert!(v["errorMessage"].as_str().unwrap().contains("exit status 2"), "{v}");

    // A missing bootstrap.
    let none = code_dir_with("");
    std::fs::remove_file(none.path().join("bootstrap")).unwrap();
    std::fs::write(none.path().join("other"), "x").unwrap();
    node.create("none", settings("provided", "x"), none.path()).await;
    let e = node.invoke("none", "{}").await;
    assert!(e.function_error.is_some(), "{:?}", e.payload);

    node.functions.shutdown();
    wait_prepared().await;
    assert_no_leaks(&node_dir, &before).await;
    // Dropping the service removes the prepared sandboxes too.
    let Node { functions, dir } = node;
    drop(functions);
    let empty = Footprint { cgroups: 0, ..before };
    assert_no_leaks(&dir.path().join("node"), &empty).await;
    let images = || std::fs::read_dir(dir.path().join("node/tmp-disks")).map(|d| d.count()).unwrap_or(0);
    let loops = || {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("/dev/loop")))
            .count()
    };
    for _ in 0..100 {
        if images() == 0 && loops() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(images(), 0, "every /tmp disk image is deleted");
    assert_eq!(loops(), 0, "no loop device is held open (autoclear then detaches them)");
}

fn code_dir_with(bootstrap: &str) -> tempfile::TempDir {
    code(&[("bootstrap", bootstrap, true)])
}
