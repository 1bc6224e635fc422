//! Latency of single metadata operations, one after the other, on each backend named:
//! create (mknod of a file), stat (lookup + getattr) and unlink, each N times in one
//! directory. Prints p50/p90/p99 in microseconds. Figures for docs/adr/0011.
//!
//!   cargo run --release -p floe-meta --example meta_latency -- [N] URL...
//!
//! URLs as `floe_meta::open_url` takes them; `sqlite-tmp` is a fresh SQLite database
//! in a temporary directory. Each run works in a file system of its own and deletes it.

use floe_meta::{open_url, Caller, FileKind, InodeId, NewNode};
use std::time::{Duration, Instant};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = match args.first().and_then(|a| a.parse().ok()) {
        Some(n) => {
            args.remove(0);
            n
        }
        None => 2000,
    };
    if args.is_empty() {
        eprintln!("usage: meta_latency [N] URL...  (URL: sqlite-tmp, sqlite:///path, postgres://...)");
        std::process::exit(2);
    }
    println!("{:<48} {:>8} {:>8} {:>8} {:>8}", "backend / operation (µs)", "p50", "p90", "p99", "ops/s");
    for url in &args {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let target = if url == "sqlite-tmp" { tmp.path().join("meta.db").display().to_string() } else { url.clone() };
        let meta = match open_url(&target) {
            Ok(meta) => meta,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let name = format!("latency-{}", std::process::id());
        let fs = meta.create_fs(&name, &name).expect("create_fs").id;
        let root = Caller::root();
        let file = NewNode { kind: FileKind::File, perm: 0o644, umask: 0, rdev: 0, target: None };
        let names: Vec<String> = (0..n).map(|i| format!("f{i:06}")).collect();
        let mut create = Vec::with_capacity(n);
        let mut stat = Vec::with_capacity(n);
        let mut unlink = Vec::with_capacity(n);
        for name in &names {
            let t = Instant::now();
            meta.mknod(fs, &root, InodeId::ROOT, name.as_bytes(), &file).expect("mknod");
            create.push(t.elapsed());
        }
        for name in &names {
            let t = Instant::now();
            let a = meta.lookup(fs, &root, InodeId::ROOT, name.as_bytes()).expect("lookup");
            meta.getattr(fs, a.ino).expect("getattr");
            stat.push(t.elapsed());
        }
        for name in &names {
            let t = Instant::now();
            meta.unlink(fs, &root, InodeId::ROOT, name.as_bytes()).expect("unlink");
            unlink.push(t.elapsed());
        }
        meta.delete_fs(&name).expect("delete_fs");
        let label = shown(url);
        for (op, mut times) in [("create", create), ("stat", stat), ("unlink", unlink)] {
            times.sort();
            let total: Duration = times.iter().sum();
            let pick = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_micros();
            println!(
                "{:<48} {:>8} {:>8} {:>8} {:>8.0}",
                format!("{label} / {op}"),
                pick(0.5),
                pick(0.9),
                pick(0.99),
                times.len() as f64 / total.as_secs_f64()
            );
        }
    }
}

/// The URL without its password and credentials, to print.
fn shown(url: &str) -> String {
    match url.split_once('@') {
        Some((scheme_user, rest)) => {
            format!("{}://{rest}", scheme_user.split_once("://").map_or("postgres", |(s, _)| s))
        }
        None => url.to_string(),
    }
}
