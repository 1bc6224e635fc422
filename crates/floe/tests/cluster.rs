//! Several nodes, as an operator runs them: two `floe up` processes with data
//! directories, ports and caches of their own, sharing one PostgreSQL database (a
//! schema of the test's own) and one S3 bucket (a prefix of the test's own), driven
//! with the real boto3 and HTTP clients. Functions defined through one node run on the
//! other; files and locks are shared; reserved concurrency holds across the cluster;
//! a node killed with SIGKILL loses its locks once its session expires, and rejoins
//! when it restarts.
//!
//! Needs `FLOE_TEST_POSTGRES` and `FLOE_TEST_S3` (`scripts/test` sets them); without
//! them the tests say they are skipped, except under CI.

mod common;

use common::backends::Backends;
use common::up::{python_zip_script, Up};
use common::Floe;
use serde_json::{json, Value};
use std::sync::Arc;

/// Seconds a dead node's file system sessions (and locks) outlive it, in these tests.
const SESSION_TTL: &str = "3";

/// A cluster's nodes: each a data directory (on the shared backends), a HOME for
/// its `floe` profile, and the running `floe up`.
struct Node {
    floe: Floe,
    home: tempfile::TempDir,
    up: Option<Up>,
}

impl Node {
    fn up(&self) -> &Up {
        self.up.as_ref().expect("the node is running")
    }

    fn start(&mut self) {
        self.up = Some(Up::start(&self.floe, self.home.path(), &["--session-ttl", SESSION_TTL]));
    }
}

/// `n` nodes on fresh shared backends, or `None` (said) when the test cannot run.
fn cluster(test: &str, n: usize) -> Option<(Arc<Backends>, Vec<Node>)> {
    if let Some(reason) = common::up::unavailable() {
        common::skip(test, &reason);
        return None;
    }
    let backends = match Backends::new() {
        Ok(b) => Arc::new(b),
        Err(reason) => {
            common::skip(test, &reason);
            return None;
        }
    };
    let mut nodes = Vec::new();
    for _ in 0..n {
        let mut node =
            Node { floe: Floe::on(Some(Arc::clone(&backends))), home: tempfile::tempdir().expect("home"), up: None };
        node.start();
        nodes.push(node);
    }
    Some((backends, nodes))
}

/// A function over an access point (uid/gid 1001, root /data) that reads, writes,
/// appends to and locks files, as the payload says.
const FILES: &str = r#"import fcntl, json, os, time

ROOT = '/mnt/data'

def try_lock(path, kind):
    f = open(path, 'a')
    try:
        if kind == 'flock':
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        return True
    except OSError:
        return False
    finally:
        f.close()

def handler(event, context):
    op = event['op']
    path = os.path.join(ROOT, event.get('name', ''))
    if op == 'write':
        with open(path, 'w') as f:
            f.write(event['text'] * event.get('repeat', 1))
        return {'ok': True}
    if op == 'read':
        try:
            with open(path) as f:
                return {'text': f.read()}
        except FileNotFoundError:
            return {'missing': True}
    if op == 'exists':
        return {'exists': os.path.exists(path)}
    if op == 'lock':
        return {'locked': try_lock(path, event['kind'])}
    if op == 'hold':
        # Takes both kinds of lock on `name`, says so, then appends numbered lines to
        # `name`.log (each fsynced) until the invocation times out or the node dies.
        f = open(path, 'a')
        fcntl.flock(f, fcntl.LOCK_EX)
        g = open(path + '.range', 'a')
        fcntl.lockf(g, fcntl.LOCK_EX, 10, 0)
        with open(path + '.held', 'w') as m:
            m.write('held')
        with open(path + '.log', 'a') as log:
            i = 0
            while True:
                log.write('line %08d %s\n' % (i, 'x' * 100))
                log.flush()
                os.fsync(log.fileno())
                i += 1
    if op == 'block':
        # Holds the invocation until `name` exists (reserved-concurrency tests), after
        # saying it started.
        with open(path + '.started.' + event['id'], 'w') as m:
            m.write('started')
        deadline = time.time() + 120
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.02)
        return {'released': os.path.exists(path)}
    raise ValueError('unknown op ' + op)
