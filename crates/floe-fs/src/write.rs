//! Buffered writes of one inode, committed as slices.
//!
//! Writes go to the inode's [`WriteBuffer`]: a list of pending slices in write order. A
//! write that continues the last pending slice extends it; anything else starts a new
//! one (extending an earlier slice could let it cover a later one's newer bytes). Full
//! blocks of a growing slice are uploaded in the background at once; the rest is
//! uploaded when the buffer is committed (close, fsync, a size change, or the buffer
//! growing past its limit). The commit is one metadata transaction, so other readers
//! see all of a flush or none of it.

use crate::blocks::BlockStore;
use crate::buffers::BlockBuf;
use crate::{FsError, Result};
use bytes::Bytes;
use floe_meta::{FileSystemId, InodeId, Meta, NewSlice, Placement, SessionId, SliceId, SliceRef, CHUNK_SIZE};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub(crate) struct PendingSlice {
    pub(crate) chunk: u64,
    pub(crate) pos: u32,
    /// Full blocks, already on their way to object storage.
    sealed: Vec<Bytes>,
    tail: Tail,
    id: Option<SliceId>,
    uploads: Vec<Upload>,
    /// Blocks whose upload failed, stored again by the next commit attempt.
    failed: Vec<(u32, Bytes)>,
}

/// The bytes of a slice after its sealed blocks: a heap buffer that grows as needed
/// until the slice's first block is sealed (a 30-byte file takes no 4 MiB buffer), then
/// a page-aligned buffer of the pool, which the embedded store writes without a copy.
enum Tail {
    Heap(Vec<u8>),
    Block(BlockBuf),
}

impl Tail {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Tail::Heap(v) => v,
            Tail::Block(b) => b.as_ref(),
        }
    }

    fn extend_from_slice(&mut self, bytes: &[u8]) {
        match self {
            Tail::Heap(v) => v.extend_from_slice(bytes),
            Tail::Block(b) => b.extend_from_slice(bytes),
        }
    }
}

/// A block on its way to object storage, with its bytes kept until the commit so that
/// a failed upload is retried rather than committed as missing.
struct Upload {
    index: u32,
    block: Bytes,
    task: JoinHandle<Result<()>>,
}

impl PendingSlice {
    pub(crate) fn len(&self, block_size: usize) -> usize {
        self.sealed.len() * block_size + self.tail.len()
    }

    /// Copies the bytes `from..from+out.len()` of this slice into `out`.
    pub(crate) fn copy_out(&self, block_size: usize, mut from: usize, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let (block, within) = (from / block_size, from % block_size);
            let src: &[u8] = if block < self.sealed.len() { &self.sealed[block] } else { self.tail.as_slice() };
            let n = (src.len() - within).min(out.len() - done);
            out[done..done + n].copy_from_slice(&src[within..within + n]);
            done += n;
            from += n;
        }
    }
}

/// The pending writes of one inode.
#[derive(Default)]
pub(crate) struct WriteBuffer {
    pub(crate) slices: Vec<PendingSlice>,
    /// The end of the furthest pending write (0 when empty).
    pub(crate) end: u64,
    /// A truncation (from `open(O_TRUNC)`) to apply before the pending slices, in the
    /// same commit. Committed bytes past it read as zeros until then.
    pub(crate) truncate: Option<u64>,
    /// When the last pending change was made: what mtime and ctime show until the
    /// commit sets them.
    pub(crate) changed: Option<floe_meta::TimeSpec>,
    /// Some pending write came through a handle that bypasses the kernel's page cache:
    /// the commit cannot vouch for what the kernel cached.
    pub(crate) uncached: bool,
    bytes: usize,
}

/// Hands out slice ids for inline slices in batches, saving a transaction per slice.
pub(crate) struct SliceIds {
    range: Mutex<(u64, u64)>,
}

impl SliceIds {
    pub(crate) fn new() -> SliceIds {
        SliceIds { range: Mutex::new((0, 0)) }
    }

    fn next(&self, meta: &Meta, fs: FileSystemId) -> Result<SliceId> {
        let mut r = self.range.lock().unwrap_or_else(|p| p.into_inner());
        if r.0 == r.1 {
            let first = meta.next_slice_ids(fs, 256)?.0;
            *r = (first, first + 256);
        }
        r.0 += 1;
        Ok(SliceId(r.0 - 1))
    }
}

/// What a buffer needs from its file system to upload and commit.
pub(crate) struct WriteContext<'a> {
    pub(crate) meta: &'a Meta,
    pub(crate) fs: FileSystemId,
    pub(crate) session: SessionId,
    pub(crate) blocks: &'a Arc<BlockStore>,
    pub(crate) ids: &'a SliceIds,
    pub(crate) inline_max: usize,
    pub(crate) seen: &'a crate::handles::SeenVersions,
}

