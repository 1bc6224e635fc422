//! HTTP triggers: APIs with routes (method + path, or `$default`) bound to
//! functions, API Gateway HTTP API payload 2.0 events, and the mapping of a
//! function's result back to an HTTP response. The CLI (`floe route`), the API
//! Gateway management API and the trigger listener all call this.
//!
//! - `model`: what is stored (one record holding every API), ids and the rules.
//! - `manage`: the management operations (CreateApi, CreateRoute, ...).
//! - `routing`: route keys and API Gateway's precedence between them.
//! - `event` / `response`: a request as a payload 2.0 event, a result as a response.
//! - `serve`: one request through the listener, from route to function and back.
//!
//! **How a request picks an API.** One listener serves every API of the deployment,
//! so a route key may exist in one API only (a second one is a `ConflictException`,
//! keys differing only in parameter names included) and the most specific matching
//! route of all APIs decides. An API without its `$default` stage serves nothing.

mod clock;
mod event;
mod manage;
mod model;
mod response;
mod routing;
mod serve;

use std::sync::{Arc, Mutex, RwLock};

use floe_lambda::Functions;
use floe_meta::{Expect, Meta, MetaError};

use crate::Deployment;

pub use event::HttpRequest;
pub use model::{
    Api, Integration, NewApi, NewIntegration, NewRoute, NewStage, Result, Route, Stage, TriggerError, DEFAULT_STAGE,
    PAYLOAD_FORMAT,
};
pub use response::{GatewayError, HttpResponse};
pub use routing::RouteKey;

use model::Apis;

/// The largest request body the listener takes, as API Gateway's HTTP APIs.
pub const MAX_REQUEST_BODY: usize = 10 << 20;

/// ISO 8601 (`2026-12-03T10:22:29Z`), as the management API writes dates.
pub fn iso8601(unix_ms: u64) -> String {
    clock::iso8601(unix_ms)
}

/// The triggers service of a node.
#[derive(Clone)]
pub struct Triggers {
    inner: Arc<Inner>,
}

struct Inner {
    meta: Meta,
    /// Absent when a command runs without a node: routes can be managed, not served.
    functions: Option<Functions>,
    deployment: Deployment,
    /// The listener's public URL (`apiEndpoint`), once the node knows it.
    endpoint: RwLock<Option<String>>,
    /// The routing table of the last revision of the record a request read.
    table: Mutex<Option<Arc<serve::Table>>>,
}

impl Triggers {
    pub fn new(meta: Meta, functions: Option<Functions>, deployment: Deployment) -> Triggers {
        Triggers {
            inner: Arc::new(Inner {
                meta,
                functions,
                deployment,
                endpoint: RwLock::new(None),
                table: Mutex::new(None),
            }),
        }
    }

    /// Where the trigger listener is reached (e.g. `http://host:9001`): the
    /// `apiEndpoint` of every API.
    pub fn set_endpoint(&self, url: impl Into<String>) {
        *self.inner.endpoint.write().expect("endpoint lock") = Some(url.into());
    }

    pub fn endpoint(&self) -> Option<String> {
        self.inner.endpoint.read().expect("endpoint lock").clone()
    }

    pub fn deployment(&self) -> &Deployment {
        &self.inner.deployment
    }

    /// Every API and the revision of the record they came from (`None`: no record).
    fn load(&self) -> Result<(Apis, Option<u64>)> {
        match self.inner.meta.record(model::KIND, model::NAME)? {
            Some(record) => Ok((Apis::parse(&record.body)?, Some(record.revision))),
            None => Ok((Apis::default(), None)),
        }
    }

    /// Applies `change` to the stored APIs as one compare-and-set, again on what
    /// another node wrote in between.
    fn update<R>(&self, mut change: impl FnMut(&mut Apis) -> Result<R>) -> Result<R> {
        for _ in 0..64 {
            let (mut apis, revision) = self.load()?;
            let out = change(&mut apis)?;
            let expect = revision.map_or(Expect::Absent, Expect::Revision);
            match self.inner.meta.put_record(model::KIND, model::NAME, &apis.to_json(), expect) {
                Ok(_) => return Ok(out),
                Err(MetaError::Stale | MetaError::Exists | MetaError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(TriggerError::Storage("HTTP APIs changed too often concurrently; try again".into()))
    }
}
