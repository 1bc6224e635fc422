//! What the file systems service fails with. Variants are EFS's error codes; the
//! API maps them to statuses in one place (`floe-api`'s `efs` module), the CLI
//! prints their message.

use floe_meta::{AccessPointId, MetaError};

use super::ids::FsId;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EfsError {
    /// The request is malformed or names a value floe does not accept; the message
    /// names the field.
    #[error("{0}")]
    BadRequest(String),
    #[error("File system '{0}' not found")]
    FileSystemNotFound(String),
    #[error("Access point '{0}' not found")]
    AccessPointNotFound(String),
    /// The creation token was used before: it names this file system.
    #[error("A file system with creation token '{token}' already exists: {id}")]
    FileSystemAlreadyExists { token: String, id: FsId },
    /// The client token was used before: it names this access point.
    #[error("An access point with client token '{token}' already exists: {id}")]
    AccessPointAlreadyExists { token: String, id: AccessPointId },
    /// Something still uses the file system; the message says what.
    #[error("{0}")]
    FileSystemInUse(String),
    /// A file system policy floe cannot parse or enforce; the message says what.
    #[error("{0}")]
    InvalidPolicy(String),
    #[error("File system '{0}' has no file system policy")]
    PolicyNotFound(FsId),
    /// Two requests changed the same definition at once.
    #[error("{0}")]
    Conflict(String),
    /// The metadata engine or object storage failed.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = EfsError> = std::result::Result<T, E>;

impl EfsError {
    pub fn bad(message: impl Into<String>) -> EfsError {
        EfsError::BadRequest(message.into())
    }

    /// A metadata failure that no input explains.
    pub(crate) fn meta(context: &str, e: MetaError) -> EfsError {
        EfsError::Internal(format!("{context}: {e}"))
    }
}
