//! Issue 5's scenario end to end, as a user runs it: `floe up`, then the real boto3,
//! aws CLI and curl. A file system and an access point (uid/gid 1001, root
//! `/message` created 1001:1001 750) made through the EFS API; a Python function
//! that mounts it at `/mnt/msg` and keeps a message wall in a file there (append
//! under an exclusive flock, read under a shared one); HTTP routes made through the
//! API Gateway v2 API; a host mount of the same file system; a restart. Then the
//! load test: 10,000 POSTs from 50 concurrent clients.

mod common;

use common::up::{python_zip_script, Up};
use common::Floe;
use serde_json::Value;
use std::os::unix::fs::MetadataExt;

/// The file system, access point, function and routes of the wall; returns the
/// file system id.
fn set_up_wall(up: &Up) -> String {
    let script = format!(
        "{zip}\
fs = efs.create_file_system(CreationToken='wall', Tags=[{{'Key': 'Name', 'Value': 'wall'}}])\n\
ap = efs.create_access_point(FileSystemId=fs['FileSystemId'], PosixUser={{'Uid': 1001, 'Gid': 1001}},\n\
    RootDirectory={{'Path': '/message', 'CreationInfo': {{'OwnerUid': 1001, 'OwnerGid': 1001, 'Permissions': '750'}}}})\n\
f = lam.create_function(FunctionName='wall', Runtime='python3.11', Role='arn:aws:iam::000000000000:role/wall',\n\
    Handler='app.handler', Code={{'ZipFile': ZIP}}, Timeout=30,\n\
    FileSystemConfigs=[{{'Arn': ap['AccessPointArn'], 'LocalMountPath': '/mnt/msg'}}])\n\
out({{'fs': fs['FileSystemId'], 'ap': ap['AccessPointId'], 'arn': f['FunctionArn'],\n\
     'mounts': f['FileSystemConfigs'], 'state': f['State']}})\n",
        zip = python_zip_script(&[("app.py", common::wall::HANDLER)])
    );
    let made = up.boto3(&script);
    assert_eq!(made["state"], "Active");
    assert_eq!(made["mounts"][0]["LocalMountPath"], "/mnt/msg");
    let arn = made["arn"].as_str().expect("function arn").to_string();
    // Routes with the aws CLI, as a user would.
    let api = up.aws_json(&["apigatewayv2", "create-api", "--name", "wall", "--protocol-type", "HTTP"]);
    let api_id = api["ApiId"].as_str().expect("ApiId").to_string();
    let integration = up.aws_json(&[
        "apigatewayv2",
        "create-integration",
        "--api-id",
        &api_id,
        "--integration-type",
        "AWS_PROXY",
        "--integration-uri",
        &arn,
        "--payload-format-version",
        "2.0",
    ]);
    let target = format!("integrations/{}", integration["IntegrationId"].as_str().expect("IntegrationId"));
    for key in ["GET /messages", "POST /messages", "DELETE /messages/{id}"] {
        up.aws_json(&["apigatewayv2", "create-route", "--api-id", &api_id, "--route-key", key, "--target", &target]);
    }
    // An API serves through its stage, as on API Gateway.
    up.aws_json(&["apigatewayv2", "create-stage", "--api-id", &api_id, "--stage-name", "$default", "--auto-deploy"]);
    made["fs"].as_str().expect("fs id").to_string()
}

fn messages(up: &Up) -> Vec<Value> {
    let (status, body) = up.curl("GET", "/messages", None);
    assert_eq!(status, 200, "GET /messages: {body}");
    serde_json::from_str::<Vec<Value>>(&body).unwrap_or_else(|e| panic!("GET /messages gave {body:?}: {e}"))
}

