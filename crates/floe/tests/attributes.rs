//! Attributes through a real FUSE mount: chmod, chown, timestamps, statfs, extended
//! attributes, fallocate and fsync.

mod common;

use common::{check, check_size, cpath, errno_of, pattern, Floe};
use nix::fcntl::{fallocate, FallocateFlags};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the epoch of a stat time.
fn ns(sec: i64, nsec: i64) -> i128 {
    sec as i128 * 1_000_000_000 + nsec as i128
}

fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos() as i128
}

fn mtime(path: &Path) -> i128 {
    let md = fs::metadata(path).expect("stat");
    ns(md.mtime(), md.mtime_nsec())
}

fn ctime(path: &Path) -> i128 {
    let md = fs::metadata(path).expect("stat");
    ns(md.ctime(), md.ctime_nsec())
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("stat").permissions().mode() & 0o7777
}

/// Sets atime and mtime with utimensat(2).
fn set_times(path: &Path, atime: libc::timespec, mtime: libc::timespec) -> std::io::Result<()> {
    let times = [atime, mtime];
    let p = cpath(path);
    // SAFETY: a valid C string and an array of two timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), 0) }).map(drop)
}

fn ts(sec: i64, nsec: i64) -> libc::timespec {
    libc::timespec { tv_sec: sec, tv_nsec: nsec }
}

#[test]
fn chmod_sets_permission_bits() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let f = m.join("f");
    let d = m.join("d");
    fs::write(&f, b"x").expect("create");
    fs::create_dir(&d).expect("mkdir");
    for bits in [0o640, 0o000, 0o777, 0o4755, 0o2755, 0o1777, 0o600] {
        fs::set_permissions(&f, fs::Permissions::from_mode(bits)).expect("chmod file");
        assert_eq!(mode(&f), bits, "file mode after chmod {bits:o}");
        fs::set_permissions(&d, fs::Permissions::from_mode(bits)).expect("chmod dir");
        assert_eq!(mode(&d), bits, "directory mode after chmod {bits:o}");
    }
    // Through an open descriptor.
    let file = File::open(&f).expect("open");
    file.set_permissions(fs::Permissions::from_mode(0o444)).expect("fchmod");
    assert_eq!(mode(&f), 0o444);
    // A new file's mode is what was asked for, less the umask.
    let created = OpenOptions::new().write(true).create_new(true).mode(0o751).open(m.join("g")).expect("create");
    drop(created);
    let umask = current_umask();
    assert_eq!(mode(&m.join("g")), 0o751 & !umask);
}

fn current_umask() -> u32 {
    // SAFETY: umask cannot fail; it is set back at once.
    let old = unsafe { libc::umask(0o022) };
    unsafe { libc::umask(old) };
    old
}

#[test]
fn chown_changes_owner_and_group() {
    require_root!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let f = m.join("f");
    fs::write(&f, b"x").expect("create");
    let md = fs::metadata(&f).expect("stat");
    assert_eq!((md.uid(), md.gid()), (0, 0), "root's file");
    std::os::unix::fs::chown(&f, Some(1000), Some(1000)).expect("chown");
    let md = fs::metadata(&f).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    std::os::unix::fs::chown(&f, None, Some(4242)).expect("chgrp");
    let md = fs::metadata(&f).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1000, 4242));
    // Changing the owner clears setuid.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o4755)).expect("chmod");
    std::os::unix::fs::chown(&f, Some(1001), None).expect("chown");
    let md = fs::metadata(&f).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1001, 4242));
    assert_eq!(md.permissions().mode() & 0o7777, 0o755);
    // A directory and a symlink itself (lchown).
    fs::create_dir(m.join("d")).expect("mkdir");
    std::os::unix::fs::chown(m.join("d"), Some(7), Some(8)).expect("chown dir");
    let md = fs::metadata(m.join("d")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (7, 8));
    std::os::unix::fs::symlink("f", m.join("l")).expect("symlink");
    std::os::unix::fs::lchown(m.join("l"), Some(9), Some(10)).expect("lchown");
    let md = fs::symlink_metadata(m.join("l")).expect("lstat");
    assert_eq!((md.uid(), md.gid()), (9, 10));
    assert_eq!(fs::metadata(&f).expect("stat").uid(), 1001, "lchown leaves the target alone");
}

