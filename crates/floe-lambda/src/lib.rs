//! floe's functions: the function model and its validation (`model`), code
//! packages (`code`), execution environments speaking the AWS Lambda Runtime API
//! (`environment`, `runtime_api`, `logs`), the invoker with its pools and
//! concurrency limits (`invoker`, held across the cluster by `leases`), and the service every front end calls
//! (`service`: the CLI now, the HTTP API next).

pub mod code;
mod environment;
pub mod error;
mod invoker;
mod leases;
pub mod logs;
pub mod model;
mod mounts;
mod peer;
mod runtime_api;
pub mod runtimes;
mod service;
pub mod time;

pub use environment::{HostConfig, InvokeContext, Outcome, RUNTIME_DIR};
pub use error::{ErrorKind, LambdaError, Result};
pub use invoker::{Invoker, InvokerConfig, PoolStats};
pub use model::{Function, Limits, MountConfig, Runtime, Settings, LATEST};
pub use mounts::{HostDirectories, MountSources};
pub use service::{AsyncConfig, Functions, InvocationType, InvokeRequest, InvokeResponse, NodeConfig, OpenError};
