//! Block caches: one in memory, one on the node's disk. Both are bounded in bytes and
//! evict the least recently used block. Blocks are immutable, so a cached block is
//! never stale: there is nothing to invalidate.

use bytes::Bytes;
use lru::LruCache;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

struct Bounded<V> {
    entries: LruCache<String, V>,
    bytes: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Recently used blocks in memory.
pub(crate) struct MemoryCache {
    limit: u64,
    inner: Mutex<Bounded<Bytes>>,
}

impl MemoryCache {
    pub(crate) fn new(limit: usize) -> MemoryCache {
        MemoryCache { limit: limit as u64, inner: Mutex::new(Bounded { entries: LruCache::unbounded(), bytes: 0 }) }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        lock(&self.inner).entries.get(key).cloned()
    }

    pub(crate) fn put(&self, key: &str, block: Bytes) {
        if block.len() as u64 > self.limit {
            return;
        }
        let mut inner = lock(&self.inner);
        let len = block.len() as u64;
        if let Some(old) = inner.entries.put(key.to_string(), block) {
            inner.bytes -= old.len() as u64;
        }
        inner.bytes += len;
        while inner.bytes > self.limit {
            match inner.entries.pop_lru() {
                Some((_, b)) => inner.bytes -= b.len() as u64,
                None => break,
            }
        }
    }

    pub(crate) fn remove(&self, key: &str) {
        let mut inner = lock(&self.inner);
        if let Some(b) = inner.entries.pop(key) {
            inner.bytes -= b.len() as u64;
        }
    }

    pub(crate) fn clear(&self) {
        let mut inner = lock(&self.inner);
        inner.entries.clear();
        inner.bytes = 0;
    }
}

/// Blocks on the node's local disk, one file per block under `dir`.
pub(crate) struct DiskCache {
    dir: PathBuf,
    limit: u64,
    inner: Mutex<Bounded<u64>>,
}

impl DiskCache {
    /// Opens the cache directory, indexing the blocks already in it.
    pub(crate) fn open(dir: &Path, limit: u64) -> std::io::Result<DiskCache> {
        std::fs::create_dir_all(dir)?;
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            limit,
            inner: Mutex::new(Bounded { entries: LruCache::unbounded(), bytes: 0 }),
        };
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let len = entry.metadata()?.len();
            let mut inner = lock(&cache.inner);
            inner.entries.put(name, len);
            inner.bytes += len;
        }
        cache.evict();
        Ok(cache)
    }

    fn file_name(key: &str) -> String {
        key.replace('/', "%")
    }

    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        let name = Self::file_name(key);
        lock(&self.inner).entries.get(&name)?;
        match std::fs::read(self.dir.join(&name)) {
            Ok(data) => Some(Bytes::from(data)),
            Err(_) => {
                // Removed behind our back (or unreadable): forget it and refetch.
                let mut inner = lock(&self.inner);
                if let Some(len) = inner.entries.pop(&name) {
                    inner.bytes -= len;
                }
                None
            }
        }
    }

    pub(crate) fn put(&self, key: &str, block: &[u8]) {
        if block.len() as u64 > self.limit {
            return;
        }
        let name = Self::file_name(key);
        let tmp = self.dir.join(format!("{name}.tmp"));
        // A failed cache write only costs a later refetch.
        if std::fs::write(&tmp, block).and_then(|_| std::fs::rename(&tmp, self.dir.join(&name))).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return;
        }
        {
            let mut inner = lock(&self.inner);
            if let Some(old) = inner.entries.put(name, block.len() as u64) {
                inner.bytes -= old;
            }
            inner.bytes += block.len() as u64;
        }
        self.evict();
    }

    pub(crate) fn remove(&self, key: &str) {
        let name = Self::file_name(key);
        let mut inner = lock(&self.inner);
        if let Some(len) = inner.entries.pop(&name) {
            inner.bytes -= len;
            let _ = std::fs::remove_file(self.dir.join(&name));
        }
    }

    fn evict(&self) {
        let mut inner = lock(&self.inner);
        while inner.bytes > self.limit {
            let Some((name, len)) = inner.entries.pop_lru() else { break };
            inner.bytes -= len;
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_cache_evicts_least_recently_used_by_bytes() {
        let c = MemoryCache::new(10);
        c.put("a", Bytes::from_static(b"aaaa"));
        c.put("b", Bytes::from_static(b"bbbb"));
        assert!(c.get("a").is_some()); // a is now more recent than b
        c.put("c", Bytes::from_static(b"cccc"));
        assert!(c.get("b").is_none());
        assert_eq!(c.get("a").as_deref(), Some(&b"aaaa"[..]));
        assert_eq!(c.get("c").as_deref(), Some(&b"cccc"[..]));
        c.put("huge", Bytes::from(vec![0u8; 11]));
        assert!(c.get("huge").is_none());
    }

    #[test]
    fn disk_cache_survives_reopen_and_stays_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let c = DiskCache::open(dir.path(), 8).expect("open");
            c.put("fs/x/1_0", b"1234");
            c.put("fs/x/2_0", b"5678");
            assert_eq!(c.get("fs/x/1_0").as_deref(), Some(&b"1234"[..]));
        }
        let c = DiskCache::open(dir.path(), 8).expect("reopen");
        assert_eq!(c.get("fs/x/2_0").as_deref(), Some(&b"5678"[..]));
        c.put("fs/x/3_0", b"9999");
        let present = ["fs/x/1_0", "fs/x/2_0", "fs/x/3_0"].iter().filter(|k| c.get(k).is_some()).count();
        assert_eq!(present, 2);
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").metadata().expect("meta").len())
            .sum();
        assert!(on_disk <= 8, "{on_disk} bytes on disk");
    }
}
