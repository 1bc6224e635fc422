//! Access points and file system policy through real FUSE mounts of the `floe`
//! binary: the identity an access point imposes, its root directory, escape attempts
//! that must fail or stay inside, and the read-only and root-squash policies.

mod common;

use common::{check, cpath, errno_of, wait_for, Floe, Mount};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SECRET: &[u8] = b"the secret at the file system's root\n";

/// `floe ap create FS --path PATH ...`; returns the id it prints.
fn create_ap(floe: &Floe, fs: &str, path: &str, extra: &[&str]) -> String {
    let mut args = vec!["ap", "create", fs, "--path", path];
    args.extend_from_slice(extra);
    let out = floe.run(&args).expect_ok().trim().to_string();
    assert!(out.starts_with("fsap-") && out.len() == 22, "an EFS-style id: {out:?}");
    out
}

fn mount_ap(floe: &Floe, fs: &str, ap: &str) -> Mount {
    floe.mount_with(fs, &["--access-point", ap])
}

/// Runs `script` with `/bin/sh` as `uid`:`gid`; returns whether it succeeded and stderr.
fn run_as(uid: u32, gid: u32, script: &str) -> (bool, String) {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env("LC_ALL", "C")
        .current_dir("/")
        .stdin(Stdio::null())
        .uid(uid)
        .gid(gid)
        .output()
        .expect("start /bin/sh");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn q(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[track_caller]
fn owner(path: &Path) -> (u32, u32) {
    let md = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (md.uid(), md.gid())
}

#[track_caller]
fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).mode() & 0o7777
}

