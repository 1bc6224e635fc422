//! A floe node: the service layer every front end calls — the CLI, the
//! AWS-compatible HTTP API and the HTTP triggers — and what a node does on its own
//! behalf: mounting access points for its execution environments.
//!
//! - [`FileSystems`]: file systems, access points and policies with Amazon EFS's
//!   semantics (ids, creation tokens, tags, `FileSystemInUse`).
//! - [`Triggers`]: HTTP APIs and their routes to functions, API Gateway's
//!   payload 2.0 events and response mapping.
//! - [`AccessPointMounts`]: one FUSE client per file system, one mount per access
//!   point a function uses, bound into its environments.
//! - [`NodeRegistry`]: each node's record and heartbeat in the metadata engine,
//!   and the list of the deployment's nodes with their liveness.
//! - [`Node`]: the wiring of one node over a metadata engine and an object store.
//!
//! Not here: HTTP, SigV4 or wire shapes (`floe-api`), command-line parsing (`floe`).

mod deployment;
pub mod filesystems;
mod mounts;
mod node;
pub mod registry;
pub mod triggers;

pub use deployment::Deployment;
pub use filesystems::FileSystems;
pub use mounts::{detach_mounts_below, AccessPointMounts};
pub use node::{Node, NodeError, NodeSettings};
pub use registry::{Liveness, NodeAnnouncement, NodeRecord, NodeRegistry, NodeStatus, RegistryError};
pub use triggers::Triggers;
