//! The file systems service with EFS's semantics, on a real SQLite metadata engine
//! and local object storage: creation tokens, ids and names, access points and
//! their client tokens, the refusals of deleting what is in use (by access points,
//! by a function, by a mounted client), policies and tags, and SizeInBytes
//! metered after writing through a real FUSE mount.

use std::sync::Arc;
use std::time::Duration;

use floe_meta::{FsPolicy, Meta, SqliteStore};
use floe_node::filesystems::{
    AccessPointQuery, DeleteScope, EfsError, FileSystemQuery, NewAccessPoint, NewFileSystem, PerformanceMode,
    PosixUser, RootDirectory, Tag, Throughput,
};
use floe_node::{Deployment, FileSystems, Node, NodeSettings};
use object_store::local::LocalFileSystem;

struct Env {
    dir: tempfile::TempDir,
    meta: Meta,
    objects: Arc<LocalFileSystem>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Meta::new(SqliteStore::open(&dir.path().join("meta.db")).expect("sqlite"));
        std::fs::create_dir_all(dir.path().join("objects")).expect("objects dir");
        let objects = Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("objects")).expect("objects"));
        Env { dir, meta, objects }
    }

    /// The service as the CLI has it: no functions, no mounts of its own.
    fn service(&self) -> FileSystems {
        FileSystems::new(self.meta.clone(), self.objects.clone(), None, None, deployment())
    }
}

fn deployment() -> Deployment {
    Deployment { region: "eu-west-3".into(), account_id: "123456789012".into() }
}

fn through_api(token: &str) -> NewFileSystem {
    NewFileSystem {
        creation_token: token.to_string(),
        name: None,
        performance_mode: PerformanceMode::GeneralPurpose,
        throughput: Throughput::Bursting,
        encrypted: false,
        tags: Vec::new(),
    }
}

fn access_point(fs: &str, token: Option<&str>, path: &str) -> NewAccessPoint {
    NewAccessPoint {
        client_token: token.map(str::to_string),
        file_system_id: fs.to_string(),
        posix_user: Some(PosixUser { uid: 1001, gid: 1001, secondary_gids: vec![2000] }),
        root_directory: RootDirectory { path: Some(path.to_string()), creation: Some((1001, 1001, "750".into())) },
        tags: vec![Tag::new("Name", "messages")],
    }
}

#[track_caller]
fn bad_request(result: Result<impl std::fmt::Debug, EfsError>, says: &str) {
    match result {
        Err(EfsError::BadRequest(m)) => assert!(m.contains(says), "{m:?} should say {says:?}"),
        other => panic!("expected a BadRequest saying {says:?}, got {other:?}"),
    }
}

