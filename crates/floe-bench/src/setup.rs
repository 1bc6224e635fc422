//! Starting and stopping what is measured: a floe mount, an rclone mount of a local
//! directory, a tmpfs directory and a plain directory on the disk under the work dir.

use crate::Args;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Target {
    pub name: &'static str,
    pub dir: PathBuf,
}

pub struct Environment {
    pub targets: Vec<Target>,
    floe: PathBuf,
    data: PathBuf,
    floe_mnt: PathBuf,
    rclone_mnt: Option<PathBuf>,
    work: PathBuf,
    shm: PathBuf,
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str())))
        .unwrap_or(false)
}

fn wait_mounted(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(dir) {
        if Instant::now() > deadline {
            bail!("{} did not get mounted", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn unmount(dir: &Path) {
    if is_mounted(dir) {
        let _ = Command::new("umount").arg(dir).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_mounted(dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Environment {
    pub fn start(args: &Args) -> Result<Environment> {
        let work = &args.work;
        let floe = args
            .floe
            .canonicalize()
            .with_context(|| format!("floe binary {} (build it with --release)", args.floe.display()))?;
        for d in ["mnt-floe", "mnt-rclone", "rclone-src", "disk"] {
            let p = work.join(d);
            unmount(&p);
            std::fs::create_dir_all(&p)?;
        }
        let data = work.join("floe-data");
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(work.join("disk"));
        let _ = std::fs::remove_dir_all(work.join("rclone-src"));
        std::fs::create_dir_all(work.join("disk"))?;
        std::fs::create_dir_all(work.join("rclone-src"))?;
        let shm = PathBuf::from("/dev/shm/floe-bench");
        let _ = std::fs::remove_dir_all(&shm);
        std::fs::create_dir_all(&shm)?;
        let floe_mnt = work.join("mnt-floe");
        run(Command::new(&floe).arg("--data-dir").arg(&data).args(["fs", "create", "bench"]))?;
        run(Command::new(&floe).arg("--data-dir").arg(&data).args(["mount", "bench"]).arg(&floe_mnt).arg("-d"))?;
        let mut targets = vec![
            Target { name: "floe", dir: floe_mnt.clone() },
            Target { name: "tmpfs", dir: shm.clone() },
            Target { name: "disk", dir: work.join("disk") },
        ];
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
        Ok(Environment { targets, floe, data, floe_mnt, rclone_mnt, work: work.clone(), shm })
    }

    pub fn floe(&self) -> &Path {
        &self.floe
    }

    /// floe's data directory (other clients of the bench file system mount it too).
    pub fn data(&self) -> &Path {
        &self.data
    }

    pub fn work(&self) -> &Path {
        &self.work
    }

    pub fn shm(&self) -> &Path {
        &self.shm
    }

    pub fn describe(&self) -> String {
        let commit = run(Command::new("git").args(["rev-parse", "--short", "HEAD"])).unwrap_or_default();
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string()))
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        format!(
            "commit {} · {} cores · MemTotal {} kB · floe data and disk target under {} · tmpfs {}",
            commit.trim(),
            cpus,
            mem,
            self.work.display(),
            self.shm.display()
        )
    }

    /// Drops the kernel's page cache and floe's own caches (by remounting with an
    /// emptied disk cache): the "cold" state of BENCH.md.
    pub fn drop_caches(&self) -> Result<()> {
        // `floe umount` waits for the server to exit: a plain umount followed by a
        // mount on the same directory can have the old server, as it exits, unmount
        // the new mount (fuser unmounts by path on drop).
        run(Command::new(&self.floe).arg("--data-dir").arg(&self.data).arg("umount").arg(&self.floe_mnt))?;
        let _ = std::fs::remove_dir_all(self.data.join("cache"));
        run(Command::new(&self.floe)
            .arg("--data-dir")
            .arg(&self.data)
            .args(["mount", "bench"])
            .arg(&self.floe_mnt)
            .arg("-d"))?;
        // Write back dirty pages, then drop clean ones (root only).
        let _ = Command::new("sync").status();
        std::fs::write("/proc/sys/vm/drop_caches", "3").context("dropping the page cache needs root")?;
        Ok(())
    }

    fn stop(&self) {
        let _ = run(Command::new(&self.floe).arg("--data-dir").arg(&self.data).arg("umount").arg(&self.floe_mnt));
        unmount(&self.floe_mnt);
        if let Some(r) = &self.rclone_mnt {
            unmount(r);
        }
        let _ = std::fs::remove_dir_all(&self.shm);
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.stop();
    }
}
