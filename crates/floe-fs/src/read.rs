//! Reading a byte range of a file: committed chunk maps resolved into segments, block
//! bytes from the caches or object storage, then this client's pending writes on top.

use crate::blocks::BlockStore;
use crate::handles::InodeState;
use crate::Result;
use floe_meta::{resolve_chunk, FileSystemId, InodeId, Meta, SegmentSource, SliceRef, CHUNK_SIZE};
use std::sync::Arc;

/// Chunk maps of a range, from the inode's cache or the metadata.
pub(crate) fn chunk_maps(
    meta: &Meta,
    fs: FileSystemId,
    ino: InodeId,
    state: &mut InodeState,
    offset: u64,
    end: u64,
) -> Result<Vec<(u64, Arc<Vec<SliceRef>>)>> {
    let mut maps = Vec::new();
    if offset >= end {
        return Ok(maps);
    }
    for chunk in offset / CHUNK_SIZE..=(end - 1) / CHUNK_SIZE {
        let refs = match state.chunks.get(&chunk) {
            Some(r) => Arc::clone(r),
            None => {
                let r = Arc::new(meta.read_chunk(fs, ino, chunk)?);
                state.chunks.insert(chunk, Arc::clone(&r));
                r
            }
        };
        maps.push((chunk, refs));
    }
    Ok(maps)
}

/// Fills `out` (the bytes `offset..offset+out.len()`, zeroed) from committed data.
pub(crate) fn read_committed(
    blocks: &Arc<BlockStore>,
    maps: &[(u64, Arc<Vec<SliceRef>>)],
    offset: u64,
    out: &mut [u8],
) -> Result<()> {
    let end = offset + out.len() as u64;
    let bs = blocks.block_size();
    for (chunk, refs) in maps {
        let base = chunk * CHUNK_SIZE;
        let lo = offset.max(base) - base;
        let hi = end.min(base + CHUNK_SIZE) - base;
        for seg in resolve_chunk(refs, lo as u32, hi as u32) {
            let SegmentSource::Slice { slice, off } = seg.source else { continue };
            let dst_start = (base + seg.pos as u64 - offset) as usize;
            let dst = &mut out[dst_start..dst_start + seg.len as usize];
            if let Some(bytes) = &slice.inline {
                let (a, b) = (off as usize, (off + seg.len) as usize);
                let avail = &bytes[a.min(bytes.len())..b.min(bytes.len())];
                dst[..avail.len()].copy_from_slice(avail);
                continue;
            }
            let mut done = 0usize;
            let mut from = off as usize;
            while done < dst.len() {
                let (index, within) = (from / bs, from % bs);
                let block = blocks.get(slice.id, index as u32)?;
                if within + (dst.len() - done) >= block.len() && (index + 1) * bs < slice.size as usize {
                    // The read runs to the end of this block: get the next one coming.
                    blocks.prefetch(slice.id, index as u32 + 1);
                }
                let n = block.len().saturating_sub(within).min(dst.len() - done);
                if n == 0 {
                    break; // A short block reads as zeros past its end.
                }
                dst[done..done + n].copy_from_slice(&block[within..within + n]);
                done += n;
                from += n;
            }
        }
    }
    Ok(())
}

/// Copies of this client's pending writes over `offset..end`, in write order, each with
/// where it goes in a buffer that starts at `offset`.
pub(crate) fn pending_overlay(state: &InodeState, block_size: usize, offset: u64, end: u64) -> Vec<(usize, Vec<u8>)> {
    let mut pieces = Vec::new();
    for s in &state.pending.slices {
        let start = s.chunk * CHUNK_SIZE + s.pos as u64;
        let stop = start + s.len(block_size) as u64;
        let (lo, hi) = (start.max(offset), stop.min(end));
        if lo >= hi {
            continue;
        }
        let mut bytes = vec![0u8; (hi - lo) as usize];
        s.copy_out(block_size, (lo - start) as usize, &mut bytes);
        pieces.push(((lo - offset) as usize, bytes));
    }
    pieces
}

/// The ranges of `offset..end` that hold data, sorted and merged: what committed chunk
/// maps place a slice over (up to `committed_end`; holes and never-written gaps are not
/// data), and this client's pending writes. Data written as zeros is data.
pub(crate) fn data_ranges(
    maps: &[(u64, Arc<Vec<SliceRef>>)],
    state: &InodeState,
    block_size: usize,
    offset: u64,
    committed_end: u64,
    end: u64,
) -> Vec<(u64, u64)> {
    let mut ranges = Vec::new();
    let committed_end = committed_end.min(end);
    for (chunk, refs) in maps {
        let base = chunk * CHUNK_SIZE;
        let lo = offset.max(base);
        let hi = committed_end.min(base + CHUNK_SIZE);
        if lo >= hi {
            continue;
        }
        for seg in resolve_chunk(refs, (lo - base) as u32, (hi - base) as u32) {
            if matches!(seg.source, SegmentSource::Slice { .. }) {
                ranges.push((base + seg.pos as u64, base + (seg.pos + seg.len) as u64));
            }
        }
    }
    for s in &state.pending.slices {
        let start = s.chunk * CHUNK_SIZE + s.pos as u64;
        let stop = start + s.len(block_size) as u64;
        let (lo, hi) = (start.max(offset), stop.min(end));
        if lo < hi {
            ranges.push((lo, hi));
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}
