//! The conformance suite every metadata backend must pass.
//!
//! Each `check_*` function exercises one behaviour of [`Meta`] through the public API and
//! panics with a message when the backend under it gets it wrong. A backend's test file
//! opens a fresh store and calls the checks one per test (see `tests/sqlite.rs`);
//! [`run_all`] runs every check against one engine. Every check works in a file system
//! of its own with a unique name, so checks may share a database and run concurrently,
//! and the file system is deleted when the check passes.
//!
//! The suite is part of the normal build (it needs no test framework), so that other
//! crates and future backends can run it.

use crate::{
    resolve_chunk, AccessPointId, Attr, Caller, DirEntry, FileKind, FileSystemId, FileSystemInfo, FsPolicy, InodeId,
    Lock, LockOwner, LockType, Meta, MetaError, NamespaceReport, NewAccessPoint, NewNode, NewSlice, Placement,
    RenameFlags, Result, RootCreation, SegmentSource, SessionId, SetAttr, SetLock, SliceId, SliceRef, TimeSpec,
    TimeUpdate, Unlinked, XattrFlags, ACCESS_POINT_PATH_MAX, CHUNK_SIZE, LOCK_END, MAX_FILE_SIZE, NAME_MAX,
    SYMLINK_MAX, XATTR_VALUE_MAX,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Asserts that `$e` is an `Err` matching `$p`, printing what it was otherwise.
macro_rules! assert_err {
    ($e:expr, $p:pat $(,)?) => {
        match $e {
            Err($p) => {}
            other => panic!("`{}`: expected Err({}), got {:?}", stringify!($e), stringify!($p), other),
        }
    };
    ($e:expr, $p:pat, $($arg:tt)+) => {
        match $e {
            Err($p) => {}
            other => {
                panic!("`{}`: expected Err({}), got {:?}: {}", stringify!($e), stringify!($p), other, format!($($arg)+))
            }
        }
    };
}

/// One check of the suite.
pub type Check = fn(&Meta);

/// Every check with its name, in the order [`run_all`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("check_create_fs", check_create_fs),
    ("check_fs_names", check_fs_names),
    ("check_list_fs", check_list_fs),
    ("check_delete_fs", check_delete_fs),
    ("check_mknod_kinds", check_mknod_kinds),
    ("check_lookup_dot_and_dotdot", check_lookup_dot_and_dotdot),
    ("check_name_limits", check_name_limits),
    ("check_mknod_errors", check_mknod_errors),
    ("check_dir_nlink", check_dir_nlink),
    ("check_umask", check_umask),
    ("check_setgid_inheritance", check_setgid_inheritance),
    ("check_parent_times", check_parent_times),
    ("check_create_needs_write_permission", check_create_needs_write_permission),
    ("check_sticky_directory", check_sticky_directory),
    ("check_lookup_needs_exec", check_lookup_needs_exec),
    ("check_link", check_link),
    ("check_unlink_and_purge", check_unlink_and_purge),
    ("check_unlink_purging", check_unlink_purging),
    ("check_sustained_inode", check_sustained_inode),
    ("check_close_session_purges", check_close_session_purges),
    ("check_expire_sessions", check_expire_sessions),
    ("check_list_sessions", check_list_sessions),
    ("check_fsck_namespace", check_fsck_namespace),
    ("check_rmdir", check_rmdir),
    ("check_rename_simple", check_rename_simple),
    ("check_rename_across_directories", check_rename_across_directories),
    ("check_rename_replace_file", check_rename_replace_file),
    ("check_rename_replace_dir", check_rename_replace_dir),
    ("check_rename_kind_mismatch", check_rename_kind_mismatch),
    ("check_rename_no_replace", check_rename_no_replace),
    ("check_rename_exchange", check_rename_exchange),
    ("check_rename_below_itself", check_rename_below_itself),
    ("check_rename_hard_links_noop", check_rename_hard_links_noop),
    ("check_readdir_pages", check_readdir_pages),
    ("check_readdir_concurrent_changes", check_readdir_concurrent_changes),
    ("check_symlink", check_symlink),
    ("check_chmod", check_chmod),
    ("check_chown", check_chown),
    ("check_truncate_holes", check_truncate_holes),
    ("check_truncate_errors", check_truncate_errors),
    ("check_utimes", check_utimes),
    ("check_commit_write", check_commit_write),
    ("check_commit_truncate_write", check_commit_truncate_write),
    ("check_statfs_usage", check_statfs_usage),
    ("check_symlink_usage", check_symlink_usage),
    ("check_garbage_after_truncate", check_garbage_after_truncate),
    ("check_garbage_after_purge", check_garbage_after_purge),
    ("check_reserved_slice_lifecycle", check_reserved_slice_lifecycle),
    ("check_fallocate", check_fallocate),
    ("check_replace_chunk_prefix", check_replace_chunk_prefix),
    ("check_fragmented_chunks", check_fragmented_chunks),
    ("check_xattr_basics", check_xattr_basics),
    ("check_xattr_flags_and_limits", check_xattr_flags_and_limits),
    ("check_xattr_permissions", check_xattr_permissions),
    ("check_concurrent_creates", check_concurrent_creates),
    ("check_access_points", check_access_points),
    ("check_access_point_errors", check_access_point_errors),
    ("check_policy", check_policy),
    ("check_access_point_root", check_access_point_root),
    ("check_symlink_parent", check_symlink_parent),
    ("check_resolve_symlink", check_resolve_symlink),
    ("check_lock_split_and_merge", check_lock_split_and_merge),
    ("check_lock_unlock_sub_range", check_lock_unlock_sub_range),
    ("check_lock_upgrade_and_downgrade", check_lock_upgrade_and_downgrade),
    ("check_lock_conflicts", check_lock_conflicts),
    ("check_lock_release", check_lock_release),
    ("check_lock_session_end_frees_locks", check_lock_session_end_frees_locks),
    ("check_records", check_records),
    ("check_record_conditions", check_record_conditions),
];

/// Runs every check against `meta`, one after the other.
pub fn run_all(meta: &Meta) {
    for (_, check) in CHECKS {
        check(meta);
    }
}

// --- Helpers ---------------------------------------------------------------------

const ROOT: InodeId = InodeId::ROOT;

fn root() -> Caller {
    Caller::root()
}

/// An unprivileged user.
fn alice() -> Caller {
    Caller { uid: 1000, gid: 1000, groups: Vec::new() }
}

/// Another unprivileged user, in no group of alice's.
fn bob() -> Caller {
    Caller { uid: 1001, gid: 1001, groups: Vec::new() }
}

/// Lets the clock move, so that a timestamp set afterwards is strictly later.
fn tick() {
    std::thread::sleep(Duration::from_millis(2));
}

/// A file system name no other check (nor an earlier run on the same database) uses.
fn unique_name(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let label: String = label.chars().take(24).collect();
    format!("ct-{label}-{}-{:x}-{n}", std::process::id(), TimeSpec::now().0)
}

#[track_caller]
fn ok<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error {e:?}"),
    }
}

fn node(kind: FileKind, perm: u32) -> NewNode<'static> {
    NewNode { kind, perm, umask: 0, rdev: 0, target: None }
}

fn set_mode(mode: u32) -> SetAttr {
    SetAttr { mode: Some(mode), ..SetAttr::default() }
}

fn set_size(size: u64) -> SetAttr {
    SetAttr { size: Some(size), ..SetAttr::default() }
}

fn set_owner(uid: Option<u32>, gid: Option<u32>) -> SetAttr {
    SetAttr { uid, gid, ..SetAttr::default() }
}

const NO_FLAGS: RenameFlags = RenameFlags { no_replace: false, exchange: false };
const NO_REPLACE: RenameFlags = RenameFlags { no_replace: true, exchange: false };
const EXCHANGE: RenameFlags = RenameFlags { no_replace: false, exchange: true };

/// One resolved segment of a chunk: position, length, and the slice and offset its
/// bytes come from (`None` for zeros).
type Seg = (u32, u32, Option<(SliceId, u32)>);

/// A file system created for one check, deleted again when the check passes (a failed
/// check leaves it behind for inspection).
struct TestFs<'a> {
    meta: &'a Meta,
    id: FileSystemId,
    name: String,
    info: FileSystemInfo,
}

impl Drop for TestFs<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = self.meta.delete_fs(&self.name);
        }
    }
}

impl<'a> TestFs<'a> {
    #[track_caller]
    fn new(meta: &'a Meta, label: &str) -> TestFs<'a> {
        let name = unique_name(label);
        let info = ok(meta.create_fs(&name, &format!("uuid-{name}")), "create_fs");
        TestFs { meta, id: info.id, name, info }
    }

    fn mknod(&self, c: &Caller, parent: InodeId, name: &str, kind: FileKind, perm: u32) -> Result<Attr> {
        self.meta.mknod(self.id, c, parent, name.as_bytes(), &node(kind, perm))
    }

    #[track_caller]
    fn file(&self, c: &Caller, parent: InodeId, name: &str) -> Attr {
        ok(self.mknod(c, parent, name, FileKind::File, 0o644), &format!("create file {name:?}"))
    }

    #[track_caller]
    fn dir(&self, c: &Caller, parent: InodeId, name: &str) -> Attr {
        ok(self.mknod(c, parent, name, FileKind::Directory, 0o755), &format!("mkdir {name:?}"))
    }

    /// A directory anyone may create in (mode 0777).
    #[track_caller]
    fn open_dir(&self, name: &str) -> Attr {
        ok(self.mknod(&root(), ROOT, name, FileKind::Directory, 0o777), &format!("mkdir {name:?}"))
    }

    #[track_caller]
    fn symlink(&self, c: &Caller, parent: InodeId, name: &str, target: &[u8]) -> Result<Attr> {
        let n = NewNode { kind: FileKind::Symlink, perm: 0o777, umask: 0, rdev: 0, target: Some(target) };
        self.meta.mknod(self.id, c, parent, name.as_bytes(), &n)
    }

    #[track_caller]
    fn attr(&self, ino: InodeId) -> Attr {
        ok(self.meta.getattr(self.id, ino), &format!("getattr {ino}"))
    }

    fn lookup(&self, c: &Caller, parent: InodeId, name: &str) -> Result<Attr> {
        self.meta.lookup(self.id, c, parent, name.as_bytes())
    }

    #[track_caller]
    fn ino(&self, parent: InodeId, name: &str) -> InodeId {
        ok(self.lookup(&root(), parent, name), &format!("lookup {name:?}")).ino
    }

    fn unlink(&self, c: &Caller, parent: InodeId, name: &str) -> Result<Attr> {
        self.meta.unlink(self.id, c, parent, name.as_bytes())
    }

    /// rmdir, then the purge a client does when no handle has the directory open.
    fn rmdir(&self, c: &Caller, parent: InodeId, name: &str) -> Result<()> {
        let removed = self.meta.rmdir(self.id, c, parent, name.as_bytes())?;
        assert_eq!(removed.nlink, 0, "rmdir returns the directory with no links");
        assert!(self.meta.purge_if_unlinked(self.id, removed.ino)?, "an unopened removed directory is purged");
        Ok(())
    }

    fn link(&self, c: &Caller, ino: InodeId, parent: InodeId, name: &str) -> Result<Attr> {
        self.meta.link(self.id, c, ino, parent, name.as_bytes())
    }

    #[allow(clippy::too_many_arguments)]
    fn rename(
        &self,
        c: &Caller,
        parent: InodeId,
        name: &str,
        newparent: InodeId,
        newname: &str,
        flags: RenameFlags,
    ) -> Result<Option<Attr>> {
        self.meta.rename(self.id, c, parent, name.as_bytes(), newparent, newname.as_bytes(), flags)
    }

    fn setattr(&self, c: &Caller, ino: InodeId, set: SetAttr) -> Result<Attr> {
        self.meta.setattr(self.id, c, ino, &set)
    }

    #[track_caller]
    fn statfs(&self) -> crate::StatFs {
        ok(self.meta.statfs(self.id), "statfs")
    }

    /// Every entry of a directory, following cookies.
    #[track_caller]
    fn entries(&self, dir: InodeId) -> Vec<DirEntry> {
        let mut out: Vec<DirEntry> = Vec::new();
        let mut after = 0;
        loop {
            let page = ok(self.meta.readdir(self.id, dir, after, 256, false), "readdir");
            if page.is_empty() {
                return out;
            }
            for e in page {
                assert!(e.cookie > after, "readdir of {dir}: cookie {} after {after} does not advance", e.cookie);
                after = e.cookie;
                out.push(e);
            }
            assert!(out.len() <= 1_000_000, "readdir of {dir} does not end");
        }
    }

    #[track_caller]
    fn names(&self, dir: InodeId) -> BTreeSet<String> {
        self.entries(dir).into_iter().map(|e| String::from_utf8_lossy(&e.name).into_owned()).collect()
    }

    /// Commits `data` as one inline slice at `pos` of `chunk`, growing the file to cover it.
    #[track_caller]
    fn write_inline(&self, ino: InodeId, chunk: u64, pos: u32, data: &[u8]) -> SliceId {
        let id = ok(self.meta.next_slice_ids(self.id, 1), "next_slice_ids");
        let len = data.len() as u32;
        let r = SliceRef { id, size: len, off: 0, len, pos, inline: None };
        let end = chunk * CHUNK_SIZE + pos as u64 + len as u64;
        let slice = NewSlice { id, size: len, inline: Some(data) };
        ok(self.meta.commit_write(self.id, ino, &[slice], &[Placement { chunk, r }], end), "commit_write (inline)");
        id
    }

    /// Reserves a slice for `session` and commits it as if its `len` bytes had been
    /// stored in object storage, at `pos` of `chunk`.
    #[track_caller]
    fn write_object(&self, session: SessionId, ino: InodeId, chunk: u64, pos: u32, len: u32) -> SliceId {
        let id = ok(self.meta.reserve_slice(self.id, session), "reserve_slice");
        let r = SliceRef { id, size: len, off: 0, len, pos, inline: None };
        let end = chunk * CHUNK_SIZE + pos as u64 + len as u64;
        let slice = NewSlice { id, size: len, inline: None };
        ok(self.meta.commit_write(self.id, ino, &[slice], &[Placement { chunk, r }], end), "commit_write (object)");
        id
    }

    #[track_caller]
    fn segments(&self, ino: InodeId, chunk: u64, start: u32, end: u32) -> Vec<Seg> {
        let refs = ok(self.meta.read_chunk(self.id, ino, chunk), "read_chunk");
        // Adjacent runs of zeros, or of consecutive bytes of one slice, are merged so
        // that the result does not depend on how the references happen to be split.
        let mut out: Vec<Seg> = Vec::new();
        for s in resolve_chunk(&refs, start, end) {
            let source = match s.source {
                SegmentSource::Zeros => None,
                SegmentSource::Slice { slice, off } => Some((slice.id, off)),
            };
            if let Some(last) = out.last_mut() {
                let continues = last.0 + last.1 == s.pos
                    && match (last.2, source) {
                        (None, None) => true,
                        (Some((a, a_off)), Some((b, b_off))) => a == b && a_off + last.1 == b_off,
                        _ => false,
                    };
                if continues {
                    last.1 += s.len;
                    continue;
                }
            }
            out.push((s.pos, s.len, source));
        }
        out
    }

    #[track_caller]
    fn garbage(&self) -> BTreeSet<SliceId> {
        ok(self.meta.garbage_slices(self.id, 100_000), "garbage_slices").into_iter().map(|s| s.id).collect()
    }

    #[track_caller]
    fn all_slices(&self) -> BTreeSet<SliceId> {
        ok(self.meta.all_slices(self.id), "all_slices").into_iter().map(|s| s.id).collect()
    }

    fn get_xattr(&self, c: &Caller, ino: InodeId, name: &str) -> Result<Vec<u8>> {
        self.meta.get_xattr(self.id, c, ino, name.as_bytes())
    }

    fn set_xattr(&self, c: &Caller, ino: InodeId, name: &str, value: &[u8], flags: XattrFlags) -> Result<()> {
        self.meta.set_xattr(self.id, c, ino, name.as_bytes(), value, flags)
    }

    #[track_caller]
    fn xattr_names(&self, c: &Caller, ino: InodeId) -> BTreeSet<String> {
        ok(self.meta.list_xattrs(self.id, c, ino), "list_xattrs")
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect()
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

// --- File systems ----------------------------------------------------------------

/// A new file system has an empty root directory: inode 1, root-owned, mode 0755, nlink 2.
pub fn check_create_fs(meta: &Meta) {
    let t = TestFs::new(meta, "create");
    assert_eq!(t.info.name, t.name);
    assert_eq!(t.info.uuid, format!("uuid-{}", t.name));
    assert_eq!((t.info.used_bytes, t.info.used_inodes), (0, 1), "usage of a new file system");
    assert_eq!(ok(meta.fs_by_name(&t.name), "fs_by_name"), t.info, "fs_by_name returns what create_fs did");

    let r = t.attr(ROOT);
    assert_eq!(r.ino, InodeId(1));
    assert_eq!(r.kind, FileKind::Directory);
    assert_eq!(r.perm, 0o755, "root directory mode");
    assert_eq!(r.nlink, 2, "root directory nlink");
    assert_eq!((r.uid, r.gid), (0, 0), "root directory owner");
    assert_eq!(r.parent, ROOT, "the root is its own parent");
    assert!(t.entries(ROOT).is_empty(), "a new root directory is empty");
    let st = t.statfs();
    assert_eq!((st.used_bytes, st.used_inodes), (0, 1));
}

/// Names are unique, validated, and looked up exactly.
pub fn check_fs_names(meta: &Meta) {
    let t = TestFs::new(meta, "names");
    assert_eq!(meta.create_fs(&t.name, "other-uuid"), Err(MetaError::FileSystemExists(t.name.clone())));
    assert_eq!(ok(meta.fs_by_name(&t.name), "fs_by_name").uuid, t.info.uuid, "a failed create changes nothing");

    let too_long = "x".repeat(65);
    for bad in ["", "a/b", "has space", "tab\t", "ünïcode", "semi;colon", too_long.as_str()] {
        assert_err!(meta.create_fs(bad, "uuid"), MetaError::Invalid(_), "file system name {bad:?}");
    }
    let mut longest = unique_name("longest");
    while longest.len() < 64 {
        longest.push('x');
    }
    ok(meta.create_fs(&longest, "uuid"), "create_fs with a 64-character name");
    ok(meta.delete_fs(&longest), "delete_fs");

    let missing = unique_name("missing");
    assert_eq!(meta.fs_by_name(&missing), Err(MetaError::NoFileSystem(missing.clone())));
    assert_eq!(meta.delete_fs(&missing), Err(MetaError::NoFileSystem(missing.clone())));
}

/// list_fs shows every file system with what fs_by_name says of it.
pub fn check_list_fs(meta: &Meta) {
    let a = TestFs::new(meta, "list-a");
    let b = TestFs::new(meta, "list-b");
    assert_ne!(a.id, b.id, "file system ids are unique");
    let listed = ok(meta.list_fs(), "list_fs");
    for t in [&a, &b] {
        let found: Vec<_> = listed.iter().filter(|i| i.name == t.name).collect();
        assert_eq!(found, vec![&t.info], "list_fs entry of {}", t.name);
    }
    ok(meta.delete_fs(&a.name), "delete_fs");
    let listed = ok(meta.list_fs(), "list_fs");
    assert!(!listed.iter().any(|i| i.name == a.name), "a deleted file system is not listed");
    assert!(listed.iter().any(|i| i.name == b.name), "deleting one file system keeps the others");
}

/// delete_fs removes every row of the file system, and only of that one: the name can
/// be reused and the new file system is empty.
pub fn check_delete_fs(meta: &Meta) {
    // The other file system first: a backend that reuses the highest id gives the
    // recreated file system the deleted one's id, so leftover rows would show.
    let other = TestFs::new(meta, "delete-other");
    let t = TestFs::new(meta, "delete");
    let kept = other.file(&root(), ROOT, "kept");

    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let d = t.dir(&root(), ROOT, "d");
    let f = t.file(&root(), d.ino, "f");
    let l = ok(t.symlink(&root(), ROOT, "l", b"d/f"), "symlink");
    ok(t.set_xattr(&root(), f.ino, "user.k", b"v", XattrFlags::default()), "set_xattr");
    ok(t.set_xattr(&root(), ROOT, "user.root", b"v", XattrFlags::default()), "set_xattr on root");
    ok(t.setattr(&root(), ROOT, set_mode(0o777)), "chmod root");
    t.write_inline(f.ino, 0, 0, b"contents");
    t.write_object(s, f.ino, 1, 0, 4096);
    ok(meta.reserve_slice(t.id, s), "reserve_slice");
    let gone = t.file(&root(), ROOT, "gone");
    ok(meta.sustain(t.id, s, gone.ino), "sustain");
    ok(t.unlink(&root(), ROOT, "gone"), "unlink");

    let deleted = ok(meta.delete_fs(&t.name), "delete_fs");
    assert_eq!(deleted.id, t.id);
    assert_eq!(meta.fs_by_name(&t.name), Err(MetaError::NoFileSystem(t.name.clone())));
    assert_err!(meta.statfs(t.id), MetaError::NoFileSystem(_), "statfs of a deleted file system");
    assert!(!ok(meta.heartbeat(s), "heartbeat"), "the sessions of a deleted file system are gone");

    let again = ok(meta.create_fs(&t.name, "uuid-again"), "recreate a deleted file system's name");
    let id = again.id;
    assert_eq!((again.used_bytes, again.used_inodes), (0, 1), "usage of the recreated file system");
    let r = ok(meta.getattr(id, ROOT), "getattr root");
    assert_eq!((r.perm, r.nlink), (0o755, 2), "the recreated root is new");
    assert!(ok(meta.readdir(id, ROOT, 0, 100, false), "readdir").is_empty(), "the recreated root is empty");
    assert!(ok(meta.list_xattrs(id, &root(), ROOT), "list_xattrs").is_empty(), "old xattrs are gone");
    for ino in [d.ino, f.ino, l.ino, gone.ino] {
        assert_eq!(meta.getattr(id, ino), Err(MetaError::NotFound), "inode {ino} of the deleted file system");
        assert!(ok(meta.read_chunk(id, ino, 0), "read_chunk").is_empty(), "chunks of deleted inode {ino}");
    }
    assert!(ok(meta.all_slices(id), "all_slices").is_empty(), "slices of the deleted file system");
    assert!(ok(meta.garbage_slices(id, 100), "garbage_slices").is_empty());
    assert_eq!(ok(meta.live_sessions(id, Duration::from_secs(3600)), "live_sessions"), 0);

    assert_eq!(other.attr(kept.ino), kept, "other file systems are untouched");
    assert_eq!(other.names(ROOT), set(&["kept"]));
}

// --- Creating and looking up ---------------------------------------------------------

/// mknod creates each kind of inode with the attributes asked for.
pub fn check_mknod_kinds(meta: &Meta) {
    let t = TestFs::new(meta, "kinds");
    let home = t.dir(&root(), ROOT, "home");
    ok(t.setattr(&root(), home.ino, set_owner(Some(1000), Some(1000))), "chown");
    let a = alice();
    let kinds = [
        ("file", FileKind::File, 0),
        ("dir", FileKind::Directory, 0),
        ("fifo", FileKind::Fifo, 0),
        ("sock", FileKind::Socket, 0),
        ("chr", FileKind::CharDevice, 0x0105),
        ("blk", FileKind::BlockDevice, 0x0801),
    ];
    let inodes_before = t.statfs().used_inodes;
    let mut seen = HashSet::new();
    for (name, kind, rdev) in kinds {
        let n = NewNode { kind, perm: 0o640, umask: 0, rdev, target: None };
        let attr = ok(meta.mknod(t.id, &a, home.ino, name.as_bytes(), &n), &format!("mknod {kind:?}"));
        assert!(seen.insert(attr.ino), "inode numbers are unique");
        assert_ne!(attr.ino, ROOT);
        assert_eq!(attr.kind, kind);
        assert_eq!(attr.perm, 0o640, "{kind:?} mode");
        assert_eq!((attr.uid, attr.gid), (1000, 1000), "{kind:?} is owned by its creator");
        assert_eq!(attr.rdev, rdev, "{kind:?} rdev");
        assert_eq!(attr.size, 0, "{kind:?} size");
        let is_dir = kind == FileKind::Directory;
        assert_eq!(attr.nlink, if is_dir { 2 } else { 1 }, "{kind:?} nlink");
        assert_eq!(attr.parent, home.ino, "{kind:?} parent");
        assert_eq!(t.attr(attr.ino), attr, "getattr of a new {kind:?}");
        assert_eq!(ok(t.lookup(&a, home.ino, name), "lookup"), attr, "lookup of a new {kind:?}");
    }
    let l = ok(t.symlink(&a, home.ino, "link", b"file"), "symlink");
    assert!(seen.insert(l.ino));
    assert_eq!((l.kind, l.perm, l.size, l.nlink), (FileKind::Symlink, 0o777, 4, 1));
    assert_eq!(t.attr(l.ino), l);

    let listed: BTreeMap<String, (InodeId, FileKind)> = t
        .entries(home.ino)
        .into_iter()
        .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), (e.ino, e.kind)))
        .collect();
    assert_eq!(listed.len(), 7, "readdir lists every new entry: {listed:?}");
    for (name, kind, _) in kinds {
        assert_eq!(listed[name].1, kind, "readdir kind of {name}");
    }
    assert_eq!(listed["link"], (l.ino, FileKind::Symlink));
    assert_eq!(t.statfs().used_inodes, inodes_before + 7, "used_inodes counts new inodes");
}