#[test]
fn creation_tokens_ids_and_names() {
    let env = Env::new();
    let fss = env.service();
    let created = fss.create_file_system(through_api("token-1")).expect("create");
    let id = created.id.to_string();
    assert!(id.starts_with("fs-") && id.len() == 20, "{id}");
    assert_eq!(created.name, id, "a file system made through the API is named by its id");
    assert_eq!(created.arn, format!("arn:aws:elasticfilesystem:eu-west-3:123456789012:file-system/{id}"));
    assert_eq!(created.name_tag(), None);
    // The same token again: the file system it made.
    match fss.create_file_system(through_api("token-1")) {
        Err(EfsError::FileSystemAlreadyExists { id: existing, .. }) => assert_eq!(existing.to_string(), id),
        other => panic!("expected FileSystemAlreadyExists, got {other:?}"),
    }
    assert_eq!(fss.list_file_systems().unwrap().len(), 1);

    // The CLI's: its own name, the derived id, a Name tag.
    let demo = fss.create_file_system(NewFileSystem::named("demo")).expect("create demo");
    assert_eq!(demo.name, "demo");
    assert_eq!(demo.name_tag(), Some("demo"));
    assert_eq!(demo.id, floe_node::filesystems::FsId::from_uuid(&demo.uuid));
    assert_eq!(fss.id_of_name("demo").unwrap(), demo.id);
    assert!(matches!(
        fss.create_file_system(NewFileSystem::named("demo")),
        Err(EfsError::FileSystemAlreadyExists { .. })
    ));
    // One made by floe-meta alone (before these records) reads as the CLI's.
    let legacy = env.meta.create_fs("legacy", "0badc0de-0000-4000-8000-000000000001").expect("meta create");
    assert_eq!(fss.id_of_name(&legacy.name).unwrap().as_str(), "fs-0badc0de000040008", "the UUID's first 17 digits");
    let legacy = fss.file_system("fs-0badc0de000040008").expect("legacy");
    assert_eq!((legacy.creation_token.as_str(), legacy.name_tag()), ("legacy", Some("legacy")));
    assert!(matches!(fss.create_file_system(through_api("legacy")), Err(EfsError::FileSystemAlreadyExists { .. })));

    // By id, by ARN, by creation token, paginated.
    assert_eq!(fss.file_system(&created.arn).unwrap().id, created.id);
    let by_token = fss
        .describe_file_systems(&FileSystemQuery { creation_token: Some("demo".into()), ..Default::default() })
        .unwrap();
    assert_eq!(by_token.items.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["demo"]);
    let unknown = fss
        .describe_file_systems(&FileSystemQuery { creation_token: Some("nobody".into()), ..Default::default() })
        .unwrap();
    assert!(unknown.items.is_empty());
    for n in 0..3 {
        fss.create_file_system(through_api(&format!("more-{n}"))).unwrap();
    }
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page =
            fss.describe_file_systems(&FileSystemQuery { marker, max_items: Some(2), ..Default::default() }).unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|d| d.id));
        marker = page.next;
        if marker.is_none() {
            break;
        }
    }
    let all: Vec<_> = fss.list_file_systems().unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(seen, all);
    assert_eq!(seen.len(), 6);

    assert!(matches!(fss.file_system("fs-00000000000000000"), Err(EfsError::FileSystemNotFound(_))));
    bad_request(fss.file_system("demo"), "FileSystemId");
    bad_request(fss.describe_file_systems(&FileSystemQuery { max_items: Some(0), ..Default::default() }), "MaxItems");
    bad_request(fss.create_file_system(through_api("")), "CreationToken");
    bad_request(fss.create_file_system(through_api(&"t".repeat(65))), "CreationToken");
    bad_request(fss.create_file_system(NewFileSystem::named("has space")), "name");
}

#[test]
fn throughput_modes() {
    let env = Env::new();
    let fss = env.service();
    bad_request(Throughput::new(Some("provisioned"), None), "ProvisionedThroughputInMibps");
    bad_request(Throughput::new(Some("provisioned"), Some(0.5)), "ProvisionedThroughputInMibps");
    bad_request(Throughput::new(Some("provisioned"), Some(3415.0)), "ProvisionedThroughputInMibps");
    bad_request(Throughput::new(Some("bursting"), Some(10.0)), "ProvisionedThroughputInMibps");
    bad_request(Throughput::new(Some("turbo"), None), "ThroughputMode");
    bad_request(PerformanceMode::parse("fast"), "PerformanceMode");
    let mut new = through_api("tp");
    new.throughput = Throughput::new(Some("provisioned"), Some(128.0)).unwrap();
    new.performance_mode = PerformanceMode::MaxIo;
    new.encrypted = true;
    let fs = fss.create_file_system(new).unwrap();
    assert_eq!(fs.throughput, Throughput::Provisioned { mibps: 128.0 });
    assert_eq!((fs.performance_mode, fs.encrypted), (PerformanceMode::MaxIo, true));
    let id = fs.id.to_string();
    assert_eq!(
        fss.update_file_system(&id, None, Some(256.0)).unwrap().throughput,
        Throughput::Provisioned { mibps: 256.0 }
    );
    assert_eq!(fss.update_file_system(&id, Some("elastic"), None).unwrap().throughput, Throughput::Elastic);
    bad_request(fss.update_file_system(&id, None, Some(64.0)), "ProvisionedThroughputInMibps");
    assert_eq!(fss.file_system(&id).unwrap().throughput, Throughput::Elastic, "a refused update changes nothing");
    assert!(matches!(
        fss.update_file_system("fs-00000000000000000", Some("elastic"), None),
        Err(EfsError::FileSystemNotFound(_))
    ));
}

