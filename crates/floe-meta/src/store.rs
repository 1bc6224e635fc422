//! The backend seam: row-level access to metadata inside one transaction.

use crate::ops::access_point::{AccessPoint, AccessPointId, FsPolicy};
use crate::ops::records::Record;
use crate::ops::{FileSystemInfo, Lock, LockOwner, SessionInfo, SliceInfo};
use crate::{Attr, FileKind, FileSystemId, InodeId, Result, SessionId, SliceId, SliceRef, TimeSpec};

/// Whether a transaction may write. Backends may serve reads from other connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnMode {
    Read,
    Write,
}

/// Per-file-system counters that hand out identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Inode,
    Slice,
}

/// One directory entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dentry {
    pub name: Vec<u8>,
    pub ino: InodeId,
    pub kind: FileKind,
    /// A position in the directory that stays valid while other entries come and go,
    /// so that a listing resumes where it stopped.
    pub cookie: u64,
}

/// A metadata backend (SQLite, PostgreSQL, ...): opens transactions.
pub trait MetaStore: Send + Sync {
    /// Starts a transaction. A `Write` transaction takes the locks it needs so that
    /// the whole operation is serializable with every other writer.
    fn begin(&self, mode: TxnMode) -> Result<Box<dyn MetaTxn + '_>>;
    /// A short name for logs and `floe status` ("sqlite", "postgres").
    fn kind(&self) -> &'static str;
    /// Makes every committed transaction durable against a power cut (commits are
    /// durable against a crash of the process when they return).
    fn sync(&self) -> Result<()>;
}

/// Row-level operations inside one transaction. Dropping a transaction without
/// [`MetaTxn::commit`] rolls it back. Methods that change rows are only called in
/// `Write` transactions.
pub trait MetaTxn {
    fn commit(self: Box<Self>) -> Result<()>;

    // File systems.
    fn insert_fs(&mut self, name: &str, uuid: &str, now: TimeSpec) -> Result<FileSystemId>;
    fn fs_by_name(&mut self, name: &str) -> Result<Option<FileSystemInfo>>;
    fn list_fs(&mut self) -> Result<Vec<FileSystemInfo>>;
    /// Deletes the file system and every row that belongs to it.
    fn delete_fs(&mut self, fs: FileSystemId) -> Result<()>;
    /// Reserves `n` consecutive identifiers and returns the first.
    fn next_ids(&mut self, fs: FileSystemId, counter: Counter, n: u64) -> Result<u64>;
    /// Adds to the space and inode usage of a file system (negative to release).
    fn add_usage(&mut self, fs: FileSystemId, bytes: i64, inodes: i64) -> Result<()>;

