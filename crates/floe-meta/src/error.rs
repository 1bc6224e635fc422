use thiserror::Error;

/// What a metadata operation can fail with. Variants name POSIX conditions; `floe-fs`
/// maps them to errno values in one place.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MetaError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("permission denied")]
    Access,
    #[error("operation not permitted")]
    Perm,
    #[error("name too long")]
    NameTooLong,
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    #[error("too many links")]
    TooManyLinks,
    #[error("no such attribute")]
    NoAttr,
    #[error("operation not supported")]
    NotSupported,
    #[error("value too large")]
    TooBig,
    #[error("file too large")]
    FileTooLarge,
    #[error("file system {0:?} not found")]
    NoFileSystem(String),
    #[error("file system {0:?} already exists")]
    FileSystemExists(String),
    /// The metadata database's disk is full.
    #[error("no space left for metadata")]
    NoSpace,
    /// The backend saw a conflicting concurrent transaction; the operation is retried.
    #[error("transaction conflict")]
    Conflict,
    /// The schema in the database is newer than this build understands.
    #[error("metadata schema version {found} is newer than this floe supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("access point {0} not found")]
    NoAccessPoint(String),
    /// More than 40 symlinks met while resolving one path.
    #[error("too many levels of symbolic links")]
    TooManySymlinks,
    /// A compare-and-set write found the record at another revision than expected.
    #[error("the record was changed by someone else since it was read")]
    Stale,
    /// The backend failed (I/O, corruption, connection).
    #[error("metadata backend: {0}")]
    Backend(String),
}

pub type Result<T, E = MetaError> = std::result::Result<T, E>;