/// "." is the directory itself and ".." its parent (the root's is the root).
pub fn check_lookup_dot_and_dotdot(meta: &Meta) {
    let t = TestFs::new(meta, "dots");
    let a = t.dir(&root(), ROOT, "a");
    let b = t.dir(&root(), a.ino, "b");
    let f = t.file(&root(), b.ino, "f");
    let lk = |parent, name| ok(t.lookup(&root(), parent, name), &format!("lookup {name:?} in {parent}")).ino;
    assert_eq!(lk(ROOT, "."), ROOT);
    assert_eq!(lk(ROOT, ".."), ROOT);
    assert_eq!(lk(a.ino, "."), a.ino);
    assert_eq!(lk(a.ino, ".."), ROOT);
    assert_eq!(lk(b.ino, "."), b.ino);
    assert_eq!(lk(b.ino, ".."), a.ino);
    assert_eq!(lk(b.ino, "f"), f.ino);
    assert_eq!(t.lookup(&root(), b.ino, "missing"), Err(MetaError::NotFound));
    assert_eq!(t.lookup(&root(), f.ino, "x"), Err(MetaError::NotDir), "lookup in a file");
    assert_eq!(t.lookup(&root(), InodeId(1 << 40), "x"), Err(MetaError::NotFound), "lookup in a missing dir");
    assert_eq!(meta.getattr(t.id, InodeId(1 << 40)), Err(MetaError::NotFound));
}

/// Names up to NAME_MAX bytes work; longer ones fail with NameTooLong; "/", NUL, empty,
/// "." and ".." are invalid.
pub fn check_name_limits(meta: &Meta) {
    let t = TestFs::new(meta, "namelen");
    let longest = "n".repeat(NAME_MAX);
    let too_long = "n".repeat(NAME_MAX + 1);
    let f = t.file(&root(), ROOT, &longest);
    assert_eq!(ok(t.lookup(&root(), ROOT, &longest), "lookup of a 255-byte name").ino, f.ino);
    assert!(t.names(ROOT).contains(&longest));

    assert_eq!(t.mknod(&root(), ROOT, &too_long, FileKind::File, 0o644), Err(MetaError::NameTooLong));
    assert_eq!(t.mknod(&root(), ROOT, &too_long, FileKind::Directory, 0o755), Err(MetaError::NameTooLong));
    assert_eq!(t.lookup(&root(), ROOT, &too_long), Err(MetaError::NameTooLong));
    assert_eq!(t.link(&root(), f.ino, ROOT, &too_long), Err(MetaError::NameTooLong));
    assert_eq!(t.unlink(&root(), ROOT, &too_long), Err(MetaError::NameTooLong));
    assert_eq!(t.rmdir(&root(), ROOT, &too_long), Err(MetaError::NameTooLong));
    assert_eq!(t.rename(&root(), ROOT, &longest, ROOT, &too_long, NO_FLAGS), Err(MetaError::NameTooLong));
    assert_eq!(t.rename(&root(), ROOT, &too_long, ROOT, "x", NO_FLAGS), Err(MetaError::NameTooLong));

    for bad in ["", "a/b", "/", ".", "..", "nul\0byte"] {
        assert_err!(t.mknod(&root(), ROOT, bad, FileKind::File, 0o644), MetaError::Invalid(_), "mknod {bad:?}");
        assert_err!(t.link(&root(), f.ino, ROOT, bad), MetaError::Invalid(_), "link to {bad:?}");
        assert_err!(t.rename(&root(), ROOT, &longest, ROOT, bad, NO_FLAGS), MetaError::Invalid(_), "rename to {bad:?}");
    }
    assert_eq!(t.names(ROOT), set(&[&longest]), "failed operations leave the directory alone");
}

/// mknod fails with Exists on a taken name, NotDir under a file, NotFound under a
/// missing directory; failures change nothing.
pub fn check_mknod_errors(meta: &Meta) {
    let t = TestFs::new(meta, "mknod-err");
    let f = t.file(&root(), ROOT, "f");
    let d = t.dir(&root(), ROOT, "d");
    let before = t.statfs();
    assert_eq!(t.mknod(&root(), ROOT, "f", FileKind::File, 0o644), Err(MetaError::Exists));
    assert_eq!(t.mknod(&root(), ROOT, "f", FileKind::Directory, 0o755), Err(MetaError::Exists));
    assert_eq!(t.mknod(&root(), ROOT, "d", FileKind::File, 0o644), Err(MetaError::Exists));
    assert_eq!(t.symlink(&root(), ROOT, "d", b"x"), Err(MetaError::Exists));
    assert_eq!(t.mknod(&root(), f.ino, "x", FileKind::File, 0o644), Err(MetaError::NotDir));
    assert_eq!(t.mknod(&root(), f.ino, "x", FileKind::Directory, 0o755), Err(MetaError::NotDir));
    assert_eq!(t.mknod(&root(), InodeId(1 << 40), "x", FileKind::File, 0o644), Err(MetaError::NotFound));
    assert_eq!(t.symlink(&root(), ROOT, "empty", b""), Err(MetaError::NotFound), "symlink to an empty target");
    assert_eq!(t.statfs(), before, "failed creates do not count inodes");
    assert_eq!(t.attr(ROOT).nlink, 3);
    assert_eq!(t.attr(d.ino).nlink, 2);
    assert_eq!(t.names(ROOT), set(&["d", "f"]));
}

/// A directory's nlink is 2 plus its subdirectories.
pub fn check_dir_nlink(meta: &Meta) {
    let t = TestFs::new(meta, "nlink");
    let nlink = |ino| t.attr(ino).nlink;
    assert_eq!(nlink(ROOT), 2);
    let a = t.dir(&root(), ROOT, "a");
    assert_eq!(nlink(ROOT), 3);
    t.dir(&root(), ROOT, "b");
    assert_eq!(nlink(ROOT), 4);
    t.dir(&root(), a.ino, "c");
    assert_eq!((nlink(ROOT), nlink(a.ino)), (4, 3), "a grandchild counts on its parent only");
    t.file(&root(), ROOT, "f");
    t.symlink(&root(), ROOT, "l", b"f").unwrap();
    assert_eq!(nlink(ROOT), 4, "files do not count");
    ok(t.rmdir(&root(), a.ino, "c"), "rmdir c");
    assert_eq!((nlink(ROOT), nlink(a.ino)), (4, 2));
    ok(t.rmdir(&root(), ROOT, "b"), "rmdir b");
    assert_eq!(nlink(ROOT), 3);
}

/// The umask clears permission bits of new inodes, except symlinks (always 0777).
pub fn check_umask(meta: &Meta) {
    let t = TestFs::new(meta, "umask");
    let mk = |name: &str, kind, perm, umask| {
        let n = NewNode { kind, perm, umask, rdev: 0, target: None };
        ok(meta.mknod(t.id, &root(), ROOT, name.as_bytes(), &n), "mknod").perm
    };
    assert_eq!(mk("d", FileKind::Directory, 0o777, 0o022), 0o755);
    assert_eq!(mk("f", FileKind::File, 0o666, 0o027), 0o640);
    assert_eq!(mk("g", FileKind::File, 0o666, 0), 0o666);
    assert_eq!(mk("sticky", FileKind::Directory, 0o1777, 0o022), 0o1755, "umask keeps the sticky bit");
    assert_eq!(mk("fifo", FileKind::Fifo, 0o666, 0o077), 0o600);
    let n = NewNode { kind: FileKind::Symlink, perm: 0o777, umask: 0o077, rdev: 0, target: Some(b"f") };
    assert_eq!(ok(meta.mknod(t.id, &root(), ROOT, b"l", &n), "symlink").perm, 0o777, "symlinks ignore umask");
    assert_eq!(t.attr(t.ino(ROOT, "f")).perm, 0o640, "the stored mode is the masked one");
}

/// In a setgid directory new inodes take the directory's group, and new
/// subdirectories are setgid too.
pub fn check_setgid_inheritance(meta: &Meta) {
    let t = TestFs::new(meta, "setgid");
    let shared = t.open_dir("shared");
    ok(t.setattr(&root(), shared.ino, set_owner(None, Some(50))), "chgrp");
    let shared = ok(t.setattr(&root(), shared.ino, set_mode(0o2777)), "chmod g+s");
    assert_eq!((shared.perm, shared.gid), (0o2777, 50));

    let a = alice();
    let f = t.file(&a, shared.ino, "f");
    assert_eq!((f.uid, f.gid), (1000, 50), "a file in a setgid directory takes its group");
    assert_eq!(f.perm, 0o644, "files do not become setgid");
    let sub = t.dir(&a, shared.ino, "sub");
    assert_eq!(sub.gid, 50, "a subdirectory takes the group");
    assert_eq!(sub.perm, 0o2755, "a subdirectory of a setgid directory is setgid");
    let deeper = t.file(&a, sub.ino, "deeper");
    assert_eq!(deeper.gid, 50, "inheritance goes on below");

    // A non-member may not create a group-executable setgid file; a member may.
    let x = ok(t.mknod(&a, shared.ino, "x", FileKind::File, 0o2755), "mknod g+s by non-member");
    assert_eq!(x.perm, 0o755, "setgid dropped for a non-member");
    let member = Caller { uid: 1002, gid: 1002, groups: vec![50] };
    let y = ok(t.mknod(&member, shared.ino, "y", FileKind::File, 0o2755), "mknod g+s by member");
    assert_eq!(y.perm, 0o2755, "setgid kept for a member");

    let plain = t.open_dir("plain");
    let g = t.file(&a, plain.ino, "g");
    assert_eq!(g.gid, 1000, "without setgid a new file takes the creator's group");
    let e = t.dir(&a, plain.ino, "e");
    assert_eq!((e.gid, e.perm), (1000, 0o755));
}

/// Creating, linking, unlinking and renaming update the directories' mtime and ctime,
/// and link/unlink/rename update the inode's ctime.
pub fn check_parent_times(meta: &Meta) {
    let t = TestFs::new(meta, "times");
    let d = t.dir(&root(), ROOT, "d");
    let e = t.dir(&root(), ROOT, "e");
    let changed = |ino: InodeId, before: &Attr, what: &str| {
        let now = t.attr(ino);
        assert!(now.mtime > before.mtime, "{what}: mtime of {ino} not updated ({:?} -> {:?})", before.mtime, now.mtime);
        assert!(now.ctime > before.ctime, "{what}: ctime of {ino} not updated ({:?} -> {:?})", before.ctime, now.ctime);
    };

    tick();
    let before = t.attr(d.ino);
    let f = t.file(&root(), d.ino, "f");
    changed(d.ino, &before, "mknod");
    assert!(f.mtime >= before.mtime && f.ctime >= before.ctime);

    tick();
    let (bd, bf) = (t.attr(d.ino), t.attr(f.ino));
    ok(t.link(&root(), f.ino, d.ino, "g"), "link");
    changed(d.ino, &bd, "link");
    assert!(t.attr(f.ino).ctime > bf.ctime, "link updates the inode's ctime");

    tick();
    let (bd, bf) = (t.attr(d.ino), t.attr(f.ino));
    ok(t.unlink(&root(), d.ino, "g"), "unlink");
    changed(d.ino, &bd, "unlink");
    assert!(t.attr(f.ino).ctime > bf.ctime, "unlink updates the inode's ctime");

    tick();
    let (bd, bf) = (t.attr(d.ino), t.attr(f.ino));
    ok(t.rename(&root(), d.ino, "f", d.ino, "f2", NO_FLAGS), "rename");
    changed(d.ino, &bd, "rename in one directory");
    assert!(t.attr(f.ino).ctime > bf.ctime, "rename updates the inode's ctime");

    tick();
    let (bd, be) = (t.attr(d.ino), t.attr(e.ino));
    ok(t.rename(&root(), d.ino, "f2", e.ino, "f3", NO_FLAGS), "rename across");
    changed(d.ino, &bd, "rename (source directory)");
    changed(e.ino, &be, "rename (target directory)");

    t.dir(&root(), e.ino, "sub");
    tick();
    let be = t.attr(e.ino);
    ok(t.rmdir(&root(), e.ino, "sub"), "rmdir");
    changed(e.ino, &be, "rmdir");

    tick();
    let be = t.attr(e.ino);
    ok(t.symlink(&root(), e.ino, "l", b"f3"), "symlink");
    changed(e.ino, &be, "symlink");
}

// --- Permissions -----------------------------------------------------------------

/// Creating, linking, renaming and removing need write and search permission on the
/// directory; root needs neither.
pub fn check_create_needs_write_permission(meta: &Meta) {
    let t = TestFs::new(meta, "perm-create");
    let (a, b) = (alice(), bob());
    assert_eq!(t.mknod(&a, ROOT, "f", FileKind::File, 0o644), Err(MetaError::Access), "create in root's 0755 dir");
    assert_eq!(t.mknod(&a, ROOT, "d", FileKind::Directory, 0o755), Err(MetaError::Access));
    assert_eq!(t.symlink(&a, ROOT, "l", b"x"), Err(MetaError::Access));

    let open = t.open_dir("open");
    let f = t.file(&a, open.ino, "f");
    assert_eq!(t.link(&a, f.ino, ROOT, "g"), Err(MetaError::Access), "link into root's 0755 dir");
    assert_eq!(t.rename(&a, open.ino, "f", ROOT, "f", NO_FLAGS), Err(MetaError::Access), "rename into it");
    let rf = t.file(&root(), ROOT, "rootfile");
    t.dir(&root(), ROOT, "rootdir");
    assert_eq!(t.unlink(&a, ROOT, "rootfile"), Err(MetaError::Access), "unlink from it");
    assert_eq!(t.rmdir(&a, ROOT, "rootdir"), Err(MetaError::Access), "rmdir from it");
    assert_eq!(t.rename(&a, ROOT, "rootfile", open.ino, "x", NO_FLAGS), Err(MetaError::Access), "rename out of it");
    assert_eq!(t.attr(rf.ino).nlink, 1);

    // Alice's own read-only directory: not even she may create in it; root may.
    let mine = t.dir(&a, open.ino, "mine");
    ok(t.setattr(&a, mine.ino, set_mode(0o555)), "chmod");
    assert_eq!(t.mknod(&a, mine.ino, "x", FileKind::File, 0o644), Err(MetaError::Access));
    t.file(&root(), mine.ino, "by-root");
    // Write without search permission is not enough.
    ok(t.setattr(&a, mine.ino, set_mode(0o666)), "chmod");
    assert_eq!(t.mknod(&a, mine.ino, "y", FileKind::File, 0o644), Err(MetaError::Access));
    // Group and other bits apply to the others.
    ok(t.setattr(&a, mine.ino, set_mode(0o703)), "chmod");
    assert_eq!(ok(t.mknod(&a, mine.ino, "z", FileKind::File, 0o644), "owner creates with u+wx").uid, 1000);
    ok(t.mknod(&b, mine.ino, "w", FileKind::File, 0o644), "bob creates with o+wx");
    ok(t.setattr(&a, mine.ino, set_mode(0o770)), "chmod");
    assert_eq!(t.mknod(&b, mine.ino, "v", FileKind::File, 0o644), Err(MetaError::Access), "o-wx");
}

/// In a sticky directory only the owner of an entry, the directory's owner or root may
/// remove or rename it (Perm for others).
pub fn check_sticky_directory(meta: &Meta) {
    let t = TestFs::new(meta, "sticky");
    let (a, b) = (alice(), bob());
    let tmp = ok(t.mknod(&root(), ROOT, "tmp", FileKind::Directory, 0o1777), "mkdir tmp");
    assert_eq!(tmp.perm, 0o1777);
    let af = t.file(&a, tmp.ino, "a.txt");
    t.dir(&a, tmp.ino, "adir");
    t.file(&b, tmp.ino, "b.txt");

    assert_eq!(t.unlink(&b, tmp.ino, "a.txt"), Err(MetaError::Perm), "unlink another user's file");
    assert_eq!(t.rename(&b, tmp.ino, "a.txt", tmp.ino, "stolen", NO_FLAGS), Err(MetaError::Perm), "rename it");
    assert_eq!(t.rename(&b, tmp.ino, "b.txt", tmp.ino, "a.txt", NO_FLAGS), Err(MetaError::Perm), "replace it");
    assert_eq!(t.rename(&b, tmp.ino, "b.txt", tmp.ino, "a.txt", EXCHANGE), Err(MetaError::Perm), "exchange");
    assert_eq!(t.rmdir(&b, tmp.ino, "adir"), Err(MetaError::Perm), "rmdir another user's directory");
    assert_eq!(t.names(tmp.ino), set(&["a.txt", "adir", "b.txt"]), "nothing changed");
    assert_eq!(t.attr(af.ino).nlink, 1);

    // Bob may still create and remove his own entries.
    ok(t.rename(&b, tmp.ino, "b.txt", tmp.ino, "b2.txt", NO_FLAGS), "rename own file");
    ok(t.unlink(&b, tmp.ino, "b2.txt"), "unlink own file");
    // The owner of the file may.
    ok(t.rename(&a, tmp.ino, "a.txt", tmp.ino, "a2.txt", NO_FLAGS), "owner renames");
    ok(t.unlink(&a, tmp.ino, "a2.txt"), "owner unlinks");
    ok(t.rmdir(&a, tmp.ino, "adir"), "owner removes a directory");
    // Root may.
    t.file(&a, tmp.ino, "c.txt");
    ok(t.unlink(&root(), tmp.ino, "c.txt"), "root unlinks");

    // The owner of the directory may.
    let bobs = ok(t.mknod(&root(), ROOT, "bobs", FileKind::Directory, 0o1777), "mkdir");
    ok(t.setattr(&root(), bobs.ino, set_owner(Some(1001), Some(1001))), "chown");
    t.file(&a, bobs.ino, "a.txt");
    ok(t.unlink(&b, bobs.ino, "a.txt"), "the directory's owner unlinks");

    // Without the sticky bit, write permission on the directory is enough.
    let open = t.open_dir("open");
    t.file(&a, open.ino, "a.txt");
    ok(t.unlink(&b, open.ino, "a.txt"), "unlink in a non-sticky 0777 directory");
}

