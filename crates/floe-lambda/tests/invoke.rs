//! The invoker end to end with a `provided` runtime written in bash: cold and warm
//! starts, errors, crashes, timeouts, logs.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provided_runtime_cold_then_warm() {
    if skip_reason().is_some() {
        return;
    }
    let node = node().await;
    let code = code(&[("bootstrap", SHELL_BOOTSTRAP, true)]);
    node.create("shell", settings("provided.al2023", "echo.handler"), code.path()).await;
    let first = node.invoke_tail("shell", r#"{"n":1}"#).await;
    assert_eq!(first.function_error, None, "{:?}", first.payload);
    let v = json(&first);
    assert_eq!(v["echo"]["n"], 1);
    assert!(first.init_duration.is_some(), "a cold start reports its init");
    assert_eq!(v["user"], "sbx_user1051", "Lambda's user, with its own /etc/passwd: {v}");
    assert_eq!(v["host_users"], 2, "none of the host's users: {v}");
    let log = tail(&first);
    assert!(log.contains("START RequestId: "), "{log}");
    assert!(log.contains("REPORT RequestId: ") && log.contains("Init Duration: "), "{log}");
    let second = node.invoke("shell", r#"{"n":2}"#).await;
    let w = json(&second);
    assert_eq!(w["echo"]["n"], 2);
    assert_eq!(w["pid"], v["pid"], "the warm environment is reused");
    assert!(second.init_duration.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_errors_crashes_and_timeouts() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|_| {}).await;
    let mut s = settings("provided", "x");
    s.timeout_s = Some(1);
    node.create("shell", s, code.path()).await;

    let failed = node.invoke("shell", r#"{"fail":1}"#).await;
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(json(&failed)["errorType"], "ShellError");
    let pid = json(&node.invoke("shell", "{}").await)["pid"].clone();
    assert!(pid.is_number(), "a handled error keeps the environment");

    let crashed = node.invoke_tail("shell", r#"{"exit":1}"#).await;
    assert_eq!(crashed.function_error.as_deref(), Some("Unhandled"));
    let e = json(&crashed);
    assert_eq!(e["errorType"], "Runtime.ExitError", "{e}");
    assert!(e["errorMessage"].as_str().unwrap().ends_with("Runtime exited with error: exit status 7"), "{e}");
    assert!(tail(&crashed).contains("Status: error\tError Type: Runtime.ExitError"), "{}", tail(&crashed));
    let after = node.invoke("shell", "{}").await;
    assert!(after.init_duration.is_some(), "a crashed environment is replaced by a cold one");

    let started = std::time::Instant::now();
    let slow = node.invoke_tail("shell", r#"{"sleep":1}"#).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the timeout ends the invocation");
    let e = json(&slow);
    assert!(e["errorMessage"].as_str().unwrap().ends_with("Task timed out after 1.00 seconds"), "{e}");
    assert!(tail(&slow).contains("Task timed out after 1.00 seconds"), "{}", tail(&slow));
    assert!(tail(&slow).contains("Status: timeout"), "{}", tail(&slow));
    let after = node.invoke("shell", "{}").await;
    assert!(after.init_duration.is_some(), "a timed out environment is replaced");

    let big = node.invoke("shell", r#"{"big":1}"#).await;
    assert_eq!(json(&big)["errorType"], "Function.ResponseSizeTooLarge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_lambda_errors() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|_| {}).await;
    node.create("shell", settings("provided", "x"), code.path()).await;
    let f = &node.functions;
    let e = f.invoke("shell", floe_lambda::InvokeRequest::sync("{not json")).await.unwrap_err();
    assert_eq!(e.kind.code(), "InvalidRequestContentException");
    assert_eq!(e.kind.status(), 400);
    let huge = format!("\"{}\"", "a".repeat(6 * 1024 * 1024));
    let e = f.invoke("shell", floe_lambda::InvokeRequest::sync(huge)).await.unwrap_err();
    assert_eq!((e.kind.code(), e.kind.status()), ("RequestTooLargeException", 413));
    let e = f.invoke("nope", floe_lambda::InvokeRequest::sync("{}")).await.unwrap_err();
    assert_eq!((e.kind.code(), e.kind.status()), ("ResourceNotFoundException", 404));
    let e = f.create_function("shell", settings("provided", "x"), package(code.path())).await.unwrap_err();
    assert_eq!(e.kind.code(), "ResourceConflictException");
    let e = f.create_function("other", settings("cobol", "x"), package(code.path())).await.unwrap_err();
    assert_eq!(e.kind.code(), "InvalidParameterValueException");
    let mut dry = floe_lambda::InvokeRequest::sync("{}");
    dry.invocation_type = floe_lambda::InvocationType::DryRun;
    let r = f.invoke("shell", dry).await.unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(f.pool_stats("shell"), floe_lambda::PoolStats::default(), "a dry run starts nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_and_account_concurrency_throttle() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|c| c.invoker.account_concurrency = 3).await;
    node.create("a", settings("provided", "x"), code.path()).await;
    node.create("b", settings("provided", "x"), code.path()).await;
    let f = node.functions.clone();
    f.put_function_concurrency("a", 0).unwrap();
    let e = f.invoke("a", floe_lambda::InvokeRequest::sync("{}")).await.unwrap_err();
    assert_eq!(e.kind.code(), "TooManyRequestsException");
    assert_eq!(e.reason, Some("ReservedFunctionConcurrentInvocationLimitExceeded"));
    assert_eq!(e.kind.status(), 429);
    // Reserving 1 for a leaves 2 for b: three concurrent calls of b, one throttled.
    f.put_function_concurrency("a", 1).unwrap();
    assert_eq!(f.invoker().unreserved_concurrency(), 2);
    let throttled = |results: &[Result<floe_lambda::InvokeResponse, floe_lambda::LambdaError>], reason| {
        results
            .iter()
            .filter(|r| match r {
                Ok(r) => {
                    assert_eq!(&r.payload[..], b"\"napped\"");
                    false
                }
                Err(e) => {
                    assert_eq!(e.reason, Some(reason));
                    true
                }
            })
            .count()
    };
    assert_eq!(throttled(&naps(&f, "b", 3).await, "ConcurrentInvocationLimitExceeded"), 1);
    // a's reservation is its own: two concurrent calls of a, one throttled.
    assert_eq!(throttled(&naps(&f, "a", 2).await, "ReservedFunctionConcurrentInvocationLimitExceeded"), 1);
    f.delete_function_concurrency("a").unwrap();
    assert_eq!(f.invoker().unreserved_concurrency(), 3);
}

/// `n` concurrent invocations of `name` that each take a second.
async fn naps(
    f: &floe_lambda::Functions,
    name: &'static str,
    n: usize,
) -> Vec<Result<floe_lambda::InvokeResponse, floe_lambda::LambdaError>> {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.invoke(name, floe_lambda::InvokeRequest::sync(r#"{"nap":1}"#)).await })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.expect("task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_environments_are_frozen_then_reclaimed() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|c| c.invoker.idle_timeout = std::time::Duration::from_millis(1500)).await;
    node.create("shell", settings("provided", "x"), code.path()).await;
    let first = json(&node.invoke("shell", "{}").await)["pid"].clone();
    let mut stats = node.functions.pool_stats("shell");
    for _ in 0..100 {
        if stats.frozen == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        stats = node.functions.pool_stats("shell");
    }
    assert_eq!((stats.idle, stats.frozen), (1, 1), "the idle environment is frozen");
    // Thawed for the next invocation, same environment.
    assert_eq!(json(&node.invoke("shell", "{}").await)["pid"], first);
    assert_eq!(node.functions.pool_stats("shell").idle, 1);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(node.functions.pool_stats("shell").idle, 0, "reclaimed after the idle timeout");
    let again = node.invoke("shell", "{}").await;
    assert!(again.init_duration.is_some(), "a cold start after reclaim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_environments_are_ready_ahead_of_demand() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|c| c.invoker.idle_timeout = std::time::Duration::from_millis(200)).await;
    node.create("shell", settings("provided", "x"), code.path()).await;
    node.functions.put_provisioned_concurrency("shell", 2).await.unwrap();
    for _ in 0..200 {
        if node.functions.pool_stats("shell").provisioned_ready == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(node.functions.pool_stats("shell").provisioned_ready, 2);
    let r = node.invoke("shell", "{}").await;
    assert!(r.init_duration.is_none(), "no cold start");
    assert_eq!(json(&r)["init_type"], "provisioned-concurrency");
    // Not reclaimed while idle, unlike on-demand environments.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(node.functions.pool_stats("shell").provisioned_ready, 2);
    node.functions.delete_provisioned_concurrency("shell").unwrap();
    for _ in 0..100 {
        if node.functions.pool_stats("shell").idle == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(node.functions.pool_stats("shell").idle, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_invocations_run_and_are_retried_twice() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|c| {
        c.asynchronous.retry_delays = vec![std::time::Duration::from_millis(100); 2];
    })
    .await;
    let out = tempfile::tempdir().unwrap();
    std::fs::set_permissions(out.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut s = settings("provided", "x");
    s.mounts = Some(vec![floe_lambda::MountConfig {
        source: out.path().display().to_string(),
        local_mount_path: "/mnt/out".into(),
    }]);
    node.create("shell", s, code.path()).await;
    let mut event = floe_lambda::InvokeRequest::sync(r#"{"ok":1}"#);
    event.invocation_type = floe_lambda::InvocationType::Event;
    let accepted = node.functions.invoke("shell", event.clone()).await.unwrap();
    assert_eq!(accepted.status, 202);
    let mut failing = event.clone();
    failing.payload = r#"{"fail":1}"#.into();
    node.functions.invoke("shell", failing).await.unwrap();
    let seen = |pattern: &str| {
        std::fs::read_to_string(out.path().join("seen"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(pattern))
            .count()
    };
    for _ in 0..200 {
        if seen("\"ok\"") == 1 && seen("\"fail\"") == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(seen("\"ok\""), 1, "the event ran once");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(seen("\"fail\""), 3, "a failing event is tried three times in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_environment_reaches_its_runtime_api() {
    if skip_reason().is_some() {
        return;
    }
    let (node, code) = shell_node(|_| {}).await;
    node.create("shell", settings("provided", "x"), code.path()).await;
    let v = json(&node.invoke("shell", "{}").await);
    let api = v["api"].as_str().expect("the runtime API address").to_string();
    // A host process (this test) connecting to that port gets no event: the
    // connection is closed unanswered.
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&api).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf
    })
    .await
    .unwrap();
    assert!(answer.is_empty(), "got {:?}", String::from_utf8_lossy(&answer));
    // The environment itself still works.
    assert_eq!(json(&node.invoke("shell", r#"{"k":2}"#).await)["echo"]["k"], 2);
}

/// Memory of the environment the CPU-share test looks at: no other test uses it,
/// so that environments of tests running beside it in this process are told apart.
const SHARE_TEST_MEMORY_MB: u64 = 777;

/// `cpu.shares` of this process's environments whose memory limit is
/// [`SHARE_TEST_MEMORY_MB`] (cgroup v1).
fn live_cpu_shares() -> Option<Vec<u64>> {
    let cpu = std::path::Path::new("/sys/fs/cgroup/cpu/floe");
    let memory = std::path::Path::new("/sys/fs/cgroup/memory/floe");
    if !cpu.is_dir() || !memory.is_dir() {
        return None;
    }
    let prefix = format!("env-{}-", std::process::id());
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let mut shares = Vec::new();
    for entry in std::fs::read_dir(cpu).ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(&prefix) {
            continue;
        }
        if read(memory.join(&name).join("memory.limit_in_bytes")) != Some(SHARE_TEST_MEMORY_MB << 20) {
            continue;
        }
        shares.extend(read(entry.path().join("cpu.shares")));
    }
    Some(shares)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_runs_with_a_full_cpu_share_then_the_memory_share() {
    if skip_reason().is_some() {
        return;
    }
    if live_cpu_shares().is_none() {
        eprintln!("skipped: the CPU share check reads cgroup v1's cpu controller, absent here");
        return;
    }
    let node = node().await;
    // An init phase of a second, long enough to look at the share while it runs.
    let bootstrap = SHELL_BOOTSTRAP.replacen("echo \"init", "sleep 1\necho \"init", 1);
    let code = code(&[("bootstrap", bootstrap.as_str(), true)]);
    let mut s = settings("provided", "x");
    s.memory_mb = Some(SHARE_TEST_MEMORY_MB as u32);
    node.create("slow-init", s, code.path()).await;
    let functions = node.functions.clone();
    let call = tokio::spawn(async move { functions.invoke("slow-init", floe_lambda::InvokeRequest::sync("{}")).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let shares = live_cpu_shares().unwrap_or_default();
        if shares == [1024] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no environment with a full share during init: {shares:?}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let result = call.await.expect("join").expect("invoke");
    assert_eq!(result.function_error, None);
    assert_eq!(live_cpu_shares(), Some(vec![SHARE_TEST_MEMORY_MB]), "after init, the share is the function's memory");
}
