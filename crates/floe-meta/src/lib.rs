//! floe's metadata engine: everything a file system stores besides file contents.
//!
//! The crate has two layers. [`MetaStore`]/[`MetaTxn`] is the backend seam: row-level
//! reads and writes of file systems, inodes, directory entries, chunk maps, slices,
//! symlinks, xattrs, sessions, locks, access points and policies, inside one transaction. [`Meta`] is written once on
//! top of it: every POSIX namespace operation (create, link, rename, setattr with its
//! permission rules, truncate, ...) as one transaction, retried when the backend reports
//! a serialization conflict. Backends therefore hold no file system logic.
//!
//! Not here: file contents (object storage is `floe-fs`'s), caching, FUSE, errno
//! numbers (the error type is mapped at the edge).

mod attr;
mod chunk;
pub mod conformance;
mod conformance_tests;
mod error;
mod ids;
mod ops;
mod postgres;
mod sqlite;
mod store;
mod url;

pub use attr::{Attr, FileKind, SetAttr, TimeSpec, TimeUpdate};
pub use chunk::{resolve_chunk, Segment, SegmentSource, SliceRef, CHUNK_SIZE};
pub use error::{MetaError, Result};
pub use ids::{FileSystemId, InodeId, SessionId, SliceId};
pub use ops::access::{Access, Caller};
pub use ops::access_point::{
    AccessPoint, AccessPointId, FsPolicy, NewAccessPoint, RootCreation, ACCESS_POINT_PATH_MAX, SQUASHED_ID,
};
pub use ops::records::{Expect, Record};
pub use ops::{
    drop_privileges, Committed, DirEntry, FileSystemInfo, Lock, LockOwner, LockType, Meta, NamespaceReport, NewNode,
    NewSlice, Placement, RenameFlags, SessionInfo, SetLock, SliceInfo, StatFs, Unlinked, XattrFlags, LOCK_END,
    LOST_FOUND, MAX_FILE_SIZE,
};
pub use postgres::{PostgresStore, DEFAULT_POOL_SIZE, POSTGRES_SCHEMA_VERSION};
pub use sqlite::SqliteStore;
pub use store::{Counter, Dentry, MetaStore, MetaTxn, TxnMode};
pub use url::{open_url, redact_url, OpenError};

/// Longest name of one directory entry, in bytes (as on Linux).
pub const NAME_MAX: usize = 255;
/// Longest symlink target, in bytes.
pub const SYMLINK_MAX: usize = 4095;
/// Largest xattr value, in bytes (as Linux's VFS allows).
pub const XATTR_VALUE_MAX: usize = 65536;
