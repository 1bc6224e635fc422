//! Keeping the kernel caches of every mount of one client coherent.
//!
//! One client (one [`floe_fs::FileSystem`]) may serve several mounts, for example one per
//! access point. Each mount is a kernel superblock of its own, with its own page cache,
//! attributes and names, and none of them hears of a change made through another. So a
//! change served through one mount is pushed to the others as FUSE notifications
//! (`inval_inode`, `inval_entry`) before the change is answered.
//!
//! A notification can wait on a kernel lock: `inval_entry` takes the directory's lock,
//! `inval_inode` locks the pages it drops. Two mounts notifying each other while each
//! holds such a lock for the request being served would wait forever. Notifications
//! are therefore sent by one thread per mount, and a request waits for its
//! notifications only up to [`NOTIFY_WAIT`]: in the normal case they are done in
//! microseconds and the reply follows them (read-after-write across mounts); in that
//! rare crossing, the reply goes out, the kernel lock is released and the notification
//! completes right after.

use crate::node_id;
use floe_fs::InodeId;
use fuser::Notifier;
use std::ffi::OsString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a request waits for the notifications of its change.
const NOTIFY_WAIT: Duration = Duration::from_millis(250);

/// What a kernel must forget.
#[derive(Clone, Debug)]
pub(crate) enum Stale {
    /// The inode's attributes, and its cached data from `offset` on for `len` bytes
    /// (`len` 0: to the end). A negative offset keeps the data.
    Inode { ino: InodeId, offset: i64, len: i64 },
    /// A name in a directory (and the directory's attributes).
    Entry { parent: InodeId, name: OsString },
}

impl Stale {
    pub(crate) fn attrs(ino: InodeId) -> Stale {
        Stale::Inode { ino, offset: -1, len: 0 }
    }

    pub(crate) fn data(ino: InodeId) -> Stale {
        Stale::Inode { ino, offset: 0, len: 0 }
    }

    pub(crate) fn entry(parent: InodeId, name: &std::ffi::OsStr) -> Stale {
        Stale::Entry { parent, name: name.to_owned() }
    }
}

/// Every mount one client serves, with a notification thread each.
#[derive(Default)]
pub struct Mounts {
    mounts: Mutex<Vec<Attached>>,
    next_id: AtomicU64,
}

struct Attached {
    id: u64,
    root: InodeId,
    notifier: Notifier,
    tx: mpsc::Sender<Job>,
}

struct Job {
    stale: Vec<Stale>,
    done: Arc<Done>,
}

/// Counts the mounts that still have to apply a notification.
#[derive(Default)]
struct Done {
    left: Mutex<usize>,
    cvar: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mounts {
    /// A new mount's identifier, before it is attached.
    pub(crate) fn reserve(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Starts delivering notifications to mount `id`, whose root directory is `root`.
    pub(crate) fn attach(&self, id: u64, root: InodeId, notifier: Notifier) {
        let (tx, rx) = mpsc::channel::<Job>();
        let own = notifier.clone();
        let spawned = std::thread::Builder::new().name(format!("floe-notify-{id}")).spawn(move || {
            for job in rx {
                for s in &job.stale {
                    deliver(&notifier, root, s);
                }
                let mut left = lock(&job.done.left);
                *left = left.saturating_sub(1);
                job.done.cvar.notify_all();
            }
        });
        match spawned {
            Ok(_) => lock(&self.mounts).push(Attached { id, root, notifier: own, tx }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start a notification thread; this mount's kernel cache may lag behind the others' changes by the attribute TTL")
            }
        }
    }

    /// Stops notifying mount `id` (it is being unmounted).
    pub(crate) fn detach(&self, id: u64) {
        lock(&self.mounts).retain(|m| m.id != id);
    }

    /// Whether any mount besides `id` is attached: if not, there is no one to notify.
    pub(crate) fn has_others(&self, id: u64) -> bool {
        lock(&self.mounts).iter().any(|m| m.id != id)
    }

    /// Makes mount `id` forget the attributes of `ino` at once, on this thread. Safe
    /// from a request handler: dropping attributes takes no lock a request can hold
    /// (unlike dropping pages or names).
    pub(crate) fn forget_attrs_now(&self, id: u64, ino: InodeId) {
        let target = lock(&self.mounts).iter().find(|m| m.id == id).map(|m| (m.root, m.notifier.clone()));
        if let Some((root, notifier)) = target {
            deliver(&notifier, root, &Stale::attrs(ino));
        }
    }

    /// Tells every mount but `except` (every mount when `None`) to forget `stale`,
    /// waiting up to [`NOTIFY_WAIT`] for them to have done so.
    pub(crate) fn notify(&self, except: Option<u64>, stale: Vec<Stale>) {
        self.notify_where(|m| Some(m) != except, stale)
    }

    fn notify_where(&self, to: impl Fn(u64) -> bool, stale: Vec<Stale>) {
        if stale.is_empty() {
            return;
        }
        let done = Arc::new(Done::default());
        {
            let mounts = lock(&self.mounts);
            let mut left = lock(&done.left);
            for m in mounts.iter().filter(|m| to(m.id)) {
                if m.tx.send(Job { stale: stale.clone(), done: Arc::clone(&done) }).is_ok() {
                    *left += 1;
                }
            }
        }
        let deadline = Instant::now() + NOTIFY_WAIT;
        let mut left = lock(&done.left);
        while *left > 0 {
            let now = Instant::now();
            if now >= deadline {
                tracing::debug!(left = *left, "replying before every mount applied a notification");
                return;
            }
            left = done.cvar.wait_timeout(left, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }
}

fn deliver(notifier: &Notifier, root: InodeId, stale: &Stale) {
    let result = match stale {
        Stale::Inode { ino, offset, len } => notifier.inval_inode(node_id(root, *ino), *offset, *len),
        Stale::Entry { parent, name } => notifier.inval_entry(node_id(root, *parent), name),
    };
    // ENOENT: that kernel never looked the inode or name up, so it has nothing to forget.
    if let Err(e) = result {
        if e.raw_os_error() != Some(libc::ENOENT) {
            tracing::debug!(error = %e, ?stale, "kernel notification failed");
        }
    }
}
