//! What the lock callbacks need from the kernel's side: lock types as numbers, and
//! whether a process waiting for a lock got a signal.
//!
//! fuser answers FUSE_INTERRUPT with ENOSYS itself, after which the kernel never sends
//! another: a waiting F_SETLKW is never told that its caller got a signal. But the
//! kernel keeps that signal pending while the caller's thread waits for our reply, so
//! the waiter looks at `/proc/<tid>/status` between retries and answers EINTR, which
//! the kernel turns into a restart (SA_RESTART) or EINTR for the caller.

use floe_fs::LockType;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

pub(crate) fn lock_type(typ: i32) -> Option<LockType> {
    match typ {
        libc::F_RDLCK => Some(LockType::Read),
        libc::F_WRLCK => Some(LockType::Write),
        libc::F_UNLCK => Some(LockType::Unlock),
        _ => None,
    }
}

pub(crate) fn libc_type(typ: LockType) -> i32 {
    match typ {
        LockType::Read => libc::F_RDLCK,
        LockType::Write => libc::F_WRLCK,
        LockType::Unlock => libc::F_UNLCK,
    }
}

/// Whether thread `tid` (a request's pid is the calling thread's id) has a signal
/// pending that it does not block: for itself (SigPnd) or for its process (ShdPnd).
/// False when the thread cannot be seen (another pid namespace reports pid 0): such a
/// waiter cannot be interrupted, only granted the lock.
pub(crate) fn signal_pending(tid: u32) -> bool {
    if tid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{tid}/status")) {
        Ok(status) => pending_unblocked(&status),
        Err(_) => false,
    }
}

fn pending_unblocked(status: &str) -> bool {
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    (mask("SigPnd:") | mask("ShdPnd:")) & !mask("SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_signals_count_unless_blocked() {
        let status = |pnd: &str, shd: &str, blk: &str| {
            format!("Name:\tx\nSigQ:\t0/1\nSigPnd:\t{pnd}\nShdPnd:\t{shd}\nSigBlk:\t{blk}\nSigIgn:\t0\n")
        };
        assert!(!pending_unblocked(&status("0000000000000000", "0000000000000000", "0000000000000000")));
        assert!(pending_unblocked(&status("0000000000000200", "0000000000000000", "0000000000000000")));
        assert!(pending_unblocked(&status("0000000000000000", "0000000000004000", "0000000000000000")));
        assert!(!pending_unblocked(&status("0000000000000000", "0000000000004000", "0000000000004000")));
        assert!(pending_unblocked(&status("0000000000000100", "0000000000004000", "0000000000004000")));
    }

    #[test]
    fn this_thread_has_no_signal_pending() {
        assert!(!signal_pending(std::process::id()));
        assert!(!signal_pending(0));
    }
}

/// Which lock owners took locks through which open files (FUSE handles), so that the
/// last close of an open file releases the locks that belong to it.
///
/// The kernel releases `fcntl` locks at every close (FLUSH names the process) and
/// `flock` locks at the last close (RELEASE with FUSE_RELEASE_FLOCK_UNLOCK), but an
/// open file description lock (`F_OFD_SETLK`, owner: the open file) gets neither. So
/// when an open file goes, the owners that locked only through it lose their locks.
/// An owner that also locked through another open file keeps them: a process may
/// close one descriptor, lock again through another, and the release of the first
/// arrives after (RELEASE is asynchronous). The same rule covers `flock`: the kernel
/// names a flock's owner by the open file's address, which a new open file may reuse
/// while the old one's RELEASE is still queued; releasing by owner alone would then
/// drop the new file's lock.
#[derive(Default)]
pub(crate) struct LockHandles {
    inner: Mutex<Handles>,
}

#[derive(Default)]
struct Handles {
    by_handle: HashMap<u64, HashSet<u64>>,
    by_owner: HashMap<u64, HashSet<u64>>,
}

impl LockHandles {
    fn lock(&self) -> MutexGuard<'_, Handles> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `owner` took a lock through handle `fh`.
    pub(crate) fn took(&self, fh: u64, owner: u64) {
        let mut h = self.lock();
        h.by_handle.entry(fh).or_default().insert(owner);
        h.by_owner.entry(owner).or_default().insert(fh);
    }

    /// Handle `fh` is closed for good: calls `release` for each owner that locked
    /// through it and through no other handle still open, holding the table meanwhile,
    /// so that a lock an owner takes through a new handle at the same moment is
    /// either seen here (and kept) or taken after the release.
    pub(crate) fn close(&self, fh: u64, mut release: impl FnMut(u64)) {
        let mut h = self.lock();
        for owner in h.closed(fh) {
            release(owner);
        }
    }

    #[cfg(test)]
    fn closed(&self, fh: u64) -> Vec<u64> {
        self.lock().closed(fh)
    }
}

impl Handles {
    fn closed(&mut self, fh: u64) -> Vec<u64> {
        let h = self;
        let Some(owners) = h.by_handle.remove(&fh) else { return Vec::new() };
        let mut orphans = Vec::new();
        for owner in owners {
            if let Some(handles) = h.by_owner.get_mut(&owner) {
                handles.remove(&fh);
                if handles.is_empty() {
                    h.by_owner.remove(&owner);
                    orphans.push(owner);
                }
            }
        }
        orphans
    }
}

#[cfg(test)]
mod handle_tests {
    use super::LockHandles;

    #[test]
    fn an_owner_loses_its_locks_with_its_last_handle() {
        let h = LockHandles::default();
        h.took(1, 100); // an OFD lock: owner 100 is open file 1
        h.took(2, 200); // a process locking through two open files
        h.took(3, 200);
        assert_eq!(h.closed(1), vec![100]);
        assert!(h.closed(2).is_empty(), "owner 200 still locks through handle 3");
        assert_eq!(h.closed(3), vec![200]);
        assert!(h.closed(3).is_empty(), "closing twice releases nothing");
        assert!(h.closed(9).is_empty(), "a handle that took no lock");
    }
}