"#;

/// Through `node`: the file system, its access point and the `files` function.
/// Returns the file system id.
fn set_up_files(up: &Up) -> String {
    let script = format!(
        "{zip}\
fs = efs.create_file_system(CreationToken='cluster')\n\
ap = efs.create_access_point(FileSystemId=fs['FileSystemId'], PosixUser={{'Uid': 1001, 'Gid': 1001}},\n\
    RootDirectory={{'Path': '/data', 'CreationInfo': {{'OwnerUid': 1001, 'OwnerGid': 1001, 'Permissions': '750'}}}})\n\
f = lam.create_function(FunctionName='files', Runtime='python3.11', Role='arn:aws:iam::000000000000:role/files',\n\
    Handler='app.handler', Code={{'ZipFile': ZIP}}, Timeout=300,\n\
    FileSystemConfigs=[{{'Arn': ap['AccessPointArn'], 'LocalMountPath': '/mnt/data'}}])\n\
out({{'fs': fs['FileSystemId'], 'state': f['State']}})\n",
        zip = python_zip_script(&[("app.py", FILES)])
    );
    let made = up.boto3(&script);
    assert_eq!(made["state"], "Active");
    made["fs"].as_str().expect("fs id").to_string()
}

/// Invokes `files` synchronously through `up`; the function's result.
fn files(up: &Up, payload: Value) -> Value {
    let script = format!(
        "r = lam.invoke(FunctionName='files', Payload={payload})\n\
         body = r['Payload'].read().decode()\n\
         out({{'status': r['StatusCode'], 'error': r.get('FunctionError'), 'body': body}})\n",
        payload = serde_json::to_string(&payload.to_string()).expect("a JSON string")
    );
    let r = up.boto3(&script);
    assert_eq!((r["status"].as_i64(), &r["error"]), (Some(200), &Value::Null), "files({payload}): {r}");
    serde_json::from_str(r["body"].as_str().unwrap_or("null")).expect("the function answers JSON")
}

#[test]
fn functions_and_files_are_shared_between_nodes() {
    let Some((_backends, nodes)) = cluster(function_name!(), 2) else { return };
    let (a, b) = (nodes[0].up(), nodes[1].up());
    set_up_files(a);

    // Defined through A, listed and run through B.
    let listed = b.boto3("out([f['FunctionName'] for f in lam.list_functions()['Functions']])");
    assert_eq!(listed, json!(["files"]));
    let fss = b.boto3("out([f['FileSystemId'] for f in efs.describe_file_systems()['FileSystems']])");
    assert_eq!(fss.as_array().map(Vec::len), Some(1), "B sees A's file system: {fss}");

    // Read after close, both ways, through each node's own mount and cache.
    assert_eq!(files(b, json!({"op": "read", "name": "note"})), json!({"missing": true}));
    files(a, json!({"op": "write", "name": "note", "text": "written on A"}));
    assert_eq!(files(b, json!({"op": "read", "name": "note"})), json!({"text": "written on A"}));
    files(b, json!({"op": "write", "name": "note", "text": "rewritten on B, longer than before"}));
    assert_eq!(files(a, json!({"op": "read", "name": "note"})), json!({"text": "rewritten on B, longer than before"}));
    let big = "0123456789abcdef".repeat(1 << 16); // 1 MiB: block objects in S3, not inline
    files(a, json!({"op": "write", "name": "big", "text": "0123456789abcdef", "repeat": 1 << 16}));
    assert_eq!(files(b, json!({"op": "read", "name": "big"}))["text"].as_str(), Some(big.as_str()));

    // Both nodes' credentials are the deployment's: one key pair in the metadata.
    let ka = std::fs::read_to_string(nodes[0].floe.data_dir().join("credentials")).expect("A's credentials");
    let kb = std::fs::read_to_string(nodes[1].floe.data_dir().join("credentials")).expect("B's credentials");
    assert_eq!(ka, kb, "every node serves the same key pair");

    // `floe status` on either node lists both, up, where they listen, on one backend.
    let status = nodes[1].floe.run(["status", "--json"]);
    let status: Value = serde_json::from_str(status.expect_ok()).expect("status --json is JSON");
    let mut endpoints: Vec<(String, String)> = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["api_endpoint"].as_str().unwrap_or("").to_string(), n["state"].as_str().unwrap_or("").to_string()))
        .collect();
    endpoints.sort();
    let mut want = vec![(a.endpoint.clone(), "up".to_string()), (b.endpoint.clone(), "up".to_string())];
    want.sort();
    assert_eq!(endpoints, want, "{status}");
    assert_eq!(status["backends"]["metadata"]["kind"], "postgres", "{status}");
}

