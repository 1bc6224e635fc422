//! Names: lookup, create, link, unlink, rmdir, rename, readdir, readlink.

use super::access::{Access, Caller, S_ISGID, S_IXGRP};
use super::Meta;
use crate::store::{Counter, MetaTxn};
use crate::{Attr, FileKind, FileSystemId, InodeId, MetaError, Result, SessionId, TimeSpec, NAME_MAX, SYMLINK_MAX};

/// Most hard links one inode may have.
const LINK_MAX: u32 = 65_000;

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: InodeId,
    pub kind: FileKind,
    /// Pass it back as `after` to continue the listing after this entry.
    pub cookie: u64,
    /// Filled in when the listing asked for attributes (readdirplus).
    pub attr: Option<Attr>,
}

/// `renameat2` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenameFlags {
    pub no_replace: bool,
    pub exchange: bool,
}

pub(crate) fn new_root(now: TimeSpec) -> Attr {
    Attr::new(InodeId::ROOT, FileKind::Directory, 0o755, 0, 0, InodeId::ROOT, now)
}

pub(crate) fn validate_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(MetaError::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(MetaError::Invalid("not a valid file name"));
    }
    Ok(())
}

pub(crate) fn inode(t: &mut dyn MetaTxn, fs: FileSystemId, ino: InodeId) -> Result<Attr> {
    t.get_inode(fs, ino)?.ok_or(MetaError::NotFound)
}

/// The parent directory of an operation, checked for existence, kind and permission.
fn directory(t: &mut dyn MetaTxn, fs: FileSystemId, ino: InodeId, caller: &Caller, want: Access) -> Result<Attr> {
    let dir = inode(t, fs, ino)?;
    if dir.kind != FileKind::Directory {
        return Err(MetaError::NotDir);
    }
    if dir.nlink == 0 {
        return Err(MetaError::NotFound);
    }
    caller.check(&dir, want)?;
    Ok(dir)
}

pub(crate) fn touch_dir(
    t: &mut dyn MetaTxn,
    fs: FileSystemId,
    dir: &mut Attr,
    nlink_delta: i32,
    now: TimeSpec,
) -> Result<()> {
    dir.nlink = (dir.nlink as i64 + nlink_delta as i64).max(0) as u32;
    dir.mtime = now;
    dir.ctime = now;
    t.put_inode(fs, dir)
}

/// What to create with [`Meta::mknod`].
#[derive(Clone, Debug)]
pub struct NewNode<'a> {
    pub kind: FileKind,
    /// Permission bits asked for (before umask).
    pub perm: u32,
    pub umask: u32,
    pub rdev: u32,
    /// The target, for a symlink.
    pub target: Option<&'a [u8]>,
}