#[test]
fn access_points_client_tokens_and_deleting_what_remains() {
    let env = Env::new();
    let fss = env.service();
    let fs = fss.create_file_system(through_api("aps")).unwrap();
    let id = fs.id.to_string();
    let ap = fss.create_access_point(access_point(&id, Some("ct-1"), "/message")).expect("create access point");
    assert!(ap.id.as_str().starts_with("fsap-"));
    assert_eq!(ap.arn, format!("arn:aws:elasticfilesystem:eu-west-3:123456789012:access-point/{}", ap.id));
    assert_eq!((ap.posix_user.uid, ap.posix_user.gid, ap.posix_user.groups.clone()), (1001, 1001, vec![2000]));
    assert_eq!(ap.path, "/message");
    let creation = ap.creation.expect("creation info");
    assert_eq!((creation.uid, creation.gid, creation.mode), (1001, 1001, 0o750));
    assert_eq!((ap.name(), ap.client_token.as_str(), &ap.file_system_id), (Some("messages"), "ct-1", &fs.id));
    match fss.create_access_point(access_point(&id, Some("ct-1"), "/other")) {
        Err(EfsError::AccessPointAlreadyExists { id: existing, .. }) => assert_eq!(existing, ap.id),
        other => panic!("expected AccessPointAlreadyExists, got {other:?}"),
    }

    bad_request(fss.create_access_point(access_point(&id, None, "relative")), "RootDirectory.Path");
    bad_request(fss.create_access_point(access_point(&id, None, "/a/../b")), "RootDirectory.Path");
    bad_request(fss.create_access_point(access_point(&id, None, "/a/b/c/d/e")), "RootDirectory.Path");
    let mut no_user = access_point(&id, None, "/x");
    no_user.posix_user = None;
    bad_request(fss.create_access_point(no_user), "PosixUser");
    let mut huge_uid = access_point(&id, None, "/x");
    huge_uid.posix_user = Some(PosixUser { uid: 1 << 32, gid: 0, secondary_gids: vec![] });
    bad_request(fss.create_access_point(huge_uid), "PosixUser.Uid");
    let mut bad_mode = access_point(&id, None, "/x");
    bad_mode.root_directory.creation = Some((1, 1, "0999".into()));
    bad_request(fss.create_access_point(bad_mode), "Permissions");
    bad_request(fss.create_access_point(access_point("nonsense", None, "/x")), "FileSystemId");
    assert!(matches!(
        fss.create_access_point(access_point("fs-00000000000000000", None, "/x")),
        Err(EfsError::FileSystemNotFound(_))
    ));

    let second = fss.create_access_point(access_point(&id, None, "/")).unwrap();
    assert_eq!(second.client_token, second.id.to_string(), "without a token, the id stands for it");
    let other_fs = fss.create_file_system(through_api("other")).unwrap();
    fss.create_access_point(access_point(other_fs.id.as_str(), None, "/o")).unwrap();
    let of_fs = fss
        .describe_access_points(&AccessPointQuery { file_system_id: Some(id.clone()), ..Default::default() })
        .unwrap();
    let mut want = vec![ap.id.clone(), second.id.clone()];
    want.sort();
    assert_eq!(of_fs.items.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), want);
    let page = fss.describe_access_points(&AccessPointQuery { max_results: Some(2), ..Default::default() }).unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = fss
        .describe_access_points(&AccessPointQuery { max_results: Some(2), next_token: page.next, ..Default::default() })
        .unwrap();
    assert_eq!((rest.items.len(), rest.next), (1, None));
    assert!(matches!(
        fss.describe_access_points(&AccessPointQuery {
            access_point_id: Some("fsap-00000000000000000".into()),
            ..Default::default()
        }),
        Err(EfsError::AccessPointNotFound(_))
    ));

    // EFS refuses while access points remain; the CLI's scope takes them along.
    match fss.delete_file_system(&id, DeleteScope::Empty) {
        Err(EfsError::FileSystemInUse(m)) => assert!(m.contains(ap.id.as_str()) && m.contains("access point"), "{m}"),
        other => panic!("expected FileSystemInUse, got {other:?}"),
    }
    fss.delete_access_point(ap.id.as_str()).expect("delete access point");
    assert!(matches!(fss.delete_access_point(ap.id.as_str()), Err(EfsError::AccessPointNotFound(_))));
    // Its client token is free again.
    let again = fss.create_access_point(access_point(&id, Some("ct-1"), "/message")).expect("token reused");
    fss.delete_access_point(again.id.as_str()).unwrap();
    fss.delete_access_point(&second.arn).expect("delete by ARN");
    fss.delete_file_system(&id, DeleteScope::Empty).expect("delete the emptied file system");
    assert!(matches!(fss.file_system(&id), Err(EfsError::FileSystemNotFound(_))));
    assert!(matches!(fss.delete_file_system(&id, DeleteScope::Empty), Err(EfsError::FileSystemNotFound(_))));
    // Its creation token is free again too.
    fss.create_file_system(through_api("aps")).expect("token reused after delete");

    fss.delete_file_system(other_fs.id.as_str(), DeleteScope::WithAccessPoints).expect("delete with access points");
    assert!(fss.describe_access_points(&AccessPointQuery::default()).unwrap().items.is_empty());
    assert!(env.meta.records("efs-access-point").unwrap().is_empty(), "access point records go with them");
}

