//! One floe data directory and the `floe` commands run on it: creating and deleting
//! file systems, mounting and unmounting them. A data directory either keeps
//! everything itself (SQLite and local objects) or is a node on shared backends
//! (PostgreSQL and S3), which several data directories use at once.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The shared backends of a cluster: a metadata URL and an object store URL.
#[derive(Clone)]
pub struct Backends {
    pub meta: String,
    pub store: String,
}

impl Backends {
    /// Both URLs, or neither (an empty value counts as none).
    pub fn from_args(meta: Option<&str>, store: Option<&str>) -> Result<Option<Backends>> {
        let meta = meta.filter(|s| !s.is_empty());
        let store = store.filter(|s| !s.is_empty());
        match (meta, store) {
            (Some(meta), Some(store)) => Ok(Some(Backends { meta: meta.into(), store: store.into() })),
            (None, None) => Ok(None),
            _ => bail!(
                "give both --shared-meta and --shared-store (or FLOE_BENCH_META and FLOE_BENCH_STORE), or neither"
            ),
        }
    }

    /// For a report's head: what the backends are, without the metadata URL (it
    /// holds a password).
    pub fn describe(&self) -> String {
        let endpoint = self
            .store
            .split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("endpoint=")))
            .unwrap_or("AWS");
        format!("PostgreSQL metadata, S3 objects ({endpoint})")
    }
}

pub struct FloeDir {
    bin: PathBuf,
    data: PathBuf,
    backends: Option<Backends>,
}

pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn is_mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().any(|l| l.split(' ').nth(4) == Some(want.as_str())))
        .unwrap_or(false)
}

pub fn wait_mounted(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !is_mounted(dir) {
        if Instant::now() > deadline {
            bail!("{} did not get mounted", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Detaches whatever is mounted on `dir` (a mount left by an interrupted run).
pub fn unmount(dir: &Path) {
    if is_mounted(dir) {
        let _ = Command::new("umount").arg(dir).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_mounted(dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Writes back dirty pages, then drops every clean page of the kernel's cache
/// (root only): the S3 server's files and the disk cache's files are then cold too.
pub fn drop_page_cache() -> Result<()> {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").context("dropping the page cache needs root")
}

impl FloeDir {
    /// A data directory at `data`, emptied first: every run starts from nothing.
    pub fn fresh(bin: &Path, data: PathBuf, backends: Option<Backends>) -> Result<FloeDir> {
        if data.exists() {
            std::fs::remove_dir_all(&data).with_context(|| format!("cannot empty {}", data.display()))?;
        }
        std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
        Ok(FloeDir { bin: bin.to_path_buf(), data, backends })
    }

    /// Another node: its own data directory, the same backends.
    pub fn sibling(&self, data: PathBuf) -> Result<FloeDir> {
        FloeDir::fresh(&self.bin, data, self.backends.clone())
    }

    pub fn is_shared(&self) -> bool {
        self.backends.is_some()
    }

    /// `floe --data-dir DATA` with this directory's backends in the environment (not
    /// as flags: a password in a command line is visible in `ps`), and none inherited
    /// from ours for a directory that keeps everything itself.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--data-dir").arg(&self.data);
        match &self.backends {
            Some(b) => cmd.env("FLOE_META", &b.meta).env("FLOE_STORE", &b.store),
            None => cmd.env_remove("FLOE_META").env_remove("FLOE_STORE"),
        };
        cmd
    }

    /// Creates the file system `name`; on shared backends, one left by an earlier
    /// run is deleted first.
    pub fn create_fs(&self, name: &str) -> Result<()> {
        if self.is_shared() {
            let _ = self.command().args(["fs", "delete", name]).output();
        }
        run(self.command().args(["fs", "create", name]))?;
        Ok(())
    }

    /// Deletes the file system `name` with its objects (shared backends outlive the
    /// run; a local data directory is simply removed).
    pub fn delete_fs(&self, name: &str) -> Result<()> {
        run(self.command().args(["fs", "delete", name]))?;
        Ok(())
    }

    /// `floe mount NAME DIR -d` with `extra` options; returns the server's pid.
    pub fn mount(&self, fs: &str, dir: &Path, extra: &[&str]) -> Result<i32> {
        unmount(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let out = run(self.command().args(["mount", fs]).arg(dir).arg("-d").args(extra))?;
        out.split("(pid ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no pid in the output of floe mount: {}", out.trim()))
    }

    /// `floe umount DIR`, which waits for the server to exit: a plain umount followed
    /// by a mount on the same directory can have the old server, as it exits, unmount
    /// the new mount (fuser unmounts by path on drop).
    pub fn umount(&self, dir: &Path) -> Result<()> {
        run(self.command().arg("umount").arg(dir))?;
        Ok(())
    }

    /// Empties the node-local disk block cache (of an unmounted file system).
    pub fn clear_disk_cache(&self) -> Result<()> {
        let cache = self.data.join("cache");
        if cache.exists() {
            std::fs::remove_dir_all(&cache).with_context(|| format!("cannot empty {}", cache.display()))?;
        }
        Ok(())
    }
}
