//! floe's HTTP surface. [`api_router`] serves the parts of the AWS Lambda, Amazon
//! EFS and API Gateway (v2) APIs that floe covers, behind SigV4 verification, so
//! that the aws CLI and boto3 work with `--endpoint-url`; [`trigger_router`] serves
//! HTTP triggers (API Gateway payload 2.0 events). Each route parses the request
//! into a call of the node's services ([`floe_node::Node`]) and turns the result or
//! error into the AWS wire shape; no behaviour lives here.
//!
//! Not here: what functions, file systems or routes do (`floe-node`,
//! `floe-lambda`), command-line parsing (`floe`).

pub mod apigw;
pub mod client;
pub mod efs;
pub mod error;
pub mod lambda;
pub mod sigv4;
pub mod trigger;

use std::sync::Arc;

use axum::Router;
use floe_node::Node;

pub use error::AwsError;

/// One API key: what SigV4 signatures are checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// What every API route is served with.
#[derive(Clone)]
pub struct ApiState {
    pub node: Node,
    /// The keys requests may be signed with.
    pub credentials: Arc<Vec<Credential>>,
}

impl ApiState {
    /// The secret of `access_key_id`, if it is one of this node's keys.
    pub fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.credentials.iter().find(|c| c.access_key_id == access_key_id).map(|c| c.secret_access_key.as_str())
    }
}

/// The AWS-compatible API: Lambda, EFS and API Gateway v2 routes, every request
/// verified with SigV4 first.
pub fn api_router(state: ApiState) -> Router {
    Router::new()
        .merge(lambda::routes())
        .merge(efs::routes())
        .merge(apigw::routes())
        .fallback(error::unknown_operation)
        // Operations only: a request for none gets UnknownOperationException signed or not.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), sigv4::verify))
        // Unsigned, for load balancers: after the layer, which covers only what precedes it.
        .route("/health", axum::routing::get(health))
        .with_state(state)
}

/// `GET /health`: 200 when this node serves and reaches its metadata engine, 503
/// (with the reason) when it cannot, so that a load balancer sends requests
/// elsewhere. Unsigned: it tells nothing but that.
async fn health(axum::extract::State(state): axum::extract::State<ApiState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let meta = state.node.meta().clone();
    let probe = tokio::task::spawn_blocking(move || meta.record("health", "probe")).await;
    let (status, body) = match probe {
        Ok(Ok(_)) => (axum::http::StatusCode::OK, serde_json::json!({"status": "ok"})),
        Ok(Err(e)) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "reason": format!("metadata engine: {e}")}),
        ),
        Err(e) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unavailable", "reason": e.to_string()}),
        ),
    };
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The HTTP trigger listener: every request is matched against the routes of the
/// node's HTTP APIs and becomes a payload 2.0 event for the bound function.
pub fn trigger_router(node: Node) -> Router {
    trigger::router(node)
}