impl Meta {
    pub fn lookup(&self, fs: FileSystemId, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(MetaError::NameTooLong);
        }
        self.read(|t| {
            let dir = directory(t, fs, parent, caller, Access::EXEC)?;
            match name {
                b"." => return Ok(dir),
                b".." => return inode(t, fs, dir.parent),
                _ => {}
            }
            let entry = t.get_dentry(fs, parent, name)?.ok_or(MetaError::NotFound)?;
            inode(t, fs, entry.ino)
        })
    }

    pub fn getattr(&self, fs: FileSystemId, ino: InodeId) -> Result<Attr> {
        self.read(|t| inode(t, fs, ino))
    }

    /// Checks that the caller may open `ino` for `want`; returns its attributes.
    pub fn access(&self, fs: FileSystemId, caller: &Caller, ino: InodeId, want: Access) -> Result<Attr> {
        self.read(|t| {
            let a = inode(t, fs, ino)?;
            caller.check(&a, want)?;
            Ok(a)
        })
    }

    /// Creates a file, directory, symlink or special file.
    pub fn mknod(
        &self,
        fs: FileSystemId,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        node: &NewNode<'_>,
    ) -> Result<Attr> {
        validate_name(name)?;
        if let Some(target) = node.target {
            if target.is_empty() {
                return Err(MetaError::NotFound);
            }
            if target.len() > SYMLINK_MAX {
                return Err(MetaError::NameTooLong);
            }
        }
        self.write(|t| {
            let mut dir = directory(t, fs, parent, caller, Access::WRITE_EXEC)?;
            if t.get_dentry(fs, parent, name)?.is_some() {
                return Err(MetaError::Exists);
            }
            let now = TimeSpec::now();
            let mut perm =
                if node.kind == FileKind::Symlink { 0o777 } else { (node.perm & !node.umask & 0o7777) as u16 };
            let gid = if dir.perm & S_ISGID != 0 {
                if node.kind == FileKind::Directory {
                    perm |= S_ISGID;
                }
                dir.gid
            } else {
                caller.gid
            };
            // As the kernel does: a non-member may not create a group-executable setgid file.
            if node.kind != FileKind::Directory
                && perm & (S_ISGID | S_IXGRP) == (S_ISGID | S_IXGRP)
                && !caller.is_root()
                && !caller.in_group(gid)
            {
                perm &= !S_ISGID;
            }
            let ino = InodeId(t.next_ids(fs, Counter::Inode, 1)?);
            let is_dir = node.kind == FileKind::Directory;
            // The parent is kept for every kind: a symlink's directory anchors its
            // relative target when an access point resolves it (see access_point.rs).
            let attr = Attr {
                size: node.target.map_or(0, |t| t.len() as u64),
                rdev: node.rdev,
                ..Attr::new(ino, node.kind, perm, caller.uid, gid, parent, now)
            };
            t.put_inode(fs, &attr)?;
            if let Some(target) = node.target {
                t.put_symlink(fs, ino, target)?;
            }
            t.insert_dentry(fs, parent, name, ino, node.kind)?;
            touch_dir(t, fs, &mut dir, if is_dir { 1 } else { 0 }, now)?;
            t.add_usage(fs, 0, 1)?;
            Ok(attr)
        })
    }

    /// Adds a hard link `newparent/newname` to `ino`.
    pub fn link(
        &self,
        fs: FileSystemId,
        caller: &Caller,
        ino: InodeId,
        newparent: InodeId,
        newname: &[u8],
    ) -> Result<Attr> {
        validate_name(newname)?;
        self.write(|t| {
            let mut target = inode(t, fs, ino)?;
            if target.kind == FileKind::Directory {
                return Err(MetaError::Perm);
            }
            let mut dir = directory(t, fs, newparent, caller, Access::WRITE_EXEC)?;
            if t.get_dentry(fs, newparent, newname)?.is_some() {
                return Err(MetaError::Exists);
            }
            if target.nlink == 0 {
                return Err(MetaError::NotFound);
            }
            if target.nlink >= LINK_MAX {
                return Err(MetaError::TooManyLinks);
            }
            let now = TimeSpec::now();
            target.nlink += 1;
            target.ctime = now;
            t.put_inode(fs, &target)?;
            t.insert_dentry(fs, newparent, newname, ino, target.kind)?;
            touch_dir(t, fs, &mut dir, 0, now)?;
            Ok(target)
        })
    }

    /// Removes a name of a non-directory. Returns the inode's attributes afterwards:
    /// when `nlink` is 0 the caller purges it with [`Meta::purge_if_unlinked`] once no
    /// handle has it open.
    pub fn unlink(&self, fs: FileSystemId, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(MetaError::NameTooLong);
        }
        self.write(|t| unlink_in(t, fs, caller, parent, name))
    }

    /// [`Meta::unlink`] and what follows for the inode, in the same transaction: when it
    /// loses its last link it is purged, unless `open(ino)` says the client has it open
    /// (then `session` keeps it alive) or another session keeps it alive.
    pub fn unlink_purging(
        &self,
        fs: FileSystemId,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        session: SessionId,
        open: &dyn Fn(InodeId) -> bool,
    ) -> Result<(Attr, Unlinked)> {
        if name.len() > NAME_MAX {
            return Err(MetaError::NameTooLong);
        }
        self.write(|t| {
            let victim = unlink_in(t, fs, caller, parent, name)?;
            if victim.nlink > 0 {
                return Ok((victim, Unlinked::Linked));
            }
            if open(victim.ino) {
                t.sustain(session, fs, victim.ino)?;
                return Ok((victim, Unlinked::Sustained));
            }
            if t.is_sustained(fs, victim.ino)? {
                return Ok((victim, Unlinked::Linked));
            }
            purge(t, fs, &victim)?;
            Ok((victim, Unlinked::Purged))
        })
    }

    /// Removes an empty directory's name. Like [`Meta::unlink`], returns the inode with
    /// `nlink` 0, kept (an open handle may still stat it) until
    /// [`Meta::purge_if_unlinked`].
    pub fn rmdir(&self, fs: FileSystemId, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<Attr> {
        match name {
            b"." => return Err(MetaError::Invalid("cannot remove '.'")),
            b".." => return Err(MetaError::NotEmpty),
            _ if name.len() > NAME_MAX => return Err(MetaError::NameTooLong),
            _ => {}
        }
        self.write(|t| {
            let mut dir = directory(t, fs, parent, caller, Access::WRITE_EXEC)?;
            let entry = t.get_dentry(fs, parent, name)?.ok_or(MetaError::NotFound)?;
            let victim = inode(t, fs, entry.ino)?;
            if victim.kind != FileKind::Directory {
                return Err(MetaError::NotDir);
            }
            caller.check_sticky(&dir, &victim)?;
            if t.has_dentries(fs, victim.ino)? {
                return Err(MetaError::NotEmpty);
            }
            remove_directory(t, fs, &mut dir, name, victim)
        })
    }

    /// Renames `parent/name` to `newparent/newname`, atomically. Returns the inode
    /// that lost its last name by being replaced, if any (see [`Meta::unlink`]).
    #[allow(clippy::too_many_arguments)]
    pub fn rename(
        &self,
        fs: FileSystemId,
        caller: &Caller,
        parent: InodeId,
        name: &[u8],
        newparent: InodeId,
        newname: &[u8],
        flags: RenameFlags,
    ) -> Result<Option<Attr>> {
        if name.len() > NAME_MAX {
            return Err(MetaError::NameTooLong);
        }
        validate_name(newname)?;
        if name == b"." || name == b".." {
            return Err(MetaError::Invalid("cannot rename '.' or '..'"));
        }
        if flags.exchange && flags.no_replace {
            return Err(MetaError::Invalid("RENAME_EXCHANGE with RENAME_NOREPLACE"));
        }
        self.write(|t| rename_txn(t, fs, caller, parent, name, newparent, newname, flags))
    }

    /// Lists entries after cookie `after` (0 for the start), at most `limit`.
    pub fn readdir(
        &self,
        fs: FileSystemId,
        dir: InodeId,
        after: u64,
        limit: usize,
        with_attrs: bool,
    ) -> Result<Vec<DirEntry>> {
        self.read(|t| {
            let d = inode(t, fs, dir)?;
            if d.kind != FileKind::Directory {
                return Err(MetaError::NotDir);
            }
            let mut out = Vec::new();
            for e in t.list_dentries(fs, dir, after, limit)? {
                let attr = if with_attrs { t.get_inode(fs, e.ino)? } else { None };
                out.push(DirEntry { name: e.name, ino: e.ino, kind: e.kind, cookie: e.cookie, attr });
            }
            Ok(out)
        })
    }

    pub fn readlink(&self, fs: FileSystemId, ino: InodeId) -> Result<Vec<u8>> {
        self.read(|t| {
            let a = inode(t, fs, ino)?;
            if a.kind != FileKind::Symlink {
                return Err(MetaError::Invalid("not a symlink"));
            }
            t.get_symlink(fs, ino)?.ok_or(MetaError::NotFound)
        })
    }

    /// Deletes an inode and its data references if it has no links and no session
    /// keeps it open. Returns whether it was purged.
    pub fn purge_if_unlinked(&self, fs: FileSystemId, ino: InodeId) -> Result<bool> {
        self.write(|t| {
            let Some(a) = t.get_inode(fs, ino)? else { return Ok(false) };
            if a.nlink > 0 || t.is_sustained(fs, ino)? {
                return Ok(false);
            }
            purge(t, fs, &a)?;
            Ok(true)
        })
    }
}

