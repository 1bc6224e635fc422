//! The embedded object store: a local directory whose objects are written with
//! `O_DIRECT` (ADR 0014).
//!
//! Reads, listings and deletes are `object_store`'s `LocalFileSystem`; only a put is
//! floe's own. A buffered put copies the block into page cache the kernel must first
//! allocate, then writes it back at fsync: on a VM whose free memory the host has
//! taken back, that allocation faulted its way to 290 MiB/s, where a direct write of
//! the same 4 MiB blocks ran at 1,250 MiB/s. Objects are written once and read
//! through floe's own caches and the kernel's page cache of the mount, so keeping a
//! second copy in the page cache of the object files buys nothing either.
//!
//! A put is as durable as `LocalFileSystem::with_fsync(true)`: the bytes go to a
//! staging file named like its (`<key>#<n>`, which listings skip), are synced with
//! the file's size, and the file is renamed into place before its directory is
//! synced. A file system that refuses `O_DIRECT` gets buffered puts instead.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use std::alloc::Layout;
use std::fs::File;
use std::io::ErrorKind;
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Alignment of direct I/O buffers, offsets and lengths: the page size, which covers
/// every logical block size a disk reports.
const ALIGN: usize = 4096;
/// Bytes copied and written per `pwrite`: a block, so a block is one write.
const CHUNK: usize = 4 << 20;
/// Aligned buffers kept for reuse: one per concurrent put, as many as usually run.
const KEEP_BUFFERS: usize = 4;

/// A local directory of objects written with `O_DIRECT`.
#[derive(Debug)]
pub struct DirectLocal {
    inner: LocalFileSystem,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Cleared at the first put the file system refuses to open with `O_DIRECT`.
    direct: AtomicBool,
    buffers: Mutex<Vec<AlignedBuf>>,
}

impl DirectLocal {
    /// `inner` must have fsync on: the puts that fall back to it, and the directories
    /// it creates, are then as durable as the direct ones.
    pub fn new(inner: LocalFileSystem) -> DirectLocal {
        DirectLocal {
            inner,
            shared: Arc::new(Shared { direct: AtomicBool::new(true), buffers: Mutex::new(Vec::new()) }),
        }
    }
}

impl std::fmt::Display for DirectLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DirectLocal({})", self.inner)
    }
}

fn io_error(e: std::io::Error) -> object_store::Error {
    // The io::Error stays the source, so that a full disk still reads as ENOSPC.
    object_store::Error::Generic { store: "DirectLocal", source: Box::new(e) }
}

#[async_trait]
impl ObjectStore for DirectLocal {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        let plain = matches!(opts.mode, PutMode::Overwrite) && opts.attributes.is_empty();
        if !plain || !self.shared.direct.load(Ordering::Relaxed) {
            return self.inner.put_opts(location, payload, opts).await;
        }
        let path = self.inner.path_to_filesystem(location)?;
        let shared = Arc::clone(&self.shared);
        let (payload, written) = tokio::task::spawn_blocking(move || {
            let written = shared.put(&path, &payload);
            (payload, written)
        })
        .await
        .map_err(|e| io_error(std::io::Error::other(e)))?;
        match written {
            Ok(()) => Ok(PutResult { e_tag: None, version: None, extensions: Default::default() }),
            Err(PutError::Refused) => {
                tracing::warn!(store = %self.inner, "the object directory refuses O_DIRECT: buffered writes");
                self.shared.direct.store(false, Ordering::Relaxed);
                self.inner.put_opts(location, payload, opts).await
            }
            Err(PutError::Failed(e)) => Err(io_error(e)),
        }
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Why a direct put did not happen.
enum PutError {
    /// The file system does not do `O_DIRECT`: the caller puts the payload buffered.
    Refused,
    Failed(std::io::Error),
}

impl Shared {
    fn put(&self, path: &std::path::Path, payload: &PutPayload) -> std::result::Result<(), PutError> {
        let (file, staging) = match open_staging(path) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Err(PutError::Refused),
            Err(e) => return Err(PutError::Failed(e)),
        };
        let written = self.write_all(&file, payload).and_then(|()| {
            file.sync_data()?;
            drop(file);
            std::fs::rename(&staging, path)?;
            sync_dir(path.parent().unwrap_or(std::path::Path::new("/")))
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&staging);
            return Err(PutError::Failed(e));
        }
        Ok(())
    }