#[test]
fn access_point_identity_replaces_the_callers() {
    require_root!();
    let floe = Floe::new();
    let plain = floe.create_and_mount("idfs");
    // Owner and mode of the root go together.
    let line = floe
        .run(["ap", "create", "idfs", "--path", "/m", "--uid", "1", "--gid", "1", "--owner-uid", "1"])
        .expect_error_line()
        .to_string();
    assert!(line.contains("go together"), "{line}");
    let ap = create_ap(
        &floe,
        "idfs",
        "/message",
        &[
            "--uid",
            "1001",
            "--gid",
            "1002",
            "--secondary-gids",
            "3000,3001",
            "--owner-uid",
            "1001",
            "--owner-gid",
            "1002",
            "--mode",
            "750",
        ],
    );
    let m = mount_ap(&floe, "idfs", &ap);

    // Created by root through the access point: owned by its identity.
    fs::write(m.join("by-root"), b"x").expect("root creates through the AP");
    fs::create_dir(m.join("dir-by-root")).expect("root mkdirs through the AP");
    // Created by another uid, which has no rights on the 0750 root by its own identity.
    let (ok, err) = run_as(2000, 2000, &format!("echo y > {} && mkdir {}", q(&m.join("by-2000")), q(&m.join("d2000"))));
    assert!(ok, "uid 2000 creates through the AP as its identity: {err}");
    for name in ["by-root", "dir-by-root", "by-2000", "d2000"] {
        assert_eq!(owner(&m.join(name)), (1001, 1002), "{name} through the AP");
        assert_eq!(owner(&plain.join("message").join(name)), (1001, 1002), "{name} seen from a plain mount");
    }

    // The identity is not root: root's powers are gone through the access point...
    fs::write(plain.join("message/private"), b"root's\n").expect("create through the plain mount");
    fs::set_permissions(plain.join("message/private"), fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(errno_of(fs::read(m.join("private"))), libc::EACCES, "root reads a 0600 root file through the AP");
    assert_eq!(
        errno_of(std::os::unix::fs::chown(m.join("by-root"), Some(0), None)),
        libc::EPERM,
        "chown to root through the AP"
    );
    // ...and its secondary groups count: a 0070 file of group 3001 is readable.
    fs::write(plain.join("message/group"), b"group\n").expect("create");
    std::os::unix::fs::chown(plain.join("message/group"), Some(0), Some(3001)).expect("chgrp");
    fs::set_permissions(plain.join("message/group"), fs::Permissions::from_mode(0o040)).expect("chmod");
    assert_eq!(fs::read(m.join("group")).expect("read via a secondary group"), b"group\n");
    // access(2) answers for the AP identity (the kernel asks floe: no default_permissions).
    let private = cpath(&m.join("private"));
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(errno_of(check(unsafe { libc::access(private.as_ptr(), libc::R_OK) })), libc::EACCES);
    let by_root = cpath(&m.join("by-root"));
    // SAFETY: as above.
    check(unsafe { libc::access(by_root.as_ptr(), libc::R_OK | libc::W_OK) }).expect("access(2) of its own file");
    // Lookups check search permission on the parent as the AP identity.
    fs::create_dir(plain.join("message/closed")).expect("mkdir");
    fs::write(plain.join("message/closed/inner"), b"i").expect("create");
    fs::set_permissions(plain.join("message/closed"), fs::Permissions::from_mode(0o700)).expect("chmod");
    assert_eq!(errno_of(fs::metadata(m.join("closed/inner"))), libc::EACCES, "search permission");
}

#[test]
fn access_point_root_is_created_on_first_use() {
    require_root!();
    let floe = Floe::new();
    let plain = floe.create_and_mount("rootfs");
    let ap = create_ap(
        &floe,
        "rootfs",
        "/apps/deep/root",
        &["--uid", "1005", "--gid", "1006", "--owner-uid", "1005", "--owner-gid", "1006", "--mode", "0751"],
    );
    assert!(!plain.join("apps").exists(), "nothing is created before the first mount");
    let m = mount_ap(&floe, "rootfs", &ap);
    for p in ["apps", "apps/deep", "apps/deep/root"] {
        assert_eq!(owner(&plain.join(p)), (1005, 1006), "{p} owner");
        assert_eq!(mode(&plain.join(p)), 0o751, "{p} mode");
    }
    assert_eq!(mode(m.path()), 0o751, "the mount's root is the AP root");
    fs::write(m.join("hello"), b"hi").expect("the owner writes through the AP");
    assert_eq!(fs::read(plain.join("apps/deep/root/hello")).expect("read"), b"hi");
    drop(m);

    // An existing root is left as it is.
    fs::create_dir(plain.join("existing")).expect("mkdir");
    fs::set_permissions(plain.join("existing"), fs::Permissions::from_mode(0o700)).expect("chmod");
    let ap2 = create_ap(
        &floe,
        "rootfs",
        "/existing",
        &["--uid", "0", "--gid", "0", "--owner-uid", "1005", "--owner-gid", "1006", "--mode", "777"],
    );
    let m2 = mount_ap(&floe, "rootfs", &ap2);
    assert_eq!((owner(&plain.join("existing")), mode(&plain.join("existing"))), ((0, 0), 0o700));
    drop(m2);

    // Without creation info, a missing root makes the mount fail, in one line.
    let bare = create_ap(&floe, "rootfs", "/missing", &["--uid", "1", "--gid", "1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let run = floe.run([
        "mount".as_ref(),
        "rootfs".as_ref(),
        dir.path().as_os_str(),
        "--access-point".as_ref(),
        bare.as_str().as_ref(),
    ]);
    let line = run.expect_error_line();
    assert!(line.contains("no such file"), "{line}");
    assert!(!plain.join("missing").exists());
}

#[test]
fn access_point_cli_errors_are_one_line() {
    require_fuse!();
    let floe = Floe::new();
    floe.create("one");
    floe.create("two");
    let ap = create_ap(&floe, "one", "/a", &["--uid", "1", "--gid", "1"]);
    let long = "/x".repeat(51);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["ap", "create", "nofs", "--path", "/a", "--uid", "1", "--gid", "1"], "not found"),
        (vec!["ap", "create", "one", "--path", "rel", "--uid", "1", "--gid", "1"], "absolute"),
        (vec!["ap", "create", "one", "--path", "/a/../b", "--uid", "1", "--gid", "1"], ".."),
        (vec!["ap", "create", "one", "--path", &long, "--uid", "1", "--gid", "1"], "100 bytes"),
        (
            vec!["ap", "create", "one", "--path", "/m", "--uid", "1", "--gid", "1", "--owner-uid", "1", "--owner-gid"],
            "",
        ),
        (
            vec![
                "ap",
                "create",
                "one",
                "--path",
                "/m",
                "--uid",
                "1",
                "--gid",
                "1",
                "--owner-uid",
                "1",
                "--owner-gid",
                "1",
                "--mode",
                "0999",
            ],
            "bad mode",
        ),
        (vec!["ap", "delete", "fsap-00000000000000000"], "not found"),
        (vec!["ap", "delete", "nonsense"], "fsap-"),
        (vec!["ap", "list", "nofs"], "not found"),
        (vec!["fs", "policy", "nofs"], "not found"),
        (vec!["mount", "two", "/tmp", "--access-point", &ap], "belongs to file system one"),
        (vec!["mount", "one", "/tmp", "--access-point", "fsap-00000000000000000"], "not found"),
    ];
    for (args, want) in cases {
        let run = floe.run(&args);
        if want.is_empty() {
            // A flag without its value: clap's usage error, not a panic.
            assert!(!run.ok(), "{args:?}");
            common::assert_no_panic(&run);
            continue;
        }
        let line = run.expect_error_line();
        assert!(line.contains(want), "{args:?}: {line:?} should say {want:?}");
    }
    let listed = floe.run(["ap", "list", "one"]).expect_ok().to_string();
    assert!(listed.contains(&ap) && listed.contains("/a"), "{listed}");
    assert_eq!(floe.run(["ap", "list", "one"]).expect_ok().lines().count(), 2, "nothing else was created");
    floe.run(["ap", "delete", &ap]).expect_ok();
    assert!(!floe.run(["ap", "list"]).expect_ok().contains(&ap));
    // Deleting the file system deletes its access points.
    let ap2 = create_ap(&floe, "two", "/b", &["--uid", "1", "--gid", "1"]);
    floe.run(["fs", "delete", "two"]).expect_ok();
    assert!(!floe.run(["ap", "list"]).expect_ok().contains(&ap2));
}

