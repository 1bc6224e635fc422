//! Inode attributes as the metadata engine stores them.

use crate::InodeId;
use std::time::{SystemTime, UNIX_EPOCH};

/// What kind of object an inode is. The numeric values are the ones stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    File = 1,
    Directory = 2,
    Symlink = 3,
    Fifo = 4,
    Socket = 5,
    CharDevice = 6,
    BlockDevice = 7,
}

impl FileKind {
    pub fn from_code(code: i64) -> Option<FileKind> {
        Some(match code {
            1 => FileKind::File,
            2 => FileKind::Directory,
            3 => FileKind::Symlink,
            4 => FileKind::Fifo,
            5 => FileKind::Socket,
            6 => FileKind::CharDevice,
            7 => FileKind::BlockDevice,
            _ => return None,
        })
    }

    /// The kind encoded in the `S_IFMT` bits of a mode.
    pub fn from_mode(mode: u32) -> Option<FileKind> {
        Some(match mode & libc_ifmt::S_IFMT {
            libc_ifmt::S_IFREG => FileKind::File,
            libc_ifmt::S_IFDIR => FileKind::Directory,
            libc_ifmt::S_IFLNK => FileKind::Symlink,
            libc_ifmt::S_IFIFO => FileKind::Fifo,
            libc_ifmt::S_IFSOCK => FileKind::Socket,
            libc_ifmt::S_IFCHR => FileKind::CharDevice,
            libc_ifmt::S_IFBLK => FileKind::BlockDevice,
            _ => return None,
        })
    }
}

/// The `S_IFMT` constants, kept here so that this crate needs no libc.
mod libc_ifmt {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_IFIFO: u32 = 0o010000;
}

/// A point in time, nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct TimeSpec(pub i64);

impl TimeSpec {
    pub fn now() -> TimeSpec {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => TimeSpec(d.as_nanos() as i64),
            Err(e) => TimeSpec(-(e.duration().as_nanos() as i64)),
        }
    }

    pub fn from_system_time(t: SystemTime) -> TimeSpec {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => TimeSpec(d.as_nanos() as i64),
            Err(e) => TimeSpec(-(e.duration().as_nanos() as i64)),
        }
    }

    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + std::time::Duration::from_nanos(self.0 as u64)
        } else {
            UNIX_EPOCH - std::time::Duration::from_nanos(self.0.unsigned_abs())
        }
    }
}

/// The attributes of one inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: InodeId,
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`); no type bits.
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub size: u64,
    pub rdev: u32,
    pub atime: TimeSpec,
    pub mtime: TimeSpec,
    pub ctime: TimeSpec,
    /// For a directory, its parent (the root is its own parent). For other kinds, the
    /// directory it was created in or last renamed into (a hard-linked inode has other
    /// names too); 0 in rows written before floe kept it for every kind.
    pub parent: InodeId,
}

impl Attr {
    /// A new inode as created at `now`: one link (two for a directory: its entry and
    /// its "."), empty, every time `now`.
    pub fn new(ino: InodeId, kind: FileKind, perm: u16, uid: u32, gid: u32, parent: InodeId, now: TimeSpec) -> Attr {
        let nlink = if kind == FileKind::Directory { 2 } else { 1 };
        Attr { ino, kind, perm, uid, gid, nlink, size: 0, rdev: 0, atime: now, mtime: now, ctime: now, parent }
    }
}

/// How a setattr changes a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUpdate {
    Now,
    At(TimeSpec),
}

/// The changes a setattr asks for; `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeUpdate>,
    pub mtime: Option<TimeUpdate>,
    /// The change comes through an open file handle (ftruncate, fchmod): the permission
    /// to write was checked at open.
    pub via_handle: bool,
}
