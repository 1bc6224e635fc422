use std::path::PathBuf;
use std::time::Duration;

/// How one client runs a file system. Loaded once by the binary and passed down.
#[derive(Clone, Debug)]
pub struct FsConfig {
    /// Largest object a slice is cut into.
    pub block_size: usize,
    /// Slices up to this size live in the metadata instead of object storage.
    pub inline_max: usize,
    /// Buffered bytes per file after which writes are committed without waiting for
    /// close or fsync.
    pub write_buffer: usize,
    /// Bytes of blocks kept in memory.
    pub memory_cache: usize,
    /// A directory for the node-local disk cache of blocks, and its size limit.
    pub disk_cache: Option<(PathBuf, u64)>,
    /// A client that misses heartbeats this long is dead: its sessions expire, and with
    /// them its locks. Clients beat every ttl/3, at least every second.
    pub session_ttl: Duration,
    /// How often garbage collection and compaction run.
    pub gc_interval: Duration,
    /// Chunks with this many slice references are compacted.
    pub compact_threshold: usize,
    /// Refuse every change (EROFS).
    pub read_only: bool,
    /// Map root to nobody (65534) whatever the file system's policy says.
    pub no_root_access: bool,
}

impl Default for FsConfig {
    fn default() -> FsConfig {
        FsConfig {
            block_size: 4 << 20,
            inline_max: 16 << 10,
            write_buffer: 64 << 20,
            memory_cache: 256 << 20,
            disk_cache: None,
            session_ttl: Duration::from_secs(60),
            gc_interval: Duration::from_secs(30),
            compact_threshold: 32,
            read_only: false,
            no_root_access: false,
        }
    }
}