#[test]
fn utimensat_sets_exact_times() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let f = m.join("f");
    fs::write(&f, b"x").expect("create");
    set_times(&f, ts(1_000_000_000, 123_456_789), ts(1_500_000_000, 987_654_321)).expect("utimensat");
    let md = fs::metadata(&f).expect("stat");
    assert_eq!((md.atime(), md.atime_nsec()), (1_000_000_000, 123_456_789));
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_500_000_000, 987_654_321));
    // UTIME_OMIT leaves one alone; UTIME_NOW sets the current time.
    let before = now_ns();
    set_times(&f, ts(0, libc::UTIME_OMIT), ts(0, libc::UTIME_NOW)).expect("utimensat omit/now");
    let md = fs::metadata(&f).expect("stat");
    assert_eq!((md.atime(), md.atime_nsec()), (1_000_000_000, 123_456_789));
    assert!(ns(md.mtime(), md.mtime_nsec()) >= before, "UTIME_NOW sets mtime to now");
    // Times before the epoch and on a directory.
    fs::create_dir(m.join("d")).expect("mkdir");
    set_times(&m.join("d"), ts(-1, 0), ts(86_400, 1)).expect("utimensat on a directory");
    let md = fs::metadata(m.join("d")).expect("stat");
    assert_eq!((md.atime(), md.atime_nsec()), (-1, 0));
    assert_eq!((md.mtime(), md.mtime_nsec()), (86_400, 1));
}

#[test]
fn mtime_changes_on_write() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let f = m.join("f");
    fs::write(&f, b"x").expect("create");
    set_times(&f, ts(1_000_000_000, 0), ts(1_000_000_000, 0)).expect("utimensat");
    assert_eq!(mtime(&f), ns(1_000_000_000, 0));
    let before = now_ns();
    let mut file = OpenOptions::new().write(true).open(&f).expect("open");
    file.write_all(b"new content").expect("write");
    drop(file);
    let after_close = mtime(&f);
    assert!(after_close >= before, "mtime {after_close} after a write is older than the write ({before})");
    assert!(ctime(&f) >= before, "ctime changes with a write too");
    // Truncation changes mtime as well.
    set_times(&f, ts(1_000_000_000, 0), ts(1_000_000_000, 0)).expect("utimensat");
    let before = now_ns();
    OpenOptions::new().write(true).open(&f).expect("open").set_len(3).expect("ftruncate");
    assert!(mtime(&f) >= before, "mtime after ftruncate");
}

#[test]
fn mtime_changes_on_write_seen_before_close() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let f = m.join("f");
    fs::write(&f, b"x").expect("create");
    set_times(&f, ts(1_000_000_000, 0), ts(1_000_000_000, 0)).expect("utimensat");
    let before = now_ns();
    let mut file = OpenOptions::new().write(true).open(&f).expect("open");
    file.write_all(b"new content").expect("write");
    // POSIX: write() marks mtime for update; stat sees it without waiting for close.
    let md = file.metadata().expect("fstat");
    let seen = ns(md.mtime(), md.mtime_nsec());
    assert!(seen >= before, "fstat after write (before close) shows the old mtime {seen} (write at {before})");
    let seen = mtime(&f);
    assert!(seen >= before, "stat after write (before close) shows the old mtime {seen} (write at {before})");
    drop(file);
    let seen = mtime(&f);
    assert!(seen >= before, "stat after close shows the old mtime {seen} (write at {before})");
}

#[test]
fn directory_mtime_changes_with_its_entries() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let d = m.join("d");
    fs::create_dir(&d).expect("mkdir");
    fs::create_dir(m.join("other")).expect("mkdir");
    let old = || set_times(&d, ts(1_000_000_000, 0), ts(1_000_000_000, 0)).expect("utimensat");
    type Step<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let steps: Vec<Step> = vec![
        ("create", Box::new(|| fs::write(d.join("f"), b"x").expect("create"))),
        ("mkdir", Box::new(|| fs::create_dir(d.join("sub")).expect("mkdir"))),
        ("rename within", Box::new(|| fs::rename(d.join("f"), d.join("g")).expect("rename"))),
        ("link", Box::new(|| fs::hard_link(d.join("g"), d.join("h")).expect("link"))),
        ("unlink", Box::new(|| fs::remove_file(d.join("h")).expect("unlink"))),
        ("rmdir", Box::new(|| fs::remove_dir(d.join("sub")).expect("rmdir"))),
        ("rename out", Box::new(|| fs::rename(d.join("g"), m.join("other/g")).expect("rename"))),
        ("symlink", Box::new(|| std::os::unix::fs::symlink("t", d.join("l")).expect("symlink"))),
    ];
    for (what, step) in steps {
        old();
        let before = now_ns();
        step();
        let (mt, ct) = (mtime(&d), ctime(&d));
        assert!(mt >= before, "directory mtime {mt} after {what} (at {before})");
        assert!(ct >= before, "directory ctime {ct} after {what} (at {before})");
    }
}

