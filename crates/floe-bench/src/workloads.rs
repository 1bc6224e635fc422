//! The seed workload of BENCH.md. Every workload alternates targets round by round
//! (A, B, C, A, B, C, ...) so that machine noise spreads evenly over them. A round is
//! a batch of operations on one target, never a single one (ADR 16).

use crate::setup::{Environment, Target};
use crate::stats::{ms, us, Report, Series, Table};
use crate::Args;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn series(env: &Environment) -> Vec<Series> {
    env.targets.iter().map(|t| Series { target: t.name.to_string(), samples: Vec::new() }).collect()
}

fn bench_dir(t: &Target, name: &str) -> Result<PathBuf> {
    let d = t.dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

/// Deterministic filler bytes (xorshift), so that no target can compress or dedupe.
pub(crate) fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// 30-byte JSON files: rewrite (open with O_CREAT|O_TRUNC, write, close) and read
/// (open, read, close) of a file that was read before and not changed since.
pub fn json30(env: &Environment, args: &Args, report: &mut Report) -> Result<()> {
    let rounds = if args.quick { 2 } else { 20 };
    let files = 100;
    let body = br#"{"id":42,"status":"ok","n":17}"#;
    assert_eq!(body.len(), 30);
    let dirs: Vec<PathBuf> = env.targets.iter().map(|t| bench_dir(t, "json30")).collect::<Result<_>>()?;
    let path = |dir: &Path, n: usize| dir.join(format!("state-{n}.json"));
    let (mut writes, mut reads) = (series(env), series(env));
    // The targets take turns by rounds of one pass over the files, not by operation:
    // a peer that is a process of its own (rclone's Go runtime) stays busy for a while
    // after each request, and a floe request made in that while waited for a CPU
    // (ADR 16: floe's read p50 174 µs by operation, 35–37 µs by rounds).
    for _ in 0..rounds {
        for (i, dir) in dirs.iter().enumerate() {
            for n in 0..files {
                let t = Instant::now();
                let mut f = File::create(path(dir, n))?;
                f.write_all(body)?;
                drop(f);
                writes[i].samples.push(us(t.elapsed()));
            }
        }
    }
    let mut buf = Vec::with_capacity(64);
    // The first round reads every file once to warm it; it is not measured.
    for round in 0..=rounds {
        for (i, dir) in dirs.iter().enumerate() {
            for n in 0..files {
                buf.clear();
                let t = Instant::now();
                File::open(path(dir, n))?.read_to_end(&mut buf)?;
                let took = us(t.elapsed());
                anyhow::ensure!(buf == body, "{} returned the wrong bytes", env.targets[i].name);
                if round > 0 {
                    reads[i].samples.push(took);
                }
            }
        }
    }
    report.tables.push(Table {
        title: "30-byte JSON file".into(),
        unit: "µs",
        higher_is_better: false,
        show_max: false,
        lead: None,
        rows: vec![
            ("rewrite: open(O_TRUNC) + write + close".into(), writes),
            ("read, warm: open + read + close".into(), reads),
        ],
    });
    Ok(())
}

/// Read a file and write its content back as a new file, for the seed sizes.
pub fn seed(env: &Environment, args: &Args, report: &mut Report) -> Result<()> {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    let sizes: &[(&str, usize, usize)] = &[
        ("1 KiB", KIB, 200),
        ("100 KiB", 100 * KIB, 100),
        ("1 MiB", MIB, 50),
        ("10 MiB", 10 * MIB, 15),
        ("100 MiB", 100 * MIB, 5),
        ("400 MiB", 400 * MIB, 3),
    ];
    let dirs: Vec<PathBuf> = env.targets.iter().map(|t| bench_dir(t, "seed")).collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (label, size, n) in sizes {
        let n = if args.quick { (*n / 5).max(2) } else { *n };
        let data = filler(*size, *size as u64);
        for dir in &dirs {
            std::fs::write(dir.join("src"), &data)?;
        }
        let mut s = series(env);
        let mut buf = Vec::with_capacity(*size);
        for _ in 0..n {
            for (i, dir) in dirs.iter().enumerate() {
                let dst = dir.join("dst");
                let t = Instant::now();
                buf.clear();
                File::open(dir.join("src"))?.read_to_end(&mut buf)?;
                let mut f = File::create(&dst)?;
                f.write_all(&buf)?;
                drop(f);
                s[i].samples.push(ms(t.elapsed()));
                std::fs::remove_file(&dst)?;
            }
        }
        rows.push((format!("{label} read + write back"), s));
        for dir in &dirs {
            std::fs::remove_file(dir.join("src"))?;
        }
    }
    report.tables.push(Table {
        title: "Seed table: read a file, write it back as a new file (warm)".into(),
        unit: "ms",
        higher_is_better: false,
        show_max: false,
        lead: None,
        rows,
    });
    Ok(())
}

/// Create, stat and unlink 10,000 empty files in one directory.
pub fn meta_ops(env: &Environment, args: &Args, report: &mut Report) -> Result<()> {
    let files = 10_000;
    let rounds = if args.quick { 1 } else { 3 };
    let (mut create, mut stat, mut unlink) = (series(env), series(env), series(env));
    for _ in 0..rounds {
        for (i, t) in env.targets.iter().enumerate() {
            let dir = bench_dir(t, "meta")?;
            let names: Vec<PathBuf> = (0..files).map(|n| dir.join(format!("file-{n:05}"))).collect();
            let start = Instant::now();
            for p in &names {
                File::create(p)?;
            }
            create[i].samples.push(files as f64 / start.elapsed().as_secs_f64());
            let start = Instant::now();
            for p in &names {
                std::fs::metadata(p)?;
            }
            stat[i].samples.push(files as f64 / start.elapsed().as_secs_f64());
            let start = Instant::now();
            for p in &names {
                std::fs::remove_file(p)?;
            }
            unlink[i].samples.push(files as f64 / start.elapsed().as_secs_f64());
        }
    }
    report.tables.push(Table {
        title: "Metadata: 10,000 files in one directory".into(),
        unit: "operations/s",
        higher_is_better: true,
        show_max: false,
        lead: None,
        rows: vec![("create".into(), create), ("stat".into(), stat), ("unlink".into(), unlink)],
    });
    Ok(())
}

/// Extract a real source tree: the crates floe builds from (fixed by Cargo.lock).
pub fn tree(env: &Environment, args: &Args, report: &mut Report) -> Result<()> {
    let archive = args.work.join("tree.tar");
    let registry = registry_src()?;
    let status = Command::new("tar").arg("-C").arg(&registry).arg("-cf").arg(&archive).arg(".").status()?;
    anyhow::ensure!(status.success(), "cannot build the source tree archive");
    let count = Command::new("tar").arg("-tf").arg(&archive).output()?.stdout.split(|b| *b == b'\n').count();
    let rounds = if args.quick { 1 } else { 3 };
    let mut s = series(env);
    for _ in 0..rounds {
        for (i, t) in env.targets.iter().enumerate() {
            let dir = bench_dir(t, "tree")?;
            let start = Instant::now();
            let status = Command::new("tar").arg("-C").arg(&dir).arg("-xf").arg(&archive).status()?;
            anyhow::ensure!(status.success(), "tar failed on {}", t.name);
            s[i].samples.push(start.elapsed().as_secs_f64());
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let size = std::fs::metadata(&archive)?.len();
    report.tables.push(Table {
        title: format!(
            "Extract a source tree ({} entries, {} MiB: this machine's cargo registry sources)",
            count,
            size >> 20
        ),
        unit: "s",
        higher_is_better: false,
        show_max: false,
        lead: None,
        rows: vec![("tar -xf".into(), s)],
    });
    Ok(())
}

fn registry_src() -> Result<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let src = home.join("registry/src");
    let first = std::fs::read_dir(&src)
        .with_context(|| format!("{} (run cargo fetch first)", src.display()))?
        .next()
        .context("empty cargo registry")??;
    Ok(first.path())
}

/// 400 MiB written sequentially in 1 MiB writes, then read twice: the second read is
/// warm. Also a cold read after dropping every cache. Written twice: with a plain
/// close, and with fsync before the close, which is what floe's close promises (the
/// data is on disk when close returns, ADR 7) and a plain file's close does not.
pub fn sequential(env: &Environment, args: &Args, report: &mut Report) -> Result<()> {
    const SIZE: usize = 400 << 20;
    let rounds = if args.quick { 1 } else { 3 };
    let block = filler(1 << 20, 7);
    let (mut write, mut durable, mut warm, mut cold) = (series(env), series(env), series(env), series(env));
    let mut buf = vec![0u8; 1 << 20];
    let mut read = |path: &Path| -> Result<f64> {
        let start = Instant::now();
        let mut f = File::open(path)?;
        while f.read(&mut buf)? > 0 {}
        Ok((SIZE >> 20) as f64 / start.elapsed().as_secs_f64())
    };
    let write_file = |path: &Path, sync: bool| -> Result<f64> {
        let start = Instant::now();
        let mut f = File::create(path)?;
        for _ in 0..SIZE >> 20 {
            f.write_all(&block)?;
        }
        if sync {
            f.sync_all()?;
        }
        drop(f);
        Ok((SIZE >> 20) as f64 / start.elapsed().as_secs_f64())
    };
    for _ in 0..rounds {
        for (i, t) in env.targets.iter().enumerate() {
            let dir = bench_dir(t, "seq")?;
            durable[i].samples.push(write_file(&dir.join("synced"), true)?);
            std::fs::remove_file(dir.join("synced"))?;
            let path = dir.join("big");
            write[i].samples.push(write_file(&path, false)?);
            read(&path)?;
            warm[i].samples.push(read(&path)?);
        }
        env.drop_caches()?;
        for (i, t) in env.targets.iter().enumerate() {
            cold[i].samples.push(read(&t.dir.join("seq/big"))?);
        }
    }
    report.tables.push(Table {
        title: "400 MiB sequential, 1 MiB requests".into(),
        unit: "MiB/s",
        higher_is_better: true,
        show_max: false,
        lead: None,
        rows: vec![
            ("write + close".into(), write),
            ("write + fsync + close".into(), durable),
            ("read, warm".into(), warm),
            ("read, cold".into(), cold),
        ],
    });
    Ok(())
}
