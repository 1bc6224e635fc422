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
//!
//! A put killed midway leaves its staging file behind, which no listing shows and so
//! no garbage collection finds. A put holds an exclusive `flock` on its staging file,
//! which dies with its process, and the store sweeps its directory at start and then
//! hourly: a staging file older than [`STAGING_MIN_AGE`] that it can lock is left
//! over, and removed.

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
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Alignment of direct I/O buffers, offsets and lengths: the page size, which covers
/// every logical block size a disk reports.
const ALIGN: usize = 4096;
/// Bytes copied and written per `pwrite`: a block, so a block is one write.
const CHUNK: usize = 4 << 20;
/// Aligned buffers kept for reuse: one per concurrent put, as many as usually run.
const KEEP_BUFFERS: usize = 4;
/// Staging files younger than this are never swept. A put locks its staging file
/// moments after creating it, and `object_store`'s buffered puts (which lock nothing)
/// take seconds at most.
pub(crate) const STAGING_MIN_AGE: Duration = Duration::from_secs(600);
/// How often a store sweeps its directory for left-over staging files.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// A local directory of objects written with `O_DIRECT`.
#[derive(Debug)]
pub struct DirectLocal {
    inner: LocalFileSystem,
    shared: Arc<Shared>,
    /// Set when the store is dropped, to end its sweeper thread.
    stop: Arc<(Mutex<bool>, Condvar)>,
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
    /// `root` is `inner`'s directory, which the store sweeps for staging files left by
    /// dead puts, now and every [`SWEEP_EVERY`].
    pub fn new(inner: LocalFileSystem, root: PathBuf) -> DirectLocal {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let spawned = std::thread::Builder::new().name("floe-sweep".into()).spawn(move || loop {
            match sweep_staging(&root, STAGING_MIN_AGE) {
                Ok(0) => {}
                Ok(n) => tracing::info!(dir = %root.display(), files = n, "removed staging files of dead puts"),
                Err(e) => tracing::warn!(dir = %root.display(), error = %e, "sweeping staging files failed"),
            }
            let (lock, cvar) = &*signal;
            let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (stopped, _) =
                cvar.wait_timeout_while(stopped, SWEEP_EVERY, |s| !*s).unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the staging sweeper; staging files of dead puts stay");
        }
        DirectLocal {
            inner,
            shared: Arc::new(Shared { direct: AtomicBool::new(true), buffers: Mutex::new(Vec::new()) }),
            stop,
        }
    }
}

impl Drop for DirectLocal {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
    }
}

