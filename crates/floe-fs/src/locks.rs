//! Global `fcntl`/`flock` locks for one client, with NFS's consistency rules.
//!
//! Locks live in the metadata engine ([`floe_meta::Meta::set_lock`]), so they hold
//! across clients. This module adds what one client does around them: taking a lock
//! revalidates the file's cached contents ([`FileSystem::revalidate`]); changing or
//! releasing one first commits this client's pending writes of the file, so whoever
//! locks next sees them; and blocking requests wait on one waiter thread instead of
//! the caller's thread (a FUSE worker must not sleep on a lock).
//!
//! A blocked request is retried at once when a lock of this client is released or
//! changed (condition variable), and every [`LOCK_RETRY_INTERVAL`] otherwise, which
//! is how another client's unlock is noticed. There is no queue: whoever retries first
//! after an unlock gets the lock. Deadlocks between owners are not detected.

use crate::{FileSystem, FsError, Result};
use floe_meta::{InodeId, Lock, LockOwner, LockType, SetLock};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How often a blocked lock request asks the metadata engine again when nothing in
/// this client has woken it: the delay with which another client's unlock is seen.
/// Each retry of each waiter is one read transaction (a write one only when the lock
/// looks free), so 10 ms costs at most 100 cheap reads per second per waiter while
/// keeping a handover across clients within about one FUSE round trip of a local one.
pub const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// A lock request of this client's kernel: `owner` is the kernel's lock owner (the
/// open file for `flock`, the process's file table for `fcntl`); bytes `start..=end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockRequest {
    pub owner: u64,
    pub typ: LockType,
    pub start: u64,
    pub end: u64,
    pub pid: u32,
}

/// A conflicting lock as F_GETLK reports it. The pid is the holder's on its own
/// machine (meaningful to the caller only when that is this machine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockHolder {
    pub typ: LockType,
    pub start: u64,
    pub end: u64,
    pub pid: u32,
}

/// Called once with the outcome of a blocking request.
pub type LockDone = Box<dyn FnOnce(Result<()>) + Send>;
/// Asked between retries whether the caller gave up (a signal): then the request
/// ends with [`FsError::Interrupted`].
pub type LockInterrupted = Box<dyn Fn() -> bool + Send>;

struct Waiter {
    ino: InodeId,
    lock: Lock,
    interrupted: LockInterrupted,
    done: LockDone,
}

#[derive(Default)]
struct WaitQueue {
    waiters: Vec<Waiter>,
    /// Something may have freed a lock: retry now rather than at the next interval.
    wake: bool,
    stopped: bool,
    thread_started: bool,
}

/// One client's lock bookkeeping.
#[derive(Default)]
pub(crate) struct Locks {
    queue: Arc<(Mutex<WaitQueue>, Condvar)>,
    /// The owners that may hold locks on each inode through this client, so that the
    /// release on every close costs nothing when no lock was taken.
    held: Mutex<HashMap<InodeId, HashSet<u64>>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Locks {
    /// Wakes the waiters: a lock of this client was released or changed.
    fn wake(&self) {
        let (queue, cvar) = &*self.queue;
        guard(queue).wake = true;
        cvar.notify_all();
    }

    fn may_hold(&self, ino: InodeId, owner: u64) -> bool {
        guard(&self.held).get(&ino).is_some_and(|o| o.contains(&owner))
    }

    /// Whether some owner may hold a lock on `ino` through this client.
    pub(crate) fn any(&self, ino: InodeId) -> bool {
        guard(&self.held).contains_key(&ino)
    }

    fn record(&self, ino: InodeId, owner: u64) {
        guard(&self.held).entry(ino).or_default().insert(owner);
    }

    fn forget(&self, ino: InodeId, owner: u64) {
        let mut held = guard(&self.held);
        if let Some(owners) = held.get_mut(&ino) {
            owners.remove(&owner);
            if owners.is_empty() {
                held.remove(&ino);
            }
        }
    }

    /// Ends every waiting request (unmount) and stops the waiter thread.
    pub(crate) fn stop(&self) {
        let waiters = {
            let (queue, cvar) = &*self.queue;
            let mut q = guard(queue);
            q.stopped = true;
            cvar.notify_all();
            std::mem::take(&mut q.waiters)
        };
        for w in waiters {
            (w.done)(Err(FsError::Interrupted));
        }
    }
}

impl FileSystem {
    fn lock_of(&self, r: &LockRequest) -> Lock {
        Lock {
            owner: LockOwner { session: self.session, owner: r.owner },
            typ: r.typ,
            start: r.start,
            end: r.end,
            pid: r.pid,
        }
    }

    /// F_GETLK: the first lock of another owner (of any client) that conflicts with
    /// `request`, if any.
    pub fn getlk(&self, ino: InodeId, request: &LockRequest) -> Result<Option<LockHolder>> {
        let found = self.meta.get_lock(self.info.id, ino, &self.lock_of(request))?;
        Ok(found.map(|l| LockHolder { typ: l.typ, start: l.start, end: l.end, pid: l.pid }))
    }

    /// F_SETLK / flock with LOCK_NB: takes, changes or releases a lock without waiting;
    /// [`FsError::WouldBlock`] when another owner holds a conflicting one.
    pub fn setlk(&self, ino: InodeId, request: &LockRequest) -> Result<()> {
        if self.try_lock(ino, &self.lock_of(request))? {
            Ok(())
        } else {
            Err(FsError::WouldBlock)
        }
    }

