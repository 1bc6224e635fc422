//! One cgroup per execution environment, on v1 (one directory per controller)
//! or v2 (one directory in the unified tree).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::SandboxError;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Our subtree in every hierarchy.
const FLOE: &str = "floe";

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Controllers mounted separately under `/sys/fs/cgroup/<controller>`
    /// (a v2 `unified` mount beside them, without controllers, is ignored).
    V1,
    /// One unified hierarchy at `/sys/fs/cgroup`.
    V2,
}

impl CgroupVersion {
    pub fn detect() -> Result<CgroupVersion, SandboxError> {
        let root = Path::new(CGROUP_ROOT);
        if root.join("cgroup.controllers").exists() {
            Ok(CgroupVersion::V2)
        } else if root.join("memory/memory.limit_in_bytes").exists()
            && root.join("pids").is_dir()
            && root.join("cpu").is_dir()
        {
            Ok(CgroupVersion::V1)
        } else {
            Err(SandboxError::NoCgroups)
        }
    }
}

/// Limits applied to one cgroup.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids_max: u64,
    pub cpu_shares: u64,
}

/// A cgroup created for one sandbox; removed (after killing what is left in
/// it) by [`Cgroup::remove`] or on drop.
#[derive(Debug)]
pub struct Cgroup {
    version: CgroupVersion,
    /// One directory per controller on v1 (memory first), one on v2.
    dirs: Vec<PathBuf>,
    /// v1 only: the freezer controller's directory.
    freezer: Option<PathBuf>,
    removed: AtomicBool,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Cgroup {
    pub fn create(version: CgroupVersion, limits: Limits) -> Result<Cgroup, SandboxError> {
        let name = format!("env-{}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let root = Path::new(CGROUP_ROOT);
        let mut cgroup = Cgroup { version, dirs: Vec::new(), freezer: None, removed: AtomicBool::new(false) };
        match version {
            CgroupVersion::V1 => {
                for controller in ["memory", "pids", "cpu"] {
                    let dir = root.join(controller).join(FLOE).join(&name);
                    fs::create_dir_all(&dir).map_err(|e| cg_err(&dir, e))?;
                    cgroup.dirs.push(dir);
                }
                let freezer = root.join("freezer").join(FLOE).join(&name);
                if root.join("freezer").is_dir() {
                    fs::create_dir_all(&freezer).map_err(|e| cg_err(&freezer, e))?;
                    cgroup.dirs.push(freezer.clone());
                    cgroup.freezer = Some(freezer);
                }
            }
            CgroupVersion::V2 => {
                let parent = root.join(FLOE);
                fs::create_dir_all(&parent).map_err(|e| cg_err(&parent, e))?;
                // Controllers must be delegated down each level before a leaf can use them.
                for dir in [root, parent.as_path()] {
                    let control = dir.join("cgroup.subtree_control");
                    fs::write(&control, "+memory +pids +cpu").map_err(|e| cg_err(&control, e))?;
                }
                let dir = parent.join(&name);
                fs::create_dir(&dir).map_err(|e| cg_err(&dir, e))?;
                cgroup.dirs.push(dir.clone());
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, 0)?;
                }
                // Lambda semantics: an OOM ends the whole environment, not one process in it.
                write(&dir.join("memory.oom.group"), 1)?;
            }
        }
        cgroup.set_limits(limits)?;
        Ok(cgroup)
    }

    /// Applies (or changes) the limits.
    pub fn set_limits(&self, limits: Limits) -> Result<(), SandboxError> {
        match self.version {
            CgroupVersion::V1 => {
                let (memory, pids, cpu) = (&self.dirs[0], &self.dirs[1], &self.dirs[2]);
                // memory+swap must stay >= memory: raise it first, lower it last.
                let memsw = memory.join("memory.memsw.limit_in_bytes");
                let has_memsw = memsw.exists();
                if has_memsw {
                    let _ = write(&memsw, limits.memory_bytes);
                }
                write(&memory.join("memory.limit_in_bytes"), limits.memory_bytes)?;
                if has_memsw {
                    write(&memsw, limits.memory_bytes)?;
                }
                write(&pids.join("pids.max"), limits.pids_max)?;
                write(&cpu.join("cpu.shares"), limits.cpu_shares.max(2))?;
            }
            CgroupVersion::V2 => {
                let dir = &self.dirs[0];
                write(&dir.join("memory.max"), limits.memory_bytes)?;
                write(&dir.join("pids.max"), limits.pids_max)?;
                write(&dir.join("cpu.weight"), shares_to_weight(limits.cpu_shares))?;
            }
        }
        Ok(())
    }

    /// Changes the CPU share alone (an environment's init phase runs with more).
    pub fn set_cpu_shares(&self, shares: u64) -> Result<(), SandboxError> {
        match self.version {
            CgroupVersion::V1 => write(&self.dirs[2].join("cpu.shares"), shares.max(2)),
            CgroupVersion::V2 => write(&self.dirs[0].join("cpu.weight"), shares_to_weight(shares)),
        }
    }