#[test]
fn a_killed_node_loses_its_locks_and_rejoins() {
    let Some((_backends, mut nodes)) = cluster(function_name!(), 2) else { return };
    let fs_id = set_up_files(nodes[0].up());
    // A holds a flock and a byte-range lock and writes, in an asynchronous invocation.
    let held = nodes[0].up().boto3(
        "r = lam.invoke(FunctionName='files', InvocationType='Event', Payload=json.dumps({'op': 'hold', 'name': 'lock'}))\n\
         out(r['StatusCode'])",
    );
    assert_eq!(held, json!(202));
    let b = nodes[1].up();
    common::wait_for("A to hold its locks", || {
        files(b, json!({"op": "exists", "name": "lock.held"}))["exists"] == true
    });
    // Held across nodes: B can take neither lock.
    assert_eq!(files(b, json!({"op": "lock", "name": "lock", "kind": "flock"})), json!({"locked": false}));
    assert_eq!(files(b, json!({"op": "lock", "name": "lock.range", "kind": "lockf"})), json!({"locked": false}));
    common::wait_for("A to write a few lines", || {
        files(b, json!({"op": "read", "name": "lock.log"}))["text"].as_str().is_some_and(|t| t.lines().count() >= 3)
    });

    // SIGKILL mid-write: B takes the locks once A's session has expired.
    let a = nodes[0].up.take().expect("A runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(a.pid() as i32), nix::sys::signal::SIGKILL).expect("kill A");
    drop(a);
    let b = nodes[1].up();
    common::wait_for("B to take the flock A held", || {
        files(b, json!({"op": "lock", "name": "lock", "kind": "flock"})) == json!({"locked": true})
    });
    assert_eq!(files(b, json!({"op": "lock", "name": "lock.range", "kind": "lockf"})), json!({"locked": true}));

    // What A wrote is whole lines, numbered from 0 without a gap: what the dead node
    // fsynced, and nothing torn.
    let log = files(b, json!({"op": "read", "name": "lock.log"}));
    let text = log["text"].as_str().expect("the log");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{} lines", lines.len());
    assert!(text.ends_with('\n'), "the log ends with a torn line: {:?}", &text[text.len().saturating_sub(120)..]);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line {i:08} {}", "x".repeat(100)), "line {i} of the log");
    }
    // The metadata is consistent.
    let fsck = nodes[1].floe.run(["fsck", &fs_id]);
    fsck.expect_ok();

    // A restarts on its data directory and rejoins: it serves again, and sees B's work.
    nodes[0].start();
    files(nodes[1].up(), json!({"op": "write", "name": "after", "text": "written on B after A died"}));
    assert_eq!(
        files(nodes[0].up(), json!({"op": "read", "name": "after"})),
        json!({"text": "written on B after A died"})
    );
}

