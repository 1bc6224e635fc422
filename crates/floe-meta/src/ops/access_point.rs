//! Access points and file system policy.
//!
//! An access point is an application's entry into a file system: a root directory
//! (created on first use with a given owner and mode) that its clients cannot leave,
//! and a POSIX identity that replaces the caller's for every operation. The policy
//! of a file system says whether clients may write and whether root keeps its powers
//! (EFS's `ClientWrite` and `ClientRootAccess`). Both live in the metadata engine, so
//! that every client enforces the same ones.

use super::access::Caller;
use super::namespace::{inode, touch_dir};
use super::Meta;
use crate::store::{Counter, MetaTxn};
use crate::{Attr, FileKind, FileSystemId, InodeId, MetaError, Result, TimeSpec, NAME_MAX};

/// Longest access point path, in bytes (EFS's limit).
pub const ACCESS_POINT_PATH_MAX: usize = 100;
/// Most symlinks followed while resolving one target (Linux's limit).
const MAX_SYMLINKS: usize = 40;
/// Longest path a resolved symlink may have (PATH_MAX without the NUL).
const RESOLVED_MAX: usize = 4095;

/// An access point's identifier: `fsap-` and 17 lowercase hex digits, as EFS's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessPointId(String);

impl AccessPointId {
    /// Checks the form of an identifier given by a user.
    pub fn parse(s: &str) -> Result<AccessPointId> {
        let ok = s.len() == 22
            && s.starts_with("fsap-")
            && s[5..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(AccessPointId(s.to_string()))
        } else {
            Err(MetaError::Invalid("an access point id is fsap- and 17 lowercase hex digits"))
        }
    }

    /// A new identifier from 68 random bits (the low bits of `entropy` are used).
    pub fn from_entropy(entropy: u128) -> AccessPointId {
        AccessPointId(format!("fsap-{:017x}", entropy & ((1u128 << 68) - 1)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AccessPointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Owner and mode of an access point's root directory when floe has to create it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootCreation {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (at most 0o7777).
    pub mode: u16,
}

/// What an access point is made of, as created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccessPoint {
    pub id: AccessPointId,
    /// Absolute path of the root directory inside the file system.
    pub path: String,
    /// The identity every operation through the access point runs as.
    pub identity: Caller,
    /// How to create the root directory when it does not exist; without it, a
    /// missing root makes mounting fail (ENOENT), as on EFS.
    pub creation: Option<RootCreation>,
}

/// An access point as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPoint {
    pub id: AccessPointId,
    pub fs: FileSystemId,
    /// Normalized: absolute, no `.`, `..` or empty components, no trailing slash.
    pub path: String,
    pub identity: Caller,
    pub creation: Option<RootCreation>,
    pub created: TimeSpec,
}

/// A file system's policy. The default grants everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsPolicy {
    /// Every client refuses changes (EROFS): EFS's policy without `ClientWrite`.
    pub read_only: bool,
    /// Callers with uid 0 run as 65534:65534 with no groups: EFS's policy without
    /// `ClientRootAccess`, NFS's root squashing.
    pub root_squash: bool,
}

/// The identity root is mapped to when root access is withheld (`nobody`).
pub const SQUASHED_ID: u32 = 65534;

/// Checks an access point path and returns its components.
fn path_components(path: &str) -> Result<Vec<&str>> {
    if !path.starts_with('/') {
        return Err(MetaError::Invalid("an access point path is absolute"));
    }
    if path.len() > ACCESS_POINT_PATH_MAX {
        return Err(MetaError::Invalid("an access point path has at most 100 bytes"));
    }
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for c in &parts {
        if *c == "." || *c == ".." || c.contains('\0') {
            return Err(MetaError::Invalid("an access point path has no '.', '..' or NUL components"));
        }
        if c.len() > NAME_MAX {
            return Err(MetaError::NameTooLong);
        }
    }
    Ok(parts)
}

/// The path with its components, normalized.
fn normalize(path: &str) -> Result<String> {
    Ok(format!("/{}", path_components(path)?.join("/")))
}

impl Meta {
    /// Creates an access point of file system `fs_name`. Its root directory is only
    /// created when a client first mounts it ([`Meta::access_point_root`]).
    pub fn create_access_point(&self, fs_name: &str, new: &NewAccessPoint) -> Result<AccessPoint> {
        let path = normalize(&new.path)?;
        if new.creation.is_some_and(|c| c.mode > 0o7777) {
            return Err(MetaError::Invalid("a root directory mode is at most 7777 (octal)"));
        }
        if new.identity.groups.len() > 16 {
            return Err(MetaError::Invalid("an access point has at most 16 secondary groups"));
        }
        self.write(|t| {
            let info = t.fs_by_name(fs_name)?.ok_or_else(|| MetaError::NoFileSystem(fs_name.to_string()))?;
            if t.get_access_point(&new.id)?.is_some() {
                return Err(MetaError::Exists);
            }
            let ap = AccessPoint {
                id: new.id.clone(),
                fs: info.id,
                path: path.clone(),
                identity: new.identity.clone(),
                creation: new.creation,
                created: TimeSpec::now(),
            };
            t.insert_access_point(&ap)?;
            Ok(ap)
        })
    }

