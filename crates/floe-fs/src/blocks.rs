//! Block objects in object storage, behind the caches.
//!
//! A slice of `n` bytes is stored as `ceil(n / block_size)` objects named
//! `<fs uuid>/slices/<id / 1e6>/<id>_<index>`. Objects are written once and never
//! modified; the metadata commit that references them is what makes them visible.

use crate::buffers::BufferPool;
use crate::cache::{DiskCache, MemoryCache};
use crate::{FsConfig, FsError, Result};
use bytes::Bytes;
use floe_meta::SliceId;
use futures::future::{BoxFuture, FutureExt, Shared};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::future::Future;
use std::sync::Arc;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

#[derive(Clone, Debug)]
enum FetchError {
    Missing(String),
    NoSpace,
    Other(String),
}

type Fetch = Shared<BoxFuture<'static, Result<Bytes, FetchError>>>;

/// Block objects of one file system, with their caches.
pub struct BlockStore {
    store: Arc<dyn ObjectStore>,
    runtime: Runtime,
    prefix: String,
    block_size: usize,
    pub(crate) buffers: BufferPool,
    memory: MemoryCache,
    disk: Option<DiskCache>,
    inflight: std::sync::Mutex<std::collections::HashMap<String, Fetch>>,
}

impl BlockStore {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, config: &FsConfig) -> Result<BlockStore> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("floe-io")
            .enable_all()
            .build()
            .map_err(|e| FsError::Store(format!("cannot start I/O threads: {e}")))?;
        let disk = match &config.disk_cache {
            Some((dir, limit)) => Some(
                DiskCache::open(dir, *limit)
                    .map_err(|e| FsError::Store(format!("cache directory {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        Ok(BlockStore {
            store,
            runtime,
            prefix: prefix.to_string(),
            block_size: config.block_size,
            buffers: BufferPool::new(config.block_size, config.write_buffer / config.block_size + 4),
            memory: MemoryCache::new(config.memory_cache),
            disk,
            inflight: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    fn key(&self, slice: SliceId, index: u32) -> String {
        format!("{}/slices/{}/{}_{}", self.prefix, slice.0 / 1_000_000, slice.0, index)
    }

    /// Runs a future on the I/O threads and waits for it (called from blocking threads).
    pub(crate) fn wait<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Starts storing one block; the handle reports when it is durable.
    pub(crate) fn put(self: &Arc<Self>, slice: SliceId, index: u32, block: Bytes) -> JoinHandle<Result<()>> {
        let this = Arc::clone(self);
        self.runtime.spawn(async move {
            let key = this.key(slice, index);
            // Written blocks are not kept in the memory cache: the writer's buffers go
            // back to the pool instead, and readers find the block in the page cache
            // (local store) or the disk cache.
            this.store.put(&ObjectPath::from(key.as_str()), PutPayload::from(block)).await?;
            Ok(())
        })
    }

    /// One whole block, from memory, the disk cache or object storage.
    pub(crate) fn get(self: &Arc<Self>, slice: SliceId, index: u32) -> Result<Bytes> {
        let key = self.key(slice, index);
        if let Some(b) = self.memory.get(&key) {
            return Ok(b);
        }
        let fetch = self.fetch(key);
        self.wait(fetch).map_err(|e| match e {
            FetchError::Missing(key) => FsError::Store(format!("object {key} is missing from storage")),
            FetchError::NoSpace => FsError::NoSpace,
            FetchError::Other(msg) => FsError::Store(msg),
        })
    }

    /// Starts fetching a block into the memory cache if it is not there, so that a
    /// sequential reader finds the next block ready.
    pub(crate) fn prefetch(self: &Arc<Self>, slice: SliceId, index: u32) {
        let key = self.key(slice, index);
        if self.memory.get(&key).is_some() {
            return;
        }
        let fetch = self.fetch(key);
        self.runtime.spawn(fetch);
    }

    /// The one fetch of `key` in flight, started if there is none: concurrent readers
    /// and the prefetcher share it.
    fn fetch(self: &Arc<Self>, key: String) -> Fetch {
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = inflight.get(&key) {
            return f.clone();
        }
        let this = Arc::clone(self);
        let k = key.clone();
        let fut = async move {
            let result = this.load(&k).await;
            this.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&k);
            result
        }
        .boxed()
        .shared();
        inflight.insert(key, fut.clone());
        fut
    }

    async fn load(&self, key: &str) -> Result<Bytes, FetchError> {
        if let Some(b) = self.memory.get(key) {
            return Ok(b);
        }
        if let Some(b) = self.disk.as_ref().and_then(|d| d.get(key)) {
            self.memory.put(key, b.clone());
            return Ok(b);
        }
        let fetched = async { self.store.get(&ObjectPath::from(key)).await?.bytes().await }.await;
        let block = match fetched {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => return Err(FetchError::Missing(key.to_string())),
            Err(e) => {
                return Err(match FsError::from(e) {
                    FsError::NoSpace => FetchError::NoSpace,
                    other => FetchError::Other(other.to_string()),
                })
            }
        };
        if let Some(d) = &self.disk {
            d.put(key, &block);
        }
        self.memory.put(key, block.clone());
        Ok(block)
    }

    /// Deletes every block of a slice of `size` bytes (missing objects are fine). A
    /// size of 0 means a slice reserved but never committed, whose length nobody
    /// recorded: its blocks are deleted in order until one is missing (blocks uploaded
    /// out of order past a gap are left for `fsck` to find as orphans). Each such
    /// block is looked up before it is deleted: S3 reports deleting a missing object
    /// as a success, so the delete alone cannot find the end.
    pub(crate) fn delete_slice(&self, slice: SliceId, size: u32) -> Result<()> {
        let known = (size > 0).then(|| (size as usize).div_ceil(self.block_size) as u32);
        for index in 0..known.unwrap_or(u32::MAX) {
            if known.is_none() && !self.exists(slice, index)? {
                break;
            }
            match self.delete_block(slice, index) {
                Ok(()) => {}
                Err(object_store::Error::NotFound { .. }) if known.is_none() => break,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Names of every block object of this file system, for fsck.
    pub(crate) fn list_objects(&self) -> Result<Vec<(SliceId, u32)>> {
        use futures::TryStreamExt;
        let prefix = ObjectPath::from(format!("{}/slices", self.prefix).as_str());
        let metas: Vec<_> = self.wait(self.store.list(Some(&prefix)).try_collect())?;
        Ok(metas
            .iter()
            .filter_map(|m| {
                let name = m.location.filename()?;
                let (id, index) = name.split_once('_')?;
                Some((SliceId(id.parse().ok()?), index.parse().ok()?))
            })
            .collect())
    }

    fn exists(&self, slice: SliceId, index: u32) -> Result<bool> {
        match self.wait(self.store.head(&ObjectPath::from(self.key(slice, index).as_str()))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes one block object and its cached copies.
    pub(crate) fn delete_block(&self, slice: SliceId, index: u32) -> Result<(), object_store::Error> {
        let key = self.key(slice, index);
        self.memory.remove(&key);
        if let Some(d) = &self.disk {
            d.remove(&key);
        }
        self.wait(self.store.delete(&ObjectPath::from(key.as_str())))
    }

    /// Drops the memory cache (for cold-cache benchmarks and tests).
    pub fn drop_memory_cache(&self) {
        self.memory.clear();
    }

    /// Deletes every object under this file system's prefix.
    pub fn delete_all(&self) -> Result<()> {
        use futures::TryStreamExt;
        let prefix = ObjectPath::from(self.prefix.as_str());
        let metas: Vec<_> = self.wait(self.store.list(Some(&prefix)).try_collect())?;
        for m in metas {
            self.wait(self.store.delete(&m.location))?;
        }
        Ok(())
    }
}
