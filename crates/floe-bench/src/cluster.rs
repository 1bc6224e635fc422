//! The cluster workloads (issue 6), on shared backends (PostgreSQL + S3):
//!
//! - cluster-meta: metadata operations per second of one file system from one node
//!   and from two (separate `floe mount` processes, each with its own data directory),
//!   each client creating, stat'ing and unlinking small files in its own directory
//!   with a few threads; the same with two mounts of one SQLite data directory for
//!   contrast.
//! - cluster-cache: what the node-local disk block cache does for repeated reads of
//!   a large file from S3: the first read with nothing cached, then reads after a
//!   remount (the memory cache gone), on a node with the disk cache and one without.
//!
//! Rounds alternate between the cases compared, as everywhere in the harness.

use crate::node::{drop_page_cache, Backends, FloeDir};
use crate::stats::{Report, Series, Table};
use crate::workloads::filler;
use crate::Args;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Threads per client in cluster-meta.
const THREADS: usize = 4;

/// The kernel's attribute and name ttl of the cluster-meta mounts (floe mount's
/// default, named here because the stat phase waits it out).
const KERNEL_TTL: Duration = Duration::from_secs(1);

/// A file system mounted for a workload; unmounted when dropped.
struct Mounted<'a> {
    node: &'a FloeDir,
    dir: PathBuf,
    options: Vec<String>,
}

