//! Byte-range locks (POSIX `fcntl` semantics), global across every client of a file
//! system because they live in the metadata engine.
//!
//! A lock belongs to a [`LockOwner`]: a session (one client) and the owner number its
//! kernel gives (the process's file table for `fcntl`, the open file for `flock`). An
//! owner's locks on an inode never overlap each other: a new request replaces what the
//! owner held on its range (splitting ranges it cuts, merging neighbours of the same
//! type), which is how upgrade, downgrade and unlocking a sub-range work. Requests only
//! conflict with other owners: a write lock with any overlapping lock, a read lock with
//! an overlapping write lock.

use super::Meta;
use crate::{FileSystemId, InodeId, MetaError, Result, SessionId};

/// The largest offset a lock reaches (the kernel's OFFSET_MAX): a lock "to the end of
/// the file" ends here, whatever the file's size.
pub const LOCK_END: u64 = i64::MAX as u64;

/// Who holds a lock: one owner (as the client's kernel numbers it) within one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockOwner {
    pub session: SessionId,
    pub owner: u64,
}

/// F_RDLCK, F_WRLCK, or F_UNLCK in a request. Held locks are never `Unlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
    Unlock,
}

/// A byte-range lock on bytes `start..=end` of an inode, or a request for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    pub owner: LockOwner,
    pub typ: LockType,
    pub start: u64,
    /// Inclusive; [`LOCK_END`] for "to the end of the file".
    pub end: u64,
    /// The process that asked for it, reported to others by F_GETLK (informational:
    /// ownership is `owner`'s).
    pub pid: u32,
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    /// Whether this held lock stands in the way of `request` by another owner.
    fn blocks(&self, request: &Lock) -> bool {
        self.owner != request.owner
            && self.overlaps(request.start, request.end)
            && (request.typ == LockType::Write || self.typ == LockType::Write)
    }
}

/// The outcome of [`Meta::set_lock`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetLock {
    /// The owner now holds (or, for an unlock, no longer holds) the range.
    Done,
    /// Another owner holds a conflicting lock: this one, the first by offset.
    Conflict(Lock),
}

fn validate(request: &Lock) -> Result<()> {
    if request.start > request.end || request.end > LOCK_END {
        return Err(MetaError::Invalid("lock range"));
    }
    Ok(())
}

/// The owner's locks after applying `request` to `mine` (which do not overlap each
/// other): the parts of `mine` outside the request's range, plus the request itself
/// unless it unlocks, with adjacent or overlapping ranges of one type merged.
fn apply(mine: &[Lock], request: &Lock) -> Vec<Lock> {
    let mut out = Vec::with_capacity(mine.len() + 2);
    for l in mine {
        if !l.overlaps(request.start, request.end) {
            out.push(*l);
            continue;
        }
        if l.start < request.start {
            out.push(Lock { end: request.start - 1, ..*l });
        }
        if l.end > request.end {
            out.push(Lock { start: request.end + 1, ..*l });
        }
    }
    if request.typ != LockType::Unlock {
        out.push(*request);
    }
    out.sort_by_key(|l| l.start);
    let mut merged: Vec<Lock> = Vec::with_capacity(out.len());
    for l in out {
        match merged.last_mut() {
            // `end` is at most LOCK_END, so `end + 1` cannot overflow.
            Some(prev) if prev.typ == l.typ && l.start <= prev.end + 1 => {
                prev.end = prev.end.max(l.end);
                if l.pid == request.pid {
                    prev.pid = l.pid;
                }
            }
            _ => merged.push(l),
        }
    }
    merged
}

impl Meta {
    /// Sets, changes or removes (`LockType::Unlock`) the byte-range lock `request` on
    /// `ino`, unless another owner holds a conflicting lock. Never waits: callers that
    /// block retry.
    pub fn set_lock(&self, fs: FileSystemId, ino: InodeId, request: &Lock) -> Result<SetLock> {
        validate(request)?;
        self.write(|t| {
            let all = t.inode_locks(fs, ino)?;
            if request.typ != LockType::Unlock {
                if let Some(holder) = all.iter().find(|l| l.blocks(request)) {
                    return Ok(SetLock::Conflict(*holder));
                }
            }
            let mine: Vec<Lock> = all.into_iter().filter(|l| l.owner == request.owner).collect();
            let next = apply(&mine, request);
            if next != mine {
                t.replace_locks(fs, ino, request.owner, &next)?;
            }
            Ok(SetLock::Done)
        })
    }

    /// F_GETLK: the first lock (by offset) of another owner that would conflict with
    /// `request`, if any.
    pub fn get_lock(&self, fs: FileSystemId, ino: InodeId, request: &Lock) -> Result<Option<Lock>> {
        validate(request)?;
        if request.typ == LockType::Unlock {
            return Ok(None);
        }
        self.read(|t| Ok(t.inode_locks(fs, ino)?.into_iter().find(|l| l.blocks(request))))
    }

    /// Every lock held on `ino`, by offset.
    pub fn locks(&self, fs: FileSystemId, ino: InodeId) -> Result<Vec<Lock>> {
        self.read(|t| t.inode_locks(fs, ino))
    }

    /// Drops every lock `owner` holds on `ino` (close, process exit, flock's release).
    pub fn release_owner(&self, fs: FileSystemId, ino: InodeId, owner: LockOwner) -> Result<()> {
        self.write(|t| t.replace_locks(fs, ino, owner, &[]))
    }

    /// Drops every lock of a session, on every inode (unmount).
    pub fn release_session_locks(&self, session: SessionId) -> Result<()> {
        self.write(|t| t.delete_session_locks(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: LockOwner = LockOwner { session: SessionId(1), owner: 7 };

    fn lock(typ: LockType, start: u64, end: u64) -> Lock {
        Lock { owner: A, typ, start, end, pid: 1 }
    }

    fn ranges(locks: &[Lock]) -> Vec<(LockType, u64, u64)> {
        locks.iter().map(|l| (l.typ, l.start, l.end)).collect()
    }

    #[test]
    fn apply_splits_merges_and_unlocks() {
        use LockType::*;
        let held = apply(&[], &lock(Write, 0, 99));
        let held = apply(&held, &lock(Read, 10, 19));
        assert_eq!(ranges(&held), [(Write, 0, 9), (Read, 10, 19), (Write, 20, 99)]);
        let held = apply(&held, &lock(Write, 10, 19));
        assert_eq!(ranges(&held), [(Write, 0, 99)], "same-type neighbours merge");
        let held = apply(&held, &lock(Unlock, 50, LOCK_END));
        assert_eq!(ranges(&held), [(Write, 0, 49)]);
        let held = apply(&held, &lock(Write, 50, LOCK_END));
        assert_eq!(ranges(&held), [(Write, 0, LOCK_END)], "adjacent ranges merge up to LOCK_END");
        assert!(apply(&held, &lock(Unlock, 0, LOCK_END)).is_empty());
    }
}
