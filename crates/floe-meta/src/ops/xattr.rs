//! Extended attributes.

use super::access::Access;
use super::access::Caller;
use super::namespace::inode;
use super::Meta;
use crate::{FileKind, FileSystemId, InodeId, MetaError, Result, TimeSpec, NAME_MAX, XATTR_VALUE_MAX};

/// `setxattr` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XattrFlags {
    /// XATTR_CREATE: fail if the attribute exists.
    pub create: bool,
    /// XATTR_REPLACE: fail if it does not.
    pub replace: bool,
}

fn validate(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(MetaError::Invalid("empty attribute name"));
    }
    if name.len() > NAME_MAX {
        return Err(MetaError::TooBig);
    }
    Ok(())
}

/// Who may touch an attribute: `user.` needs the file's read (get) or write (set)
/// permission and a regular file or directory; `trusted.` and `security.` need root.
fn check(caller: &Caller, a: &crate::Attr, name: &[u8], want: Access) -> Result<()> {
    if name.starts_with(b"user.") {
        if !matches!(a.kind, FileKind::File | FileKind::Directory) {
            return Err(MetaError::Perm);
        }
        caller.check(a, want)
    } else if name.starts_with(b"trusted.") {
        if caller.is_root() {
            Ok(())
        } else {
            Err(MetaError::Perm)
        }
    } else if name.starts_with(b"security.") || name.starts_with(b"system.") {
        if want == Access::READ || caller.owns(a) {
            Ok(())
        } else {
            Err(MetaError::Perm)
        }
    } else {
        Err(MetaError::NotSupported)
    }
}

impl Meta {
    pub fn get_xattr(&self, fs: FileSystemId, caller: &Caller, ino: InodeId, name: &[u8]) -> Result<Vec<u8>> {
        validate(name)?;
        self.read(|t| {
            let a = inode(t, fs, ino)?;
            check(caller, &a, name, Access::READ)?;
            t.get_xattr(fs, ino, name)?.ok_or(MetaError::NoAttr)
        })
    }

    pub fn set_xattr(
        &self,
        fs: FileSystemId,
        caller: &Caller,
        ino: InodeId,
        name: &[u8],
        value: &[u8],
        flags: XattrFlags,
    ) -> Result<()> {
        validate(name)?;
        if value.len() > XATTR_VALUE_MAX {
            return Err(MetaError::TooBig);
        }
        self.write(|t| {
            let mut a = inode(t, fs, ino)?;
            check(caller, &a, name, Access::WRITE)?;
            let exists = t.get_xattr(fs, ino, name)?.is_some();
            if flags.create && exists {
                return Err(MetaError::Exists);
            }
            if flags.replace && !exists {
                return Err(MetaError::NoAttr);
            }
            t.put_xattr(fs, ino, name, value)?;
            a.ctime = TimeSpec::now();
            t.put_inode(fs, &a)
        })
    }

    /// Names of the attributes the caller may see.
    pub fn list_xattrs(&self, fs: FileSystemId, caller: &Caller, ino: InodeId) -> Result<Vec<Vec<u8>>> {
        self.read(|t| {
            inode(t, fs, ino)?;
            let names = t.list_xattrs(fs, ino)?;
            Ok(names.into_iter().filter(|n| caller.is_root() || !n.starts_with(b"trusted.")).collect())
        })
    }

    pub fn remove_xattr(&self, fs: FileSystemId, caller: &Caller, ino: InodeId, name: &[u8]) -> Result<()> {
        validate(name)?;
        self.write(|t| {
            let mut a = inode(t, fs, ino)?;
            check(caller, &a, name, Access::WRITE)?;
            if !t.delete_xattr(fs, ino, name)? {
                return Err(MetaError::NoAttr);
            }
            a.ctime = TimeSpec::now();
            t.put_inode(fs, &a)
        })
    }
}