impl WriteBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.slices.is_empty() && self.truncate.is_none()
    }

    /// Cuts the file to zero bytes at the next commit. Called with no pending slices.
    pub(crate) fn truncate_all(&mut self) {
        debug_assert!(self.slices.is_empty());
        self.truncate = Some(0);
        self.end = 0;
        self.changed = Some(floe_meta::TimeSpec::now());
    }

    /// The file's size as this client sees it, given the committed size.
    pub(crate) fn size(&self, committed: u64) -> u64 {
        self.truncate.unwrap_or(committed).max(self.end)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Buffers `data` at `offset`.
    pub(crate) fn write(&mut self, cx: &WriteContext<'_>, offset: u64, mut data: &[u8]) -> Result<()> {
        let bs = cx.blocks.block_size();
        let mut pos = offset;
        while !data.is_empty() {
            let chunk = pos / CHUNK_SIZE;
            let within = (pos % CHUNK_SIZE) as u32;
            let n = ((CHUNK_SIZE - within as u64) as usize).min(data.len());
            let continues =
                self.slices.last().is_some_and(|s| s.chunk == chunk && s.pos as usize + s.len(bs) == within as usize);
            if !continues {
                self.slices.push(PendingSlice {
                    chunk,
                    pos: within,
                    sealed: Vec::new(),
                    tail: Tail::Heap(Vec::new()),
                    id: None,
                    uploads: Vec::new(),
                    failed: Vec::new(),
                });
            }
            let slice = self.slices.last_mut().expect("a pending slice was just ensured");
            let mut piece = &data[..n];
            while !piece.is_empty() {
                let room = bs - slice.tail.len();
                let take = room.min(piece.len());
                slice.tail.extend_from_slice(&piece[..take]);
                piece = &piece[take..];
                if slice.tail.len() == bs {
                    seal_block(cx, slice, bs)?;
                }
            }
            self.bytes += n;
            pos += n as u64;
            data = &data[n..];
        }
        self.end = self.end.max(pos);
        self.changed = Some(floe_meta::TimeSpec::now());
        Ok(())
    }

    /// Uploads what is left and commits every pending slice in one transaction.
    /// On failure nothing is committed and the buffer is kept, so a retry can succeed.
    pub(crate) fn commit(&mut self, cx: &WriteContext<'_>, ino: InodeId) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let bs = cx.blocks.block_size();
        let mut inline: Vec<(SliceId, Vec<u8>)> = Vec::new();
        let mut placements = Vec::with_capacity(self.slices.len());
        let mut object_slices = Vec::new();
        for s in &mut self.slices {
            let len = s.len(bs);
            let id = if s.id.is_none() && s.sealed.is_empty() && len <= cx.inline_max {
                let id = cx.ids.next(cx.meta, cx.fs)?;
                inline.push((id, s.tail.as_slice().to_vec()));
                id
            } else {
                if let Some(id) = s.id {
                    for (index, block) in std::mem::take(&mut s.failed) {
                        let task = cx.blocks.put(id, index, block.clone());
                        s.uploads.push(Upload { index, block, task });
                    }
                }
                if !s.tail.is_empty() {
                    let id = ensure_id(cx, s)?;
                    let index = s.sealed.len() as u32;
                    // An earlier, failed attempt may still be storing an older tail under
                    // the same name: let it finish before storing the current one.
                    if let Some(pos) = s.uploads.iter().position(|u| u.index == index) {
                        let _ = cx.blocks.wait(s.uploads.remove(pos).task);
                    }
                    let block = Bytes::copy_from_slice(s.tail.as_slice());
                    let task = cx.blocks.put(id, index, block.clone());
                    s.uploads.push(Upload { index, block, task });
                }
                let id = ensure_id(cx, s)?;
                object_slices.push((id, len as u32));
                id
            };
            placements.push(Placement {
                chunk: s.chunk,
                r: SliceRef { id, size: len as u32, off: 0, len: len as u32, pos: s.pos, inline: None },
            });
        }
        let mut failure = None;
        for s in &mut self.slices {
            for upload in s.uploads.drain(..) {
                let err = match cx.blocks.wait(upload.task) {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => e,
                    Err(join) => FsError::Store(format!("upload task failed: {join}")),
                };
                failure.get_or_insert(err);
                // The tail is stored afresh by every attempt; sealed blocks are retried.
                if (upload.index as usize) < s.sealed.len() {
                    s.failed.push((upload.index, upload.block));
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let mut news: Vec<NewSlice<'_>> =
            inline.iter().map(|(id, d)| NewSlice { id: *id, size: d.len() as u32, inline: Some(d) }).collect();
        news.extend(object_slices.iter().map(|(id, size)| NewSlice { id: *id, size: *size, inline: None }));
        let committed = cx.meta.commit_truncate_write(cx.fs, ino, self.truncate, &news, &placements, self.end)?;
        if std::mem::take(&mut self.uncached) {
            cx.seen.forget(ino);
        } else {
            cx.seen.committed(&committed);
        }
        self.truncate = None;
        self.changed = None;
        // Dropping the slices returns their block buffers to the pool.
        self.slices.clear();
        self.bytes = 0;
        self.end = 0;
        Ok(())
    }
}

fn ensure_id(cx: &WriteContext<'_>, s: &mut PendingSlice) -> Result<SliceId> {
    if let Some(id) = s.id {
        return Ok(id);
    }
    let id = cx.meta.reserve_slice(cx.fs, cx.session)?;
    s.id = Some(id);
    Ok(id)
}

fn seal_block(cx: &WriteContext<'_>, s: &mut PendingSlice, bs: usize) -> Result<()> {
    let id = ensure_id(cx, s)?;
    let block = match std::mem::replace(&mut s.tail, Tail::Block(cx.blocks.buffers.take())) {
        Tail::Heap(v) => Bytes::from(v),
        Tail::Block(b) => b.freeze(),
    };
    debug_assert!(block.len() == bs);
    let index = s.sealed.len() as u32;
    let task = cx.blocks.put(id, index, block.clone());
    s.uploads.push(Upload { index, block: block.clone(), task });
    s.sealed.push(block);
    Ok(())
}