#[test]
fn policies_become_what_clients_enforce() {
    let env = Env::new();
    let fss = env.service();
    let fs = fss.create_file_system(through_api("pol")).unwrap();
    let id = fs.id.to_string();
    let info = env.meta.fs_by_name(&fs.name).unwrap();
    assert!(matches!(fss.describe_file_system_policy(&id), Err(EfsError::PolicyNotFound(_))));
    let read_only = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"ro","Effect":"Allow","Principal":{{"AWS":"*"}},
            "Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientRootAccess"],"Resource":"{}"}}]}}"#,
        fs.arn
    );
    let put = fss.put_file_system_policy(&id, &read_only).expect("put");
    assert_eq!(put.policy, read_only);
    assert_eq!(env.meta.policy(info.id).unwrap(), FsPolicy { read_only: true, root_squash: false });
    assert_eq!(fss.describe_file_system_policy(&id).unwrap().policy, read_only, "the document as given");

    let refused = |doc: &str, says: &str| match fss.put_file_system_policy(&id, doc) {
        Err(EfsError::InvalidPolicy(m)) => assert!(m.contains(says), "{m:?} should say {says:?}"),
        other => panic!("{doc}: expected InvalidPolicy, got {other:?}"),
    };
    refused("{", "not valid JSON");
    refused(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#,
        "conditions",
    );
    refused(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:DeleteFileSystem"}]}"#,
        "DeleteFileSystem",
    );
    assert_eq!(fss.describe_file_system_policy(&id).unwrap().policy, read_only, "a refused policy changes nothing");
    assert!(env.meta.policy(info.id).unwrap().read_only);

    fss.delete_file_system_policy(&id).expect("delete");
    assert_eq!(env.meta.policy(info.id).unwrap(), FsPolicy::default());
    assert!(matches!(fss.describe_file_system_policy(&id), Err(EfsError::PolicyNotFound(_))));
    fss.delete_file_system_policy(&id).expect("deleting no policy is no error");

    // Set from the CLI: the document says the same.
    let squash = FsPolicy { read_only: false, root_squash: true };
    fss.set_client_policy(&id, squash).unwrap();
    assert_eq!(fss.client_policy(&id).unwrap(), squash);
    let doc = fss.describe_file_system_policy(&id).unwrap().policy;
    assert_eq!(floe_node::filesystems::derive_policy(&doc, &fs.arn), Ok(squash));
    fss.set_client_policy(&id, FsPolicy::default()).unwrap();
    assert!(matches!(fss.describe_file_system_policy(&id), Err(EfsError::PolicyNotFound(_))));
    assert!(matches!(
        fss.put_file_system_policy("fs-00000000000000000", &read_only),
        Err(EfsError::FileSystemNotFound(_))
    ));
}

