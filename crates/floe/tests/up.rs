//! `floe up` as a newcomer meets it: the banner, the profile the aws CLI then uses,
//! one node per data directory, one-line errors for bad configuration and busy
//! ports, and a stop that leaves nothing behind.

mod common;

use common::up::Up;
use common::Floe;

/// Cgroups of sandboxes made by process `pid` (named `env-<pid>-<n>`).
fn sandbox_cgroups(pid: u32) -> usize {
    let prefix = format!("env-{pid}-");
    ["/sys/fs/cgroup/memory/floe", "/sys/fs/cgroup/pids/floe", "/sys/fs/cgroup/floe"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count()
}

/// Processes whose parent is `pid`.
fn children(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flat_map(|d| d.flatten())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // The parent pid is the second field after the parenthesized command.
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse().ok())
                == Some(pid)
        })
        .count()
}

fn mounts_under(dir: &std::path::Path) -> usize {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.to_string_lossy().into_owned();
    table.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&dir)).count()
}

#[test]
fn up_serves_the_profile_it_writes_and_stops_clean() {
    require_up!();
    let floe = Floe::new();
    let home = tempfile::tempdir().expect("home");
    let up = Up::start(&floe, home.path(), &["--region", "eu-west-3"]);
    assert!(up.banner.contains("aws --profile floe"), "the banner says how to use it:\n{}", up.banner);
    assert!(home.path().join(".aws/credentials").is_file() && home.path().join(".aws/config").is_file());
    let config = std::fs::read_to_string(home.path().join(".aws/config")).unwrap();
    assert!(config.contains(&format!("endpoint_url = {}", up.endpoint)), "{config}");
    let creds = std::fs::metadata(floe.data_dir().join("credentials")).expect("<data>/credentials");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(creds.permissions().mode() & 0o777, 0o600, "credentials are private");

    // The aws CLI works with nothing but the profile.
    let listed = up.aws_json(&["lambda", "list-functions"]);
    assert_eq!(listed["Functions"], serde_json::json!([]));
    let settings = up.aws_json(&["lambda", "get-account-settings"]);
    assert!(settings["AccountLimit"]["ConcurrentExecutions"].as_u64().is_some(), "{settings}");
    // ...and a function that mounts an access point runs, so that stopping has
    // environments and a mount to clean up.
    let made = up.boto3(&format!(
        "{zip}\
fs = efs.create_file_system(CreationToken='t')\n\
ap = efs.create_access_point(FileSystemId=fs['FileSystemId'], PosixUser={{'Uid': 1000, 'Gid': 1000}},\n\
    RootDirectory={{'Path': '/fn', 'CreationInfo': {{'OwnerUid': 1000, 'OwnerGid': 1000, 'Permissions': '700'}}}})\n\
lam.create_function(FunctionName='w', Runtime='python3.11', Role='arn:aws:iam::000000000000:role/r', Handler='app.handler', Code={{'ZipFile': ZIP}},\n\
    FileSystemConfigs=[{{'Arn': ap['AccessPointArn'], 'LocalMountPath': '/mnt/data'}}])\n\
r = lam.invoke(FunctionName='w', Payload=b'{{}}')\n\
out(json.loads(r['Payload'].read()))\n",
        zip = common::up::python_zip_script(&[(
            "app.py",
            "import os\ndef handler(e, c):\n    open('/mnt/data/x', 'w').write('1')\n    return {'uid': os.getuid(), 'files': os.listdir('/mnt/data')}\n"
        )])
    ));
    assert_eq!(made["files"], serde_json::json!(["x"]), "{made}");

    // One node per data directory.
    let second = Up::try_start(&floe, home.path(), &[]);
    let (_, err) = second.err().expect("a second node on the same data directory is refused");
    assert!(err.contains("already running"), "{err}");

    let pid = up.pid();
    assert!(sandbox_cgroups(pid) > 0, "the node has sandboxes");
    let mnt = floe.data_dir().join("node/mnt").canonicalize().expect("mount dir");
    assert!(mounts_under(&mnt) >= 2, "the node's mounts: its shared directory and the access point");
    up.stop();
    assert_eq!(sandbox_cgroups(pid), 0, "no sandbox cgroup left after SIGTERM");
    assert_eq!(children(pid), 0, "no process left");
    assert_eq!(mounts_under(&mnt), 0, "no mount left under {}", mnt.display());
    assert!(!floe.data_dir().join("run/node.json").exists(), "the node unpublished itself");
}

#[test]
fn bad_configuration_and_busy_ports_fail_in_one_line() {
    require_up!();
    let floe = Floe::new();
    let home = tempfile::tempdir().expect("home");
    std::fs::write(floe.data_dir().join("floe.toml"), "listen = \"127.0.0.1:0\"\nlisen = 3\n").unwrap();
    let run = floe.run(["up"]);
    let line = run.expect_error_line();
    assert!(line.contains("lisen") && line.contains("floe.toml"), "{line}");
    std::fs::write(floe.data_dir().join("floe.toml"), "account_id = \"12\"\n").unwrap();
    assert!(floe.run(["up"]).expect_error_line().contains("12 digits"));
    std::fs::remove_file(floe.data_dir().join("floe.toml")).unwrap();

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let run = floe.run(["up", "--listen", &addr]);
    let line = run.expect_error_line();
    assert!(line.contains(&addr) && line.contains("--listen"), "{line}");
    let run = floe.run(["up", "--listen", "127.0.0.1:0", "--trigger-listen", &addr]);
    assert!(run.expect_error_line().contains("--trigger-listen"));
    drop(home);
}
