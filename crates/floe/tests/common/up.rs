//! `floe up` as a user runs it: the binary on a data directory of its own, with a
//! HOME of its own so that the `floe` profile it writes is the one the real aws CLI
//! and boto3 (from `scripts/aws-clients`) then use.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Floe, FLOE};

/// Where `scripts/aws-clients` installed the clients.
pub fn clients_dir() -> PathBuf {
    std::env::var_os("FLOE_AWS_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/aws-clients"))
}

/// Why `floe up` with functions cannot be tested here, if it cannot.
pub fn unavailable() -> Option<String> {
    if let Err(reason) = super::fuse_available() {
        return Some(reason);
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("functions need root for their sandboxes".into());
    }
    if !clients_dir().join("venv/bin/aws").is_file() {
        return Some(format!("no AWS clients in {} (run scripts/aws-clients)", clients_dir().display()));
    }
    None
}

/// Returns from the test when `floe up` cannot run here (panics under CI).
#[macro_export]
macro_rules! require_up {
    () => {
        if let Some(reason) = $crate::common::up::unavailable() {
            $crate::common::skip($crate::function_name!(), &reason);
            return;
        }
    };
}

/// A running `floe up`.
pub struct Up {
    child: Option<Child>,
    pub endpoint: String,
    pub triggers: String,
    pub banner: String,
    pub home: PathBuf,
    data_dir: PathBuf,
}

/// The value after `label` on a banner line.
fn banner_value(banner: &str, label: &str) -> Option<String> {
    banner
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

impl Up {
    /// Starts `floe up` on `floe`'s data directory with its HOME in `home`, on
    /// ports of the kernel's choosing, and waits for its banner.
    pub fn start(floe: &Floe, home: &Path, extra: &[&str]) -> Up {
        Up::try_start(floe, home, extra).unwrap_or_else(|(out, err)| panic!("floe up failed:\n{out}\n{err}"))
    }

    /// Like [`Up::start`]; on failure, the output and error text.
    pub fn try_start(floe: &Floe, home: &Path, extra: &[&str]) -> Result<Up, (String, String)> {
        std::fs::create_dir_all(home).expect("create HOME");
        let mut cmd = Command::new(FLOE);
        floe.backend_env(&mut cmd);
        cmd.arg("--data-dir").arg(floe.data_dir()).arg("up");
        if !extra.iter().any(|a| a.starts_with("--listen")) {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        if !extra.iter().any(|a| a.starts_with("--trigger-listen")) {
            cmd.args(["--trigger-listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(extra)
            .env("HOME", home)
            .env_remove("AWS_CONFIG_FILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("FLOE_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start floe up");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let err_lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let err_reader = {
            let err_lines = err_lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[floe up] {line}");
                    err_lines.lock().unwrap().push_str(&(line + "\n"));
                }
            })
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut banner = String::new();
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                banner.push_str(&line);
                banner.push('\n');
                if !sent && line.starts_with("stop with") {
                    let _ = tx.send(Some(banner.clone()));
                    sent = true;
                }
            }
            if !sent {
                let _ = tx.send(None);
            }
        });
        let banner = match rx.recv_timeout(super::DEADLINE) {
            Ok(Some(b)) => b,
            other => {
                // Its output ended: it is exiting on its own; else it hangs.
                if other.is_err() {
                    let _ = child.kill();
                }
                let _ = child.wait();
                let _ = err_reader.join();
                let err = err_lines.lock().unwrap().clone();
                return Err((format!("{other:?}"), err));
            }
        };
        let endpoint = banner_value(&banner, "API").expect("API line in the banner");
        let triggers = banner_value(&banner, "triggers").expect("triggers line in the banner");
        Ok(Up {
            child: Some(child),
            endpoint,
            triggers,
            banner,
            home: home.to_path_buf(),
            data_dir: floe.data_dir().to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn client_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("AWS_PROFILE", "floe")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }

    /// Runs a Python script with boto3 on the `floe` profile (the node's endpoint
    /// comes from the profile, as for a user). The prelude defines `lam`, `efs`,
    /// `apigw`, `json`, `base64` and `out(value)`, which prints the script's JSON
    /// result as the last line.
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

    pub fn boto3_output(&self, script: &str) -> Output {
        let prelude = "import json, base64, boto3, botocore\n\
                       from botocore.config import Config\n\
                       _cfg = Config(retries={'max_attempts': 1, 'mode': 'standard'}, read_timeout=300)\n\
                       lam = boto3.client('lambda', config=_cfg)\n\
                       efs = boto3.client('efs', config=_cfg)\n\
                       apigw = boto3.client('apigatewayv2', config=_cfg)\n\
                       def out(v):\n    print(json.dumps(v, default=str))\n";
        let mut cmd = Command::new(clients_dir().join("venv/bin/python"));
        self.client_env(&mut cmd);
        cmd.arg("-c").arg(format!("{prelude}{script}"));
        cmd.output().expect("run python")
    }

    /// Runs a Python script (no prelude) with the clients' interpreter.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(clients_dir().join("venv/bin/python"));
        self.client_env(&mut cmd);
        cmd.arg("-c").arg(script).args(args);
        cmd.output().expect("run python")
    }

    /// Runs the aws CLI on the `floe` profile; the output must be a success, whose
    /// stdout is parsed as JSON (null when empty).
    pub fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("aws {args:?} printed {text:?}, not JSON: {e}"))
    }

    pub fn aws(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(clients_dir().join("venv/bin/aws"));
        self.client_env(&mut cmd);
        cmd.args(args).args(["--output", "json"]);
        cmd.output().expect("run aws")
    }

    /// `curl -s` against the trigger listener: (status, body).
    pub fn curl(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-X", method, "-w", "\n%{http_code}"]);
        if let Some(b) = body {
            cmd.args(["--data-binary", b, "-H", "content-type: text/plain"]);
        }
        cmd.arg(format!("{}{path}", self.triggers));
        let out = cmd.output().expect("run curl (Debian package curl)");
        assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').expect("status line");
        (code.trim().parse().expect("status code"), body.to_string())
    }

    /// The node's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// SIGTERM, then waits for a clean exit (status 0).
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM).expect("SIGTERM floe up");
        let deadline = Instant::now() + super::DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("wait for floe up") {
                assert!(status.success(), "floe up exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "floe up did not stop within {:?} of SIGTERM", super::DEADLINE);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // A node killed without its stop leaves its mounts (the shared bind of
            // node/mnt and the access points' FUSE mounts, now dead): a node started
            // again on the directory clears them, a test that ends here must.
            let _ = floe_node::detach_mounts_below(&self.data_dir);
        }
    }
}

/// A zip of `files` (name, content), for `Code.ZipFile`, made with the clients'
/// Python (its zipfile module), base64 for embedding in scripts.
pub fn python_zip_script(files: &[(&str, &str)]) -> String {
    let mut s = String::from("import io, zipfile\n_buf = io.BytesIO()\nwith zipfile.ZipFile(_buf, 'w') as _z:\n");
    for (name, content) in files {
        s.push_str(&format!("    _z.writestr({name:?}, {content:?})\n"));
    }
    s.push_str("ZIP = _buf.getvalue()\n");
    s
}
