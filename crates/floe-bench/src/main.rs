//! floe's benchmark harness (../shared/BENCH.md): the seed file system workload on a
//! floe mount side by side with a local tmpfs directory (the limit), a plain directory
//! on the disk holding floe's objects, and `rclone mount` of a local directory (a
//! peer); with shared backends given (PostgreSQL + S3), a second floe mount on them
//! as one more target, and the cluster workloads (several nodes, the disk cache).
//! Rounds alternate between targets; results are percentiles and ratios, printed as
//! Markdown and written as JSON. Not a test: nothing here fails on timing.

mod cluster;
mod locks;
mod node;
mod setup;
mod stats;
mod workloads;

use anyhow::{bail, Result};
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Clone)]
#[command(about = "Run floe's file system benchmarks side by side with tmpfs, disk and rclone")]
pub struct Args {
    /// The floe binary (built with --release).
    #[arg(long, default_value = "target/release/floe")]
    floe: PathBuf,
    /// Working directory on the disk that holds floe's data.
    #[arg(long, default_value = "/var/tmp/floe-bench")]
    work: PathBuf,
    /// Fewer samples, for a quick look.
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/fs.json")]
    json: PathBuf,
    /// Workloads to run (default: all): json30, seed, meta, tree, seq, locks; with
    /// shared backends also cluster-meta, cluster-cache.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Shared metadata (postgres://...): with --shared-store, adds the floe-pg-s3
    /// target and enables the cluster workloads.
    #[arg(long, env = "FLOE_BENCH_META", value_name = "URL")]
    shared_meta: Option<String>,
    /// Shared object store (s3://bucket/prefix?endpoint=...), with AWS_ACCESS_KEY_ID
    /// and AWS_SECRET_ACCESS_KEY in the environment.
    #[arg(long, env = "FLOE_BENCH_STORE", value_name = "URL")]
    shared_store: Option<String>,
    /// MiB of node-local disk cache of the floe-pg-s3 target (floe up's default).
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    shared_cache_size: u64,
    /// MiB of the file that cluster-cache reads.
    #[arg(long, default_value_t = 100, value_name = "MIB")]
    cache_file_size: u64,
}

impl Args {
    pub fn floe_bin(&self) -> Result<PathBuf> {
        setup::floe_bin(&self.floe)
    }
}

/// A workload on the file system targets (floe, tmpfs, disk, rclone, ...).
type FsWorkload = fn(&setup::Environment, &Args, &mut stats::Report) -> Result<()>;

/// The file system workloads by name, in the order they run.
const FS_WORKLOADS: [(&str, FsWorkload); 6] = [
    ("json30", workloads::json30),
    ("seed", workloads::seed),
    ("meta", workloads::meta_ops),
    ("tree", workloads::tree),
    ("seq", workloads::sequential),
    ("locks", locks::locks),
];
const CLUSTER_WORKLOADS: [&str; 2] = ["cluster-meta", "cluster-cache"];

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("floe-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let backends = node::Backends::from_args(args.shared_meta.as_deref(), args.shared_store.as_deref())?;
    if let Some(w) =
        args.only.iter().find(|w| !FS_WORKLOADS.iter().any(|(n, _)| n == w) && !CLUSTER_WORKLOADS.contains(&w.as_str()))
    {
        let names: Vec<&str> = FS_WORKLOADS.iter().map(|(n, _)| *n).chain(CLUSTER_WORKLOADS).collect();
        bail!("unknown workload {w}; the workloads: {}", names.join(", "));
    }
    let wants = |w: &str| args.only.is_empty() || args.only.iter().any(|o| o == w);
    let cluster: Vec<&str> = CLUSTER_WORKLOADS.iter().copied().filter(|w| wants(w)).collect();
    let cluster_backends = match (&backends, cluster.first()) {
        (Some(b), Some(_)) => Some(b),
        (None, Some(w)) if !args.only.is_empty() => {
            bail!(
                "{w} needs shared backends: --shared-meta and --shared-store (or FLOE_BENCH_META and FLOE_BENCH_STORE)"
            )
        }
        _ => None,
    };
    let mut report = stats::Report::new("");
    if FS_WORKLOADS.iter().any(|(w, _)| wants(w)) {
        let env = setup::Environment::start(&args, backends.as_ref())?;
        report.machine = env.describe();
        let result =
            FS_WORKLOADS.iter().filter(|(w, _)| wants(w)).try_for_each(|(_, run)| run(&env, &args, &mut report));
        drop(env);
        result?;
    } else {
        report.machine = setup::describe_machine(&args.work);
    }
    if let Some(b) = cluster_backends {
        if !report.machine.contains("PostgreSQL") {
            report.machine.push_str(&format!(" · shared backends: {}", b.describe()));
        }
        if cluster.contains(&"cluster-meta") {
            cluster::cluster_meta(&args, b, &mut report)?;
        }
        if cluster.contains(&"cluster-cache") {
            cluster::cluster_cache(&args, b, &mut report)?;
        }
    }
    report.write_json(&args.json)?;
    println!("{}", report.markdown());
    Ok(())
}
