//! A thin adapter from `fuser`'s callbacks to `floe-fs` operations.
//!
//! Each callback builds the caller's identity, calls one [`FileSystem`] method and
//! turns the result into a reply. No file system logic lives here: permission checks,
//! buffering and consistency are `floe-fs`'s. Not here either: mount-point policy and
//! process management (the `floe` binary decides those).

mod attr;
mod caller;
mod invalidate;
mod lock;

use caller::Callers;
use floe_fs::{
    FileSystem, FsError, InodeId, LockRequest, LockType, RenameFlags, SetAttr, TimeSpec, TimeUpdate, XattrFlags,
};
use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileHandle, FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig,
    LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};
pub use invalidate::Mounts;
use invalidate::Stale;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How a mount talks to the kernel.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// How long the kernel may trust attributes and names without asking again. This is
    /// the bound on how stale another client's changes may look.
    pub ttl: Duration,
    /// Threads serving kernel requests.
    pub threads: usize,
    /// Let users other than the mounting one use the mount (needs root or
    /// `user_allow_other` in /etc/fuse.conf).
    pub allow_other: bool,
    pub read_only: bool,
    /// Let the kernel check permissions with the caller's credentials before floe
    /// does. Off for access point mounts, whose operations run as another identity
    /// the kernel does not know: floe's own checks are the only ones there.
    pub default_permissions: bool,
    /// Serve this access point: its directory is the mount's root and its identity
    /// every operation's.
    pub access_point: Option<floe_meta::AccessPointId>,
    /// Where callers see the mount's root (default: the mount point); symlinks
    /// resolved inside an access point are returned under it.
    pub visible_root: Option<std::path::PathBuf>,
}

impl Default for MountOptions {
    fn default() -> MountOptions {
        MountOptions {
            ttl: Duration::from_secs(1),
            threads: 4,
            allow_other: false,
            read_only: false,
            default_permissions: true,
            access_point: None,
            visible_root: None,
        }
    }
}

/// The `fuser::Filesystem` of one mount of a floe file system.
pub struct FloeFuse {
    fs: Arc<FileSystem>,
    ttl: Duration,
    callers: Callers,
    /// What this mount shows: its root and, through an access point, whose identity.
    view: floe_fs::View,
    /// This mount among the client's mounts.
    id: u64,
    /// Lock owners by the open files they locked through.
    lock_handles: lock::LockHandles,
    mounts: Arc<Mounts>,
}

fn config(name: &str, options: &MountOptions) -> fuser::Config {
    let mut c = fuser::Config::default();
    c.mount_options = vec![
        MountOption::FSName(format!("floe:{name}")),
        MountOption::Subtype("floe".into()),
        MountOption::NoDev,
        MountOption::Suid,
        MountOption::Exec,
        // floe does not update atime on reads (a read would cost a metadata commit on a
        // shared file system); the mount says so, as `noatime` does on a local disk.
        MountOption::NoAtime,
        if options.read_only { MountOption::RO } else { MountOption::RW },
    ];
    // With default_permissions the kernel checks permissions against cached
    // attributes with the caller's full credentials, on every path walk, as on a local
    // file system (without it, a cached name skips the search-permission check). floe
    // checks again inside each metadata transaction, which is what holds across
    // clients. Through an access point every caller has the same identity, so a name
    // one caller cached is one any other caller could look up too.
    if options.default_permissions {
        c.mount_options.push(MountOption::DefaultPermissions);
    }
    c.acl = if options.allow_other { fuser::SessionACL::All } else { fuser::SessionACL::Owner };
    c.n_threads = Some(options.threads.max(1));
    c.clone_fd = true;
    c
}

/// One client: a file system as this process serves it, through one or more mounts
/// whose kernel caches it keeps coherent with each other.
pub struct Client {
    fs: Arc<FileSystem>,
    mounts: Arc<Mounts>,
}

impl Client {
    pub fn new(fs: Arc<FileSystem>) -> Client {
        let mounts = Arc::new(Mounts::default());
        let hook = Arc::downgrade(&mounts);
        // A lock taken through any mount revalidates the file in every mount's kernel.
        fs.on_revalidate(Box::new(move |ino| {
            if let Some(mounts) = hook.upgrade() {
                mounts.notify(None, vec![Stale::data(ino)]);
            }
        }));
        Client { fs, mounts }
    }

    pub fn fs(&self) -> &Arc<FileSystem> {
        &self.fs
    }

