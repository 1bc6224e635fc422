//! Open files: per-inode state shared by every handle of the inode in this client, and
//! the handle table.

use crate::write::WriteBuffer;
use crate::{FsError, Result};
use floe_meta::{InodeId, SliceRef};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How a handle was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub append: bool,
}

impl OpenFlags {
    /// Whether the handle can write but not read. Its writes bypass the kernel's page
    /// cache (floe-fuse opens it with FOPEN_DIRECT_IO, ADR 17): nothing reads through
    /// it, and filling the cache page by page cost a large share of a big write.
    pub fn write_only(&self) -> bool {
        self.write && !self.read
    }

    /// From `open(2)` flags.
    pub fn from_libc(flags: i32) -> OpenFlags {
        let acc = flags & libc::O_ACCMODE;
        OpenFlags {
            read: acc == libc::O_RDONLY || acc == libc::O_RDWR,
            write: acc == libc::O_WRONLY || acc == libc::O_RDWR,
            append: flags & libc::O_APPEND != 0,
        }
    }
}

/// What this client holds for one open inode.
pub(crate) struct InodeState {
    pub(crate) opens: u32,
    /// How many of the handles may write: through one of them, a shared mapping may
    /// hold dirty pages the kernel has not sent yet.
    pub(crate) writers: u32,
    /// The inode lost its last name while open: the session keeps it alive.
    pub(crate) sustained: bool,
    pub(crate) pending: WriteBuffer,
    /// Committed chunk maps read while the inode is open; cleared on open (close-to-open)
    /// and whenever this client changes them.
    pub(crate) chunks: HashMap<u64, Arc<Vec<SliceRef>>>,
}

pub(crate) struct OpenInode {
    state: Mutex<InodeState>,
}

impl OpenInode {
    pub(crate) fn lock(&self) -> MutexGuard<'_, InodeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
pub(crate) struct Handle {
    pub(crate) ino: InodeId,
    pub(crate) flags: OpenFlags,
    pub(crate) inode: Arc<OpenInode>,
}

#[derive(Default)]
pub(crate) struct Handles {
    inodes: Mutex<HashMap<InodeId, Arc<OpenInode>>>,
    handles: Mutex<HashMap<u64, Handle>>,
    next: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Handles {
    /// Registers a new handle on `ino`, returning its number.
    pub(crate) fn open(&self, ino: InodeId, flags: OpenFlags) -> u64 {
        // Count the open while holding the map: a concurrent last close of the inode
        // (which removes it from the map under the same lock) must not drop the state
        // this handle is about to use.
        let inode = {
            let mut inodes = lock(&self.inodes);
            let inode = Arc::clone(inodes.entry(ino).or_insert_with(|| {
                Arc::new(OpenInode {
                    state: Mutex::new(InodeState {
                        opens: 0,
                        writers: 0,
                        sustained: false,
                        pending: WriteBuffer::default(),
                        chunks: HashMap::new(),
                    }),
                })
            }));
            let mut st = inode.lock();
            st.opens += 1;
            st.writers += u32::from(flags.write);
            st.chunks.clear();
            drop(st);
            inode
        };
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.handles).insert(fh, Handle { ino, flags, inode });
        fh
    }

    pub(crate) fn get(&self, fh: u64) -> Result<Handle> {
        lock(&self.handles).get(&fh).cloned().ok_or(FsError::BadHandle)
    }

    /// The state of an inode if this client has it open.
    pub(crate) fn inode(&self, ino: InodeId) -> Option<Arc<OpenInode>> {
        lock(&self.inodes).get(&ino).cloned()
    }

    /// Removes a handle. Returns the handle and whether it was the inode's last.
    pub(crate) fn close(&self, fh: u64) -> Result<(Handle, bool)> {
        let handle = lock(&self.handles).remove(&fh).ok_or(FsError::BadHandle)?;
        let mut inodes = lock(&self.inodes);
        let last = {
            let mut st = handle.inode.lock();
            st.opens = st.opens.saturating_sub(1);
            st.writers = st.writers.saturating_sub(u32::from(handle.flags.write));
            st.opens == 0
        };
        if last {
            inodes.remove(&handle.ino);
        }
        Ok((handle, last))
    }

    /// Every open inode, for flushing at unmount.
    pub(crate) fn all_inodes(&self) -> Vec<(InodeId, Arc<OpenInode>)> {
        lock(&self.inodes).iter().map(|(k, v)| (*k, Arc::clone(v))).collect()
    }
}

/// The attributes an inode had when this client last opened it, which is what the
/// kernel's page cache of the inode was filled from. An open that finds them changed
/// (another client committed in between) tells the kernel to drop the cache:
/// close-to-open consistency without a round trip per read.
#[derive(Default)]
pub(crate) struct SeenVersions {
    seen: Mutex<HashMap<InodeId, Version>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Version {
    mtime: floe_meta::TimeSpec,
    ctime: floe_meta::TimeSpec,
    size: u64,
}

impl Version {
    fn of(a: &floe_meta::Attr) -> Version {
        Version { mtime: a.mtime, ctime: a.ctime, size: a.size }
    }
}

/// Past this many inodes the table starts again: forgetting costs one cache refill.
const MAX_SEEN: usize = 1 << 17;

impl SeenVersions {
    /// Records `attr` as the inode's version and returns whether it is the one recorded
    /// before (the cached data is still valid).
    pub(crate) fn unchanged(&self, attr: &floe_meta::Attr) -> bool {
        let now = Version::of(attr);
        let mut seen = lock(&self.seen);
        if seen.len() >= MAX_SEEN && !seen.contains_key(&attr.ino) {
            seen.clear();
        }
        seen.insert(attr.ino, now) == Some(now)
    }

    /// The kernel's cache of the inode may miss this client's own writes (they went
    /// around it): the next open drops it.
    pub(crate) fn forget(&self, ino: InodeId) {
        lock(&self.seen).remove(&ino);
    }

    /// This client committed a change: when nobody changed the inode since this client
    /// saw it (`before` is what it saw), its cache still holds, now as of `after`
    /// (the kernel saw the writes go through it).
    pub(crate) fn committed(&self, c: &floe_meta::Committed) {
        let mut seen = lock(&self.seen);
        if let Some(v) = seen.get_mut(&c.after.ino) {
            if *v == Version::of(&c.before) {
                *v = Version::of(&c.after);
            }
        }
    }
}
