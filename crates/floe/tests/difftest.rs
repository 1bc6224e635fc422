//! The differential tester against a real floe mount: fixed seeds of random operation
//! sequences (several handles, renames across directories, truncates, holes, hard
//! links, permission changes as different users) applied to floe and to a tmpfs
//! directory, comparing every result. Longer runs: `scripts/difftest`.

mod common;

use common::Floe;
use std::path::PathBuf;
use std::time::Duration;

/// A reference directory on tmpfs (the kernel's own file system), else the temp dir.
fn reference_dir() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir in /dev/shm")
    } else {
        tempfile::tempdir().expect("tempdir")
    }
}

fn run_seed(seed: u64, ops: u64) {
    let floe = Floe::new();
    let m = floe.create_and_mount("diff");
    let reference = reference_dir();
    let mut config = floe_difftest::Config::new(seed, ops, m.path(), reference.path());
    config.max_duration = Some(Duration::from_secs(120));
    config.minimize_budget = Duration::from_secs(120);
    config.replay_file = Some(floe.data_dir().join(format!("difftest-{seed}.replay")));
    match floe_difftest::run(&config) {
        Ok(report) => {
            assert!(report.ops_run > 0, "no operations ran");
            eprintln!("seed {seed}: {} operations agree", report.ops_run);
        }
        Err(failure) => panic!("{failure}\n(mount log:\n{})", floe.log("diff")),
    }
}

#[test]
fn fixed_seeds_agree_with_tmpfs() {
    require_fuse!();
    for seed in [1, 2, 3, 4] {
        run_seed(seed, 700);
    }
}
