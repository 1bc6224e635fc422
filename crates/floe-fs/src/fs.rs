//! [`FileSystem`]: one client's handle on one floe file system.

use crate::blocks::BlockStore;
pub use crate::handles::OpenFlags;
use crate::handles::{Handle, Handles, SeenVersions};
use crate::read::{chunk_maps, data_ranges, pending_overlay, read_committed};
use crate::write::{SliceIds, WriteContext};
use crate::{FsConfig, FsError, Result};
use floe_meta::{
    Access, Attr, Caller, DirEntry, FileKind, FileSystemInfo, InodeId, Meta, NewNode, RenameFlags, SessionId, SetAttr,
    StatFs, XattrFlags,
};
use object_store::ObjectStore;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// What [`FileSystem::open`] returns.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The handle number.
    pub fh: u64,
    /// The inode's committed attributes, as read by the open.
    pub attr: Attr,
    /// Whether what this client cached of the inode's data before (the kernel's page
    /// cache) is still valid: nobody changed the inode since this client last opened it.
    /// When false, the cache must be dropped, with the attributes the kernel holds.
    pub cache_valid: bool,
    /// Whether every close(2) of the handle must reach [`FileSystem::flush`] and
    /// [`FileSystem::release_locks`]. A close does two things: it commits pending
    /// writes, which a read-only handle has none of (close-to-open is the writer's
    /// close), and it releases the closing process's fcntl locks, which only matters
    /// when some process of this client may hold one on the file. [`FileSystem::release`]
    /// still releases the locks taken through the handle (ADR 15).
    pub flush_on_close: bool,
}

/// One client's view of one file system: what a mount serves.
pub struct FileSystem {
    pub(crate) meta: Meta,
    pub(crate) info: FileSystemInfo,
    pub(crate) session: SessionId,
    pub(crate) blocks: Arc<BlockStore>,
    pub(crate) config: FsConfig,
    handles: Handles,
    seen: SeenVersions,
    pub(crate) locks: crate::locks::Locks,
    ids: SliceIds,
    background: Mutex<Option<JoinHandle<()>>>,
    pub(crate) signals: Arc<(Mutex<crate::gc::Signals>, Condvar)>,
    closed: AtomicBool,
    revalidate_hook: Mutex<Option<RevalidateHook>>,
    pub(crate) policy: crate::view::Policy,
}

/// Called when a file's cached data and attributes must be dropped everywhere this
/// client keeps them (the kernel's caches, which `floe-fs` cannot reach).
pub type RevalidateHook = Box<dyn Fn(InodeId) + Send + Sync>;

impl FileSystem {
    /// Opens file system `name`: starts a session, cleans up after crashed clients and
    /// starts the background work.
    pub fn mount(meta: Meta, store: Arc<dyn ObjectStore>, name: &str, config: FsConfig) -> Result<Arc<FileSystem>> {
        let info = meta.fs_by_name(name)?;
        let blocks = Arc::new(BlockStore::new(store, &info.uuid, &config)?);
        meta.expire_sessions(info.id, config.session_ttl)?;
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let session = meta.open_session(info.id, &format!("{} pid {}", host.trim(), std::process::id()))?;
        meta.purge_unlinked(info.id)?;
        let policy = crate::view::Policy::open(&meta, &info, &config)?;
        let fs = Arc::new(FileSystem {
            meta,
            info,
            session,
            blocks,
            config,
            handles: Handles::default(),
            seen: SeenVersions::default(),
            locks: crate::locks::Locks::default(),
            ids: SliceIds::new(),
            background: Mutex::new(None),
            signals: Arc::new((Mutex::new(crate::gc::Signals::default()), Condvar::new())),
            closed: AtomicBool::new(false),
            revalidate_hook: Mutex::new(None),
            policy,
        });
        let worker = crate::gc::spawn_background(Arc::clone(&fs));
        *fs.background.lock().unwrap_or_else(|p| p.into_inner()) = Some(worker);
        Ok(fs)
    }

