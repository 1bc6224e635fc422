//! Permission checks as other users, through a real FUSE mount served as root (so with
//! allow_other). Each action runs in a child process started with another uid and gid.

mod common;

use common::Floe;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

#[derive(Debug)]
struct Res {
    ok: bool,
    stderr: String,
}

fn res(out: Output) -> Res {
    Res { ok: out.status.success(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(script).env("LC_ALL", "C").current_dir("/").stdin(Stdio::null());
    c
}

/// Runs `script` with `/bin/sh` as `uid`:`gid` and no supplementary groups.
fn run_as(uid: u32, gid: u32, script: &str) -> Res {
    res(sh(script).uid(uid).gid(gid).output().expect("start /bin/sh"))
}

/// Runs `script` as `uid`:`gid` with supplementary `groups`.
fn run_with_groups(uid: u32, gid: u32, groups: &[u32], script: &str) -> Res {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    let mut cmd = sh(script);
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    res(cmd.output().expect("start /bin/sh"))
}

/// Quotes a path for the shell.
fn q(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[track_caller]
fn assert_denied(r: &Res, message: &str, what: &str) {
    assert!(!r.ok, "{what} should have failed: {r:?}");
    assert!(r.stderr.contains(message), "{what}: expected {message:?} in stderr: {r:?}");
}

#[track_caller]
fn assert_ok(r: &Res, what: &str) {
    assert!(r.ok, "{what} should have worked: {r:?}");
}

#[test]
fn private_file_is_unreadable_for_others() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("perm");
    let secret = m.join("secret");
    fs::write(&secret, b"root only\n").expect("create");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    let public = m.join("public");
    fs::write(&public, b"everyone\n").expect("create");
    fs::set_permissions(&public, fs::Permissions::from_mode(0o644)).expect("chmod 0644");

    assert_denied(&run_as(1000, 1000, &format!("cat {}", q(&secret))), "Permission denied", "reading 0700");
    assert_denied(&run_as(1000, 1000, &format!("echo x > {}", q(&secret))), "Permission denied", "writing 0700");
    assert_denied(&run_as(1000, 1000, &format!("echo x >> {}", q(&public))), "Permission denied", "writing 0644");
    let r = run_as(1000, 1000, &format!("cat {}", q(&public)));
    assert_ok(&r, "reading 0644");
    assert_eq!(fs::read(&secret).expect("read"), b"root only\n");
    assert_eq!(fs::read(&public).expect("read"), b"everyone\n");
    // Creating in a directory one may not write to.
    assert_denied(&run_as(1000, 1000, &format!("touch {}/new", q(m.path()))), "Permission denied", "creating in /");
    assert_eq!(fs::read_dir(m.path()).expect("readdir").count(), 2);
}

#[test]
fn others_cannot_chmod_or_chown_roots_file() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("perm");
    let f = m.join("f");
    fs::write(&f, b"x").expect("create");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_denied(&run_as(1000, 1000, &format!("chmod 666 {}", q(&f))), "Operation not permitted", "chmod");
    assert_denied(&run_as(1000, 1000, &format!("chown 1000 {}", q(&f))), "Operation not permitted", "chown");
    assert_eq!(fs::metadata(&f).expect("stat").permissions().mode() & 0o7777, 0o644);
    assert_eq!(fs::metadata(&f).expect("stat").uid(), 0);

    // Anyone who may write may set the times to now, but only the owner may set others.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o666)).expect("chmod 0666");
    assert_ok(&run_as(1000, 1000, &format!("touch {}", q(&f))), "touching a writable file");
    assert_denied(
        &run_as(1000, 1000, &format!("touch -d 2001-01-01 {}", q(&f))),
        "Operation not permitted",
        "setting explicit times on another's file",
    );
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    assert_denied(&run_as(1000, 1000, &format!("touch {}", q(&f))), "Permission denied", "touching a read-only file");

    // One's own file, in a directory open to all.
    let d = m.join("shared");
    fs::create_dir(&d).expect("mkdir");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).expect("chmod 0777");
    let own = d.join("own");
    assert_ok(&run_as(1000, 1000, &format!("echo mine > {0} && chmod 600 {0}", q(&own))), "chmod of one's own file");
    let md = fs::metadata(&own).expect("stat");
    assert_eq!((md.uid(), md.gid(), md.permissions().mode() & 0o7777), (1000, 1000, 0o600));
    assert_denied(
        &run_as(1000, 1000, &format!("chown 1001 {}", q(&own))),
        "Operation not permitted",
        "giving a file away",
    );
    assert_denied(&run_as(1001, 1001, &format!("cat {}", q(&own))), "Permission denied", "reading another's 0600 file");
}