/// Looking up a name needs search (execute) permission on the directory.
pub fn check_lookup_needs_exec(meta: &Meta) {
    let t = TestFs::new(meta, "exec");
    let (a, b) = (alice(), bob());
    let open = t.open_dir("open");
    let p = t.dir(&a, open.ino, "private");
    ok(t.setattr(&a, p.ino, set_mode(0o700)), "chmod 0700");
    let f = t.file(&a, p.ino, "f");
    assert_eq!(ok(t.lookup(&a, p.ino, "f"), "owner lookup").ino, f.ino);
    assert_eq!(ok(t.lookup(&root(), p.ino, "f"), "root lookup").ino, f.ino);
    assert_eq!(t.lookup(&b, p.ino, "f"), Err(MetaError::Access));
    assert_eq!(t.lookup(&b, p.ino, "missing"), Err(MetaError::Access), "Access before NotFound");

    ok(t.setattr(&a, p.ino, set_mode(0o766)), "chmod 0766");
    assert_eq!(t.lookup(&b, p.ino, "f"), Err(MetaError::Access), "read and write without search");
    assert_eq!(t.mknod(&b, p.ino, "g", FileKind::File, 0o644), Err(MetaError::Access));

    ok(t.setattr(&a, p.ino, set_mode(0o711)), "chmod 0711");
    assert_eq!(ok(t.lookup(&b, p.ino, "f"), "lookup with search only").ino, f.ino);

    // The owner class decides for the owner even when others have more.
    ok(t.setattr(&a, p.ino, set_mode(0o077)), "chmod 0077");
    assert_eq!(t.lookup(&a, p.ino, "f"), Err(MetaError::Access), "owner without u+x");
    assert_eq!(ok(t.lookup(&b, p.ino, "f"), "other with o+x").ino, f.ino);
    let member = Caller { uid: 1002, gid: 1002, groups: vec![1000] };
    ok(t.setattr(&a, p.ino, set_mode(0o701)), "chmod 0701");
    assert_eq!(t.lookup(&member, p.ino, "f"), Err(MetaError::Access), "group member without g+x");
    ok(t.setattr(&a, p.ino, set_mode(0o710)), "chmod 0710");
    assert_eq!(ok(t.lookup(&member, p.ino, "f"), "supplementary group with g+x").ino, f.ino);
}

// --- Links and unlinked inodes --------------------------------------------------------

/// link adds a name and counts it; directories cannot be linked.
pub fn check_link(meta: &Meta) {
    let t = TestFs::new(meta, "link");
    let d = t.dir(&root(), ROOT, "d");
    let f = t.file(&root(), ROOT, "f");
    let inodes = t.statfs().used_inodes;
    let l = ok(t.link(&root(), f.ino, ROOT, "g"), "link");
    assert_eq!((l.ino, l.nlink), (f.ino, 2), "link returns the attributes with the new count");
    assert_eq!(t.attr(f.ino).nlink, 2);
    assert_eq!(ok(t.lookup(&root(), ROOT, "g"), "lookup").ino, f.ino);
    ok(t.link(&root(), f.ino, d.ino, "h"), "link into a subdirectory");
    assert_eq!(t.attr(f.ino).nlink, 3);
    assert_eq!(t.statfs().used_inodes, inodes, "links are not inodes");
    assert_eq!(t.attr(d.ino).nlink, 2, "a link to a file does not count on the directory");
    let s = ok(t.symlink(&root(), ROOT, "s", b"f"), "symlink");
    assert_eq!(ok(t.link(&root(), s.ino, ROOT, "s2"), "link a symlink").nlink, 2);

    assert_eq!(t.link(&root(), d.ino, ROOT, "d2"), Err(MetaError::Perm), "link to a directory");
    assert_eq!(t.link(&root(), f.ino, ROOT, "d"), Err(MetaError::Exists));
    assert_eq!(t.link(&root(), f.ino, f.ino, "x"), Err(MetaError::NotDir), "link into a file");
    assert_eq!(t.link(&root(), InodeId(1 << 40), ROOT, "x"), Err(MetaError::NotFound));
    assert_eq!(t.attr(f.ino).nlink, 3, "failed links change nothing");

    for name in ["f", "g"] {
        ok(t.unlink(&root(), ROOT, name), "unlink");
    }
    assert_eq!(ok(t.unlink(&root(), d.ino, "h"), "unlink").nlink, 0);
    assert_eq!(t.link(&root(), f.ino, ROOT, "again"), Err(MetaError::NotFound), "link an unlinked inode");
}

/// unlink drops one name; the inode stays (nlink 0) until purge_if_unlinked removes it.
pub fn check_unlink_purging(meta: &Meta) {
    let t = TestFs::new(meta, "unlinkp");
    let me = ok(meta.open_session(t.id, "me"), "open_session");
    let other = ok(meta.open_session(t.id, "other"), "open_session");
    let closed = |_: InodeId| false;
    let inodes = t.statfs().used_inodes;

    // The last link of a closed file: gone in the same transaction, its slices garbage.
    let f = t.file(&root(), ROOT, "f");
    let inl = t.write_inline(f.ino, 0, 0, b"abc");
    let obj = t.write_object(me, f.ino, 1, 0, 4096);
    let (a, fate) = ok(meta.unlink_purging(t.id, &root(), ROOT, b"f", me, &closed), "unlink f");
    assert_eq!((a.ino, a.nlink, fate), (f.ino, 0, Unlinked::Purged));
    assert_eq!(meta.getattr(t.id, f.ino), Err(MetaError::NotFound));
    assert_eq!(t.statfs().used_inodes, inodes);
    assert_eq!(t.garbage(), BTreeSet::from([obj]), "the object slice is garbage");
    assert!(!t.all_slices().contains(&inl), "the inline slice is gone at once (no objects to collect)");

    // A file with another link stays.
    let g = t.file(&root(), ROOT, "g");
    ok(t.link(&root(), g.ino, ROOT, "g2"), "link");
    let (_, fate) = ok(meta.unlink_purging(t.id, &root(), ROOT, b"g", me, &closed), "unlink g");
    assert_eq!(fate, Unlinked::Linked);
    assert_eq!(t.attr(g.ino).nlink, 1);

    // Open here: this session keeps it until it lets go.
    let open_g = |ino: InodeId| ino == g.ino;
    let (a, fate) = ok(meta.unlink_purging(t.id, &root(), ROOT, b"g2", me, &open_g), "unlink g2");
    assert_eq!((a.nlink, fate), (0, Unlinked::Sustained));
    assert_eq!(t.attr(g.ino).nlink, 0, "an open unlinked inode lives");
    ok(meta.release_sustained(t.id, me, g.ino), "release");
    assert_eq!(meta.getattr(t.id, g.ino), Err(MetaError::NotFound), "gone once let go");

    // Kept alive by another session: not purged.
    let h = t.file(&root(), ROOT, "h");
    ok(meta.sustain(t.id, other, h.ino), "sustain by the other session");
    let (_, fate) = ok(meta.unlink_purging(t.id, &root(), ROOT, b"h", me, &closed), "unlink h");
    assert_eq!(fate, Unlinked::Linked, "another session keeps it");
    assert_eq!(t.attr(h.ino).nlink, 0);
    ok(meta.release_sustained(t.id, other, h.ino), "release");
    assert_eq!(meta.getattr(t.id, h.ino), Err(MetaError::NotFound));

    // Errors are those of unlink.
    assert_err!(meta.unlink_purging(t.id, &root(), ROOT, b"missing", me, &closed), MetaError::NotFound);
    let d = t.dir(&root(), ROOT, "d");
    assert_err!(meta.unlink_purging(t.id, &root(), ROOT, b"d", me, &closed), MetaError::IsDir);
    assert_eq!(t.attr(d.ino).nlink, 2);
}

pub fn check_unlink_and_purge(meta: &Meta) {
    let t = TestFs::new(meta, "unlink");
    let f = t.file(&root(), ROOT, "f");
    ok(t.link(&root(), f.ino, ROOT, "g"), "link");
    let inodes = t.statfs().used_inodes;

    let a = ok(t.unlink(&root(), ROOT, "f"), "unlink f");
    assert_eq!((a.ino, a.nlink), (f.ino, 1));
    assert_eq!(t.lookup(&root(), ROOT, "f"), Err(MetaError::NotFound));
    assert!(!ok(meta.purge_if_unlinked(t.id, f.ino), "purge"), "purge of a linked inode is a no-op");
    assert_eq!(t.attr(f.ino).nlink, 1);
    assert_eq!(ok(t.lookup(&root(), ROOT, "g"), "lookup g").ino, f.ino);

    let a = ok(t.unlink(&root(), ROOT, "g"), "unlink g");
    assert_eq!((a.ino, a.nlink), (f.ino, 0), "the last unlink returns nlink 0");
    assert_eq!(t.lookup(&root(), ROOT, "g"), Err(MetaError::NotFound));
    assert_eq!(t.attr(f.ino).nlink, 0, "an unlinked inode lives until purged");
    assert!(t.entries(ROOT).is_empty());
    assert_eq!(t.statfs().used_inodes, inodes, "an unlinked inode still counts until purged");

    assert!(ok(meta.purge_if_unlinked(t.id, f.ino), "purge"), "purge of an unlinked inode");
    assert_eq!(meta.getattr(t.id, f.ino), Err(MetaError::NotFound));
    assert_eq!(t.statfs().used_inodes, inodes - 1);
    assert!(!ok(meta.purge_if_unlinked(t.id, f.ino), "purge again"), "purging twice is a no-op");

    // Symlinks and special files go the same way.
    let l = ok(t.symlink(&root(), ROOT, "l", b"target"), "symlink");
    assert_eq!(ok(t.unlink(&root(), ROOT, "l"), "unlink symlink").nlink, 0);
    assert!(ok(meta.purge_if_unlinked(t.id, l.ino), "purge symlink"));
    assert_eq!(meta.readlink(t.id, l.ino), Err(MetaError::NotFound));

    // purge_unlinked finds what a crashed client left behind.
    let c = t.file(&root(), ROOT, "crash");
    ok(t.unlink(&root(), ROOT, "crash"), "unlink");
    assert!(ok(meta.purge_unlinked(t.id), "purge_unlinked") >= 1);
    assert_eq!(meta.getattr(t.id, c.ino), Err(MetaError::NotFound));

    let d = t.dir(&root(), ROOT, "d");
    assert_eq!(t.unlink(&root(), ROOT, "d"), Err(MetaError::IsDir), "unlink a directory");
    assert_eq!(t.unlink(&root(), ROOT, "missing"), Err(MetaError::NotFound));
    assert_eq!(t.unlink(&root(), d.ino, "x"), Err(MetaError::NotFound));
    assert_eq!(t.attr(d.ino).nlink, 2);
}

