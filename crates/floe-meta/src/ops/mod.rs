//! POSIX operations over any [`MetaStore`], each one transaction.

pub mod access;
pub mod access_point;
mod attr;
mod data;
mod fsck;
mod lock;
mod namespace;
pub mod records;
mod xattr;

use crate::store::{MetaStore, MetaTxn, TxnMode};
use crate::{FileSystemId, InodeId, MetaError, Result, SessionId, SliceId, TimeSpec};
pub use attr::{drop_privileges, MAX_FILE_SIZE};
pub use data::{Committed, NewSlice, Placement, SliceInfo};
pub use fsck::{NamespaceReport, LOST_FOUND};
pub use lock::{Lock, LockOwner, LockType, SetLock, LOCK_END};
pub use namespace::{DirEntry, NewNode, RenameFlags, Unlinked};
use std::sync::Arc;
pub use xattr::XattrFlags;

/// A file system as the metadata engine lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSystemInfo {
    pub id: FileSystemId,
    pub name: String,
    /// Names the file system's objects in object storage, so that a deleted and
    /// recreated file system never meets the old one's objects.
    pub uuid: String,
    pub created: TimeSpec,
    pub used_bytes: u64,
    pub used_inodes: u64,
}

/// A client session as the metadata engine lists it (for `floe status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub fs: FileSystemId,
    /// Who opened it, as the client described itself (a file system client writes
    /// "<hostname> pid <pid>").
    pub info: String,
    pub started: TimeSpec,
    pub heartbeat: TimeSpec,
}

/// Space and inodes in use, for statfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub used_bytes: u64,
    pub used_inodes: u64,
}

/// How many times an operation is retried after serialization conflicts.
const MAX_RETRIES: usize = 50;

/// How long to wait before retry number `attempt` (from 1): half of a doubling cap
/// (2 ms up to 64 ms) plus a random part of the other half. Transactions that
/// conflicted together must not retry in step, or under contention (many clients
/// appending to one file across nodes) they conflict again until the retries run out.
fn retry_wait(attempt: usize) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let cap_us = 1000u64 << attempt.min(6);
    // Each `RandomState` has fresh keys: its hash of nothing is a random number.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    std::time::Duration::from_micros(cap_us / 2 + random % (cap_us / 2 + 1))
}

/// The metadata engine: POSIX operations as transactions on a backend.
#[derive(Clone)]
pub struct Meta {
    store: Arc<dyn MetaStore>,
}

impl Meta {
    pub fn new(store: Arc<dyn MetaStore>) -> Meta {
        Meta { store }
    }

    /// Runs `f` on the rows directly, in one write transaction, run again from the
    /// start after a serialization conflict (so `f` must have no other effects): for
    /// services that keep an invariant over several records (floe-lambda's
    /// concurrency leases, reservations against the account's floor), and for tests
    /// that build states no operation produces (the corruptions fsck repairs). File
    /// system rows are for the operations above, which keep their invariants.
    pub fn write_txn<R>(&self, f: impl FnMut(&mut dyn MetaTxn) -> Result<R>) -> Result<R> {
        self.write(f)
    }

    /// Makes every committed transaction durable against a power cut.
    pub fn sync(&self) -> Result<()> {
        self.store.sync()
    }

    pub fn backend_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Runs `f` in a write transaction and commits it, retrying on conflicts.
    pub(crate) fn write<R>(&self, mut f: impl FnMut(&mut dyn MetaTxn) -> Result<R>) -> Result<R> {
        self.run(TxnMode::Write, &mut f)
    }

    /// Runs `f` in a read transaction.
    pub(crate) fn read<R>(&self, mut f: impl FnMut(&mut dyn MetaTxn) -> Result<R>) -> Result<R> {
        self.run(TxnMode::Read, &mut f)
    }