/// A mount of file system `fs` through an access point at `/ap`, a plain mount, and a
/// secret at the file system's root.
struct EscapeFixture {
    plain: Mount,
    ap: Mount,
}

fn escape_fixture(floe: &Floe, fs_name: &str) -> EscapeFixture {
    let plain = floe.create_and_mount(fs_name);
    fs::write(plain.join("secret"), SECRET).expect("write /secret");
    // Names the host has too: resolving them on the host would be an escape.
    fs::create_dir_all(plain.join("etc")).expect("mkdir /etc");
    fs::write(plain.join("etc/passwd"), SECRET).expect("write /etc/passwd");
    let id = create_ap(
        floe,
        fs_name,
        "/ap",
        &["--uid", "1001", "--gid", "1001", "--owner-uid", "1001", "--owner-gid", "1001", "--mode", "755"],
    );
    let ap = mount_ap(floe, fs_name, &id);
    fs::create_dir_all(ap.join("d1/d2/d3")).expect("mkdir inside");
    fs::write(ap.join("inside"), b"inside\n").expect("write inside");
    EscapeFixture { plain, ap }
}

/// Reading `path` must not give the secret, nor any host file.
#[track_caller]
fn assert_not_secret(path: &Path) {
    if let Ok(data) = fs::read(path) {
        assert_ne!(data, SECRET, "{} reads the secret outside the access point", path.display());
    }
}

