//! The operations the tester applies to both directories, and their one-line text
//! form (which [`crate::script`] parses back).

use std::fmt;

/// How many open-file slots each side keeps: handle `i` on side A corresponds to
/// handle `i` on side B.
pub const HANDLES: u8 = 8;

/// A time for utimensat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Time {
    /// `UTIME_OMIT`: leave unchanged.
    Omit,
    /// `UTIME_NOW`: the current time (not compared).
    Now,
    /// An explicit time (compared for mtime).
    At { sec: i64, nsec: u32 },
}

/// The flavour of rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameHow {
    Plain,
    /// `RENAME_NOREPLACE`.
    NoReplace,
    /// `RENAME_EXCHANGE`.
    Exchange,
}

/// The flags of setxattr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrHow {
    Any,
    /// `XATTR_CREATE`.
    Create,
    /// `XATTR_REPLACE`.
    Replace,
}

/// Open flags (libc values; `O_CLOEXEC` is always added when opening).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFlags(pub i32);

/// The optional open flags and their names in the text form.
pub const OPEN_FLAG_NAMES: [(i32, &str); 6] = [
    (libc::O_CREAT, "CREAT"),
    (libc::O_EXCL, "EXCL"),
    (libc::O_TRUNC, "TRUNC"),
    (libc::O_APPEND, "APPEND"),
    (libc::O_DIRECTORY, "DIRECTORY"),
    (libc::O_NOFOLLOW, "NOFOLLOW"),
];

/// The access modes and their names in the text form.
pub const ACCESS_MODE_NAMES: [(i32, &str); 3] =
    [(libc::O_RDONLY, "RDONLY"), (libc::O_WRONLY, "WRONLY"), (libc::O_RDWR, "RDWR")];

/// One file-system operation. Paths are relative to the run directory, use only
/// downward components (no `..`, not absolute) and `.` names the run directory itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// open(2) into handle slot `h` (closing what the slot held).
    Open {
        h: u8,
        path: String,
        flags: OpenFlags,
        mode: u32,
    },
    Close {
        h: u8,
    },
    /// pwrite(2) of `len` bytes of the pattern seeded by `fill`.
    Pwrite {
        h: u8,
        off: u64,
        len: u32,
        fill: u64,
    },
    /// write(2) at the handle's current offset.
    Write {
        h: u8,
        len: u32,
        fill: u64,
    },
    Pread {
        h: u8,
        off: u64,
        len: u32,
    },
    /// read(2) at the handle's current offset.
    Read {
        h: u8,
        len: u32,
    },
    Ftruncate {
        h: u8,
        len: u64,
    },
    Truncate {
        path: String,
        len: u64,
    },
    Fsync {
        h: u8,
    },
    /// fallocate(2): mode 0, or `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` when `punch`.
    Fallocate {
        h: u8,
        punch: bool,
        off: u64,
        len: u64,
    },
    Fstat {
        h: u8,
    },
    /// stat(2) when `follow`, else lstat(2).
    Stat {
        path: String,
        follow: bool,
    },
    Mkdir {
        path: String,
        mode: u32,
    },
    Rmdir {
        path: String,
    },
    Unlink {
        path: String,
    },
    Rename {
        from: String,
        to: String,
        how: RenameHow,
    },
    Link {
        from: String,
        to: String,
    },
    Symlink {
        target: String,
        path: String,
    },
    Readlink {
        path: String,
    },
    Chmod {
        path: String,
        mode: u32,
    },
    /// chown(2) when `follow`, else lchown(2); `None` keeps that id.
    Chown {
        path: String,
        owner: Option<u32>,
        group: Option<u32>,
        follow: bool,
    },
    Utimens {
        path: String,
        atime: Time,
        mtime: Time,
        follow: bool,
    },
    Readdir {
        path: String,
    },
    /// setxattr(2) of `len` bytes of the pattern seeded by `fill`.
    Setxattr {
        path: String,
        name: String,
        len: u32,
        fill: u64,
        how: XattrHow,
    },
    Getxattr {
        path: String,
        name: String,
    },
    Listxattr {
        path: String,
    },
    Removexattr {
        path: String,
        name: String,
    },
    /// faccessat2(2) with `AT_EACCESS`; `mode` is a mix of `R_OK`, `W_OK`, `X_OK` (0 = `F_OK`).
    Access {
        path: String,
        mode: i32,
    },
    /// umask(2) on the tester's thread (which has its own umask); both sides share it.
    Umask {
        mask: u32,
    },
}

/// An operation, the identity that runs it and its index in the generated sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Position in the originally generated sequence (kept through minimization).
    pub index: usize,
    /// The uid (with gid = uid) the operation runs as.
    pub uid: u32,
    pub op: Op,
}

