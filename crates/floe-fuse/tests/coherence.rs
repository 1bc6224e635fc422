//! Kernel cache coherence over real FUSE mounts: between the mounts of one client
//! (changes through one are seen through the others at once) and between clients
//! (an open after another client's close sees everything written before the close).
//!
//! The mounts use a 60 s attribute and name TTL, so nothing here can pass by waiting for
//! the kernel's caches to expire: only floe's invalidations can make the checks hold.

use floe_fs::{FileSystem, FsConfig};
use floe_fuse::{Client, MountOptions};
use floe_meta::{AccessPointId, Caller, Meta, NewAccessPoint, RootCreation, SqliteStore};
use object_store::local::LocalFileSystem;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why FUSE cannot be used here; under CI (`CI=true`) that fails the test instead.
fn fuse_unavailable() -> Option<String> {
    let reason = match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Err(e) => Some(format!("/dev/fuse cannot be opened: {e}")),
        Ok(_) if !is_root() => Some("these tests mount with allow_other and need root".into()),
        Ok(_) => None,
    };
    if let Some(r) = &reason {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "cannot run under CI: {r}");
    }
    reason
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("objects")).expect("objects dir");
        let env = Env { dir };
        env.meta().create_fs("t", "uuid-coherence").expect("create fs");
        env
    }

    fn meta(&self) -> Meta {
        Meta::new(SqliteStore::open(&self.dir.path().join("meta.db")).expect("open sqlite"))
    }

    /// A client of its own: what one `floe mount` process or one node is.
    fn client(&self) -> Client {
        let objects = Arc::new(LocalFileSystem::new_with_prefix(self.dir.path().join("objects")).expect("objects"));
        Client::new(FileSystem::mount(self.meta(), objects, "t", FsConfig::default()).expect("mount fs"))
    }

    fn mount_point(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).expect("mount point");
        p
    }
}

fn options() -> MountOptions {
    MountOptions { ttl: Duration::from_secs(60), threads: 2, allow_other: true, ..MountOptions::default() }
}

/// Reads a whole file with plain read(2) calls. (`read_to_end` would first ask for
/// statx with the birth time, which FUSE always answers with a fresh GETATTR: that would
/// revalidate the cache by itself and hide a missing invalidation.)
fn read_all(path: &Path) -> Vec<u8> {
    let mut file = File::open(path).expect("open");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf).expect("read") {
            0 => return out,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// stat(2), which the kernel answers from its attribute cache while it is valid
/// (`std::fs::metadata` uses statx with the birth time, which FUSE never caches).
fn stat(path: &Path) -> Option<libc::stat> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: `st` is written by stat before it is read, and only on success.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::stat(c.as_ptr(), &mut st) == 0).then_some(st)
    }
}

/// A read-only shared mapping of the start of a file.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
    _file: File,
}

impl Mapping {
    fn new(path: &Path, len: usize) -> Mapping {
        let file = File::open(path).expect("open for mmap");
        // SAFETY: a fresh shared read-only mapping of an open file; unmapped in Drop.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        Mapping { ptr, len, _file: file }
    }