    /// Mounts the file system at `dir` and serves it on background threads until the
    /// returned session is unmounted or dropped.
    pub fn mount(&self, dir: &Path, options: &MountOptions) -> std::io::Result<fuser::BackgroundSession> {
        let cfg = config(&self.fs.info().name, options);
        let view = match &options.access_point {
            None => self.fs.plain_view(),
            Some(ap) => {
                let visible = options.visible_root.clone().unwrap_or_else(|| dir.to_path_buf());
                self.fs.access_point_view(ap, visible).map_err(std::io::Error::other)?
            }
        };
        let root = view.root();
        let id = self.mounts.reserve();
        let fuse = FloeFuse {
            view,
            fs: Arc::clone(&self.fs),
            ttl: options.ttl,
            callers: Callers::default(),
            id,
            lock_handles: lock::LockHandles::default(),
            mounts: Arc::clone(&self.mounts),
        };
        let session = fuser::spawn_mount(fuse, dir, &cfg)?;
        self.mounts.attach(id, root, session.notifier());
        Ok(session)
    }
}

/// Mounts `fs` at `dir` as a client of its own (see [`Client::mount`]).
pub fn spawn_mount(
    fs: Arc<FileSystem>,
    dir: &Path,
    options: &MountOptions,
) -> std::io::Result<fuser::BackgroundSession> {
    Client::new(fs).mount(dir, options)
}

fn errno(e: FsError) -> Errno {
    if matches!(e, FsError::Store(_) | FsError::Meta(floe_meta::MetaError::Backend(_))) {
        tracing::error!(error = %e, "I/O error");
    }
    Errno::from_i32(e.errno())
}

fn time_update(t: Option<TimeOrNow>) -> Option<TimeUpdate> {
    t.map(|t| match t {
        TimeOrNow::Now => TimeUpdate::Now,
        TimeOrNow::SpecificTime(s) => TimeUpdate::At(TimeSpec::from_system_time(s)),
    })
}

/// The kernel knows a mount's root as node 1, which is the mount's root directory
/// (an access point's); floe's inode 1 takes that directory's number instead. The
/// mapping is a swap, so the same function turns floe inodes into node ids and back.
pub(crate) fn node_id(root: InodeId, i: InodeId) -> INodeNo {
    INodeNo(if i == root {
        InodeId::ROOT.0
    } else if i == InodeId::ROOT {
        root.0
    } else {
        i.0
    })
}

impl FloeFuse {
    /// The floe inode behind a kernel node id (see [`node_id`]).
    fn ino(&self, n: INodeNo) -> InodeId {
        InodeId(node_id(self.view.root(), InodeId(n.0)).0)
    }

    fn kernel_ino(&self, i: InodeId) -> INodeNo {
        node_id(self.view.root(), i)
    }

    fn attr(&self, a: &floe_fs::Attr) -> fuser::FileAttr {
        let mut out = attr::to_fuse(a);
        out.ino = self.kernel_ino(a.ino);
        out
    }

    /// The identity a request runs as (see [`FileSystem::identity`]).
    fn caller(&self, req: &Request) -> floe_fs::Caller {
        self.fs.identity(&self.view, self.callers.of(req))
    }