    pub fn access_point(&self, id: &AccessPointId) -> Result<AccessPoint> {
        self.read(|t| t.get_access_point(id))?.ok_or_else(|| MetaError::NoAccessPoint(id.to_string()))
    }

    /// Access points of one file system, or of all, in id order.
    pub fn list_access_points(&self, fs_name: Option<&str>) -> Result<Vec<AccessPoint>> {
        self.read(|t| {
            let fs = match fs_name {
                Some(name) => Some(t.fs_by_name(name)?.ok_or_else(|| MetaError::NoFileSystem(name.to_string()))?.id),
                None => None,
            };
            t.list_access_points(fs)
        })
    }

    /// Deletes an access point. Its root directory and files stay.
    pub fn delete_access_point(&self, id: &AccessPointId) -> Result<AccessPoint> {
        self.write(|t| {
            let ap = t.get_access_point(id)?.ok_or_else(|| MetaError::NoAccessPoint(id.to_string()))?;
            t.delete_access_point(id)?;
            Ok(ap)
        })
    }

    pub fn policy(&self, fs: FileSystemId) -> Result<FsPolicy> {
        self.read(|t| t.get_policy(fs))
    }

    pub fn set_policy(&self, fs_name: &str, policy: FsPolicy) -> Result<()> {
        self.write(|t| {
            let info = t.fs_by_name(fs_name)?.ok_or_else(|| MetaError::NoFileSystem(fs_name.to_string()))?;
            t.put_policy(info.id, &policy)
        })
    }

    /// The access point's root directory, created with missing intermediate
    /// directories when it has creation info, all owned by its owner with its mode
    /// (as EFS does). An existing root is left as it is. One transaction.
    pub fn access_point_root(&self, fs: FileSystemId, ap: &AccessPoint) -> Result<Attr> {
        if ap.fs != fs {
            return Err(MetaError::Invalid("the access point belongs to another file system"));
        }
        let parts = path_components(&ap.path)?;
        self.write(|t| {
            let mut dir = inode(t, fs, InodeId::ROOT)?;
            for name in &parts {
                if dir.kind != FileKind::Directory {
                    return Err(MetaError::NotDir);
                }
                dir = match t.get_dentry(fs, dir.ino, name.as_bytes())? {
                    Some(e) => inode(t, fs, e.ino)?,
                    None => match ap.creation {
                        Some(c) => create_directory(t, fs, &mut dir, name.as_bytes(), c)?,
                        None => return Err(MetaError::NotFound),
                    },
                };
            }
            if dir.kind != FileKind::Directory {
                return Err(MetaError::NotDir);
            }
            Ok(dir)
        })
    }

    /// Whether `ino` is `root` or below it, following directory parents.
    pub fn is_within(&self, fs: FileSystemId, root: InodeId, ino: InodeId) -> Result<bool> {
        self.read(|t| Ok(ancestry(t, fs, root, ino)?.is_some()))
    }

    /// Resolves the target of symlink `ino` as if `root` were `/`: an absolute target
    /// starts at `root`, a relative one at the symlink's directory; `..` stops at
    /// `root`; symlinks met on the way are followed (at most 40). Returns the names
    /// leading from `root` to where the target points. Components that do not exist,
    /// or sit in a directory `caller` may not search, are kept as written (the
    /// kernel's walk will fail there), with later `..` removing them lexically.
    pub fn resolve_symlink(
        &self,
        fs: FileSystemId,
        caller: &Caller,
        root: InodeId,
        ino: InodeId,
    ) -> Result<Vec<Vec<u8>>> {
        self.read(|t| resolve_txn(t, fs, caller, root, ino))
    }
}

/// Creates directory `name` in `dir` for an access point root.
fn create_directory(
    t: &mut dyn MetaTxn,
    fs: FileSystemId,
    dir: &mut Attr,
    name: &[u8],
    c: RootCreation,
) -> Result<Attr> {
    let now = TimeSpec::now();
    let ino = InodeId(t.next_ids(fs, Counter::Inode, 1)?);
    let attr = Attr::new(ino, FileKind::Directory, c.mode & 0o7777, c.uid, c.gid, dir.ino, now);
    t.put_inode(fs, &attr)?;
    t.insert_dentry(fs, dir.ino, name, attr.ino, FileKind::Directory)?;
    touch_dir(t, fs, dir, 1, now)?;
    t.add_usage(fs, 0, 1)?;
    Ok(attr)
}

