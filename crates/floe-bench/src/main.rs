//! floe's benchmark harness (../shared/BENCH.md): the seed file system workload on a
//! floe mount side by side with a local tmpfs directory (the limit), a plain directory
//! on the disk holding floe's objects, and `rclone mount` of a local directory (a
//! peer). Rounds alternate between targets; results are percentiles and ratios,
//! printed as Markdown and written as JSON. Not a test: nothing here fails on timing.

mod locks;
mod setup;
mod stats;
mod workloads;

use anyhow::Result;
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
    /// Workloads to run (default: all): json30, seed, meta, tree, seq, locks.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("floe-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let env = setup::Environment::start(&args)?;
    let wants = |w: &str| args.only.is_empty() || args.only.iter().any(|o| o == w);
    let mut report = stats::Report::new(&env.describe());
    let result = (|| -> Result<()> {
        if wants("json30") {
            workloads::json30(&env, &args, &mut report)?;
        }
        if wants("seed") {
            workloads::seed(&env, &args, &mut report)?;
        }
        if wants("meta") {
            workloads::meta_ops(&env, &args, &mut report)?;
        }
        if wants("tree") {
            workloads::tree(&env, &args, &mut report)?;
        }
        if wants("seq") {
            workloads::sequential(&env, &args, &mut report)?;
        }
        if wants("locks") {
            locks::locks(&env, &args, &mut report)?;
        }
        Ok(())
    })();
    drop(env);
    result?;
    report.write_json(&args.json)?;
    println!("{}", report.markdown());
    Ok(())
}
