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
mod tmpdisk;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;

pub use cgroup::{Cgroup, CgroupVersion, Limits};
pub use spec::{BindMount, Io, SandboxSpec};
pub use tmpdisk::{TmpDisk, TmpDisks};

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
    /// The kernel's highest capability number (every one is dropped).
    cap_last: u32,
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
    control: Control,
    /// `/tmp` disks, let go once the sandbox is gone.
    disks: Vec<TmpDisk>,
}

/// What can be done to a running sandbox from any thread, while another waits for it.
#[derive(Debug, Clone)]
pub struct Control {
    /// pidfd of pid 1: signals reach the right process even after it is reaped.
    pidfd: Arc<OwnedFd>,
    cgroup: Arc<Cgroup>,
}

impl Sandbox {
    /// Checks the privileges and detects the cgroup layout; the error is one line
    /// saying what is missing.
    pub fn new() -> Result<Sandbox, SandboxError> {
        let uid = nix::unistd::geteuid().as_raw();
        if uid != 0 {
            return Err(SandboxError::NotRoot(uid));
        }
        let cap_last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(63);
        Ok(Sandbox { cgroups: CgroupVersion::detect()?, cap_last })
    }

    pub fn cgroup_version(&self) -> CgroupVersion {
        self.cgroups
    }

    /// Removes what sandboxes of floe processes that died without cleaning up
    /// left behind (their cgroups, and any process still in them). Returns how
    /// many were removed.
    pub fn remove_stale(&self) -> usize {
        Cgroup::remove_stale(self.cgroups)
    }

    pub fn spawn(&self, spec: &SandboxSpec) -> Result<SandboxChild, SandboxError> {
        self.spawn_prepared(None, spec)
    }

    /// Makes a sandbox ready ahead of its first process, for specs with the base of
    /// `base` (its staging directory, host directories and `/tmp`): creates its
    /// cgroup and a spawner thread that moves itself into it (cgroup v1) and into new
    /// pid and mount namespaces, and builds the tree every sandbox has (root, host
    /// directories, `/dev`, `/tmp`). Moving a task between cgroups waits for an RCU
    /// grace period (≈10 ms here) and the mounts take a few more, so doing it ahead
    /// takes them off the cold start; the first process is forked by that thread,
    /// born in the cgroup and the tree. `tmp` is the disk `base.tmp_device` names,
    /// kept until the sandbox ends. See ADR 8.
    pub fn prepare(&self, base: &SandboxSpec, tmp: Option<TmpDisk>) -> Result<Prepared, SandboxError> {
        let cgroup = Cgroup::create(self.cgroups, DEFAULT_LIMITS)?;
        let tasks = if self.cgroups == CgroupVersion::V1 { cgroup.tasks_files() } else { Vec::new() };
        let base_plan = enter::Plan::new(base, &[], self.cap_last)?;
        let (jobs_tx, jobs_rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sandbox-spawner".into())
            .spawn(move || {
                let ready = (|| {
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
                    for file in &tasks {
                        std::fs::write(file, tid.to_string())
                            .map_err(|e| SandboxError::Cgroup { path: file.clone(), source: e })?;
                    }
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
                        .map_err(|e| SandboxError::Io { what: "unshare(CLONE_NEWPID)".into(), source: e.into() })?;
                    base_plan
                        .build_base()
                        .map_err(|e| SandboxError::Io { what: "build the sandbox's tree".into(), source: e })
                })();
                let ok = ready.is_ok();
                let _ = ready_tx.send(ready);
                if !ok {
                    return;
                }
                if let Ok(job) = jobs_rx.recv() {
                    // Prepared at idle priority; the sandbox itself runs at the normal one.
                    set_idle_priority(false);
                    let spawned = job
                        .plan
                        .build_specific()
                        .and_then(|()| if job.remount_tmp { job.plan.mount_tmp() } else { Ok(()) })
                        .and_then(|()| {
                            let mut command = job.command;
                            command.spawn()
                        });
                    let _ = job.reply.send(spawned);
                }
            })
            .map_err(|e| SandboxError::Io { what: "start a spawner thread".into(), source: e })?;
        let mut prepared = Prepared {
            cgroup: Some(cgroup),
            jobs: Some(jobs_tx),
            thread: Some(thread),
            staging_dir: base.staging_dir.clone(),
            host_dirs: base.host_dirs.clone(),
            tmp_bytes: base.tmp_bytes,
            tmp_device: base.tmp_device.clone(),
            tmp,
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(prepared),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                prepared.jobs = None;
                Err(SandboxError::Io { what: "spawner thread".into(), source: io::ErrorKind::BrokenPipe.into() })
            }
        }
    }