    /// The `tasks` files (v1) a thread writes its tid into to join this cgroup
    /// without its process.
    pub fn tasks_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("tasks")).collect()
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The `cgroup.procs` files a process writes `0` into to join this cgroup.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// How many processes the kernel OOM killer has killed in this cgroup.
    pub fn oom_kills(&self) -> Result<u64, SandboxError> {
        let (file, key) = match self.version {
            CgroupVersion::V1 => (self.dirs[0].join("memory.oom_control"), "oom_kill"),
            CgroupVersion::V2 => (self.dirs[0].join("memory.events"), "oom_kill"),
        };
        let text = fs::read_to_string(&file).map_err(|e| cg_err(&file, e))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Peak memory use in bytes, for the REPORT line (v1 only keeps a peak;
    /// v2 has `memory.peak` on 5.19+).
    pub fn peak_memory(&self) -> Option<u64> {
        let file = match self.version {
            CgroupVersion::V1 => self.dirs[0].join("memory.max_usage_in_bytes"),
            CgroupVersion::V2 => self.dirs[0].join("memory.peak"),
        };
        fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// Stops (or resumes) every process of the cgroup. On v1 the kernel finishes
    /// freezing in the background; a frozen process still holds its memory.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), SandboxError> {
        let (file, value) = match (self.version, &self.freezer) {
            (CgroupVersion::V1, Some(dir)) => (dir.join("freezer.state"), if frozen { "FROZEN" } else { "THAWED" }),
            (CgroupVersion::V1, None) => return Ok(()),
            (CgroupVersion::V2, _) => (self.dirs[0].join("cgroup.freeze"), if frozen { "1" } else { "0" }),
        };
        match fs::write(&file, value) {
            Ok(()) => Ok(()),
            // Already removed: nothing left to freeze or thaw.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(cg_err(&file, e)),
        }
    }

    /// Whether the freezer reports every process stopped.
    pub fn is_frozen(&self) -> bool {
        match (self.version, &self.freezer) {
            (CgroupVersion::V1, Some(dir)) => {
                fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }
            (CgroupVersion::V1, None) => false,
            (CgroupVersion::V2, _) => {
                fs::read_to_string(self.dirs[0].join("cgroup.events")).is_ok_and(|s| s.lines().any(|l| l == "frozen 1"))
            }
        }
    }

    /// The host pids of the processes in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        let me = std::process::id();
        fs::read_to_string(self.dirs[0].join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).filter(|p| *p != me).collect())
            .unwrap_or_default()
    }

    /// Removes the cgroups of sandboxes whose floe process is gone (named
    /// `env-<floe pid>-<n>`), killing whatever is left in them.
    pub fn remove_stale(version: CgroupVersion) -> usize {
        let root = Path::new(CGROUP_ROOT);
        let parents: Vec<PathBuf> = match version {
            CgroupVersion::V1 => ["memory", "pids", "cpu", "freezer"].iter().map(|c| root.join(c).join(FLOE)).collect(),
            CgroupVersion::V2 => vec![root.join(FLOE)],
        };
        let mut removed = 0;
        for parent in parents {
            let Ok(entries) = fs::read_dir(&parent) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(owner) = name.strip_prefix("env-").and_then(|r| r.split('-').next()) else { continue };
                let Ok(owner) = owner.parse::<i32>() else { continue };
                if Path::new(&format!("/proc/{owner}")).exists() {
                    continue;
                }
                let is_freezer = parent.starts_with(root.join("freezer"));
                let stale = Cgroup {
                    version,
                    dirs: vec![entry.path()],
                    freezer: is_freezer.then(|| entry.path()),
                    removed: AtomicBool::new(false),
                };
                if stale.remove().is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Kills every process left and removes the directories.
    pub fn remove(&self) -> Result<(), SandboxError> {
        if self.removed.load(Ordering::Acquire) {
            return Ok(());
        }
        // Frozen processes cannot die; thaw before killing.
        let _ = self.set_frozen(false);
        for attempt in 0..100 {
            let mut busy = false;
            for dir in &self.dirs {
                if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                    // Never ourselves: a thread of ours may still be leaving the cgroup.
                    let me = std::process::id() as i32;
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()).filter(|p| *p != me) {
                        // SAFETY: kill(2) has no memory-safety preconditions.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                match fs::remove_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 99 => busy = true,
                    Err(e) => return Err(cg_err(dir, e)),
                }
            }
            if !busy {
                self.removed.store(true, Ordering::Release);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// cgroup v2's documented conversion range: shares 2..=262144 to weight 1..=10000.
fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9999 / 262_142
}

fn write(path: &Path, value: u64) -> Result<(), SandboxError> {
    fs::write(path, value.to_string()).map_err(|e| cg_err(path, e))
}

fn cg_err(path: &Path, source: io::Error) -> SandboxError {
    SandboxError::Cgroup { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_the_weight_range() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
    }
}
