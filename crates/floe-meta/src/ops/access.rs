//! Who is asking, and the POSIX permission rules applied inside every transaction.

use crate::{Attr, FileKind, MetaError, Result};

/// The identity an operation runs as: the caller's, or an access point's that replaced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// Bits of an access check, as in `access(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access(pub u32);

impl Access {
    pub const READ: Access = Access(4);
    pub const WRITE: Access = Access(2);
    pub const EXEC: Access = Access(1);
    pub const WRITE_EXEC: Access = Access(3);

    pub fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }
}

pub(crate) const S_ISUID: u16 = 0o4000;
pub(crate) const S_ISGID: u16 = 0o2000;
pub(crate) const S_ISVTX: u16 = 0o1000;
pub(crate) const S_IXGRP: u16 = 0o010;

impl Caller {
    pub fn root() -> Caller {
        Caller { uid: 0, gid: 0, groups: Vec::new() }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// Checks `want` against the inode's owner, group and mode bits (EACCES).
    pub fn check(&self, attr: &Attr, want: Access) -> Result<()> {
        if self.is_root() {
            // Root may read and write anything, and execute what anyone may execute;
            // directories are always searchable for it.
            let exec_ok = want.0 & 1 == 0 || attr.kind == FileKind::Directory || attr.perm & 0o111 != 0;
            return if exec_ok { Ok(()) } else { Err(MetaError::Access) };
        }
        let bits = if self.uid == attr.uid {
            (attr.perm >> 6) & 7
        } else if self.in_group(attr.gid) {
            (attr.perm >> 3) & 7
        } else {
            attr.perm & 7
        } as u32;
        if bits & want.0 == want.0 {
            Ok(())
        } else {
            Err(MetaError::Access)
        }
    }

    /// Whether the caller owns the inode or is root (the test for chmod and utimes).
    pub fn owns(&self, attr: &Attr) -> bool {
        self.is_root() || self.uid == attr.uid
    }

    /// The sticky-directory rule: in a sticky directory only the owner of an entry, the
    /// owner of the directory or root may remove or rename it (EPERM).
    pub fn check_sticky(&self, dir: &Attr, victim: &Attr) -> Result<()> {
        if dir.perm & S_ISVTX == 0 || self.is_root() || self.uid == dir.uid || self.uid == victim.uid {
            Ok(())
        } else {
            Err(MetaError::Perm)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InodeId, TimeSpec};

    fn attr(kind: FileKind, perm: u16, uid: u32, gid: u32) -> Attr {
        let t = TimeSpec(0);
        Attr {
            ino: InodeId(2),
            kind,
            perm,
            uid,
            gid,
            nlink: 1,
            size: 0,
            rdev: 0,
            atime: t,
            mtime: t,
            ctime: t,
            parent: InodeId(0),
        }
    }

    #[test]
    fn owner_group_other_bits_pick_one_class() {
        let a = attr(FileKind::File, 0o604, 10, 20);
        let owner = Caller { uid: 10, gid: 99, groups: vec![] };
        let member = Caller { uid: 11, gid: 20, groups: vec![] };
        let secondary = Caller { uid: 12, gid: 1, groups: vec![20] };
        let other = Caller { uid: 13, gid: 1, groups: vec![] };
        assert!(owner.check(&a, Access::READ.union(Access::WRITE)).is_ok());
        // The group class has no bits, even though "other" may read.
        assert_eq!(member.check(&a, Access::READ), Err(MetaError::Access));
        assert_eq!(secondary.check(&a, Access::READ), Err(MetaError::Access));
        assert!(other.check(&a, Access::READ).is_ok());
        assert_eq!(other.check(&a, Access::WRITE), Err(MetaError::Access));
    }

    #[test]
    fn root_needs_some_exec_bit_on_files_only() {
        let root = Caller::root();
        assert!(root.check(&attr(FileKind::File, 0o000, 1, 1), Access::READ.union(Access::WRITE)).is_ok());
        assert_eq!(root.check(&attr(FileKind::File, 0o600, 1, 1), Access::EXEC), Err(MetaError::Access));
        assert!(root.check(&attr(FileKind::File, 0o001, 1, 1), Access::EXEC).is_ok());
        assert!(root.check(&attr(FileKind::Directory, 0o000, 1, 1), Access::EXEC).is_ok());
    }

    #[test]
    fn sticky_directories_protect_other_users_entries() {
        let dir = attr(FileKind::Directory, 0o1777, 0, 0);
        let file = attr(FileKind::File, 0o644, 10, 10);
        assert!(Caller { uid: 10, gid: 10, groups: vec![] }.check_sticky(&dir, &file).is_ok());
        assert_eq!(Caller { uid: 11, gid: 10, groups: vec![] }.check_sticky(&dir, &file), Err(MetaError::Perm));
        assert!(Caller::root().check_sticky(&dir, &file).is_ok());
    }
}