    /// Starts the sandbox's first process, in `prepared` if it fits the spec (else
    /// in a sandbox prepared now).
    pub fn spawn_prepared(&self, prepared: Option<Prepared>, spec: &SandboxSpec) -> Result<SandboxChild, SandboxError> {
        let first = spec.argv.first().ok_or_else(|| SandboxError::InvalidSpec("empty argv".into()))?;
        std::fs::create_dir_all(&spec.staging_dir)
            .map_err(|e| SandboxError::Io { what: format!("create {}", spec.staging_dir.display()), source: e })?;
        let fits = |p: &Prepared| p.staging_dir == spec.staging_dir && p.host_dirs == spec.host_dirs;
        let mut prepared = match prepared {
            Some(p) if fits(&p) => p,
            _ => self.prepare(spec, None)?,
        };
        let cgroup = prepared.cgroup.take().expect("a prepared sandbox has its cgroup");
        cgroup.set_limits(Limits {
            memory_bytes: spec.memory_bytes,
            pids_max: spec.pids_max,
            cpu_shares: spec.cpu_shares,
        })?;
        // v1: the spawner thread is in the cgroup already; v2: the child joins it.
        let joins = if self.cgroups == CgroupVersion::V1 { Vec::new() } else { cgroup.procs_files() };
        let plan = Arc::new(enter::Plan::new(spec, &joins, self.cap_last)?);
        let remount_tmp = (prepared.tmp_bytes, &prepared.tmp_device) != (spec.tmp_bytes, &spec.tmp_device);
        let mut command = Command::new(first);
        command
            .args(&spec.argv[1..])
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(stdio(&spec.stdin)?)
            .stdout(stdio(&spec.stdout)?)
            .stderr(stdio(&spec.stderr)?);
        let child_plan = plan.clone();
        // SAFETY: `Plan::enter` only makes system calls on memory prepared before
        // the fork; it neither allocates nor takes locks.
        unsafe {
            command.pre_exec(move || child_plan.enter());
        }
        let jobs = prepared.jobs.take().expect("a prepared sandbox has its spawner");
        let (reply_tx, reply_rx) = std::sync::mpsc::channel();
        let sent = jobs.send(Job { plan, remount_tmp, command, reply: reply_tx });
        let reply = reply_rx.recv();
        // The spawner thread leaves the cgroup as it exits; wait for that.
        if let Some(thread) = prepared.thread.take() {
            let _ = thread.join();
        }
        let mut process = match (sent, reply) {
            (Ok(()), Ok(result)) => {
                result.map_err(|e| SandboxError::Io { what: "start sandboxed process".into(), source: e })?
            }
            _ => {
                return Err(SandboxError::Io {
                    what: "spawner thread".into(),
                    source: io::ErrorKind::BrokenPipe.into(),
                })
            }
        };
        let pidfd = match pidfd_open(process.id()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = process.kill();
                let _ = process.wait();
                return Err(SandboxError::Io { what: "pidfd_open".into(), source: e });
            }
        };
        let disks = prepared.tmp.take().into_iter().collect();
        Ok(SandboxChild { process, control: Control { pidfd: Arc::new(pidfd), cgroup: Arc::new(cgroup) }, disks })
    }
}

/// Limits of a prepared sandbox until its first process is given its own.
const DEFAULT_LIMITS: Limits = Limits { memory_bytes: 128 << 20, pids_max: 1024, cpu_shares: 128 };

