//! One request through the trigger listener: the routing table (re-read when the
//! stored APIs change, so a route change is live on every node at the next
//! request), the matching route, the function's invocation, the response.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use floe_lambda::{ErrorKind, InvokeRequest, InvokeResponse, LambdaError};

use super::event::{self, HttpRequest};
use super::model::{Apis, Integration, Result};
use super::response::{map_result, GatewayError, HttpResponse};
use super::{clock, manage, model, routing, RouteKey, Triggers, MAX_REQUEST_BODY};

/// Every served route of the deployment, parsed, at one revision of the record.
pub(crate) struct Table {
    revision: Option<u64>,
    routes: Vec<Served>,
}

struct Served {
    api_id: String,
    key: RouteKey,
    /// `None`: the route has no target (it answers 404).
    integration: Option<Integration>,
}

impl Table {
    fn build(apis: &Apis, revision: Option<u64>) -> Table {
        let mut routes = Vec::new();
        for api in apis.apis.iter().filter(|a| a.is_deployed()) {
            for route in &api.routes {
                let Ok(key) = RouteKey::parse(&route.key) else {
                    tracing::warn!(api = %api.id, route = %route.id, key = %route.key, "stored route key is invalid");
                    continue;
                };
                let integration =
                    route.integration.as_ref().and_then(|id| api.integrations.iter().find(|i| &i.id == id)).cloned();
                routes.push(Served { api_id: api.id.clone(), key, integration });
            }
        }
        Table { revision, routes }
    }
}

/// API Gateway's request ids: 16 characters of base64.
fn new_request_id() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Triggers {
    /// The routing table at the stored revision: parsed again only when it moved.
    fn table(&self) -> Result<Arc<Table>> {
        let record = self.inner.meta.record(model::KIND, model::NAME)?;
        let revision = record.as_ref().map(|r| r.revision);
        let mut cached = self.inner.table.lock().expect("table lock");
        if let Some(table) = cached.as_ref().filter(|t| t.revision == revision) {
            return Ok(Arc::clone(table));
        }
        let apis = match &record {
            Some(r) => Apis::parse(&r.body)?,
            None => Apis::default(),
        };
        let table = Arc::new(Table::build(&apis, revision));
        *cached = Some(Arc::clone(&table));
        Ok(table)
    }

    /// Serves one HTTP request: the matching route's function gets the payload 2.0
    /// event and its result becomes the response; the gateway's own errors are
    /// API Gateway's. Every response carries `apigw-requestid`.
    pub async fn serve(&self, request: HttpRequest) -> HttpResponse {
        let request_id = new_request_id();
        let started = Instant::now();
        let mut response = match self.respond(&request, &request_id).await {
            Ok(r) => r,
            Err(e) => e.response(),
        };
        tracing::debug!(
            request_id = %request_id,
            method = %request.method,
            path = %request.path,
            status = response.status,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "trigger request"
        );
        response.headers.push(("apigw-requestid".into(), request_id));
        response
    }

    /// The gateway's answer to a request it refuses before [`Triggers::serve`] (a
    /// body over the limit, a body that could not be read).
    pub fn reject(&self, error: GatewayError) -> HttpResponse {
        let mut response = error.response();
        response.headers.push(("apigw-requestid".into(), new_request_id()));
        response
    }

    async fn respond(&self, request: &HttpRequest, request_id: &str) -> Result<HttpResponse, GatewayError> {
        if request.body.len() > MAX_REQUEST_BODY {
            return Err(GatewayError::RequestTooLarge);
        }
        let table = self.table().map_err(|e| {
            tracing::error!(request_id, "cannot read the routes: {e}");
            GatewayError::Internal
        })?;
        let path = routing::RequestPath::new(&request.path);
        let candidates = table.routes.iter().filter_map(|s| s.key.matches(&request.method, &path).map(|m| (s, m)));
        let (served, matched) = routing::best(candidates).ok_or(GatewayError::NotFound)?;
        let integration = served.integration.as_ref().ok_or(GatewayError::NotFound)?;
        let fail = |why: String| {
            tracing::warn!(request_id, api = %served.api_id, route = %served.key.text(), "{why}");
            GatewayError::Internal
        };
        let functions = self.inner.functions.clone().ok_or_else(|| fail("this process runs no functions".into()))?;
        let function = manage::function_name(&self.inner.deployment, &integration.uri)
            .map_err(|e| fail(format!("integration {}: {e}", integration.id)))?;
        let context = event::Context {
            account_id: &self.inner.deployment.account_id,
            api_id: &served.api_id,
            route_key: served.key.text(),
            request_id,
            now_ms: clock::now_ms(),
        };
        let payload = event::build(request, &matched.params, &context).to_string();
        // The invocation runs as its own task: a client that goes away or an
        // integration timeout abandons the wait, never the invocation half-way.
        let name = function.clone();
        let invocation = tokio::spawn(async move { functions.invoke(&name, InvokeRequest::sync(payload)).await });
        let limit = Duration::from_millis(u64::from(integration.timeout_ms));
        let outcome = match tokio::time::timeout(limit, invocation).await {
            Err(_) => {
                tracing::warn!(request_id, function, "integration timed out after {limit:?}");
                return Err(GatewayError::Unavailable);
            }
            Ok(Err(join)) => return Err(fail(format!("invocation of {function} failed: {join}"))),
            Ok(Ok(outcome)) => outcome,
        };
        result_response(outcome).map_err(|(error, why)| {
            tracing::warn!(request_id, function, status = error.status(), "{why}");
            error
        })
    }
}

