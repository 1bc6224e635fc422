//! The command line given bad input: every refusal is one line `floe: ...` on stderr
//! with exit code 1, and nothing panics.

mod common;

use common::{floe_raw, is_mount_point, Floe};
use std::path::Path;

/// The uuid in `created file system NAME (UUID)`.
fn created_uuid(stdout: &str) -> String {
    let open = stdout.rfind('(').expect("uuid in the create output");
    let close = stdout.rfind(')').expect("uuid in the create output");
    stdout[open + 1..close].to_string()
}

fn listed_names(floe: &Floe) -> Vec<String> {
    let run = floe.run(["fs", "list"]);
    run.expect_ok()
        .lines()
        .skip(1) // The header.
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn mount_of_a_missing_file_system() {
    require_fuse!();
    let floe = Floe::new();
    floe.create("present");
    let dir = tempfile::tempdir().expect("mount point");
    for args in [vec!["mount", "absent", "-d"], vec!["mount", "absent"]] {
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|s| s.as_ref()).collect();
        args.insert(2, dir.path().as_os_str());
        let run = floe.run(&args);
        let line = run.expect_error_line();
        assert!(line.contains("absent"), "the error names the file system: {line}");
        assert!(!is_mount_point(dir.path()));
    }
}

#[test]
fn mount_point_that_does_not_exist() {
    require_fuse!();
    let floe = Floe::new();
    floe.create("fs1");
    let parent = tempfile::tempdir().expect("tempdir");
    let missing = parent.path().join("no-such-dir");
    for background in [true, false] {
        let mut args = vec!["mount".as_ref(), "fs1".as_ref(), missing.as_os_str()];
        if background {
            args.push("-d".as_ref());
        }
        let line = floe.run(&args).expect_error_line().to_string();
        assert!(line.contains("no-such-dir"), "the error names the mount point: {line}");
        assert!(line.contains("does not exist"), "{line}");
    }
    // A regular file is no mount point either.
    let file = parent.path().join("file");
    std::fs::write(&file, b"").expect("create");
    let line =
        floe.run(["mount".as_ref(), "fs1".as_ref(), file.as_os_str(), "-d".as_ref()]).expect_error_line().to_string();
    assert!(line.contains("not a directory"), "{line}");
}

#[test]
fn mounting_on_a_mount_point_is_refused() {
    require_fuse!();
    let floe = Floe::new();
    floe.create("one");
    floe.create("two");
    let m = floe.mount("one");
    for name in ["two", "one"] {
        let run = floe.run(["mount".as_ref(), name.as_ref(), m.path().as_os_str(), "-d".as_ref()]);
        let line = run.expect_error_line();
        assert!(line.contains("busy") || line.contains("already a mount point"), "{line}");
    }
    // The first mount still works.
    std::fs::write(m.join("f"), b"still served").expect("write");
    assert_eq!(std::fs::read(m.join("f")).expect("read"), b"still served");
}

#[test]
fn creating_a_file_system_twice() {
    let floe = Floe::new();
    floe.create("twice");
    let line = floe.run(["fs", "create", "twice"]).expect_error_line().to_string();
    assert!(line.contains("twice") && line.contains("exists"), "{line}");
    assert_eq!(listed_names(&floe), ["twice"]);
}

#[test]
fn invalid_file_system_names() {
    let floe = Floe::new();
    let long = "x".repeat(65);
    for name in ["", "a/b", "has space", "ünicode", "semi;colon", long.as_str()] {
        let run = floe.run(["fs", "create", "--", name]);
        run.expect_error_line();
    }
    assert!(listed_names(&floe).is_empty(), "no file system was created");
    // 64 characters are fine.
    floe.create(&"y".repeat(64));
}

#[test]
fn dot_names_are_invalid() {
    let floe = Floe::new();
    floe.create("keep");
    // What the first mount leaves: the disk cache directory.
    std::fs::create_dir_all(floe.data_dir().join("cache/keep")).expect("cache dir");
    for name in [".", ".."] {
        let create = floe.run(["fs", "create", name]);
        let delete = floe.run(["fs", "delete", name]);
        assert!(floe.data_dir().join("meta.db").is_file(), "`fs delete {name}` removed the metadata database");
        create.expect_error_line();
        delete.expect_error_line();
    }
    assert_eq!(listed_names(&floe), ["keep"]);
}

#[test]
fn deleting_a_mounted_file_system_is_refused() {
    require_fuse!();
    let floe = Floe::new();
    let uuid = created_uuid(floe.run(["fs", "create", "doomed"]).expect_ok());
    floe.create("bystander");
    let m = floe.mount("doomed");
    // Objects exist: a file larger than the inline limit.
    std::fs::write(m.join("data"), common::pattern(5 << 20, 1)).expect("write");
    let objects = floe.data_dir().join("objects").join(&uuid);
    assert!(objects.is_dir(), "{} holds the file system's objects", objects.display());

    let line = floe.run(["fs", "delete", "doomed"]).expect_error_line().to_string();
    assert!(line.contains("doomed") && line.contains("mounted"), "{line}");
    assert_eq!(std::fs::read(m.join("data")).expect("still readable").len(), 5 << 20);

    m.unmount();
    floe.run(["fs", "delete", "doomed"]).expect_ok();
    assert_eq!(listed_names(&floe), ["bystander"]);
    assert_eq!(files_under(&objects), 0, "objects of a deleted file system are left behind");
    let line = floe.run(["fs", "delete", "doomed"]).expect_error_line().to_string();
    assert!(line.contains("doomed"), "{line}");
}

fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| {
            let e = e.expect("dir entry");
            if e.file_type().expect("file type").is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn deleting_removes_the_objects_directory() {
    require_fuse!();
    let floe = Floe::new();
    let uuid = created_uuid(floe.run(["fs", "create", "doomed"]).expect_ok());
    let m = floe.mount("doomed");
    std::fs::write(m.join("data"), common::pattern(5 << 20, 1)).expect("write");
    m.unmount();
    let objects = floe.data_dir().join("objects").join(&uuid);
    assert!(objects.is_dir());
    floe.run(["fs", "delete", "doomed"]).expect_ok();
    assert!(!objects.exists(), "{} is left behind after delete", objects.display());
}

/// Rounds of the umount races below: each round hits the race only sometimes.
const RACE_ROUNDS: u64 = 10;

#[test]
fn delete_right_after_umount() {
    require_fuse!();
    let floe = Floe::new();
    for round in 0..RACE_ROUNDS {
        let name = format!("fs{round}");
        floe.create(&name);
        let mut m = floe.mount(&name);
        std::fs::write(m.join("f"), common::pattern(100 << 10, round)).expect("write");
        // As a user would: unmount, then delete at once.
        m.umount_no_wait().expect_ok();
        let run = floe.run(["fs", "delete", name.as_str()]);
        drop(m);
        assert!(run.ok(), "round {round}: `fs delete` right after `floe umount` failed: {run:#?}");
    }
    assert!(listed_names(&floe).is_empty());
}

#[test]
fn remount_right_after_umount() {
    require_fuse!();
    remount_rounds("again", |m| {
        m.umount_no_wait().expect_ok();
    });
}

#[test]
fn data_dir_that_is_a_regular_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"").expect("create");
    let mnt = tmp.path();
    let commands: Vec<Vec<&std::ffi::OsStr>> = vec![
        vec!["fs".as_ref(), "list".as_ref()],
        vec!["fs".as_ref(), "create".as_ref(), "x".as_ref()],
        vec!["fs".as_ref(), "delete".as_ref(), "x".as_ref()],
        vec!["fsck".as_ref(), "x".as_ref()],
        vec!["mount".as_ref(), "x".as_ref(), mnt.as_os_str(), "-d".as_ref()],
        vec!["mount".as_ref(), "x".as_ref(), mnt.as_os_str(), "--create".as_ref()],
    ];
    for args in commands {
        let mut all = vec!["--data-dir".as_ref(), file.as_os_str()];
        all.extend(args);
        let run = floe_raw(&all);
        let line = run.expect_error_line();
        assert!(line.contains("not-a-dir"), "the error names the data directory: {line}");
    }
    assert_eq!(std::fs::read(&file).expect("the file is untouched"), b"");
    assert!(!is_mount_point(mnt));
}

#[test]
fn other_missing_things() {
    require_fuse!();
    let floe = Floe::new();
    let line = floe.run(["fs", "delete", "ghost"]).expect_error_line().to_string();
    assert!(line.contains("ghost"), "{line}");
    let line = floe.run(["fsck", "ghost"]).expect_error_line().to_string();
    assert!(line.contains("ghost"), "{line}");
    let dir = tempfile::tempdir().expect("tempdir");
    floe.run(["umount".as_ref(), dir.path().as_os_str()]).expect_error_line();
    floe.run(["umount".as_ref(), dir.path().join("missing").as_os_str()]).expect_error_line();
    // Nothing was created by any of these.
    assert!(listed_names(&floe).is_empty());
    assert!(!Path::new(&floe.data_dir().join("objects")).read_dir().expect("objects dir").any(|_| true));
}

/// A plain `umount` (not `floe umount`) returns while the old server is still closing;
/// a mount made at once on the same directory must survive that server's exit.
#[test]
#[ignore = "flaky under parallel test load (a remount made at once after a plain umount was gone in round 7 of 10 once); `floe mount` now waits for the old server, which fixed the sequential case; to investigate with the server logs"]
fn remount_right_after_a_plain_umount() {
    require_root!();
    remount_rounds("plain", |m| m.plain_umount());
}

/// Rounds of: write, unmount with `unmount`, remount at once on the same directory,
/// let the old server exit; the new mount must still be there with the data.
fn remount_rounds(name: &str, unmount: impl Fn(&mut common::Mount)) {
    let floe = Floe::new();
    floe.create(name);
    let dir = tempfile::tempdir().expect("mount point");
    let mut m = floe.mount_at(name, dir.path(), &[]);
    for round in 0..RACE_ROUNDS {
        std::fs::write(m.join("f"), round.to_string()).expect("write");
        unmount(&mut m);
        let old = m;
        m = floe.mount_at(name, dir.path(), &[]);
        let old_pid = old.pid();
        drop(old); // Waits for the old server to exit.
        assert!(
            is_mount_point(dir.path()),
            "round {round}: the new mount is gone once the old server {old_pid} exited; log:\n{}",
            floe.log(name)
        );
        assert_eq!(std::fs::read_to_string(m.join("f")).expect("read"), round.to_string());
    }
    m.unmount();
}