/// What a spawner thread does for its sandbox's first process.
struct Job {
    plan: Arc<enter::Plan>,
    remount_tmp: bool,
    command: Command,
    reply: std::sync::mpsc::Sender<io::Result<std::process::Child>>,
}

/// A sandbox made ready ahead of time ([`Sandbox::prepare`]); dropping it unused
/// removes its cgroup, mounts and disk.
#[derive(Debug)]
pub struct Prepared {
    cgroup: Option<Cgroup>,
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    staging_dir: PathBuf,
    host_dirs: Vec<PathBuf>,
    tmp_bytes: u64,
    tmp_device: Option<PathBuf>,
    tmp: Option<TmpDisk>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Wake the spawner thread (it exits, leaving the cgroup and its mount
        // namespace), then remove the cgroup.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.remove();
        }
    }
}

/// Keeps a few sandboxes prepared so that cold starts do not wait for cgroup
/// migration and mounts; refilled in the background after each use. With
/// [`TmpDisks`], `/tmp` is a disk of the spec's size (prepared ones have the
/// base's size).
#[derive(Debug)]
pub struct SandboxPool {
    sandbox: Sandbox,
    base: SandboxSpec,
    disks: Option<Arc<TmpDisks>>,
    ready: std::sync::Mutex<Vec<Prepared>>,
    target: usize,
    refilling: std::sync::atomic::AtomicBool,
}

