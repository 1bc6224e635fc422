//! Names through a real FUSE mount: mkdir/rmdir, unlink, rename (with renameat2
//! flags), hard links, symlinks, open-but-unlinked files, name length limits.

mod common;

use common::{errno_of, Floe};
use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn rename2(from: &Path, to: &Path, flags: RenameFlags) -> std::io::Result<()> {
    renameat2(AT_FDCWD, from, AT_FDCWD, to, flags).map_err(|e| std::io::Error::from_raw_os_error(e as i32))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8 name"))
        .collect();
    v.sort();
    v
}

#[test]
fn mkdir_and_rmdir() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let root_links = fs::metadata(m.path()).expect("stat root").nlink();
    assert_eq!(root_links, 2);
    let a = m.join("a");
    fs::create_dir(&a).expect("mkdir a");
    assert!(fs::metadata(&a).expect("stat a").is_dir());
    assert_eq!(fs::metadata(m.path()).expect("stat root").nlink(), 3, "a subdirectory adds a link to its parent");
    assert_eq!(errno_of(fs::create_dir(&a)), libc::EEXIST);
    fs::write(a.join("f"), b"x").expect("create a/f");
    fs::create_dir(a.join("sub")).expect("mkdir a/sub");
    assert_eq!(fs::metadata(&a).expect("stat a").nlink(), 3);
    assert_eq!(errno_of(fs::remove_dir(&a)), libc::ENOTEMPTY);
    assert_eq!(errno_of(fs::remove_dir(a.join("f"))), libc::ENOTDIR);
    assert_eq!(errno_of(fs::remove_dir(a.join("missing"))), libc::ENOENT);
    assert_eq!(errno_of(fs::create_dir(a.join("f/below-a-file"))), libc::ENOTDIR);
    assert_eq!(errno_of(fs::create_dir(m.join("missing/child"))), libc::ENOENT);
    fs::remove_dir(a.join("sub")).expect("rmdir a/sub");
    assert_eq!(errno_of(fs::remove_dir(&a)), libc::ENOTEMPTY);
    fs::remove_file(a.join("f")).expect("unlink a/f");
    fs::remove_dir(&a).expect("rmdir a");
    assert_eq!(errno_of(fs::metadata(&a)), libc::ENOENT);
    assert_eq!(fs::metadata(m.path()).expect("stat root").nlink(), 2);
    assert!(names(m.path()).is_empty());
}

#[test]
fn unlink_files() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    fs::write(m.join("f"), b"data").expect("create");
    fs::create_dir(m.join("d")).expect("mkdir");
    fs::remove_file(m.join("f")).expect("unlink");
    assert_eq!(errno_of(fs::metadata(m.join("f"))), libc::ENOENT);
    assert_eq!(errno_of(fs::remove_file(m.join("f"))), libc::ENOENT);
    assert_eq!(errno_of(fs::remove_file(m.join("d"))), libc::EISDIR);
    assert_eq!(names(m.path()), ["d"]);
    assert_eq!(errno_of(OpenOptions::new().write(true).create_new(true).open(m.join("d"))), libc::EEXIST);
    // The name can be used again, for a new, empty file.
    fs::write(m.join("f"), b"").expect("create again");
    assert_eq!(fs::read(m.join("f")).expect("read"), b"");
}