#[test]
fn tags_of_file_systems_and_access_points() {
    let env = Env::new();
    let fss = env.service();
    let mut new = through_api("tagged");
    new.tags = vec![Tag::new("Name", "data"), Tag::new("team", "ml")];
    let fs = fss.create_file_system(new).unwrap();
    let id = fs.id.to_string();
    assert_eq!(fs.name_tag(), Some("data"));
    fss.tag_resource(&id, vec![Tag::new("team", "infra"), Tag::new("cost", "42")]).unwrap();
    let tags = fss.list_tags_for_resource(&id, None, None).unwrap();
    assert_eq!(tags.items, vec![Tag::new("Name", "data"), Tag::new("team", "infra"), Tag::new("cost", "42")]);
    let first = fss.list_tags_for_resource(&fs.arn, Some(2), None).unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = fss.list_tags_for_resource(&id, Some(2), first.next.as_deref()).unwrap();
    assert_eq!((rest.items, rest.next), (vec![Tag::new("cost", "42")], None));
    bad_request(fss.list_tags_for_resource(&id, None, Some("garbage")), "NextToken");
    fss.untag_resource(&id, &["team".to_string(), "absent".to_string()]).unwrap();
    assert_eq!(fss.file_system(&id).unwrap().tags, vec![Tag::new("Name", "data"), Tag::new("cost", "42")]);
    fss.untag_resource(&id, &["Name".to_string()]).unwrap();
    assert_eq!(fss.file_system(&id).unwrap().name_tag(), None);

    bad_request(fss.tag_resource(&id, vec![Tag::new("aws:reserved", "x")]), "aws:");
    bad_request(fss.tag_resource(&id, vec![Tag::new("k".repeat(129), "x")]), "1 to 128");
    bad_request(fss.tag_resource(&id, vec![Tag::new("k", "v".repeat(257))]), "256");
    bad_request(fss.tag_resource(&id, vec![]), "at least one");
    bad_request(fss.untag_resource(&id, &[]), "TagKeys");
    let fifty: Vec<Tag> = (0..49).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    fss.tag_resource(&id, fifty).expect("50 tags in all");
    bad_request(fss.tag_resource(&id, vec![Tag::new("one-too-many", "v")]), "at most 50");
    assert_eq!(fss.file_system(&id).unwrap().tags.len(), 50, "a refused change changes nothing");

    let ap = fss.create_access_point(access_point(&id, None, "/t")).unwrap();
    fss.tag_resource(ap.id.as_str(), vec![Tag::new("Name", "renamed")]).unwrap();
    assert_eq!(fss.access_point(ap.id.as_str()).unwrap().name(), Some("renamed"));
    fss.untag_resource(&ap.arn, &["Name".to_string()]).unwrap();
    assert!(fss.list_tags_for_resource(ap.id.as_str(), None, None).unwrap().items.is_empty());
    assert!(matches!(
        fss.tag_resource("fsap-00000000000000000", vec![Tag::new("a", "b")]),
        Err(EfsError::AccessPointNotFound(_))
    ));
    assert!(matches!(
        fss.list_tags_for_resource("fs-00000000000000000", None, None),
        Err(EfsError::FileSystemNotFound(_))
    ));
}

/// Why this machine cannot mount or run sandboxes; under CI that fails the test.
fn needs_root() -> Option<String> {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("FUSE mounts with allow_other and sandboxes need root".to_string())
    } else if std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse").is_err() {
        Some("/dev/fuse cannot be opened".to_string())
    } else {
        None
    };
    if let Some(r) = &reason {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "cannot run under CI: {r}");
        eprintln!("skipped: {r}");
    }
    reason
}