/// The response for an invocation's outcome, or the gateway error and why.
fn result_response(
    outcome: std::result::Result<InvokeResponse, LambdaError>,
) -> std::result::Result<HttpResponse, (GatewayError, String)> {
    match outcome {
        Err(e) => Err((
            match e.kind {
                ErrorKind::TooManyRequests => GatewayError::Throttled,
                ErrorKind::RequestTooLarge => GatewayError::RequestTooLarge,
                _ => GatewayError::Internal,
            },
            e.to_string(),
        )),
        Ok(r) if r.function_error.is_some() => {
            let why = format!("function error: {}", String::from_utf8_lossy(&r.payload));
            Err((if is_timeout(&r.payload) { GatewayError::Unavailable } else { GatewayError::Internal }, why))
        }
        Ok(r) => map_result(&r.payload).map_err(|why| (GatewayError::Internal, why)),
    }
}

/// Whether a function error is the invoker's timeout: Lambda's
/// `{"errorMessage": "<time> <id> Task timed out after N.00 seconds"}` with no type,
/// or an init phase that timed out (`Sandbox.Timedout`).
fn is_timeout(payload: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(error)) = serde_json::from_slice(payload) else { return false };
    match error.get("errorType").and_then(|t| t.as_str()) {
        Some(t) => t == "Sandbox.Timedout",
        None => error
            .get("errorMessage")
            .and_then(|m| m.as_str())
            .and_then(|m| m.rsplit_once(" Task timed out after "))
            .is_some_and(|(_, secs)| secs.ends_with(" seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoked(payload: &str, error: Option<&str>) -> std::result::Result<InvokeResponse, LambdaError> {
        Ok(InvokeResponse {
            status: 200,
            payload: payload.to_string().into(),
            function_error: error.map(str::to_string),
            log_result: None,
            executed_version: "$LATEST",
            request_id: "r".into(),
            init_duration: None,
            duration: Duration::ZERO,
        })
    }

    fn status(outcome: std::result::Result<InvokeResponse, LambdaError>) -> u16 {
        match result_response(outcome) {
            Ok(r) => r.status,
            Err((e, _)) => e.status(),
        }
    }

    #[test]
    fn outcomes_map_as_api_gateway_maps_them() {
        let timed_out = r#"{"errorMessage": "2026-12-03T10:22:29.000Z 0b1f Task timed out after 1.00 seconds"}"#;
        let table = [
            (invoked(r#"{"statusCode": 201}"#, None), 201),
            (invoked(r#""text""#, None), 200),
            (invoked("{not json", None), 500),
            (invoked(r#"{"errorMessage": "boom", "errorType": "ValueError"}"#, Some("Unhandled")), 500),
            (
                invoked(
                    r#"{"errorMessage": "Task timed out after 1.00 seconds", "errorType": "X"}"#,
                    Some("Unhandled"),
                ),
                500,
            ),
            (invoked(timed_out, Some("Unhandled")), 503),
            (invoked(r#"{"errorMessage": "init", "errorType": "Sandbox.Timedout"}"#, Some("Unhandled")), 503),
            (Err(LambdaError::throttled("ReservedFunctionConcurrentInvocationLimitExceeded")), 429),
            (Err(LambdaError::not_found("gone")), 500),
            (Err(LambdaError::new(ErrorKind::RequestTooLarge, "big")), 413),
            (Err(LambdaError::service("disk")), 500),
        ];
        for (outcome, want) in table {
            let shown = format!("{outcome:?}");
            assert_eq!(status(outcome), want, "{shown}");
        }
    }

    #[test]
    fn request_ids_look_like_api_gateway_ones() {
        let id = new_request_id();
        assert_eq!(id.len(), 16);
        assert!(id.ends_with('='));
        assert_ne!(id, new_request_id());
    }
}
