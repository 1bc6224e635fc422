//! `floe-difftest`: runs a seeded random sequence of file operations on two directories
//! and compares every result (see the library's documentation).
//!
//! Exit status: 0 when the sides agree, 1 on a mismatch, 2 when the run cannot start.

use clap::Parser;
use floe_difftest::{Config, Failure, Fault, Script};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "floe-difftest", about = "Differential tester: the same random file operations on two directories")]
struct Args {
    /// Seed of the operation sequence (default: from the clock, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// How many operations to run.
    #[arg(long, default_value_t = 10_000)]
    ops: u64,
    /// Side A: the file system under test (e.g. a floe mount).
    #[arg(long = "a", value_name = "DIR")]
    dir_a: PathBuf,
    /// Side B: the reference directory (e.g. on tmpfs).
    #[arg(long = "b", value_name = "DIR")]
    dir_b: PathBuf,
    /// Users the operations run as (only when root).
    #[arg(long, value_delimiter = ',', default_value = "0,1000,1001")]
    uids: Vec<u32>,
    /// Replay the steps in FILE instead of generating them.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
    /// Compare the whole trees after every N operations (0: only at the end).
    #[arg(long, default_value_t = 1, value_name = "N")]
    check_every: u64,
    /// Make every Nth operation's tree comparison read all files, not just those
    /// written since the previous comparison (0: only at the end).
    #[arg(long, default_value_t = 100, value_name = "N")]
    contents_every: u64,
    /// Stop generating operations after this many seconds.
    #[arg(long, value_name = "SECS")]
    max_secs: Option<f64>,
    /// Where to write the failing sequence (default: floe-difftest-<seed>.replay).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Do not shrink a failing sequence.
    #[arg(long)]
    no_minimize: bool,
    /// How long shrinking may take.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    minimize_secs: f64,
    /// Leave out xattr operations.
    #[arg(long)]
    no_xattrs: bool,
    /// Keep the run directories after a successful run.
    #[arg(long)]
    keep: bool,
    /// Testing the tester: inject a fault on side A (extra-file-on-a:N or corrupt-write-on-a:N).
    #[arg(long, value_name = "KIND:N")]
    fault: Option<Fault>,
    /// Print every operation and its outcome to stderr.
    #[arg(long)]
    trace: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64
    });
    let script = match &args.replay {
        Some(path) => match Script::load(path) {
            Ok(script) => Some(script),
            Err(e) => {
                eprintln!("floe-difftest: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let seed = script.as_ref().map_or(seed, |s| s.seed);
    let mut config = Config::new(seed, args.ops, &args.dir_a, &args.dir_b);
    config.uids = args.uids;
    config.check_every = args.check_every;
    config.contents_every = args.contents_every;
    config.max_duration = args.max_secs.map(Duration::from_secs_f64);
    config.minimize = !args.no_minimize;
    config.minimize_budget = Duration::from_secs_f64(args.minimize_secs);
    config.xattrs = !args.no_xattrs;
    config.keep_dirs = args.keep;
    config.fault = args.fault;
    config.progress = true;
    config.trace = args.trace;
    config.replay_file = Some(args.out.unwrap_or_else(|| PathBuf::from(format!("floe-difftest-{seed}.replay"))));
    match &script {
        Some(s) => eprintln!("floe-difftest: replaying {} steps (seed {seed})", s.steps.len()),
        None => eprintln!("floe-difftest: seed {seed}, {} operations", config.ops),
    }
    let result = match &script {
        Some(s) => floe_difftest::replay(&config, s),
        None => floe_difftest::run(&config),
    };
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(failure @ Failure::Setup(_)) => {
            eprintln!("{failure}");
            ExitCode::from(2)
        }
        Err(failure) => {
            println!("{failure}");
            ExitCode::from(1)
        }
    }
}
