//! Block-sized write buffers: page-aligned, so that the embedded store writes a full
//! block with `O_DIRECT` straight from the buffer the writes filled (no copy into an
//! aligned one), and reused, because a fresh 4 MiB allocation is a fresh mapping
//! whose every page faults on first touch, which showed up as a large share of write
//! time. A buffer goes back to its pool when the last [`Bytes`] made of it drops.

use bytes::Bytes;
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// Alignment of a buffer: the page size, which covers every block size a disk reports.
pub(crate) const ALIGN: usize = 4096;

/// The free buffers of one size.
pub(crate) struct BufferPool {
    free: Arc<Free>,
}

struct Free {
    layout: Layout,
    keep: usize,
    buffers: Mutex<Vec<Allocation>>,
}

/// One aligned allocation of `Free::layout`.
struct Allocation(NonNull<u8>);

// SAFETY: the allocation is plain bytes owned by whoever holds the value.
unsafe impl Send for Allocation {}

impl Free {
    fn take(&self) -> Allocation {
        if let Some(a) = self.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return a;
        }
        // SAFETY: the layout has a non-zero size (checked in BufferPool::new).
        let p = unsafe { std::alloc::alloc(self.layout) };
        Allocation(NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(self.layout)))
    }

    fn give(&self, a: Allocation) {
        let mut free = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < self.keep {
            free.push(a);
        } else {
            drop(free);
            // SAFETY: allocated in take() with this layout, and freed once: the value is
            // consumed here.
            unsafe { std::alloc::dealloc(a.0.as_ptr(), self.layout) }
        }
    }
}

impl Drop for Free {
    fn drop(&mut self) {
        for a in self.buffers.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            // SAFETY: as in give(): allocated with this layout, freed once.
            unsafe { std::alloc::dealloc(a.0.as_ptr(), self.layout) }
        }
    }
}

impl BufferPool {
    /// A pool of `size`-byte buffers that keeps up to `keep` free ones.
    pub(crate) fn new(size: usize, keep: usize) -> BufferPool {
        let layout = Layout::from_size_align(size.max(1), ALIGN).expect("a block size below isize::MAX");
        BufferPool { free: Arc::new(Free { layout, keep, buffers: Mutex::new(Vec::new()) }) }
    }

    /// An empty buffer with room for one block.
    pub(crate) fn take(&self) -> BlockBuf {
        BlockBuf { data: Some(self.free.take()), len: 0, pool: Arc::clone(&self.free) }
    }
}

/// A buffer of the pool, filled from the start.
pub(crate) struct BlockBuf {
    /// `None` only while dropping.
    data: Option<Allocation>,
    len: usize,
    pool: Arc<Free>,
}

impl BlockBuf {
    pub(crate) fn capacity(&self) -> usize {
        self.pool.layout.size()
    }

    /// Appends `bytes`, which must fit.
    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= self.capacity() - self.len, "a block buffer overflowed");
        let a = self.data.as_ref().expect("a live buffer");
        // SAFETY: the destination lies within the allocation (checked above) and cannot
        // overlap `bytes`, which the caller holds by shared reference.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), a.0.as_ptr().add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    /// The bytes as an immutable block; the buffer returns to the pool once every
    /// clone of it is dropped.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for BlockBuf {
    fn as_ref(&self) -> &[u8] {
        let a = self.data.as_ref().expect("a live buffer");
        // SAFETY: the first `len` bytes were written by extend_from_slice, and the
        // allocation lives as long as self.
        unsafe { std::slice::from_raw_parts(a.0.as_ptr(), self.len) }
    }
}

impl Drop for BlockBuf {
    fn drop(&mut self) {
        if let Some(a) = self.data.take() {
            self.pool.give(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_hold_what_was_written_and_are_reused() {
        let pool = BufferPool::new(64 << 10, 2);
        let mut b = pool.take();
        assert_eq!(b.as_ref().as_ptr() as usize % ALIGN, 0, "page-aligned");
        b.extend_from_slice(b"hello, ");
        b.extend_from_slice(b"block");
        assert_eq!(b.as_ref().len(), 12);
        let frozen = b.freeze();
        let clone = frozen.clone();
        assert_eq!(&frozen[..], b"hello, block");
        let at = frozen.as_ptr();
        drop(frozen);
        assert_eq!(pool.free.buffers.lock().expect("lock").len(), 0, "a clone still holds it");
        drop(clone);
        assert_eq!(pool.free.buffers.lock().expect("lock").len(), 1, "back in the pool");
        let again = pool.take();
        assert!(again.as_ref().is_empty(), "taken empty");
        assert_eq!(again.as_ref().as_ptr(), at, "the same allocation");
        // Beyond `keep`, buffers are freed rather than kept.
        let all: Vec<BlockBuf> = (0..4).map(|_| pool.take()).collect();
        drop(all);
        drop(again);
        assert_eq!(pool.free.buffers.lock().expect("lock").len(), 2);
    }

    #[test]
    #[should_panic(expected = "overflowed")]
    fn a_buffer_refuses_more_than_a_block() {
        let pool = BufferPool::new(8, 1);
        let mut b = pool.take();
        b.extend_from_slice(b"0123456789");
    }
}
