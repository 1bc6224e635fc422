//! Starting and stopping what is measured: a floe mount, an rclone mount of a local
//! directory, a tmpfs directory and a plain directory on the disk under the work dir;
//! with shared backends given, a second floe mount on them (PostgreSQL + S3).

use crate::node::{run, unmount, wait_mounted, Backends, FloeDir};
use crate::Args;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Target {
    pub name: &'static str,
    pub dir: PathBuf,
}

/// The target on the shared backends, beside "floe" on the embedded ones.
pub const SHARED_TARGET: &str = "floe-pg-s3";

/// A floe mount of the bench file system and how it was mounted.
struct FloeMount {
    dir: FloeDir,
    mnt: PathBuf,
    options: Vec<String>,
    /// What the backends are, for the report.
    backends: String,
}

impl FloeMount {
    fn mount(&self) -> Result<()> {
        let options: Vec<&str> = self.options.iter().map(String::as_str).collect();
        self.dir.mount("bench", &self.mnt, &options)?;
        Ok(())
    }
}

pub struct Environment {
    pub targets: Vec<Target>,
    floe: FloeMount,
    shared: Option<FloeMount>,
    rclone_mnt: Option<PathBuf>,
    work: PathBuf,
    shm: PathBuf,
}

impl Environment {
    pub fn start(args: &Args, backends: Option<&Backends>) -> Result<Environment> {
        let work = &args.work;
        let bin = args.floe_bin()?;
        for d in ["mnt-floe", "mnt-floe-pg-s3", "mnt-rclone", "rclone-src", "disk"] {
            let p = work.join(d);
            unmount(&p);
            std::fs::create_dir_all(&p)?;
        }
        let _ = std::fs::remove_dir_all(work.join("disk"));
        let _ = std::fs::remove_dir_all(work.join("rclone-src"));
        std::fs::create_dir_all(work.join("disk"))?;
        std::fs::create_dir_all(work.join("rclone-src"))?;
        let shm = PathBuf::from("/dev/shm/floe-bench");
        let _ = std::fs::remove_dir_all(&shm);
        std::fs::create_dir_all(&shm)?;
        let floe = FloeMount {
            dir: FloeDir::fresh(&bin, work.join("floe-data"), None)?,
            mnt: work.join("mnt-floe"),
            options: Vec::new(),
            backends: "SQLite, local objects".into(),
        };
        floe.dir.create_fs("bench")?;
        floe.mount()?;
        let mut targets = vec![Target { name: "floe", dir: floe.mnt.clone() }];
        let shared = match backends {
            Some(b) => {
                // A node as `floe up` runs one: its disk cache on (the default size).
                let shared = FloeMount {
                    dir: FloeDir::fresh(&bin, work.join("floe-pg-s3-data"), Some(b.clone()))?,
                    mnt: work.join("mnt-floe-pg-s3"),
                    options: vec!["--cache-size".into(), args.shared_cache_size.to_string()],
                    backends: format!("{}, disk cache {} MiB", b.describe(), args.shared_cache_size),
                };
                shared.dir.create_fs("bench")?;
                shared.mount()?;
                targets.push(Target { name: SHARED_TARGET, dir: shared.mnt.clone() });
                Some(shared)
            }
            None => None,
        };
        targets.push(Target { name: "tmpfs", dir: shm.clone() });
        targets.push(Target { name: "disk", dir: work.join("disk") });
        let rclone_mnt = work.join("mnt-rclone");
        let rclone = Command::new("rclone")
            .arg("mount")
            .arg(work.join("rclone-src"))
            .arg(&rclone_mnt)
            .args(["--daemon", "--vfs-cache-mode", "writes", "--cache-dir"])
            .arg(work.join("rclone-cache"))
            .status();
        let rclone_mnt = match rclone {
            Ok(s) if s.success() => {
                wait_mounted(&rclone_mnt)?;
                targets.push(Target { name: "rclone", dir: rclone_mnt.clone() });
                Some(rclone_mnt)
            }
            _ => {
                eprintln!(
                    "floe-bench: rclone is not available (scripts/deps bench installs it); running without the peer"
                );
                None
            }
        };
        Ok(Environment { targets, floe, shared, rclone_mnt, work: work.clone(), shm })
    }

    /// The data directory of the "floe" target (other clients of its bench file
    /// system mount it too).
    pub fn floe_dir(&self) -> &FloeDir {
        &self.floe.dir
    }

    pub fn work(&self) -> &Path {
        &self.work
    }

    pub fn shm(&self) -> &Path {
        &self.shm
    }

    pub fn describe(&self) -> String {
        let mut text = describe_machine(&self.work);
        text.push_str(&format!(" · tmpfs {}", self.shm.display()));
        if let Some(s) = &self.shared {
            text.push_str(&format!(" · {SHARED_TARGET}: {}", s.backends));
        }
        text
    }

    /// Drops the kernel's page cache and floe's own caches (by remounting with an
    /// emptied disk cache): the "cold" state of BENCH.md.
    pub fn drop_caches(&self) -> Result<()> {
        for m in std::iter::once(&self.floe).chain(&self.shared) {
            m.dir.umount(&m.mnt)?;
            m.dir.clear_disk_cache()?;
            m.mount()?;
        }
        crate::node::drop_page_cache()
    }

    fn stop(&self) {
        for m in std::iter::once(&self.floe).chain(&self.shared) {
            let _ = m.dir.umount(&m.mnt);
            unmount(&m.mnt);
        }
        // The shared backends outlive the run: take the file system's objects along.
        if let Some(s) = &self.shared {
            if let Err(e) = s.dir.delete_fs("bench") {
                eprintln!("floe-bench: {e:#}");
            }
        }
        if let Some(r) = &self.rclone_mnt {
            unmount(r);
        }
        let _ = std::fs::remove_dir_all(&self.shm);
    }
}

/// The commit and the machine, for the head of a report.
pub fn describe_machine(work: &Path) -> String {
    let commit = run(Command::new("git").args(["rev-parse", "--short", "HEAD"])).unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string()))
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!(
        "commit {} · {} cores · MemTotal {} kB · floe data and disk target under {}",
        commit.trim(),
        cpus,
        mem,
        work.display()
    )
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Context for error messages that name the floe binary.
pub fn floe_bin(path: &Path) -> Result<PathBuf> {
    path.canonicalize().with_context(|| format!("floe binary {} (build it with --release)", path.display()))
}
