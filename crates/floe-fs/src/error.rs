use floe_meta::MetaError;
use thiserror::Error;

/// What a file system operation can fail with.
#[derive(Debug, Error)]
pub enum FsError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// Object storage failed or lost an object: the operation fails with EIO and
    /// nothing is committed.
    #[error("object storage: {0}")]
    Store(String),
    /// The disk under object storage or the cache is full.
    #[error("no space left in object storage")]
    NoSpace,
    #[error("bad file handle")]
    BadHandle,
    #[error("read-only file system")]
    ReadOnly,
    #[error("operation not supported")]
    NotSupported,
    #[error("file too large")]
    FileTooLarge,
    /// A SEEK_DATA or SEEK_HOLE at or past the end of the file, or a SEEK_DATA with
    /// only holes after it (ENXIO).
    #[error("no data at or after that offset")]
    BeyondEnd,
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// A lock request met a conflicting lock and may not wait.
    #[error("resource temporarily unavailable")]
    WouldBlock,
    /// A waiting lock request was given up: the caller got a signal, or unmount.
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = FsError> = std::result::Result<T, E>;

impl FsError {
    /// The errno a caller of the file system sees.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::Meta(e) => match e {
                MetaError::NotFound | MetaError::NoFileSystem(_) | MetaError::NoAccessPoint(_) => libc::ENOENT,
                MetaError::Exists | MetaError::FileSystemExists(_) => libc::EEXIST,
                MetaError::NotDir => libc::ENOTDIR,
                MetaError::IsDir => libc::EISDIR,
                MetaError::NotEmpty => libc::ENOTEMPTY,
                MetaError::Access => libc::EACCES,
                MetaError::Perm => libc::EPERM,
                MetaError::NameTooLong => libc::ENAMETOOLONG,
                MetaError::Invalid(_) => libc::EINVAL,
                MetaError::TooManyLinks => libc::EMLINK,
                MetaError::NoAttr => libc::ENODATA,
                MetaError::NotSupported => libc::EOPNOTSUPP,
                MetaError::TooBig => libc::E2BIG,
                MetaError::FileTooLarge => libc::EFBIG,
                MetaError::TooManySymlinks => libc::ELOOP,
                MetaError::Conflict | MetaError::Stale => libc::EAGAIN,
                MetaError::NoSpace => libc::ENOSPC,
                MetaError::SchemaTooNew { .. } | MetaError::Backend(_) => libc::EIO,
            },
            FsError::Store(_) => libc::EIO,
            FsError::NoSpace => libc::ENOSPC,
            FsError::BadHandle => libc::EBADF,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotSupported => libc::EOPNOTSUPP,
            FsError::FileTooLarge => libc::EFBIG,
            FsError::BeyondEnd => libc::ENXIO,
            FsError::Invalid(_) => libc::EINVAL,
            FsError::WouldBlock => libc::EAGAIN,
            FsError::Interrupted => libc::EINTR,
        }
    }
}

impl From<object_store::Error> for FsError {
    fn from(e: object_store::Error) -> FsError {
        // A full disk under a local store surfaces as an io::Error deep in the chain.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) {
                    return FsError::NoSpace;
                }
            }
            source = err.source();
        }
        FsError::Store(e.to_string())
    }
}