#[test]
fn message_wall_across_nodes_under_load() {
    let Some((_backends, nodes)) = cluster(function_name!(), 2) else { return };
    let a = nodes[0].up();
    let script = format!(
        "{zip}\
fs = efs.create_file_system(CreationToken='wall')\n\
ap = efs.create_access_point(FileSystemId=fs['FileSystemId'], PosixUser={{'Uid': 1001, 'Gid': 1001}},\n\
    RootDirectory={{'Path': '/data', 'CreationInfo': {{'OwnerUid': 1001, 'OwnerGid': 1001, 'Permissions': '750'}}}})\n\
f = lam.create_function(FunctionName='wall', Runtime='python3.11', Role='arn:aws:iam::000000000000:role/wall',\n\
    Handler='app.handler', Code={{'ZipFile': ZIP}}, Timeout=60,\n\
    FileSystemConfigs=[{{'Arn': ap['AccessPointArn'], 'LocalMountPath': '/mnt/msg'}}])\n\
api = apigw.create_api(Name='wall', ProtocolType='HTTP')\n\
i = apigw.create_integration(ApiId=api['ApiId'], IntegrationType='AWS_PROXY', IntegrationUri=f['FunctionArn'],\n\
    PayloadFormatVersion='2.0')\n\
for key in ['GET /messages', 'POST /messages']: apigw.create_route(ApiId=api['ApiId'], RouteKey=key, Target='integrations/' + i['IntegrationId'])\n\
apigw.create_stage(ApiId=api['ApiId'], StageName='$default', AutoDeploy=True)\n\
out(fs['FileSystemId'])\n",
        zip = python_zip_script(&[("app.py", common::wall::HANDLER)])
    );
    let fs_id = a.boto3(&script);
    let fs_id = fs_id.as_str().expect("fs id");
    // Both nodes serve the route made through A.
    let bases = format!("{},{}", nodes[0].up().triggers, nodes[1].up().triggers);
    let (clients, per_client) = (20, 100);
    let result = common::wall::load(a, &bases, clients, per_client, 0);
    eprintln!("cross-node load: {result}");
    assert_eq!(result["statuses"]["201"].as_u64(), Some((clients * per_client) as u64), "{result}");
    for (status, _) in result["statuses"].as_object().expect("statuses") {
        assert!(["201", "429"].contains(&status.as_str()), "only 201 and 429 answers: {result}");
    }

    // Read back through a host mount of the shared file system on a third client.
    let host = nodes[1].floe.mount(fs_id);
    let text = std::fs::read_to_string(host.join("data/wall.txt")).expect("read the wall");
    common::wall::assert_whole_lines(&text, clients, per_client);
    host.unmount();
}

/// `floe up` with backends that cannot work: one line that says what to fix, before
/// anything starts, and never a password.
#[test]
fn wrong_backends_stop_floe_up_in_one_line() {
    let backends = match Backends::new() {
        Ok(b) => b,
        Err(reason) => return common::skip(function_name!(), &reason),
    };
    let server = std::env::var("FLOE_TEST_POSTGRES").expect("set with the backends");
    let (userinfo, host_db) = server.split_once('@').expect("postgres://user:password@host:port/db");
    let user = userinfo.trim_start_matches("postgres://").rsplit_once(':').expect("user:password").0;
    let host = host_db.split('/').next().expect("host:port");
    let s3 = std::env::var("FLOE_TEST_S3").expect("set with the backends");
    let s3_query = s3.split_once('?').expect("s3://bucket?query").1;
    // (arguments, environment, what the line must say)
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--meta".into(), format!("postgres://{user}:not-the-password@{host}/floe")],
            vec![],
            "check the user name and password",
        ),
        (
            vec!["--meta".into(), format!("postgres://{user}:hunter2@127.0.0.1:1/floe")],
            vec![],
            "cannot reach PostgreSQL",
        ),
        (
            vec!["--meta".into(), format!("{}/no_such_database", server.rsplit_once('/').expect("db").0)],
            vec![],
            "createdb no_such_database",
        ),
        (vec!["--meta".into(), "mysql://root:hunter2@db/floe".into()], vec![], "bad metadata URL"),
        (
            vec![
                "--meta".into(),
                backends.meta_url.clone(),
                "--store".into(),
                format!("s3://no-such-bucket?{s3_query}"),
            ],
            vec![],
            "bucket no-such-bucket does not exist",
        ),
        (
            vec!["--meta".into(), backends.meta_url.clone(), "--store".into(), backends.store_url.clone()],
            vec![("AWS_SECRET_ACCESS_KEY", "hunter2")],
            "rejected the credentials",
        ),
    ];
    for (args, env, expected) in cases {
        let floe = Floe::on(None);
        let out = std::process::Command::new(common::FLOE)
            .arg("--data-dir")
            .arg(floe.data_dir())
            .env_remove("FLOE_META")
            .env_remove("FLOE_STORE")
            .env("HOME", floe.data_dir())
            .envs(env)
            .args(&args)
            .args(["up", "--listen", "127.0.0.1:0", "--trigger-listen", "127.0.0.1:0"])
            .output()
            .expect("run floe up");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "floe up {args:?} started");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "floe up {args:?}: one line, not {stderr:?}");
        assert!(lines[0].starts_with("floe: ") && lines[0].contains(expected), "floe up {args:?}: {stderr:?}");
        assert!(!stderr.contains("hunter2") && !stderr.contains("not-the-password"), "a password shown: {stderr:?}");
        assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "nothing started");
    }
}

