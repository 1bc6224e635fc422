//! setattr: chmod, chown, truncate and utimens with their permission rules.

use super::access::Caller;
use super::access::{Access, S_ISGID, S_ISUID, S_IXGRP};
use super::namespace::inode;
use super::Meta;
use crate::store::MetaTxn;
use crate::{
    Attr, FileKind, FileSystemId, InodeId, MetaError, Result, SetAttr, SliceRef, TimeSpec, TimeUpdate, CHUNK_SIZE,
};

/// Largest file size floe accepts (as ext4's 16 TiB, well past the 10 GiB users need).
pub const MAX_FILE_SIZE: u64 = 16 << 40;

impl Meta {
    pub fn setattr(&self, fs: FileSystemId, caller: &Caller, ino: InodeId, set: &SetAttr) -> Result<Attr> {
        self.write(|t| {
            let mut a = inode(t, fs, ino)?;
            let now = TimeSpec::now();
            let mut changed = false;
            if set.uid.is_some() || set.gid.is_some() {
                chown(caller, &mut a, set.uid, set.gid)?;
                changed = true;
            }
            if let Some(mode) = set.mode {
                // The kernel clears setuid/setgid after a write or truncate through any
                // writable handle, with a mode change made as the writer (who may not be
                // able to write the file by its mode any more). Only ever removing
                // privileges, it is allowed to anyone.
                let new = (mode & 0o7777) as u16;
                let privileges = S_ISUID | S_ISGID;
                let drops_privileges_only =
                    new & !privileges == a.perm & !privileges && new & privileges & !a.perm == 0;
                if !caller.owns(&a) && !drops_privileges_only {
                    return Err(MetaError::Perm);
                }
                let mut perm = (mode & 0o7777) as u16;
                if !caller.is_root() && !caller.in_group(a.gid) {
                    perm &= !S_ISGID;
                }
                a.perm = perm;
                changed = true;
            }
            if let Some(size) = set.size {
                match a.kind {
                    FileKind::File => {}
                    FileKind::Directory => return Err(MetaError::IsDir),
                    _ => return Err(MetaError::Invalid("only regular files can be truncated")),
                }
                if !set.via_handle {
                    caller.check(&a, Access::WRITE)?;
                }
                if size > MAX_FILE_SIZE {
                    return Err(MetaError::FileTooLarge);
                }
                a.perm = drop_privileges(caller, &a);
                truncate(t, fs, &mut a, size)?;
                a.mtime = now;
                changed = true;
            }
            apply_times(caller, &mut a, set, now)?;
            if changed || set.atime.is_some() || set.mtime.is_some() {
                a.ctime = now;
            }
            t.put_inode(fs, &a)?;
            Ok(a)
        })
    }
}

fn apply_times(caller: &Caller, a: &mut Attr, set: &SetAttr, now: TimeSpec) -> Result<()> {
    if set.atime.is_none() && set.mtime.is_none() {
        return Ok(());
    }
    let explicit = matches!(set.atime, Some(TimeUpdate::At(_))) || matches!(set.mtime, Some(TimeUpdate::At(_)));
    if !caller.owns(a) {
        if explicit {
            return Err(MetaError::Perm);
        }
        caller.check(a, Access::WRITE)?;
    }
    let resolve = |u: TimeUpdate| match u {
        TimeUpdate::Now => now,
        TimeUpdate::At(t) => t,
    };
    if let Some(u) = set.atime {
        a.atime = resolve(u);
    }
    if let Some(u) = set.mtime {
        a.mtime = resolve(u);
    }
    Ok(())
}

fn chown(caller: &Caller, a: &mut Attr, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    let uid_change = uid.is_some_and(|u| u != a.uid);
    let gid_change = gid.is_some_and(|g| g != a.gid);
    if !caller.is_root() {
        if uid_change || caller.uid != a.uid {
            return Err(MetaError::Perm);
        }
        if gid_change && !caller.in_group(gid.expect("gid_change implies a gid")) {
            return Err(MetaError::Perm);
        }
    }
    if a.kind != FileKind::Directory {
        // As Linux: a chown drops setuid, even by root, and setgid where it means
        // set-group-ID on exec or the caller is neither root nor in the file's group.
        a.perm &= !S_ISUID;
        if a.perm & S_IXGRP != 0 || !(caller.is_root() || caller.in_group(a.gid)) {
            a.perm &= !S_ISGID;
        }
    }
    if let Some(u) = uid {
        a.uid = u;
    }
    if let Some(g) = gid {
        a.gid = g;
    }
    Ok(())
}

/// The permission bits of a file after a write or truncate by `caller`, as the kernel
/// computes them: nothing changes for root (CAP_FSETID); otherwise setuid goes, and
/// setgid where it means set-group-ID on execution (group-executable) or the caller is
/// not in the file's group.
pub fn drop_privileges(caller: &Caller, attr: &Attr) -> u16 {
    if caller.is_root() {
        return attr.perm;
    }
    let mut p = attr.perm & !S_ISUID;
    if p & S_IXGRP != 0 || !caller.in_group(attr.gid) {
        p &= !S_ISGID;
    }
    p
}

/// Changes a file's size inside a transaction: bytes past the new end are cut off so
/// that growing the file again reads zeros there.
pub(crate) fn truncate(t: &mut dyn MetaTxn, fs: FileSystemId, a: &mut Attr, size: u64) -> Result<()> {
    if size < a.size {
        let chunk = size / CHUNK_SIZE;
        let within = (size % CHUNK_SIZE) as u32;
        if within == 0 {
            t.delete_chunks_from(fs, a.ino, chunk)?;
        } else {
            t.delete_chunks_from(fs, a.ino, chunk + 1)?;
            let old_end_in_chunk = (a.size - chunk * CHUNK_SIZE).min(CHUNK_SIZE) as u32;
            t.append_ref(fs, a.ino, chunk, &SliceRef::hole(within, old_end_in_chunk - within))?;
        }
    }
    t.add_usage(fs, size as i64 - a.size as i64, 0)?;
    a.size = size;
    Ok(())
}
