//! The chunk map side of file contents: reading it, committing writes, holes, compaction.

use super::attr::{truncate, MAX_FILE_SIZE};
use super::namespace::inode;
use super::Meta;
use crate::store::Counter;
use crate::{
    Attr, FileKind, FileSystemId, InodeId, MetaError, Result, SessionId, SliceId, SliceRef, TimeSpec, CHUNK_SIZE,
};

/// A slice as the garbage collector and fsck see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceInfo {
    pub id: SliceId,
    pub size: u32,
    /// Stored in the metadata, so there are no objects to delete.
    pub inline: bool,
}

/// An inode's attributes just before and just after a commit, in its transaction: a
/// client that knew the "before" knows its own change is the only one in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub before: Attr,
    pub after: Attr,
}

/// A slice written by a client, to be made visible by [`Meta::commit_write`].
#[derive(Clone, Debug)]
pub struct NewSlice<'a> {
    pub id: SliceId,
    pub size: u32,
    /// The bytes, when the slice is small enough to live in the metadata; otherwise its
    /// objects are already stored and the slice was reserved with [`Meta::reserve_slice`].
    pub inline: Option<&'a [u8]>,
}

/// One write to commit: `len` bytes of a slice placed at `pos` of a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub chunk: u64,
    pub r: SliceRef,
}

impl Meta {
    /// The references of one chunk, in write order.
    pub fn read_chunk(&self, fs: FileSystemId, ino: InodeId, chunk: u64) -> Result<Vec<SliceRef>> {
        self.read(|t| t.chunk_refs(fs, ino, chunk))
    }

    /// Hands out `n` consecutive slice ids for slices stored inline (nothing to clean
    /// up if they go unused); returns the first.
    pub fn next_slice_ids(&self, fs: FileSystemId, n: u64) -> Result<SliceId> {
        self.write(|t| Ok(SliceId(t.next_ids(fs, Counter::Slice, n)?)))
    }

    /// Hands out a slice id and records it as owned by `session` before its objects are
    /// written, so that a crash before the commit leaves a record for the collector.
    pub fn reserve_slice(&self, fs: FileSystemId, session: SessionId) -> Result<SliceId> {
        self.write(|t| {
            let id = SliceId(t.next_ids(fs, Counter::Slice, 1)?);
            t.insert_slice(fs, id, 0, None, Some(session))?;
            Ok(id)
        })
    }

