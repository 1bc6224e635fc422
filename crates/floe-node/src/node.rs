//! One node: the services over one metadata engine and one object store.

use std::path::PathBuf;
use std::sync::Arc;

use floe_fs::FsConfig;
use floe_lambda::{Functions, NodeConfig};
use floe_meta::Meta;
use object_store::ObjectStore;

use crate::{AccessPointMounts, Deployment, FileSystems, Triggers};

/// How a node runs: loaded once by the binary and passed down.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub deployment: Deployment,
    /// The functions service's settings; its `node_dir` holds this node's own state
    /// (code, bootstraps, logs, `/tmp` disks, access point mounts under `mnt/`).
    pub functions: NodeConfig,
    /// How the node's file system clients (access point mounts) run.
    pub fs: FsConfig,
}

impl NodeSettings {
    pub fn new(node_dir: impl Into<PathBuf>, deployment: Deployment) -> NodeSettings {
        let mut functions = NodeConfig::new(node_dir);
        functions.region = deployment.region.clone();
        functions.account_id = deployment.account_id.clone();
        NodeSettings { deployment, functions, fs: FsConfig::default() }
    }
}

/// Why a node cannot start (one line).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("access point mounts in {dir}: {source}")]
    Mounts { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Functions(#[from] floe_lambda::OpenError),
}

struct Inner {
    meta: Meta,
    deployment: Deployment,
    functions: Functions,
    filesystems: FileSystems,
    triggers: Triggers,
    mounts: Arc<AccessPointMounts>,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl Node {
    /// Starts the node's services. Must run inside a Tokio runtime.
    pub async fn open(meta: Meta, objects: Arc<dyn ObjectStore>, settings: NodeSettings) -> Result<Node, NodeError> {
        let mnt = settings.functions.node_dir.join("mnt");
        let mounts = Arc::new(AccessPointMounts::new(
            meta.clone(),
            Arc::clone(&objects),
            &mnt,
            settings.deployment.clone(),
            settings.fs.clone(),
        ));
        // The functions service checks the host's privileges first: its one-line
        // error is the one a user without root should see.
        let functions = Functions::open_with_mounts(
            meta.clone(),
            Arc::clone(&objects),
            settings.functions.clone(),
            Arc::clone(&mounts) as Arc<dyn floe_lambda::MountSources>,
        )
        .await?;
        if let Err(source) = mounts.prepare() {
            functions.shutdown();
            return Err(NodeError::Mounts { dir: mnt, source });
        }
        let filesystems = FileSystems::new(
            meta.clone(),
            objects,
            Some(functions.clone()),
            Some(Arc::clone(&mounts)),
            settings.deployment.clone(),
        );
        let triggers = Triggers::new(meta.clone(), Some(functions.clone()), settings.deployment.clone());
        Ok(Node {
            inner: Arc::new(Inner { meta, deployment: settings.deployment, functions, filesystems, triggers, mounts }),
        })
    }

    pub fn meta(&self) -> &Meta {
        &self.inner.meta
    }

    pub fn deployment(&self) -> &Deployment {
        &self.inner.deployment
    }

    pub fn functions(&self) -> &Functions {
        &self.inner.functions
    }

    pub fn filesystems(&self) -> &FileSystems {
        &self.inner.filesystems
    }

    pub fn triggers(&self) -> &Triggers {
        &self.inner.triggers
    }

    pub fn mounts(&self) -> &Arc<AccessPointMounts> {
        &self.inner.mounts
    }

    /// Stops every environment, then releases every mount (node shutdown).
    pub fn shutdown(&self) {
        self.inner.functions.shutdown();
        self.inner.mounts.close();
    }
}
