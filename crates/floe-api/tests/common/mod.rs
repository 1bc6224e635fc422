//! A node and its API on loopback ports, as `floe up` serves them — real SQLite,
//! real local object storage, real sandboxes, real HTTP — driven with the real AWS
//! clients (boto3 and the aws CLI from `scripts/aws-clients`). Without root or the
//! clients, tests say why they are skipped (and fail under CI=true, where they must
//! run).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use floe_api::{ApiState, Credential};
use floe_meta::{Meta, SqliteStore};
use floe_node::{Deployment, Node, NodeSettings};

pub const ACCESS_KEY: &str = "AKIAFLOETESTKEY00001";
pub const SECRET_KEY: &str = "floe-test-secret-key/0123456789abcdefABCD";
pub const REGION: &str = "eu-west-3";
pub const ACCOUNT: &str = "123456789012";

pub struct TestNode {
    pub node: Node,
    /// `http://127.0.0.1:PORT` of the AWS API.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT` of the HTTP trigger listener.
    pub triggers: String,
    pub dir: tempfile::TempDir,
    pub clients: PathBuf,
    runtime: Option<tokio::runtime::Runtime>,
}

fn skip(reason: String) -> Option<TestNode> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true but {reason}");
    }
    eprintln!("skipped: {reason}");
    None
}

/// The directory of the AWS clients: `$FLOE_AWS_CLIENTS`, else `<repo>/target/aws-clients`.
pub fn clients_dir() -> PathBuf {
    std::env::var_os("FLOE_AWS_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/aws-clients"))
}

impl TestNode {
    /// Starts a node and both listeners, or says why it cannot.
    pub fn start() -> Option<TestNode> {
        if !nix::unistd::geteuid().is_root() {
            return skip("the node's functions need root for their sandboxes".into());
        }
        let clients = clients_dir();
        if !clients.join("venv/bin/aws").is_file() {
            return skip(format!("no AWS clients in {} (run scripts/aws-clients)", clients.display()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().expect("data dir");
        let (node, endpoint, triggers) = runtime.block_on(async {
            let meta = Meta::new(SqliteStore::open(&dir.path().join("meta.db")).expect("sqlite"));
            std::fs::create_dir_all(dir.path().join("objects")).unwrap();
            let objects =
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path().join("objects")).unwrap());
            let deployment = Deployment { region: REGION.into(), account_id: ACCOUNT.into() };
            let mut settings = NodeSettings::new(dir.path().join("node"), deployment);
            settings.functions.invoker.reap_interval = std::time::Duration::from_millis(100);
            let node = Node::open(meta, objects, settings).await.expect("open node");
            let state = ApiState {
                node: node.clone(),
                credentials: Arc::new(vec![Credential {
                    access_key_id: ACCESS_KEY.into(),
                    secret_access_key: SECRET_KEY.into(),
                }]),
            };
            let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let trig = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint = format!("http://{}", api.local_addr().unwrap());
            let triggers = format!("http://{}", trig.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(api, floe_api::api_router(state)).await });
            let trigger_node = node.clone();
            let trigger_service =
                floe_api::trigger_router(trigger_node).into_make_service_with_connect_info::<std::net::SocketAddr>();
            tokio::spawn(async move { axum::serve(trig, trigger_service).await });
            (node, endpoint, triggers)
        });
        Some(TestNode { node, endpoint, triggers, dir, clients, runtime: Some(runtime) })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.as_ref().expect("runtime").block_on(f)
    }

    fn client_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }

    /// Runs a Python script with boto3. The prelude defines `lam`, `efs` and `apigw`
    /// clients on this node's endpoint, `json`, `base64`, and `out(value)`, which
    /// prints a value as the script's JSON result (the last line of stdout).
    pub fn boto3(&self, script: &str) -> serde_json::Value {
        let output = self.boto3_output(script);
        assert!(
            output.status.success(),
            "boto3 script failed:\n{script}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout.lines().last().unwrap_or("null");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("script output {last:?} is not JSON: {e}"))
    }

    /// [`TestNode::boto3`] without checking the exit status.
    pub fn boto3_output(&self, script: &str) -> Output {
        let prelude = format!(
            "import json, base64, boto3, botocore\n\
             from botocore.config import Config\n\
             _cfg = Config(retries={{'max_attempts': 1, 'mode': 'standard'}}, read_timeout=120)\n\
             lam = boto3.client('lambda', endpoint_url='{e}', config=_cfg)\n\
             efs = boto3.client('efs', endpoint_url='{e}', config=_cfg)\n\
             apigw = boto3.client('apigatewayv2', endpoint_url='{e}', config=_cfg)\n\
             def out(v):\n    print(json.dumps(v, default=str))\n",
            e = self.endpoint
        );
        let mut cmd = Command::new(self.clients.join("venv/bin/python"));
        self.client_env(&mut cmd);
        cmd.arg("-c").arg(format!("{prelude}{script}"));
        cmd.output().expect("run python")
    }

    /// Runs the aws CLI against this node (`--endpoint-url` added).
    pub fn aws(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(self.clients.join("venv/bin/aws"));
        self.client_env(&mut cmd);
        cmd.arg("--endpoint-url").arg(&self.endpoint).args(args);
        cmd.output().expect("run aws")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.node.shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}
