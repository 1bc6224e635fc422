//! What a sandbox looks like from inside: the description the invoker fills in.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything needed to start one execution environment.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Host directory shown read-only at `/var/task`.
    pub code_dir: PathBuf,
    /// Host directories (or symlinks) shown read-only at the same path inside.
    /// The sandbox root is an otherwise empty read-only tmpfs, so nothing of the
    /// host outside this list, `/var/task` and `mounts` is visible.
    pub host_dirs: Vec<PathBuf>,
    /// Size of the private `/tmp` tmpfs, in bytes.
    pub tmp_bytes: u64,
    /// Mount this block device (an ext4 file system, see [`crate::TmpDisks`]) at
    /// `/tmp` instead of a tmpfs: its pages are page cache, reclaimable, instead of
    /// memory charged to the environment for good.
    pub tmp_device: Option<PathBuf>,
    /// Extra read-write bind mounts; each target must be under `/mnt/`.
    pub mounts: Vec<BindMount>,
    /// Extra read-only bind mounts at absolute targets outside `/mnt/`, `/tmp`,
    /// `/proc` and `/dev` (for example the runtime's own files at `/var/runtime`).
    pub ro_binds: Vec<BindMount>,
    pub uid: u32,
    pub gid: u32,
    /// Memory limit in bytes (cgroup), swap included where the host accounts it.
    pub memory_bytes: u64,
    /// Maximum number of tasks (processes and threads).
    pub pids_max: u64,
    /// cgroup v1 `cpu.shares` (1024 = one default share); mapped to `cpu.weight` on v2.
    pub cpu_shares: u64,
    /// Give the environment its own, empty network namespace (loopback only, down).
    pub isolate_network: bool,
    /// The environment, exactly; nothing of the caller's leaks in.
    pub env: Vec<(String, String)>,
    /// argv; `argv[0]` is the program, resolved with `PATH` from `env` inside the sandbox.
    pub argv: Vec<String>,
    pub stdin: Io,
    pub stdout: Io,
    pub stderr: Io,
    /// An empty host directory used as the mount point of the new root inside each
    /// sandbox's private mount namespace; never written to on the host.
    pub staging_dir: PathBuf,
}

/// A host directory bound read-write at `target` (under `/mnt/`).
#[derive(Debug, Clone)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: PathBuf,
}

#[derive(Debug, Clone)]
pub enum Io {
    Inherit,
    Piped,
    Null,
    /// A file or pipe of the caller's (duplicated into the child).
    Fd(Arc<OwnedFd>),
}

impl SandboxSpec {
    /// Lambda-like defaults: the usual system directories, 512 MB `/tmp`,
    /// 128 MB memory, uid/gid 993 (as Lambda's `sbx_user1051` is unprivileged).
    pub fn new(code_dir: impl Into<PathBuf>, argv: Vec<String>) -> SandboxSpec {
        SandboxSpec {
            code_dir: code_dir.into(),
            host_dirs: ["/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc"].iter().map(PathBuf::from).collect(),
            tmp_bytes: 512 << 20,
            tmp_device: None,
            mounts: Vec::new(),
            ro_binds: Vec::new(),
            uid: 993,
            gid: 990,
            memory_bytes: 128 << 20,
            pids_max: 1024,
            cpu_shares: 1024,
            isolate_network: false,
            env: vec![("PATH".to_string(), "/usr/local/bin:/usr/bin:/bin".to_string())],
            argv,
            stdin: Io::Null,
            stdout: Io::Inherit,
            stderr: Io::Inherit,
            staging_dir: PathBuf::from("/run/floe/sandbox-root"),
        }
    }
}
