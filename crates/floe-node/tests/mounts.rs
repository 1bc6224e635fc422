//! Functions mount access points: a real node (SQLite, local objects, sandboxes,
//! FUSE), functions whose mounts name access points by ARN or id, and what their
//! environments see and do through them.

use std::sync::Arc;

use floe_lambda::code::Package;
use floe_lambda::{ErrorKind, InvokeRequest, MountConfig, Settings};
use floe_meta::{AccessPointId, Caller, Meta, NewAccessPoint, RootCreation, SqliteStore};
use floe_node::{Deployment, Node, NodeSettings};

fn skip() -> bool {
    if nix::unistd::geteuid().is_root() && std::path::Path::new("/dev/fuse").exists() {
        return false;
    }
    let reason = "a node's functions need root (sandboxes) and /dev/fuse";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {reason}");
    eprintln!("skipped: {reason}");
    true
}

struct TestNode {
    node: Node,
    meta: Meta,
    _dir: tempfile::TempDir,
}

async fn node() -> TestNode {
    let dir = tempfile::tempdir().expect("data dir");
    let meta = Meta::new(SqliteStore::open(&dir.path().join("meta.db")).expect("sqlite"));
    std::fs::create_dir_all(dir.path().join("objects")).unwrap();
    let objects = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path().join("objects")).unwrap());
    let deployment = Deployment { region: "eu-west-1".into(), account_id: "123456789012".into() };
    let node = Node::open(meta.clone(), objects, NodeSettings::new(dir.path().join("node"), deployment))
        .await
        .expect("open the node");
    TestNode { node, meta, _dir: dir }
}

fn access_point(meta: &Meta, fs: &str, path: &str, uid: u32) -> AccessPointId {
    let id = AccessPointId::from_entropy(rand::random());
    meta.create_access_point(
        fs,
        &NewAccessPoint {
            id: id.clone(),
            path: path.into(),
            identity: Caller { uid, gid: uid, groups: vec![] },
            creation: Some(RootCreation { uid, gid: uid, mode: 0o750 }),
        },
    )
    .expect("create the access point");
    id
}

const HANDLER: &str = r#"import os, json

def handler(event, context):
    d = event['dir']
    if 'write' in event:
        with open(os.path.join(d, event['write']), 'w') as f:
            f.write(event['text'])
    names = sorted(os.listdir(d))
    st = os.stat(os.path.join(d, names[0])) if names else None
    return {'names': names, 'owner': [st.st_uid, st.st_gid] if st else None,
            'texts': [open(os.path.join(d, n)).read() for n in names if os.path.isfile(os.path.join(d, n))]}
"#;

fn package() -> Package {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    Package::from_dir(dir.path(), &Default::default()).expect("package")
}

fn settings(mounts: Vec<(String, &str)>) -> Settings {
    Settings {
        runtime: Some("python3.11".into()),
        handler: Some("app.handler".into()),
        mounts: Some(
            mounts.into_iter().map(|(source, path)| MountConfig { source, local_mount_path: path.into() }).collect(),
        ),
        ..Settings::default()
    }
}

async fn invoke(node: &Node, name: &str, event: serde_json::Value) -> serde_json::Value {
    let r = node.functions().invoke(name, InvokeRequest::sync(event.to_string())).await.expect("invoke");
    assert!(r.function_error.is_none(), "{name} failed: {}", String::from_utf8_lossy(&r.payload));
    serde_json::from_slice(&r.payload).expect("JSON result")
}

#[test]
fn environments_share_files_through_access_points_with_their_identity() {
    if skip() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = node().await;
        t.meta.create_fs("shared", &uuid::Uuid::new_v4().to_string()).expect("create fs");
        let writer_ap = access_point(&t.meta, "shared", "/app/data", 1001);
        let reader_ap = access_point(&t.meta, "shared", "/app", 1001);
        let stranger_ap = access_point(&t.meta, "shared", "/app", 1002);
        let arn = t.node.deployment().arn("elasticfilesystem", &format!("access-point/{writer_ap}"));
        // Sandboxes were prepared when the node opened, before any access point was
        // mounted: they must still see the mount (they follow the host's mounts).
        t.node.functions().create_function("writer", settings(vec![(arn, "/mnt/data")]), package()).await.unwrap();
        t.node
            .functions()
            .create_function("reader", settings(vec![(reader_ap.to_string(), "/mnt/app")]), package())
            .await
            .unwrap();
        t.node
            .functions()
            .create_function("stranger", settings(vec![(stranger_ap.to_string(), "/mnt/app")]), package())
            .await
            .unwrap();
        let wrote = invoke(
            &t.node,
            "writer",
            serde_json::json!({"dir": "/mnt/data", "write": "note.txt", "text": "from the writer"}),
        )
        .await;
        assert_eq!(wrote["names"], serde_json::json!(["note.txt"]));
        assert_eq!(wrote["owner"], serde_json::json!([1001, 1001]), "files are created as the access point's identity");
        // Another function, another access point whose root is the parent: it sees
        // the writer's root directory, and what the writer closed.
        let read = invoke(&t.node, "reader", serde_json::json!({"dir": "/mnt/app"})).await;
        assert_eq!(read["names"], serde_json::json!(["data"]));
        // uid 1002 may not read a 750 directory of 1001 (the roots were created
        // 1001:1001 750, intermediate directories too): the access point's identity is
        // enforced, not the sandbox's uid.
        let denied = t
            .node
            .functions()
            .invoke("stranger", InvokeRequest::sync(serde_json::json!({"dir": "/mnt/app"}).to_string()))
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&denied.payload).contains("Permission denied"), "{denied:?}");
        // Warm again: the same mount serves the next invocation.
        let again = invoke(&t.node, "writer", serde_json::json!({"dir": "/mnt/data"})).await;
        assert_eq!(again["texts"], serde_json::json!(["from the writer"]));
        t.node.shutdown();
    });
}

#[test]
fn bad_access_points_are_refused_and_a_deleted_one_fails_the_invocation() {
    if skip() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let t = node().await;
        let functions = t.node.functions();
        let foreign = "arn:aws:elasticfilesystem:us-east-1:999999999999:access-point/fsap-0123456789abcdef0";
        for source in ["/srv", "fsap-nothex", "fsap-0123456789abcdef0", foreign] {
            let e = functions
                .create_function("f", settings(vec![(source.to_string(), "/mnt/x")]), package())
                .await
                .expect_err(source);
            assert_eq!(e.kind, ErrorKind::InvalidParameterValue, "{source}: {e}");
        }
        t.meta.create_fs("fs", &uuid::Uuid::new_v4().to_string()).unwrap();
        let ap = access_point(&t.meta, "fs", "/x", 1000);
        functions.create_function("f", settings(vec![(ap.to_string(), "/mnt/x")]), package()).await.unwrap();
        t.meta.delete_access_point(&ap).unwrap();
        let e = functions
            .invoke("f", InvokeRequest::sync(r#"{"dir": "/mnt/x"}"#))
            .await
            .expect_err("the access point is gone");
        assert_eq!(e.kind, ErrorKind::EfsMountFailure, "{e}");
        t.node.shutdown();
    });
}