    fn bytes(&self) -> Vec<u8> {
        // SAFETY: the mapping is `len` bytes long and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len).to_vec() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

#[test]
fn one_clients_mounts_see_each_others_changes_at_once() {
    if let Some(reason) = fuse_unavailable() {
        eprintln!("skipping: {reason}");
        return;
    }
    let env = Env::new();
    let client = env.client();
    let (a, b) = (env.mount_point("a"), env.mount_point("b"));
    let session_a = client.mount(&a, &options()).expect("mount a");
    let session_b = client.mount(&b, &options()).expect("mount b");

    // Data: b caches the file (page cache, attributes, a mapping), a rewrites part of it.
    fs::write(a.join("f"), b"one one one").expect("write through a");
    assert_eq!(read_all(&b.join("f")), b"one one one");
    let mapping = Mapping::new(&b.join("f"), 11);
    assert_eq!(mapping.bytes(), b"one one one");
    let w = OpenOptions::new().write(true).open(a.join("f")).expect("open through a");
    w.write_all_at(b"two", 4).expect("pwrite through a");
    // Not closed yet: within one client a write is visible before it is committed.
    assert_eq!(read_all(&b.join("f")), b"one two one", "read through b after a write through a");
    assert_eq!(mapping.bytes(), b"one two one", "mapping through b after a write through a");
    w.write_all_at(b"!", 0).expect("pwrite");
    drop(w);
    // The size grows through a: b's cached size must not cut its read short.
    let mut grow = OpenOptions::new().append(true).open(a.join("f")).expect("open for append");
    grow.write_all(b" and three").expect("append");
    drop(grow);
    assert_eq!(read_all(&b.join("f")), b"!ne two one and three");
    drop(mapping);

    // Attributes.
    fs::set_permissions(a.join("f"), fs::Permissions::from_mode(0o600)).expect("chmod through a");
    assert_eq!(stat(&b.join("f")).expect("stat through b").st_mode & 0o7777, 0o600);
    let t = OpenOptions::new().write(true).open(a.join("f")).expect("open");
    t.set_len(3).expect("truncate through a");
    drop(t);
    assert_eq!(stat(&b.join("f")).expect("stat").st_size, 3);
    assert_eq!(read_all(&b.join("f")), b"!ne");

    // Names: b has looked each name up before a changes it.
    fs::write(a.join("g"), b"g").expect("create g");
    assert!(stat(&b.join("g")).is_some());
    fs::rename(a.join("g"), a.join("h")).expect("rename through a");
    assert!(stat(&b.join("g")).is_none(), "b still sees the old name after a rename through a");
    assert_eq!(read_all(&b.join("h")), b"g");
    fs::remove_file(a.join("h")).expect("unlink through a");
    assert!(stat(&b.join("h")).is_none(), "b still sees an unlinked name");
    fs::create_dir(a.join("d")).expect("mkdir");
    assert!(stat(&b.join("d")).is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR));
    fs::remove_dir(a.join("d")).expect("rmdir");
    assert!(stat(&b.join("d")).is_none(), "b still sees a removed directory");
    // A replaced name resolves to the new file.
    fs::write(a.join("x"), b"old").expect("x");
    assert_eq!(read_all(&b.join("x")), b"old");
    fs::write(a.join("y"), b"new").expect("y");
    fs::rename(a.join("y"), a.join("x")).expect("replace x");
    assert_eq!(read_all(&b.join("x")), b"new", "b resolves the replaced name to the old file");

    drop(session_b);
    // The client's other mount keeps working after one is unmounted.
    fs::write(a.join("after"), b"still here").expect("write after b's unmount");
    assert_eq!(read_all(&a.join("after")), b"still here");
    drop(session_a);
}

#[test]
fn an_open_after_another_clients_close_sees_its_writes() {
    if let Some(reason) = fuse_unavailable() {
        eprintln!("skipping: {reason}");
        return;
    }
    let env = Env::new();
    let (writer, reader) = (env.client(), env.client());
    let (a, b) = (env.mount_point("a"), env.mount_point("b"));
    let _session_a = writer.mount(&a, &options()).expect("mount a");
    let _session_b = reader.mount(&b, &options()).expect("mount b");

    fs::write(a.join("f"), b"version 1").expect("write v1");
    // The reader caches the file's pages, size and a mapping.
    assert_eq!(read_all(&b.join("f")), b"version 1");
    assert_eq!(Mapping::new(&b.join("f"), 9).bytes(), b"version 1");

    for (round, content) in [&b"version 2"[..], b"version three, longer", b"v4"].into_iter().enumerate() {
        fs::write(a.join("f"), content).expect("rewrite through the other client");
        // Close-to-open: the writer closed; this open must see all of it (pages, size,
        // mappings) although the 60 s TTL has not expired. The read comes first: a stat
        // would refresh the attributes by itself (reads mark atime stale).
        assert_eq!(read_all(&b.join("f")), content, "round {round}: data");
        let file = File::open(b.join("f")).expect("open after the close");
        // SAFETY: `st` is written by fstat before it is read.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            assert_eq!(libc::fstat(file.as_raw_fd(), &mut st), 0, "fstat");
            st.st_size
        };
        assert_eq!(size, content.len() as i64, "round {round}: size");
        drop(file);
        let mapping = Mapping::new(&b.join("f"), content.len());
        assert_eq!(mapping.bytes(), content, "round {round}: mapping");
    }
}

#[test]
fn a_plain_mount_and_an_access_point_mount_of_one_client_stay_coherent() {
    if let Some(reason) = fuse_unavailable() {
        eprintln!("skipping: {reason}");
        return;
    }
    let env = Env::new();
    let ap = AccessPointId::from_entropy(0xc0ffee);
    let new = NewAccessPoint {
        id: ap.clone(),
        path: "/app".into(),
        identity: Caller { uid: 1001, gid: 1001, groups: Vec::new() },
        creation: Some(RootCreation { uid: 1001, gid: 1001, mode: 0o750 }),
    };
    env.meta().create_access_point("t", &new).expect("create the access point");
    let client = env.client();
    let (plain, app) = (env.mount_point("plain"), env.mount_point("app"));
    let _plain = client.mount(&plain, &options()).expect("plain mount");
    let ap_options = MountOptions { access_point: Some(ap), default_permissions: false, ..options() };
    let _app = client.mount(&app, &ap_options).expect("access point mount");

    // Through the access point: its root is /app, files are the access point's.
    fs::write(app.join("f"), b"from the access point").expect("write through the access point");
    assert_eq!(read_all(&plain.join("app/f")), b"from the access point");
    assert_eq!(fs::metadata(plain.join("app/f")).expect("stat").uid(), 1001);
    // The access point mount has cached f; the plain mount changes it.
    assert_eq!(read_all(&app.join("f")), b"from the access point");
    let w = OpenOptions::new().write(true).open(plain.join("app/f")).expect("open through the plain mount");
    w.write_all_at(b"FROM", 0).expect("pwrite");
    drop(w);
    assert_eq!(read_all(&app.join("f")), b"FROM the access point", "data through the other view");
    fs::set_permissions(plain.join("app/f"), fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(stat(&app.join("f")).expect("stat").st_mode & 0o7777, 0o600, "attributes through the other view");
    // Names in the access point's root (node 1 of its mount).
    fs::rename(plain.join("app/f"), plain.join("app/g")).expect("rename through the plain mount");
    assert!(stat(&app.join("f")).is_none(), "the old name is gone through the access point");
    assert_eq!(read_all(&app.join("g")), b"FROM the access point");
    fs::write(app.join("h"), b"h").expect("create through the access point");
    assert!(stat(&plain.join("app/h")).is_some(), "the plain mount looks the new name up");
    fs::remove_file(app.join("h")).expect("unlink through the access point");
    assert!(stat(&plain.join("app/h")).is_none(), "an unlink through the access point, seen by the plain mount");
}