    /// Writes the payload from an aligned buffer, in whole aligned pieces; the last
    /// piece is padded with zeros and the file cut back to the payload's length.
    fn write_all(&self, file: &File, payload: &PutPayload) -> std::io::Result<()> {
        let mut buf = self.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_else(AlignedBuf::new);
        let result = (|| {
            let total = payload.content_length();
            let mut offset = 0u64;
            let mut filled = 0usize;
            for part in payload.iter() {
                let mut part: &[u8] = part;
                while !part.is_empty() {
                    let n = (CHUNK - filled).min(part.len());
                    buf.as_mut()[filled..filled + n].copy_from_slice(&part[..n]);
                    filled += n;
                    part = &part[n..];
                    if filled == CHUNK {
                        file.write_all_at(buf.as_ref(), offset)?;
                        offset += CHUNK as u64;
                        filled = 0;
                    }
                }
            }
            if filled > 0 {
                let padded = filled.next_multiple_of(ALIGN);
                buf.as_mut()[filled..padded].fill(0);
                file.write_all_at(&buf.as_ref()[..padded], offset)?;
                if padded != filled {
                    file.set_len(total as u64)?;
                }
            }
            Ok(())
        })();
        let mut kept = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < KEEP_BUFFERS {
            kept.push(buf);
        }
        result
    }
}

/// A new staging file beside `path` (`<path>#<n>`), opened for direct writes; the
/// directories are made (and synced) when missing.
fn open_staging(path: &std::path::Path) -> std::io::Result<(File, PathBuf)> {
    let mut n = 1u32;
    loop {
        let mut staging = path.as_os_str().to_owned();
        staging.push(format!("#{n}"));
        let staging = PathBuf::from(staging);
        let opened =
            std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_DIRECT).open(&staging);
        match opened {
            Ok(f) => return Ok((f, staging)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => n += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => make_dirs(path.parent().unwrap_or(path))?,
            Err(e) => return Err(e),
        }
    }
}

/// Makes `dir` and its missing parents, syncing each new entry's parent.
fn make_dirs(dir: &std::path::Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d);
        d = match d.parent() {
            Some(p) => p,
            None => break,
        };
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
        sync_dir(d.parent().unwrap_or(std::path::Path::new("/")))?;
    }
    Ok(())
}

fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A zeroed, page-aligned buffer of [`CHUNK`] bytes, as direct I/O requires.
struct AlignedBuf(std::ptr::NonNull<u8>);

// SAFETY: the buffer is plain bytes owned by this value alone.
unsafe impl Send for AlignedBuf {}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlignedBuf")
    }
}

impl AlignedBuf {
    fn layout() -> Layout {
        Layout::from_size_align(CHUNK, ALIGN).expect("a valid layout")
    }

    fn new() -> AlignedBuf {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(Self::layout()) };
        AlignedBuf(std::ptr::NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(Self::layout())))
    }

    fn as_ref(&self) -> &[u8] {
        // SAFETY: the pointer is valid for CHUNK initialized (zeroed) bytes while self lives.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr(), CHUNK) }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in as_ref, and &mut self makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_ptr(), CHUNK) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in new() with this layout, freed once.
        unsafe { std::alloc::dealloc(self.0.as_ptr(), Self::layout()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    /// Every length around the alignment and the chunk reads back exactly, from one
    /// part or several, and a listing shows the objects and no staging file.
    #[tokio::test(flavor = "multi_thread")]
    async fn objects_of_any_length_read_back_and_list_without_staging_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirectLocal::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local").with_fsync(true));
        let lengths = [0, 1, 4095, 4096, 4097, 65_536 + 3, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 4096 + 7];
        for (i, len) in lengths.into_iter().enumerate() {
            let data = bytes(len, i as u8);
            let key = Path::from(format!("fs/slices/0/{i}_0"));
            // Two parts where there is room for two, so a part boundary falls mid-buffer.
            let payload = match len {
                0 | 1 => PutPayload::from(data.clone()),
                _ => PutPayload::from_iter([
                    Bytes::copy_from_slice(&data[..len / 3]),
                    Bytes::copy_from_slice(&data[len / 3..]),
                ]),
            };
            store.put(&key, payload).await.expect("put");
            let back = store.get(&key).await.expect("get").bytes().await.expect("bytes");
            assert_eq!(back.len(), len, "length of {len}");
            assert!(back[..] == data[..], "bytes of {len}");
            // Writing the same key again replaces it whole.
            let shorter = bytes(len / 2, 99);
            store.put(&key, PutPayload::from(shorter.clone())).await.expect("put again");
            assert!(store.get(&key).await.expect("get").bytes().await.expect("bytes")[..] == shorter[..]);
        }
        let listed: Vec<ObjectMeta> = store.list(Some(&Path::from("fs"))).try_collect().await.expect("list");
        assert_eq!(listed.len(), lengths.len(), "{listed:?}");
        let on_disk = std::fs::read_dir(dir.path().join("fs/slices/0")).expect("read dir").count();
        assert_eq!(on_disk, lengths.len(), "no staging file is left behind");
        assert!(store.shared.direct.load(Ordering::Relaxed), "the temporary directory takes O_DIRECT");
    }
}