    fn entry(&self, reply: ReplyEntry, result: floe_fs::Result<floe_fs::Attr>) {
        match result {
            Ok(a) => reply.entry(&self.ttl, &self.attr(&a), Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    /// Makes the client's other mounts forget what a successful change made stale.
    fn changed<T>(&self, result: &floe_fs::Result<T>, stale: impl FnOnce() -> Vec<Stale>) {
        if result.is_ok() && self.mounts.has_others(self.id) {
            self.mounts.notify(Some(self.id), stale());
        }
    }
}

fn empty(reply: ReplyEmpty, result: floe_fs::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

fn xattr_reply(reply: ReplyXattr, data: Vec<u8>, size: u32) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::from_i32(libc::ERANGE));
    } else {
        reply.data(&data);
    }
}

impl fuser::Filesystem for FloeFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_AUTO_INVAL_DATA,
            InitFlags::FUSE_MAX_PAGES,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            // floe drops setuid/setgid itself on writes, truncates and chowns, with the
            // rules of a local file system; the kernel only says when the writer lacks
            // CAP_FSETID.
            InitFlags::FUSE_HANDLE_KILLPRIV_V2,
            // Without these the kernel keeps fcntl and flock locks to itself, local to
            // one machine; with them every lock goes to floe and holds across clients.
            InitFlags::FUSE_POSIX_LOCKS,
            InitFlags::FUSE_FLOCK_LOCKS,
        ] {
            // A kernel without one of these simply runs without it.
            let _ = config.add_capabilities(flag);
        }
        Ok(())
    }

    fn destroy(&mut self) {
        self.mounts.detach(self.id);
        // The client's last mount closes the file system; the others share it.
        if !self.mounts.has_others(self.id) {
            if let Err(e) = self.fs.close() {
                tracing::error!(error = %e, "unmount could not commit every pending write");
            }
        }
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let caller = self.caller(req);
        self.entry(reply, self.fs.lookup_in(&self.view, &caller, self.ino(parent), name.as_bytes()))
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(self.ino(ino)) {
            Ok(a) => reply.attr(&self.ttl, &self.attr(&a)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let caller = self.caller(req);
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: time_update(atime),
            mtime: time_update(mtime),
            via_handle: fh.is_some(),
        };
        let result = self.fs.setattr(&caller, self.ino(ino), &set);
        let ino = self.ino(ino);
        self.changed(&result, || vec![if size.is_some() { Stale::data(ino) } else { Stale::attrs(ino) }]);
        match result {
            Ok(a) => reply.attr(&self.ttl, &self.attr(&a)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink_in(&self.view, &self.caller(req), self.ino(ino)) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32, reply: ReplyEntry) {
        let caller = self.caller(req);
        let result = self.fs.mknod(&caller, self.ino(parent), name.as_bytes(), mode, umask, rdev);
        self.changed(&result, || vec![Stale::entry(self.ino(parent), name)]);
        self.entry(reply, result)
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let caller = self.caller(req);
        let result = self.fs.mkdir(&caller, self.ino(parent), name.as_bytes(), mode, umask);
        self.changed(&result, || vec![Stale::entry(self.ino(parent), name)]);
        self.entry(reply, result)
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let caller = self.caller(req);
        let result = self.fs.unlink(&caller, self.ino(parent), name.as_bytes());
        self.changed(&result, || vec![Stale::entry(self.ino(parent), name)]);
        empty(reply, result)
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let caller = self.caller(req);
        let result = self.fs.rmdir(&caller, self.ino(parent), name.as_bytes());
        self.changed(&result, || vec![Stale::entry(self.ino(parent), name)]);
        empty(reply, result)
    }

    fn symlink(&self, req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let caller = self.caller(req);
        let result = self.fs.symlink(&caller, self.ino(parent), link_name.as_bytes(), target.as_os_str().as_bytes());
        self.changed(&result, || vec![Stale::entry(self.ino(parent), link_name)]);
        self.entry(reply, result)
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(fuser::RenameFlags::RENAME_WHITEOUT) {
            return reply.error(Errno::from_i32(libc::EINVAL));
        }
        let caller = self.caller(req);
        let flags = RenameFlags {
            no_replace: flags.contains(fuser::RenameFlags::RENAME_NOREPLACE),
            exchange: flags.contains(fuser::RenameFlags::RENAME_EXCHANGE),
        };
        let result =
            self.fs.rename(&caller, self.ino(parent), name.as_bytes(), self.ino(newparent), newname.as_bytes(), flags);
        self.changed(&result, || {
            vec![Stale::entry(self.ino(parent), name), Stale::entry(self.ino(newparent), newname)]
        });
        empty(reply, result)
    }

    fn link(&self, req: &Request, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let caller = self.caller(req);
        let result = self.fs.link(&caller, self.ino(ino), self.ino(newparent), newname.as_bytes());
        self.changed(&result, || vec![Stale::entry(self.ino(newparent), newname), Stale::attrs(self.ino(ino))]);
        self.entry(reply, result)
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let caller = self.caller(req);
        let ino = self.ino(ino);
        match self.fs.open(&caller, ino, flags.0) {
            Ok(o) => {
                // An O_TRUNC open changes the data; one that finds the cache invalid
                // (another client changed the file since this one last opened it,
                // close-to-open) drops this mount's pages by leaving out
                // FOPEN_KEEP_CACHE, and its attributes (the size reads stop at) here.
                // Either way the client's other mounts drop theirs.
                if (!o.cache_valid || flags.0 & libc::O_TRUNC != 0) && self.mounts.has_others(self.id) {
                    self.mounts.notify(Some(self.id), vec![Stale::data(ino)]);
                }
                let mut fopen = FopenFlags::empty();
                if o.cache_valid {
                    fopen |= FopenFlags::FOPEN_KEEP_CACHE;
                } else {
                    self.mounts.forget_attrs_now(self.id, ino);
                }
                // A close with nothing to commit and no lock to release costs no round
                // trip (ADR 15).
                if !o.flush_on_close {
                    fopen |= FopenFlags::FOPEN_NOFLUSH;
                }
                // A write-only handle's writes go straight to floe (ADR 17).
                if floe_fs::OpenFlags::from_libc(flags.0).write_only() {
                    fopen |= FopenFlags::FOPEN_DIRECT_IO;
                }
                reply.opened(FileHandle(o.fh), fopen)
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.fs.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        if write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID) {
            if let Err(e) = self.fs.drop_privileges_for_write(&self.caller(req), fh.0) {
                return reply.error(errno(e));
            }
        }
        let result = self.fs.write(fh.0, offset, data);
        self.changed(&result, || {
            vec![Stale::Inode { ino: self.ino(ino), offset: offset as i64, len: data.len() as i64 }]
        });
        match result {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno(e)),
        }
    }

    /// Every close(2). POSIX: any close by a process drops the fcntl locks it holds on
    /// the file (`lock_owner` is the process's file table).
    fn flush(&self, _req: &Request, ino: INodeNo, fh: FileHandle, lock_owner: LockOwner, reply: ReplyEmpty) {
        let flushed = self.fs.flush(fh.0);
        let released = self.fs.release_locks(self.ino(ino), lock_owner.0);
        empty(reply, flushed.and(released))
    }

    /// The last close of an open file; with `lock_owner` (FUSE_RELEASE_FLOCK_UNLOCK),
    /// the file held a flock, released here, as are the open file description locks
    /// taken through it (see `lock::LockHandles`).
    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // A flock's owner (the `lock_owner` of FUSE_RELEASE_FLOCK_UNLOCK) locked through
        // this handle like any other owner: the handle table decides, so that a new
        // open file that reuses the owner's number keeps its lock.
        let ino = self.ino(ino);
        let mut released = Ok(());
        self.lock_handles.close(fh.0, |owner| {
            if let Err(e) = self.fs.release_locks(ino, owner) {
                released = Err(e);
            }
        });
        let closed = self.fs.release(fh.0);
        empty(reply, released.and(closed))
    }

    /// F_GETLK. The kernel cannot tell us whether it is fcntl or flock (fuser drops
    /// `lk_flags`); both are byte-range records here (see docs/adr).
    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let Some(typ) = lock::lock_type(typ) else { return reply.error(Errno::from_i32(libc::EINVAL)) };
        let request = LockRequest { owner: lock_owner.0, typ, start, end, pid };
        match self.fs.getlk(self.ino(ino), &request) {
            Ok(Some(h)) => reply.locked(h.start, h.end, lock::libc_type(h.typ), h.pid),
            Ok(None) => reply.locked(start, end, libc::F_UNLCK, 0),
            Err(e) => reply.error(errno(e)),
        }
    }

    /// F_SETLK(W) and flock. A request that may sleep is handed to floe-fs's waiter
    /// with the reply, so that no FUSE thread sleeps on a lock.
    fn setlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let Some(typ) = lock::lock_type(typ) else { return reply.error(Errno::from_i32(libc::EINVAL)) };
        let request = LockRequest { owner: lock_owner.0, typ, start, end, pid };
        let ino = self.ino(ino);
        if typ != LockType::Unlock {
            // Recorded before the lock is granted: a release racing the grant then
            // still finds the owner.
            self.lock_handles.took(fh.0, lock_owner.0);
        }
        if sleep && typ != LockType::Unlock {
            let tid = req.pid();
            self.fs.setlk_wait(
                ino,
                &request,
                Box::new(move || lock::signal_pending(tid)),
                Box::new(move |outcome| empty(reply, outcome)),
            );
        } else {
            empty(reply, self.fs.setlk(ino, &request))
        }
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        empty(reply, self.fs.fsync(fh.0))
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let caller = self.caller(req);
        match self.fs.opendir(&caller, self.ino(ino)) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        empty(reply, self.fs.release(fh.0))
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let dir = self.ino(ino);
        if offset < 1 && reply.add(ino, 1, fuser::FileType::Directory, ".") {
            return reply.ok();
        }
        if offset < 2 {
            let parent = match self.fs.parent_in(&self.view, dir) {
                Ok(p) => p.ino,
                Err(e) => return reply.error(errno(e)),
            };
            if reply.add(self.kernel_ino(parent), 2, fuser::FileType::Directory, "..") {
                return reply.ok();
            }
        }
        match self.fs.readdir(dir, offset.saturating_sub(2), 512, false) {
            Ok(entries) => {
                for e in entries {
                    if reply.add(self.kernel_ino(e.ino), e.cookie + 2, attr::kind(e.kind), OsStr::from_bytes(&e.name)) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let dir = self.ino(ino);
        if offset < 2 {
            let (me, parent) = match self.fs.getattr(dir).and_then(|d| Ok((self.fs.parent_in(&self.view, dir)?, d))) {
                Ok((p, d)) => (d, p),
                Err(e) => return reply.error(errno(e)),
            };
            if offset < 1 && reply.add(ino, 1, ".", &self.ttl, &self.attr(&me), Generation(0)) {
                return reply.ok();
            }
            if reply.add(self.kernel_ino(parent.ino), 2, "..", &self.ttl, &self.attr(&parent), Generation(0)) {
                return reply.ok();
            }
        }
        match self.fs.readdir(dir, offset.saturating_sub(2), 256, true) {
            Ok(entries) => {
                for e in entries {
                    let Some(a) = &e.attr else { continue };
                    let name = OsStr::from_bytes(&e.name);
                    if reply.add(self.kernel_ino(e.ino), e.cookie + 2, name, &self.ttl, &self.attr(a), Generation(0)) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Like EFS, the file system is elastic: report a very large capacity.
        const BLOCK: u64 = 4096;
        const TOTAL_BLOCKS: u64 = (1 << 50) / BLOCK;
        const TOTAL_FILES: u64 = 1 << 40;
        match self.fs.statfs() {
            Ok(s) => {
                let used = s.used_bytes.div_ceil(BLOCK).min(TOTAL_BLOCKS);
                let free = TOTAL_BLOCKS - used;
                let files_free = TOTAL_FILES.saturating_sub(s.used_inodes);
                reply.statfs(TOTAL_BLOCKS, free, free, TOTAL_FILES, files_free, BLOCK as u32, 255, BLOCK as u32)
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let caller = self.caller(req);
        let flags = XattrFlags { create: flags & libc::XATTR_CREATE != 0, replace: flags & libc::XATTR_REPLACE != 0 };
        let result = self.fs.set_xattr(&caller, self.ino(ino), name.as_bytes(), value, flags);
        self.changed(&result, || vec![Stale::attrs(self.ino(ino))]);
        empty(reply, result)
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let caller = self.caller(req);
        match self.fs.get_xattr(&caller, self.ino(ino), name.as_bytes()) {
            Ok(v) => xattr_reply(reply, v, size),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let caller = self.caller(req);
        match self.fs.list_xattrs(&caller, self.ino(ino)) {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in names {
                    buf.extend_from_slice(&n);
                    buf.push(0);
                }
                xattr_reply(reply, buf, size)
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let caller = self.caller(req);
        let result = self.fs.remove_xattr(&caller, self.ino(ino), name.as_bytes());
        self.changed(&result, || vec![Stale::attrs(self.ino(ino))]);
        empty(reply, result)
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let caller = self.caller(req);
        empty(reply, self.fs.access(&caller, self.ino(ino), mask.bits() as u32))
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let caller = self.caller(req);
        let result = self.fs.create(&caller, self.ino(parent), name.as_bytes(), mode, umask, flags);
        self.changed(&result, || vec![Stale::entry(self.ino(parent), name)]);
        match result {
            Ok((fh, a)) => {
                let mut fopen = FopenFlags::FOPEN_KEEP_CACHE;
                if floe_fs::OpenFlags::from_libc(flags).write_only() {
                    fopen |= FopenFlags::FOPEN_DIRECT_IO;
                }
                reply.created(&self.ttl, &self.attr(&a), Generation(0), FileHandle(fh), fopen)
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    /// No ioctl is floe's. The kernel forwards every one a file gets, among them the
    /// TCGETS behind isatty(3) that Python's open() makes on each file: answered as a
    /// local file system would, without fuser's warning in the log for each.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::from_i32(libc::ENOTTY))
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self.fs.fallocate(&self.caller(req), fh.0, offset, length, mode);
        self.changed(&result, || vec![Stale::data(self.ino(ino))]);
        empty(reply, result)
    }

    /// The kernel seeks with SEEK_SET, SEEK_CUR and SEEK_END itself and asks only for
    /// SEEK_DATA and SEEK_HOLE, which need the file's map of holes.
    fn lseek(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: i64, whence: i32, reply: ReplyLseek) {
        let hole = match whence {
            libc::SEEK_DATA => false,
            libc::SEEK_HOLE => true,
            _ => return reply.error(Errno::from_i32(libc::EINVAL)),
        };
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(Errno::from_i32(libc::ENXIO));
        };
        match self.fs.seek(fh.0, offset, hole) {
            Ok(at) => reply.offset(at as i64),
            Err(e) => reply.error(errno(e)),
        }
    }
}