    /// F_SETLKW / flock without LOCK_NB: like [`FileSystem::setlk`], but a conflict
    /// hands the request to the waiter thread, and `done` is called when the lock is
    /// taken, when `interrupted` says the caller gave up, or at unmount. Returns at once.
    pub fn setlk_wait(
        self: &Arc<Self>,
        ino: InodeId,
        request: &LockRequest,
        interrupted: LockInterrupted,
        done: LockDone,
    ) {
        let lock = self.lock_of(request);
        match self.try_lock(ino, &lock) {
            Ok(false) => {}
            Ok(true) => return done(Ok(())),
            Err(e) => return done(Err(e)),
        }
        let (queue, cvar) = &*self.locks.queue;
        let mut q = guard(queue);
        if q.stopped {
            drop(q);
            return done(Err(FsError::Interrupted));
        }
        if !q.thread_started {
            if let Err(e) = spawn_waiter(Arc::downgrade(self), Arc::clone(&self.locks.queue)) {
                drop(q);
                tracing::error!(error = %e, "cannot start the lock waiter thread");
                return done(Err(FsError::WouldBlock));
            }
            q.thread_started = true;
        }
        q.waiters.push(Waiter { ino, lock, interrupted, done });
        // A lock released between the attempt above and now woke nobody: look again.
        q.wake = true;
        cvar.notify_all();
    }

    /// Drops every lock `owner` holds on `ino` (close by a process holding `fcntl`
    /// locks, last close of a file holding a `flock`), after committing this client's
    /// pending writes of the file.
    pub fn release_locks(&self, ino: InodeId, owner: u64) -> Result<()> {
        if !self.locks.may_hold(ino, owner) {
            return Ok(());
        }
        self.commit_pending(ino)?;
        // Forgotten before the release: a grant to the same owner racing with this
        // (which records after it locks) can leave the table knowing of a lock the
        // engine no longer has, never the other way round (a lock no close would
        // release).
        self.locks.forget(ino, owner);
        self.meta.release_owner(self.info.id, ino, LockOwner { session: self.session, owner })?;
        self.locks.wake();
        Ok(())
    }

    /// One attempt at `lock`: true when done, false on a conflict.
    fn try_lock(&self, ino: InodeId, lock: &Lock) -> Result<bool> {
        let releasing = lock.typ == LockType::Unlock || self.locks.may_hold(ino, lock.owner.owner);
        if releasing {
            // Unlocking or changing a held lock may let another owner in: it must see
            // what was written under the lock.
            self.commit_pending(ino)?;
        }
        match self.meta.set_lock(self.info.id, ino, lock)? {
            SetLock::Conflict(_) => Ok(false),
            SetLock::Done => {
                if lock.typ != LockType::Unlock {
                    self.locks.record(ino, lock.owner.owner);
                    self.revalidate(ino);
                }
                if releasing {
                    self.locks.wake();
                }
                Ok(true)
            }
        }
    }

    /// One retry of a waiting request: a read first, the write transaction only when
    /// the lock looks free (waiters poll, the holder's commits must not queue behind them).
    fn retry_lock(&self, w: &Waiter) -> Result<bool> {
        if self.meta.get_lock(self.info.id, w.ino, &w.lock)?.is_some() {
            return Ok(false);
        }
        self.try_lock(w.ino, &w.lock)
    }

    /// Commits this client's pending writes of `ino`, if it has any.
    fn commit_pending(&self, ino: InodeId) -> Result<()> {
        if let Some(inode) = self.inode_state(ino) {
            if !inode.lock().pending.is_empty() {
                self.commit_inode(ino)?;
            }
        }
        Ok(())
    }

    /// Stops waiting lock requests (unmount).
    pub(crate) fn stop_lock_waiters(&self) {
        self.locks.stop();
    }

    /// Retries waiting lock requests now: another client's locks may have gone (its
    /// session expired).
    pub(crate) fn wake_lock_waiters(&self) {
        self.locks.wake();
    }
}

fn spawn_waiter(fs: Weak<FileSystem>, queue: Arc<(Mutex<WaitQueue>, Condvar)>) -> std::io::Result<()> {
    std::thread::Builder::new().name("floe-lock-waiter".into()).spawn(move || wait_loop(fs, queue))?;
    Ok(())
}

/// The waiter thread: retries every waiting request when woken or every
/// [`LOCK_RETRY_INTERVAL`], until the file system stops.
fn wait_loop(fs: Weak<FileSystem>, queue: Arc<(Mutex<WaitQueue>, Condvar)>) {
    let (mutex, cvar) = &*queue;
    loop {
        let batch = {
            let mut q = guard(mutex);
            loop {
                if q.stopped {
                    return;
                }
                if q.waiters.is_empty() {
                    q = cvar.wait(q).unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                if q.wake {
                    break;
                }
                let (g, timeout) = cvar.wait_timeout(q, LOCK_RETRY_INTERVAL).unwrap_or_else(|p| p.into_inner());
                q = g;
                if timeout.timed_out() {
                    break;
                }
            }
            q.wake = false;
            std::mem::take(&mut q.waiters)
        };
        let Some(fs) = fs.upgrade() else {
            for w in batch {
                (w.done)(Err(FsError::Interrupted));
            }
            return;
        };
        let mut still = Vec::with_capacity(batch.len());
        for w in batch {
            match fs.retry_lock(&w) {
                Ok(true) => (w.done)(Ok(())),
                Ok(false) if (w.interrupted)() => (w.done)(Err(FsError::Interrupted)),
                Ok(false) => still.push(w),
                Err(e) => (w.done)(Err(e)),
            }
        }
        drop(fs);
        let mut q = guard(mutex);
        if q.stopped {
            drop(q);
            for w in still {
                (w.done)(Err(FsError::Interrupted));
            }
            return;
        }
        q.waiters.extend(still);
    }
}