impl<'a> Mounted<'a> {
    fn new(node: &'a FloeDir, fs: &str, dir: PathBuf, options: &[&str]) -> Result<Mounted<'a>> {
        node.mount(fs, &dir, options)?;
        Ok(Mounted { node, dir, options: options.iter().map(|o| o.to_string()).collect() })
    }

    /// Unmounts (the server exits, its memory cache with it) and mounts again;
    /// `between` runs while nothing is mounted.
    fn remount(&self, fs: &str, between: impl FnOnce() -> Result<()>) -> Result<()> {
        self.node.umount(&self.dir)?;
        between()?;
        let options: Vec<&str> = self.options.iter().map(String::as_str).collect();
        self.node.mount(fs, &self.dir, &options)?;
        Ok(())
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.node.umount(&self.dir) {
            eprintln!("floe-bench: {e:#}");
        }
    }
}

/// Runs `work` with the file system `fs` created on `node`, then deletes it from the
/// shared backends, which outlive the run, whatever `work` returned.
fn with_fs<T>(node: &FloeDir, fs: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    node.create_fs(fs)?;
    let result = work();
    if node.is_shared() {
        if let Err(e) = node.delete_fs(fs) {
            eprintln!("floe-bench: {e:#}");
        }
    }
    result
}

#[derive(Clone, Copy)]
enum Op {
    Create,
    Stat,
    Unlink,
}

/// One phase on every client at once: THREADS threads per client directory, each on
/// its share of that directory's `files` files. Returns operations per second over
/// all clients, from the start until the last thread is done.
fn phase(dirs: &[&Path], files: usize, op: Op) -> Result<f64> {
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = dirs
            .iter()
            .flat_map(|dir| (0..THREADS).map(move |t| (*dir, t)))
            .map(|(dir, t)| {
                s.spawn(move || -> Result<()> {
                    for i in (t..files).step_by(THREADS) {
                        let path = dir.join(format!("f-{i:05}"));
                        match op {
                            Op::Create => drop(File::create(&path)?),
                            Op::Stat => {
                                std::fs::metadata(&path)?;
                            }
                            Op::Unlink => std::fs::remove_file(&path)?,
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        Ok(())
    })?;
    Ok((dirs.len() * files) as f64 / start.elapsed().as_secs_f64())
}

/// Create, stat and unlink `files` files in each client's directory, all clients at
/// once; pushes operations per second to `out` (create, stat, unlink).
fn create_stat_unlink(mounts: &[&Mounted], files: usize, out: &mut [Series; 3]) -> Result<()> {
    let dirs: Vec<PathBuf> = mounts.iter().enumerate().map(|(i, m)| m.dir.join(format!("client-{i}"))).collect();
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    for (series, op) in out.iter_mut().zip([Op::Create, Op::Stat, Op::Unlink]) {
        if let Op::Stat = op {
            // Otherwise the kernel answers the stat of a file created less than a ttl
            // ago itself, and the rate says nothing about floe.
            std::thread::sleep(KERNEL_TTL + Duration::from_millis(100));
        }
        series.samples.push(phase(&dirs, files, op)?);
    }
    for d in dirs {
        std::fs::remove_dir(d).with_context(|| format!("cannot remove {}", d.display()))?;
    }
    Ok(())
}

pub fn cluster_meta(args: &Args, backends: &Backends, report: &mut Report) -> Result<()> {
    const FS: &str = "cluster-meta";
    let files = if args.quick { 400 } else { 4000 };
    let rounds = if args.quick { 2 } else { 5 };
    let bin = args.floe_bin()?;
    let work = &args.work;
    let ttl = KERNEL_TTL.as_secs_f64().to_string();
    let opts = ["--ttl", ttl.as_str()];
    let a = FloeDir::fresh(&bin, work.join("cluster-a"), Some(backends.clone()))?;
    let b = a.sibling(work.join("cluster-b"))?;
    let lite = FloeDir::fresh(&bin, work.join("cluster-sqlite"), None)?;
    let blank = |target: &str| [(); 3].map(|_| Series { target: target.into(), samples: Vec::new() });
    // [backend] -> [create, stat, unlink]
    let mut two = [blank("2 clients"), blank("2 clients")];
    let mut one = [blank("1 client"), blank("1 client")];
    with_fs(&a, FS, || {
        with_fs(&lite, FS, || {
            let shared = [
                Mounted::new(&a, FS, work.join("mnt-cluster-a"), &opts)?,
                Mounted::new(&b, FS, work.join("mnt-cluster-b"), &opts)?,
            ];
            let local = [
                Mounted::new(&lite, FS, work.join("mnt-cluster-sqlite-a"), &opts)?,
                Mounted::new(&lite, FS, work.join("mnt-cluster-sqlite-b"), &opts)?,
            ];
            for round in 0..rounds {
                for (backend, mounts) in [&shared, &local].into_iter().enumerate() {
                    create_stat_unlink(&[&mounts[0]], files, &mut one[backend])?;
                    create_stat_unlink(&[&mounts[0], &mounts[1]], files, &mut two[backend])?;
                }
                eprintln!("floe-bench: cluster-meta round {} of {rounds} done", round + 1);
            }
            Ok(())
        })
    })?;
    let mut rows = Vec::new();
    let labels = ["PostgreSQL + S3, a node per client", "SQLite, two mounts of one data dir"];
    for ((label, two), one) in labels.iter().zip(two).zip(one) {
        for ((name, two), one) in ["create", "stat", "unlink"].iter().zip(two).zip(one) {
            rows.push((format!("{name}, {label}"), vec![two, one]));
        }
    }
    report.tables.push(Table {
        title: format!(
            "Metadata across clients: {files} empty files per client in its own directory, {THREADS} threads per \
             client; aggregate rate (stat: the client's own files, after the kernel's {}-s attribute ttl has passed)",
            ttl
        ),
        unit: "operations/s",
        higher_is_better: true,
        show_max: false,
        lead: Some("2 clients".into()),
        rows,
    });
    Ok(())
}

/// Reads `path` to its end in 1 MiB requests; MiB/s. Checks the length, so that a
/// short read cannot pass for a fast one.
fn read_all(path: &Path, size: u64) -> Result<f64> {
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let took = start.elapsed().as_secs_f64();
    anyhow::ensure!(total == size, "read {total} bytes of {} instead of {size}", path.display());
    Ok((size >> 20) as f64 / took)
}

pub fn cluster_cache(args: &Args, backends: &Backends, report: &mut Report) -> Result<()> {
    const FS: &str = "cluster-cache";
    let mib = args.cache_file_size.max(1);
    let size = mib << 20;
    let rounds = if args.quick { 2 } else { 5 };
    // Room for the whole file, and at least floe up's default.
    let cache_mib = (2 * mib).max(1024).to_string();
    let bin = args.floe_bin()?;
    let work = &args.work;
    let cached = FloeDir::fresh(&bin, work.join("cluster-cache-on"), Some(backends.clone()))?;
    let uncached = cached.sibling(work.join("cluster-cache-off"))?;
    let blank = |target: &str| [(); 3].map(|_| Series { target: target.into(), samples: Vec::new() });
    let mut series = [blank("disk cache"), blank("no disk cache")];
    with_fs(&cached, FS, || {
        let mounts = [
            Mounted::new(&cached, FS, work.join("mnt-cluster-cache-on"), &["--cache-size", &cache_mib])?,
            Mounted::new(&uncached, FS, work.join("mnt-cluster-cache-off"), &["--cache-size", "0"])?,
        ];
        // Written through the node without a disk cache, so that the other one has
        // nothing of it before its first read; fsync: on S3 before anyone reads.
        let mut f = File::create(mounts[1].dir.join("big"))?;
        let block = filler(1 << 20, 11);
        for _ in 0..mib {
            f.write_all(&block)?;
        }
        f.sync_all()?;
        drop(f);
        for round in 0..rounds {
            for (m, out) in mounts.iter().zip(series.iter_mut()) {
                let path = m.dir.join("big");
                m.remount(FS, || {
                    m.node.clear_disk_cache()?;
                    drop_page_cache()
                })?;
                out[0].samples.push(read_all(&path, size)?);
                m.remount(FS, || Ok(()))?;
                out[1].samples.push(read_all(&path, size)?);
                m.remount(FS, drop_page_cache)?;
                out[2].samples.push(read_all(&path, size)?);
            }
            eprintln!("floe-bench: cluster-cache round {} of {rounds} done", round + 1);
        }
        Ok(())
    })?;
    let cases = [
        "first read: fresh mount, disk cache emptied, page cache dropped",
        "read again after a remount (memory cache gone), page cache kept",
        "read again after a remount, page cache dropped (S3 server's and disk cache's files cold)",
    ];
    let [on, off] = series;
    let rows = cases.iter().zip(on).zip(off).map(|((case, on), off)| (case.to_string(), vec![on, off])).collect();
    report.tables.push(Table {
        title: format!(
            "{mib} MiB sequential read on PostgreSQL + S3, 1 MiB requests: a node with a {cache_mib} MiB disk \
             block cache vs one without"
        ),
        unit: "MiB/s",
        higher_is_better: true,
        show_max: false,
        lead: Some("disk cache".into()),
        rows,
    });
    Ok(())
}