    /// Sets what [`FileSystem::revalidate`] calls besides dropping floe's own caches.
    pub fn on_revalidate(&self, hook: RevalidateHook) {
        *self.revalidate_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Drops everything this client caches of `ino`'s data and attributes, so that
    /// reads after this call see everything committed before it (NFS: taking a lock
    /// revalidates the file): floe's chunk maps here, the kernel's caches of every mount
    /// through the hook the FUSE client installs. Every cache of file data that can go
    /// stale is dropped here, and only here.
    pub fn revalidate(&self, ino: InodeId) {
        if let Some(inode) = self.handles.inode(ino) {
            inode.lock().chunks.clear();
        }
        if let Some(hook) = &*self.revalidate_hook.lock().unwrap_or_else(|p| p.into_inner()) {
            hook(ino);
        }
    }

    pub fn info(&self) -> &FileSystemInfo {
        &self.info
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn blocks(&self) -> &BlockStore {
        &self.blocks
    }

    /// Commits every pending write, stops the background work and ends the session,
    /// which releases every lock this client holds (waiting requests fail with EINTR).
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.stop_lock_waiters();
        let mut first_err = None;
        for (ino, inode) in self.handles.all_inodes() {
            let mut st = inode.lock();
            if let Err(e) = st.pending.commit(&self.write_context(), ino) {
                first_err.get_or_insert(e);
            }
        }
        {
            let (lock, cvar) = &*self.signals;
            lock.lock().unwrap_or_else(|p| p.into_inner()).stopped = true;
            cvar.notify_all();
        }
        if let Some(worker) = self.background.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = worker.join();
        }
        self.meta.close_session(self.info.id, self.session)?;
        first_err.map_or(Ok(()), Err)
    }

