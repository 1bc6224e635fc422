//! What the triggers service stores: HTTP APIs with their integrations, routes and
//! stages, and the rules a change must pass. All APIs of a deployment are one record
//! of the metadata engine (kind [`KIND`], name [`NAME`]), so that a change that checks
//! a rule across APIs (a route key is unique in the deployment) is one
//! compare-and-set, and a request reads one record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::routing::RouteKey;

pub(crate) const KIND: &str = "http_triggers";
pub(crate) const NAME: &str = "apis";

/// The only stage floe serves: every change is live at once (auto-deploy).
pub const DEFAULT_STAGE: &str = "$default";
/// The only payload format floe produces.
pub const PAYLOAD_FORMAT: &str = "2.0";
/// API Gateway's default and maximum integration timeout.
pub const MAX_INTEGRATION_TIMEOUT_MS: u32 = 30_000;
pub const MIN_INTEGRATION_TIMEOUT_MS: u32 = 50;

/// Why a management operation failed; floe-api maps each kind to API Gateway's
/// exception of the same name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The metadata engine failed, or a stored record is unreadable.
    #[error("{0}")]
    Storage(String),
}

impl From<floe_meta::MetaError> for TriggerError {
    fn from(e: floe_meta::MetaError) -> TriggerError {
        TriggerError::Storage(format!("metadata: {e}"))
    }
}

pub type Result<T, E = TriggerError> = std::result::Result<T, E>;

/// Every API of the deployment, as stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Apis {
    pub apis: Vec<Api>,
}

/// An HTTP API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Api {
    /// 10 lowercase alphanumerics, as API Gateway's.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unix milliseconds.
    pub created_ms: u64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub integrations: Vec<Integration>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub stages: Vec<Stage>,
}

/// An `AWS_PROXY` integration with a Lambda function.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Integration {
    /// 7 lowercase alphanumerics.
    pub id: String,
    /// A function name or a Lambda function ARN, as given; resolved when a request
    /// is served, so a function created after its route works.
    pub uri: String,
    pub payload_format_version: String,
    pub timeout_ms: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A route: a route key and the integration it sends requests to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Route {
    /// 7 lowercase alphanumerics.
    pub id: String,
    /// `$default` or `METHOD /path`, as given (checked by [`RouteKey::parse`]).
    pub key: String,
    /// The integration's id; a route without one answers 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
}

impl Route {
    /// API Gateway's `Target`: `integrations/<id>`.
    pub fn target(&self) -> Option<String> {
        self.integration.as_ref().map(|id| format!("integrations/{id}"))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// What CreateApi gives.
#[derive(Clone, Debug, Default)]
pub struct NewApi {
    pub name: String,
    /// `HTTP` (the only protocol floe serves).
    pub protocol: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Quick create: a function to send every request of `route_key` to; makes the
    /// integration, the route and the `$default` stage.
    pub target: Option<String>,
    /// Quick create's route key (default `$default`); only with `target`.
    pub route_key: Option<String>,
}

/// What CreateIntegration gives.
#[derive(Clone, Debug, Default)]
pub struct NewIntegration {
    /// `AWS_PROXY` (the only type floe serves).
    pub integration_type: String,
    pub uri: Option<String>,
    /// Default `2.0`; `1.0` is refused.
    pub payload_format_version: Option<String>,
    pub timeout_ms: Option<u32>,
    /// `POST` if given (what a Lambda proxy integration uses).
    pub method: Option<String>,
    pub description: Option<String>,
}

/// What CreateRoute gives.
#[derive(Clone, Debug, Default)]
pub struct NewRoute {
    pub key: String,
    /// `integrations/<id>`.
    pub target: Option<String>,
}

/// What CreateStage gives.
#[derive(Clone, Debug, Default)]
pub struct NewStage {
    pub name: String,
    pub auto_deploy: Option<bool>,
    pub description: Option<String>,
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A new random id of `len` lowercase alphanumerics.
pub(crate) fn new_id(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

impl Apis {
    pub fn parse(body: &str) -> Result<Apis> {
        serde_json::from_str(body).map_err(|e| TriggerError::Storage(format!("stored HTTP APIs are unreadable: {e}")))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("API records are plain data")
    }

    pub fn get(&self, api_id: &str) -> Result<&Api> {
        self.apis.iter().find(|a| a.id == api_id).ok_or_else(|| not_found("API", api_id))
    }

    pub fn get_mut(&mut self, api_id: &str) -> Result<&mut Api> {
        self.apis.iter_mut().find(|a| a.id == api_id).ok_or_else(|| not_found("API", api_id))
    }

    /// A route key may be used by one route of one API in the whole deployment, so
    /// that the listener, which serves every API, picks a route unambiguously. Keys
    /// that differ only in the names of their parameters are the same key.
    pub fn check_route_key_free(&self, key: &RouteKey) -> Result<()> {
        let shape = key.shape();
        for api in &self.apis {
            for route in &api.routes {
                if RouteKey::parse(&route.key).is_ok_and(|k| k.shape() == shape) {
                    return Err(TriggerError::Conflict(format!(
                        "Route key '{}' conflicts with route {} ('{}') of API {}: a route key may be used \
                         once in a floe deployment, because one listener serves every API",
                        key.text(),
                        route.id,
                        route.key,
                        api.id
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Api {
    pub fn integration(&self, id: &str) -> Result<&Integration> {
        self.integrations.iter().find(|i| i.id == id).ok_or_else(|| not_found("Integration", id))
    }

    pub fn route(&self, id: &str) -> Result<&Route> {
        self.routes.iter().find(|r| r.id == id).ok_or_else(|| not_found("Route", id))
    }

    pub fn stage(&self, name: &str) -> Result<&Stage> {
        self.stages.iter().find(|s| s.name == name).ok_or_else(|| not_found("Stage", name))
    }

    /// Requests reach an API's routes only once it has its `$default` stage.
    pub fn is_deployed(&self) -> bool {
        self.stages.iter().any(|s| s.name == DEFAULT_STAGE)
    }

    /// An id of `len` characters used by no integration or route of this API.
    pub(crate) fn fresh_id(&self) -> String {
        loop {
            let id = new_id(7);
            if !self.integrations.iter().any(|i| i.id == id) && !self.routes.iter().any(|r| r.id == id) {
                return id;
            }
        }
    }
}

pub(crate) fn not_found(what: &str, id: &str) -> TriggerError {
    TriggerError::NotFound(format!("Invalid {what} identifier specified {id}"))
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    let len = name.chars().count();
    if !(1..=128).contains(&len) {
        return Err(TriggerError::BadRequest(format!(
            "Invalid API name '{name}': an API name must be 1 to 128 characters long"
        )));
    }
    Ok(())
}

pub(crate) fn check_description(description: &Option<String>) -> Result<()> {
    match description {
        Some(d) if d.chars().count() > 1024 => {
            Err(TriggerError::BadRequest("A description must be at most 1024 characters long".into()))
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > 50 {
        return Err(TriggerError::BadRequest(format!("{} tags given; an API may have at most 50", tags.len())));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(TriggerError::BadRequest(format!(
                "Invalid tag '{k}': keys are 1 to 128 characters, values at most 256"
            )));
        }
        if k.starts_with("aws:") {
            return Err(TriggerError::BadRequest(format!("Invalid tag '{k}': the prefix aws: is reserved")));
        }
    }
    Ok(())
}
