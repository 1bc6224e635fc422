//! The namespace half of `floe fsck`: every invariant between inodes, directory entries,
//! chunk references and slices, checked over one consistent snapshot, and the repairs
//! that lose nothing.

use super::{Meta, NewNode};
use crate::store::{Dentry, MetaTxn};
use crate::{Attr, Caller, FileKind, FileSystemId, InodeId, MetaError, Result, SliceId};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Where repaired unreachable inodes are linked, in the root directory.
pub const LOST_FOUND: &[u8] = b"lost+found";

/// What the namespace check found (before any repair).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceReport {
    /// Entries whose directory or target inode does not exist, or that name a directory
    /// as a file or the other way round: (directory, name).
    pub bad_entries: Vec<(InodeId, Vec<u8>)>,
    /// Inodes whose link count differs from what the entries say: (inode, recorded, counted).
    pub wrong_nlink: Vec<(InodeId, u32, u32)>,
    /// Directories whose recorded parent is not the directory holding their entry.
    pub wrong_parent: Vec<InodeId>,
    /// Linked inodes that no path from the root reaches.
    pub unreachable: Vec<InodeId>,
    /// Chunk references to slices that have no record (their data is lost).
    pub dangling_refs: Vec<(InodeId, SliceId)>,
    /// Slices whose recorded reference count is wrong: (slice, recorded, counted).
    pub wrong_refcounts: Vec<(SliceId, u64, u64)>,
    /// Inodes linked into `/lost+found` by the repair.
    pub relinked: Vec<InodeId>,
}

impl NamespaceReport {
    pub fn clean(&self) -> bool {
        self.bad_entries.is_empty()
            && self.wrong_nlink.is_empty()
            && self.wrong_parent.is_empty()
            && self.unreachable.is_empty()
            && self.dangling_refs.is_empty()
            && self.wrong_refcounts.is_empty()
    }
}

/// One snapshot of the namespace, and what follows from it.
struct Snapshot {
    inodes: HashMap<InodeId, Attr>,
    /// Entries that point from an existing directory to an existing inode of the kind
    /// they say, by directory.
    children: HashMap<InodeId, Vec<Dentry>>,
    bad_entries: Vec<(InodeId, Vec<u8>)>,
    refs: Vec<(InodeId, SliceId)>,
    slices: BTreeMap<SliceId, u64>,
}

fn snapshot(t: &mut dyn MetaTxn, fs: FileSystemId) -> Result<Snapshot> {
    let inodes: HashMap<InodeId, Attr> = t.all_inodes(fs)?.into_iter().map(|a| (a.ino, a)).collect();
    let mut children: HashMap<InodeId, Vec<Dentry>> = HashMap::new();
    let mut bad_entries = Vec::new();
    for (parent, d) in t.all_dentries(fs)? {
        let parent_ok = inodes.get(&parent).is_some_and(|p| p.kind == FileKind::Directory);
        let target_ok = inodes.get(&d.ino).is_some_and(|a| a.kind == d.kind);
        if parent_ok && target_ok {
            children.entry(parent).or_default().push(d);
        } else {
            bad_entries.push((parent, d.name));
        }
    }
    Ok(Snapshot {
        inodes,
        children,
        bad_entries,
        refs: t.all_refs(fs)?,
        slices: t.slice_ref_counts(fs)?.into_iter().collect(),
    })
}

impl Snapshot {
    /// Link counts as the entries say: entries for files, 2 + subdirectories for directories.
    fn counted_nlink(&self) -> HashMap<InodeId, u32> {
        let mut counted: HashMap<InodeId, u32> = HashMap::new();
        for (ino, a) in &self.inodes {
            if a.kind == FileKind::Directory {
                counted.insert(*ino, 2);
            }
        }
        for (parent, entries) in &self.children {
            for d in entries {
                if d.kind == FileKind::Directory {
                    *counted.entry(*parent).or_default() += 1;
                } else {
                    *counted.entry(d.ino).or_default() += 1;
                }
            }
        }
        counted
    }

    fn reachable(&self) -> HashSet<InodeId> {
        let mut seen = HashSet::from([InodeId::ROOT]);
        let mut queue = VecDeque::from([InodeId::ROOT]);
        while let Some(dir) = queue.pop_front() {
            for d in self.children.get(&dir).into_iter().flatten() {
                if seen.insert(d.ino) && d.kind == FileKind::Directory {
                    queue.push_back(d.ino);
                }
            }
        }
        seen
    }

    fn report(&self) -> NamespaceReport {
        let mut r = NamespaceReport { bad_entries: self.bad_entries.clone(), ..NamespaceReport::default() };
        let counted = self.counted_nlink();
        let mut dir_entries: HashMap<InodeId, Vec<InodeId>> = HashMap::new();
        for (parent, entries) in &self.children {
            for d in entries.iter().filter(|d| d.kind == FileKind::Directory) {
                dir_entries.entry(d.ino).or_default().push(*parent);
            }
        }
        let reachable = self.reachable();
        for (ino, a) in &self.inodes {
            // An inode without links is an unlinked one kept while open; purging it is
            // the sessions' business, not an inconsistency.
            if a.nlink == 0 && !dir_entries.contains_key(ino) && counted.get(ino).copied().unwrap_or(0) == 0 {
                continue;
            }
            let want = counted.get(ino).copied().unwrap_or(0);
            if a.nlink != want && !(a.kind == FileKind::Directory && a.nlink == 0) {
                r.wrong_nlink.push((*ino, a.nlink, want));
            }
            if a.kind == FileKind::Directory && *ino != InodeId::ROOT {
                match dir_entries.get(ino).map(Vec::as_slice) {
                    Some([p]) if *p == a.parent => {}
                    _ if a.nlink == 0 => {}
                    _ => r.wrong_parent.push(*ino),
                }
            }
            if !reachable.contains(ino) && a.nlink > 0 {
                r.unreachable.push(*ino);
            }
        }
        let mut refs: BTreeMap<SliceId, u64> = BTreeMap::new();
        for (ino, slice) in &self.refs {
            if self.slices.contains_key(slice) {
                *refs.entry(*slice).or_default() += 1;
            } else {
                r.dangling_refs.push((*ino, *slice));
            }
        }
        for (slice, recorded) in &self.slices {
            let counted = refs.get(slice).copied().unwrap_or(0);
            if *recorded != counted {
                r.wrong_refcounts.push((*slice, *recorded, counted));
            }
        }
        r.bad_entries.sort();
        r.wrong_nlink.sort();
        r.wrong_parent.sort();
        r.unreachable.sort();
        r.dangling_refs.sort();
        r
    }
}

