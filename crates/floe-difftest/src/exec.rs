//! Applying an operation to one side (a directory and its open handles) and capturing
//! the outcome.

use crate::compare::Ino;
use crate::op::{pattern, Op, RenameHow, Time, XattrHow, HANDLES};
use crate::outcome::{Meta, Outcome};
use crate::script::is_safe_relative;
use crate::sys::{self, SysResult};
use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One side: a run directory, its open-file slots, and the files whose data changed
/// since the last tree comparison.
pub struct Side {
    root: PathBuf,
    handles: Vec<Option<OwnedFd>>,
    /// Inodes written, truncated or allocated since [`Side::take_touched`].
    pub touched: HashSet<Ino>,
}

fn timespec(t: Time) -> libc::timespec {
    match t {
        Time::Omit => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        Time::Now => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        Time::At { sec, nsec } => libc::timespec { tv_sec: sec, tv_nsec: i64::from(nsec) },
    }
}

impl Side {
    /// A side working in `root`, with no open handles.
    pub fn new(root: PathBuf) -> Side {
        Side { root, handles: (0..HANDLES).map(|_| None).collect(), touched: HashSet::new() }
    }

    /// The run directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `rel`; an unsafe path (absolute or with `..`) is `EINVAL`.
    fn path(&self, rel: &str) -> SysResult<PathBuf> {
        if !is_safe_relative(rel) {
            return Err(libc::EINVAL);
        }
        Ok(if rel == "." { self.root.clone() } else { self.root.join(rel) })
    }

