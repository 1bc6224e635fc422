//! `floe fn ...` as a user runs it: create from a directory or a zip, invoke,
//! logs, update, delete, and one-line errors. Needs root for the sandboxes.

mod common;

use common::*;

const SHELL_BOOTSTRAP: &str = r#"#!/bin/bash
set -euo pipefail
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | cut -d' ' -f2 | tr -d '\r\n')
  echo "event for ${AWS_LAMBDA_FUNCTION_NAME}: $event"
  case "$event" in
    *'"fail"'*) curl -sS -o /dev/null -X POST "$api/invocation/$id/error" -d '{"errorMessage":"failed","errorType":"ShellError"}' ;;
    *) curl -sS -o /dev/null -X POST "$api/invocation/$id/response" -d "{\"echo\":$event,\"greeting\":\"${GREETING:-none}\",\"memory\":$AWS_LAMBDA_FUNCTION_MEMORY_SIZE}" ;;
  esac
  rm -f "$headers"
done
"#;

fn sandbox_available(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip(test, "functions need root for their sandboxes");
    false
}

fn shell_code() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("code dir");
    let path = dir.path().join("bootstrap");
    std::fs::write(&path, SHELL_BOOTSTRAP).expect("write bootstrap");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    dir
}

#[test]
fn function_lifecycle_through_the_cli() {
    if !sandbox_available("function_lifecycle_through_the_cli") {
        return;
    }
    let floe = Floe::new();
    let code = shell_code();
    let code_arg = code.path().to_str().unwrap();
    let created = floe.run([
        "fn",
        "create",
        "hello",
        "--code",
        code_arg,
        "--runtime",
        "provided.al2023",
        "--handler",
        "x",
        "--env",
        "GREETING=hi",
    ]);
    let config: serde_json::Value = serde_json::from_str(created.expect_ok()).expect("configuration JSON");
    assert_eq!(config["FunctionName"], "hello");
    assert_eq!(config["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:hello");
    assert_eq!(config["Version"], "$LATEST");
    assert_eq!(config["MemorySize"], 128);
    assert_eq!(config["Timeout"], 3);
    assert_eq!(config["State"], "Active");
    assert_eq!(config["Environment"]["Variables"]["GREETING"], "hi");

    let run = floe.run(["fn", "invoke", "hello", "--payload", r#"{"n":1}"#, "--log-type", "Tail"]);
    let result: serde_json::Value = serde_json::from_str(run.expect_ok()).expect("result JSON");
    assert_eq!(result, serde_json::json!({"echo": {"n": 1}, "greeting": "hi", "memory": 128}));
    assert!(run.stderr.contains("REPORT RequestId: "), "{run:#?}");
    assert!(run.stderr.contains("event for hello: {\"n\":1}"), "{run:#?}");

    let failed = floe.run(["fn", "invoke", "hello", "--payload", r#"{"fail":1}"#]);
    assert_eq!(failed.expect_error_line(), "floe: the function failed (Unhandled)");
    assert!(failed.stdout.contains("ShellError"), "{failed:#?}");

    let updated = floe.run(["fn", "update", "hello", "--memory", "256", "--timeout", "10"]);
    let config: serde_json::Value = serde_json::from_str(updated.expect_ok()).unwrap();
    assert_eq!((config["MemorySize"].as_u64(), config["Timeout"].as_u64()), (Some(256), Some(10)));
    let result: serde_json::Value =
        serde_json::from_str(floe.run(["fn", "invoke", "hello"]).expect_ok()).expect("result JSON");
    assert_eq!(result["memory"], 256);
    assert_eq!(result["echo"], serde_json::json!({}), "no payload is an empty object");

    let logs = floe.run(["fn", "logs", "hello"]);
    let text = logs.expect_ok();
    assert_eq!(text.matches("REPORT RequestId: ").count(), 3, "{text}");
    let list: serde_json::Value = serde_json::from_str(floe.run(["fn", "list"]).expect_ok()).unwrap();
    assert_eq!(list["Functions"].as_array().unwrap().len(), 1);

    floe.run(["fn", "delete", "hello"]).expect_ok();
    let gone = floe.run(["fn", "get", "hello"]);
    assert_eq!(gone.expect_error_line(), "floe: ResourceNotFoundException: Function not found: hello");
}

#[test]
fn zip_packages_and_bad_input() {
    if !sandbox_available("zip_packages_and_bad_input") {
        return;
    }
    let floe = Floe::new();
    let code = shell_code();
    let package = floe_lambda::code::Package::from_dir(code.path(), &Default::default()).unwrap();
    let zip = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(zip.path(), &package.zip).unwrap();
    let zip_arg = zip.path().to_str().unwrap();
    floe.run(["fn", "create", "z", "--code", zip_arg, "--runtime", "provided", "--handler", "x"]).expect_ok();
    let result: serde_json::Value =
        serde_json::from_str(floe.run(["fn", "invoke", "z", "--payload", "[1,2]"]).expect_ok()).unwrap();
    assert_eq!(result["echo"], serde_json::json!([1, 2]));

    // `fn create y` with a valid package and runtime, plus `extra`.
    let create = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["fn", "create", "y", "--code", zip_arg, "--runtime", "provided", "--handler", "x"]
            .map(String::from)
            .into();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let strings = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (strings(&["fn", "invoke", "nope"]), "floe: ResourceNotFoundException: Function not found: nope"),
        (
            strings(&["fn", "invoke", "z", "--payload", "{oops"]),
            "floe: InvalidRequestContentException: Could not parse request body into json",
        ),
        (
            strings(&["fn", "create", "z", "--code", zip_arg, "--runtime", "provided", "--handler", "x"]),
            "floe: ResourceConflictException: Function already exist: z",
        ),
        (
            strings(&["fn", "create", "y", "--code", zip_arg, "--runtime", "java8", "--handler", "x"]),
            "floe: InvalidParameterValueException: Value java8 at 'runtime'",
        ),
        (create(&["--memory", "64"]), "floe: InvalidParameterValueException: 'MemorySize'"),
        (
            strings(&["fn", "create", "y", "--code", "/nonexistent", "--runtime", "provided", "--handler", "x"]),
            "floe: code /nonexistent",
        ),
        (
            strings(&["fn", "create", "y", "--code", "/etc/hostname", "--runtime", "provided", "--handler", "x"]),
            "floe: InvalidParameterValueException: Could not unzip uploaded file",
        ),
        (
            strings(&["fn", "create", "bad/name", "--code", zip_arg, "--runtime", "provided", "--handler", "x"]),
            "floe: InvalidParameterValueException: 1 validation error",
        ),
        (create(&["--env", "AWS_REGION=x"]), "Reserved keys used in this request: AWS_REGION"),
        (create(&["--mount", "/srv:/data"]), "LocalMountPath '/data' must match"),
        (
            strings(&["fn", "invoke", "z", "--invocation-type", "Later"]),
            "floe: InvalidParameterValueException: 1 validation error",
        ),
    ];
    for (args, expected) in cases {
        let run = floe.run(&args);
        let line = run.expect_error_line();
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    let dry = floe.run(["fn", "invoke", "z", "--invocation-type", "DryRun"]);
    assert_eq!(dry.expect_ok(), "");
}

#[test]
fn without_root_functions_say_so_in_one_line() {
    let floe = Floe::new();
    let data = floe.data_dir().to_str().unwrap().to_string();
    let args = ["--data-dir", data.as_str(), "fn", "list"];
    let run = if nix::unistd::geteuid().is_root() {
        // As an unprivileged user (the data directory opened to it).
        std::fs::set_permissions(floe.data_dir(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let out = std::process::Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", FLOE])
            .args(args)
            .env_remove("FLOE_DATA_DIR")
            .output()
            .expect("run setpriv");
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    } else {
        floe_raw(args)
    };
    let line = run.expect_error_line();
    assert!(line.starts_with("floe: functions cannot run here: sandboxes need root"), "{line}");
}