#[test]
fn ctime_changes_on_chmod() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let f = m.join("f");
    fs::write(&f, b"x").expect("create");
    let c0 = ctime(&f);
    let m0 = mtime(&f);
    let before = now_ns();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).expect("chmod");
    let c1 = ctime(&f);
    assert!(c1 >= before && c1 > c0, "ctime {c1} after chmod (before: {c0}, chmod at {before})");
    assert_eq!(mtime(&f), m0, "chmod leaves mtime alone");
    // Linking changes ctime too.
    let before = now_ns();
    fs::hard_link(&f, m.join("g")).expect("link");
    assert!(ctime(&f) >= before, "ctime after link");
}

#[test]
fn statfs_reports_space_and_files() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let s0 = nix::sys::statvfs::statvfs(m.path()).expect("statvfs");
    assert!(s0.block_size() > 0, "f_bsize");
    assert!(s0.fragment_size() > 0, "f_frsize");
    // Nothing is stored yet, so every block may be free.
    assert!(s0.blocks() >= s0.blocks_free(), "f_blocks {} >= f_bfree {}", s0.blocks(), s0.blocks_free());
    assert!(s0.blocks_free() >= s0.blocks_available());
    assert!(s0.files() > s0.files_free());
    assert_eq!(s0.name_max(), 255);
    for i in 0..25 {
        fs::write(m.join(format!("f{i}")), b"").expect("create");
    }
    fs::create_dir(m.join("d")).expect("mkdir");
    let s1 = nix::sys::statvfs::statvfs(m.path()).expect("statvfs");
    let used = |s: &nix::sys::statvfs::Statvfs| s.files() - s.files_free();
    assert_eq!(used(&s1), used(&s0) + 26, "26 more inodes in use");
    // Writing 8 MiB takes space.
    fs::write(m.join("data"), pattern(8 << 20, 1)).expect("write");
    let s2 = nix::sys::statvfs::statvfs(m.path()).expect("statvfs");
    assert!(s2.blocks() > s2.blocks_free(), "f_blocks {} > f_bfree {}", s2.blocks(), s2.blocks_free());
    let used_bytes = |s: &nix::sys::statvfs::Statvfs| (s.blocks() - s.blocks_free()) * s.fragment_size();
    assert_eq!(used_bytes(&s2) - used_bytes(&s1), 8 << 20);
    for i in 0..25 {
        fs::remove_file(m.join(format!("f{i}"))).expect("unlink");
    }
    let s3 = nix::sys::statvfs::statvfs(m.path()).expect("statvfs");
    assert_eq!(used(&s3), used(&s0) + 2, "unlinked inodes are freed");
}

// --- Extended attributes --------------------------------------------------------

fn setxattr(path: &Path, name: &str, value: &[u8], flags: libc::c_int) -> std::io::Result<()> {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).expect("name"));
    // SAFETY: valid C strings and a buffer of `value.len()` bytes.
    check(unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), flags) }).map(drop)
}

/// getxattr with a buffer of `size` bytes (0 asks for the size).
fn getxattr(path: &Path, name: &str, size: usize) -> std::io::Result<Vec<u8>> {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).expect("name"));
    let mut buf = vec![0u8; size];
    // SAFETY: valid C strings and a buffer of `size` bytes.
    let len = check_size(unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), size) })?;
    if size == 0 {
        return Ok(len.to_le_bytes().to_vec());
    }
    buf.truncate(len);
    Ok(buf)
}

fn xattr_size(path: &Path, name: &str) -> std::io::Result<usize> {
    getxattr(path, name, 0).map(|b| usize::from_le_bytes(b.try_into().expect("usize bytes")))
}

fn listxattr(path: &Path) -> std::io::Result<Vec<String>> {
    let p = cpath(path);
    // SAFETY: a size query with no buffer, then a call with a buffer of that size.
    let size = check_size(unsafe { libc::listxattr(p.as_ptr(), std::ptr::null_mut(), 0) })?;
    let mut buf = vec![0u8; size];
    let len = check_size(unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), size) })?;
    buf.truncate(len);
    let mut names: Vec<String> = buf
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8(s.to_vec()).expect("utf-8 attribute name"))
        .collect();
    names.sort();
    Ok(names)
}

fn removexattr(path: &Path, name: &str) -> std::io::Result<()> {
    let (p, n) = (cpath(path), std::ffi::CString::new(name).expect("name"));
    // SAFETY: valid C strings.
    check(unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) }).map(drop)
}