    fn write_context(&self) -> WriteContext<'_> {
        WriteContext {
            meta: &self.meta,
            fs: self.info.id,
            session: self.session,
            blocks: &self.blocks,
            ids: &self.ids,
            inline_max: self.config.inline_max,
            seen: &self.seen,
        }
    }

    pub(crate) fn inode_state(&self, ino: InodeId) -> Option<Arc<crate::handles::OpenInode>> {
        self.handles.inode(ino)
    }

    /// Attributes with this client's pending writes counted in the size. For a file
    /// this client has open, the committed attributes are read again under the
    /// inode's lock, which commits hold: read before it, they could predate a commit
    /// (another handle's close, fsync or release) that has since emptied the pending
    /// writes, and the size would go back to the old one.
    fn with_pending(&self, attr: Attr) -> Result<Attr> {
        if attr.kind != FileKind::File {
            return Ok(attr);
        }
        match self.handles.inode(attr.ino) {
            Some(_) => self.getattr(attr.ino),
            None => Ok(attr),
        }
    }

    /// Commits this client's pending writes of `ino`, if it has any.
    pub(crate) fn commit_inode(&self, ino: InodeId) -> Result<()> {
        if let Some(inode) = self.handles.inode(ino) {
            let mut st = inode.lock();
            st.pending.commit(&self.write_context(), ino)?;
            st.chunks.clear();
        }
        Ok(())
    }

    /// Handles an inode that may have lost its last name: purge it now, or keep it
    /// alive until this client's last handle closes.
    fn orphaned(&self, attr: &Attr) -> Result<()> {
        if attr.nlink > 0 {
            return Ok(());
        }
        if let Some(inode) = self.handles.inode(attr.ino) {
            let mut st = inode.lock();
            if st.opens > 0 {
                if !st.sustained {
                    self.meta.sustain(self.info.id, self.session, attr.ino)?;
                    st.sustained = true;
                }
                return Ok(());
            }
        }
        if self.meta.purge_if_unlinked(self.info.id, attr.ino)? {
            self.wake_collector();
        }
        Ok(())
    }

    /// Asks the background thread to collect garbage soon (`gc::COLLECT_AFTER` later,
    /// with every deletion asked for meanwhile): deleted data frees its space (and the
    /// page cache its objects hold) promptly, not at the next interval.
    pub(crate) fn wake_collector(&self) {
        let (lock, cvar) = &*self.signals;
        let mut signals = lock.lock().unwrap_or_else(|p| p.into_inner());
        // Already asked: the round to come collects this deletion too.
        if !signals.collect {
            signals.collect = true;
            cvar.notify_all();
        }
    }

    // --- Names ----------------------------------------------------------------

    /// Looks a name up (in the whole file system; see [`FileSystem::lookup_in`]).
    pub fn lookup(&self, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<Attr> {
        self.with_pending(self.meta.lookup(self.info.id, caller, parent, name)?)
    }

    pub fn getattr(&self, ino: InodeId) -> Result<Attr> {
        let Some(inode) = self.handles.inode(ino) else {
            return Ok(self.meta.getattr(self.info.id, ino)?);
        };
        let st = inode.lock();
        let mut attr = self.meta.getattr(self.info.id, ino)?;
        if attr.kind == FileKind::File {
            attr.size = st.pending.size(attr.size);
            // Times set explicitly commit pending writes first (see setattr), so a
            // pending change is the latest event that moved mtime.
            if let Some(t) = st.pending.changed {
                attr.mtime = t;
                attr.ctime = attr.ctime.max(t);
            }
        }
        Ok(attr)
    }

    pub fn setattr(&self, caller: &Caller, ino: InodeId, set: &SetAttr) -> Result<Attr> {
        self.writable()?;
        // Pending writes happened before this change: commit them first, or their
        // commit would move mtime past times set here (cp -p sets them before close).
        if set.size.is_some() || set.atime.is_some() || set.mtime.is_some() {
            self.commit_inode(ino)?;
        }
        let attr = self.meta.setattr(self.info.id, caller, ino, set)?;
        if set.size.is_some() {
            if let Some(inode) = self.handles.inode(ino) {
                inode.lock().chunks.clear();
            }
            self.wake_collector();
        }
        self.with_pending(attr)
    }

    /// Creates a non-directory node (regular file, fifo, socket, device).
    pub fn mknod(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> Result<Attr> {
        self.writable()?;
        let kind = FileKind::from_mode(mode).unwrap_or(FileKind::File);
        if kind == FileKind::Directory || kind == FileKind::Symlink {
            return Err(FsError::Invalid("mknod cannot create directories or symlinks"));
        }
        let node = NewNode { kind, perm: mode, umask, rdev, target: None };
        Ok(self.meta.mknod(self.info.id, caller, parent, name, &node)?)
    }

    pub fn mkdir(&self, caller: &Caller, parent: InodeId, name: &[u8], mode: u32, umask: u32) -> Result<Attr> {
        self.writable()?;
        let node = NewNode { kind: FileKind::Directory, perm: mode, umask, rdev: 0, target: None };
        Ok(self.meta.mknod(self.info.id, caller, parent, name, &node)?)
    }

    pub fn symlink(&self, caller: &Caller, parent: InodeId, name: &[u8], target: &[u8]) -> Result<Attr> {
        self.writable()?;
        let node = NewNode { kind: FileKind::Symlink, perm: 0o777, umask: 0, rdev: 0, target: Some(target) };
        Ok(self.meta.mknod(self.info.id, caller, parent, name, &node)?)
    }

    /// A symlink's target as stored (see [`FileSystem::readlink_in`] for a view's).
    pub fn readlink(&self, ino: InodeId) -> Result<Vec<u8>> {
        Ok(self.meta.readlink(self.info.id, ino)?)
    }

    pub fn link(&self, caller: &Caller, ino: InodeId, newparent: InodeId, newname: &[u8]) -> Result<Attr> {
        self.writable()?;
        self.with_pending(self.meta.link(self.info.id, caller, ino, newparent, newname)?)
    }

    /// Removes a name; the inode goes in the same transaction when that was its last
    /// link and no one has it open.
    pub fn unlink(&self, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<()> {
        self.writable()?;
        // Only the handle table's lock is taken inside the transaction (never an
        // inode's, which is held around commits).
        let open = |ino: InodeId| self.handles.inode(ino).is_some();
        let (victim, fate) = self.meta.unlink_purging(self.info.id, caller, parent, name, self.session, &open)?;
        match fate {
            floe_meta::Unlinked::Purged => self.wake_collector(),
            floe_meta::Unlinked::Sustained => match self.handles.inode(victim.ino) {
                Some(inode) => inode.lock().sustained = true,
                // Closed in the meantime: let it go now.
                None => {
                    self.meta.release_sustained(self.info.id, self.session, victim.ino)?;
                    self.wake_collector();
                }
            },
            floe_meta::Unlinked::Linked => {}
        }
        Ok(())
    }

    pub fn rmdir(&self, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<()> {
        self.writable()?;
        let removed = self.meta.rmdir(self.info.id, caller, parent, name)?;
        self.orphaned(&removed)
    }

    pub fn rename(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        newparent: InodeId,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<()> {
        self.writable()?;
        if let Some(orphan) = self.meta.rename(self.info.id, caller, parent, name, newparent, newname, flags)? {
            self.orphaned(&orphan)?;
        }
        Ok(())
    }

    /// Opens a directory for listing (checking read permission); returns the handle,
    /// which keeps a removed directory's inode alive until [`FileSystem::release`].
    pub fn opendir(&self, caller: &Caller, ino: InodeId) -> Result<u64> {
        let attr = self.meta.access(self.info.id, caller, ino, Access::READ)?;
        if attr.kind != FileKind::Directory {
            return Err(floe_meta::MetaError::NotDir.into());
        }
        Ok(self.handles.open(ino, OpenFlags { read: true, ..OpenFlags::default() }))
    }

    /// Entries after cookie `after`; with `attrs`, each with its attributes.
    pub fn readdir(&self, ino: InodeId, after: u64, limit: usize, attrs: bool) -> Result<Vec<DirEntry>> {
        let mut entries = self.meta.readdir(self.info.id, ino, after, limit, attrs)?;
        for e in &mut entries {
            if let Some(a) = e.attr.take() {
                e.attr = Some(self.with_pending(a)?);
            }
        }
        Ok(entries)
    }

    /// The parent of a directory (the root is its own; see [`FileSystem::parent_in`]).
    pub fn parent_of(&self, dir: InodeId) -> Result<Attr> {
        let d = self.meta.getattr(self.info.id, dir)?;
        self.getattr(d.parent)
    }

    pub fn access(&self, caller: &Caller, ino: InodeId, mask: u32) -> Result<()> {
        if mask & 2 != 0 {
            self.writable()?;
        }
        self.meta.access(self.info.id, caller, ino, Access(mask & 7))?;
        Ok(())
    }

    pub fn statfs(&self) -> Result<StatFs> {
        Ok(self.meta.statfs(self.info.id)?)
    }

    // --- Extended attributes ----------------------------------------------------

    pub fn get_xattr(&self, caller: &Caller, ino: InodeId, name: &[u8]) -> Result<Vec<u8>> {
        Ok(self.meta.get_xattr(self.info.id, caller, ino, name)?)
    }

    pub fn set_xattr(&self, caller: &Caller, ino: InodeId, name: &[u8], value: &[u8], flags: XattrFlags) -> Result<()> {
        self.writable()?;
        Ok(self.meta.set_xattr(self.info.id, caller, ino, name, value, flags)?)
    }

    pub fn list_xattrs(&self, caller: &Caller, ino: InodeId) -> Result<Vec<Vec<u8>>> {
        Ok(self.meta.list_xattrs(self.info.id, caller, ino)?)
    }

    pub fn remove_xattr(&self, caller: &Caller, ino: InodeId, name: &[u8]) -> Result<()> {
        self.writable()?;
        Ok(self.meta.remove_xattr(self.info.id, caller, ino, name)?)
    }

    // --- Open files -------------------------------------------------------------

    /// Opens `ino`, checking the caller's permission for the access mode (and write
    /// permission for `truncate`).
    pub fn open(&self, caller: &Caller, ino: InodeId, flags: i32) -> Result<Opened> {
        let f = OpenFlags::from_libc(flags);
        let changes = f.write || flags & libc::O_TRUNC != 0;
        let mut want = 0;
        if f.read {
            want |= Access::READ.0;
        }
        if changes {
            self.writable()?;
            want |= Access::WRITE.0;
        }
        let attr = self.meta.access(self.info.id, caller, ino, Access(want))?;
        if attr.kind == FileKind::Directory && changes {
            return Err(floe_meta::MetaError::IsDir.into());
        }
        if flags & libc::O_TRUNC != 0 && attr.kind == FileKind::File {
            // A truncation by someone without CAP_FSETID drops setuid/setgid, as the
            // kernel does for a local file system (it leaves O_TRUNC to us here).
            self.drop_privileges(caller, &attr)?;
        }
        let fh = self.handles.open(ino, f);
        if flags & libc::O_TRUNC != 0 && attr.kind == FileKind::File {
            // With FUSE_ATOMIC_O_TRUNC the kernel leaves the truncation to open: fold it
            // into the handle's next commit instead of a transaction of its own.
            let handle = self.handles.get(fh)?;
            let mut st = handle.inode.lock();
            if let Err(e) = st.pending.commit(&self.write_context(), ino) {
                drop(st);
                let _ = self.handles.close(fh);
                return Err(e);
            }
            st.pending.truncate_all();
            st.chunks.clear();
        }
        let cache_valid = self.seen.unchanged(&attr);
        let flush_on_close = changes || self.locks.any(ino);
        Ok(Opened { fh, attr, cache_valid, flush_on_close })
    }

    /// Creates a regular file and opens it (O_CREAT); the new file's mode does not
    /// restrict this first handle.
    pub fn create(
        &self,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(u64, Attr)> {
        self.writable()?;
        let node = NewNode { kind: FileKind::File, perm: mode, umask, rdev: 0, target: None };
        let attr = match self.meta.mknod(self.info.id, caller, parent, name, &node) {
            // Another client made the name since this one's kernel looked (two nodes
            // appending to a new log at once): without O_EXCL, open(O_CREAT) opens
            // what is there, as on a local file system.
            Err(floe_meta::MetaError::Exists) if flags & libc::O_EXCL == 0 => {
                let found = self.lookup(caller, parent, name)?;
                if found.kind == FileKind::Symlink {
                    return Err(floe_meta::MetaError::Exists.into());
                }
                let opened = self.open(caller, found.ino, flags)?;
                return Ok((opened.fh, opened.attr));
            }
            other => other?,
        };
        // The kernel caches nothing of a new file yet: its cache is valid as of now, and
        // this client's commits keep it so.
        self.seen.unchanged(&attr);
        Ok((self.handles.open(attr.ino, OpenFlags::from_libc(flags)), attr))
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let handle = self.handles.get(fh)?;
        // One moment's view, taken under the inode's lock: the committed size and chunk
        // maps, and a copy of the pending writes over the range. A commit (fsync, close,
        // a full buffer) moves pending writes into the maps under the same lock, so
        // taking the overlay later could miss writes the maps do not have yet; the
        // kernel would cache that stale read (readahead runs beside fsync).
        let (maps, end, committed_end, overlay) = {
            let mut st = handle.inode.lock();
            let committed = self.meta.getattr(self.info.id, handle.ino)?;
            if committed.kind == FileKind::Directory {
                return Err(floe_meta::MetaError::IsDir.into());
            }
            let end = (offset.saturating_add(size as u64)).min(st.pending.size(committed.size));
            if offset >= end {
                return Ok(Vec::new());
            }
            // Committed bytes past a pending truncation read as zeros.
            let committed_end = st.pending.truncate.unwrap_or(u64::MAX).min(end);
            let maps = chunk_maps(&self.meta, self.info.id, handle.ino, &mut st, offset, committed_end)?;
            let overlay = pending_overlay(&st, self.blocks.block_size(), offset, end);
            (maps, end, committed_end, overlay)
        };
        let mut out = vec![0u8; (end - offset) as usize];
        if committed_end > offset {
            read_committed(&self.blocks, &maps, offset, &mut out[..(committed_end - offset) as usize])?;
        }
        for (at, bytes) in overlay {
            out[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        Ok(out)
    }

    /// lseek(2)'s SEEK_DATA (`hole` false) and SEEK_HOLE (`hole` true): the first byte
    /// at or after `offset` that holds data, or that lies in a hole. A hole is a range
    /// no write covered, or one punched or cut by a truncation, and the end of the file
    /// counts as one; zeros that were written are data. Fails with ENXIO when `offset`
    /// is at or past the end, or, for SEEK_DATA, when only holes follow it.
    ///
    /// While this client has the file open for writing, the whole file is data: the
    /// kernel does not write a shared mapping's dirty pages back before asking, and
    /// `cp` would skip what a hole hides.
    pub fn seek(&self, fh: u64, offset: u64, hole: bool) -> Result<u64> {
        let handle = self.handles.get(fh)?;
        let mut st = handle.inode.lock();
        let committed = self.meta.getattr(self.info.id, handle.ino)?;
        if committed.kind != FileKind::File {
            return Err(FsError::Invalid("SEEK_DATA and SEEK_HOLE need a regular file"));
        }
        let size = st.pending.size(committed.size);
        if offset >= size {
            return Err(FsError::BeyondEnd);
        }
        if st.writers > 0 {
            return Ok(if hole { size } else { offset });
        }
        let committed_end = st.pending.truncate.unwrap_or(u64::MAX).min(size);
        let block_size = self.blocks.block_size();
        // A chunk at a time, so that a seek near the start of a large file reads little.
        let mut pos = offset;
        for chunk in offset / floe_meta::CHUNK_SIZE..=(size - 1) / floe_meta::CHUNK_SIZE {
            let chunk_end = ((chunk + 1) * floe_meta::CHUNK_SIZE).min(size);
            let maps = chunk_maps(&self.meta, self.info.id, handle.ino, &mut st, pos, committed_end.min(chunk_end))?;
            let ranges = data_ranges(&maps, &st, block_size, pos, committed_end, chunk_end);
            if hole {
                // Data runs on from `pos` while the ranges touch it.
                for (lo, hi) in ranges {
                    if lo > pos {
                        return Ok(pos);
                    }
                    pos = pos.max(hi);
                }
                if pos < chunk_end {
                    return Ok(pos);
                }
            } else if let Some((lo, _)) = ranges.first() {
                return Ok((*lo).max(pos));
            } else {
                pos = chunk_end;
            }
        }
        if hole {
            Ok(size)
        } else {
            Err(FsError::BeyondEnd)
        }
    }

    /// Buffers a write. With O_APPEND the data goes to the current end of file, whatever
    /// `offset` says, so that appends from several clients never overwrite each other.
    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        self.writable()?;
        let handle = self.handles.get(fh)?;
        if !handle.flags.write {
            return Err(FsError::BadHandle);
        }
        let mut st = handle.inode.lock();
        let offset = if handle.flags.append {
            st.pending.size(self.meta.getattr(self.info.id, handle.ino)?.size)
        } else {
            offset
        };
        if offset.checked_add(data.len() as u64).is_none_or(|e| e > floe_meta::MAX_FILE_SIZE) {
            return Err(FsError::FileTooLarge);
        }
        let cx = self.write_context();
        st.pending.write(&cx, offset, data)?;
        st.pending.uncached |= handle.flags.write_only();
        if st.pending.bytes() >= self.config.write_buffer {
            st.pending.commit(&cx, handle.ino)?;
            st.chunks.clear();
        }
        Ok(data.len() as u32)
    }

    /// Drops setuid/setgid of the handle's file before a write by `caller`, when the
    /// kernel says the writer lacks CAP_FSETID (FUSE_WRITE_KILL_SUIDGID).
    pub fn drop_privileges_for_write(&self, caller: &Caller, fh: u64) -> Result<()> {
        let handle = self.handles.get(fh)?;
        let attr = self.meta.getattr(self.info.id, handle.ino)?;
        self.drop_privileges(caller, &attr)
    }

    /// Clears setuid/setgid of `attr`'s inode when a change by `caller` drops them.
    /// The change is floe's own consequence of an authorized write, made as root.
    fn drop_privileges(&self, caller: &Caller, attr: &Attr) -> Result<()> {
        let perm = floe_meta::drop_privileges(caller, attr);
        if perm != attr.perm {
            let set = SetAttr { mode: Some(perm as u32), ..SetAttr::default() };
            self.meta.setattr(self.info.id, &Caller::root(), attr.ino, &set)?;
        }
        Ok(())
    }

    /// Commits the handle's inode's pending writes (close and fsync).
    pub fn flush(&self, fh: u64) -> Result<()> {
        let handle = self.handles.get(fh)?;
        self.flush_handle(&handle)
    }

    fn flush_handle(&self, handle: &Handle) -> Result<()> {
        let mut st = handle.inode.lock();
        if st.pending.is_empty() {
            return Ok(());
        }
        st.pending.commit(&self.write_context(), handle.ino)?;
        st.chunks.clear();
        Ok(())
    }

    /// Commits the handle's pending writes and makes them durable: their objects were
    /// synced when written (the object store's business), the commit is synced here.
    pub fn fsync(&self, fh: u64) -> Result<()> {
        self.flush(fh)?;
        self.meta.sync()?;
        Ok(())
    }

    /// Closes a handle: commits pending writes and, on the inode's last handle, lets an
    /// unlinked inode go.
    pub fn release(&self, fh: u64) -> Result<()> {
        let handle = self.handles.get(fh)?;
        let flushed = self.flush_handle(&handle);
        let (handle, last) = self.handles.close(fh)?;
        if last && handle.inode.lock().sustained {
            self.meta.release_sustained(self.info.id, self.session, handle.ino)?;
            self.wake_collector();
        }
        flushed
    }

    /// fallocate: allocate (extend) or punch a hole. Like a write, it drops setuid and
    /// setgid when `caller` is not root.
    pub fn fallocate(&self, caller: &Caller, fh: u64, offset: u64, len: u64, mode: i32) -> Result<()> {
        self.writable()?;
        let handle = self.handles.get(fh)?;
        let punch = mode & libc::FALLOC_FL_PUNCH_HOLE != 0;
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        let zero = mode & libc::FALLOC_FL_ZERO_RANGE != 0;
        if mode & !(libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_ZERO_RANGE) != 0 {
            return Err(FsError::NotSupported);
        }
        if punch && !keep_size {
            return Err(FsError::Invalid("FALLOC_FL_PUNCH_HOLE needs FALLOC_FL_KEEP_SIZE"));
        }
        if len == 0 {
            return Err(FsError::Invalid("fallocate of zero bytes"));
        }
        if !handle.flags.write {
            return Err(FsError::BadHandle);
        }
        self.flush_handle(&handle)?;
        self.drop_privileges_for_write(caller, fh)?;
        self.meta.fallocate(self.info.id, handle.ino, offset, len, punch || zero, keep_size)?;
        handle.inode.lock().chunks.clear();
        Ok(())
    }
}

impl Drop for FileSystem {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(error = %e, fs = %self.info.name, "closing the file system lost pending writes");
        }
    }
}
