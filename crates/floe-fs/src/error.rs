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
    #[error("bad file handle")]
    BadHandle,
    #[error("read-only file system")]
    ReadOnly,
    #[error("operation not supported")]
    NotSupported,
    #[error("file too large")]
    FileTooLarge,
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
}

pub type Result<T, E = FsError> = std::result::Result<T, E>;

impl FsError {
    /// The errno a caller of the file system sees.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::Meta(e) => match e {
                MetaError::NotFound | MetaError::NoFileSystem(_) => libc::ENOENT,
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
                MetaError::Conflict => libc::EAGAIN,
                MetaError::SchemaTooNew { .. } | MetaError::Backend(_) => libc::EIO,
            },
            FsError::Store(_) => libc::EIO,
            FsError::BadHandle => libc::EBADF,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotSupported => libc::EOPNOTSUPP,
            FsError::FileTooLarge => libc::EFBIG,
            FsError::Invalid(_) => libc::EINVAL,
        }
    }
}

impl From<object_store::Error> for FsError {
    fn from(e: object_store::Error) -> FsError {
        FsError::Store(e.to_string())
    }
}
