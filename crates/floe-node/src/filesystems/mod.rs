//! File systems, access points and policies with Amazon EFS's semantics. The CLI
//! (`floe fs`, `floe ap`, `floe fs policy`) and the EFS API both call this.
//!
//! floe-meta keeps what every client enforces (file systems, access points, the
//! policy's two switches); what EFS has beyond that — creation and client tokens,
//! performance and throughput modes, tags, the policy document as given — lives in
//! JSON records of the metadata engine beside them, keyed by EFS id:
//!
//! | record kind | name | body |
//! |---|---|---|
//! | `efs-file-system` | `fs-…` | [`file_systems`]' settings and tags |
//! | `efs-creation-token` | the token | `fs-…` (claimed before the file system exists) |
//! | `efs-access-point` | `fsap-…` | client token and tags |
//! | `efs-client-token` | the token | `fsap-…` |
//! | `efs-policy` | `fs-…` | the policy document |
//!
//! A file system without a record (created before these existed) reads as created
//! by the CLI: its name is its creation token and its `Name` tag.
//!
//! Every operation blocks (the metadata engine is synchronous): async callers run
//! them on blocking threads.

mod access_points;
mod error;
mod file_systems;
mod ids;
mod policy;
mod records;
mod tags;

use std::sync::Arc;

use floe_lambda::Functions;
use floe_meta::{FileSystemInfo, Meta};
use object_store::ObjectStore;

use crate::{AccessPointMounts, Deployment};

pub use access_points::{AccessPointDescription, AccessPointQuery, NewAccessPoint, PosixUser, RootDirectory};
pub use error::{EfsError, Result};
pub use file_systems::{
    DeleteScope, FileSystemDescription, FileSystemQuery, NewFileSystem, PerformanceMode, Throughput,
};
pub use ids::{FsId, EFS};
pub use policy::{derive_policy, PolicyDescription};
pub use tags::{Tag, MAX_TAGS, NAME_TAG};

/// One page of a listing and the marker of the next, if there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The file systems service of a node.
#[derive(Clone)]
pub struct FileSystems {
    inner: Arc<Inner>,
}

struct Inner {
    meta: Meta,
    objects: Arc<dyn ObjectStore>,
    /// To refuse deleting a file system a function uses.
    functions: Option<Functions>,
    /// To refuse deleting a file system this node has mounted, and to release the
    /// mounts of deleted access points.
    mounts: Option<Arc<AccessPointMounts>>,
    deployment: Deployment,
}

impl FileSystems {
    /// `functions` and `mounts` are absent when a command runs without a node (the
    /// CLI on the embedded store before `floe up`).
    pub fn new(
        meta: Meta,
        objects: Arc<dyn ObjectStore>,
        functions: Option<Functions>,
        mounts: Option<Arc<AccessPointMounts>>,
        deployment: Deployment,
    ) -> FileSystems {
        FileSystems { inner: Arc::new(Inner { meta, objects, functions, mounts, deployment }) }
    }

    pub fn deployment(&self) -> &Deployment {
        &self.inner.deployment
    }

    /// The file system a user names by id or ARN; `field` names it in errors.
    fn lookup(&self, given: &str, field: &str) -> Result<FileSystemInfo> {
        match ids::file_system_id(&self.inner.deployment, given, field)? {
            ids::Named::Ours(id) => self.info(&id)?.ok_or_else(|| EfsError::FileSystemNotFound(given.to_string())),
            ids::Named::Foreign(given) => Err(EfsError::FileSystemNotFound(given)),
        }
    }

    /// The file system with this EFS id, if there is one.
    fn info(&self, id: &FsId) -> Result<Option<FileSystemInfo>> {
        Ok(self.all_info()?.into_iter().find(|info| FsId::from_uuid(&info.uuid) == *id))
    }

    fn all_info(&self) -> Result<Vec<FileSystemInfo>> {
        self.inner.meta.list_fs().map_err(|e| EfsError::meta("list file systems", e))
    }

    /// The EFS id of the file system named `name` (floe's own name, as the CLI
    /// takes it).
    pub fn id_of_name(&self, name: &str) -> Result<FsId> {
        match self.inner.meta.fs_by_name(name) {
            Ok(info) => Ok(FsId::from_uuid(&info.uuid)),
            Err(floe_meta::MetaError::NoFileSystem(_)) => Err(EfsError::FileSystemNotFound(name.to_string())),
            Err(e) => Err(EfsError::meta("file system", e)),
        }
    }

    fn fs_arn(&self, id: &FsId) -> String {
        self.inner.deployment.arn(EFS, &format!("file-system/{id}"))
    }
}

/// `name (fs-…)`, or the id alone for a file system named by it: how messages
/// name a file system.
fn label(info: &FileSystemInfo) -> String {
    let id = FsId::from_uuid(&info.uuid);
    if info.name == id.as_str() {
        id.to_string()
    } else {
        format!("{} ({id})", info.name)
    }
}

/// Items sorted by `key`, from the first whose key is at least `marker`, at most
/// `max` of them; the next page starts at the key of the first one left out.
fn paginate<T>(items: Vec<T>, key: impl Fn(&T) -> String, marker: Option<&str>, max: usize) -> Page<T> {
    let mut rest: Vec<T> = items.into_iter().filter(|i| marker.is_none_or(|m| key(i).as_str() >= m)).collect();
    let next = rest.get(max).map(&key);
    rest.truncate(max);
    Page { items: rest, next }
}