/// A session keeps an unlinked inode it has open alive until it releases it.
pub fn check_sustained_inode(meta: &Meta) {
    let t = TestFs::new(meta, "sustain");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let s2 = ok(meta.open_session(t.id, "conformance 2"), "open_session");
    assert_ne!(s, s2);
    let f = t.file(&root(), ROOT, "f");
    let data = t.write_inline(f.ino, 0, 0, b"still readable");
    ok(meta.sustain(t.id, s, f.ino), "sustain");
    assert_eq!(ok(t.unlink(&root(), ROOT, "f"), "unlink").nlink, 0);

    assert!(!ok(meta.purge_if_unlinked(t.id, f.ino), "purge"), "a sustained inode is not purged");
    ok(meta.purge_unlinked(t.id), "purge_unlinked");
    assert_eq!(t.attr(f.ino).nlink, 0, "a sustained inode survives purge_unlinked");
    assert_eq!(ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk").len(), 1, "its data stays readable");
    assert!(!t.garbage().contains(&data), "its slices are not garbage");

    // A second holder: releasing one keeps it alive.
    ok(meta.sustain(t.id, s2, f.ino), "sustain by a second session");
    ok(meta.sustain(t.id, s2, f.ino), "sustain twice");
    ok(meta.release_sustained(t.id, s, f.ino), "release");
    assert_eq!(t.attr(f.ino).nlink, 0, "still held by the other session");
    ok(meta.release_sustained(t.id, s2, f.ino), "release");
    assert_eq!(meta.getattr(t.id, f.ino), Err(MetaError::NotFound), "released by all: purged");
    assert!(!t.all_slices().contains(&data), "the purged inode's inline slice is gone");

    // Releasing an inode that still has names keeps it.
    let g = t.file(&root(), ROOT, "g");
    ok(meta.sustain(t.id, s, g.ino), "sustain");
    ok(meta.release_sustained(t.id, s, g.ino), "release");
    assert_eq!(t.attr(g.ino).nlink, 1, "release does not purge a linked inode");
    ok(meta.close_session(t.id, s), "close_session");
    ok(meta.close_session(t.id, s2), "close_session");
    assert_eq!(t.attr(g.ino).nlink, 1);
}

/// Closing a session purges the unlinked inodes it kept alive and ends the session.
pub fn check_close_session_purges(meta: &Meta) {
    let t = TestFs::new(meta, "close");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let other = ok(meta.open_session(t.id, "conformance other"), "open_session");
    assert_eq!(ok(meta.live_sessions(t.id, Duration::from_secs(3600)), "live_sessions"), 2);
    let f = t.file(&root(), ROOT, "f");
    let g = t.file(&root(), ROOT, "g");
    let h = t.file(&root(), ROOT, "h");
    ok(meta.sustain(t.id, s, f.ino), "sustain");
    ok(meta.sustain(t.id, s, g.ino), "sustain");
    ok(meta.sustain(t.id, s, h.ino), "sustain");
    ok(meta.sustain(t.id, other, h.ino), "sustain");
    ok(t.unlink(&root(), ROOT, "f"), "unlink");
    ok(t.unlink(&root(), ROOT, "h"), "unlink");
    let inodes = t.statfs().used_inodes;

    ok(meta.close_session(t.id, s), "close_session");
    assert_eq!(meta.getattr(t.id, f.ino), Err(MetaError::NotFound), "an unlinked sustained inode is purged");
    assert_eq!(t.attr(g.ino).nlink, 1, "a linked inode is kept");
    assert_eq!(t.attr(h.ino).nlink, 0, "an inode another session holds is kept");
    assert_eq!(t.statfs().used_inodes, inodes - 1);
    assert!(!ok(meta.heartbeat(s), "heartbeat"), "a closed session is gone");
    assert!(ok(meta.heartbeat(other), "heartbeat"), "other sessions live on");
    assert_eq!(ok(meta.live_sessions(t.id, Duration::from_secs(3600)), "live_sessions"), 1);

    ok(meta.close_session(t.id, other), "close_session");
    assert_eq!(meta.getattr(t.id, h.ino), Err(MetaError::NotFound));
    assert_eq!(ok(meta.live_sessions(t.id, Duration::from_secs(3600)), "live_sessions"), 0);
}

/// expire_sessions closes the sessions of one file system that missed heartbeats for
/// longer than the ttl, with what they held, and leaves the others.
pub fn check_list_sessions(meta: &Meta) {
    let t = TestFs::new(meta, "sessions");
    let other = TestFs::new(meta, "sessions-other");
    assert!(ok(meta.sessions(Some(t.id)), "sessions").is_empty(), "a new file system has no sessions");
    let before = TimeSpec::now();
    let a = ok(meta.open_session(t.id, "host-a pid 1"), "open_session");
    let b = ok(meta.open_session(t.id, "host-b pid 2"), "open_session");
    let c = ok(meta.open_session(other.id, "host-a pid 3"), "open_session");

    let listed = ok(meta.sessions(Some(t.id)), "sessions");
    let ids: Vec<SessionId> = listed.iter().map(|s| s.id).collect();
    assert_eq!(ids, [a, b], "the sessions of one file system, in id order");
    let first = &listed[0];
    assert_eq!((first.fs, first.info.as_str()), (t.id, "host-a pid 1"));
    assert!(first.started >= before && first.heartbeat == first.started, "a new session's times: {first:?}");

    // Every file system's: other checks may have sessions open meanwhile, so look for ours.
    let all = ok(meta.sessions(None), "sessions");
    let ours: Vec<(SessionId, FileSystemId)> =
        all.iter().filter(|s| [a, b, c].contains(&s.id)).map(|s| (s.id, s.fs)).collect();
    assert_eq!(ours, [(a, t.id), (b, t.id), (c, other.id)]);

    assert!(ok(meta.heartbeat(b), "heartbeat"));
    let beaten = ok(meta.sessions(Some(t.id)), "sessions").into_iter().find(|s| s.id == b).expect("session b listed");
    assert!(beaten.heartbeat >= beaten.started, "a heartbeat moves the session's heartbeat: {beaten:?}");
    assert_eq!(beaten.started, listed[1].started, "a heartbeat keeps the start time");

    ok(meta.close_session(t.id, a), "close_session");
    let ids: Vec<SessionId> = ok(meta.sessions(Some(t.id)), "sessions").iter().map(|s| s.id).collect();
    assert_eq!(ids, [b], "a closed session is no longer listed");
    ok(meta.close_session(t.id, b), "close_session");
    ok(meta.close_session(other.id, c), "close_session");
}

pub fn check_expire_sessions(meta: &Meta) {
    const TTL: Duration = Duration::from_millis(750);
    let t = TestFs::new(meta, "expire");
    let elsewhere = TestFs::new(meta, "expire-other");
    let stale = ok(meta.open_session(t.id, "stale"), "open_session");
    let stale_elsewhere = ok(meta.open_session(elsewhere.id, "stale elsewhere"), "open_session");
    let f1 = t.file(&root(), ROOT, "f1");
    ok(meta.sustain(t.id, stale, f1.ino), "sustain");
    ok(t.unlink(&root(), ROOT, "f1"), "unlink");
    let reserved = ok(meta.reserve_slice(t.id, stale), "reserve_slice");

    std::thread::sleep(TTL * 2);
    let fresh = ok(meta.open_session(t.id, "fresh"), "open_session");
    let f2 = t.file(&root(), ROOT, "f2");
    ok(meta.sustain(t.id, fresh, f2.ino), "sustain");
    ok(t.unlink(&root(), ROOT, "f2"), "unlink");
    assert!(!t.garbage().contains(&reserved), "a live session's reserved slice is not garbage");
    assert!(ok(meta.heartbeat(fresh), "heartbeat"));
    assert_eq!(ok(meta.live_sessions(t.id, TTL), "live_sessions"), 1, "only the fresh session is live");

    assert_eq!(ok(meta.expire_sessions(t.id, TTL), "expire_sessions"), 1, "one stale session");
    assert_eq!(meta.getattr(t.id, f1.ino), Err(MetaError::NotFound), "the expired session's inode is purged");
    assert_eq!(t.attr(f2.ino).nlink, 0, "the fresh session's inode is kept");
    assert!(t.garbage().contains(&reserved), "the expired session's reserved slice is garbage");
    assert!(!ok(meta.heartbeat(stale), "heartbeat"), "the expired session is gone");
    assert!(ok(meta.heartbeat(fresh), "heartbeat"), "the fresh session lives");
    assert!(ok(meta.heartbeat(stale_elsewhere), "heartbeat"), "other file systems' sessions are not expired");
    assert_eq!(ok(meta.expire_sessions(t.id, Duration::from_secs(3600)), "expire_sessions"), 0);

    ok(meta.close_session(t.id, fresh), "close_session");
    assert_eq!(meta.getattr(t.id, f2.ino), Err(MetaError::NotFound));
    ok(meta.close_session(elsewhere.id, stale_elsewhere), "close_session");
}

/// rmdir removes empty directories only.
pub fn check_rmdir(meta: &Meta) {
    let t = TestFs::new(meta, "rmdir");
    let d = t.dir(&root(), ROOT, "d");
    let sub = t.dir(&root(), d.ino, "sub");
    let f = t.file(&root(), ROOT, "f");
    let inodes = t.statfs().used_inodes;

    assert_eq!(t.rmdir(&root(), ROOT, "d"), Err(MetaError::NotEmpty), "rmdir with a subdirectory");
    assert_eq!(t.rmdir(&root(), ROOT, "f"), Err(MetaError::NotDir), "rmdir a file");
    assert_err!(t.rmdir(&root(), d.ino, "."), MetaError::Invalid(_), "rmdir \".\"");
    assert_eq!(t.rmdir(&root(), d.ino, ".."), Err(MetaError::NotEmpty), "rmdir \"..\"");
    assert_eq!(t.rmdir(&root(), ROOT, "missing"), Err(MetaError::NotFound));
    assert_eq!(t.rmdir(&root(), f.ino, "x"), Err(MetaError::NotDir), "rmdir under a file");
    assert_eq!(t.statfs().used_inodes, inodes);

    t.file(&root(), sub.ino, "g");
    assert_eq!(t.rmdir(&root(), d.ino, "sub"), Err(MetaError::NotEmpty), "rmdir with a file");
    ok(t.unlink(&root(), sub.ino, "g"), "unlink");
    ok(t.rmdir(&root(), d.ino, "sub"), "rmdir sub");
    assert_eq!(t.lookup(&root(), d.ino, "sub"), Err(MetaError::NotFound));
    assert_eq!(meta.getattr(t.id, sub.ino), Err(MetaError::NotFound), "a removed directory is gone at once");
    assert_eq!(t.attr(d.ino).nlink, 2);
    ok(t.rmdir(&root(), ROOT, "d"), "rmdir d");
    assert_eq!(t.attr(ROOT).nlink, 2);
    // "g" was unlinked but not purged: it still counts.
    assert_eq!(t.statfs().used_inodes, inodes - 1);
    assert_eq!(t.names(ROOT), set(&["f"]));
}

// --- Rename --------------------------------------------------------------------------

/// A rename within one directory moves the name and keeps the inode.
pub fn check_rename_simple(meta: &Meta) {
    let t = TestFs::new(meta, "rename");
    let f = t.file(&root(), ROOT, "a");
    assert_eq!(t.rename(&root(), ROOT, "a", ROOT, "b", NO_FLAGS), Ok(None));
    assert_eq!(t.lookup(&root(), ROOT, "a"), Err(MetaError::NotFound));
    let b = ok(t.lookup(&root(), ROOT, "b"), "lookup");
    assert_eq!((b.ino, b.nlink), (f.ino, 1));
    let d = t.dir(&root(), ROOT, "d");
    assert_eq!(t.rename(&root(), ROOT, "d", ROOT, "e", NO_FLAGS), Ok(None));
    assert_eq!(t.ino(ROOT, "e"), d.ino);
    assert_eq!(t.attr(ROOT).nlink, 3, "renaming a directory in place keeps the parent's nlink");
    assert_eq!(t.attr(d.ino).parent, ROOT);
    assert_eq!(t.names(ROOT), set(&["b", "e"]));
    assert_eq!(t.rename(&root(), ROOT, "missing", ROOT, "x", NO_FLAGS), Err(MetaError::NotFound));
    assert_err!(t.rename(&root(), ROOT, ".", ROOT, "x", NO_FLAGS), MetaError::Invalid(_));
    assert_err!(t.rename(&root(), ROOT, "..", ROOT, "x", NO_FLAGS), MetaError::Invalid(_));
    assert_eq!(t.rename(&root(), f.ino, "x", ROOT, "y", NO_FLAGS), Err(MetaError::NotDir));
    assert_eq!(t.rename(&root(), ROOT, "b", f.ino, "y", NO_FLAGS), Err(MetaError::NotDir));
    assert_eq!(t.statfs().used_inodes, 3);
}

/// Moving a directory to another parent updates its parent field, "..", and both
/// parents' nlink.
pub fn check_rename_across_directories(meta: &Meta) {
    let t = TestFs::new(meta, "rename-across");
    let p = t.dir(&root(), ROOT, "p");
    let q = t.dir(&root(), ROOT, "q");
    let d = t.dir(&root(), p.ino, "d");
    let x = t.file(&root(), d.ino, "x");
    let f = t.file(&root(), p.ino, "f");
    assert_eq!(t.attr(p.ino).nlink, 3);

    assert_eq!(t.rename(&root(), p.ino, "d", q.ino, "d2", NO_FLAGS), Ok(None));
    assert_eq!(t.attr(p.ino).nlink, 2, "the old parent loses a subdirectory");
    assert_eq!(t.attr(q.ino).nlink, 3, "the new parent gains one");
    assert_eq!(t.attr(ROOT).nlink, 4);
    let moved = t.attr(d.ino);
    assert_eq!((moved.parent, moved.nlink), (q.ino, 2), "the moved directory's parent");
    assert_eq!(ok(t.lookup(&root(), d.ino, ".."), "lookup ..").ino, q.ino, "\"..\" follows the move");
    assert_eq!(t.ino(q.ino, "d2"), d.ino);
    assert_eq!(t.ino(d.ino, "x"), x.ino, "the contents move along");
    assert_eq!(t.lookup(&root(), p.ino, "d"), Err(MetaError::NotFound));

    assert_eq!(t.rename(&root(), p.ino, "f", q.ino, "f", NO_FLAGS), Ok(None));
    assert_eq!((t.attr(p.ino).nlink, t.attr(q.ino).nlink), (2, 3), "moving a file changes no nlink");
    let moved = t.attr(f.ino);
    assert_eq!((moved.nlink, moved.parent), (1, q.ino), "a moved file's parent follows too");
    assert!(t.entries(p.ino).is_empty());
    assert_eq!(t.names(q.ino), set(&["d2", "f"]));

    // Moving a directory to another parent rewrites its "..": that needs write
    // permission on it; renaming it in place does not.
    let (a, b) = (alice(), bob());
    let o1 = t.open_dir("o1");
    let o2 = t.open_dir("o2");
    t.dir(&b, o1.ino, "bobs");
    assert_eq!(t.rename(&a, o1.ino, "bobs", o2.ino, "bobs", NO_FLAGS), Err(MetaError::Access));
    assert_eq!(t.rename(&a, o1.ino, "bobs", o1.ino, "renamed", NO_FLAGS), Ok(None));
    assert_eq!(t.rename(&b, o1.ino, "renamed", o2.ino, "bobs", NO_FLAGS), Ok(None), "the owner may move it");
    for name in ["o1", "o2"] {
        let dir = t.ino(ROOT, name);
        for e in t.entries(dir) {
            ok(t.rmdir(&root(), dir, &String::from_utf8_lossy(&e.name)), "rmdir");
        }
        ok(t.rmdir(&root(), ROOT, name), "rmdir");
    }

    // Up to the root and down again.
    assert_eq!(t.rename(&root(), q.ino, "d2", ROOT, "top", NO_FLAGS), Ok(None));
    assert_eq!((t.attr(ROOT).nlink, t.attr(q.ino).nlink), (5, 2));
    assert_eq!(ok(t.lookup(&root(), d.ino, ".."), "lookup ..").ino, ROOT);
    assert_eq!(t.statfs().used_inodes, 6);
}

/// Renaming over a file replaces it; the replaced inode is returned when that was its
/// last name.
pub fn check_rename_replace_file(meta: &Meta) {
    let t = TestFs::new(meta, "rename-file");
    let a = t.file(&root(), ROOT, "a");
    let b = t.file(&root(), ROOT, "b");
    let inodes = t.statfs().used_inodes;
    let orphan = ok(t.rename(&root(), ROOT, "a", ROOT, "b", NO_FLAGS), "rename over a file");
    let orphan = orphan.expect("replacing the last name of a file returns it");
    assert_eq!((orphan.ino, orphan.nlink), (b.ino, 0));
    assert_eq!(t.ino(ROOT, "b"), a.ino, "the name now leads to the renamed inode");
    assert_eq!(t.lookup(&root(), ROOT, "a"), Err(MetaError::NotFound));
    assert_eq!(t.attr(b.ino).nlink, 0, "the replaced inode waits to be purged");
    assert!(ok(meta.purge_if_unlinked(t.id, b.ino), "purge"));
    assert_eq!(t.statfs().used_inodes, inodes - 1);

    // A target with another name is only unlinked once.
    let c = t.file(&root(), ROOT, "c");
    ok(t.link(&root(), c.ino, ROOT, "c2"), "link");
    assert_eq!(t.rename(&root(), ROOT, "b", ROOT, "c", NO_FLAGS), Ok(None), "the target keeps a name");
    assert_eq!(t.attr(c.ino).nlink, 1);
    assert_eq!(t.ino(ROOT, "c"), a.ino);
    assert_eq!(t.ino(ROOT, "c2"), c.ino);

    // Across directories.
    let d = t.dir(&root(), ROOT, "d");
    let e = t.file(&root(), d.ino, "e");
    let orphan = ok(t.rename(&root(), ROOT, "c2", d.ino, "e", NO_FLAGS), "rename over a file across");
    assert_eq!(orphan.map(|o| (o.ino, o.nlink)), Some((e.ino, 0)));
    assert_eq!(t.ino(d.ino, "e"), c.ino);
    assert_eq!(t.names(ROOT), set(&["c", "d"]));
    assert_eq!((t.attr(ROOT).nlink, t.attr(d.ino).nlink), (3, 2));
}

/// Renaming a directory over an empty directory replaces it; over a non-empty one fails.
pub fn check_rename_replace_dir(meta: &Meta) {
    let t = TestFs::new(meta, "rename-dir");
    let d1 = t.dir(&root(), ROOT, "d1");
    let inner = t.file(&root(), d1.ino, "inner");
    let d2 = t.dir(&root(), ROOT, "d2");
    let inodes = t.statfs().used_inodes;
    assert_eq!(t.attr(ROOT).nlink, 4);
    assert_eq!(t.rename(&root(), ROOT, "d1", ROOT, "d2", NO_FLAGS), Ok(None), "rename over an empty dir");
    assert_eq!(t.ino(ROOT, "d2"), d1.ino);
    assert_eq!(t.ino(d1.ino, "inner"), inner.ino);
    assert_eq!(meta.getattr(t.id, d2.ino), Err(MetaError::NotFound), "the replaced directory is gone");
    assert_eq!(t.attr(ROOT).nlink, 3, "the parent lost one subdirectory");
    assert_eq!(t.statfs().used_inodes, inodes - 1);
    assert_eq!(t.names(ROOT), set(&["d2"]));

    // Across directories.
    let p = t.dir(&root(), ROOT, "p");
    let q = t.dir(&root(), ROOT, "q");
    let e1 = t.dir(&root(), p.ino, "e1");
    let e2 = t.dir(&root(), q.ino, "e2");
    assert_eq!(t.rename(&root(), p.ino, "e1", q.ino, "e2", NO_FLAGS), Ok(None));
    assert_eq!((t.attr(p.ino).nlink, t.attr(q.ino).nlink), (2, 3), "one moved in, one replaced");
    assert_eq!(meta.getattr(t.id, e2.ino), Err(MetaError::NotFound));
    assert_eq!(t.attr(e1.ino).parent, q.ino);
    assert_eq!(ok(t.lookup(&root(), e1.ino, ".."), "lookup ..").ino, q.ino);

    // Not over a non-empty directory.
    t.dir(&root(), p.ino, "full");
    let g = t.dir(&root(), ROOT, "g");
    assert_eq!(t.rename(&root(), ROOT, "g", ROOT, "p", NO_FLAGS), Err(MetaError::NotEmpty));
    assert_eq!(t.rename(&root(), ROOT, "g", p.ino, "full", NO_FLAGS), Ok(None), "an empty one is fine");
    t.file(&root(), g.ino, "x");
    assert_eq!(t.rename(&root(), ROOT, "d2", p.ino, "full", NO_FLAGS), Err(MetaError::NotEmpty));
    assert_eq!(t.ino(ROOT, "d2"), d1.ino, "a failed rename changes nothing");
}

/// A directory cannot replace a non-directory (NotDir) nor the other way round (IsDir).
pub fn check_rename_kind_mismatch(meta: &Meta) {
    let t = TestFs::new(meta, "rename-kind");
    let d = t.dir(&root(), ROOT, "d");
    let f = t.file(&root(), ROOT, "f");
    let l = ok(t.symlink(&root(), ROOT, "l", b"f"), "symlink");
    assert_eq!(t.rename(&root(), ROOT, "d", ROOT, "f", NO_FLAGS), Err(MetaError::NotDir), "dir over file");
    assert_eq!(t.rename(&root(), ROOT, "d", ROOT, "l", NO_FLAGS), Err(MetaError::NotDir), "dir over symlink");
    assert_eq!(t.rename(&root(), ROOT, "f", ROOT, "d", NO_FLAGS), Err(MetaError::IsDir), "file over dir");
    assert_eq!(t.rename(&root(), ROOT, "l", ROOT, "d", NO_FLAGS), Err(MetaError::IsDir), "symlink over dir");
    assert_eq!((t.ino(ROOT, "d"), t.ino(ROOT, "f"), t.ino(ROOT, "l")), (d.ino, f.ino, l.ino));
    assert_eq!((t.attr(f.ino).nlink, t.attr(ROOT).nlink), (1, 3));
    // A symlink may replace a file.
    assert_eq!(t.rename(&root(), ROOT, "l", ROOT, "f", NO_FLAGS).map(|o| o.map(|o| o.ino)), Ok(Some(f.ino)));
}

/// RENAME_NOREPLACE fails with Exists on an existing target and works otherwise.
pub fn check_rename_no_replace(meta: &Meta) {
    let t = TestFs::new(meta, "rename-noreplace");
    let a = t.file(&root(), ROOT, "a");
    let b = t.file(&root(), ROOT, "b");
    t.dir(&root(), ROOT, "d");
    assert_eq!(t.rename(&root(), ROOT, "a", ROOT, "b", NO_REPLACE), Err(MetaError::Exists));
    assert_eq!(t.rename(&root(), ROOT, "a", ROOT, "d", NO_REPLACE), Err(MetaError::Exists));
    assert_eq!((t.ino(ROOT, "a"), t.ino(ROOT, "b")), (a.ino, b.ino));
    assert_eq!(t.rename(&root(), ROOT, "a", ROOT, "c", NO_REPLACE), Ok(None));
    assert_eq!(t.ino(ROOT, "c"), a.ino);
    let both = RenameFlags { no_replace: true, exchange: true };
    assert_err!(t.rename(&root(), ROOT, "c", ROOT, "b", both), MetaError::Invalid(_), "NOREPLACE with EXCHANGE");
}

/// RENAME_EXCHANGE swaps two names atomically, fixing directories' parents and nlinks.
pub fn check_rename_exchange(meta: &Meta) {
    let t = TestFs::new(meta, "rename-exchange");
    let a = t.file(&root(), ROOT, "a");
    let b = t.file(&root(), ROOT, "b");
    assert_eq!(t.rename(&root(), ROOT, "a", ROOT, "b", EXCHANGE), Ok(None));
    assert_eq!((t.ino(ROOT, "a"), t.ino(ROOT, "b")), (b.ino, a.ino), "names swapped");
    assert_eq!((t.attr(a.ino).nlink, t.attr(b.ino).nlink), (1, 1));
    assert_eq!(t.rename(&root(), ROOT, "a", ROOT, "missing", EXCHANGE), Err(MetaError::NotFound));
    assert_eq!(t.names(ROOT), set(&["a", "b"]));

    // A directory with a file, across parents.
    let p = t.dir(&root(), ROOT, "p");
    let q = t.dir(&root(), ROOT, "q");
    let d = t.dir(&root(), p.ino, "d");
    let inner = t.file(&root(), d.ino, "inner");
    let f = t.file(&root(), q.ino, "f");
    assert_eq!(t.rename(&root(), p.ino, "d", q.ino, "f", EXCHANGE), Ok(None));
    assert_eq!((t.ino(p.ino, "d"), t.ino(q.ino, "f")), (f.ino, d.ino));
    assert_eq!(t.lookup(&root(), p.ino, "d").map(|a| a.kind), Ok(FileKind::File));
    assert_eq!(t.attr(d.ino).parent, q.ino, "the directory's parent follows");
    assert_eq!(ok(t.lookup(&root(), d.ino, ".."), "lookup ..").ino, q.ino);
    assert_eq!(t.ino(d.ino, "inner"), inner.ino);
    assert_eq!((t.attr(p.ino).nlink, t.attr(q.ino).nlink), (2, 3), "nlinks follow the directory");
    let kinds: Vec<_> = t.entries(p.ino).into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![FileKind::File], "readdir sees the new kind");

    // Two directories across parents.
    let e = t.dir(&root(), p.ino, "e");
    assert_eq!(t.rename(&root(), p.ino, "e", q.ino, "f", EXCHANGE), Ok(None));
    assert_eq!((t.attr(e.ino).parent, t.attr(d.ino).parent), (q.ino, p.ino));
    assert_eq!((t.ino(p.ino, "e"), t.ino(q.ino, "f")), (d.ino, e.ino));
    assert_eq!((t.attr(p.ino).nlink, t.attr(q.ino).nlink), (3, 3));
    assert_eq!(t.attr(ROOT).nlink, 4);
    assert_eq!(t.statfs().used_inodes, 9);
}

/// A directory cannot move below itself.
pub fn check_rename_below_itself(meta: &Meta) {
    let t = TestFs::new(meta, "rename-loop");
    let a = t.dir(&root(), ROOT, "a");
    let b = t.dir(&root(), a.ino, "b");
    let c = t.dir(&root(), b.ino, "c");
    assert_err!(t.rename(&root(), ROOT, "a", a.ino, "x", NO_FLAGS), MetaError::Invalid(_), "into itself");
    assert_err!(t.rename(&root(), ROOT, "a", b.ino, "x", NO_FLAGS), MetaError::Invalid(_), "into its child");
    assert_err!(t.rename(&root(), ROOT, "a", c.ino, "x", NO_FLAGS), MetaError::Invalid(_), "into a grandchild");
    assert_err!(t.rename(&root(), a.ino, "b", c.ino, "x", NO_FLAGS), MetaError::Invalid(_), "b into b/c");
    assert_err!(t.rename(&root(), ROOT, "a", b.ino, "c", EXCHANGE), MetaError::Invalid(_), "exchange with a child");
    assert_err!(t.rename(&root(), b.ino, "c", ROOT, "a", EXCHANGE), MetaError::Invalid(_), "exchange with a parent");
    assert_eq!((t.attr(a.ino).parent, t.attr(b.ino).parent, t.attr(c.ino).parent), (ROOT, a.ino, b.ino));
    assert_eq!((t.attr(ROOT).nlink, t.attr(a.ino).nlink, t.attr(b.ino).nlink), (3, 3, 3));
    // Moving up is fine.
    assert_eq!(t.rename(&root(), b.ino, "c", ROOT, "c", NO_FLAGS), Ok(None));
    assert_eq!(t.attr(c.ino).parent, ROOT);
}

/// Renaming one name of an inode onto another name of the same inode does nothing.
pub fn check_rename_hard_links_noop(meta: &Meta) {
    let t = TestFs::new(meta, "rename-links");
    let f = t.file(&root(), ROOT, "f");
    let d = t.dir(&root(), ROOT, "d");
    ok(t.link(&root(), f.ino, ROOT, "g"), "link");
    ok(t.link(&root(), f.ino, d.ino, "h"), "link");
    assert_eq!(t.rename(&root(), ROOT, "f", ROOT, "g", NO_FLAGS), Ok(None));
    assert_eq!(t.rename(&root(), ROOT, "f", d.ino, "h", NO_FLAGS), Ok(None));
    assert_eq!((t.ino(ROOT, "f"), t.ino(ROOT, "g"), t.ino(d.ino, "h")), (f.ino, f.ino, f.ino), "all names stay");
    assert_eq!(t.attr(f.ino).nlink, 3);
    assert_eq!(t.rename(&root(), ROOT, "f", ROOT, "f", NO_FLAGS), Ok(None), "rename onto itself");
    assert_eq!(t.rename(&root(), ROOT, "d", ROOT, "d", NO_FLAGS), Ok(None), "a directory onto itself");
    assert_eq!((t.attr(f.ino).nlink, t.attr(ROOT).nlink), (3, 3));
    assert_eq!(t.names(ROOT), set(&["d", "f", "g"]));
}

// --- readdir ---------------------------------------------------------------------

/// A large directory read in pages via cookies lists every entry once, with or without
/// attributes.
pub fn check_readdir_pages(meta: &Meta) {
    let t = TestFs::new(meta, "readdir");
    let d = t.dir(&root(), ROOT, "d");
    let mut expected = BTreeMap::new();
    for i in 0..1000 {
        let name = format!("entry-{i:04}");
        let a = if i % 10 == 0 { t.dir(&root(), d.ino, &name) } else { t.file(&root(), d.ino, &name) };
        expected.insert(name.into_bytes(), a);
    }
    assert_eq!(t.attr(d.ino).nlink, 102);
    for with_attrs in [false, true] {
        let mut seen = BTreeSet::new();
        let (mut after, mut pages) = (0, 0);
        loop {
            let page = ok(meta.readdir(t.id, d.ino, after, 100, with_attrs), "readdir");
            if page.is_empty() {
                break;
            }
            pages += 1;
            assert!(pages <= 10, "more than 10 pages of 100 for 1000 entries");
            assert_eq!(page.len(), 100, "page {pages} is full");
            for e in &page {
                assert!(e.cookie > after, "cookies increase ({} after {after})", e.cookie);
                after = e.cookie;
                let want = expected.get(&e.name).unwrap_or_else(|| panic!("unexpected entry {:?}", e.name));
                assert!(seen.insert(e.name.clone()), "entry {:?} listed twice", String::from_utf8_lossy(&e.name));
                assert_eq!((e.ino, e.kind), (want.ino, want.kind));
                match (&e.attr, with_attrs) {
                    (None, false) => {}
                    (Some(a), true) => assert_eq!(a, want, "readdirplus attributes"),
                    (a, _) => panic!("with_attrs={with_attrs} but attr is {a:?}"),
                }
            }
        }
        assert_eq!(pages, 10);
        assert_eq!(seen.len(), 1000, "every entry is listed");
    }
    let first = ok(meta.readdir(t.id, d.ino, 0, 5, false), "readdir");
    assert_eq!(first.len(), 5, "limit is honoured");
    let again = ok(meta.readdir(t.id, d.ino, first[1].cookie, 2, false), "readdir");
    assert_eq!(again.iter().map(|e| &e.name).collect::<Vec<_>>(), vec![&first[2].name, &first[3].name], "resume");
    assert_eq!(ok(meta.readdir(t.id, d.ino, u64::MAX >> 1, 10, false), "readdir past the end"), vec![]);
    let f = t.file(&root(), ROOT, "f");
    assert_eq!(meta.readdir(t.id, f.ino, 0, 10, false), Err(MetaError::NotDir));
    assert!(ok(meta.readdir(t.id, t.dir(&root(), ROOT, "empty").ino, 0, 10, true), "readdir").is_empty());
}

