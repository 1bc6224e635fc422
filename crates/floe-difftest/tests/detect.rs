//! The tester must notice when the two sides differ, shrink the failing sequence and
//! leave a replay file that fails again.

mod common;

use floe_difftest::fault::EXTRA_FILE;
use floe_difftest::{Config, Failure, Fault, Mismatch, Script};
use std::process::Command;

fn expect_mismatch(result: Result<floe_difftest::Report, Failure>) -> Box<Mismatch> {
    match result {
        Err(Failure::Mismatch(m)) => {
            println!("{m}");
            m
        }
        Err(Failure::Setup(e)) => panic!("setup failed: {e}"),
        Ok(report) => panic!("the fault went unnoticed: {report}"),
    }
}

#[test]
fn an_extra_file_on_one_side_is_detected_and_minimized() {
    let (a, b) = common::two_dirs();
    let mut config = Config::new(11, 400, a.path(), b.path());
    config.fault = Some(Fault::ExtraFileOnA { at: 120 });
    let m = expect_mismatch(floe_difftest::run(&config));
    assert_eq!(m.op_index, Some(120), "found by the tree comparison right after the fault");
    assert!(m.detail.contains(&format!("only in A: {EXTRA_FILE}")), "{}", m.detail);
    let min = m.minimized.as_ref().expect("minimized");
    assert_eq!(min.len(), 1, "any one operation at or after the fault shows it: {min:?}");
    assert!(min[0].index >= 120);
    assert!(m.rerun_command.as_deref().is_some_and(|c| c.contains("--seed 11") && c.contains("--fault")));
}

#[test]
fn a_corrupted_write_is_detected_minimized_and_replayed() {
    let (a, b) = common::two_dirs();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let replay_file = out_dir.path().join("failure.replay");
    let mut config = Config::new(3, 600, a.path(), b.path());
    config.fault = Some(Fault::CorruptWriteOnA { at: 60 });
    config.replay_file = Some(replay_file.clone());
    let m = expect_mismatch(floe_difftest::run(&config));
    let min = m.minimized.clone().expect("minimized");
    assert!(min.len() <= 3, "an open and a write should do: {min:?}");
    assert!(min.last().is_some_and(|s| s.op.writes_data() && s.index >= 60), "{min:?}");
    assert!(m.run_dirs.0.starts_with(a.path()), "the failing run's directories are kept");

    // The replay file holds the minimized steps and the fault, and fails again.
    assert_eq!(m.replay_file.as_ref(), Some(&replay_file));
    let script = Script::load(&replay_file).expect("read the replay file");
    assert_eq!(script.steps, min);
    assert_eq!(script.fault, config.fault);
    let mut replay_config = Config::new(0, 0, a.path(), b.path());
    replay_config.minimize = false;
    let again = expect_mismatch(floe_difftest::replay(&replay_config, &script));
    assert_eq!(again.steps.len(), min.len());
    assert!(again.rerun_command.is_none());

    // Without the fault the same steps agree.
    let clean = Script { fault: None, ..script };
    floe_difftest::replay(&replay_config, &clean).unwrap_or_else(|f| panic!("{f}"));
}

#[test]
fn without_minimization_the_whole_prefix_is_reported() {
    let (a, b) = common::two_dirs();
    let mut config = Config::new(4, 300, a.path(), b.path());
    config.fault = Some(Fault::ExtraFileOnA { at: 40 });
    config.minimize = false;
    let m = expect_mismatch(floe_difftest::run(&config));
    assert!(m.minimized.is_none());
    assert_eq!(m.steps.len(), 41);
    assert_eq!(m.shortest().len(), 41);
}

#[test]
fn the_cli_reports_a_mismatch_and_replays_it() {
    let bin = env!("CARGO_BIN_EXE_floe-difftest");
    let (a, b) = common::two_dirs();
    let out_dir = tempfile::tempdir().expect("tempdir");
    let replay = out_dir.path().join("failure.replay");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(bin);
        cmd.arg("--a").arg(a.path()).arg("--b").arg(b.path()).args(args);
        let out = cmd.output().expect("run floe-difftest");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        (out.status.code(), stdout)
    };

    let (code, stdout) = run(&["--seed", "2", "--ops", "300"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("agree after 300 of 300 operations"));

    let replay_arg = replay.to_str().expect("UTF-8 path");
    let (code, stdout) =
        run(&["--seed", "2", "--ops", "300", "--fault", "corrupt-write-on-a:100", "--out", replay_arg]);
    assert_eq!(code, Some(1));
    assert!(stdout.contains("MISMATCH with seed 2"));
    assert!(stdout.contains("replay: floe-difftest"));
    assert!(stdout.contains("rerun from the seed: floe-difftest --seed 2"));
    assert!(replay.is_file());

    let (code, stdout) = run(&["--replay", replay_arg, "--no-minimize", "--out", replay_arg]);
    assert_eq!(code, Some(1));
    assert!(stdout.contains("MISMATCH"));

    let (code, _) = run(&["--ops", "10", "--b", "/nonexistent/floe-difftest"]);
    assert_eq!(code, Some(2), "a missing directory is a setup failure");
}
