//! floe's own Python and Node bootstraps, end to end through the invoker, with the
//! handler fixtures of tests/fixtures (their README says what each must give).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use floe_lambda::{InvokeRequest, Settings};

fn fixture(lang: &str, case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(lang).join(case)
}

fn runtime(lang: &str) -> &'static str {
    if lang == "python" {
        "python3.11"
    } else {
        "nodejs20.x"
    }
}

fn handler(lang: &str) -> &'static str {
    if lang == "python" {
        "app.handler"
    } else {
        "index.handler"
    }
}

async fn create(node: &Node, name: &str, lang: &str, case: &str, edit: impl FnOnce(&mut Settings)) {
    let mut s = settings(runtime(lang), handler(lang));
    edit(&mut s);
    node.create(name, s, &fixture(lang, case)).await;
}

fn error_type(r: &floe_lambda::InvokeResponse) -> String {
    assert_eq!(r.function_error.as_deref(), Some("Unhandled"), "{}", String::from_utf8_lossy(&r.payload));
    json(r)["errorType"].as_str().unwrap_or_default().to_string()
}

async fn environment_and_context(lang: &str) {
    let node = node().await;
    create(&node, "echo", lang, "echo", |s| {
        s.memory_mb = Some(256);
        s.timeout_s = Some(7);
        s.environment = Some([("ECHO_COLOR".to_string(), "blue".to_string())].into());
    })
    .await;
    let mut request = InvokeRequest::sync(r#"{"k":[1,2]}"#);
    use base64::Engine;
    request.client_context =
        Some(base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"a":"b"},"env":{"e":"f"}}"#));
    let r = node.functions.invoke("echo", request).await.unwrap();
    let v = json(&r);
    assert_eq!(v["event"], serde_json::json!({"k": [1, 2]}), "{v}");
    assert_eq!(v["request_id"], r.request_id);
    assert_eq!(v["function_name"], "echo");
    assert_eq!(v["function_version"], "$LATEST");
    assert_eq!(v["invoked_function_arn"], "arn:aws:lambda:us-east-1:000000000000:function:echo");
    assert_eq!(v["memory"], "256");
    assert_eq!(v["log_group_name"], "/aws/lambda/echo");
    assert!(v["log_stream_name"].as_str().unwrap().contains("[$LATEST]"), "{v}");
    let remaining = v["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 5000 && remaining <= 7000, "{v}");
    let env = &v["env"];
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
    assert_eq!(env["AWS_EXECUTION_ENV"], format!("AWS_Lambda_{}", runtime(lang)));
    assert_eq!(env["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(env["_HANDLER"], handler(lang));
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["ECHO_COLOR"], "blue");
    assert!(v["trace_id"].as_str().unwrap().starts_with("Root=1-"), "{v}");
    assert_eq!(v["client_context"]["custom"]["a"], "b", "{v}");
    assert_eq!(v["cwd"], "/var/task");
    let bad = InvokeRequest { client_context: Some("%%%".into()), ..InvokeRequest::sync("{}") };
    assert_eq!(node.functions.invoke("echo", bad).await.unwrap_err().kind.code(), "InvalidParameterValueException");
}

async fn warm_reuse_and_init_outside_the_handler(lang: &str) {
    let node = node().await;
    create(&node, "counter", lang, "counter", |_| {}).await;
    let first = node.invoke("counter", "{}").await;
    assert!(first.init_duration.is_some());
    let (a, b) = (json(&first), json(&node.invoke("counter", "{}").await));
    assert_eq!((a["count"].as_u64(), b["count"].as_u64()), (Some(1), Some(2)));
    assert_eq!(a["pid"], b["pid"]);
    assert_eq!(a["init_time"], b["init_time"], "the module was loaded once, in the init phase");
}

async fn failure_table(lang: &str) {
    let node = node().await;
    let cases: &[(&str, &str, &str)] = &[
        ("import_error", "{}", "Runtime.ImportModuleError"),
        ("syntax_error", "{}", "Runtime.UserCodeSyntaxError"),
        ("no_handler", "{}", "Runtime.HandlerNotFound"),
        ("exit", "{}", "Runtime.ExitError"),
        ("raise", "{}", if lang == "python" { "ValueError" } else { "Error" }),
        ("init_exception", "{}", if lang == "python" { "ValueError" } else { "Error" }),
        ("unmarshal", "{}", if lang == "python" { "Runtime.MarshalError" } else { "Error" }),
        ("big", r#"{"bytes":7000000}"#, "Function.ResponseSizeTooLarge"),
        ("memory", r#"{"mb":400}"#, "Runtime.OutOfMemory"),
    ];
    for (case, event, expected) in cases {
        create(&node, case, lang, case, |_| {}).await;
        let r = node.invoke_tail(case, event).await;
        assert_eq!(&error_type(&r), expected, "{lang} {case}: {}", tail(&r));
    }
    // A handler name without a module: malformed.
    create(&node, "malformed", lang, "echo", |s| s.handler = Some("handler".into())).await;
    assert_eq!(error_type(&node.invoke("malformed", "{}").await), "Runtime.MalformedHandlerName");
    // A timeout kills the environment and says so.
    create(&node, "sleep", lang, "sleep", |s| s.timeout_s = Some(1)).await;
    let r = node.invoke("sleep", r#"{"seconds":5}"#).await;
    let message = json(&r)["errorMessage"].as_str().unwrap().to_string();
    assert!(message.ends_with("Task timed out after 1.00 seconds"), "{message}");
    // Just under the limit is fine.
    let r = node.invoke("big", r#"{"bytes":6000000}"#).await;
    assert_eq!(r.function_error, None);
    assert_eq!(r.payload.len(), 6_000_002);
}

async fn limits_inside(lang: &str) {
    let node = node().await;
    // With memory to spare, the pids limit (1,024 tasks) is what stops a fork bomb.
    create(&node, "fork_bomb", lang, "fork_bomb", |s| {
        s.timeout_s = Some(60);
        s.memory_mb = Some(4096);
    })
    .await;
    let v = json(&node.invoke("fork_bomb", r#"{"max":2000,"hold":5}"#).await);
    assert!(v["forked"].as_u64().is_some_and(|n| n < 1024), "{v}");
    assert!(v["error"].is_string(), "the pids limit stopped it: {v}");
    // With little memory it is the memory limit: the environment is replaced.
    create(&node, "fork_bomb_small", lang, "fork_bomb", |s| s.timeout_s = Some(60)).await;
    // Which limit stops it first depends on the interpreter's size: either way the
    // caller learns why, and an OOM-killed environment is replaced.
    let r = node.invoke("fork_bomb_small", r#"{"max":2000,"hold":5}"#).await;
    let v = json(&r);
    if r.function_error.is_some() {
        assert_eq!(v["errorType"], "Runtime.OutOfMemory", "{v}");
        assert!(node.invoke("fork_bomb_small", r#"{"max":1}"#).await.init_duration.is_some());
    } else {
        assert!(v["error"].is_string() && v["forked"].as_u64().is_some_and(|n| n < 1024), "{v}");
    }
    // /tmp has its own size (512 MB by default), beyond the 128 MB of memory.
    create(&node, "tmp_fill", lang, "tmp_fill", |s| s.timeout_s = Some(60)).await;
    let v = json(&node.invoke("tmp_fill", "{}").await);
    assert_eq!(v["error"], "ENOSPC", "{v}");
    let written = v["bytes"].as_u64().unwrap();
    assert!((500 << 20..=560 << 20).contains(&written), "{v}");
}

async fn logs_reach_the_tail_and_the_stream(lang: &str) {
    let node = node().await;
    create(&node, "logs", lang, "logs", |_| {}).await;
    let r = node.invoke_tail("logs", r#"{"lines":3}"#).await;
    let t = tail(&r);
    for i in 0..3 {
        assert!(t.contains(&format!("stdout line {i}")), "{t}");
    }
    let start = t.find("START RequestId").unwrap();
    let line = t.find("stdout line 0").unwrap();
    let end = t.find("END RequestId").unwrap();
    assert!(start < line && line < end, "the handler's lines come between START and END: {t}");
    let streams = node.functions.log_files("logs").unwrap();
    assert_eq!(streams.len(), 1);
    let stream = std::fs::read_to_string(&streams[0]).unwrap();
    assert!(stream.contains("stdout line 2") && stream.contains("REPORT RequestId"), "{stream}");
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn python() {
                if skip_reason().is_none() {
                    super::$name("python").await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn node() {
                if skip_reason().is_none() {
                    super::$name("node").await;
                }
            }
        }
    };
}

both!(environment_and_context);
both!(warm_reuse_and_init_outside_the_handler);
both!(failure_table);
both!(limits_inside);
both!(logs_reach_the_tail_and_the_stream);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_module_kinds_and_crashes() {
    if skip_reason().is_some() {
        return;
    }
    let node = node().await;
    create(&node, "esm", "node", "esm", |_| {}).await;
    let v = json(&node.invoke("esm", r#"{"x":1}"#).await);
    assert_eq!((v["esm"].as_bool(), v["file"].as_str()), (Some(true), Some("index.mjs")), "{v}");
    create(&node, "cjs", "node", "cjs", |_| {}).await;
    assert_eq!(json(&node.invoke("cjs", "{}").await)["cjs"], true);
    create(&node, "callback", "node", "callback", |_| {}).await;
    assert_eq!(json(&node.invoke("callback", r#"{"mode":"ok"}"#).await)["callback"], true);
    assert_eq!(error_type(&node.invoke("callback", r#"{"mode":"err"}"#).await), "Error");
    create(&node, "nested", "node", "nested", |s| s.handler = Some("src/index.obj.fn".into())).await;
    assert_eq!(json(&node.invoke("nested", "{}").await)["nested"], true);
    create(&node, "uncaught", "node", "uncaught_exception", |_| {}).await;
    assert_eq!(error_type(&node.invoke("uncaught", "{}").await), "Error");
    let again = node.invoke("uncaught", "{}").await;
    assert!(again.init_duration.is_some(), "the crashed environment was replaced");
    create(&node, "rejection", "node", "unhandled_rejection", |_| {}).await;
    assert_eq!(error_type(&node.invoke("rejection", "{}").await), "Runtime.UnhandledPromiseRejection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_nested_modules() {
    if skip_reason().is_some() {
        return;
    }
    let node = node().await;
    create(&node, "nested", "python", "nested", |s| s.handler = Some("pkg/sub/mod.handler".into())).await;
    assert_eq!(json(&node.invoke("nested", "{}").await)["module"], "pkg.sub.mod");
}