#[test]
fn message_wall() {
    require_up!();
    let floe = Floe::new();
    let home = tempfile::tempdir().expect("home");
    let up = Up::start(&floe, home.path(), &[]);
    let fs_id = set_up_wall(&up);

    let mut ids = Vec::new();
    for text in ["hello", "second message", "third"] {
        let (status, body) = up.curl("POST", "/messages", Some(text));
        assert_eq!(status, 201, "POST: {body}");
        let v: Value = serde_json::from_str(&body).expect("POST answers JSON");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    let wall = messages(&up);
    let texts: Vec<&str> = wall.iter().map(|m| m["text"].as_str().unwrap_or("")).collect();
    assert_eq!(texts, ["hello", "second message", "third"]);
    let (status, _) = up.curl("DELETE", &format!("/messages/{}", ids[1]), None);
    assert_eq!(status, 204);
    let (status, _) = up.curl("DELETE", &format!("/messages/{}", ids[1]), None);
    assert_eq!(status, 404, "a message deleted twice");
    assert_eq!(messages(&up).len(), 2);
    let (status, body) = up.curl("GET", "/nothing", None);
    assert_eq!(status, 404, "an unknown route: {body}");

    // A host mounts the same file system while the node serves it.
    let host = floe.mount(&fs_id);
    let root = std::fs::metadata(host.join("message")).expect("the access point's root");
    assert_eq!((root.uid(), root.gid(), root.mode() & 0o7777), (1001, 1001, 0o750));
    let file = std::fs::metadata(host.join("message/wall.txt")).expect("the wall");
    assert_eq!((file.uid(), file.gid()), (1001, 1001), "files are created as the access point's identity");
    let text = std::fs::read_to_string(host.join("message/wall.txt")).expect("read the wall from the host");
    assert_eq!(text.lines().count(), 2);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(host.join("message/wall.txt")).expect("open");
        f.write_all(b"0000000000000000000000000000host\tfrom the host\n").expect("append from the host");
    }
    let texts: Vec<String> = messages(&up).iter().map(|m| m["text"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(texts, ["hello", "third", "from the host"], "the function reads what the host closed");
    host.unmount();

    // The CLI goes through the running node.
    let run = floe.run(["fn", "invoke", "wall", "--payload", r#"{"requestContext":{"http":{"method":"GET"}}}"#]);
    let listed: Vec<Value> = serde_json::from_str(run.expect_ok().trim()).expect("invoke prints the result");
    assert_eq!(listed.len(), 3);

    // A restart keeps functions, file systems, routes and files.
    up.stop();
    let up = Up::start(&floe, home.path(), &[]);
    assert_eq!(messages(&up).len(), 3, "the wall after a restart");
    let listed = up.boto3("out([f['FunctionName'] for f in lam.list_functions()['Functions']])");
    assert_eq!(listed, serde_json::json!(["wall"]));
    up.stop();
}

#[test]
fn message_wall_under_load() {
    require_up!();
    let floe = Floe::new();
    let home = tempfile::tempdir().expect("home");
    let up = Up::start(&floe, home.path(), &[]);
    let fs_id = set_up_wall(&up);
    // A cap below the number of clients, so that some requests are throttled (429)
    // and retried, as API Gateway's clients must.
    up.boto3("lam.put_function_concurrency(FunctionName='wall', ReservedConcurrentExecutions=8); out(None)");
    let (clients, per_client) = (50, 200);
    let run = |start: usize, n: usize| common::wall::load(&up, &up.triggers, clients, n, start);
    // A first fifth, then the rest: memory is compared between the two.
    let first = run(0, per_client / 5);
    let rss_after_first = up.rss_kib();
    let second = run(per_client / 5, per_client - per_client / 5);
    let rss_after_all = up.rss_kib();
    eprintln!("load: {first} then {second}; node RSS {rss_after_first} KiB -> {rss_after_all} KiB");
    let created = first["statuses"]["201"].as_u64().unwrap_or(0) + second["statuses"]["201"].as_u64().unwrap_or(0);
    assert_eq!(created, (clients * per_client) as u64, "every POST answered 201 in the end");
    for s in [&first, &second] {
        for (status, _) in s["statuses"].as_object().expect("statuses") {
            assert!(["201", "429"].contains(&status.as_str()), "only 201 and 429 answers: {s}");
        }
    }

    let host = floe.mount(&fs_id);
    let text = std::fs::read_to_string(host.join("message/wall.txt")).expect("read the wall");
    common::wall::assert_whole_lines(&text, clients, per_client);
    host.unmount();
    // Memory stays flat: the second run (4x the first) may not grow the node by
    // more than what a few more environments' bookkeeping takes.
    assert!(
        rss_after_all < rss_after_first + 64 * 1024,
        "node RSS grew from {rss_after_first} KiB to {rss_after_all} KiB over 8,000 requests"
    );
    up.stop();
}