#[test]
fn size_is_metered_and_a_mounted_file_system_is_in_use() {
    if needs_root().is_some() {
        return;
    }
    let env = Env::new();
    let fss = env.service();
    let fs = fss.create_file_system(through_api("metered")).unwrap();
    let id = fs.id.to_string();
    let before = fs.size_bytes;

    let client = floe_fs::FileSystem::mount(env.meta.clone(), env.objects.clone(), &fs.name, Default::default())
        .expect("client");
    let dir = env.dir.path().join("mnt");
    std::fs::create_dir_all(&dir).unwrap();
    let options = floe_fuse::MountOptions { allow_other: true, ..Default::default() };
    let session = floe_fuse::spawn_mount(Arc::clone(&client), &dir, &options).expect("mount");
    let data = vec![7u8; 3 << 20];
    std::fs::write(dir.join("blob"), &data).expect("write through FUSE");
    // The write is committed when the file is closed, before write() returns.
    let after = fss.file_system(&id).unwrap().size_bytes;
    assert!(after >= before + data.len() as u64, "SizeInBytes {before} -> {after} after writing 3 MiB");

    match fss.delete_file_system(&id, DeleteScope::Empty) {
        Err(EfsError::FileSystemInUse(m)) => assert!(m.contains("mounted") && m.contains(&id), "{m}"),
        other => panic!("expected FileSystemInUse, got {other:?}"),
    }
    assert_eq!(std::fs::read(dir.join("blob")).expect("still served").len(), data.len());
    drop(session);
    client.close().expect("close the client");
    fss.delete_file_system(&id, DeleteScope::Empty).expect("delete once unmounted");
    let objects = env.dir.path().join("objects").join(&fs.uuid);
    let left = walk(&objects);
    assert_eq!(left, 0, "objects of the deleted file system are left in {}", objects.display());
}

fn walk(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| {
            let e = e.expect("entry");
            if e.file_type().expect("type").is_dir() {
                walk(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn a_function_that_mounts_an_access_point_keeps_its_file_system() {
    if needs_root().is_some() {
        return;
    }
    let env = Env::new();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut settings = NodeSettings::new(env.dir.path().join("node"), deployment());
    settings.functions.prepared_sandboxes = 0;
    let node = runtime.block_on(Node::open(env.meta.clone(), env.objects.clone(), settings)).expect("open node");
    let fss = node.filesystems();
    let fs = fss.create_file_system(through_api("used")).unwrap();
    let id = fs.id.to_string();
    let ap = fss.create_access_point(access_point(&id, None, "/fn")).unwrap();

    let code = env.dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(
        code.join("app.py"),
        "import os\ndef handler(event, context):\n    open('/mnt/data/hello', 'w').write('hi')\n    \
         return [os.stat('/mnt/data/hello').st_uid, sorted(os.listdir('/mnt/data'))]\n",
    )
    .unwrap();
    let package = floe_lambda::code::Package::from_dir(&code, node.functions().limits()).expect("package");
    let function_settings = floe_lambda::Settings {
        runtime: Some("python3.12".into()),
        handler: Some("app.handler".into()),
        mounts: Some(vec![floe_lambda::MountConfig { source: ap.arn.clone(), local_mount_path: "/mnt/data".into() }]),
        ..Default::default()
    };
    runtime.block_on(node.functions().create_function("reader", function_settings, package)).expect("create function");

    // An invocation makes this node mount the access point.
    let response = runtime
        .block_on(node.functions().invoke("reader", floe_lambda::InvokeRequest::sync(&b"{}"[..])))
        .expect("invoke");
    assert_eq!(response.function_error, None, "{}", String::from_utf8_lossy(&response.payload));
    let result: serde_json::Value = serde_json::from_slice(&response.payload).expect("JSON result");
    assert_eq!(result, serde_json::json!([1001, ["hello"]]), "the function wrote as the access point's user");
    assert_eq!(node.mounts().file_systems(), vec![fs.name.clone()]);

    for scope in [DeleteScope::Empty, DeleteScope::WithAccessPoints] {
        match fss.delete_file_system(&id, scope) {
            Err(EfsError::FileSystemInUse(m)) => {
                assert!(m.contains("function reader") && m.contains(ap.id.as_str()), "{m}")
            }
            other => panic!("expected FileSystemInUse, got {other:?}"),
        }
    }
    runtime.block_on(node.functions().delete_function("reader")).expect("delete function");
    assert!(matches!(fss.delete_file_system(&id, DeleteScope::Empty), Err(EfsError::FileSystemInUse(_))));
    fss.delete_access_point(ap.id.as_str()).unwrap();
    // This node's own client of it is idle now: deleting releases it instead of
    // counting it as a mount.
    fss.delete_file_system(&id, DeleteScope::Empty).expect("delete");
    assert!(node.mounts().file_systems().is_empty(), "the node's client of the deleted file system is closed");
    node.shutdown();
    runtime.shutdown_timeout(Duration::from_secs(5));
}