/// Entries created and removed between pages do not make the listing skip or repeat
/// the entries that stayed.
pub fn check_readdir_concurrent_changes(meta: &Meta) {
    let t = TestFs::new(meta, "readdir-changes");
    let d = t.dir(&root(), ROOT, "d");
    let original: Vec<String> = (0..1000).map(|i| format!("e{i:04}")).collect();
    for name in &original {
        t.file(&root(), d.ino, name);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut removed: HashSet<String> = HashSet::new();
    let (mut after, mut round, mut created) = (0, 0, 0);
    loop {
        let page = ok(meta.readdir(t.id, d.ino, after, 100, round % 2 == 1), "readdir");
        let Some(last) = page.last() else { break };
        for e in &page {
            assert!(e.cookie > after, "cookies increase");
            after = e.cookie;
            *seen.entry(String::from_utf8_lossy(&e.name).into_owned()).or_default() += 1;
        }
        assert_eq!(after, last.cookie);
        round += 1;
        assert!(round < 100, "the listing does not end");
        // Between pages: remove ten listed and ten unlisted originals, create ten more.
        let listed: Vec<String> =
            original.iter().filter(|n| seen.contains_key(*n) && !removed.contains(*n)).take(10).cloned().collect();
        let unlisted: Vec<String> = original
            .iter()
            .filter(|n| !seen.contains_key(*n) && !removed.contains(*n))
            .step_by(7)
            .take(10)
            .cloned()
            .collect();
        for name in listed.iter().chain(&unlisted) {
            ok(t.unlink(&root(), d.ino, name), "unlink");
            removed.insert(name.clone());
        }
        if round < 20 {
            for _ in 0..10 {
                t.file(&root(), d.ino, &format!("new{created:04}"));
                created += 1;
            }
        }
    }
    for (name, n) in &seen {
        assert_eq!(*n, 1, "{name} listed {n} times");
    }
    for name in original.iter().filter(|n| !removed.contains(*n)) {
        assert!(seen.contains_key(name), "{name} was never removed yet is missing from the listing");
    }
    // A fresh listing shows exactly what is left.
    let left: BTreeSet<String> = original
        .iter()
        .filter(|n| !removed.contains(*n))
        .cloned()
        .chain((0..created).map(|i| format!("new{i:04}")))
        .collect();
    assert_eq!(t.names(d.ino), left);
}

// --- Symlinks --------------------------------------------------------------------

/// readlink returns a symlink's target; the size is the target's length.
pub fn check_symlink(meta: &Meta) {
    let t = TestFs::new(meta, "symlink");
    let l = ok(t.symlink(&root(), ROOT, "l", b"some/target"), "symlink");
    assert_eq!((l.kind, l.size), (FileKind::Symlink, 11));
    assert_eq!(t.attr(l.ino).size, 11);
    assert_eq!(meta.readlink(t.id, l.ino), Ok(b"some/target".to_vec()));
    assert_eq!(t.lookup(&root(), ROOT, "l").map(|a| a.kind), Ok(FileKind::Symlink));
    let binary: Vec<u8> = (1..=255u8).collect();
    let b = ok(t.symlink(&root(), ROOT, "binary", &binary), "symlink with any bytes");
    assert_eq!(meta.readlink(t.id, b.ino), Ok(binary));
    let longest = vec![b'x'; SYMLINK_MAX];
    let m = ok(t.symlink(&root(), ROOT, "max", &longest), "symlink of SYMLINK_MAX bytes");
    assert_eq!((meta.readlink(t.id, m.ino), m.size), (Ok(longest), SYMLINK_MAX as u64));
    assert_eq!(t.symlink(&root(), ROOT, "over", &vec![b'x'; SYMLINK_MAX + 1]), Err(MetaError::NameTooLong));

    let f = t.file(&root(), ROOT, "f");
    assert_err!(meta.readlink(t.id, f.ino), MetaError::Invalid(_), "readlink of a file");
    assert_err!(meta.readlink(t.id, ROOT), MetaError::Invalid(_), "readlink of a directory");
    assert_eq!(meta.readlink(t.id, InodeId(1 << 40)), Err(MetaError::NotFound));
    // Hard links share the target.
    ok(t.link(&root(), l.ino, ROOT, "l2"), "link");
    ok(t.unlink(&root(), ROOT, "l"), "unlink");
    assert_eq!(meta.readlink(t.id, t.ino(ROOT, "l2")), Ok(b"some/target".to_vec()));
}

// --- setattr ---------------------------------------------------------------------

/// chmod: the owner or root only; a non-member of the group loses S_ISGID.
pub fn check_chmod(meta: &Meta) {
    let t = TestFs::new(meta, "chmod");
    let (a, b) = (alice(), bob());
    let open = t.open_dir("open");
    let f = t.file(&a, open.ino, "f");
    tick();
    let r = ok(t.setattr(&a, f.ino, set_mode(0o600)), "chmod by owner");
    assert_eq!(r.perm, 0o600);
    assert!(r.ctime > f.ctime, "chmod updates ctime");
    assert_eq!(r.mtime, f.mtime, "chmod leaves mtime");
    assert_eq!(t.attr(f.ino), r, "setattr returns what is stored");
    assert_eq!(t.setattr(&b, f.ino, set_mode(0o777)), Err(MetaError::Perm), "chmod by another user");
    assert_eq!(ok(t.setattr(&root(), f.ino, set_mode(0o640)), "chmod by root").perm, 0o640);
    assert_eq!(ok(t.setattr(&a, f.ino, set_mode(0o100755)), "chmod with type bits").perm, 0o755);
    assert_eq!(t.attr(f.ino).kind, FileKind::File, "chmod does not change the kind");
    assert_eq!(ok(t.setattr(&a, f.ino, set_mode(0o4755)), "chmod u+s").perm, 0o4755);
    assert_eq!(ok(t.setattr(&a, f.ino, set_mode(0o1755)), "chmod +t").perm, 0o1755);

    // S_ISGID is kept only when the caller is in the file's group (or root).
    ok(t.setattr(&root(), f.ino, set_owner(None, Some(50))), "chgrp");
    assert_eq!(ok(t.setattr(&a, f.ino, set_mode(0o2755)), "chmod g+s by a non-member").perm, 0o755);
    let member = Caller { uid: 1000, gid: 1000, groups: vec![50] };
    assert_eq!(ok(t.setattr(&member, f.ino, set_mode(0o2755)), "chmod g+s by a member").perm, 0o2755);
    let primary = Caller { uid: 1000, gid: 50, groups: vec![] };
    assert_eq!(ok(t.setattr(&primary, f.ino, set_mode(0o2750)), "chmod g+s, primary group").perm, 0o2750);
    assert_eq!(ok(t.setattr(&root(), f.ino, set_mode(0o2711)), "chmod g+s by root").perm, 0o2711);

    let d = t.dir(&a, open.ino, "d");
    assert_eq!(ok(t.setattr(&a, d.ino, set_mode(0o1700)), "chmod a directory").perm, 0o1700);
    assert_eq!(t.setattr(&b, d.ino, set_mode(0o777)), Err(MetaError::Perm));
    assert_eq!(t.setattr(&a, InodeId(1 << 40), set_mode(0o777)), Err(MetaError::NotFound));
}

/// chown: root may change anything; an owner may change the group to one of its own;
/// changing owner clears S_ISUID (and an executable S_ISGID) on non-directories.
pub fn check_chown(meta: &Meta) {
    let t = TestFs::new(meta, "chown");
    let (a, b) = (alice(), bob());
    let open = t.open_dir("open");
    let f = t.file(&a, open.ino, "f");
    tick();
    let r = ok(t.setattr(&root(), f.ino, set_owner(Some(1001), Some(1001))), "chown by root");
    assert_eq!((r.uid, r.gid), (1001, 1001));
    assert!(r.ctime > f.ctime, "chown updates ctime");
    assert_eq!(t.attr(f.ino), r);
    ok(t.setattr(&root(), f.ino, set_owner(Some(1000), Some(1000))), "chown back");

    assert_eq!(t.setattr(&a, f.ino, set_owner(Some(1001), None)), Err(MetaError::Perm), "give away a file");
    assert_eq!(t.setattr(&b, f.ino, set_owner(Some(1001), None)), Err(MetaError::Perm), "take a file");
    assert_eq!(t.setattr(&b, f.ino, set_owner(None, Some(1001))), Err(MetaError::Perm), "chgrp another's file");
    assert_eq!(t.setattr(&a, f.ino, set_owner(None, Some(60))), Err(MetaError::Perm), "chgrp to a foreign group");
    assert_eq!((t.attr(f.ino).uid, t.attr(f.ino).gid), (1000, 1000), "failed chowns change nothing");
    let member = Caller { uid: 1000, gid: 1000, groups: vec![50, 60] };
    assert_eq!(ok(t.setattr(&member, f.ino, set_owner(None, Some(60))), "chgrp to own group").gid, 60);
    assert_eq!(ok(t.setattr(&a, f.ino, set_owner(None, Some(1000))), "chgrp to primary group").gid, 1000);
    assert_eq!(ok(t.setattr(&a, f.ino, set_owner(Some(1000), None)), "chown to oneself").uid, 1000);

    // Set-id bits.
    ok(t.setattr(&root(), f.ino, set_mode(0o6755)), "chmod ug+s");
    assert_eq!(ok(t.setattr(&root(), f.ino, set_owner(Some(1001), None)), "chown").perm, 0o755, "chown clears s bits");
    ok(t.setattr(&root(), f.ino, set_mode(0o4755)), "chmod u+s");
    let owner = Caller { uid: 1001, gid: 1001, groups: vec![50] };
    assert_eq!(ok(t.setattr(&owner, f.ino, set_owner(None, Some(50))), "chgrp").perm, 0o755, "chgrp clears S_ISUID");
    ok(t.setattr(&root(), f.ino, set_mode(0o2644)), "chmod g+s without g+x");
    assert_eq!(
        ok(t.setattr(&root(), f.ino, set_owner(Some(1000), None)), "chown").perm,
        0o2644,
        "S_ISGID without group execute is not set-group-ID on exec and stays"
    );
    let d = ok(t.mknod(&root(), open.ino, "d", FileKind::Directory, 0o6755), "mkdir");
    assert_eq!(
        ok(t.setattr(&root(), d.ino, set_owner(Some(1000), Some(1000))), "chown a directory").perm,
        0o6755,
        "directories keep their set-id bits"
    );
}

/// Truncating down then up again reads zeros past the cut, across chunks too.
pub fn check_truncate_holes(meta: &Meta) {
    let t = TestFs::new(meta, "truncate");
    let a = alice();
    let open = t.open_dir("open");
    let f = t.file(&a, open.ino, "f");
    let s1 = t.write_inline(f.ino, 0, 0, &[b'a'; 100]);
    assert_eq!(t.attr(f.ino).size, 100);
    tick();
    let r = ok(t.setattr(&a, f.ino, set_size(40)), "truncate down");
    assert_eq!(r.size, 40);
    assert!(r.mtime > f.mtime && r.ctime > f.ctime, "truncate updates mtime and ctime");
    assert_eq!(t.attr(f.ino).size, 40);
    assert_eq!(t.segments(f.ino, 0, 0, 40), vec![(0, 40, Some((s1, 0)))], "bytes before the cut are kept");
    assert_eq!(ok(t.setattr(&a, f.ino, set_size(100)), "truncate up").size, 100);
    assert_eq!(
        t.segments(f.ino, 0, 0, 100),
        vec![(0, 40, Some((s1, 0))), (40, 60, None)],
        "bytes past the cut read as zeros after growing again"
    );
    assert_eq!(ok(t.setattr(&a, f.ino, set_size(250)), "truncate further up").size, 250);
    assert_eq!(t.segments(f.ino, 0, 0, 250), vec![(0, 40, Some((s1, 0))), (40, 210, None)]);

    // Across chunks.
    let g = t.file(&a, open.ino, "g");
    let s0 = t.write_inline(g.ino, 0, 1000, &[b'x'; 10]);
    let s2 = t.write_inline(g.ino, 2, 0, &[b'y'; 10]);
    assert_eq!(t.attr(g.ino).size, 2 * CHUNK_SIZE + 10);
    ok(t.setattr(&a, g.ino, set_size(1005)), "truncate into chunk 0");
    assert!(ok(meta.read_chunk(t.id, g.ino, 2), "read_chunk").is_empty(), "chunks past the end are dropped");
    ok(t.setattr(&a, g.ino, set_size(2 * CHUNK_SIZE + 10)), "truncate up");
    let chunk_end = CHUNK_SIZE as u32;
    assert_eq!(
        t.segments(g.ino, 0, 0, chunk_end),
        vec![(0, 1000, None), (1000, 5, Some((s0, 0))), (1005, chunk_end - 1005, None)]
    );
    assert_eq!(t.segments(g.ino, 2, 0, 10), vec![(0, 10, None)]);
    assert!(!t.all_slices().contains(&s2), "the inline slice of the dropped chunk is deleted");

    // At a chunk boundary.
    ok(t.setattr(&a, g.ino, set_size(CHUNK_SIZE)), "truncate to a chunk boundary");
    assert_eq!(t.segments(g.ino, 0, 1000, 1005), vec![(1000, 5, Some((s0, 0)))]);
    ok(t.setattr(&a, g.ino, set_size(0)), "truncate to 0");
    assert!(ok(meta.read_chunk(t.id, g.ino, 0), "read_chunk").is_empty(), "truncate to 0 empties the chunk map");
    assert_eq!(t.attr(g.ino).size, 0);
}

/// Truncate needs a regular file, write permission (unless through a handle) and a
/// size within MAX_FILE_SIZE.
pub fn check_truncate_errors(meta: &Meta) {
    let t = TestFs::new(meta, "truncate-err");
    let (a, b) = (alice(), bob());
    let open = t.open_dir("open");
    let d = t.dir(&a, open.ino, "d");
    let f = t.file(&a, open.ino, "f");
    let l = ok(t.symlink(&a, open.ino, "l", b"f"), "symlink");
    assert_eq!(t.setattr(&a, d.ino, set_size(0)), Err(MetaError::IsDir), "truncate a directory");
    assert_eq!(t.setattr(&root(), ROOT, set_size(10)), Err(MetaError::IsDir));
    assert_err!(t.setattr(&a, l.ino, set_size(0)), MetaError::Invalid(_), "truncate a symlink");
    assert_eq!(t.setattr(&b, f.ino, set_size(10)), Err(MetaError::Access), "truncate without write permission");
    let via_handle = SetAttr { size: Some(10), via_handle: true, ..SetAttr::default() };
    assert_eq!(ok(t.setattr(&b, f.ino, via_handle), "ftruncate through a handle").size, 10);
    assert_eq!(t.setattr(&a, f.ino, set_size(MAX_FILE_SIZE + 1)), Err(MetaError::FileTooLarge));
    assert_eq!(t.attr(f.ino).size, 10);
    assert_eq!(ok(t.setattr(&a, f.ino, set_size(MAX_FILE_SIZE)), "truncate to MAX_FILE_SIZE").size, MAX_FILE_SIZE);
    ok(t.setattr(&a, f.ino, set_size(0)), "truncate to 0");
    ok(t.setattr(&a, f.ino, set_mode(0o666)), "chmod");
    assert_eq!(ok(t.setattr(&b, f.ino, set_size(5)), "truncate with o+w").size, 5);
}

/// utimes: explicit times need ownership (Perm); "now" needs ownership or write
/// permission (Access); ctime always moves.
pub fn check_utimes(meta: &Meta) {
    let t = TestFs::new(meta, "utimes");
    let (a, b) = (alice(), bob());
    let open = t.open_dir("open");
    let f = t.file(&a, open.ino, "f");
    let at = |s: i64| Some(TimeUpdate::At(TimeSpec(s)));
    let explicit = SetAttr { atime: at(1_000_000_000), mtime: at(2_000_000_000), ..SetAttr::default() };
    let now = SetAttr { atime: Some(TimeUpdate::Now), mtime: Some(TimeUpdate::Now), ..SetAttr::default() };

    tick();
    let r = ok(t.setattr(&a, f.ino, explicit.clone()), "utimes by owner");
    assert_eq!((r.atime, r.mtime), (TimeSpec(1_000_000_000), TimeSpec(2_000_000_000)));
    assert!(r.ctime > f.ctime, "utimes updates ctime");
    assert_eq!(t.attr(f.ino), r);
    let only_mtime = SetAttr { mtime: at(-5), ..SetAttr::default() };
    let r = ok(t.setattr(&a, f.ino, only_mtime), "utimes mtime only, before the epoch");
    assert_eq!((r.atime, r.mtime), (TimeSpec(1_000_000_000), TimeSpec(-5)), "atime untouched");

    assert_eq!(t.setattr(&b, f.ino, explicit.clone()), Err(MetaError::Perm), "explicit times by another user");
    assert_eq!(t.setattr(&b, f.ino, now.clone()), Err(MetaError::Access), "now by another user without write");
    ok(t.setattr(&a, f.ino, set_mode(0o666)), "chmod o+w");
    assert_eq!(t.setattr(&b, f.ino, explicit.clone()), Err(MetaError::Perm), "explicit times need ownership");
    let before = t.attr(f.ino);
    tick();
    let r = ok(t.setattr(&b, f.ino, now.clone()), "now by another user with write permission");
    assert!(r.atime > before.atime && r.mtime > before.mtime && r.ctime > before.ctime, "times set to now");
    assert!(r.mtime > TimeSpec(2_000_000_000));

    let r = ok(t.setattr(&root(), f.ino, explicit), "explicit times by root");
    assert_eq!((r.atime, r.mtime), (TimeSpec(1_000_000_000), TimeSpec(2_000_000_000)));
    ok(t.setattr(&a, f.ino, set_mode(0o444)), "chmod 0444");
    ok(t.setattr(&a, f.ino, now), "now by the owner, even without write permission");
}

// --- Data ------------------------------------------------------------------------

/// commit_write makes object and inline slices visible in order, grows the file to
/// `end` and never shrinks it.
pub fn check_commit_write(meta: &Meta) {
    let t = TestFs::new(meta, "write");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    tick();
    let obj = ok(meta.reserve_slice(t.id, s), "reserve_slice");
    let obj_ref = SliceRef { id: obj, size: 4096, off: 0, len: 4096, pos: 0, inline: None };
    let r = ok(
        meta.commit_write(
            t.id,
            f.ino,
            &[NewSlice { id: obj, size: 4096, inline: None }],
            &[Placement { chunk: 0, r: obj_ref.clone() }],
            4096,
        ),
        "commit_write",
    );
    assert_eq!(r.size, 4096);
    assert!(r.mtime > f.mtime && r.ctime > f.ctime, "a write updates mtime and ctime");
    assert_eq!(t.attr(f.ino), r);

    let inl = ok(meta.next_slice_ids(t.id, 1), "next_slice_ids");
    assert_ne!(inl, obj);
    let inl_ref = SliceRef { id: inl, size: 11, off: 0, len: 11, pos: 100, inline: None };
    let r = ok(
        meta.commit_write(
            t.id,
            f.ino,
            &[NewSlice { id: inl, size: 11, inline: Some(b"hello world") }],
            &[Placement { chunk: 0, r: inl_ref.clone() }],
            111,
        ),
        "commit_write",
    );
    assert_eq!(r.size, 4096, "a write inside the file does not shrink it");
    let refs = ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk");
    assert_eq!(refs.len(), 2, "{refs:?}");
    assert_eq!(refs[0], obj_ref, "object slices have no inline bytes");
    assert_eq!(SliceRef { inline: None, ..refs[1].clone() }, inl_ref);
    assert_eq!(refs[1].inline.as_deref(), Some(&b"hello world"[..]), "inline bytes come back");
    assert_eq!(
        t.segments(f.ino, 0, 0, 4096),
        vec![(0, 100, Some((obj, 0))), (100, 11, Some((inl, 0))), (111, 3985, Some((obj, 111)))]
    );

    // Several slices and placements at once, a slice referenced in part and twice.
    let first = ok(meta.next_slice_ids(t.id, 3), "next_slice_ids");
    let (x, y) = (first, SliceId(first.0 + 1));
    assert!(x > inl, "slice ids grow");
    let placements = [
        Placement { chunk: 0, r: SliceRef { id: x, size: 8, off: 2, len: 4, pos: 5000, inline: None } },
        Placement { chunk: 1, r: SliceRef { id: y, size: 3, off: 0, len: 3, pos: 7, inline: None } },
        Placement { chunk: 0, r: SliceRef { id: x, size: 8, off: 0, len: 8, pos: 4090, inline: None } },
    ];
    let slices =
        [NewSlice { id: x, size: 8, inline: Some(b"01234567") }, NewSlice { id: y, size: 3, inline: Some(b"abc") }];
    let r = ok(meta.commit_write(t.id, f.ino, &slices, &placements, CHUNK_SIZE + 10), "commit_write");
    assert_eq!(r.size, CHUNK_SIZE + 10);
    let refs = ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk");
    let summary: Vec<_> = refs.iter().map(|r| (r.id, r.off, r.len, r.pos)).collect();
    assert_eq!(summary, vec![(obj, 0, 4096, 0), (inl, 0, 11, 100), (x, 2, 4, 5000), (x, 0, 8, 4090)]);
    assert_eq!(refs[2].inline.as_deref(), Some(&b"01234567"[..]), "the whole slice comes back inline");
    let refs1 = ok(meta.read_chunk(t.id, f.ino, 1), "read_chunk");
    assert_eq!(refs1.len(), 1);
    assert_eq!((refs1[0].id, refs1[0].pos, refs1[0].inline.as_deref()), (y, 7, Some(&b"abc"[..])));
    assert!(ok(meta.read_chunk(t.id, f.ino, 2), "read_chunk").is_empty());

    // A small end never shrinks the file.
    let z = t.write_inline(f.ino, 0, 0, b"z");
    assert_eq!(t.attr(f.ino).size, CHUNK_SIZE + 10, "commit never shrinks");
    assert_eq!(ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk").last().map(|r| r.id), Some(z), "appended last");
    assert_eq!(t.statfs().used_bytes, CHUNK_SIZE + 10, "used_bytes is the sum of sizes");

    let d = t.dir(&root(), ROOT, "d");
    let w = ok(meta.next_slice_ids(t.id, 1), "next_slice_ids");
    let res = meta.commit_write(t.id, d.ino, &[NewSlice { id: w, size: 1, inline: Some(b"x") }], &[], 1);
    assert_err!(res, MetaError::Invalid(_), "commit_write to a directory");
    let res = meta.commit_write(t.id, f.ino, &[], &[], MAX_FILE_SIZE + 1);
    assert_eq!(res, Err(MetaError::FileTooLarge));
    assert_eq!(meta.commit_write(t.id, InodeId(1 << 40), &[], &[], 1), Err(MetaError::NotFound));
    ok(meta.close_session(t.id, s), "close_session");
    assert!(!t.garbage().contains(&obj), "a committed slice outlives its session");
}

/// commit_truncate_write cuts the file first, then commits the write, in one step.
pub fn check_commit_truncate_write(meta: &Meta) {
    let t = TestFs::new(meta, "truncate-write");
    let f = t.file(&root(), ROOT, "f");
    let old = t.write_inline(f.ino, 0, 0, &[b'o'; 100]);
    let far = t.write_inline(f.ino, 1, 0, b"far");
    let before = t.attr(f.ino);
    tick();
    let id = ok(meta.next_slice_ids(t.id, 1), "next_slice_ids");
    let r = SliceRef { id, size: 10, off: 0, len: 10, pos: 0, inline: None };
    let a = ok(
        meta.commit_truncate_write(
            t.id,
            f.ino,
            Some(0),
            &[NewSlice { id, size: 10, inline: Some(b"0123456789") }],
            &[Placement { chunk: 0, r }],
            10,
        ),
        "commit_truncate_write",
    );
    assert_eq!(a.before, before, "the attributes before the commit, as the transaction found them");
    let a = a.after;
    assert!(a.mtime > before.mtime && a.ctime > before.ctime);
    assert_eq!(a.size, 10, "the file is cut, then grown to the write's end");
    assert_eq!(t.attr(f.ino).size, 10);
    assert_eq!(t.segments(f.ino, 0, 0, 100), vec![(0, 10, Some((id, 0))), (10, 90, None)]);
    assert!(ok(meta.read_chunk(t.id, f.ino, 1), "read_chunk").is_empty());
    assert!(t.garbage().is_empty(), "cut inline slices are not left as garbage");
    let all = t.all_slices();
    assert!(!all.contains(&old) && !all.contains(&far), "cut inline slices are deleted at once");
    assert_eq!(t.statfs().used_bytes, 10);

    // Cutting to a size inside the file keeps the bytes before it.
    let id2 = ok(meta.next_slice_ids(t.id, 1), "next_slice_ids");
    let r = SliceRef { id: id2, size: 2, off: 0, len: 2, pos: 20, inline: None };
    let slice = NewSlice { id: id2, size: 2, inline: Some(b"xy") };
    let a = ok(meta.commit_truncate_write(t.id, f.ino, Some(4), &[slice], &[Placement { chunk: 0, r }], 22), "commit")
        .after;
    assert_eq!(a.size, 22);
    assert_eq!(t.segments(f.ino, 0, 0, 22), vec![(0, 4, Some((id, 0))), (4, 16, None), (20, 2, Some((id2, 0)))]);
    // Without a truncate it is commit_write.
    let a = ok(meta.commit_truncate_write(t.id, f.ino, None, &[], &[], 5), "commit without truncate").after;
    assert_eq!(a.size, 22, "no truncate: the size never shrinks");
}

/// statfs's used_bytes follows file sizes through writes, truncates, fallocate and
/// purges; used_inodes follows inodes.
pub fn check_statfs_usage(meta: &Meta) {
    let t = TestFs::new(meta, "statfs");
    let st = |bytes, inodes, what: &str| {
        let s = t.statfs();
        assert_eq!((s.used_bytes, s.used_inodes), (bytes, inodes), "{what}");
    };
    st(0, 1, "empty");
    let a = t.file(&root(), ROOT, "a");
    let b = t.file(&root(), ROOT, "b");
    st(0, 3, "two empty files");
    t.write_inline(a.ino, 0, 900, &[1; 100]);
    t.write_inline(b.ino, 0, 0, &[2; 5000]);
    st(6000, 3, "after writes");
    t.write_inline(b.ino, 0, 0, &[3; 10]);
    st(6000, 3, "an overwrite does not count");
    ok(t.setattr(&root(), a.ino, set_size(200)), "truncate down");
    st(5200, 3, "after truncate down");
    ok(t.setattr(&root(), b.ino, set_size(10_000)), "truncate up");
    st(10_200, 3, "after truncate up");
    ok(meta.fallocate(t.id, a.ino, 0, 1000, false, false), "fallocate");
    st(11_000, 3, "after fallocate");
    ok(meta.fallocate(t.id, a.ino, 0, 5000, false, true), "fallocate keep_size");
    st(11_000, 3, "after fallocate keep_size");
    ok(t.unlink(&root(), ROOT, "b"), "unlink");
    st(11_000, 3, "an unlinked inode still counts");
    ok(meta.purge_if_unlinked(t.id, b.ino), "purge");
    st(1000, 2, "after purge");
    t.dir(&root(), ROOT, "d");
    ok(t.symlink(&root(), ROOT, "l", b"0123456789"), "symlink");
    let s = t.statfs();
    assert_eq!(s.used_inodes, 4);
    assert!(s.used_bytes >= 1000, "symlinks and directories may count bytes, files must");
    ok(t.rmdir(&root(), ROOT, "d"), "rmdir");
    assert_eq!(t.statfs().used_inodes, 3);
}

/// Whatever a symlink counts in used_bytes when created, it gives back when purged.
pub fn check_symlink_usage(meta: &Meta) {
    let t = TestFs::new(meta, "symlink-usage");
    let f = t.file(&root(), ROOT, "f");
    t.write_inline(f.ino, 0, 0, &[1; 1000]);
    let before = t.statfs();
    assert_eq!(before.used_bytes, 1000);
    let l = ok(t.symlink(&root(), ROOT, "l", b"0123456789"), "symlink");
    ok(t.unlink(&root(), ROOT, "l"), "unlink");
    assert!(ok(meta.purge_if_unlinked(t.id, l.ino), "purge"));
    assert_eq!(t.statfs(), before, "creating and purging a symlink leaves the usage as it was");

    // The same when a rename replaces the symlink.
    ok(t.symlink(&root(), ROOT, "l2", b"0123456789"), "symlink");
    t.file(&root(), ROOT, "g");
    let orphan = ok(t.rename(&root(), ROOT, "g", ROOT, "l2", NO_FLAGS), "rename over a symlink");
    let orphan = orphan.expect("the replaced symlink is returned");
    assert!(ok(meta.purge_if_unlinked(t.id, orphan.ino), "purge"));
    assert_eq!(t.statfs().used_bytes, before.used_bytes, "used_bytes after purging a replaced symlink");
}

/// A slice becomes garbage when no chunk refers to it any more (truncate to 0), and
/// forget_slice removes it.
pub fn check_garbage_after_truncate(meta: &Meta) {
    let t = TestFs::new(meta, "garbage-truncate");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let inl = t.write_inline(f.ino, 0, 0, &[7; 300]);
    let obj = t.write_object(s, f.ino, 0, 300, 1 << 20);
    let far = t.write_object(s, f.ino, 3, 0, 4096);
    let all = t.all_slices();
    assert!(all.contains(&inl) && all.contains(&obj) && all.contains(&far), "all_slices lists committed slices");
    assert!(t.garbage().is_empty(), "referenced slices are not garbage");

    ok(t.setattr(&root(), f.ino, set_size(10)), "truncate to 10");
    assert_eq!(t.garbage(), BTreeSet::from([far]), "only the slice of a dropped chunk is garbage");
    ok(t.setattr(&root(), f.ino, set_size(0)), "truncate to 0");
    assert_eq!(t.garbage(), BTreeSet::from([obj, far]), "unreferenced object slices are garbage");
    assert!(!t.all_slices().contains(&inl), "an unreferenced inline slice is deleted at once");
    let infos = ok(meta.garbage_slices(t.id, 100), "garbage_slices");
    for i in &infos {
        let size = if i.id == obj { 1 << 20 } else { 4096 };
        assert_eq!((i.size, i.inline), (size, false), "garbage slice {}", i.id);
    }
    assert_eq!(ok(meta.garbage_slices(t.id, 1), "garbage_slices").len(), 1, "limit is honoured");

    for id in [obj, far] {
        ok(meta.forget_slice(t.id, id), "forget_slice");
    }
    assert!(t.garbage().is_empty(), "forgotten slices are not garbage any more");
    let all = t.all_slices();
    assert!(!all.contains(&inl) && !all.contains(&obj) && !all.contains(&far), "forgotten slices are gone");

    // Overwritten slices stay referenced (compaction reclaims them, not the collector).
    let a = t.write_inline(f.ino, 0, 0, b"aaaa");
    t.write_inline(f.ino, 0, 0, b"bbbb");
    assert!(!t.garbage().contains(&a));
    ok(meta.close_session(t.id, s), "close_session");
}

/// The slices of an unlinked file become garbage when it is purged, not before.
pub fn check_garbage_after_purge(meta: &Meta) {
    let t = TestFs::new(meta, "garbage-purge");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let inl = t.write_inline(f.ino, 0, 0, b"inline bytes");
    let obj = t.write_object(s, f.ino, 1, 0, 8192);
    ok(t.link(&root(), f.ino, ROOT, "g"), "link");
    ok(t.unlink(&root(), ROOT, "f"), "unlink");
    assert!(t.garbage().is_empty(), "a linked file's slices are not garbage");
    ok(t.unlink(&root(), ROOT, "g"), "unlink");
    assert!(t.garbage().is_empty(), "an unlinked but unpurged file's slices are not garbage");
    assert!(ok(meta.purge_if_unlinked(t.id, f.ino), "purge"));
    assert_eq!(t.garbage(), BTreeSet::from([obj]), "object slices become garbage");
    assert!(!t.all_slices().contains(&inl), "inline slices are deleted at once");
    assert_eq!(t.statfs().used_bytes, 0);

    // A slice shared by two files (after compaction, say) lives while either refers to it.
    let g = t.file(&root(), ROOT, "g");
    let h = t.file(&root(), ROOT, "h");
    let shared = t.write_inline(g.ino, 0, 0, b"shared");
    let r = SliceRef { id: shared, size: 6, off: 0, len: 6, pos: 0, inline: None };
    ok(meta.commit_write(t.id, h.ino, &[], &[Placement { chunk: 0, r }], 6), "commit_write of an existing slice");
    ok(t.unlink(&root(), ROOT, "g"), "unlink");
    ok(meta.purge_if_unlinked(t.id, g.ino), "purge");
    assert!(!t.garbage().contains(&shared), "still referenced by the other file");
    assert!(t.all_slices().contains(&shared), "a shared inline slice lives while one file refers to it");
    ok(t.setattr(&root(), h.ino, set_size(0)), "truncate");
    assert!(!t.all_slices().contains(&shared), "and goes with the last reference");
    ok(meta.close_session(t.id, s), "close_session");
}

/// A reserved slice belongs to its session: not garbage while the session lives,
/// garbage once it is closed without committing.
pub fn check_reserved_slice_lifecycle(meta: &Meta) {
    let t = TestFs::new(meta, "reserved");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let id = ok(meta.reserve_slice(t.id, s), "reserve_slice");
    let id2 = ok(meta.reserve_slice(t.id, s), "reserve_slice");
    assert_ne!(id, id2);
    assert!(id != SliceId::HOLE && id2 != SliceId::HOLE, "slice id 0 is the hole");
    assert!(t.all_slices().contains(&id), "a reserved slice is recorded");
    assert!(t.garbage().is_empty(), "a reserved slice of a live session is not garbage");

    // id2 gets committed; id is abandoned.
    let f = t.file(&root(), ROOT, "f");
    let r = SliceRef { id: id2, size: 100, off: 0, len: 100, pos: 0, inline: None };
    ok(
        meta.commit_write(
            t.id,
            f.ino,
            &[NewSlice { id: id2, size: 100, inline: None }],
            &[Placement { chunk: 0, r }],
            100,
        ),
        "commit_write",
    );
    assert!(t.garbage().is_empty());
    ok(meta.close_session(t.id, s), "close_session");
    assert_eq!(t.garbage(), BTreeSet::from([id]), "the abandoned slice is garbage after its session closed");
    let info = ok(meta.garbage_slices(t.id, 10), "garbage_slices");
    assert!(!info[0].inline, "a reserved slice has objects");
    ok(meta.forget_slice(t.id, id), "forget_slice");
    assert!(t.garbage().is_empty());
    assert_eq!(t.all_slices(), BTreeSet::from([id2]));
}

/// fallocate: punching makes zeros; allocating grows the size unless keep_size.
pub fn check_fallocate(meta: &Meta) {
    let t = TestFs::new(meta, "fallocate");
    let f = t.file(&root(), ROOT, "f");
    let s = t.write_inline(f.ino, 0, 0, &[9; 100]);
    tick();
    let r = ok(meta.fallocate(t.id, f.ino, 10, 20, true, true), "punch");
    assert_eq!(r.size, 100, "punching keeps the size");
    assert!(r.mtime > f.mtime, "punching updates mtime");
    assert_eq!(t.segments(f.ino, 0, 0, 100), vec![(0, 10, Some((s, 0))), (10, 20, None), (30, 70, Some((s, 30)))]);
    ok(meta.fallocate(t.id, f.ino, 90, 1000, true, true), "punch past the end");
    assert_eq!(t.attr(f.ino).size, 100, "punching past the end does not grow the file");
    assert_eq!(t.segments(f.ino, 0, 80, 100), vec![(80, 10, Some((s, 80))), (90, 10, None)]);

    assert_eq!(ok(meta.fallocate(t.id, f.ino, 0, 500, false, false), "extend").size, 500, "allocating grows");
    assert_eq!(t.attr(f.ino).size, 500);
    assert_eq!(t.segments(f.ino, 0, 100, 500), vec![(100, 400, None)], "allocated bytes read as zeros");
    assert_eq!(ok(meta.fallocate(t.id, f.ino, 0, 1000, false, true), "keep_size").size, 500, "keep_size");
    assert_eq!(ok(meta.fallocate(t.id, f.ino, 0, 200, false, false), "inside").size, 500, "never shrinks");
    assert_eq!(t.segments(f.ino, 0, 0, 10), vec![(0, 10, Some((s, 0)))], "allocating keeps data");
    let big = ok(meta.fallocate(t.id, f.ino, CHUNK_SIZE - 10, 20, false, false), "across a chunk boundary");
    assert_eq!(big.size, CHUNK_SIZE + 10);
    ok(meta.fallocate(t.id, f.ino, 50, CHUNK_SIZE, true, true), "punch across a chunk boundary");
    assert_eq!(t.segments(f.ino, 0, 40, 60), vec![(40, 10, Some((s, 40))), (50, 10, None)]);
    assert_eq!(t.attr(f.ino).size, CHUNK_SIZE + 10);

    let d = t.dir(&root(), ROOT, "d");
    assert_eq!(meta.fallocate(t.id, d.ino, 0, 10, false, false), Err(MetaError::IsDir));
    let l = ok(t.symlink(&root(), ROOT, "l", b"f"), "symlink");
    assert_err!(meta.fallocate(t.id, l.ino, 0, 10, false, false), MetaError::Invalid(_), "fallocate a symlink");
    assert_eq!(meta.fallocate(t.id, f.ino, MAX_FILE_SIZE, 1, false, false), Err(MetaError::FileTooLarge));
    assert_eq!(meta.fallocate(t.id, f.ino, u64::MAX, 2, false, false), Err(MetaError::FileTooLarge));
}

/// replace_chunk_prefix swaps a chunk's first references for a compacted slice when
/// they are unchanged, keeps references appended since, and refuses when the chunk
/// changed.
pub fn check_replace_chunk_prefix(meta: &Meta) {
    let t = TestFs::new(meta, "compact");
    let f = t.file(&root(), ROOT, "f");
    let old_ids: Vec<SliceId> = (0..5u8).map(|i| t.write_inline(f.ino, 0, 10 * i as u32, &[b'a' + i; 10])).collect();
    let old = ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk");
    assert_eq!(old.len(), 5);
    // A write that lands after the compactor read the chunk.
    let late = t.write_inline(f.ino, 0, 45, b"LATE!");

    let merged: Vec<u8> = (0..5u8).flat_map(|i| [b'a' + i; 10]).collect();
    let new_id = ok(meta.next_slice_ids(t.id, 1), "next_slice_ids");
    let new_ref = SliceRef { id: new_id, size: 50, off: 0, len: 50, pos: 0, inline: None };
    let new_slice = NewSlice { id: new_id, size: 50, inline: Some(&merged) };
    let done = meta.replace_chunk_prefix(t.id, f.ino, 0, &old, &new_slice, std::slice::from_ref(&new_ref));
    assert_eq!(done, Ok(true), "replacing an unchanged prefix");
    let refs = ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk");
    assert_eq!(refs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![new_id, late], "the late write stays on top");
    assert_eq!(refs[0].inline.as_deref(), Some(&merged[..]));
    assert_eq!(t.segments(f.ino, 0, 0, 50), vec![(0, 45, Some((new_id, 0))), (45, 5, Some((late, 0)))]);
    assert_eq!(t.garbage(), old_ids.iter().copied().collect::<BTreeSet<_>>(), "replaced slices are garbage");
    assert_eq!(t.attr(f.ino).size, 50, "compaction does not change the size");

    // The same old prefix again: the chunk changed, nothing happens.
    let again_id = ok(meta.next_slice_ids(t.id, 1), "next_slice_ids");
    let again = NewSlice { id: again_id, size: 50, inline: Some(&merged) };
    let again_ref = SliceRef { id: again_id, ..new_ref.clone() };
    let res = meta.replace_chunk_prefix(t.id, f.ino, 0, &old, &again, std::slice::from_ref(&again_ref));
    assert_eq!(res, Ok(false), "a prefix that is no longer there");
    assert!(!t.all_slices().contains(&again_id), "a refused replacement records no slice");

    // After a truncate to 0 the chunk is gone.
    let current = ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk");
    ok(t.setattr(&root(), f.ino, set_size(0)), "truncate");
    let res = meta.replace_chunk_prefix(t.id, f.ino, 0, &current, &again, std::slice::from_ref(&again_ref));
    assert_eq!(res, Ok(false), "replacing the prefix of a truncated chunk");
    assert!(ok(meta.read_chunk(t.id, f.ino, 0), "read_chunk").is_empty(), "a refused replacement changes nothing");
    assert!(!t.all_slices().contains(&again_id));
}

/// fragmented_chunks finds the chunks with many references.
pub fn check_fragmented_chunks(meta: &Meta) {
    let t = TestFs::new(meta, "fragmented");
    let a = t.file(&root(), ROOT, "a");
    let b = t.file(&root(), ROOT, "b");
    for i in 0..12u32 {
        t.write_inline(a.ino, 1, i * 3, b"abc");
    }
    for i in 0..2u32 {
        t.write_inline(b.ino, 0, i, b"x");
        t.write_inline(a.ino, 0, i, b"x");
    }
    let found = ok(meta.fragmented_chunks(t.id, 10, 100), "fragmented_chunks");
    assert_eq!(found, vec![(a.ino, 1)], "only chunk 1 of a has at least 10 references");
    assert!(ok(meta.fragmented_chunks(t.id, 13, 100), "fragmented_chunks").is_empty());
    let mut found: Vec<_> = ok(meta.fragmented_chunks(t.id, 2, 100), "fragmented_chunks");
    found.sort();
    let mut want = vec![(a.ino, 0), (a.ino, 1), (b.ino, 0)];
    want.sort();
    assert_eq!(found, want);
    assert_eq!(ok(meta.fragmented_chunks(t.id, 2, 1), "fragmented_chunks").len(), 1, "limit is honoured");

    // Other file systems' chunks are not listed.
    let other = TestFs::new(meta, "fragmented-other");
    assert!(ok(meta.fragmented_chunks(other.id, 1, 100), "fragmented_chunks").is_empty());
    ok(t.setattr(&root(), a.ino, set_size(0)), "truncate");
    assert_eq!(ok(meta.fragmented_chunks(t.id, 2, 100), "fragmented_chunks"), vec![(b.ino, 0)]);
}

// --- Extended attributes ----------------------------------------------------------

/// Extended attributes can be set, read, listed and removed, per inode.
pub fn check_xattr_basics(meta: &Meta) {
    let t = TestFs::new(meta, "xattr");
    let f = t.file(&root(), ROOT, "f");
    let g = t.file(&root(), ROOT, "g");
    let none = XattrFlags::default();
    tick();
    ok(t.set_xattr(&root(), f.ino, "user.a", b"1", none), "set_xattr");
    assert!(t.attr(f.ino).ctime > f.ctime, "setting an xattr updates ctime");
    ok(t.set_xattr(&root(), f.ino, "user.empty", b"", none), "set_xattr with an empty value");
    let binary: Vec<u8> = (0..=255u8).collect();
    ok(t.set_xattr(&root(), f.ino, "trusted.bin", &binary, none), "set_xattr");
    assert_eq!(t.get_xattr(&root(), f.ino, "user.a"), Ok(b"1".to_vec()));
    assert_eq!(t.get_xattr(&root(), f.ino, "user.empty"), Ok(Vec::new()));
    assert_eq!(t.get_xattr(&root(), f.ino, "trusted.bin"), Ok(binary));
    assert_eq!(t.xattr_names(&root(), f.ino), set(&["trusted.bin", "user.a", "user.empty"]));
    assert!(t.xattr_names(&root(), g.ino).is_empty(), "xattrs belong to one inode");
    assert_eq!(t.get_xattr(&root(), g.ino, "user.a"), Err(MetaError::NoAttr));

    ok(t.set_xattr(&root(), f.ino, "user.a", b"22", none), "overwrite");
    assert_eq!(t.get_xattr(&root(), f.ino, "user.a"), Ok(b"22".to_vec()));
    tick();
    let before = t.attr(f.ino);
    ok(meta.remove_xattr(t.id, &root(), f.ino, b"user.a"), "remove_xattr");
    assert!(t.attr(f.ino).ctime > before.ctime, "removing an xattr updates ctime");
    assert_eq!(t.get_xattr(&root(), f.ino, "user.a"), Err(MetaError::NoAttr));
    assert_eq!(t.xattr_names(&root(), f.ino), set(&["trusted.bin", "user.empty"]));

    // Directories have them too; hard links share them.
    ok(t.set_xattr(&root(), ROOT, "user.dir", b"d", none), "set_xattr on a directory");
    assert_eq!(t.get_xattr(&root(), ROOT, "user.dir"), Ok(b"d".to_vec()));
    ok(t.link(&root(), f.ino, ROOT, "f2"), "link");
    assert_eq!(t.get_xattr(&root(), t.ino(ROOT, "f2"), "user.empty"), Ok(Vec::new()));

    // They go with the inode.
    ok(t.unlink(&root(), ROOT, "f"), "unlink");
    ok(t.unlink(&root(), ROOT, "f2"), "unlink");
    ok(meta.purge_if_unlinked(t.id, f.ino), "purge");
    assert_eq!(t.get_xattr(&root(), f.ino, "user.empty"), Err(MetaError::NotFound));
    assert_eq!(meta.list_xattrs(t.id, &root(), f.ino), Err(MetaError::NotFound));
}

/// XATTR_CREATE / XATTR_REPLACE, missing attributes, size limits and namespaces.
pub fn check_xattr_flags_and_limits(meta: &Meta) {
    let t = TestFs::new(meta, "xattr-flags");
    let f = t.file(&root(), ROOT, "f");
    let create = XattrFlags { create: true, replace: false };
    let replace = XattrFlags { create: false, replace: true };
    let none = XattrFlags::default();
    ok(t.set_xattr(&root(), f.ino, "user.k", b"v1", create), "create a new xattr");
    assert_eq!(t.set_xattr(&root(), f.ino, "user.k", b"v2", create), Err(MetaError::Exists));
    assert_eq!(t.get_xattr(&root(), f.ino, "user.k"), Ok(b"v1".to_vec()));
    ok(t.set_xattr(&root(), f.ino, "user.k", b"v3", replace), "replace an existing xattr");
    assert_eq!(t.get_xattr(&root(), f.ino, "user.k"), Ok(b"v3".to_vec()));
    assert_eq!(t.set_xattr(&root(), f.ino, "user.missing", b"v", replace), Err(MetaError::NoAttr));
    assert_eq!(t.get_xattr(&root(), f.ino, "user.missing"), Err(MetaError::NoAttr));
    assert_eq!(meta.remove_xattr(t.id, &root(), f.ino, b"user.missing"), Err(MetaError::NoAttr));
    assert_eq!(t.xattr_names(&root(), f.ino), set(&["user.k"]));

    let max = vec![0xa5u8; XATTR_VALUE_MAX];
    ok(t.set_xattr(&root(), f.ino, "user.big", &max, none), "a value of XATTR_VALUE_MAX bytes");
    assert_eq!(t.get_xattr(&root(), f.ino, "user.big"), Ok(max));
    let over = vec![0u8; XATTR_VALUE_MAX + 1];
    assert_eq!(t.set_xattr(&root(), f.ino, "user.over", &over, none), Err(MetaError::TooBig));
    assert_eq!(t.get_xattr(&root(), f.ino, "user.over"), Err(MetaError::NoAttr));
    let long_name = format!("user.{}", "n".repeat(NAME_MAX - 5));
    ok(t.set_xattr(&root(), f.ino, &long_name, b"v", none), "a name of NAME_MAX bytes");
    assert_eq!(t.get_xattr(&root(), f.ino, &long_name), Ok(b"v".to_vec()));

    for bad in ["foo.bar", "nonamespace", "User.upper", "user"] {
        assert_eq!(t.set_xattr(&root(), f.ino, bad, b"v", none), Err(MetaError::NotSupported), "set {bad:?}");
        assert_eq!(t.get_xattr(&root(), f.ino, bad), Err(MetaError::NotSupported), "get {bad:?}");
    }
    assert_err!(t.set_xattr(&root(), f.ino, "", b"v", none), MetaError::Invalid(_), "empty name");
    assert_eq!(t.set_xattr(&root(), InodeId(1 << 40), "user.k", b"v", none), Err(MetaError::NotFound));
}

/// `user.` attributes follow the file's read/write permission and exist on files and
/// directories only; `trusted.` attributes are root's and hidden from others.
pub fn check_xattr_permissions(meta: &Meta) {
    let t = TestFs::new(meta, "xattr-perm");
    let (a, b) = (alice(), bob());
    let none = XattrFlags::default();
    let open = t.open_dir("open");
    let f = t.file(&a, open.ino, "f");
    ok(t.set_xattr(&a, f.ino, "user.k", b"v", none), "owner sets user.k");
    assert_eq!(t.get_xattr(&b, f.ino, "user.k"), Ok(b"v".to_vec()), "others may read with o+r");
    assert_eq!(t.set_xattr(&b, f.ino, "user.k", b"w", none), Err(MetaError::Access), "others may not write");
    assert_eq!(t.set_xattr(&b, f.ino, "user.new", b"w", none), Err(MetaError::Access));
    assert_eq!(meta.remove_xattr(t.id, &b, f.ino, b"user.k"), Err(MetaError::Access));
    assert_eq!(t.get_xattr(&a, f.ino, "user.k"), Ok(b"v".to_vec()), "nothing changed");
    ok(t.set_xattr(&root(), f.ino, "user.byroot", b"r", none), "root writes user.*");

    ok(t.setattr(&a, f.ino, set_mode(0o600)), "chmod 0600");
    assert_eq!(t.get_xattr(&b, f.ino, "user.k"), Err(MetaError::Access), "reading needs read permission");
    ok(t.setattr(&a, f.ino, set_mode(0o646)), "chmod 0646");
    ok(t.set_xattr(&b, f.ino, "user.bob", b"b", none), "others may write with o+w");
    ok(t.setattr(&a, f.ino, set_mode(0o444)), "chmod 0444");
    assert_eq!(t.set_xattr(&a, f.ino, "user.k", b"x", none), Err(MetaError::Access), "the owner needs u+w too");

    assert_eq!(t.set_xattr(&a, f.ino, "trusted.t", b"v", none), Err(MetaError::Perm), "trusted.* needs root");
    ok(t.set_xattr(&root(), f.ino, "trusted.t", b"v", none), "root sets trusted.*");
    assert_eq!(t.get_xattr(&a, f.ino, "trusted.t"), Err(MetaError::Perm), "reading trusted.* needs root");
    assert_eq!(meta.remove_xattr(t.id, &a, f.ino, b"trusted.t"), Err(MetaError::Perm));
    assert_eq!(t.get_xattr(&root(), f.ino, "trusted.t"), Ok(b"v".to_vec()));
    assert!(t.xattr_names(&root(), f.ino).contains("trusted.t"), "root lists trusted.*");
    assert_eq!(t.xattr_names(&a, f.ino), set(&["user.bob", "user.byroot", "user.k"]), "others do not see trusted.*");

    let l = ok(t.symlink(&a, open.ino, "l", b"f"), "symlink");
    assert_eq!(t.set_xattr(&a, l.ino, "user.k", b"v", none), Err(MetaError::Perm), "user.* on a symlink");
    let p = ok(t.mknod(&a, open.ino, "p", FileKind::Fifo, 0o666), "mkfifo");
    assert_eq!(t.set_xattr(&a, p.ino, "user.k", b"v", none), Err(MetaError::Perm), "user.* on a fifo");
    ok(t.set_xattr(&root(), l.ino, "trusted.k", b"v", none), "trusted.* on a symlink");
}

// --- Concurrency -------------------------------------------------------------------

/// Several threads creating in one directory through clones of one engine lose no
/// update: every entry exists and the parent's nlink and the usage add up.
pub fn check_concurrent_creates(meta: &Meta) {
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 200;
    const DIR_EVERY: u32 = 20;
    let t = TestFs::new(meta, "concurrent");
    let d = t.open_dir("d");
    let fs = t.id;
    let inodes_before = t.statfs().used_inodes;
    std::thread::scope(|scope| {
        for i in 0..THREADS {
            let meta = meta.clone();
            let dir = d.ino;
            scope.spawn(move || {
                let c = Caller { uid: 1000 + i, gid: 1000, groups: Vec::new() };
                for j in 0..PER_THREAD {
                    let name = format!("t{i}-{j:03}");
                    let kind = if j % DIR_EVERY == 0 { FileKind::Directory } else { FileKind::File };
                    let a = ok(meta.mknod(fs, &c, dir, name.as_bytes(), &node(kind, 0o755)), &format!("mknod {name}"));
                    let found = ok(meta.lookup(fs, &c, dir, name.as_bytes()), &format!("lookup {name}"));
                    assert_eq!(found.ino, a.ino, "{name} found right after creating it");
                }
            });
        }
    });
    let entries = t.entries(d.ino);
    let names: BTreeSet<_> = entries.iter().map(|e| e.name.clone()).collect();
    let inos: HashSet<_> = entries.iter().map(|e| e.ino).collect();
    let total = (THREADS * PER_THREAD) as usize;
    assert_eq!(entries.len(), total, "every created entry is listed once");
    assert_eq!(names.len(), total);
    assert_eq!(inos.len(), total, "every entry has its own inode");
    let dirs = THREADS * PER_THREAD.div_ceil(DIR_EVERY);
    assert_eq!(t.attr(d.ino).nlink, 2 + dirs, "no lost update of the parent's nlink");
    assert_eq!(t.statfs().used_inodes, inodes_before + total as u64, "no lost update of used_inodes");
    for e in entries.iter().step_by(37) {
        let a = t.attr(e.ino);
        assert_eq!(a.kind, e.kind);
        assert_eq!(a.uid, 1000 + String::from_utf8_lossy(&e.name)[1..2].parse::<u32>().expect("thread number"));
    }
}

// --- fsck: namespace invariants ------------------------------------------------------

pub fn check_fsck_namespace(meta: &Meta) {
    let t = TestFs::new(meta, "fsck");
    let d = t.dir(&root(), ROOT, "d");
    let f = t.file(&root(), d.ino, "f");
    ok(meta.link(t.id, &root(), f.ino, ROOT, b"g"), "link");
    let slice = ok(meta.next_slice_ids(t.id, 1), "next_slice_ids");
    let r = SliceRef { id: slice, size: 5, off: 0, len: 5, pos: 0, inline: None };
    let placed = [Placement { chunk: 0, r }];
    ok(meta.commit_write(t.id, f.ino, &[NewSlice { id: slice, size: 5, inline: Some(b"hello") }], &placed, 5), "write");
    let report = ok(meta.check_namespace(t.id, false), "check");
    assert!(report.clean(), "a file system built by operations is consistent: {report:?}");

    // Corruptions no operation produces: a wrong link count, an entry pointing nowhere,
    // a file and a directory subtree with no entry left, a wrong slice reference count.
    let h = t.file(&root(), ROOT, "h");
    let e = t.dir(&root(), ROOT, "e");
    let x = t.file(&root(), e.ino, "x");
    ok(
        meta.write_txn(|txn| {
            let mut a = txn.get_inode(t.id, f.ino)?.ok_or(MetaError::NotFound)?;
            a.nlink = 5;
            txn.put_inode(t.id, &a)?;
            txn.insert_dentry(t.id, ROOT, b"ghost", InodeId(1 << 40), FileKind::File)?;
            txn.delete_dentry(t.id, ROOT, b"h")?;
            txn.delete_dentry(t.id, ROOT, b"e")?;
            txn.set_slice_refs(t.id, slice, 7)
        }),
        "corrupt",
    );
    let found = ok(meta.check_namespace(t.id, false), "check");
    assert_eq!(found.bad_entries, vec![(ROOT, b"ghost".to_vec())], "{found:?}");
    assert!(found.wrong_nlink.contains(&(f.ino, 5, 2)), "{found:?}");
    assert!(found.wrong_nlink.contains(&(ROOT, 4, 3)), "the root lost subdirectory e: {found:?}");
    assert!(found.wrong_nlink.contains(&(h.ino, 1, 0)), "{found:?}");
    let mut unreachable = found.unreachable.clone();
    unreachable.sort();
    let mut want = vec![h.ino, e.ino, x.ino];
    want.sort();
    assert_eq!(unreachable, want, "{found:?}");
    assert_eq!(found.wrong_refcounts, vec![(slice, 7, 1)], "{found:?}");
    assert!(found.dangling_refs.is_empty(), "{found:?}");
    assert!(!found.clean());
    // Checking does not change anything.
    assert_eq!(ok(meta.check_namespace(t.id, false), "check again"), found);

    let repaired = ok(meta.check_namespace(t.id, true), "repair");
    assert_eq!(NamespaceReport { relinked: Vec::new(), ..repaired.clone() }, found, "repair reports what it found");
    let mut relinked = repaired.relinked.clone();
    relinked.sort();
    let mut want = vec![h.ino, e.ino];
    want.sort();
    assert_eq!(relinked, want, "the tops of unreachable trees go to lost+found");
    let after = ok(meta.check_namespace(t.id, false), "check after repair");
    assert!(after.clean(), "{after:?}");
    let lf = t.ino(ROOT, "lost+found");
    assert_eq!(t.ino(lf, &format!("#{}", h.ino.0)), h.ino);
    let e_again = t.ino(lf, &format!("#{}", e.ino.0));
    assert_eq!(t.ino(e_again, "x"), x.ino, "a relinked directory brings its subtree back");
    assert_eq!(t.attr(f.ino).nlink, 2);
    assert_eq!(t.attr(e.ino).parent, lf);
    assert_err!(t.lookup(&root(), ROOT, "ghost"), MetaError::NotFound);
    assert_eq!(ok(meta.read_chunk(t.id, f.ino, 0), "read")[0].inline.as_deref(), Some(&b"hello"[..]));
}

// --- Access points and policy -------------------------------------------------------

/// An access point id no other check uses.
fn unique_ap_id() -> AccessPointId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u128;
    let seed = ((std::process::id() as u128) << 40) ^ (TimeSpec::now().0 as u128) ^ (n << 60);
    AccessPointId::from_entropy(seed)
}

fn new_ap(path: &str, identity: Caller, creation: Option<RootCreation>) -> NewAccessPoint {
    NewAccessPoint { id: unique_ap_id(), path: path.to_string(), identity, creation }
}

/// Access points are created with a normalized path, found by id, listed per file
/// system and deleted; deleting the file system deletes them.
pub fn check_access_points(meta: &Meta) {
    let t = TestFs::new(meta, "ap");
    let other = TestFs::new(meta, "ap-other");
    let who = Caller { uid: 1001, gid: 1002, groups: vec![7, 8] };
    let creation = RootCreation { uid: 1001, gid: 1002, mode: 0o750 };
    let a = ok(meta.create_access_point(&t.name, &new_ap("//message//inbox/", who.clone(), Some(creation))), "create");
    assert_eq!(a.path, "/message/inbox", "the path is normalized");
    assert_eq!((a.fs, &a.identity, a.creation), (t.id, &who, Some(creation)));
    let b = ok(meta.create_access_point(&t.name, &new_ap("/", alice(), None)), "create at the root");
    let c = ok(meta.create_access_point(&other.name, &new_ap("/x", bob(), None)), "create in another fs");
    assert_eq!(ok(meta.access_point(&a.id), "get"), a, "stored as created");
    assert_eq!(ok(meta.access_point(&b.id), "get"), b);
    let mut mine = vec![a.clone(), b.clone()];
    mine.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(ok(meta.list_access_points(Some(&t.name)), "list"), mine, "listed per file system, by id");
    let all = ok(meta.list_access_points(None), "list all");
    for ap in [&a, &b, &c] {
        assert!(all.contains(ap), "{} is in the full listing", ap.id);
    }
    assert_eq!(ok(meta.delete_access_point(&b.id), "delete"), b);
    assert_eq!(meta.access_point(&b.id), Err(MetaError::NoAccessPoint(b.id.to_string())));
    assert_eq!(meta.delete_access_point(&b.id), Err(MetaError::NoAccessPoint(b.id.to_string())));
    ok(meta.delete_fs(&t.name), "delete the file system");
    assert_err!(meta.access_point(&a.id), MetaError::NoAccessPoint(_), "an access point outlived its file system");
    assert_eq!(ok(meta.access_point(&c.id), "get"), c, "other file systems' access points stay");
}

/// Bad access points are refused with the right error, and nothing is stored.
pub fn check_access_point_errors(meta: &Meta) {
    let t = TestFs::new(meta, "ap-errors");
    let long = format!("/{}", "d".repeat(ACCESS_POINT_PATH_MAX));
    let too_long_name = format!("/{}", "n".repeat(NAME_MAX + 1));
    for bad in ["relative", "", "/a/../b", "/..", "/a/.", long.as_str()] {
        assert_err!(meta.create_access_point(&t.name, &new_ap(bad, alice(), None)), MetaError::Invalid(_), "{bad:?}");
    }
    assert_err!(
        meta.create_access_point(&t.name, &new_ap(&too_long_name, alice(), None)),
        MetaError::Invalid(_) | MetaError::NameTooLong
    );
    let bad_mode = RootCreation { uid: 1, gid: 1, mode: 0o10000 };
    assert_err!(meta.create_access_point(&t.name, &new_ap("/m", alice(), Some(bad_mode))), MetaError::Invalid(_));
    let many = Caller { uid: 1, gid: 1, groups: (0..17).collect() };
    assert_err!(meta.create_access_point(&t.name, &new_ap("/g", many, None)), MetaError::Invalid(_), "17 groups");
    assert_err!(meta.create_access_point("ct-no-such-fs", &new_ap("/a", alice(), None)), MetaError::NoFileSystem(_));
    let first = ok(meta.create_access_point(&t.name, &new_ap("/a", alice(), None)), "create");
    let again = NewAccessPoint { id: first.id.clone(), path: "/b".into(), identity: bob(), creation: None };
    assert_eq!(meta.create_access_point(&t.name, &again), Err(MetaError::Exists), "ids are unique");
    assert_eq!(ok(meta.list_access_points(Some(&t.name)), "list"), vec![first]);
    assert_err!(meta.list_access_points(Some("ct-no-such-fs")), MetaError::NoFileSystem(_));
    for bad in ["fsap-123", "fsap-0123456789ABCDEF0", "xxxx-0123456789abcdef0", "fsap-0123456789abcdef01"] {
        assert_err!(AccessPointId::parse(bad), MetaError::Invalid(_), "{bad:?}");
    }
}

/// A file system's policy grants everything until set; it is per file system and
/// goes with the file system.
pub fn check_policy(meta: &Meta) {
    let t = TestFs::new(meta, "policy");
    let other = TestFs::new(meta, "policy-other");
    assert_eq!(ok(meta.policy(t.id), "get"), FsPolicy::default());
    assert_eq!(FsPolicy::default(), FsPolicy { read_only: false, root_squash: false });
    for p in [
        FsPolicy { read_only: true, root_squash: false },
        FsPolicy { read_only: false, root_squash: true },
        FsPolicy { read_only: true, root_squash: true },
    ] {
        ok(meta.set_policy(&t.name, p), "set");
        assert_eq!(ok(meta.policy(t.id), "get"), p);
        assert_eq!(ok(meta.policy(other.id), "get"), FsPolicy::default(), "other file systems keep theirs");
    }
    assert_err!(meta.set_policy("ct-no-such-fs", FsPolicy::default()), MetaError::NoFileSystem(_));
    let id = t.id;
    ok(meta.delete_fs(&t.name), "delete the file system");
    assert_eq!(ok(meta.policy(id), "get"), FsPolicy::default(), "the policy went with the file system");
}

/// The root directory of an access point is created on first use, with missing
/// intermediate directories, owned by its owner with its mode; an existing one is
/// left as it is.
pub fn check_access_point_root(meta: &Meta) {
    let t = TestFs::new(meta, "ap-root");
    let creation = RootCreation { uid: 1001, gid: 1002, mode: 0o750 };
    let ap = ok(meta.create_access_point(&t.name, &new_ap("/apps/message", bob(), Some(creation))), "create");
    let inodes = t.statfs().used_inodes;
    let r = ok(meta.access_point_root(t.id, &ap), "first use");
    let apps = t.attr(t.ino(ROOT, "apps"));
    assert_eq!(t.ino(apps.ino, "message"), r.ino);
    for d in [&apps, &r] {
        assert_eq!(
            (d.kind, d.perm, d.uid, d.gid, d.nlink),
            (FileKind::Directory, 0o750, 1001, 1002, if d.ino == r.ino { 2 } else { 3 })
        );
    }
    assert_eq!((r.parent, apps.parent), (apps.ino, ROOT));
    assert_eq!(t.attr(ROOT).nlink, 3, "the root counts the new directory");
    assert_eq!(t.statfs().used_inodes, inodes + 2);
    assert_eq!(ok(meta.access_point_root(t.id, &ap), "second use"), t.attr(r.ino), "found again, unchanged");
    assert_eq!(t.statfs().used_inodes, inodes + 2);

    // An existing root keeps its owner and mode.
    let mine = ok(t.mknod(&alice(), t.open_dir("open").ino, "mine", FileKind::Directory, 0o700), "mkdir");
    let ap2 = ok(meta.create_access_point(&t.name, &new_ap("/open/mine", bob(), Some(creation))), "create");
    assert_eq!(ok(meta.access_point_root(t.id, &ap2), "use"), mine, "an existing root is left as it is");

    // Without creation info a missing root is an error; so is a path through a file.
    let bare = ok(meta.create_access_point(&t.name, &new_ap("/missing", bob(), None)), "create");
    assert_eq!(meta.access_point_root(t.id, &bare), Err(MetaError::NotFound));
    t.file(&root(), ROOT, "file");
    for path in ["/file", "/file/below"] {
        let ap = ok(meta.create_access_point(&t.name, &new_ap(path, bob(), Some(creation))), "create");
        assert_eq!(meta.access_point_root(t.id, &ap), Err(MetaError::NotDir), "{path}");
    }
    let elsewhere = TestFs::new(meta, "ap-root-other");
    assert_err!(meta.access_point_root(elsewhere.id, &ap), MetaError::Invalid(_), "another file system's access point");
    assert!(ok(meta.is_within(t.id, apps.ino, r.ino), "within"));
    assert!(ok(meta.is_within(t.id, r.ino, r.ino), "within itself"));
    assert!(!ok(meta.is_within(t.id, r.ino, apps.ino), "a parent is not within"));
    assert!(!ok(meta.is_within(t.id, r.ino, mine.ino), "a sibling tree is not within"));
}

/// Every kind of inode records the directory it was created or renamed into.
pub fn check_symlink_parent(meta: &Meta) {
    let t = TestFs::new(meta, "symlink-parent");
    let d = t.dir(&root(), ROOT, "d");
    let e = t.dir(&root(), ROOT, "e");
    let l = ok(t.symlink(&root(), d.ino, "l", b"../x"), "symlink");
    assert_eq!(l.parent, d.ino);
    ok(t.rename(&root(), d.ino, "l", e.ino, "l", NO_FLAGS), "rename");
    assert_eq!(t.attr(l.ino).parent, e.ino, "the parent follows a rename");
    let f = t.file(&root(), d.ino, "f");
    ok(t.rename(&root(), e.ino, "l", d.ino, "f", EXCHANGE), "exchange");
    assert_eq!((t.attr(l.ino).parent, t.attr(f.ino).parent), (d.ino, e.ino), "and an exchange");
}

/// Symlink targets resolve inside an access point root as if it were "/".
pub fn check_resolve_symlink(meta: &Meta) {
    let t = TestFs::new(meta, "resolve");
    t.file(&root(), ROOT, "secret");
    let ap = t.dir(&root(), ROOT, "ap");
    let a = t.dir(&root(), ap.ino, "a");
    let b = t.dir(&root(), a.ino, "b");
    t.file(&root(), ap.ino, "f");
    let resolve = |dir: InodeId, target: &str, c: &Caller| -> Result<Vec<String>> {
        let name = format!("l{}", unique_name("x"));
        let l = t.symlink(&root(), dir, &name, target.as_bytes())?;
        let r = meta.resolve_symlink(t.id, c, ap.ino, l.ino);
        t.unlink(&root(), dir, &name)?;
        Ok(r?.into_iter().map(|n| String::from_utf8_lossy(&n).into_owned()).collect())
    };
    let cases: &[(InodeId, &str, &[&str])] = &[
        (b.ino, "/", &[]),
        (b.ino, "/secret", &["secret"]),
        (b.ino, "/etc/passwd", &["etc", "passwd"]),
        (b.ino, "/../../secret", &["secret"]),
        (b.ino, "../../../../../secret", &["secret"]),
        (b.ino, "..", &["a"]),
        (b.ino, "../../f", &["f"]),
        (b.ino, "./x/../../y", &["a", "y"]),
        (ap.ino, "../ap/f", &["ap", "f"]),
        (a.ino, "b/../../..//f", &["f"]),
    ];
    for (dir, target, want) in cases {
        assert_eq!(ok(resolve(*dir, target, &root()), target), *want, "{target:?} from inode {dir}");
    }
    // Symlinks on the way are followed, inside the root too.
    ok(t.symlink(&root(), ap.ino, "up", b"../../.."), "symlink");
    ok(t.symlink(&root(), a.ino, "abs", b"/a/b"), "symlink");
    ok(t.symlink(&root(), b.ino, "chain", b"../abs"), "symlink");
    assert_eq!(ok(resolve(b.ino, "/up/../secret", &root()), "via up"), ["secret"]);
    assert_eq!(ok(resolve(ap.ino, "a/abs/../../..", &root()), "via abs"), Vec::<String>::new());
    assert_eq!(ok(resolve(ap.ino, "a/b/chain/x", &root()), "via chain"), ["a", "b", "x"]);
    assert_eq!(ok(resolve(ap.ino, "a/b/chain", &root()), "last left alone"), ["a", "b", "chain"]);
    // A loop is cut after 40 symlinks.
    ok(t.symlink(&root(), ap.ino, "loop", b"loop/x"), "symlink");
    assert_eq!(resolve(ap.ino, "loop/y", &root()), Err(MetaError::TooManySymlinks));
    // A directory the caller may not search is not looked into.
    let hidden = ok(t.mknod(&root(), ap.ino, "hidden", FileKind::Directory, 0o700), "mkdir");
    ok(t.symlink(&root(), hidden.ino, "in", b"/f"), "symlink");
    assert_eq!(ok(resolve(ap.ino, "hidden/in/x", &alice()), "unsearchable"), ["hidden", "in", "x"]);
    assert_eq!(ok(resolve(ap.ino, "hidden/in/x", &root()), "searchable"), ["f", "x"]);
    assert!(ok(meta.readdir(t.id, b.ino, 0, 100, false), "readdir").iter().all(|e| e.name != b"lx"), "cleaned up");
}

// --- Byte-range locks ----------------------------------------------------------------

fn lock_req(owner: LockOwner, typ: LockType, start: u64, end: u64, pid: u32) -> Lock {
    Lock { owner, typ, start, end, pid }
}

/// The ranges an owner holds on an inode, in order.
#[track_caller]
fn held(meta: &Meta, fs: FileSystemId, ino: InodeId, owner: LockOwner) -> Vec<(LockType, u64, u64)> {
    ok(meta.locks(fs, ino), "locks").into_iter().filter(|l| l.owner == owner).map(|l| (l.typ, l.start, l.end)).collect()
}

#[track_caller]
fn set_ok(meta: &Meta, fs: FileSystemId, ino: InodeId, request: Lock) {
    assert_eq!(ok(meta.set_lock(fs, ino, &request), "set_lock"), SetLock::Done, "{request:?} is granted");
}

/// An owner's new lock replaces what it held on the range: a different type splits
/// the old range, the same type merges with overlapping and adjacent ranges.
pub fn check_lock_split_and_merge(meta: &Meta) {
    use LockType::{Read, Write};
    let t = TestFs::new(meta, "lock-split");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let a = LockOwner { session: s, owner: 1 };
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 0, 99, 10));
    set_ok(meta, t.id, f.ino, lock_req(a, Read, 10, 19, 10));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, 9), (Read, 10, 19), (Write, 20, 99)], "a read lock splits");
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 15, 19, 10));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, 9), (Read, 10, 14), (Write, 15, 99)]);
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 10, 14, 10));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, 99)], "same-type neighbours merge into one range");
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 200, 299, 10));
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 100, 199, 10));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, 299)], "a lock filling a gap merges both sides");
    set_ok(meta, t.id, f.ino, lock_req(a, Read, 300, LOCK_END, 10));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, 299), (Read, 300, LOCK_END)], "different types stay apart");
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 0, LOCK_END, 10));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, LOCK_END)], "a whole-file lock covers everything");
    assert_err!(meta.set_lock(t.id, f.ino, &lock_req(a, Write, 10, 9, 10)), MetaError::Invalid(_), "start > end");
    assert_err!(meta.set_lock(t.id, f.ino, &lock_req(a, Write, 0, LOCK_END + 1, 10)), MetaError::Invalid(_));
    assert_err!(meta.get_lock(t.id, f.ino, &lock_req(a, Read, 5, 4, 10)), MetaError::Invalid(_));
    ok(meta.close_session(t.id, s), "close_session");
}