#[test]
fn nothing_escapes_an_access_point() {
    require_root!();
    let floe = Floe::new();
    let EscapeFixture { plain, ap: m } = escape_fixture(&floe, "escfs");
    let host_parent = m.path().parent().expect("the mount point has a parent");
    let host_parent_ino = fs::metadata(host_parent).expect("stat").ino();

    // `..` chains: from the root they reach the host directory above the mount
    // point (the kernel's rule), never the file system's root or its /secret.
    for p in ["..", "../..", "d1/../..", "d1/d2/d3/../../../..", "d1/d2/d3/../../../../.."] {
        let md = fs::metadata(m.join(p)).expect("stat a .. chain");
        assert_ne!(md.ino(), fs::metadata(plain.path()).expect("stat").ino(), "{p} is not floe's root");
        assert_not_secret(&m.join(p).join("secret"));
    }
    assert_eq!(fs::metadata(m.join("..")).expect("stat").ino(), host_parent_ino, "the mount's .. is the host's");
    assert_eq!(fs::metadata(m.join("d1/d2/../..")).expect("stat").ino(), fs::metadata(m.path()).expect("stat").ino());

    // Symlinks resolve inside the root as if it were "/".
    let mount = m.path().to_str().expect("utf-8 mount path").to_string();
    let links: &[(&str, &str, &str)] = &[
        ("root", "/", ""),
        ("passwd", "/etc/passwd", "/etc/passwd"),
        ("dotdot-abs", "/../../secret", "/secret"),
        ("abs-inside", "/inside", "/inside"),
        ("rel-up", "../../../../secret", "/secret"),
        ("d1/d2/rel-deep", "../../../../../../etc/passwd", "/etc/passwd"),
        ("d1/d2/rel-fine", "../../inside", "/inside"),
        ("d1/down", "d2/d3", ""), // relative without `..`: returned as stored
    ];
    for (name, target, want) in links {
        symlink(target, m.join(name)).expect("create a symlink");
        let got = fs::read_link(m.join(name)).expect("readlink");
        let want = if *name == "d1/down" { (*target).to_string() } else { format!("{mount}{want}") };
        assert_eq!(got, PathBuf::from(&want), "readlink {name} -> {target}");
        assert_not_secret(&m.join(name));
    }
    assert_eq!(fs::read(m.join("d1/d2/rel-fine")).expect("read through a symlink"), b"inside\n");
    assert_eq!(errno_of(fs::read(m.join("passwd"))), libc::ENOENT, "not the host's /etc/passwd");
    // The plain mount sees the targets as stored.
    assert_eq!(fs::read_link(plain.join("ap/dotdot-abs")).expect("readlink"), PathBuf::from("/../../secret"));

    // A symlink to a symlink, and a directory symlink that climbs, followed by more.
    symlink("/../secret", m.join("hop2")).expect("symlink");
    symlink("hop2", m.join("hop1")).expect("symlink");
    assert_not_secret(&m.join("hop1"));
    symlink("../../..", m.join("d1/up")).expect("symlink");
    assert_eq!(fs::read_link(m.join("d1/up")).expect("readlink"), PathBuf::from(&mount));
    assert_not_secret(&m.join("d1/up/secret"));
    assert_not_secret(&m.join("d1/up/../secret"));
    assert_eq!(fs::read(m.join("d1/up/inside")).expect("read"), b"inside\n");
    symlink("up/../../secret", m.join("d1/via-up")).expect("symlink");
    assert_eq!(fs::read_link(m.join("d1/via-up")).expect("readlink"), PathBuf::from(format!("{mount}/secret")));

    // Hard links and renames cannot cross mounts.
    fs::write(m.join("mine"), b"mine\n").expect("write");
    assert_eq!(errno_of(fs::hard_link(m.join("mine"), plain.join("stolen"))), libc::EXDEV, "link out");
    assert_eq!(errno_of(fs::hard_link(plain.join("secret"), m.join("secret"))), libc::EXDEV, "link in");
    assert_eq!(errno_of(fs::rename(m.join("mine"), plain.join("moved"))), libc::EXDEV, "rename out");
    assert_eq!(errno_of(fs::rename(m.join("d1"), host_parent.join("d1"))), libc::EXDEV, "rename to the host");
    assert_eq!(errno_of(fs::rename(plain.join("secret"), m.join("secret"))), libc::EXDEV, "rename in");
    assert_eq!(errno_of(fs::rename(m.join("mine"), m.join("../escaped"))), libc::EXDEV, "rename via ..");
    // linkat following an escaping symlink links what it resolves to inside, if anything.
    symlink("/../../secret", m.join("to-secret")).expect("symlink");
    let (from, to) = (cpath(&m.join("to-secret")), cpath(&m.join("linked")));
    // SAFETY: valid NUL-terminated paths.
    let r = check(unsafe {
        libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW)
    });
    assert_eq!(errno_of(r), libc::ENOENT, "linkat follows the symlink inside the root, where /secret is not");
    fs::write(m.join("secret"), b"the AP's own /secret\n").expect("write");
    // SAFETY: as above.
    check(unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) })
        .expect("linkat of the AP's own /secret");
    assert_eq!(fs::read(m.join("linked")).expect("read"), b"the AP's own /secret\n");
    assert_eq!(fs::read(plain.join("secret")).expect("read"), SECRET, "the real secret is untouched");
    assert_eq!(fs::metadata(plain.join("secret")).expect("stat").nlink(), 1);
}