/// What became of an inode that [`Meta::unlink_purging`] took a name from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlinked {
    /// It still has links, or another session keeps it alive.
    Linked,
    /// It lost its last link while open here: the session keeps it until closed.
    Sustained,
    /// It is gone; its slices are garbage.
    Purged,
}

fn unlink_in(t: &mut dyn MetaTxn, fs: FileSystemId, caller: &Caller, parent: InodeId, name: &[u8]) -> Result<Attr> {
    let mut dir = directory(t, fs, parent, caller, Access::WRITE_EXEC)?;
    let entry = t.get_dentry(fs, parent, name)?.ok_or(MetaError::NotFound)?;
    let mut victim = inode(t, fs, entry.ino)?;
    if victim.kind == FileKind::Directory {
        return Err(MetaError::IsDir);
    }
    caller.check_sticky(&dir, &victim)?;
    let now = TimeSpec::now();
    t.delete_dentry(fs, parent, name)?;
    victim.nlink = victim.nlink.saturating_sub(1);
    victim.ctime = now;
    t.put_inode(fs, &victim)?;
    touch_dir(t, fs, &mut dir, 0, now)?;
    Ok(victim)
}

/// Deletes an inode that has no links and that no session keeps alive.
fn purge(t: &mut dyn MetaTxn, fs: FileSystemId, a: &Attr) -> Result<()> {
    t.delete_chunks_from(fs, a.ino, 0)?;
    t.delete_inode_extras(fs, a.ino)?;
    t.delete_inode(fs, a.ino)?;
    // Only regular files count their size as used space (a symlink's size is its
    // target's length, never counted).
    let bytes = if a.kind == FileKind::File { a.size as i64 } else { 0 };
    t.add_usage(fs, -bytes, -1)
}

