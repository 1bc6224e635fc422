//! Runtime API compatibility: the official runtime interface clients, unmodified,
//! in floe's execution environments: Python's `awslambdaric`, Node's
//! `aws-lambda-ric` and Rust's `lambda_runtime` (as a `provided` bootstrap).
//! The clients are installed by `scripts/ric-fixtures` into `$FLOE_RIC_DIR`
//! (default `target/ric`); without them the tests say so (and fail under CI=true).

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn ric_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FLOE_RIC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ric"));
    if dir.join("python").is_dir() && dir.join("node").is_dir() && dir.join("rust/bootstrap").is_file() {
        return Some(dir);
    }
    let reason = format!("the official RICs are not installed in {} (run scripts/ric-fixtures)", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// The client's directory plus a `bootstrap` that starts it (a `provided` function).
fn package_with_bootstrap(source: &Path, bootstrap: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("code dir");
    let status =
        std::process::Command::new("cp").arg("-a").arg(format!("{}/.", source.display())).arg(dir.path()).status();
    assert!(status.expect("cp").success());
    if let Some(script) = bootstrap {
        let path = dir.path().join("bootstrap");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    dir
}

async fn check_client(name: &str, code: &Path) {
    let node = node().await;
    for handler in ["handler", "noop", "fail"] {
        let h = if name == "rust" {
            handler.to_string()
        } else {
            format!("{}.{handler}", if name == "node" { "index" } else { "app" })
        };
        node.create(&format!("{name}-{handler}"), settings("provided.al2023", &h), code).await;
    }
    node.create(
        &format!("{name}-missing"),
        settings("provided.al2023", if name == "rust" { "nope" } else { "nomodule.nope" }),
        code,
    )
    .await;

    // Two invocations: cold, then warm on the same environment.
    for n in 1..=2 {
        let r = node.invoke_tail(&format!("{name}-handler"), &format!(r#"{{"n":{n}}}"#)).await;
        assert_eq!(r.function_error, None, "{name}: {}", String::from_utf8_lossy(&r.payload));
        let v = json(&r);
        assert_eq!(v["ok"], true, "{name}: {v}");
        assert_eq!(v["event"]["n"], n, "{name}: {v}");
        assert_eq!(v["request_id"], r.request_id, "{name}: the client saw floe's request id");
        assert_eq!(r.init_duration.is_some(), n == 1, "{name}: cold then warm");
        assert!(tail(&r).contains(&format!("REPORT RequestId: {}", r.request_id)), "{name}: {}", tail(&r));
    }
    let r = node.invoke(&format!("{name}-noop"), "{}").await;
    assert_eq!((r.function_error.as_deref(), &r.payload[..]), (None, &b"null"[..]), "{name}");

    let r = node.invoke(&format!("{name}-fail"), "{}").await;
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"), "{name}");
    let v = json(&r);
    assert_eq!(v["errorType"], "ValueError", "{name}: {v}");
    assert_eq!(v["errorMessage"], "boom", "{name}: {v}");
    // The client keeps serving after a handled error: same environment, warm.
    let again = node.invoke(&format!("{name}-fail"), "{}").await;
    assert!(again.init_duration.is_none(), "{name}: the environment survives a handler error");

    let r = node.invoke(&format!("{name}-missing"), "{}").await;
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"), "{name}");
    let v = json(&r);
    let error_type = v["errorType"].as_str().unwrap_or_default().to_string();
    match name {
        // lambda_runtime has no init error: the fixture exits before its first /next.
        "rust" => assert_eq!(error_type, "Runtime.ExitError", "{name}: {v}"),
        _ => {
            assert!(error_type == "Runtime.ImportModuleError" || error_type == "Runtime.HandlerNotFound", "{name}: {v}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_awslambdaric() {
    if skip_reason().is_some() {
        return;
    }
    let Some(ric) = ric_dir() else { return };
    let code = package_with_bootstrap(
        &ric.join("python"),
        Some("#!/bin/sh\nexec /usr/bin/python3 -m awslambdaric \"$_HANDLER\"\n"),
    );
    check_client("python", code.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_aws_lambda_ric() {
    if skip_reason().is_some() {
        return;
    }
    let Some(ric) = ric_dir() else { return };
    let code = package_with_bootstrap(
        &ric.join("node"),
        Some("#!/bin/sh\nexec /usr/bin/node /var/task/node_modules/aws-lambda-ric/bin/index.mjs \"$_HANDLER\"\n"),
    );
    check_client("node", code.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_lambda_runtime() {
    if skip_reason().is_some() {
        return;
    }
    let Some(ric) = ric_dir() else { return };
    let code = package_with_bootstrap(&ric.join("rust"), None);
    check_client("rust", code.path()).await;
}