#[test]
fn rename_files_and_directories() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let p = |s: &str| m.join(s);
    fs::write(p("a"), b"content of a").expect("create a");
    fs::write(p("b"), b"content of b").expect("create b");
    let ino_a = fs::metadata(p("a")).expect("stat").ino();

    // A plain rename, then one that replaces a file.
    fs::rename(p("a"), p("a2")).expect("rename a -> a2");
    assert_eq!(errno_of(fs::metadata(p("a"))), libc::ENOENT);
    assert_eq!(fs::metadata(p("a2")).expect("stat").ino(), ino_a);
    fs::rename(p("a2"), p("b")).expect("rename a2 over b");
    assert_eq!(fs::read(p("b")).expect("read b"), b"content of a");
    assert_eq!(fs::metadata(p("b")).expect("stat").ino(), ino_a);
    assert_eq!(names(m.path()), ["b"]);

    // Across directories.
    fs::create_dir_all(p("x/y")).expect("mkdir x/y");
    fs::rename(p("b"), p("x/y/moved")).expect("rename into a subdirectory");
    assert_eq!(fs::read(p("x/y/moved")).expect("read"), b"content of a");
    assert_eq!(names(&p("x/y")), ["moved"]);

    // A directory replacing an empty directory; then onto a non-empty one.
    fs::create_dir(p("d1")).expect("mkdir d1");
    fs::write(p("d1/inside"), b"1").expect("create d1/inside");
    fs::create_dir(p("empty")).expect("mkdir empty");
    let root_links = fs::metadata(m.path()).expect("stat").nlink();
    fs::rename(p("d1"), p("empty")).expect("rename d1 over an empty dir");
    assert_eq!(fs::read(p("empty/inside")).expect("read"), b"1");
    assert_eq!(errno_of(fs::metadata(p("d1"))), libc::ENOENT);
    assert_eq!(fs::metadata(m.path()).expect("stat").nlink(), root_links - 1);
    fs::create_dir(p("d2")).expect("mkdir d2");
    assert_eq!(errno_of(fs::rename(p("d2"), p("empty"))), libc::ENOTEMPTY);
    assert_eq!(errno_of(fs::rename(p("d2"), p("x"))), libc::ENOTEMPTY);
    assert!(fs::metadata(p("d2")).expect("d2 still there").is_dir());

    // A directory below itself; kinds that do not match; a missing source.
    assert_eq!(errno_of(fs::rename(p("x"), p("x/y/z"))), libc::EINVAL);
    assert_eq!(errno_of(fs::rename(p("x"), p("x/sub"))), libc::EINVAL);
    fs::write(p("file"), b"f").expect("create file");
    assert_eq!(errno_of(fs::rename(p("file"), p("d2"))), libc::EISDIR);
    assert_eq!(errno_of(fs::rename(p("d2"), p("file"))), libc::ENOTDIR);
    assert_eq!(errno_of(fs::rename(p("missing"), p("other"))), libc::ENOENT);

    // Moving a directory to another parent updates both link counts and "..".
    let x_links = fs::metadata(p("x")).expect("stat").nlink();
    fs::rename(p("d2"), p("x/d2")).expect("move a directory");
    assert_eq!(fs::metadata(p("x")).expect("stat").nlink(), x_links + 1);
    assert_eq!(fs::metadata(p("x/d2/..")).expect("stat ..").ino(), fs::metadata(p("x")).expect("stat").ino());
    assert_eq!(names(m.path()), ["empty", "file", "x"]);
    assert_eq!(names(&p("x")), ["d2", "y"]);
}

#[test]
fn renameat2_noreplace_and_exchange() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let p = |s: &str| m.join(s);
    fs::write(p("a"), b"A").expect("create a");
    fs::write(p("b"), b"B").expect("create b");
    fs::create_dir(p("d")).expect("mkdir d");
    fs::write(p("d/inner"), b"inner").expect("create d/inner");

    assert_eq!(errno_of(rename2(&p("a"), &p("b"), RenameFlags::RENAME_NOREPLACE)), libc::EEXIST);
    assert_eq!(fs::read(p("a")).expect("a untouched"), b"A");
    assert_eq!(fs::read(p("b")).expect("b untouched"), b"B");
    rename2(&p("a"), &p("c"), RenameFlags::RENAME_NOREPLACE).expect("noreplace onto a new name");
    assert_eq!(fs::read(p("c")).expect("read c"), b"A");
    assert_eq!(errno_of(fs::metadata(p("a"))), libc::ENOENT);

    rename2(&p("b"), &p("c"), RenameFlags::RENAME_EXCHANGE).expect("exchange two files");
    assert_eq!(fs::read(p("b")).expect("read b"), b"A");
    assert_eq!(fs::read(p("c")).expect("read c"), b"B");

    // A file and a directory, across directories.
    rename2(&p("b"), &p("d/inner"), RenameFlags::RENAME_EXCHANGE).expect("exchange across directories");
    assert_eq!(fs::read(p("b")).expect("read b"), b"inner");
    assert_eq!(fs::read(p("d/inner")).expect("read d/inner"), b"A");
    rename2(&p("c"), &p("d"), RenameFlags::RENAME_EXCHANGE).expect("exchange a file and a directory");
    assert!(fs::metadata(p("c")).expect("stat c").is_dir());
    assert_eq!(fs::read(p("c/inner")).expect("read c/inner"), b"A");
    assert_eq!(fs::read(p("d")).expect("read d"), b"B");

    assert_eq!(errno_of(rename2(&p("b"), &p("missing"), RenameFlags::RENAME_EXCHANGE)), libc::ENOENT);
    assert_eq!(names(m.path()), ["b", "c", "d"]);
}