/// F_UNLCK of a sub-range splits a lock; unlocking what is not held is a no-op.
pub fn check_lock_unlock_sub_range(meta: &Meta) {
    use LockType::{Read, Unlock, Write};
    let t = TestFs::new(meta, "lock-unlock");
    let s = ok(meta.open_session(t.id, "conformance"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let a = LockOwner { session: s, owner: 1 };
    let b = LockOwner { session: s, owner: 2 };
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 0, LOCK_END, 10));
    set_ok(meta, t.id, f.ino, lock_req(a, Unlock, 100, 199, 0));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, 99), (Write, 200, LOCK_END)]);
    assert_eq!(ok(meta.set_lock(t.id, f.ino, &lock_req(b, Read, 150, 160, 11)), "set_lock"), SetLock::Done);
    assert!(matches!(
        ok(meta.set_lock(t.id, f.ino, &lock_req(b, Read, 150, 200, 11)), "set_lock"),
        SetLock::Conflict(Lock { start: 200, .. })
    ));
    set_ok(meta, t.id, f.ino, lock_req(a, Unlock, 0, 49, 0));
    set_ok(meta, t.id, f.ino, lock_req(a, Unlock, 1000, 1999, 0));
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 50, 99), (Write, 200, 999), (Write, 2000, LOCK_END)]);
    set_ok(meta, t.id, f.ino, lock_req(a, Unlock, 0, LOCK_END, 0));
    assert!(held(meta, t.id, f.ino, a).is_empty(), "unlocking everything leaves nothing");
    set_ok(meta, t.id, f.ino, lock_req(a, Unlock, 0, LOCK_END, 0));
    assert_eq!(held(meta, t.id, f.ino, b), [(Read, 150, 160)], "another owner's lock is untouched");
    ok(meta.close_session(t.id, s), "close_session");
}

