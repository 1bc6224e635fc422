//! What one operation returned on one side: the value both sides must agree on.

use crate::sys::{errno_name, Errno};
use std::fmt;

/// The comparable attributes of a file: not inode numbers, blocks or times.
/// A directory's size is left out (`None`): it is file-system specific (tmpfs counts
/// entries, ext4 reports blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// `f` regular file, `d` directory, `l` symlink, `p` fifo, `s` socket, `c`/`b` devices.
    pub kind: char,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub size: Option<u64>,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    /// The comparable part of a `struct stat`.
    pub fn from_stat(st: &libc::stat) -> Meta {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => 'f',
            libc::S_IFDIR => 'd',
            libc::S_IFLNK => 'l',
            libc::S_IFIFO => 'p',
            libc::S_IFSOCK => 's',
            libc::S_IFCHR => 'c',
            libc::S_IFBLK => 'b',
            _ => '?',
        };
        let size = if kind == 'd' { None } else { u64::try_from(st.st_size).ok() };
        Meta { kind, mode: st.st_mode & 0o7777, size, nlink: st.st_nlink, uid: st.st_uid, gid: st.st_gid }
    }
}

impl fmt::Display for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} mode={:#o} nlink={} uid={} gid={}", self.kind, self.mode, self.nlink, self.uid, self.gid)?;
        if let Some(size) = self.size {
            write!(f, " size={size}")?;
        }
        Ok(())
    }
}

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Failed with this errno.
    Err(Errno),
    /// Succeeded with nothing more to compare.
    Done,
    /// Bytes written.
    Count(usize),
    /// Bytes read.
    Data(Vec<u8>),
    /// stat results.
    Meta(Meta),
    /// Sorted names (directory entries or `user.` xattr names).
    Names(Vec<Vec<u8>>),
    /// A symlink target or an xattr value.
    Bytes(Vec<u8>),
    /// The mtime after utimensat set it explicitly.
    Mtime { sec: i64, nsec: i64 },
}

/// A short, printable form of some bytes: text as a quoted string, anything else as
/// its length and first bytes in hex.
pub fn show_bytes(b: &[u8]) -> String {
    if b.len() <= 64 && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        return format!("{:?}", String::from_utf8_lossy(b));
    }
    let hex: Vec<String> = b.iter().take(16).map(|c| format!("{c:02x}")).collect();
    let more = if b.len() > 16 { " ..." } else { "" };
    format!("{} bytes [{}{more}]", b.len(), hex.join(" "))
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Err(e) => write!(f, "error {}", errno_name(*e)),
            Outcome::Done => write!(f, "ok"),
            Outcome::Count(n) => write!(f, "ok, {n} bytes"),
            Outcome::Data(d) => write!(f, "data: {}", show_bytes(d)),
            Outcome::Meta(m) => write!(f, "{m}"),
            Outcome::Names(names) => {
                let names: Vec<_> = names.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
                write!(f, "names {names:?}")
            }
            Outcome::Bytes(b) => write!(f, "bytes {}", show_bytes(b)),
            Outcome::Mtime { sec, nsec } => write!(f, "mtime {sec}.{nsec:09}"),
        }
    }
}

/// Describes how two outcomes differ.
pub fn describe(a: &Outcome, b: &Outcome) -> String {
    let mut s = format!("A: {a}\nB: {b}");
    if let (Outcome::Data(x), Outcome::Data(y)) = (a, b) {
        if let Some(i) = x.iter().zip(y).position(|(p, q)| p != q) {
            s.push_str(&format!("\nfirst difference at byte {i}: A {:#04x}, B {:#04x}", x[i], y[i]));
        } else {
            s.push_str(&format!("\nlengths differ: A {}, B {}", x.len(), y.len()));
        }
    }
    s
}