#[test]
fn hard_links() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let p = |s: &str| m.join(s);
    fs::write(p("f"), b"shared").expect("create");
    fs::hard_link(p("f"), p("g")).expect("link");
    fs::create_dir(p("dir")).expect("mkdir");
    fs::hard_link(p("g"), p("dir/h")).expect("link in another directory");
    let (f, g, h) = (fs::metadata(p("f")).unwrap(), fs::metadata(p("g")).unwrap(), fs::metadata(p("dir/h")).unwrap());
    assert_eq!((f.nlink(), g.nlink(), h.nlink()), (3, 3, 3));
    assert_eq!(f.ino(), g.ino());
    assert_eq!(f.ino(), h.ino());

    // A write through one name is seen through the others.
    OpenOptions::new().append(true).open(p("g")).expect("open g").write_all(b" content").expect("append");
    assert_eq!(fs::read(p("f")).expect("read f"), b"shared content");
    assert_eq!(fs::read(p("dir/h")).expect("read h"), b"shared content");

    fs::remove_file(p("f")).expect("unlink f");
    assert_eq!(fs::metadata(p("g")).expect("stat g").nlink(), 2);
    assert_eq!(fs::read(p("g")).expect("read g"), b"shared content");
    fs::remove_file(p("g")).expect("unlink g");
    assert_eq!(fs::metadata(p("dir/h")).expect("stat h").nlink(), 1);
    assert_eq!(fs::read(p("dir/h")).expect("read h"), b"shared content");

    assert_eq!(errno_of(fs::hard_link(p("dir"), p("dirlink"))), libc::EPERM);
    fs::write(p("other"), b"o").expect("create other");
    assert_eq!(errno_of(fs::hard_link(p("dir/h"), p("other"))), libc::EEXIST);
    assert_eq!(errno_of(fs::hard_link(p("missing"), p("new"))), libc::ENOENT);
    assert_eq!(names(m.path()), ["dir", "other"]);
}

#[test]
fn symlinks() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let p = |s: &str| m.join(s);
    fs::create_dir(p("dir")).expect("mkdir");
    fs::write(p("dir/target"), b"through the link").expect("create target");
    std::os::unix::fs::symlink("dir/target", p("rel")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/absolute/path", p("dangling")).expect("dangling symlink");
    assert_eq!(fs::read_link(p("rel")).expect("readlink"), Path::new("dir/target"));
    assert_eq!(fs::read_link(p("dangling")).expect("readlink"), Path::new("/nonexistent/absolute/path"));
    let lst = fs::symlink_metadata(p("rel")).expect("lstat");
    assert!(lst.file_type().is_symlink());
    assert_eq!(lst.len(), "dir/target".len() as u64);
    assert_eq!(fs::read(p("rel")).expect("read through the link"), b"through the link");
    assert_eq!(errno_of(fs::metadata(p("dangling"))), libc::ENOENT);
    assert_eq!(errno_of(fs::read_link(p("dir/target"))), libc::EINVAL);
    assert_eq!(errno_of(std::os::unix::fs::symlink("x", p("rel"))), libc::EEXIST);
    // The longest target the kernel passes on is 4095 bytes.
    let long = "t/".repeat(2047) + "x";
    assert_eq!(long.len(), 4095);
    std::os::unix::fs::symlink(&long, p("long")).expect("symlink with a 4095-byte target");
    assert_eq!(fs::read_link(p("long")).expect("readlink"), Path::new(&long));
    fs::remove_file(p("rel")).expect("unlink the link");
    assert_eq!(fs::read(p("dir/target")).expect("target stays"), b"through the link");
}

