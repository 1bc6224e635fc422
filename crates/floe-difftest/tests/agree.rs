//! Two identical local directories must always agree, and the tester's pieces (the
//! generator, the replay format, identity switching) must behave.

mod common;

use floe_difftest::gen::Generator;
use floe_difftest::identity::{self, Switcher};
use floe_difftest::{Config, Script};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

#[test]
fn identical_local_dirs_agree_over_fixed_seeds() {
    for seed in [1, 2, 3, 4] {
        let (a, b) = common::two_dirs();
        let config = Config::new(seed, 400, a.path(), b.path());
        let report = floe_difftest::run(&config).unwrap_or_else(|f| panic!("seed {seed}:\n{f}"));
        println!("{report}");
        assert_eq!(report.ops_run, 400);
        assert!(!report.stopped_by_time);
        assert_eq!(report.tree_checks, 401, "a tree comparison after every operation and one at the end");
        assert!(common::names(a.path()).is_empty(), "the run directory is removed after a run that agrees");
        assert!(common::names(b.path()).is_empty());
    }
}

#[test]
fn a_long_run_without_per_operation_checks_agrees() {
    let (a, b) = common::two_dirs();
    let mut config = Config::new(99, 5000, a.path(), b.path());
    config.check_every = 0;
    let report = floe_difftest::run(&config).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!((report.ops_run, report.tree_checks), (5000, 1));
}

#[test]
fn max_duration_stops_generating() {
    let (a, b) = common::two_dirs();
    let mut config = Config::new(5, 10_000_000, a.path(), b.path());
    config.max_duration = Some(Duration::from_millis(300));
    let report = floe_difftest::run(&config).unwrap_or_else(|f| panic!("{f}"));
    assert!(report.stopped_by_time);
    assert!(report.ops_run > 0 && report.ops_run < config.ops, "ran {}", report.ops_run);
}

#[test]
fn reports_what_the_environment_allowed() {
    let (a, b) = common::two_dirs();
    let report = floe_difftest::run(&Config::new(8, 50, a.path(), b.path())).unwrap_or_else(|f| panic!("{f}"));
    if identity::is_root() {
        assert_eq!(report.uids, vec![0, 1000, 1001]);
        assert!(report.uid_switching);
    } else {
        assert_eq!(report.uids, vec![identity::euid()]);
        assert!(!report.uid_switching);
        assert!(report.notes.iter().any(|n| n.contains("uid switching skipped")), "{:?}", report.notes);
    }
}

fn generate(seed: u64, n: usize) -> Vec<floe_difftest::Step> {
    let mut gen = Generator::new(seed, &[0, 1000, 1001], true);
    (0..n)
        .map(|i| {
            let step = gen.next_step();
            // Any fixed pattern of agreed results will do.
            gen.observe(&step, i % 3 != 0);
            step
        })
        .collect()
}

#[test]
fn generation_depends_only_on_the_seed_and_results() {
    assert_eq!(generate(42, 3000), generate(42, 3000));
    assert_ne!(generate(42, 100), generate(43, 100));
}

#[test]
fn generation_covers_every_operation() {
    let names: BTreeSet<&str> = generate(1, 20_000).iter().map(|s| s.op.name()).collect();
    let all = [
        "open",
        "close",
        "pwrite",
        "write",
        "pread",
        "read",
        "ftruncate",
        "truncate",
        "fsync",
        "fallocate",
        "fstat",
        "stat",
        "mkdir",
        "rmdir",
        "unlink",
        "rename",
        "link",
        "symlink",
        "readlink",
        "chmod",
        "chown",
        "utimens",
        "readdir",
        "setxattr",
        "getxattr",
        "listxattr",
        "removexattr",
        "access",
        "umask",
    ];
    for name in all {
        assert!(names.contains(name), "{name} never generated");
    }
}

#[test]
fn replay_text_round_trips() {
    let script = Script { seed: 42, fault: None, steps: generate(42, 5000) };
    let text = script.to_text();
    assert_eq!(Script::parse(&text), Ok(script));
}

#[test]
fn replay_files_cannot_reach_outside_the_run_directory() {
    for line in [
        "0 uid=0 unlink path=../x",
        "0 uid=0 unlink path=/etc/passwd",
        "0 uid=0 rename from=a to=b/../../c how=plain",
        "0 uid=0 symlink target=/etc path=a",
        "0 uid=0 symlink target=../x path=a",
    ] {
        assert!(Script::parse(line).is_err(), "{line} accepted");
    }
    assert!(Script::parse("0 uid=0 symlink target=x/y path=a").is_ok());
}

#[test]
fn operations_run_as_their_user() {
    let (a, b) = common::two_dirs();
    let script = Script::parse(
        "seed 1\n\
         0 uid=1000 open h=0 path=mine flags=WRONLY|CREAT mode=0o600\n\
         1 uid=0 mkdir path=root-dir mode=0o755\n",
    )
    .expect("parse the script");
    let mut config = Config::new(1, 0, a.path(), b.path());
    config.keep_dirs = true;
    let report = floe_difftest::replay(&config, &script).unwrap_or_else(|f| panic!("{f}"));
    let (mine, root_dir) = (report.run_dirs.0.join("mine"), report.run_dirs.0.join("root-dir"));
    let (mine, root_dir) = (std::fs::metadata(mine).expect("stat"), std::fs::metadata(root_dir).expect("stat"));
    if identity::is_root() {
        assert_eq!((mine.uid(), mine.gid()), (1000, 1000));
        assert_eq!((root_dir.uid(), root_dir.gid()), (0, 0));
    } else {
        assert_eq!(mine.uid(), identity::euid());
    }
}

#[test]
fn identity_switching_is_per_thread_and_restored() {
    let Some(switcher) = Switcher::new() else {
        println!("skipping identity_switching_is_per_thread_and_restored: not root");
        return;
    };
    let dir = common::two_dirs().0;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let owner = |name: &str| std::fs::metadata(dir.path().join(name)).expect("stat").uid();
    // A thread started while this one acts as root: it must stay root throughout.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        let dir = &dir;
        s.spawn(move || {
            let _ = wait.recv();
            std::fs::write(dir.path().join("other-thread"), b"x").expect("create on another thread");
            let _ = done.send(());
        });
        let _as_user = switcher.become_user(1001);
        std::fs::write(dir.path().join("as-user"), b"x").expect("create as uid 1001");
        let _ = go.send(());
        let _ = finished.recv();
    });
    std::fs::write(dir.path().join("after"), b"x").expect("create after the guard");
    assert_eq!((owner("as-user"), owner("other-thread"), owner("after")), (1001, 0, 0));
}