impl Meta {
    /// The slices some chunk map refers to: the ones whose objects must exist.
    pub fn referenced_slices(&self, fs: FileSystemId) -> Result<HashSet<SliceId>> {
        self.read(|t| Ok(t.all_refs(fs)?.into_iter().map(|(_, s)| s).collect()))
    }

    /// Checks the namespace invariants of file system `fs` over one snapshot; with
    /// `repair`, fixes what can be fixed without losing data: removes entries that
    /// point nowhere, links unreachable inodes into `/lost+found` (named by inode
    /// number), and rewrites link counts, directory parents and slice reference counts
    /// to what the entries and chunk maps say. Dangling chunk references are reported,
    /// never repaired: that data is lost. Returns what the check found before repairing.
    pub fn check_namespace(&self, fs: FileSystemId, repair: bool) -> Result<NamespaceReport> {
        let mut report = self.read(|t| Ok(snapshot(t, fs)?.report()))?;
        if !repair || report.clean() {
            return Ok(report);
        }
        if !report.unreachable.is_empty() {
            let lost_found = self.lost_found(fs)?;
            report.relinked = self.write(|t| relink_unreachable(t, fs, lost_found))?;
        }
        self.write(|t| {
            for (parent, name) in snapshot(t, fs)?.bad_entries {
                t.delete_dentry(fs, parent, &name)?;
            }
            let snap = snapshot(t, fs)?;
            let counted = snap.counted_nlink();
            let fresh = snap.report();
            for (ino, _, want) in &fresh.wrong_nlink {
                if let Some(mut a) = snap.inodes.get(ino).cloned() {
                    a.nlink = *want;
                    t.put_inode(fs, &a)?;
                }
            }
            for (parent, entries) in &snap.children {
                for d in entries.iter().filter(|d| d.kind == FileKind::Directory) {
                    if let Some(a) = snap.inodes.get(&d.ino) {
                        if fresh.wrong_parent.contains(&d.ino) {
                            let mut a = a.clone();
                            a.parent = *parent;
                            a.nlink = counted.get(&d.ino).copied().unwrap_or(2);
                            t.put_inode(fs, &a)?;
                        }
                    }
                }
            }
            for (slice, _, counted) in &fresh.wrong_refcounts {
                t.set_slice_refs(fs, *slice, *counted)?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// The `/lost+found` directory, created (root only, 0700) when missing.
    fn lost_found(&self, fs: FileSystemId) -> Result<InodeId> {
        match self.lookup(fs, &Caller::root(), InodeId::ROOT, LOST_FOUND) {
            Ok(a) if a.kind == FileKind::Directory => Ok(a.ino),
            Ok(_) => Err(MetaError::Invalid("/lost+found exists and is not a directory")),
            Err(MetaError::NotFound) => {
                let node = NewNode { kind: FileKind::Directory, perm: 0o700, umask: 0, rdev: 0, target: None };
                Ok(self.mknod(fs, &Caller::root(), InodeId::ROOT, LOST_FOUND, &node)?.ino)
            }
            Err(e) => Err(e),
        }
    }
}

/// Links every unreachable inode that no reachable entry names into `lost+found`, one
/// component at a time (linking a directory makes its subtree reachable again).
fn relink_unreachable(t: &mut dyn MetaTxn, fs: FileSystemId, lost_found: InodeId) -> Result<Vec<InodeId>> {
    let mut relinked = Vec::new();
    loop {
        let snap = snapshot(t, fs)?;
        let reachable = snap.reachable();
        // Prefer inodes no valid entry names at all: the tops of unreachable subtrees.
        let named: HashSet<InodeId> = snap.children.values().flatten().map(|d| d.ino).collect();
        let mut candidates: Vec<&Attr> =
            snap.inodes.values().filter(|a| a.nlink > 0 && !reachable.contains(&a.ino)).collect();
        if candidates.is_empty() {
            return Ok(relinked);
        }
        candidates.sort_by_key(|a| (named.contains(&a.ino), a.ino));
        let a = candidates[0].clone();
        if a.kind == FileKind::Directory {
            // A directory has one entry: drop the unreachable one it may have.
            for (parent, entries) in &snap.children {
                if let Some(d) = entries.iter().find(|d| d.ino == a.ino) {
                    t.delete_dentry(fs, *parent, &d.name)?;
                }
            }
        }
        let name = format!("#{}", a.ino.0).into_bytes();
        if t.get_dentry(fs, lost_found, &name)?.is_some() {
            return Err(MetaError::Invalid("/lost+found already holds an entry of that name"));
        }
        t.insert_dentry(fs, lost_found, &name, a.ino, a.kind)?;
        let mut moved = a.clone();
        if a.kind == FileKind::Directory {
            moved.parent = lost_found;
        }
        t.put_inode(fs, &moved)?;
        relinked.push(a.ino);
    }
}