#[test]
fn symlinks_stay_inside_while_directories_move() {
    require_root!();
    let floe = Floe::new();
    let EscapeFixture { plain: _plain, ap: m } = escape_fixture(&floe, "racefs");
    let mount = m.path().to_path_buf();
    fs::create_dir_all(m.join("x/y/z")).expect("mkdir");
    fs::create_dir_all(m.join("a/b")).expect("mkdir");
    // The link climbs more levels than it is deep wherever it is moved.
    symlink("../../../../../../secret", m.join("a/b/link")).expect("symlink");
    symlink("../../../../inside", m.join("a/b/link2")).expect("symlink");
    const ROUNDS: usize = 200;
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let mover = s.spawn(|| {
            // Move `b` between depths 2 and 4.
            for i in 0..ROUNDS {
                let (from, to) = if i % 2 == 0 { ("a/b", "x/y/z/b") } else { ("x/y/z/b", "a/b") };
                fs::rename(m.join(from), m.join(to)).expect("rename through the AP");
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut resolved = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            for dir in ["a/b", "x/y/z/b"] {
                for name in ["link", "link2"] {
                    let p = m.join(dir).join(name);
                    if let Ok(target) = fs::read_link(&p) {
                        assert!(target.starts_with(&mount), "{} -> {} leaves the mount", p.display(), target.display());
                        resolved += 1;
                    }
                    assert_not_secret(&p);
                }
            }
        }
        mover.join().expect("the mover thread");
        assert!(resolved > 0, "some readlink succeeded during the race");
    });
    assert_eq!(fs::read(m.join("a/b/link2")).expect("read after the race"), b"inside\n");
    assert_not_secret(&m.join("a/b/link"));
}

#[test]
fn visible_path_prefixes_resolved_symlinks() {
    require_root!();
    let floe = Floe::new();
    floe.create("visfs");
    let id = create_ap(
        &floe,
        "visfs",
        "/fn",
        &["--uid", "1001", "--gid", "1001", "--owner-uid", "1001", "--owner-gid", "1001", "--mode", "755"],
    );
    let m = floe.mount_with("visfs", &["--access-point", &id, "--visible-path", "/mnt/data"]);
    symlink("/lib/x", m.join("abs")).expect("symlink");
    assert_eq!(fs::read_link(m.join("abs")).expect("readlink"), PathBuf::from("/mnt/data/lib/x"));
    let line = floe.run(["mount", "visfs", "/tmp", "--visible-path", "rel"]).expect_error_line().to_string();
    assert!(line.contains("absolute"), "{line}");
}

// --- Policy ---------------------------------------------------------------------------

/// Whether creating `path` fails with EROFS.
fn create_errno(path: &Path) -> Option<i32> {
    fs::File::create(path).err().and_then(|e| e.raw_os_error())
}

