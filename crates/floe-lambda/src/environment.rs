//! One execution environment: a sandboxed runtime process, its Runtime API server
//! and its log stream. Started cold (the init phase runs before the first
//! invocation), then handed one invocation at a time until it is retired.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_sandbox::{BindMount, Control, Io, SandboxPool, SandboxSpec};
use tokio::sync::{oneshot, watch};

use crate::logs::{LogPump, LogStream};
use crate::model::{Function, Runtime, LATEST};
use crate::runtime_api::{Freezer, InitReport, Invocation, Reply, RuntimeApi};
use crate::time::Utc;

/// Where the runtime's own files (floe's bootstraps) appear inside.
pub const RUNTIME_DIR: &str = "/var/runtime";
/// Lambda's unprivileged user inside environments.
const SANDBOX_UID: u32 = 993;
const SANDBOX_GID: u32 = 990;

/// Writes the environments' `/etc/passwd` and `/etc/group` into `dir`: root and
/// Lambda's `sbx_user1051`. Without an entry for its uid, a runtime's first user
/// lookup (Python's `site` does one) falls through every NSS source.
pub(crate) fn write_etc(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:{SANDBOX_UID}:{SANDBOX_GID}::/home/sbx_user1051:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nsbx_user1051:x:{SANDBOX_GID}:\n");
    for (name, content) in [("passwd", passwd), ("group", group)] {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}
/// Lambda's limit on processes and threads of one environment.
const PIDS_MAX: u64 = 1024;

/// What every environment of a node shares.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Sandboxes, a few prepared ahead of cold starts, with `/tmp` on disk where
    /// the host can (else a tmpfs, charged to the environment's memory).
    pub sandboxes: Arc<SandboxPool>,
    /// An empty directory each sandbox mounts its root on, in its own namespace.
    pub staging_dir: PathBuf,
    /// Host directory with floe's bootstraps, shown at `/var/runtime`.
    pub runtime_dir: PathBuf,
    /// Host directory with the environments' `passwd` and `group` (their user,
    /// `sbx_user1051`, as on Lambda; none of the host's users).
    pub etc_dir: PathBuf,
    /// Host interpreters: Python and Node.
    pub python: PathBuf,
    pub node: PathBuf,
    pub region: String,
    pub account_id: String,
    /// Where log streams go: `<logs_dir>/<function>/<stream>.log`.
    pub logs_dir: PathBuf,
    pub max_payload: usize,
    /// Longest init phase before the environment is given up.
    pub init_timeout: Duration,
    /// Freeze environments while they wait for work.
    pub freeze_idle: bool,
}

impl HostConfig {
    pub fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account_id)
    }
}

/// How a sandbox ended (all `None`/false: not known).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub oom: bool,
}

impl ExitInfo {
    fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit status {code}"),
            (_, Some(9)) => "signal: killed".to_string(),
            (_, Some(sig)) => format!("signal: {sig}"),
            _ => "unknown".to_string(),
        }
    }

    fn error_type(&self) -> &'static str {
        if self.oom {
            "Runtime.OutOfMemory"
        } else {
            "Runtime.ExitError"
        }
    }
}

/// Why an environment did not become ready; the caller of the first invocation
/// gets `body` as the function error.
#[derive(Debug)]
pub(crate) struct InitFailure {
    pub body: Bytes,
    pub init_duration: Duration,
    /// The `INIT_REPORT` line written to the log stream (empty when the
    /// environment failed before it had one).
    pub report: String,
}