/// Upgrading a read lock to a write lock waits for other readers; downgrading lets
/// them in again.
pub fn check_lock_upgrade_and_downgrade(meta: &Meta) {
    use LockType::{Read, Unlock, Write};
    let t = TestFs::new(meta, "lock-upgrade");
    let s1 = ok(meta.open_session(t.id, "conformance 1"), "open_session");
    let s2 = ok(meta.open_session(t.id, "conformance 2"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let a = LockOwner { session: s1, owner: 5 };
    let b = LockOwner { session: s2, owner: 5 };
    set_ok(meta, t.id, f.ino, lock_req(a, Read, 0, LOCK_END, 100));
    set_ok(meta, t.id, f.ino, lock_req(b, Read, 0, LOCK_END, 200));
    let upgrade = lock_req(a, Write, 0, LOCK_END, 100);
    match ok(meta.set_lock(t.id, f.ino, &upgrade), "set_lock") {
        SetLock::Conflict(l) => assert_eq!((l.owner, l.typ, l.pid), (b, Read, 200), "the other reader blocks"),
        SetLock::Done => panic!("an upgrade was granted while another owner holds a read lock"),
    }
    assert_eq!(held(meta, t.id, f.ino, a), [(Read, 0, LOCK_END)], "a refused upgrade keeps the read lock");
    set_ok(meta, t.id, f.ino, lock_req(b, Unlock, 0, LOCK_END, 0));
    set_ok(meta, t.id, f.ino, upgrade);
    assert_eq!(held(meta, t.id, f.ino, a), [(Write, 0, LOCK_END)]);
    assert!(matches!(
        ok(meta.set_lock(t.id, f.ino, &lock_req(b, Read, 10, 10, 200)), "set_lock"),
        SetLock::Conflict(Lock { typ: Write, .. })
    ));
    set_ok(meta, t.id, f.ino, lock_req(a, Read, 0, LOCK_END, 100));
    set_ok(meta, t.id, f.ino, lock_req(b, Read, 10, 10, 200));
    assert_eq!(held(meta, t.id, f.ino, a), [(Read, 0, LOCK_END)], "downgraded");
    ok(meta.close_session(t.id, s1), "close_session");
    ok(meta.close_session(t.id, s2), "close_session");
}

/// Who conflicts with whom: only other owners (another owner number in the same
/// session, or the same number in another session), only on overlapping bytes, and
/// read locks only with write locks. The conflict names the first holder by offset.
pub fn check_lock_conflicts(meta: &Meta) {
    use LockType::{Read, Unlock, Write};
    let t = TestFs::new(meta, "lock-conflicts");
    let s1 = ok(meta.open_session(t.id, "conformance 1"), "open_session");
    let s2 = ok(meta.open_session(t.id, "conformance 2"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let g = t.file(&root(), ROOT, "g");
    let a = LockOwner { session: s1, owner: 1 };
    let a_other_owner = LockOwner { session: s1, owner: 2 };
    let a_other_session = LockOwner { session: s2, owner: 1 };
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 100, 199, 42));
    set_ok(meta, t.id, f.ino, lock_req(a, Read, 300, 399, 42));
    set_ok(meta, t.id, f.ino, lock_req(a, Write, 100, 199, 42));
    for other in [a_other_owner, a_other_session] {
        for (typ, start, end, conflict) in [
            (Write, 0, 99, None),
            (Read, 0, 100, Some((Write, 100, 199))),
            (Write, 199, 199, Some((Write, 100, 199))),
            (Read, 200, 299, None),
            (Read, 300, 399, None),
            (Write, 250, 300, Some((Read, 300, 399))),
            (Write, 0, LOCK_END, Some((Write, 100, 199))),
            (Write, 400, LOCK_END, None),
        ] {
            let request = lock_req(other, typ, start, end, 7);
            let got = ok(meta.get_lock(t.id, f.ino, &request), "get_lock");
            let want = conflict.map(|(ty, s, e)| lock_req(a, ty, s, e, 42));
            assert_eq!(got, want, "get_lock {request:?}");
            match ok(meta.set_lock(t.id, f.ino, &request), "set_lock") {
                SetLock::Conflict(l) => assert_eq!(Some(l), want, "set_lock {request:?} reports its first holder"),
                SetLock::Done => {
                    assert_eq!(want, None, "set_lock {request:?} was granted over a conflicting lock");
                    set_ok(meta, t.id, f.ino, lock_req(other, Unlock, 0, LOCK_END, 0));
                }
            }
        }
        assert_eq!(
            ok(meta.get_lock(t.id, g.ino, &lock_req(other, Write, 0, LOCK_END, 7)), "get_lock"),
            None,
            "locks are per inode"
        );
    }
    assert_eq!(ok(meta.get_lock(t.id, f.ino, &lock_req(a, Write, 0, LOCK_END, 42)), "get_lock"), None, "own locks");
    assert_eq!(ok(meta.get_lock(t.id, f.ino, &lock_req(a_other_owner, Unlock, 0, 10, 0)), "get_lock"), None);
    set_ok(meta, t.id, f.ino, lock_req(a_other_owner, Read, 300, 399, 43));
    set_ok(meta, t.id, f.ino, lock_req(a_other_session, Read, 350, 450, 44));
    let all = ok(meta.locks(t.id, f.ino), "locks");
    assert_eq!(all.len(), 4, "three owners' locks side by side: {all:?}");
    ok(meta.close_session(t.id, s1), "close_session");
    ok(meta.close_session(t.id, s2), "close_session");
}

/// release_owner drops one owner's locks on one inode; release_session_locks drops
/// every lock of a session.
pub fn check_lock_release(meta: &Meta) {
    use LockType::{Read, Write};
    let t = TestFs::new(meta, "lock-release");
    let s1 = ok(meta.open_session(t.id, "conformance 1"), "open_session");
    let s2 = ok(meta.open_session(t.id, "conformance 2"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let g = t.file(&root(), ROOT, "g");
    let a = LockOwner { session: s1, owner: 1 };
    let a2 = LockOwner { session: s1, owner: 2 };
    let b = LockOwner { session: s2, owner: 1 };
    for ino in [f.ino, g.ino] {
        set_ok(meta, t.id, ino, lock_req(a, Write, 0, 9, 1));
        set_ok(meta, t.id, ino, lock_req(a, Read, 20, 29, 1));
        set_ok(meta, t.id, ino, lock_req(a2, Read, 20, 29, 2));
        set_ok(meta, t.id, ino, lock_req(b, Read, 20, 29, 3));
    }
    ok(meta.release_owner(t.id, f.ino, a), "release_owner");
    assert!(held(meta, t.id, f.ino, a).is_empty(), "the owner's locks on f are gone");
    assert_eq!(held(meta, t.id, g.ino, a), [(Write, 0, 9), (Read, 20, 29)], "its locks on g stay");
    assert_eq!(held(meta, t.id, f.ino, a2), [(Read, 20, 29)], "another owner of the session keeps its lock");
    ok(meta.release_owner(t.id, f.ino, a), "releasing again is a no-op");
    ok(meta.release_session_locks(s1), "release_session_locks");
    for ino in [f.ino, g.ino] {
        let left: Vec<LockOwner> = ok(meta.locks(t.id, ino), "locks").into_iter().map(|l| l.owner).collect();
        assert_eq!(left, [b], "only the other session's lock is left on {ino}");
    }
    assert!(ok(meta.heartbeat(s1), "heartbeat"), "releasing locks does not end the session");
    ok(meta.close_session(t.id, s1), "close_session");
    ok(meta.close_session(t.id, s2), "close_session");
}

/// A session that ends, cleanly or by expiring after a crash, takes its locks with it:
/// the lock is free for others afterwards.
pub fn check_lock_session_end_frees_locks(meta: &Meta) {
    use LockType::Write;
    const TTL: Duration = Duration::from_millis(750);
    let t = TestFs::new(meta, "lock-session");
    let closing = ok(meta.open_session(t.id, "closing"), "open_session");
    let crashed = ok(meta.open_session(t.id, "crashed"), "open_session");
    let f = t.file(&root(), ROOT, "f");
    let g = t.file(&root(), ROOT, "g");
    set_ok(meta, t.id, f.ino, lock_req(LockOwner { session: closing, owner: 1 }, Write, 0, LOCK_END, 1));
    set_ok(meta, t.id, g.ino, lock_req(LockOwner { session: crashed, owner: 1 }, Write, 0, LOCK_END, 2));
    ok(meta.close_session(t.id, closing), "close_session");
    assert!(ok(meta.locks(t.id, f.ino), "locks").is_empty(), "a closed session's locks are gone");

    std::thread::sleep(TTL * 2);
    let survivor = ok(meta.open_session(t.id, "survivor"), "open_session");
    let want = lock_req(LockOwner { session: survivor, owner: 1 }, Write, 0, LOCK_END, 3);
    assert!(matches!(ok(meta.set_lock(t.id, g.ino, &want), "set_lock"), SetLock::Conflict(_)), "held until expiry");
    assert_eq!(ok(meta.expire_sessions(t.id, TTL), "expire_sessions"), 1);
    assert!(ok(meta.locks(t.id, g.ino), "locks").is_empty(), "an expired session's locks are gone");
    set_ok(meta, t.id, g.ino, want);
    ok(meta.close_session(t.id, survivor), "close_session");
    assert!(ok(meta.locks(t.id, g.ino), "locks").is_empty());
}

// --- Control-plane records ---------------------------------------------------------

pub fn check_records(meta: &Meta) {
    use crate::Expect;
    assert_eq!(meta.record("function", "f").unwrap(), None);
    assert_eq!(meta.put_record("function", "f", "{\"a\":1}", Expect::Absent).unwrap(), 1);
    assert_eq!(meta.put_record("function", "g", "{}", Expect::Absent).unwrap(), 1);
    assert_eq!(meta.put_record("trigger", "f", "{\"t\":1}", Expect::Absent).unwrap(), 1, "kinds are separate");
    let f = meta.record("function", "f").unwrap().unwrap();
    assert_eq!((f.name.as_str(), f.body.as_str(), f.revision), ("f", "{\"a\":1}", 1));
    assert_eq!(meta.put_record("function", "f", "{\"a\":2}", Expect::Revision(1)).unwrap(), 2);
    assert_eq!(meta.put_record("function", "f", "{\"a\":3}", Expect::Present).unwrap(), 3);
    let names: Vec<String> = meta.records("function").unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["f", "g"]);
    assert_eq!(meta.records("trigger").unwrap().len(), 1);
    let gone = meta.delete_record("function", "g", Expect::Present).unwrap();
    assert_eq!(gone.body, "{}");
    assert_eq!(meta.record("function", "g").unwrap(), None);
    assert_eq!(meta.record("function", "f").unwrap().unwrap().body, "{\"a\":3}");
}

pub fn check_record_conditions(meta: &Meta) {
    use crate::Expect;
    meta.put_record("function", "c", "1", Expect::Absent).unwrap();
    assert!(matches!(meta.put_record("function", "c", "2", Expect::Absent), Err(MetaError::Exists)));
    assert!(matches!(meta.put_record("function", "c", "2", Expect::Revision(7)), Err(MetaError::Stale)));
    assert!(matches!(meta.put_record("function", "none", "2", Expect::Present), Err(MetaError::NotFound)));
    assert!(matches!(meta.put_record("function", "none", "2", Expect::Revision(1)), Err(MetaError::NotFound)));
    assert!(matches!(meta.delete_record("function", "none", Expect::Present), Err(MetaError::NotFound)));
    assert!(matches!(meta.delete_record("function", "c", Expect::Revision(2)), Err(MetaError::Stale)));
    assert_eq!(meta.record("function", "c").unwrap().unwrap().body, "1", "failed writes change nothing");
    meta.delete_record("function", "c", Expect::Revision(1)).unwrap();
}
