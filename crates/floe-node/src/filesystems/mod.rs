//! File systems, access points and policies with Amazon EFS's semantics. The CLI
//! (`floe fs`, `floe ap`, `floe fs policy`) and the EFS API both call this.
//!
//! SKELETON: filled in by the EFS work (see the constructor's contract).

use std::sync::Arc;

use floe_lambda::Functions;
use floe_meta::Meta;
use object_store::ObjectStore;

use crate::{AccessPointMounts, Deployment};

/// The file systems service of a node.
#[derive(Clone)]
pub struct FileSystems {
    #[allow(dead_code)]
    inner: Arc<Inner>,
}

#[allow(dead_code)]
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
}