#[test]
fn sticky_directory_protects_other_users_files() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("perm");
    let t = m.join("tmp");
    fs::create_dir(&t).expect("mkdir");
    fs::set_permissions(&t, fs::Permissions::from_mode(0o1777)).expect("chmod 1777");
    let f = t.join("f");
    assert_ok(&run_as(1000, 1000, &format!("echo by-1000 > {}", q(&f))), "creating in a 1777 directory");
    assert_eq!(fs::metadata(&f).expect("stat").uid(), 1000);

    assert_denied(
        &run_as(1001, 1001, &format!("rm -f {}", q(&f))),
        "Operation not permitted",
        "deleting another's file",
    );
    assert_denied(
        &run_as(1001, 1001, &format!("mv {} {}", q(&f), q(&t.join("g")))),
        "Operation not permitted",
        "renaming another's file",
    );
    assert_eq!(fs::read(&f).expect("still there"), b"by-1000\n");
    // Without the sticky bit the same deletion is allowed; here only the owner may.
    assert_ok(&run_as(1000, 1000, &format!("rm {}", q(&f))), "the owner deleting their file");
    assert_eq!(common::errno_of(fs::metadata(&f)), libc::ENOENT);
    assert_ok(&run_as(1001, 1001, &format!("echo by-1001 > {}", q(&f))), "creating the name again");
    assert_eq!(fs::metadata(&f).expect("stat").uid(), 1001);
}

#[test]
fn setgid_directory_passes_its_group_on() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("perm");
    let d = m.join("project");
    fs::create_dir(&d).expect("mkdir");
    std::os::unix::fs::chown(&d, Some(0), Some(2000)).expect("chgrp 2000");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o2777)).expect("chmod 2777");
    let (f, sub) = (d.join("file"), d.join("sub"));
    assert_ok(&run_as(1000, 1000, &format!("touch {} && mkdir {}", q(&f), q(&sub))), "creating in a setgid directory");
    let md = fs::metadata(&f).expect("stat file");
    assert_eq!((md.uid(), md.gid()), (1000, 2000), "a new file takes the directory's group");
    assert_eq!(md.permissions().mode() & 0o2000, 0, "a new file does not get the setgid bit");
    let md = fs::metadata(&sub).expect("stat subdir");
    assert_eq!((md.uid(), md.gid()), (1000, 2000), "a new subdirectory takes the directory's group");
    assert_eq!(md.permissions().mode() & 0o2000, 0o2000, "a new subdirectory gets the setgid bit");
    // And further down, through the inherited bit.
    assert_ok(&run_as(1000, 1000, &format!("touch {}", q(&sub.join("deeper")))), "creating in the subdirectory");
    assert_eq!(fs::metadata(sub.join("deeper")).expect("stat").gid(), 2000);
}

#[test]
fn supplementary_groups_grant_group_permissions() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("perm");
    let f = m.join("team");
    fs::write(&f, b"team data\n").expect("create");
    std::os::unix::fs::chown(&f, Some(0), Some(3000)).expect("chgrp 3000");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).expect("chmod 0640");
    let read = format!("cat {}", q(&f));
    assert_denied(&run_with_groups(1000, 1000, &[], &read), "Permission denied", "reading without the group");
    let r = run_with_groups(1000, 1000, &[3000], &read);
    assert_ok(&r, "reading with the group as a supplementary group");
    assert_ok(&run_as(1000, 3000, &read), "reading with the group as the primary group");
    assert_denied(
        &run_with_groups(1000, 1000, &[3000], &format!("echo x >> {}", q(&f))),
        "Permission denied",
        "writing 0640",
    );
}

#[test]
fn private_directory_cannot_be_searched_by_others() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("perm");
    let d = m.join("private");
    fs::create_dir(&d).expect("mkdir");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).expect("chmod 0700");
    let f = d.join("inside");
    fs::write(&f, b"hidden by the directory\n").expect("create");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).expect("chmod 0644");
    assert_denied(&run_as(1000, 1000, &format!("ls {}", q(&d))), "Permission denied", "listing a 0700 directory");
    // Root has just looked the file up, so the kernel may hold its name: the search
    // permission on the directory must be checked all the same.
    assert_eq!(fs::read(&f).expect("read as root"), b"hidden by the directory\n");
    assert_denied(
        &run_as(1000, 1000, &format!("cat {}", q(&f))),
        "Permission denied",
        "reading through a 0700 directory",
    );
    assert_denied(
        &run_as(1000, 1000, &format!("stat {}", q(&f))),
        "Permission denied",
        "stat through a 0700 directory",
    );
}

#[test]
fn writing_by_others_clears_setuid() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("perm");
    let f = m.join("suid");
    fs::write(&f, b"hi\n").expect("create");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o4777)).expect("chmod 4777");
    // dd reports the errno of a failed write (the shell's echo does not).
    let r = run_as(1000, 1000, &format!("printf 'more\\n' | dd of={} oflag=append conv=notrunc status=none", q(&f)));
    assert_ok(&r, "appending to a world-writable setuid file");
    assert_eq!(fs::read(&f).expect("read"), b"hi\nmore\n");
    assert_eq!(fs::metadata(&f).expect("stat").permissions().mode() & 0o7777, 0o777, "the write clears setuid");

    fs::set_permissions(&f, fs::Permissions::from_mode(0o6777)).expect("chmod 6777");
    assert_ok(&run_as(1000, 1000, &format!("truncate -s 2 {}", q(&f))), "truncating a world-writable setuid file");
    assert_eq!(fs::read(&f).expect("read"), b"hi");
    assert_eq!(fs::metadata(&f).expect("stat").permissions().mode() & 0o6000, 0, "truncate clears setuid and setgid");
}