    fn run<R>(&self, mode: TxnMode, f: &mut dyn FnMut(&mut dyn MetaTxn) -> Result<R>) -> Result<R> {
        let mut attempt = 0;
        loop {
            let result = self.store.begin(mode).and_then(|mut txn| {
                let r = f(&mut *txn)?;
                txn.commit()?;
                Ok(r)
            });
            match result {
                Err(MetaError::Conflict) if attempt < MAX_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(retry_wait(attempt));
                }
                other => return other,
            }
        }
    }

    // --- File systems -------------------------------------------------------------

    /// Creates a file system with an empty root directory owned by root, mode 0755.
    pub fn create_fs(&self, name: &str, uuid: &str) -> Result<FileSystemInfo> {
        validate_fs_name(name)?;
        self.write(|t| {
            if t.fs_by_name(name)?.is_some() {
                return Err(MetaError::FileSystemExists(name.to_string()));
            }
            let now = TimeSpec::now();
            let id = t.insert_fs(name, uuid, now)?;
            t.put_inode(id, &namespace::new_root(now))?;
            t.add_usage(id, 0, 1)?;
            t.fs_by_name(name)?.ok_or(MetaError::Backend("file system vanished during creation".into()))
        })
    }

    pub fn fs_by_name(&self, name: &str) -> Result<FileSystemInfo> {
        self.read(|t| t.fs_by_name(name))?.ok_or_else(|| MetaError::NoFileSystem(name.to_string()))
    }

    pub fn list_fs(&self) -> Result<Vec<FileSystemInfo>> {
        self.read(|t| t.list_fs())
    }

    /// Deletes a file system's metadata. The caller removes its objects and makes sure
    /// no live session uses it (see [`Meta::live_sessions`]).
    pub fn delete_fs(&self, name: &str) -> Result<FileSystemInfo> {
        self.write(|t| {
            let info = t.fs_by_name(name)?.ok_or_else(|| MetaError::NoFileSystem(name.to_string()))?;
            t.delete_fs(info.id)?;
            Ok(info)
        })
    }

    pub fn statfs(&self, fs: FileSystemId) -> Result<StatFs> {
        self.read(|t| {
            let info = t.list_fs()?.into_iter().find(|i| i.id == fs).ok_or(MetaError::NoFileSystem(fs.to_string()))?;
            Ok(StatFs { used_bytes: info.used_bytes, used_inodes: info.used_inodes })
        })
    }

    // --- Sessions -----------------------------------------------------------------

    pub fn open_session(&self, fs: FileSystemId, info: &str) -> Result<SessionId> {
        self.write(|t| t.insert_session(fs, info, TimeSpec::now()))
    }

    /// Records that the session is alive; false if it was expired meanwhile.
    pub fn heartbeat(&self, session: SessionId) -> Result<bool> {
        self.write(|t| t.heartbeat(session, TimeSpec::now()))
    }

    /// Sessions of `fs` that sent a heartbeat within `ttl`.
    pub fn live_sessions(&self, fs: FileSystemId, ttl: std::time::Duration) -> Result<usize> {
        let stale_before = TimeSpec(TimeSpec::now().0 - ttl.as_nanos() as i64);
        self.read(|t| {
            let all = t.stale_sessions(fs, TimeSpec(i64::MAX))?.len();
            let stale = t.stale_sessions(fs, stale_before)?.len();
            Ok(all - stale)
        })
    }

    /// The sessions of `fs`, or of every file system, in id order, live or stale.
    pub fn sessions(&self, fs: Option<FileSystemId>) -> Result<Vec<SessionInfo>> {
        self.read(|t| t.list_sessions(fs))
    }

    /// Ends a session cleanly (or expires a dead one): what it held — locks, reserved
    /// slices — is released and the unlinked inodes it kept alive are purged.
    pub fn close_session(&self, fs: FileSystemId, session: SessionId) -> Result<()> {
        let held = self.write(|t| {
            t.delete_session_locks(session)?;
            t.delete_session(session)
        })?;
        for ino in held {
            self.purge_if_unlinked(fs, ino)?;
        }
        Ok(())
    }

    /// How many sessions of `fs` missed heartbeats for longer than `ttl` (their client
    /// crashed or was cut off).
    pub fn stale_sessions(&self, fs: FileSystemId, ttl: std::time::Duration) -> Result<usize> {
        let before = TimeSpec(TimeSpec::now().0 - ttl.as_nanos() as i64);
        Ok(self.read(|t| t.stale_sessions(fs, before))?.len())
    }

    /// Closes the sessions of `fs` that missed heartbeats for longer than `ttl`.
    /// Returns how many were expired.
    pub fn expire_sessions(&self, fs: FileSystemId, ttl: std::time::Duration) -> Result<usize> {
        let before = TimeSpec(TimeSpec::now().0 - ttl.as_nanos() as i64);
        let stale = self.read(|t| t.stale_sessions(fs, before))?;
        for s in &stale {
            self.close_session(fs, *s)?;
        }
        Ok(stale.len())
    }

    /// Purges inodes left unlinked by a crash (no live session keeps them open).
    pub fn purge_unlinked(&self, fs: FileSystemId) -> Result<usize> {
        let candidates = self.read(|t| t.unlinked_inodes(fs, 10_000))?;
        let mut purged = 0;
        for ino in candidates {
            if self.purge_if_unlinked(fs, ino)? {
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Keeps an unlinked inode alive while this session has it open.
    pub fn sustain(&self, fs: FileSystemId, session: SessionId, ino: InodeId) -> Result<()> {
        self.write(|t| t.sustain(session, fs, ino))
    }

    /// Drops this session's hold on an unlinked inode, purging it when no one holds it.
    pub fn release_sustained(&self, fs: FileSystemId, session: SessionId, ino: InodeId) -> Result<()> {
        let still_held = self.write(|t| t.release_sustained(session, fs, ino))?;
        if !still_held {
            self.purge_if_unlinked(fs, ino)?;
        }
        Ok(())
    }

    // --- Garbage ------------------------------------------------------------------

    /// Slices that nothing references any more: their objects may be deleted, then
    /// [`Meta::forget_slice`] called.
    pub fn garbage_slices(&self, fs: FileSystemId, limit: usize) -> Result<Vec<SliceInfo>> {
        self.read(|t| t.garbage_slices(fs, limit))
    }

    pub fn forget_slice(&self, fs: FileSystemId, id: SliceId) -> Result<()> {
        self.write(|t| t.delete_slice(fs, id))
    }

    pub fn all_slices(&self, fs: FileSystemId) -> Result<Vec<SliceInfo>> {
        self.read(|t| t.all_slices(fs))
    }
}

/// File system names end up in paths (caches, logs): they start with a letter or digit,
/// so "." and ".." can never be one.
fn validate_fs_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(MetaError::Invalid(
            "a file system name is 1-64 letters, digits, '-', '_' and '.', starting with a letter or digit",
        ))
    }
}