fn remove_directory(
    t: &mut dyn MetaTxn,
    fs: FileSystemId,
    dir: &mut Attr,
    name: &[u8],
    mut victim: Attr,
) -> Result<Attr> {
    let now = TimeSpec::now();
    t.delete_dentry(fs, dir.ino, name)?;
    victim.nlink = 0;
    victim.ctime = now;
    t.put_inode(fs, &victim)?;
    touch_dir(t, fs, dir, -1, now)?;
    Ok(victim)
}

/// Whether `ancestor` is `ino` or one of its ancestors.
fn is_ancestor(t: &mut dyn MetaTxn, fs: FileSystemId, ancestor: InodeId, mut ino: InodeId) -> Result<bool> {
    for _ in 0..100_000 {
        if ino == ancestor {
            return Ok(true);
        }
        if ino == InodeId::ROOT {
            return Ok(false);
        }
        ino = inode(t, fs, ino)?.parent;
    }
    Err(MetaError::Backend("directory parent chain does not reach the root".into()))
}

#[allow(clippy::too_many_arguments)]
fn rename_txn(
    t: &mut dyn MetaTxn,
    fs: FileSystemId,
    caller: &Caller,
    parent: InodeId,
    name: &[u8],
    newparent: InodeId,
    newname: &[u8],
    flags: RenameFlags,
) -> Result<Option<Attr>> {
    let mut src_dir = directory(t, fs, parent, caller, Access::WRITE_EXEC)?;
    let mut dst_dir =
        if newparent == parent { src_dir.clone() } else { directory(t, fs, newparent, caller, Access::WRITE_EXEC)? };
    let src_entry = t.get_dentry(fs, parent, name)?.ok_or(MetaError::NotFound)?;
    let mut src = inode(t, fs, src_entry.ino)?;
    let dst_entry = t.get_dentry(fs, newparent, newname)?;
    caller.check_sticky(&src_dir, &src)?;
    let mut dst = match &dst_entry {
        Some(e) => Some(inode(t, fs, e.ino)?),
        None => None,
    };
    if let Some(d) = &dst {
        if flags.no_replace {
            return Err(MetaError::Exists);
        }
        if d.ino == src.ino {
            return Ok(None); // Two names of one inode: POSIX says do nothing.
        }
        caller.check_sticky(&dst_dir, d)?;
    } else if flags.exchange {
        return Err(MetaError::NotFound);
    }
    let cross = parent != newparent;
    // Moving a directory to another parent rewrites its "..": it must be writable, and
    // it may not move below itself.
    if src.kind == FileKind::Directory && cross {
        caller.check(&src, Access::WRITE)?;
        if is_ancestor(t, fs, src.ino, newparent)? {
            return Err(MetaError::Invalid("cannot move a directory below itself"));
        }
    }
    let now = TimeSpec::now();
    if flags.exchange {
        let d = dst.as_mut().expect("exchange checked that the target exists");
        if d.kind == FileKind::Directory && cross {
            caller.check(d, Access::WRITE)?;
            if is_ancestor(t, fs, d.ino, parent)? {
                return Err(MetaError::Invalid("cannot move a directory below itself"));
            }
        }
        t.delete_dentry(fs, parent, name)?;
        t.delete_dentry(fs, newparent, newname)?;
        t.insert_dentry(fs, parent, name, d.ino, d.kind)?;
        t.insert_dentry(fs, newparent, newname, src.ino, src.kind)?;
        let (src_is_dir, dst_is_dir) = (src.kind == FileKind::Directory, d.kind == FileKind::Directory);
        src.parent = newparent;
        d.parent = parent;
        src.ctime = now;
        d.ctime = now;
        t.put_inode(fs, &src)?;
        t.put_inode(fs, d)?;
        let delta = dst_is_dir as i32 - src_is_dir as i32;
        if cross {
            touch_dir(t, fs, &mut src_dir, delta, now)?;
            touch_dir(t, fs, &mut dst_dir, -delta, now)?;
        } else {
            touch_dir(t, fs, &mut src_dir, 0, now)?;
        }
        return Ok(None);
    }
    let mut orphan = None;
    let mut dst_nlink_delta = 0;
    if let Some(mut d) = dst {
        match (src.kind == FileKind::Directory, d.kind == FileKind::Directory) {
            (true, false) => return Err(MetaError::NotDir),
            (false, true) => return Err(MetaError::IsDir),
            (true, true) => {
                if t.has_dentries(fs, d.ino)? {
                    return Err(MetaError::NotEmpty);
                }
                t.delete_inode_extras(fs, d.ino)?;
                t.delete_inode(fs, d.ino)?;
                t.add_usage(fs, 0, -1)?;
                dst_nlink_delta = -1;
            }
            (false, false) => {
                d.nlink = d.nlink.saturating_sub(1);
                d.ctime = now;
                t.put_inode(fs, &d)?;
                if d.nlink == 0 {
                    orphan = Some(d);
                }
            }
        }
        t.delete_dentry(fs, newparent, newname)?;
    }
    t.delete_dentry(fs, parent, name)?;
    t.insert_dentry(fs, newparent, newname, src.ino, src.kind)?;
    src.ctime = now;
    let moved_dir = src.kind == FileKind::Directory && cross;
    src.parent = newparent;
    t.put_inode(fs, &src)?;
    if cross {
        touch_dir(t, fs, &mut src_dir, if moved_dir { -1 } else { 0 }, now)?;
        touch_dir(t, fs, &mut dst_dir, dst_nlink_delta + if moved_dir { 1 } else { 0 }, now)?;
    } else {
        touch_dir(t, fs, &mut src_dir, dst_nlink_delta, now)?;
    }
    Ok(orphan)
}