#[test]
fn read_only_policy_refuses_changes_on_every_client() {
    require_root!();
    let floe = Floe::new();
    let running = floe.create_and_mount("rofs");
    fs::write(running.join("f"), b"before\n").expect("write");
    fs::create_dir(running.join("d")).expect("mkdir");
    let shown = floe.run(["fs", "policy", "rofs"]).expect_ok().to_string();
    assert!(shown.contains("read-only:   false") && shown.contains("root-access: true"), "{shown}");
    floe.run(["fs", "policy", "rofs", "--read-only", "true"]).expect_ok();
    assert!(floe.run(["fs", "policy", "rofs"]).expect_ok().contains("read-only:   true"));

    // A client started after the policy was set.
    let m = floe.mount("rofs");
    assert_eq!(fs::read(m.join("f")).expect("reads still work"), b"before\n");
    assert_eq!(create_errno(&m.join("new")), Some(libc::EROFS), "create");
    assert_eq!(errno_of(fs::OpenOptions::new().write(true).open(m.join("f"))), libc::EROFS, "open for write");
    assert_eq!(errno_of(fs::remove_file(m.join("f"))), libc::EROFS, "unlink");
    assert_eq!(errno_of(fs::set_permissions(m.join("f"), fs::Permissions::from_mode(0o600))), libc::EROFS, "chmod");
    assert_eq!(errno_of(fs::create_dir(m.join("d2"))), libc::EROFS, "mkdir");
    assert_eq!(errno_of(fs::rename(m.join("f"), m.join("g"))), libc::EROFS, "rename");
    assert_eq!(errno_of(symlink("x", m.join("l"))), libc::EROFS, "symlink");

    // The client that was running before picks the change up (within POLICY_TTL).
    wait_for("the running client to refuse writes", || create_errno(&running.join("new")) == Some(libc::EROFS));
    // An open writable handle is refused too.
    floe.run(["fs", "policy", "rofs", "--read-only", "false"]).expect_ok();
    wait_for("the running client to accept writes again", || fs::write(running.join("again"), b"1").is_ok());
    let mut handle = fs::OpenOptions::new().create(true).append(true).open(running.join("h")).expect("open");
    floe.run(["fs", "policy", "rofs", "--read-only", "true"]).expect_ok();
    wait_for("writes through an open handle to fail", || {
        handle.write_all(b"more").and_then(|_| handle.sync_all()).err().and_then(|e| e.raw_os_error())
            == Some(libc::EROFS)
    });
    drop(handle);
    assert_eq!(fs::read(m.join("f")).expect("read"), b"before\n", "nothing was written while read-only");
}

/// Root's writes into a 0755 directory of another user fail, and what root creates
/// in a 0777 directory belongs to nobody.
#[track_caller]
fn assert_root_squashed(m: &Mount, plain: &Mount, what: &str) {
    assert_eq!(errno_of(fs::write(m.join("owned/x"), b"x")), libc::EACCES, "{what}: create in 0755 of uid 1000");
    assert_eq!(errno_of(fs::remove_file(m.join("owned/kept"))), libc::EACCES, "{what}: unlink there");
    assert_eq!(errno_of(fs::OpenOptions::new().write(true).open(m.join("owned/kept"))), libc::EACCES, "{what}: write");
    let name = format!("by-squashed-root-{}", what.replace(' ', "-"));
    fs::write(m.join("open").join(&name), b"x").expect("create in 0777");
    assert_eq!(owner(&plain.join("open").join(&name)), (65534, 65534), "{what}: owner of root's new file");
}

#[test]
fn root_squashing_by_client_flag_and_by_policy() {
    require_root!();
    let floe = Floe::new();
    let plain = floe.create_and_mount("sqfs");
    fs::create_dir(plain.join("owned")).expect("mkdir");
    fs::write(plain.join("owned/kept"), b"k").expect("write");
    std::os::unix::fs::chown(plain.join("owned/kept"), Some(1000), Some(1000)).expect("chown");
    fs::set_permissions(plain.join("owned/kept"), fs::Permissions::from_mode(0o644)).expect("chmod");
    std::os::unix::fs::chown(plain.join("owned"), Some(1000), Some(1000)).expect("chown");
    fs::set_permissions(plain.join("owned"), fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::create_dir(plain.join("open")).expect("mkdir");
    fs::set_permissions(plain.join("open"), fs::Permissions::from_mode(0o777)).expect("chmod");

    let squashed = floe.mount_with("sqfs", &["--no-root-access"]);
    assert_root_squashed(&squashed, &plain, "no-root-access flag");
    // Other users are not affected by the flag.
    let (ok, err) = run_as(1000, 1000, &format!("echo y > {}", q(&squashed.join("owned/by-owner"))));
    assert!(ok, "the owner writes through a squashing mount: {err}");
    drop(squashed);

    floe.run(["fs", "policy", "sqfs", "--root-access", "false"]).expect_ok();
    let m = floe.mount("sqfs");
    assert_root_squashed(&m, &plain, "policy");
    // The plain client that was running is squashed too, once it read the policy.
    wait_for("the running client to squash root", || {
        fs::write(plain.join("owned/late"), b"x").err().and_then(|e| e.raw_os_error()) == Some(libc::EACCES)
    });
    floe.run(["fs", "policy", "sqfs", "--root-access", "true"]).expect_ok();
    wait_for("root access to come back", || fs::write(m.join("owned/back"), b"x").is_ok());
    assert_eq!(owner(&plain.join("owned/back")), (0, 0));
}