/// The directories from `root` down to `ino` (both included) with their names, or
/// None when `ino` is not below `root`.
fn ancestry(t: &mut dyn MetaTxn, fs: FileSystemId, root: InodeId, ino: InodeId) -> Result<Option<Vec<InodeId>>> {
    let mut chain = vec![ino];
    let mut cur = ino;
    while cur != root {
        if cur == InodeId::ROOT || cur == InodeId(0) || chain.len() > 100_000 {
            return Ok(None);
        }
        let Some(a) = t.get_inode(fs, cur)? else { return Ok(None) };
        cur = a.parent;
        chain.push(cur);
    }
    chain.reverse();
    Ok(Some(chain))
}

/// A step of a resolved path: a name, and its inode while the walk still knows it.
struct Step {
    name: Vec<u8>,
    ino: Option<InodeId>,
}

fn resolve_txn(
    t: &mut dyn MetaTxn,
    fs: FileSystemId,
    caller: &Caller,
    root: InodeId,
    ino: InodeId,
) -> Result<Vec<Vec<u8>>> {
    let link = inode(t, fs, ino)?;
    if link.kind != FileKind::Symlink {
        return Err(MetaError::Invalid("not a symlink"));
    }
    let target = t.get_symlink(fs, ino)?.ok_or(MetaError::NotFound)?;
    // Where a relative target starts: the symlink's directory when it is below the
    // root (it always is, unless a rename raced the caller's walk), else the root.
    let mut path: Vec<Step> = Vec::new();
    if !target.starts_with(b"/") {
        if let Some(chain) = ancestry(t, fs, root, link.parent)? {
            for pair in chain.windows(2) {
                let name = t.dentry_name(fs, pair[0], pair[1])?.ok_or(MetaError::NotFound)?;
                path.push(Step { name, ino: Some(pair[1]) });
            }
        }
    }
    let mut pending: Vec<Vec<u8>> = components(&target);
    pending.reverse(); // A stack: the next component is last.
    let mut followed = 0;
    while let Some(name) = pending.pop() {
        if name == b".." {
            path.pop();
            continue;
        }
        let here = match path.last() {
            None => Some(root),
            Some(step) => step.ino,
        };
        let found = match here {
            Some(dir) => lookup_searchable(t, fs, caller, dir, &name)?,
            None => None,
        };
        match found {
            // The last component is left to the kernel, which reads it again.
            Some(a) if a.kind == FileKind::Symlink && !pending.is_empty() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(MetaError::TooManySymlinks);
                }
                let nested = t.get_symlink(fs, a.ino)?.ok_or(MetaError::NotFound)?;
                if nested.starts_with(b"/") {
                    path.clear();
                }
                pending.extend(components(&nested).into_iter().rev());
            }
            Some(a) => path.push(Step { name, ino: (a.kind == FileKind::Directory).then_some(a.ino) }),
            None => path.push(Step { name, ino: None }),
        }
    }
    let names: Vec<Vec<u8>> = path.into_iter().map(|s| s.name).collect();
    if names.iter().map(|n| n.len() + 1).sum::<usize>() > RESOLVED_MAX {
        return Err(MetaError::NameTooLong);
    }
    Ok(names)
}

/// The entry `name` of directory `dir`, if it exists and `caller` may search `dir`.
fn lookup_searchable(
    t: &mut dyn MetaTxn,
    fs: FileSystemId,
    caller: &Caller,
    dir: InodeId,
    name: &[u8],
) -> Result<Option<Attr>> {
    let Some(d) = t.get_inode(fs, dir)? else { return Ok(None) };
    if d.kind != FileKind::Directory || caller.check(&d, super::access::Access::EXEC).is_err() {
        return Ok(None);
    }
    match t.get_dentry(fs, dir, name)? {
        Some(e) => t.get_inode(fs, e.ino),
        None => Ok(None),
    }
}

/// The non-empty components of a path other than `.`.
fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_or_refused() {
        assert_eq!(normalize("/a//b/").as_deref(), Ok("/a/b"));
        assert_eq!(normalize("/").as_deref(), Ok("/"));
        for bad in ["a/b", "", "/a/../b", "/a/./b", "/a\0b"] {
            assert!(matches!(normalize(bad), Err(MetaError::Invalid(_))), "{bad:?}");
        }
        assert!(normalize(&format!("/{}", "x".repeat(100))).is_err(), "101 bytes");
        assert!(normalize(&format!("/{}", "x".repeat(99))).is_ok(), "100 bytes");
    }

    #[test]
    fn ids_have_the_efs_form() {
        let id = AccessPointId::from_entropy(u128::MAX);
        assert_eq!(id.as_str(), "fsap-fffffffffffffffff");
        assert_eq!(AccessPointId::parse(id.as_str()), Ok(id));
        assert_eq!(AccessPointId::from_entropy(1).as_str(), "fsap-00000000000000001");
        for bad in ["fsap-0000000000000000", "fsap-0000000000000000g", "fsap-0000000000000000A", "fs-1"] {
            assert!(AccessPointId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