#[test]
fn extended_attributes() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let f = m.join("f");
    fs::write(&f, b"x").expect("create");
    assert_eq!(listxattr(&f).expect("list"), Vec::<String>::new());

    setxattr(&f, "user.color", b"blue", 0).expect("set");
    setxattr(&f, "user.empty", b"", 0).expect("set an empty value");
    let big = pattern(60_000, 5);
    setxattr(&f, "user.big", &big, 0).expect("set a 60 KB value");
    assert_eq!(getxattr(&f, "user.color", 64).expect("get"), b"blue");
    assert_eq!(getxattr(&f, "user.empty", 64).expect("get empty"), b"");
    assert_eq!(getxattr(&f, "user.big", 65536).expect("get big"), big);
    assert_eq!(xattr_size(&f, "user.color").expect("size query"), 4);
    assert_eq!(listxattr(&f).expect("list"), ["user.big", "user.color", "user.empty"]);

    assert_eq!(errno_of(getxattr(&f, "user.missing", 64)), libc::ENODATA);
    assert_eq!(errno_of(setxattr(&f, "user.color", b"red", libc::XATTR_CREATE)), libc::EEXIST);
    assert_eq!(getxattr(&f, "user.color", 64).expect("get"), b"blue");
    assert_eq!(errno_of(setxattr(&f, "user.missing", b"v", libc::XATTR_REPLACE)), libc::ENODATA);
    setxattr(&f, "user.color", b"green", libc::XATTR_REPLACE).expect("replace");
    assert_eq!(getxattr(&f, "user.color", 64).expect("get"), b"green");
    assert_eq!(errno_of(getxattr(&f, "user.color", 3)), libc::ERANGE);

    removexattr(&f, "user.color").expect("remove");
    assert_eq!(errno_of(getxattr(&f, "user.color", 64)), libc::ENODATA);
    assert_eq!(errno_of(removexattr(&f, "user.color")), libc::ENODATA);
    assert_eq!(listxattr(&f).expect("list"), ["user.big", "user.empty"]);

    // On a directory, and surviving a rename.
    fs::create_dir(m.join("d")).expect("mkdir");
    setxattr(&m.join("d"), "user.dir", b"yes", 0).expect("set on a directory");
    fs::rename(m.join("d"), m.join("d2")).expect("rename");
    assert_eq!(getxattr(&m.join("d2"), "user.dir", 64).expect("get after rename"), b"yes");
    // Root may use the trusted namespace.
    if nix::unistd::geteuid().is_root() {
        setxattr(&f, "trusted.t", b"1", 0).expect("set trusted");
        assert_eq!(getxattr(&f, "trusted.t", 8).expect("get trusted"), b"1");
    }
}

// --- fallocate and fsync ----------------------------------------------------------

#[test]
fn fallocate_extends_and_punches_holes() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let path = m.join("f");
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("create");
    fallocate(&f, FallocateFlags::empty(), 0, 1 << 20).expect("fallocate mode 0");
    assert_eq!(f.metadata().expect("fstat").len(), 1 << 20);
    assert!(fs::read(&path).expect("read").iter().all(|b| *b == 0));

    let data = pattern(3 << 20, 8);
    f.write_all_at(&data, 0).expect("write");
    // Allocating inside the file changes neither size nor data.
    fallocate(&f, FallocateFlags::empty(), 4096, 8192).expect("fallocate inside");
    assert_eq!(f.metadata().expect("fstat").len(), 3 << 20);
    common::assert_bytes_eq(&fs::read(&path).expect("read"), &data, "after fallocate inside the file");

    let punch = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    fallocate(&f, punch, (1 << 20) + 5, 1 << 20).expect("punch a hole");
    assert_eq!(f.metadata().expect("fstat").len(), 3 << 20, "punching keeps the size");
    let mut want = data.clone();
    want[(1 << 20) + 5..(2 << 20) + 5].fill(0);
    common::assert_bytes_eq(&fs::read(&path).expect("read"), &want, "after punching a hole");

    // A hole past the end does not grow the file; KEEP_SIZE allocation neither.
    fallocate(&f, punch, (3 << 20) - 10, 1 << 20).expect("punch across the end");
    fallocate(&f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, 10 << 20).expect("allocate with KEEP_SIZE");
    assert_eq!(f.metadata().expect("fstat").len(), 3 << 20);
    want[(3 << 20) - 10..].fill(0);
    drop(f);
    common::assert_bytes_eq(&fs::read(&path).expect("read"), &want, "after punching across the end");
}

#[test]
fn fsync_returns_ok() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("attrs");
    let mut f = File::create(m.join("f")).expect("create");
    f.sync_all().expect("fsync of an unwritten file");
    f.write_all(&pattern(5 << 20, 2)).expect("write");
    f.sync_all().expect("fsync");
    f.write_all(b"more").expect("write");
    f.sync_data().expect("fdatasync");
    drop(f);
    File::open(m.path()).expect("open the root").sync_all().expect("fsync a directory");
    let r = File::open(m.join("f")).expect("open read-only");
    r.sync_all().expect("fsync a read-only descriptor");
    assert_eq!(fs::metadata(m.join("f")).expect("stat").len(), (5 << 20) + 4);
}