#[test]
fn unlinked_open_file_stays_usable() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let path = m.join("ghost");
    let big = common::pattern(5 << 20, 3);
    let mut f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("create");
    f.write_all(&big).expect("write");
    f.sync_all().expect("fsync");
    fs::remove_file(&path).expect("unlink while open");
    assert_eq!(errno_of(fs::metadata(&path)), libc::ENOENT);
    assert!(names(m.path()).is_empty());
    assert_eq!(f.metadata().expect("fstat").nlink(), 0);

    f.seek(SeekFrom::Start(0)).expect("seek");
    let mut got = Vec::new();
    f.read_to_end(&mut got).expect("read through the open descriptor");
    common::assert_bytes_eq(&got, &big, "unlinked file");
    f.write_all(b"more").expect("write through the open descriptor");
    f.sync_all().expect("fsync the unlinked file");
    f.seek(SeekFrom::Start(big.len() as u64)).expect("seek");
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).expect("read the new bytes");
    assert_eq!(tail, b"more");
    assert_eq!(f.metadata().expect("fstat").len(), big.len() as u64 + 4);

    // A new file may take the name meanwhile; the two stay apart.
    fs::write(&path, b"new").expect("create a new file under the old name");
    f.seek(SeekFrom::Start(0)).expect("seek");
    let mut head = [0u8; 3];
    f.read_exact(&mut head).expect("read");
    assert_eq!(&head, &big[..3]);
    drop(f);
    assert_eq!(fs::read(&path).expect("read the new file"), b"new");
}

#[test]
fn replaced_open_file_stays_readable() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let old = common::pattern(3 << 20, 1);
    fs::write(m.join("target"), &old).expect("create target");
    fs::write(m.join("source"), b"new").expect("create source");
    let mut f = fs::File::open(m.join("target")).expect("open target");
    fs::rename(m.join("source"), m.join("target")).expect("rename over the open file");
    assert_eq!(fs::read(m.join("target")).expect("read the new file"), b"new");
    let mut got = Vec::new();
    f.read_to_end(&mut got).expect("read the replaced file through its descriptor");
    common::assert_bytes_eq(&got, &old, "replaced file");
    drop(f);
    assert_eq!(names(m.path()), ["target"]);
}

#[test]
fn name_length_limits() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    let ok = "n".repeat(255);
    let long = "n".repeat(256);
    fs::write(m.join(&ok), b"255").expect("create a 255-byte name");
    assert_eq!(fs::read(m.join(&ok)).expect("read"), b"255");
    fs::create_dir(m.join(format!("d{}", &ok[1..]))).expect("mkdir a 255-byte name");
    assert_eq!(names(m.path()).len(), 2);
    assert!(names(m.path()).contains(&ok));

    assert_eq!(errno_of(fs::write(m.join(&long), b"")), libc::ENAMETOOLONG);
    assert_eq!(errno_of(fs::create_dir(m.join(&long))), libc::ENAMETOOLONG);
    assert_eq!(errno_of(fs::metadata(m.join(&long))), libc::ENAMETOOLONG);
    assert_eq!(errno_of(fs::rename(m.join(&ok), m.join(&long))), libc::ENAMETOOLONG);
    assert_eq!(errno_of(fs::hard_link(m.join(&ok), m.join(&long))), libc::ENAMETOOLONG);
    assert_eq!(errno_of(std::os::unix::fs::symlink("t", m.join(&long))), libc::ENAMETOOLONG);
    assert_eq!(names(m.path()).len(), 2);
    // Multi-byte characters count in bytes: 85 three-byte characters are 255 bytes.
    let utf8 = "€".repeat(85);
    fs::write(m.join(&utf8), b"").expect("create a 255-byte UTF-8 name");
    assert_eq!(errno_of(fs::write(m.join(format!("{utf8}x")), b"")), libc::ENAMETOOLONG);
}

#[test]
fn stat_of_missing_names() {
    require_fuse!();
    let floe = Floe::new();
    let m = floe.create_and_mount("ns");
    fs::write(m.join("file"), b"").expect("create");
    assert_eq!(errno_of(fs::metadata(m.join("missing"))), libc::ENOENT);
    assert_eq!(errno_of(fs::symlink_metadata(m.join("missing"))), libc::ENOENT);
    assert_eq!(errno_of(fs::metadata(m.join("missing/deeper"))), libc::ENOENT);
    assert_eq!(errno_of(fs::metadata(m.join("file/below"))), libc::ENOTDIR);
    assert_eq!(errno_of(fs::File::open(m.join("missing"))), libc::ENOENT);
    assert_eq!(errno_of(fs::read_dir(m.join("file"))), libc::ENOTDIR);
}