impl Op {
    /// The operation's name in the text form.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Open { .. } => "open",
            Op::Close { .. } => "close",
            Op::Pwrite { .. } => "pwrite",
            Op::Write { .. } => "write",
            Op::Pread { .. } => "pread",
            Op::Read { .. } => "read",
            Op::Ftruncate { .. } => "ftruncate",
            Op::Truncate { .. } => "truncate",
            Op::Fsync { .. } => "fsync",
            Op::Fallocate { .. } => "fallocate",
            Op::Fstat { .. } => "fstat",
            Op::Stat { .. } => "stat",
            Op::Mkdir { .. } => "mkdir",
            Op::Rmdir { .. } => "rmdir",
            Op::Unlink { .. } => "unlink",
            Op::Rename { .. } => "rename",
            Op::Link { .. } => "link",
            Op::Symlink { .. } => "symlink",
            Op::Readlink { .. } => "readlink",
            Op::Chmod { .. } => "chmod",
            Op::Chown { .. } => "chown",
            Op::Utimens { .. } => "utimens",
            Op::Readdir { .. } => "readdir",
            Op::Setxattr { .. } => "setxattr",
            Op::Getxattr { .. } => "getxattr",
            Op::Listxattr { .. } => "listxattr",
            Op::Removexattr { .. } => "removexattr",
            Op::Access { .. } => "access",
            Op::Umask { .. } => "umask",
        }
    }

    /// Whether this writes at least one byte of file data (what the write fault corrupts).
    pub fn writes_data(&self) -> bool {
        matches!(self, Op::Pwrite { len, .. } | Op::Write { len, .. } if *len > 0)
    }
}

/// The bytes of the data pattern seeded by `fill` (xorshift64*), `len` long.
pub fn pattern(fill: u64, len: usize) -> Vec<u8> {
    let mut x = fill | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Encodes a string as one token: safe characters as they are, others as `%XX`, and the
/// empty string as `~`.
pub fn encode(s: &str) -> String {
    if s.is_empty() {
        return "~".to_string();
    }
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"._/-+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for OpenFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let acc = self.0 & libc::O_ACCMODE;
        let name = ACCESS_MODE_NAMES.iter().find(|(v, _)| *v == acc).map_or("ACC?", |(_, n)| n);
        write!(f, "{name}")?;
        for (bit, name) in OPEN_FLAG_NAMES {
            if self.0 & bit != 0 {
                write!(f, "|{name}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Time::Omit => write!(f, "omit"),
            Time::Now => write!(f, "now"),
            Time::At { sec, nsec } => write!(f, "{sec}:{nsec}"),
        }
    }
}

impl fmt::Display for RenameHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RenameHow::Plain => "plain",
            RenameHow::NoReplace => "noreplace",
            RenameHow::Exchange => "exchange",
        })
    }
}

impl fmt::Display for XattrHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XattrHow::Any => "any",
            XattrHow::Create => "create",
            XattrHow::Replace => "replace",
        })
    }
}

fn id(v: &Option<u32>) -> String {
    v.map_or_else(|| "keep".to_string(), |v| v.to_string())
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = |s: &String| encode(s);
        write!(f, "{}", self.name())?;
        match self {
            Op::Open { h, path, flags, mode } => write!(f, " h={h} path={} flags={flags} mode={mode:#o}", e(path)),
            Op::Close { h } | Op::Fsync { h } | Op::Fstat { h } => write!(f, " h={h}"),
            Op::Pwrite { h, off, len, fill } => write!(f, " h={h} off={off} len={len} fill={fill}"),
            Op::Write { h, len, fill } => write!(f, " h={h} len={len} fill={fill}"),
            Op::Pread { h, off, len } => write!(f, " h={h} off={off} len={len}"),
            Op::Read { h, len } => write!(f, " h={h} len={len}"),
            Op::Ftruncate { h, len } => write!(f, " h={h} len={len}"),
            Op::Truncate { path, len } => write!(f, " path={} len={len}", e(path)),
            Op::Fallocate { h, punch, off, len } => write!(f, " h={h} punch={punch} off={off} len={len}"),
            Op::Stat { path, follow } => write!(f, " path={} follow={follow}", e(path)),
            Op::Mkdir { path, mode } | Op::Chmod { path, mode } => write!(f, " path={} mode={mode:#o}", e(path)),
            Op::Rmdir { path }
            | Op::Unlink { path }
            | Op::Readlink { path }
            | Op::Readdir { path }
            | Op::Listxattr { path } => write!(f, " path={}", e(path)),
            Op::Rename { from, to, how } => write!(f, " from={} to={} how={how}", e(from), e(to)),
            Op::Link { from, to } => write!(f, " from={} to={}", e(from), e(to)),
            Op::Symlink { target, path } => write!(f, " target={} path={}", e(target), e(path)),
            Op::Chown { path, owner, group, follow } => {
                write!(f, " path={} owner={} group={} follow={follow}", e(path), id(owner), id(group))
            }
            Op::Utimens { path, atime, mtime, follow } => {
                write!(f, " path={} atime={atime} mtime={mtime} follow={follow}", e(path))
            }
            Op::Setxattr { path, name, len, fill, how } => {
                write!(f, " path={} name={} len={len} fill={fill} how={how}", e(path), e(name))
            }
            Op::Getxattr { path, name } | Op::Removexattr { path, name } => {
                write!(f, " path={} name={}", e(path), e(name))
            }
            Op::Access { path, mode } => write!(f, " path={} mode={mode}", e(path)),
            Op::Umask { mask } => write!(f, " mask={mask:#o}"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} uid={} {}", self.index, self.uid, self.op)
    }
}