/// Whether `name` is a staging file's: `<key>#<n>`.
fn is_staging(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    match name.iter().rposition(|b| *b == b'#') {
        Some(i) => i > 0 && i + 1 < name.len() && name[i + 1..].iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// Takes `file`'s exclusive `flock` without waiting; false when another holds it.
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor `file` keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Removes the staging files under `root` that no live put holds: older than
/// `min_age`, and unlocked. Returns how many it removed.
pub(crate) fn sweep_staging(root: &std::path::Path, min_age: Duration) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // Removed meanwhile (an empty directory of objects).
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            if !kind.is_file() || !is_staging(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            // Gone meanwhile: its put finished or failed.
            let Ok(file) = File::open(&path) else { continue };
            let age = file.metadata()?.modified()?.elapsed().unwrap_or_default();
            if age >= min_age && try_lock(&file)? {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(removed)
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
        // The staging file stays open, and so locked, until it has its final name.
        let written = self.write_all(&file, payload).and_then(|()| {
            file.sync_data()?;
            std::fs::rename(&staging, path)?;
            drop(file);
            sync_dir(path.parent().unwrap_or(std::path::Path::new("/")))
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&staging);
            return Err(PutError::Failed(e));
        }
        Ok(())
    }

    /// Writes the payload from an aligned buffer, in whole aligned pieces; the last
    /// piece is padded with zeros and the file cut back to the payload's length. A
    /// payload that is one aligned piece already (a full block of the write path's
    /// buffers) is written as it is.
    fn write_all(&self, file: &File, payload: &PutPayload) -> std::io::Result<()> {
        let mut parts = payload.iter();
        if let (Some(part), None) = (parts.next(), parts.next()) {
            if !part.is_empty() && (part.as_ptr() as usize).is_multiple_of(ALIGN) && part.len().is_multiple_of(ALIGN) {
                return file.write_all_at(part, 0);
            }
        }
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

/// A new staging file beside `path` (`<path>#<n>`), opened for direct writes and
/// locked against the sweeper; the directories are made (and synced) when missing.
fn open_staging(path: &std::path::Path) -> std::io::Result<(File, PathBuf)> {
    let mut n = 1u32;
    loop {
        let mut staging = path.as_os_str().to_owned();
        staging.push(format!("#{n}"));
        let staging = PathBuf::from(staging);
        let opened =
            std::fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_DIRECT).open(&staging);
        match opened {
            Ok(f) => {
                // A new file: nobody else can hold its lock.
                if !try_lock(&f)? {
                    return Err(std::io::Error::other("a new staging file was locked by another"));
                }
                return Ok((f, staging));
            }
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
        let store = DirectLocal::new(
            LocalFileSystem::new_with_prefix(dir.path()).expect("local").with_fsync(true),
            dir.path().to_path_buf(),
        );
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

    /// A block from the write path's aligned buffers is written as it is; an aligned
    /// buffer of an unaligned length goes through the copy. Both read back exactly.
    #[tokio::test(flavor = "multi_thread")]
    async fn aligned_blocks_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = DirectLocal::new(
            LocalFileSystem::new_with_prefix(dir.path()).expect("local").with_fsync(true),
            dir.path().to_path_buf(),
        );
        let pool = crate::buffers::BufferPool::new(CHUNK, 2);
        for (i, len) in [CHUNK, 8 * ALIGN, CHUNK - 5].into_iter().enumerate() {
            let data = bytes(len, 40 + i as u8);
            let mut buf = pool.take();
            buf.extend_from_slice(&data);
            let key = Path::from(format!("fs/slices/0/9_{i}"));
            store.put(&key, PutPayload::from(buf.freeze())).await.expect("put");
            let back = store.get(&key).await.expect("get").bytes().await.expect("bytes");
            assert!(back[..] == data[..], "bytes of {len}");
        }
    }

    /// Makes `path` with an mtime `age` ago.
    fn file_aged(path: &std::path::Path, age: Duration) {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        let f = File::create(path).expect("create");
        f.set_modified(std::time::SystemTime::now() - age).expect("set mtime");
    }

    #[test]
    fn staging_names_are_told_apart() {
        for name in ["12_0#1", "12_0#27", "x#0"] {
            assert!(is_staging(std::ffi::OsStr::new(name)), "{name}");
        }
        for name in ["12_0", "#1", "12_0#", "12_0#1a", "a#b"] {
            assert!(!is_staging(std::ffi::OsStr::new(name)), "{name}");
        }
    }

    /// A sweep removes an old staging file nobody holds, and keeps a locked one (a
    /// live put), a young one, and objects; the locked one goes once its holder does.
    #[test]
    fn a_sweep_removes_only_staging_files_of_dead_puts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("fs/slices/0");
        let old = STAGING_MIN_AGE + Duration::from_secs(60);
        let (dead, live, young, object) = (d.join("1_0#1"), d.join("1_1#2"), d.join("1_2#1"), d.join("1_3"));
        file_aged(&dead, old);
        file_aged(&live, old);
        file_aged(&young, Duration::ZERO);
        file_aged(&object, old);
        let holder = File::open(&live).expect("open");
        assert!(try_lock(&holder).expect("flock"), "the holder locks");
        assert_eq!(sweep_staging(dir.path(), STAGING_MIN_AGE).expect("sweep"), 1);
        assert!(!dead.exists(), "the dead put's staging file is gone");
        for kept in [&live, &young, &object] {
            assert!(kept.exists(), "{} is kept", kept.display());
        }
        drop(holder);
        assert_eq!(sweep_staging(dir.path(), STAGING_MIN_AGE).expect("sweep"), 1);
        assert!(!live.exists(), "unlocked now, it goes");
        assert!(young.exists() && object.exists());
    }

    /// A put's staging file is locked while it is written: a sweep cannot take it.
    #[test]
    fn a_put_holds_the_lock_of_its_staging_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (file, staging) = open_staging(&dir.path().join("fs/slices/0/7_0")).expect("staging");
        let other = File::open(&staging).expect("open again");
        assert!(!try_lock(&other).expect("flock"), "the put holds the lock");
        drop(file);
        assert!(try_lock(&other).expect("flock"), "free once the put lets go");
    }

    /// Opening the store sweeps at once: a dead put's file from before is removed.
    #[test]
    fn a_store_sweeps_when_it_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = dir.path().join("fs/slices/0/3_0#1");
        file_aged(&dead, STAGING_MIN_AGE + Duration::from_secs(60));
        let _store = DirectLocal::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local"), dir.path().into());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while dead.exists() {
            assert!(std::time::Instant::now() < deadline, "the store's first sweep did not remove {}", dead.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