impl SandboxPool {
    /// `base`: the staging directory, host directories and `/tmp` size of the
    /// sandboxes to prepare (its other fields do not matter).
    pub fn new(sandbox: Sandbox, target: usize, base: SandboxSpec, disks: Option<Arc<TmpDisks>>) -> Arc<SandboxPool> {
        let pool = Arc::new(SandboxPool {
            sandbox,
            base,
            disks,
            ready: std::sync::Mutex::new(Vec::new()),
            target,
            refilling: Default::default(),
        });
        pool.refill();
        pool
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Prepared sandboxes waiting.
    pub fn ready(&self) -> usize {
        self.ready.lock().expect("pool").len()
    }

    /// Whether nothing is being prepared in the background (the pool is full and no
    /// `/tmp` disk is being made).
    pub fn settled(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.ready() >= self.target
            && !self.refilling.load(Ordering::Acquire)
            && self.disks.as_ref().is_none_or(|d| !d.is_refilling())
    }

    fn prepare_one(&self) -> Result<Prepared, SandboxError> {
        let mut base = self.base.clone();
        let disk = match &self.disks {
            Some(d) => Some(
                d.take(self.base.tmp_bytes >> 20)
                    .map_err(|e| SandboxError::Io { what: "make a /tmp disk".into(), source: e })?,
            ),
            None => None,
        };
        base.tmp_device = disk.as_ref().map(|d| d.device.clone());
        self.sandbox.prepare(&base, disk)
    }

    pub fn spawn(self: &Arc<Self>, spec: &SandboxSpec) -> Result<SandboxChild, SandboxError> {
        let prepared = self.ready.lock().expect("pool").pop();
        let mut spec = spec.clone();
        let mut extra = None;
        if let Some(disks) = &self.disks {
            match &prepared {
                Some(p) if p.tmp_bytes == spec.tmp_bytes && p.tmp_device.is_some() => {
                    spec.tmp_device = p.tmp_device.clone();
                }
                _ => {
                    let disk = disks
                        .take(spec.tmp_bytes >> 20)
                        .map_err(|e| SandboxError::Io { what: "make a /tmp disk".into(), source: e })?;
                    spec.tmp_device = Some(disk.device.clone());
                    extra = Some(disk);
                }
            }
        }
        let child = self.sandbox.spawn_prepared(prepared, &spec);
        self.refill();
        let mut child = child?;
        child.disks.extend(extra);
        Ok(child)
    }

    /// Prepares sandboxes in the background until `target` are ready.
    fn refill(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.target == 0 || self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("sandbox-pool".into()).spawn(move || {
            // Preparing must not take CPU from the cold start that used the last one.
            set_idle_priority(true);
            while let Some(pool) = pool.upgrade() {
                if pool.ready() >= pool.target {
                    pool.refilling.store(false, Ordering::Release);
                    return;
                }
                match pool.prepare_one() {
                    Ok(p) => pool.ready.lock().expect("pool").push(p),
                    Err(e) => {
                        tracing::warn!("cannot prepare a sandbox: {e}");
                        pool.refilling.store(false, Ordering::Release);
                        return;
                    }
                }
            }
        });
        if spawned.is_err() {
            self.refilling.store(false, Ordering::Release);
        }
    }
}

/// Puts the calling thread (and what it forks) under SCHED_IDLE, or back under
/// SCHED_OTHER: background preparation runs only when the CPU has nothing else.
pub(crate) fn set_idle_priority(idle: bool) {
    let policy = if idle { libc::SCHED_IDLE } else { libc::SCHED_OTHER };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on the calling thread (0) with a valid param.
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc != 0 {
        tracing::debug!("sched_setscheduler: {}", io::Error::last_os_error());
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn stdio(io: &Io) -> Result<Stdio, SandboxError> {
    Ok(match io {
        Io::Inherit => Stdio::inherit(),
        Io::Piped => Stdio::piped(),
        Io::Null => Stdio::null(),
        Io::Fd(fd) => Stdio::from(
            fd.try_clone().map_err(|e| SandboxError::Io { what: "duplicate an output fd".into(), source: e })?,
        ),
    })
}

impl SandboxChild {
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// A handle to kill, freeze or measure the sandbox while a thread waits for it.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Waits for pid 1 (its death ends every process of the namespace), then
    /// reads the cgroup's OOM counter and removes the cgroup.
    pub fn wait(mut self) -> Result<Exit, SandboxError> {
        let status =
            self.process.wait().map_err(|e| SandboxError::Io { what: "wait for sandbox".into(), source: e })?;
        let oom_killed = self.control.cgroup.oom_kills()? > 0;
        let peak_memory_bytes = self.control.cgroup.peak_memory();
        self.control.cgroup.remove()?;
        Ok(Exit { status, oom_killed, peak_memory_bytes })
    }

    /// Kills the whole sandbox and waits for it.
    pub fn kill(self) -> Result<Exit, SandboxError> {
        self.control.kill();
        self.wait()
    }
}

impl Control {
    /// SIGKILLs pid 1, which ends every process of its pid namespace; a frozen
    /// sandbox is thawed so that the kill is delivered. Harmless once it is dead.
    pub fn kill(&self) {
        // SAFETY: pidfd_send_signal with a valid fd, a signal number and no siginfo.
        unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32);
        }
        let _ = self.cgroup.set_frozen(false);
    }

    /// Stops every process of the sandbox (cgroup freezer) until [`Control::thaw`].
    pub fn freeze(&self) -> Result<(), SandboxError> {
        self.cgroup.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<(), SandboxError> {
        self.cgroup.set_frozen(false)
    }

    /// Whether every process of the sandbox is stopped by the freezer.
    pub fn is_frozen(&self) -> bool {
        self.cgroup.is_frozen()
    }

    /// How many processes the kernel's OOM killer killed in the sandbox so far.
    pub fn oom_kills(&self) -> Result<u64, SandboxError> {
        self.cgroup.oom_kills()
    }

    /// Peak memory use of the sandbox so far, in bytes.
    pub fn peak_memory(&self) -> Option<u64> {
        self.cgroup.peak_memory()
    }

    /// The pids of the sandbox's processes as the host sees them.
    pub fn pids(&self) -> Vec<u32> {
        self.cgroup.pids()
    }

    /// Changes the sandbox's CPU share (cgroup v1 `cpu.shares` units).
    pub fn set_cpu_shares(&self, shares: u64) -> Result<(), SandboxError> {
        self.cgroup.set_cpu_shares(shares)
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
            self.control.kill();
            let _ = self.process.wait();
        }
    }
}