/// A function with reserved concurrency 2 runs at most twice at once in the whole
/// cluster: with one invocation in flight on each node, a third is throttled on
/// either node, and admitted once one of them finished.
#[test]
fn reserved_concurrency_holds_across_nodes() {
    let Some((_backends, nodes)) = cluster(function_name!(), 2) else { return };
    let (a, b) = (nodes[0].up(), nodes[1].up());
    set_up_files(a);
    // `gate`: the same code and mount, reserved concurrency 2.
    let made = a.boto3(
        "f = lam.get_function(FunctionName='files')\n\
         import urllib.request\n\
         code = urllib.request.urlopen(f['Code']['Location']).read()\n\
         c = f['Configuration']\n\
         g = lam.create_function(FunctionName='gate', Runtime=c['Runtime'], Role=c['Role'], Handler=c['Handler'],\n\
             Code={'ZipFile': code}, Timeout=300, FileSystemConfigs=c['FileSystemConfigs'])\n\
         lam.put_function_concurrency(FunctionName='gate', ReservedConcurrentExecutions=2)\n\
         out(g['State'])",
    );
    assert_eq!(made, json!("Active"));
    let gate = |up: &Up, id: &str| -> Value {
        up.boto3(&format!(
            "try:\n    r = lam.invoke(FunctionName='gate', Payload=json.dumps({{'op': 'block', 'name': 'release', 'id': '{id}'}}))\n    \
             out({{'status': r['StatusCode'], 'body': json.loads(r['Payload'].read())}})\n\
             except botocore.exceptions.ClientError as e:\n    \
             out({{'error': e.response['Error']['Code'], 'reason': e.response.get('Reason')}})\n"
        ))
    };
    std::thread::scope(|scope| {
        let first = scope.spawn(|| gate(a, "1"));
        let second = scope.spawn(|| gate(b, "2"));
        common::wait_for("an invocation in flight on each node", || {
            files(a, json!({"op": "exists", "name": "release.started.1"}))["exists"] == true
                && files(a, json!({"op": "exists", "name": "release.started.2"}))["exists"] == true
        });
        let throttled =
            json!({"error": "TooManyRequestsException", "reason": "ReservedFunctionConcurrentInvocationLimitExceeded"});
        assert_eq!(gate(a, "3"), throttled, "a third on A");
        assert_eq!(gate(b, "4"), throttled, "a third on B");
        files(b, json!({"op": "write", "name": "release", "text": "go"}));
        let done = json!({"status": 200, "body": {"released": true}});
        assert_eq!(first.join().expect("first"), done);
        assert_eq!(second.join().expect("second"), done);
    });
    // The slots are free again, on both nodes.
    assert_eq!(gate(b, "5"), json!({"status": 200, "body": {"released": true}}));
    assert_eq!(gate(a, "6"), json!({"status": 200, "body": {"released": true}}));
}
