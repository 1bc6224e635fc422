//! The chunk map: how a file's bytes are found.
//!
//! A file is cut into chunks of [`CHUNK_SIZE`] bytes. Each chunk holds an ordered list of
//! slice references; a later reference covers earlier ones where they overlap, and
//! bytes no reference covers are zeros. Writes therefore only append references, and a
//! reader resolves the list into non-overlapping [`Segment`]s.

use crate::SliceId;
use std::sync::Arc;

/// Bytes per chunk. A chunk is the unit of the chunk map, not an object.
pub const CHUNK_SIZE: u64 = 64 << 20;

/// One reference from a chunk to a byte range of a slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceRef {
    pub id: SliceId,
    /// Total length of the slice the bytes come from.
    pub size: u32,
    /// Offset of the first referenced byte inside the slice.
    pub off: u32,
    /// Number of bytes referenced.
    pub len: u32,
    /// Where the bytes go inside the chunk.
    pub pos: u32,
    /// The slice's bytes when the metadata stores it inline (filled in on reads only).
    pub inline: Option<Arc<[u8]>>,
}

impl SliceRef {
    /// A reference that reads as zeros over `pos..pos+len`.
    pub fn hole(pos: u32, len: u32) -> SliceRef {
        SliceRef { id: SliceId::HOLE, size: len, off: 0, len, pos, inline: None }
    }

    fn end(&self) -> u32 {
        self.pos + self.len
    }
}

/// Where the bytes of one segment of a chunk come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentSource {
    Zeros,
    /// From `slice`, starting at byte `off` of the slice.
    Slice {
        slice: SliceRef,
        off: u32,
    },
}

/// A run of bytes in a chunk with one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub pos: u32,
    pub len: u32,
    pub source: SegmentSource,
}

/// Resolves a chunk's references into the non-overlapping segments that cover
/// `start..end` of the chunk, in order; gaps are [`SegmentSource::Zeros`].
pub fn resolve_chunk(refs: &[SliceRef], start: u32, end: u32) -> Vec<Segment> {
    let mut segs: Vec<Segment> = vec![Segment { pos: start, len: end - start, source: SegmentSource::Zeros }];
    if start >= end {
        return Vec::new();
    }
    for r in refs {
        let (lo, hi) = (r.pos.max(start), r.end().min(end));
        if lo >= hi {
            continue;
        }
        let source = if r.id == SliceId::HOLE {
            SegmentSource::Zeros
        } else {
            SegmentSource::Slice { slice: r.clone(), off: r.off + (lo - r.pos) }
        };
        overwrite(&mut segs, Segment { pos: lo, len: hi - lo, source });
    }
    segs
}

/// Replaces the bytes `new` covers, splitting the segments it partly overlaps.
fn overwrite(segs: &mut Vec<Segment>, new: Segment) {
    let (lo, hi) = (new.pos, new.pos + new.len);
    let mut out = Vec::with_capacity(segs.len() + 2);
    let mut placed = false;
    for s in segs.drain(..) {
        let (s_lo, s_hi) = (s.pos, s.pos + s.len);
        if s_hi <= lo || s_lo >= hi {
            if s_lo >= hi && !placed {
                out.push(new.clone());
                placed = true;
            }
            out.push(s);
            continue;
        }
        if s_lo < lo {
            out.push(Segment { pos: s_lo, len: lo - s_lo, source: s.source.clone() });
        }
        if !placed {
            out.push(new.clone());
            placed = true;
        }
        if s_hi > hi {
            let source = match &s.source {
                SegmentSource::Zeros => SegmentSource::Zeros,
                SegmentSource::Slice { slice, off } => {
                    SegmentSource::Slice { slice: slice.clone(), off: off + (hi - s_lo) }
                }
            };
            out.push(Segment { pos: hi, len: s_hi - hi, source });
        }
    }
    if !placed {
        out.push(new);
    }
    *segs = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(id: u64, pos: u32, len: u32) -> SliceRef {
        SliceRef { id: SliceId(id), size: len, off: 0, len, pos, inline: None }
    }

    fn flat(segs: &[Segment]) -> Vec<(u32, u32, u64, u32)> {
        segs.iter()
            .map(|s| match &s.source {
                SegmentSource::Zeros => (s.pos, s.len, 0, 0),
                SegmentSource::Slice { slice, off } => (s.pos, s.len, slice.id.0, *off),
            })
            .collect()
    }

    #[test]
    fn empty_chunk_is_zeros() {
        assert_eq!(flat(&resolve_chunk(&[], 0, 10)), vec![(0, 10, 0, 0)]);
        assert!(resolve_chunk(&[], 5, 5).is_empty());
    }

    #[test]
    fn later_slices_cover_earlier_ones() {
        let refs = [slice(1, 0, 100), slice(2, 10, 20), slice(3, 90, 20)];
        assert_eq!(
            flat(&resolve_chunk(&refs, 0, 120)),
            vec![(0, 10, 1, 0), (10, 20, 2, 0), (30, 60, 1, 30), (90, 20, 3, 0), (110, 10, 0, 0)]
        );
    }

    #[test]
    fn hole_punches_zeros_and_range_clips() {
        let refs = [slice(1, 0, 100), SliceRef::hole(40, 10)];
        assert_eq!(flat(&resolve_chunk(&refs, 35, 55)), vec![(35, 5, 1, 35), (40, 10, 0, 0), (50, 5, 1, 50)]);
    }

    #[test]
    fn matches_a_byte_array_model() {
        // Differential check against painting bytes into an array, with a fixed seed.
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as u32
        };
        for round in 0..200 {
            let mut model = vec![0u64; 256];
            let mut refs = Vec::new();
            for i in 0..(1 + next(12)) {
                let pos = next(240);
                let len = 1 + next(256 - pos);
                let id = if next(5) == 0 { 0 } else { (round * 100 + i + 1) as u64 };
                refs.push(if id == 0 { SliceRef::hole(pos, len) } else { slice(id, pos, len) });
                for b in &mut model[pos as usize..(pos + len) as usize] {
                    *b = id;
                }
            }
            let (lo, hi) = (next(128), 128 + next(128));
            let mut got = vec![u64::MAX; 256];
            for s in resolve_chunk(&refs, lo, hi) {
                for b in &mut got[s.pos as usize..(s.pos + s.len) as usize] {
                    *b = match &s.source {
                        SegmentSource::Zeros => 0,
                        SegmentSource::Slice { slice, .. } => slice.id.0,
                    };
                }
            }
            assert_eq!(&got[lo as usize..hi as usize], &model[lo as usize..hi as usize], "round {round}");
        }
    }
}