    /// Makes written slices visible atomically: appends their placements, grows the
    /// file to at least `end`, and updates mtime and ctime.
    pub fn commit_write(
        &self,
        fs: FileSystemId,
        ino: InodeId,
        slices: &[NewSlice<'_>],
        placements: &[Placement],
        end: u64,
    ) -> Result<Attr> {
        Ok(self.commit_truncate_write(fs, ino, None, slices, placements, end)?.after)
    }

    /// [`Meta::commit_write`] after first cutting the file to `truncate_to` bytes, in the
    /// same transaction: `open(O_TRUNC)` + writes + close cost one commit.
    pub fn commit_truncate_write(
        &self,
        fs: FileSystemId,
        ino: InodeId,
        truncate_to: Option<u64>,
        slices: &[NewSlice<'_>],
        placements: &[Placement],
        end: u64,
    ) -> Result<Committed> {
        if end > MAX_FILE_SIZE {
            return Err(MetaError::FileTooLarge);
        }
        self.write(|t| {
            let mut a = inode(t, fs, ino)?;
            if a.kind != FileKind::File {
                return Err(MetaError::Invalid("not a regular file"));
            }
            let before = a.clone();
            if let Some(size) = truncate_to {
                truncate(t, fs, &mut a, size)?;
            }
            for s in slices {
                match s.inline {
                    Some(bytes) => t.insert_slice(fs, s.id, s.size, Some(bytes), None)?,
                    None => t.finish_slice(fs, s.id, s.size)?,
                }
            }
            for p in placements {
                t.append_ref(fs, ino, p.chunk, &p.r)?;
            }
            if end > a.size {
                t.add_usage(fs, (end - a.size) as i64, 0)?;
                a.size = end;
            }
            let now = TimeSpec::now();
            a.mtime = now;
            a.ctime = now;
            t.put_inode(fs, &a)?;
            Ok(Committed { before, after: a })
        })
    }

    /// fallocate: `punch` turns `offset..offset+len` into a hole; otherwise the range
    /// is allocated (floe stores zeros as holes, so only the size may change). Unless
    /// `keep_size`, the file grows to cover the range.
    pub fn fallocate(
        &self,
        fs: FileSystemId,
        ino: InodeId,
        offset: u64,
        len: u64,
        punch: bool,
        keep_size: bool,
    ) -> Result<Attr> {
        let end = offset.checked_add(len).filter(|e| *e <= MAX_FILE_SIZE).ok_or(MetaError::FileTooLarge)?;
        self.write(|t| {
            let mut a = inode(t, fs, ino)?;
            match a.kind {
                FileKind::File => {}
                FileKind::Directory => return Err(MetaError::IsDir),
                _ => return Err(MetaError::Invalid("fallocate needs a regular file")),
            }
            let now = TimeSpec::now();
            if punch {
                let hole_end = end.min(a.size);
                let mut pos = offset;
                while pos < hole_end {
                    let chunk = pos / CHUNK_SIZE;
                    let within = pos % CHUNK_SIZE;
                    let n = (CHUNK_SIZE - within).min(hole_end - pos);
                    t.append_ref(fs, ino, chunk, &SliceRef::hole(within as u32, n as u32))?;
                    pos += n;
                }
                a.mtime = now;
                a.ctime = now;
            }
            if !keep_size && end > a.size {
                truncate(t, fs, &mut a, end)?;
                a.mtime = now;
                a.ctime = now;
            }
            t.put_inode(fs, &a)?;
            Ok(a)
        })
    }

    /// Chunks with at least `min_refs` references, for compaction.
    pub fn fragmented_chunks(&self, fs: FileSystemId, min_refs: usize, limit: usize) -> Result<Vec<(InodeId, u64)>> {
        self.read(|t| t.fragmented_chunks(fs, min_refs, limit))
    }

    /// Replaces the first `old.len()` references of a chunk with `new` when they are
    /// still what the compactor read (a write appended since stays after them).
    /// Returns false, changing nothing, when the chunk changed underneath.
    pub fn replace_chunk_prefix(
        &self,
        fs: FileSystemId,
        ino: InodeId,
        chunk: u64,
        old: &[SliceRef],
        new_slice: &NewSlice<'_>,
        new: &[SliceRef],
    ) -> Result<bool> {
        self.write(|t| {
            let current = t.chunk_refs(fs, ino, chunk)?;
            let same = current.len() >= old.len()
                && current.iter().zip(old).all(|(c, o)| (c.id, c.off, c.len, c.pos) == (o.id, o.off, o.len, o.pos));
            if !same {
                return Ok(false);
            }
            // Rewrite the inode's row unchanged: every change to a chunk (commits,
            // truncates, punches) writes that row, so a write committing beside this
            // compaction conflicts with it and runs again after it. Without it,
            // PostgreSQL could commit both, ordering the rows by ids drawn before
            // either committed: the merged (older) bytes could land over the write.
            let a = inode(t, fs, ino)?;
            t.put_inode(fs, &a)?;
            match new_slice.inline {
                Some(bytes) => t.insert_slice(fs, new_slice.id, new_slice.size, Some(bytes), None)?,
                None => t.finish_slice(fs, new_slice.id, new_slice.size)?,
            }
            let mut refs = new.to_vec();
            refs.extend(current[old.len()..].iter().cloned());
            t.replace_chunk(fs, ino, chunk, &refs)?;
            Ok(true)
        })
    }
}
