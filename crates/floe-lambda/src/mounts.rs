//! What a function's `/mnt/...` mounts come from. The functions service knows a
//! mount only by its source string; a [`MountSources`] checks it when a function is
//! created or updated and turns it into a host directory to bind when an
//! environment starts. A node resolves access point ARNs (mounting them with FUSE);
//! without a node, sources are host directories.

use std::path::PathBuf;

use crate::error::{LambdaError, Result};

pub trait MountSources: Send + Sync + 'static {
    /// Refuses a source that cannot be mounted (create and update).
    fn check(&self, source: &str) -> Result<()>;
    /// The host directory to bind at `local_mount_path` for this source, ready to
    /// use (may block while it mounts).
    fn resolve(&self, source: &str, local_mount_path: &str) -> Result<PathBuf>;
}

/// Sources are existing host directories, given by absolute path.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostDirectories;

impl MountSources for HostDirectories {
    fn check(&self, source: &str) -> Result<()> {
        if !PathBuf::from(source).is_absolute() {
            return Err(LambdaError::invalid(format!("mount source '{source}' is not an absolute path")));
        }
        Ok(())
    }

    fn resolve(&self, source: &str, _local_mount_path: &str) -> Result<PathBuf> {
        let path = PathBuf::from(source);
        if !path.is_dir() {
            return Err(LambdaError::new(
                crate::error::ErrorKind::EfsMountFailure,
                format!("mount source {source} is not a directory"),
            ));
        }
        Ok(path)
    }
}