    fn fd(&self, h: u8) -> SysResult<BorrowedFd<'_>> {
        self.handles.get(usize::from(h)).and_then(Option::as_ref).map(OwnedFd::as_fd).ok_or(libc::EBADF)
    }

    /// Whether handle slot `h` holds an open file.
    pub fn is_open(&self, h: u8) -> bool {
        self.fd(h).is_ok()
    }

    /// Applies `op`; with `corrupt`, data it writes has its first byte inverted.
    pub fn apply(&mut self, op: &Op, corrupt: bool) -> Outcome {
        let outcome = self.try_apply(op, corrupt).unwrap_or_else(Outcome::Err);
        self.note_touched(op);
        outcome
    }

    /// Remembers the file whose data `op` may have changed.
    fn note_touched(&mut self, op: &Op) {
        let st = match op {
            Op::Pwrite { h, .. }
            | Op::Write { h, .. }
            | Op::Ftruncate { h, .. }
            | Op::Fallocate { h, .. }
            | Op::Open { h, .. } => self.fd(*h).and_then(sys::fstat),
            Op::Truncate { path, .. } => self.path(path).and_then(|p| sys::stat(&p, true)),
            _ => return,
        };
        if let Ok(st) = st {
            self.touched.insert((st.st_dev, st.st_ino));
        }
    }

    fn data(len: u32, fill: u64, corrupt: bool) -> Vec<u8> {
        let mut data = pattern(fill, len as usize);
        if corrupt {
            if let Some(b) = data.first_mut() {
                *b = !*b;
            }
        }
        data
    }

    fn try_apply(&mut self, op: &Op, corrupt: bool) -> SysResult<Outcome> {
        Ok(match op {
            Op::Open { h, path, flags, mode } => {
                let slot = self.handles.get_mut(usize::from(*h)).ok_or(libc::EBADF)?;
                if let Some(old) = slot.take() {
                    // Reusing the slot closes what it held; that close is not compared.
                    let _ = sys::close(old);
                }
                let path = self.path(path)?;
                self.handles[usize::from(*h)] = Some(sys::open(&path, flags.0, *mode)?);
                Outcome::Done
            }
            Op::Close { h } => {
                let fd = self.handles.get_mut(usize::from(*h)).and_then(Option::take).ok_or(libc::EBADF)?;
                sys::close(fd)?;
                Outcome::Done
            }
            Op::Pwrite { h, off, len, fill } => {
                Outcome::Count(sys::pwrite(self.fd(*h)?, &Self::data(*len, *fill, corrupt), *off)?)
            }
            Op::Write { h, len, fill } => Outcome::Count(sys::write(self.fd(*h)?, &Self::data(*len, *fill, corrupt))?),
            Op::Pread { h, off, len } => Outcome::Data(sys::pread(self.fd(*h)?, *len as usize, *off)?),
            Op::Read { h, len } => Outcome::Data(sys::read(self.fd(*h)?, *len as usize)?),
            Op::Ftruncate { h, len } => {
                sys::ftruncate(self.fd(*h)?, *len)?;
                Outcome::Done
            }
            Op::Truncate { path, len } => {
                sys::truncate(&self.path(path)?, *len)?;
                Outcome::Done
            }
            Op::Fsync { h } => {
                sys::fsync(self.fd(*h)?)?;
                Outcome::Done
            }
            Op::Fallocate { h, punch, off, len } => {
                let mode = if *punch { libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE } else { 0 };
                sys::fallocate(self.fd(*h)?, mode, *off, *len)?;
                Outcome::Done
            }
            Op::Fstat { h } => Outcome::Meta(Meta::from_stat(&sys::fstat(self.fd(*h)?)?)),
            Op::Stat { path, follow } => Outcome::Meta(Meta::from_stat(&sys::stat(&self.path(path)?, *follow)?)),
            Op::Mkdir { path, mode } => {
                sys::mkdir(&self.path(path)?, *mode)?;
                Outcome::Done
            }
            Op::Rmdir { path } => {
                sys::rmdir(&self.path(path)?)?;
                Outcome::Done
            }
            Op::Unlink { path } => {
                sys::unlink(&self.path(path)?)?;
                Outcome::Done
            }
            Op::Rename { from, to, how } => {
                let flags = match how {
                    RenameHow::Plain => 0,
                    RenameHow::NoReplace => libc::RENAME_NOREPLACE,
                    RenameHow::Exchange => libc::RENAME_EXCHANGE,
                };
                sys::renameat2(&self.path(from)?, &self.path(to)?, flags)?;
                Outcome::Done
            }
            Op::Link { from, to } => {
                sys::link(&self.path(from)?, &self.path(to)?)?;
                Outcome::Done
            }
            Op::Symlink { target, path } => {
                // Targets are checked like paths, so nothing resolves outside the run directory.
                if !is_safe_relative(target) {
                    return Err(libc::EINVAL);
                }
                sys::symlink(target.as_bytes(), &self.path(path)?)?;
                Outcome::Done
            }
            Op::Readlink { path } => Outcome::Bytes(sys::readlink(&self.path(path)?)?),
            Op::Chmod { path, mode } => {
                sys::chmod(&self.path(path)?, *mode)?;
                Outcome::Done
            }
            Op::Chown { path, owner, group, follow } => {
                sys::chown(&self.path(path)?, *owner, *group, *follow)?;
                Outcome::Done
            }
            Op::Utimens { path, atime, mtime, follow } => {
                let path = self.path(path)?;
                sys::utimensat(&path, [timespec(*atime), timespec(*mtime)], *follow)?;
                if let Time::At { .. } = mtime {
                    // Only an explicitly set mtime is comparable.
                    let st = sys::stat(&path, *follow)?;
                    Outcome::Mtime { sec: st.st_mtime, nsec: st.st_mtime_nsec }
                } else {
                    Outcome::Done
                }
            }
            Op::Readdir { path } => Outcome::Names(sys::list_dir(&self.path(path)?)?),
            Op::Setxattr { path, name, len, fill, how } => {
                let flags = match how {
                    XattrHow::Any => 0,
                    XattrHow::Create => libc::XATTR_CREATE,
                    XattrHow::Replace => libc::XATTR_REPLACE,
                };
                sys::setxattr(&self.path(path)?, name.as_bytes(), &pattern(*fill, *len as usize), flags)?;
                Outcome::Done
            }
            Op::Getxattr { path, name } => Outcome::Bytes(sys::getxattr(&self.path(path)?, name.as_bytes(), true)?),
            Op::Listxattr { path } => {
                let names = sys::listxattr(&self.path(path)?, true)?;
                Outcome::Names(names.into_iter().filter(|n| n.starts_with(b"user.")).collect())
            }
            Op::Removexattr { path, name } => {
                sys::removexattr(&self.path(path)?, name.as_bytes())?;
                Outcome::Done
            }
            Op::Access { path, mode } => {
                sys::access_as_fs_ids(&self.path(path)?, *mode)?;
                Outcome::Done
            }
            // The umask is the thread's, shared by both sides: the pair sets it once.
            Op::Umask { .. } => Outcome::Done,
        })
    }

    /// Creates an empty file directly in the run directory (for the extra-file fault).
    pub fn create_stray_file(&self, name: &str) {
        let p = self.root.join(name);
        if let Ok(fd) = sys::open(&p, libc::O_WRONLY | libc::O_CREAT, 0o644) {
            let _ = sys::close(fd);
        }
    }

    /// Closes every open handle, returning each slot's close outcome (`None` for an
    /// empty slot).
    pub fn close_all(&mut self) -> Vec<Option<Outcome>> {
        (0..HANDLES).map(|h| self.is_open(h).then(|| self.apply(&Op::Close { h }, false))).collect()
    }
}