    // Inodes.
    fn get_inode(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Option<Attr>>;
    /// Inserts or replaces the inode row.
    fn put_inode(&mut self, fs: FileSystemId, attr: &Attr) -> Result<()>;
    fn delete_inode(&mut self, fs: FileSystemId, ino: InodeId) -> Result<()>;
    /// Inodes with no links left, for cleanup after a crash.
    fn unlinked_inodes(&mut self, fs: FileSystemId, limit: usize) -> Result<Vec<InodeId>>;

    // Whole-file-system listings, for fsck.
    fn all_inodes(&mut self, fs: FileSystemId) -> Result<Vec<Attr>>;
    /// Every directory entry, with its directory.
    fn all_dentries(&mut self, fs: FileSystemId) -> Result<Vec<(InodeId, Dentry)>>;
    /// Every chunk reference to a slice (holes excluded), with its inode.
    fn all_refs(&mut self, fs: FileSystemId) -> Result<Vec<(InodeId, SliceId)>>;
    /// Every slice with the reference count recorded on it.
    fn slice_ref_counts(&mut self, fs: FileSystemId) -> Result<Vec<(SliceId, u64)>>;
    fn set_slice_refs(&mut self, fs: FileSystemId, id: SliceId, refs: u64) -> Result<()>;

    // Directory entries.
    fn get_dentry(&mut self, fs: FileSystemId, parent: InodeId, name: &[u8]) -> Result<Option<Dentry>>;
    fn insert_dentry(
        &mut self,
        fs: FileSystemId,
        parent: InodeId,
        name: &[u8],
        ino: InodeId,
        kind: FileKind,
    ) -> Result<()>;
    fn delete_dentry(&mut self, fs: FileSystemId, parent: InodeId, name: &[u8]) -> Result<()>;
    /// Entries with a cookie greater than `after`, in cookie order.
    fn list_dentries(&mut self, fs: FileSystemId, parent: InodeId, after: u64, limit: usize) -> Result<Vec<Dentry>>;
    fn has_dentries(&mut self, fs: FileSystemId, parent: InodeId) -> Result<bool>;

    // Symlinks and extended attributes.
    fn get_symlink(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Option<Vec<u8>>>;
    fn put_symlink(&mut self, fs: FileSystemId, ino: InodeId, target: &[u8]) -> Result<()>;
    fn get_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8], value: &[u8]) -> Result<()>;
    fn delete_xattr(&mut self, fs: FileSystemId, ino: InodeId, name: &[u8]) -> Result<bool>;
    fn list_xattrs(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Vec<Vec<u8>>>;
    /// Deletes the symlink target and xattrs of an inode.
    fn delete_inode_extras(&mut self, fs: FileSystemId, ino: InodeId) -> Result<()>;

    // Chunk maps and slices.
    /// The references of one chunk in the order they were appended, with inline data.
    fn chunk_refs(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64) -> Result<Vec<SliceRef>>;
    /// Appends a reference and counts it on its slice.
    fn append_ref(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64, r: &SliceRef) -> Result<()>;
    /// Deletes the references of chunks `first..` and uncounts them on their slices.
    /// Inline slices left with no reference go too: they have no objects to collect.
    fn delete_chunks_from(&mut self, fs: FileSystemId, ino: InodeId, first: u64) -> Result<()>;
    /// Replaces the references of one chunk (compaction), recounting slices.
    fn replace_chunk(&mut self, fs: FileSystemId, ino: InodeId, chunk: u64, refs: &[SliceRef]) -> Result<()>;
    /// Chunks with at least `min_refs` references.
    fn fragmented_chunks(&mut self, fs: FileSystemId, min_refs: usize, limit: usize) -> Result<Vec<(InodeId, u64)>>;
    /// Records a slice before its objects are written. `inline` stores small slices in
    /// the metadata; `owner` marks a slice still being written by a live session.
    fn insert_slice(
        &mut self,
        fs: FileSystemId,
        id: SliceId,
        size: u32,
        inline: Option<&[u8]>,
        owner: Option<SessionId>,
    ) -> Result<()>;
    /// Sets a slice's final size and clears its owner (it is now committed).
    fn finish_slice(&mut self, fs: FileSystemId, id: SliceId, size: u32) -> Result<()>;
    /// Slices no chunk refers to and no live session owns.
    fn garbage_slices(&mut self, fs: FileSystemId, limit: usize) -> Result<Vec<SliceInfo>>;
    fn delete_slice(&mut self, fs: FileSystemId, id: SliceId) -> Result<()>;
    /// Every slice id with its object-backed size, for fsck.
    fn all_slices(&mut self, fs: FileSystemId) -> Result<Vec<SliceInfo>>;

    // Sessions.
    fn insert_session(&mut self, fs: FileSystemId, info: &str, now: TimeSpec) -> Result<SessionId>;
    fn heartbeat(&mut self, session: SessionId, now: TimeSpec) -> Result<bool>;
    /// Sessions whose last heartbeat is older than `before`.
    fn stale_sessions(&mut self, fs: FileSystemId, before: TimeSpec) -> Result<Vec<SessionId>>;
    /// The sessions of `fs`, or of every file system, in id order.
    fn list_sessions(&mut self, fs: Option<FileSystemId>) -> Result<Vec<SessionInfo>>;
    /// Deletes a session with what it held: slice ownership and sustained inodes.
    /// Returns the inodes it kept alive while open.
    fn delete_session(&mut self, session: SessionId) -> Result<Vec<InodeId>>;
    /// Keeps an unlinked inode alive while the session has it open.
    fn sustain(&mut self, session: SessionId, fs: FileSystemId, ino: InodeId) -> Result<()>;
    /// Whether any session keeps the inode alive.
    fn is_sustained(&mut self, fs: FileSystemId, ino: InodeId) -> Result<bool>;
    /// Stops keeping the inode alive; returns whether any session still does.
    fn release_sustained(&mut self, session: SessionId, fs: FileSystemId, ino: InodeId) -> Result<bool>;

    // Access points and file system policy.
    fn insert_access_point(&mut self, ap: &AccessPoint) -> Result<()>;
    fn get_access_point(&mut self, id: &AccessPointId) -> Result<Option<AccessPoint>>;
    /// The access points of `fs`, or of every file system, in id order.
    fn list_access_points(&mut self, fs: Option<FileSystemId>) -> Result<Vec<AccessPoint>>;
    fn delete_access_point(&mut self, id: &AccessPointId) -> Result<()>;
    /// The policy of `fs`; the default (everything granted) when none was set.
    fn get_policy(&mut self, fs: FileSystemId) -> Result<FsPolicy>;
    fn put_policy(&mut self, fs: FileSystemId, policy: &FsPolicy) -> Result<()>;
    /// The name under which directory `parent` holds `ino` (one of them, for a file
    /// with several links). May scan the directory: for rare paths only.
    fn dentry_name(&mut self, fs: FileSystemId, parent: InodeId, ino: InodeId) -> Result<Option<Vec<u8>>>;

    // Control-plane records (functions, their settings, later triggers): one JSON
    // document per (kind, name), with a revision bumped at every write.
    fn get_record(&mut self, kind: &str, name: &str) -> Result<Option<Record>>;
    /// Inserts or replaces a record with the given revision.
    fn put_record(&mut self, kind: &str, record: &Record) -> Result<()>;
    fn delete_record(&mut self, kind: &str, name: &str) -> Result<()>;
    /// Every record of a kind, in name order.
    fn list_records(&mut self, kind: &str) -> Result<Vec<Record>>;

    // Byte-range locks.
    /// Every lock held on an inode, ordered by start offset.
    fn inode_locks(&mut self, fs: FileSystemId, ino: InodeId) -> Result<Vec<Lock>>;
    /// Replaces everything `owner` holds on the inode with `locks` (none: releases all).
    fn replace_locks(&mut self, fs: FileSystemId, ino: InodeId, owner: LockOwner, locks: &[Lock]) -> Result<()>;
    /// Deletes every lock a session holds, on any inode.
    fn delete_session_locks(&mut self, session: SessionId) -> Result<()>;
}
