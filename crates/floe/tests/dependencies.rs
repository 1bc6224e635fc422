//! Dependencies installed once into the shared file system and imported by
//! functions: a host mounts an access point with `floe mount`, pip installs a real
//! package tree (requests and its dependencies, one of them compiled) into it, and
//! a function whose `PYTHONPATH` points into its mount imports it in its init phase.

mod common;

use common::up::{clients_dir, python_zip_script, Up};
use common::Floe;

const HANDLER: &str = r#"import requests, charset_normalizer

def handler(event, context):
    return {'requests': requests.__version__, 'file': requests.__file__,
            'charset_normalizer': charset_normalizer.__file__}
"#;

#[test]
fn functions_import_packages_installed_through_a_host_mount() {
    require_up!();
    let floe = Floe::new();
    let home = tempfile::tempdir().expect("home");
    let up = Up::start(&floe, home.path(), &[]);
    let made = up.boto3(
        "fs = efs.create_file_system(CreationToken='deps')\n\
         ap = efs.create_access_point(FileSystemId=fs['FileSystemId'], PosixUser={'Uid': 1001, 'Gid': 1001},\n\
             RootDirectory={'Path': '/deps', 'CreationInfo': {'OwnerUid': 1001, 'OwnerGid': 1001, 'Permissions': '755'}})\n\
         out({'fs': fs['FileSystemId'], 'ap': ap['AccessPointId'], 'arn': ap['AccessPointArn']})",
    );
    let fs_id = made["fs"].as_str().expect("fs");
    let ap_id = made["ap"].as_str().expect("ap");
    let ap_arn = made["arn"].as_str().expect("arn");

    // The host installs through the access point, as its identity.
    let host = floe.mount_with(fs_id, &["--access-point", ap_id]);
    let pip = std::process::Command::new(clients_dir().join("venv/bin/pip"))
        .args(["install", "-q", "--no-index", "--disable-pip-version-check", "--find-links"])
        .arg(clients_dir().join("wheels"))
        .arg("--target")
        .arg(host.join("lib"))
        .arg("requests==2.32.3")
        .output()
        .expect("run pip");
    assert!(pip.status.success(), "pip install: {}", String::from_utf8_lossy(&pip.stderr));
    assert!(host.join("lib/requests/__init__.py").is_file());
    host.unmount();

    let script = format!(
        "{zip}\
lam.create_function(FunctionName='deps', Runtime='python3.11', Role='arn:aws:iam::000000000000:role/r',\n\
    Handler='app.handler', Code={{'ZipFile': ZIP}}, Timeout=60,\n\
    Environment={{'Variables': {{'PYTHONPATH': '/mnt/deps/lib'}}}},\n\
    FileSystemConfigs=[{{'Arn': '{ap_arn}', 'LocalMountPath': '/mnt/deps'}}])\n\
r = lam.invoke(FunctionName='deps', Payload=b'{{}}')\n\
out({{'error': r.get('FunctionError'), 'result': json.loads(r['Payload'].read())}})\n",
        zip = python_zip_script(&[("app.py", HANDLER)])
    );
    let got = up.boto3(&script);
    assert!(got["error"].is_null(), "the function failed: {got}");
    assert_eq!(got["result"]["requests"], "2.32.3");
    assert_eq!(got["result"]["file"], "/mnt/deps/lib/requests/__init__.py");
    assert!(
        got["result"]["charset_normalizer"].as_str().unwrap_or("").starts_with("/mnt/deps/lib/"),
        "the compiled dependency comes from the mount too: {got}"
    );
    up.stop();
}
