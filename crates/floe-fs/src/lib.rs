//! floe's file system core: POSIX file operations over the metadata engine
//! (`floe-meta`) and immutable block objects in object storage.
//!
//! A [`FileSystem`] is one client's view of one floe file system: it buffers writes
//! per inode and commits them as slices (inline in the metadata when small, block
//! objects otherwise), reads through a memory and a disk cache, tracks open handles,
//! takes global byte-range locks (with NFS's revalidate-on-lock, flush-on-unlock),
//! runs the background work (session heartbeats and expiry, garbage collection,
//! compaction), and applies the access point and policy each mount serves (identity,
//! root, read-only, root squashing).
//!
//! Not here: FUSE (`floe-fuse` adapts it), HTTP, sandboxes. Errors are [`FsError`],
//! mapped to errno in one place ([`FsError::errno`]).

mod blocks;
mod buffers;
mod cache;
mod config;
mod direct;
mod error;
mod fs;
mod gc;
mod handles;
mod locks;
mod read;
pub mod store;
mod view;
mod write;

pub use blocks::BlockStore;
pub use config::FsConfig;
pub use error::{FsError, Result};
pub use floe_meta::{
    AccessPoint, AccessPointId, Attr, Caller, DirEntry, FileKind, FsPolicy, InodeId, LockType, RenameFlags, SetAttr,
    TimeSpec, TimeUpdate, XattrFlags, LOCK_END,
};
pub use fs::{FileSystem, OpenFlags, Opened};
pub use gc::{heartbeat_interval, FsckReport, GcReport};
pub use locks::{LockDone, LockHolder, LockInterrupted, LockRequest, LOCK_RETRY_INTERVAL};
pub use view::{View, POLICY_TTL};