/// Lambda's `INIT_REPORT` line; `status`: `None` for a successful init, else
/// e.g. `"Status: timeout"`.
fn init_report(duration: Duration, status: Option<&str>) -> String {
    match status {
        None => format!("INIT_REPORT Init Duration: {:.2} ms", ms(duration)),
        Some(status) => format!("INIT_REPORT Init Duration: {:.2} ms\tPhase: init\t{status}", ms(duration)),
    }
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Outcome {
    pub payload: Bytes,
    /// `Unhandled` when the payload is an error object (`X-Amz-Function-Error`).
    pub function_error: Option<String>,
    /// The invocation's log lines (START to REPORT), at most the last 4 KB.
    pub log_tail: Vec<u8>,
    pub duration: Duration,
    /// Present on the invocation that followed a cold start.
    pub init_duration: Option<Duration>,
}

struct FreezeControl(Control);

impl crate::peer::Members for FreezeControl {
    fn pids(&self) -> Vec<u32> {
        self.0.pids()
    }
}

impl Freezer for FreezeControl {
    fn freeze(&self) {
        if let Err(e) = self.0.freeze() {
            tracing::warn!("freeze: {e}");
        }
    }
    fn thaw(&self) {
        if let Err(e) = self.0.thaw() {
            tracing::warn!("thaw: {e}");
        }
    }
}

pub(crate) struct Environment {
    pub id: String,
    pub revision: String,
    pub provisioned: bool,
    function: Arc<Function>,
    function_arn: String,
    /// Largest response the runtime may post (the node's limit).
    max_payload: usize,
    api: RuntimeApi,
    control: Control,
    exit: watch::Receiver<Option<ExitInfo>>,
    log: Arc<LogStream>,
    pump: LogPump,
    /// Reported with the first invocation, then cleared.
    init_duration: Mutex<Option<Duration>>,
    pub last_used: Mutex<Instant>,
    retired: AtomicBool,
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// A request (or revision) id: a random UUID, as Lambda's.
/// The CPU share of an environment while it runs invocations: in proportion to
/// its memory (cgroup v1 `cpu.shares`, 1024 = one default share).
fn run_share(function: &Function) -> u64 {
    u64::from(function.memory_mb).max(2)
}

/// The CPU share of the init phase: at least one default share, so that a small
/// function's cold start is not starved by the host's other work.
fn init_share(function: &Function) -> u64 {
    run_share(function).max(1024)
}

pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Environment {
    /// Starts an environment and runs its init phase.
    pub async fn start(
        host: &HostConfig,
        function: Arc<Function>,
        code_dir: PathBuf,
        provisioned: bool,
    ) -> Result<Environment, InitFailure> {
        let started = Instant::now();
        let fail = |message: String| InitFailure {
            body: serde_json::json!({ "errorMessage": message, "errorType": "Runtime.Unknown" }).to_string().into(),
            init_duration: started.elapsed(),
            report: String::new(),
        };
        let id = random_hex(16);
        let log = LogStream::create(&host.logs_dir.join(&function.name), &id)
            .map_err(|e| fail(format!("cannot create the log stream: {e}")))?;
        let (api, init_rx) =
            RuntimeApi::start(host.max_payload).await.map_err(|e| fail(format!("Runtime API server: {e}")))?;
        let spec = sandbox_spec(host, &function, code_dir, &api, &log.name, provisioned)
            .map_err(|e| fail(format!("cannot prepare the environment: {e}")))?;
        let (spec, reader) = spec;
        let pool = host.sandboxes.clone();
        let child = tokio::task::spawn_blocking(move || pool.spawn(&spec))
            .await
            .map_err(|e| fail(format!("sandbox: {e}")))?
            .map_err(|e| fail(format!("sandbox: {e}")))?;
        let control = child.control();
        let (exit_tx, exit) = watch::channel(None);
        std::thread::Builder::new()
            .name(format!("env-{}", &id[..8]))
            .spawn(move || {
                let info = match child.wait() {
                    Ok(exit) => ExitInfo { code: exit.status.code(), signal: exit.signal(), oom: exit.oom_killed },
                    Err(e) => {
                        tracing::warn!("environment wait: {e}");
                        ExitInfo::default()
                    }
                };
                let _ = exit_tx.send(Some(info));
            })
            .map_err(|e| fail(format!("waiter thread: {e}")))?;
        let reader =
            tokio::net::unix::pipe::Receiver::from_owned_fd(reader).map_err(|e| fail(format!("log pipe: {e}")))?;
        let pump = LogPump::start(reader, log.clone());
        api.set_members(Arc::new(FreezeControl(control.clone())));
        if host.freeze_idle {
            api.set_freezer(Box::new(FreezeControl(control.clone())));
        }
        let env = Environment {
            id,
            revision: function.revision_id.clone(),
            provisioned,
            function_arn: host.function_arn(&function.name),
            max_payload: host.max_payload,
            function,
            api,
            control,
            exit,
            log,
            pump,
            init_duration: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            retired: AtomicBool::new(false),
        };
        let mut exit = env.exit.clone();
        let report = tokio::select! {
            r = init_rx => r.ok(),
            _ = async { let _ = exit.wait_for(|e| e.is_some()).await; } => None,
            _ = tokio::time::sleep(host.init_timeout) => {
                let secs = host.init_timeout.as_secs_f64();
                let body = serde_json::json!({
                    "errorMessage": format!("Init phase timed out after {secs:.2} seconds"),
                    "errorType": "Sandbox.Timedout",
                });
                return Err(env.init_failed(body.to_string().into(), host.init_timeout, "Status: timeout").await);
            }
        };
        let init_duration = started.elapsed();
        match report {
            Some(InitReport::Ready) => {
                if let Err(e) = env.control.set_cpu_shares(run_share(&env.function)) {
                    tracing::warn!(error = %e, "cannot lower the environment's CPU share after init");
                }
                if provisioned {
                    // Initialized ahead of demand: no invocation waited for it.
                    env.log.line(init_report(init_duration, None).as_bytes());
                } else {
                    *env.init_duration.lock().expect("init") = Some(init_duration);
                }
                Ok(env)
            }
            Some(InitReport::Error { body, error_type }) => {
                let status =
                    format!("Status: error\tError Type: {}", error_type.as_deref().unwrap_or("Runtime.Unknown"));
                Err(env.init_failed(body, init_duration, &status).await)
            }
            None => {
                // Exited (or the server went away) before asking for work.
                let info = wait_exit(&env.exit).await;
                let body = serde_json::json!({
                    "errorMessage": format!("Runtime exited with error: {}", info.describe()),
                    "errorType": info.error_type(),
                });
                let status = format!("Status: error\tError Type: {}", info.error_type());
                Err(env.init_failed(body.to_string().into(), init_duration, &status).await)
            }
        }
    }

    /// Ends an environment whose init phase failed: its output so far, then its
    /// `INIT_REPORT` line, go to its log stream.
    async fn init_failed(&self, body: Bytes, init_duration: Duration, status: &str) -> InitFailure {
        self.retire();
        self.pump.sync().await;
        let report = init_report(init_duration, Some(status));
        self.log.line(report.as_bytes());
        InitFailure { body, init_duration, report }
    }

    pub fn is_frozen(&self) -> bool {
        self.control.is_frozen()
    }

    pub fn is_alive(&self) -> bool {
        !self.retired.load(Ordering::Acquire) && self.exit.borrow().is_none()
    }

    /// Kills the environment (its cgroup and waiter clean up).
    pub fn retire(&self) {
        if !self.retired.swap(true, Ordering::AcqRel) {
            tracing::debug!("environment {} of {} retired", self.id, self.function.name);
        }
        self.control.kill();
    }

    /// Runs one invocation. Returns the outcome and whether the environment can
    /// be used again, or `None` when the environment died before its runtime took
    /// the event (a runtime that exits right after answering, seen only now): the
    /// caller retries on a new environment.
    pub async fn invoke(&self, payload: Bytes, context: &InvokeContext) -> Option<(Outcome, bool)> {
        let id = context.request_id.clone();
        let timeout = Duration::from_secs(u64::from(self.function.timeout_s));
        let deadline_ms = crate::time::now_millis() + timeout.as_millis() as u64;
        self.log.start_capture();
        self.log.line(format!("START RequestId: {id} Version: {LATEST}").as_bytes());
        let (reply_tx, reply_rx) = oneshot::channel();
        let delivered = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        self.api.dispatch(Invocation {
            delivered: delivered.clone(),
            id: id.clone(),
            payload,
            deadline_ms,
            function_arn: self.function_arn.clone(),
            trace_id: context.trace_id.clone(),
            client_context: context.client_context.clone(),
            cognito_identity: context.cognito_identity.clone(),
            reply: reply_tx,
        });
        let mut exit = self.exit.clone();
        enum End {
            Reply(Reply),
            Exit,
            Timeout,
        }
        let end = tokio::select! {
            r = reply_rx => match r { Ok(r) => End::Reply(r), Err(_) => End::Exit },
            _ = async { let _ = exit.wait_for(|e| e.is_some()).await; } => End::Exit,
            _ = tokio::time::sleep(timeout) => End::Timeout,
        };
        let duration = started.elapsed();
        if matches!(end, End::Exit) && !delivered.load(Ordering::Acquire) {
            self.retire();
            self.log.take_capture();
            return None;
        }
        let mut keep = true;
        let mut status = None;
        // A timeout's message goes to the log stream too, as on Lambda.
        let mut timeout_line = None;
        let (payload, function_error) = match end {
            End::Reply(Reply::Response(body)) => (body, None),
            End::Reply(Reply::Error(body)) => (body, Some("Unhandled".to_string())),
            End::Reply(Reply::TooLarge) => {
                let body = serde_json::json!({
                    "errorMessage": format!(
                        "Response payload size exceeded maximum allowed payload size ({} bytes).",
                        self.max_payload
                    ),
                    "errorType": "Function.ResponseSizeTooLarge",
                });
                (body.to_string().into(), Some("Unhandled".to_string()))
            }
            End::Exit => {
                keep = false;
                let info = wait_exit(&self.exit).await;
                let error_type = info.error_type();
                status = Some(format!("Status: error\tError Type: {error_type}"));
                let body = serde_json::json!({
                    "errorMessage": format!("RequestId: {id} Error: Runtime exited with error: {}", info.describe()),
                    "errorType": error_type,
                });
                (body.to_string().into(), Some("Unhandled".to_string()))
            }
            End::Timeout => {
                keep = false;
                self.api.abandon_current();
                self.retire();
                status = Some("Status: timeout".to_string());
                let message = format!(
                    "{} {id} Task timed out after {}.00 seconds",
                    Utc::from_millis(crate::time::now_millis()).iso(),
                    self.function.timeout_s
                );
                let body = serde_json::json!({ "errorMessage": message }).to_string().into();
                timeout_line = Some(message);
                (body, Some("Unhandled".to_string()))
            }
        };
        // An OOM kill of any process ends the whole environment, as on Lambda; so an
        // environment still in use has none on its counter, and any now is this one's.
        let oomed = keep && self.control.oom_kills().unwrap_or(0) > 0;
        let (payload, function_error) = if oomed {
            keep = false;
            self.retire();
            status = Some("Status: error\tError Type: Runtime.OutOfMemory".to_string());
            let body = serde_json::json!({
                "errorMessage": format!("RequestId: {id} Error: Runtime exited with error: signal: killed"),
                "errorType": "Runtime.OutOfMemory",
            });
            (Bytes::from(body.to_string()), Some("Unhandled".to_string()))
        } else {
            (payload, function_error)
        };
        self.pump.sync().await;
        if let Some(line) = timeout_line {
            self.log.line(line.as_bytes());
        }
        self.log.line(format!("END RequestId: {id}").as_bytes());
        let init_duration = self.init_duration.lock().expect("init").take();
        let mut report = format!(
            "REPORT RequestId: {id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            ms(duration),
            (ms(duration).ceil() as u64).max(1),
            self.function.memory_mb,
            self.control.peak_memory().map(|b| b.div_ceil(1 << 20)).unwrap_or(0),
        );
        if let Some(init) = init_duration {
            report.push_str(&format!("\tInit Duration: {:.2} ms", ms(init)));
        }
        if let Some(status) = status {
            report.push('\t');
            report.push_str(&status);
        }
        self.log.line(report.as_bytes());
        let log_tail = self.log.take_capture();
        *self.last_used.lock().expect("last used") = Instant::now();
        Some((Outcome { payload, function_error, log_tail, duration, init_duration }, keep && self.is_alive()))
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.control.kill();
    }
}

/// Per-invocation values the runtime receives in headers.
#[derive(Clone, Debug, Default)]
pub struct InvokeContext {
    pub request_id: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

impl InvokeContext {
    pub fn new() -> InvokeContext {
        let now = crate::time::now_millis() / 1000;
        InvokeContext {
            request_id: request_id(),
            trace_id: format!("Root=1-{now:08x}-{};Parent={};Sampled=0", random_hex(12), random_hex(8)),
            client_context: None,
            cognito_identity: None,
        }
    }
}

async fn wait_exit(exit: &watch::Receiver<Option<ExitInfo>>) -> ExitInfo {
    let mut exit = exit.clone();
    // The waiter thread reports soon after pid 1 dies; the server may notice first.
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        let seen = exit.wait_for(|e| e.is_some()).await.ok().and_then(|v| *v);
        seen
    })
    .await;
    waited.ok().flatten().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn sandbox_spec(
    host: &HostConfig,
    function: &Function,
    code_dir: PathBuf,
    api: &RuntimeApi,
    log_stream: &str,
    provisioned: bool,
) -> std::io::Result<(SandboxSpec, OwnedFd)> {
    let runtime = function.runtime_kind();
    let argv: Vec<String> = match runtime {
        Runtime::Python { .. } => {
            vec![host.python.display().to_string(), format!("{RUNTIME_DIR}/python/bootstrap.py")]
        }
        Runtime::Node { .. } => vec![host.node.display().to_string(), format!("{RUNTIME_DIR}/node/bootstrap.js")],
        Runtime::Provided => vec!["/var/task/bootstrap".to_string()],
    };
    let mut spec = SandboxSpec::new(code_dir, argv);
    spec.uid = SANDBOX_UID;
    spec.gid = SANDBOX_GID;
    spec.memory_bytes = u64::from(function.memory_mb) << 20;
    spec.tmp_bytes = u64::from(function.ephemeral_mb) << 20;
    spec.pids_max = PIDS_MAX;
    // CPU in proportion to memory, as Lambda (1,769 MB is one full vCPU there) —
    // after the init phase, which runs with at least a full share, as Lambda boosts
    // init (see `run_share`).
    spec.cpu_shares = init_share(function);
    spec.staging_dir = host.staging_dir.clone();
    spec.ro_binds.push(BindMount { source: host.runtime_dir.clone(), target: RUNTIME_DIR.into() });
    for file in ["passwd", "group"] {
        spec.ro_binds.push(BindMount { source: host.etc_dir.join(file), target: format!("/etc/{file}").into() });
    }
    for m in &function.mounts {
        spec.mounts.push(BindMount { source: m.source.clone().into(), target: m.local_mount_path.clone().into() });
    }
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin".into()),
        (
            "LD_LIBRARY_PATH".into(),
            "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib".into(),
        ),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
    ];
    // The user's variables may replace the defaults above, never what follows.
    for (k, v) in &function.environment {
        env.retain(|(key, _)| key != k);
        env.push((k.clone(), v.clone()));
    }
    let set = |env: &mut Vec<(String, String)>, k: &str, v: String| env.push((k.to_string(), v));
    set(&mut env, "AWS_LAMBDA_RUNTIME_API", api.addr.to_string());
    set(&mut env, "_HANDLER", function.handler.clone());
    set(&mut env, "LAMBDA_TASK_ROOT", "/var/task".into());
    set(&mut env, "LAMBDA_RUNTIME_DIR", RUNTIME_DIR.into());
    set(&mut env, "AWS_REGION", host.region.clone());
    set(&mut env, "AWS_DEFAULT_REGION", host.region.clone());
    set(&mut env, "AWS_LAMBDA_FUNCTION_NAME", function.name.clone());
    set(&mut env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", function.memory_mb.to_string());
    set(&mut env, "AWS_LAMBDA_FUNCTION_VERSION", LATEST.into());
    set(&mut env, "AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", function.name));
    set(&mut env, "AWS_LAMBDA_LOG_STREAM_NAME", log_stream.to_string());
    set(
        &mut env,
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        if provisioned { "provisioned-concurrency" } else { "on-demand" }.into(),
    );
    if let Some(exec) = runtime.execution_env(&function.runtime) {
        set(&mut env, "AWS_EXECUTION_ENV", exec);
    }
    spec.env = env;
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let writer = Arc::new(writer);
    spec.stdout = Io::Fd(writer.clone());
    spec.stderr = Io::Fd(writer);
    spec.stdin = Io::Null;
    Ok((spec, reader))
}
