//! Sandboxes for floe's execution environments: a process tree in its own
//! mount, pid, IPC and UTS namespaces (optionally network), on a read-only root
//! with the code at `/var/task`, a private size-limited `/tmp` and extra bind
//! mounts under `/mnt/`, as an unprivileged uid without capabilities and with
//! `no_new_privs`, inside a cgroup that limits memory, pids and CPU share.
//!
//! Namespaces and cgroups are driven directly through system calls (see
//! docs/adr/0008-sandbox-mechanism.md for why, and what was measured).
//!
//! Not here: the Runtime API, the invoker, what runs inside (bootstraps), and
//! access-point enforcement (that belongs to the file system, never the sandbox).

mod cgroup;
mod enter;
mod spec;

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

pub use cgroup::{Cgroup, CgroupVersion, Limits};
pub use spec::{BindMount, Io, SandboxSpec};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandboxes need root (CAP_SYS_ADMIN) to create namespaces and cgroups; running as uid {0}")]
    NotRoot(u32),
    #[error("no usable cgroup hierarchy under /sys/fs/cgroup (need v2, or v1 with memory, pids and cpu)")]
    NoCgroups,
    #[error("cgroup {path}: {source}")]
    Cgroup { path: PathBuf, source: io::Error },
    #[error("invalid sandbox spec: {0}")]
    InvalidSpec(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

/// Starts sandboxes. Holds what is detected once per host.
#[derive(Debug, Clone)]
pub struct Sandbox {
    cgroups: CgroupVersion,
}

/// How a sandboxed process ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of the sandbox (the cgroup's own counter).
    pub oom_killed: bool,
    pub peak_memory_bytes: Option<u64>,
}

/// A running sandbox: its first process (pid 1 inside) and its cgroup.
#[derive(Debug)]
pub struct SandboxChild {
    pub process: std::process::Child,
    cgroup: Cgroup,
}

impl Sandbox {
    /// Checks the privileges and detects the cgroup layout; the error is one line
    /// saying what is missing.
    pub fn new() -> Result<Sandbox, SandboxError> {
        let uid = nix::unistd::geteuid().as_raw();
        if uid != 0 {
            return Err(SandboxError::NotRoot(uid));
        }
        Ok(Sandbox { cgroups: CgroupVersion::detect()? })
    }

    pub fn cgroup_version(&self) -> CgroupVersion {
        self.cgroups
    }

    pub fn spawn(&self, spec: &SandboxSpec) -> Result<SandboxChild, SandboxError> {
        let first = spec.argv.first().ok_or_else(|| SandboxError::InvalidSpec("empty argv".into()))?;
        std::fs::create_dir_all(&spec.staging_dir)
            .map_err(|e| SandboxError::Io { what: format!("create {}", spec.staging_dir.display()), source: e })?;
        let cgroup = Cgroup::create(
            self.cgroups,
            Limits { memory_bytes: spec.memory_bytes, pids_max: spec.pids_max, cpu_shares: spec.cpu_shares },
        )?;
        let plan = enter::Plan::new(spec, &cgroup.procs_files())?;
        let mut command = Command::new(first);
        command
            .args(&spec.argv[1..])
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(stdio(spec.stdin))
            .stdout(stdio(spec.stdout))
            .stderr(stdio(spec.stderr));
        // SAFETY: `Plan::enter` only makes system calls on memory prepared before
        // the fork; it neither allocates nor takes locks.
        unsafe {
            command.pre_exec(move || plan.enter());
        }
        let process = spawn_in_new_pid_namespace(command)?;
        Ok(SandboxChild { process, cgroup })
    }
}

/// unshare(CLONE_NEWPID) only affects the caller's future children, and only
/// once per thread, so each sandbox is forked from a fresh thread: its child is
/// then pid 1 of a new namespace, and floe's own threads are untouched.
fn spawn_in_new_pid_namespace(mut command: Command) -> Result<std::process::Child, SandboxError> {
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
                    .map_err(|e| SandboxError::Io { what: "unshare(CLONE_NEWPID)".into(), source: e.into() })?;
                command.spawn().map_err(|e| SandboxError::Io { what: "start sandboxed process".into(), source: e })
            })
            .join()
            .expect("the spawning thread does not panic")
    })
}

fn stdio(io: Io) -> Stdio {
    match io {
        Io::Inherit => Stdio::inherit(),
        Io::Piped => Stdio::piped(),
        Io::Null => Stdio::null(),
    }
}

impl SandboxChild {
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Waits for pid 1 (its death ends every process of the namespace), then
    /// reads the cgroup's OOM counter and removes the cgroup.
    pub fn wait(&mut self) -> Result<Exit, SandboxError> {
        let status =
            self.process.wait().map_err(|e| SandboxError::Io { what: "wait for sandbox".into(), source: e })?;
        let oom_killed = self.cgroup.oom_kills()? > 0;
        let peak_memory_bytes = self.cgroup.peak_memory();
        self.cgroup.remove()?;
        Ok(Exit { status, oom_killed, peak_memory_bytes })
    }

    /// Kills the whole sandbox.
    pub fn kill(&mut self) -> Result<Exit, SandboxError> {
        let _ = self.process.kill();
        self.wait()
    }
}

impl Exit {
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

impl Drop for SandboxChild {
    fn drop(&mut self) {
        if matches!(self.process.try_wait(), Ok(None)) {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}
