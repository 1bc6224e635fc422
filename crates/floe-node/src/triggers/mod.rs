//! HTTP triggers: APIs with routes (method + path, or `$default`) bound to
//! functions, API Gateway HTTP API payload 2.0 events, and the mapping of a
//! function's result back to an HTTP response. The CLI (`floe route`), the API
//! Gateway management API and the trigger listener all call this.
//!
//! SKELETON: filled in by the triggers work (see the constructor's contract).

use std::sync::Arc;

use floe_lambda::Functions;
use floe_meta::Meta;

use crate::Deployment;

/// The triggers service of a node.
#[derive(Clone)]
pub struct Triggers {
    #[allow(dead_code)]
    inner: Arc<Inner>,
}

#[allow(dead_code)]
struct Inner {
    meta: Meta,
    /// Absent when a command runs without a node: routes can be managed, not served.
    functions: Option<Functions>,
    deployment: Deployment,
}

impl Triggers {
    pub fn new(meta: Meta, functions: Option<Functions>, deployment: Deployment) -> Triggers {
        Triggers { inner: Arc::new(Inner { meta, functions, deployment }) }
    }
}
