//! Two clients of one file system: two `floe mount` processes on the same metadata
//! engine and object storage, as two machines would be. What one writes and closes,
//! the other sees on its next open (close-to-open); names and attributes changed by one
//! reach the other within the attribute TTL (1 s by default), at once on open.

mod common;

use common::{cpath, pattern, Floe};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// stat(2), answered from the kernel's attribute cache while it is valid.
fn stat(path: &Path) -> Option<libc::stat> {
    let c = cpath(path);
    // SAFETY: `st` is written by stat before it is read, and only on success.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::stat(c.as_ptr(), &mut st) == 0).then_some(st)
    }
}

fn fstat(file: &File) -> libc::stat {
    // SAFETY: `st` is written by fstat before it is read.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        assert_eq!(libc::fstat(file.as_raw_fd(), &mut st), 0, "fstat");
        st
    }
}

/// Reads a file with plain read(2) calls (no statx, which would refresh attributes).
fn read_all(path: &Path) -> Vec<u8> {
    let mut file = File::open(path).expect("open");
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match file.read(&mut buf).expect("read") {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Polls until `cond` holds and returns how long it took (reported, never asserted:
/// tests do not fail on timing).
fn visible_after(what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    common::wait_for(what, &mut cond);
    start.elapsed()
}

#[test]
fn close_to_open_between_two_clients() {
    require_fuse!();
    let floe = Floe::new();
    floe.create("shared");
    let a = floe.mount("shared");
    let b = floe.mount("shared");
    assert_ne!(a.pid(), b.pid(), "two clients are two processes");

    let first = pattern(300_000, 1);
    fs::write(a.join("f"), &first).expect("write through a");
    assert_eq!(read_all(&b.join("f")), first, "b opens after a closed: it sees everything");

    // b now caches the file; a replaces its contents (shorter, then longer).
    for (round, len) in [(1u64, 1_000usize), (2, 5 << 20), (3, 17)] {
        let content = pattern(len, round + 1);
        let mut f = OpenOptions::new().write(true).truncate(true).open(a.join("f")).expect("open through a");
        f.write_all(&content).expect("write");
        drop(f);
        let file = File::open(b.join("f")).expect("open through b");
        assert_eq!(fstat(&file).st_size as usize, len, "round {round}: size after open");
        drop(file);
        assert_eq!(read_all(&b.join("f")), content, "round {round}: data after open");
        // A mapping made after the open sees it too.
        let file = File::open(b.join("f")).expect("open for mmap");
        // SAFETY: a read-only mapping of a file nobody truncates while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.expect("mmap");
        assert_eq!(&map[..], &content[..], "round {round}: mapping after open");
    }

    // Attributes: at once on open, within the TTL on a plain stat.
    fs::set_permissions(a.join("f"), fs::Permissions::from_mode(0o640)).expect("chmod through a");
    let file = File::open(b.join("f")).expect("open through b");
    assert_eq!(fstat(&file).st_mode & 0o7777, 0o640, "an open revalidates attributes");
    drop(file);
    fs::set_permissions(a.join("f"), fs::Permissions::from_mode(0o604)).expect("chmod again");
    let chmod = visible_after("b to see a's chmod", || stat(&b.join("f")).is_some_and(|s| s.st_mode & 0o7777 == 0o604));

    // Names: create, rename, unlink.
    fs::write(a.join("new"), b"n").expect("create through a");
    let create = visible_after("b to see a's new file", || stat(&b.join("new")).is_some());
    assert!(stat(&b.join("renamed")).is_none());
    fs::rename(a.join("new"), a.join("renamed")).expect("rename through a");
    let rename =
        visible_after("b to see a's rename", || stat(&b.join("new")).is_none() && stat(&b.join("renamed")).is_some());
    fs::remove_file(a.join("renamed")).expect("unlink through a");
    let unlink = visible_after("b to see a's unlink", || stat(&b.join("renamed")).is_none());
    eprintln!("seen by the other client after: chmod {chmod:?}, create {create:?}, rename {rename:?}, unlink {unlink:?} (TTL 1 s)");
    b.unmount();
    a.unmount();
}
