//! The HTTP trigger listener: every path and method, no SigV4 (triggers are public,
//! as API Gateway's default routes), bodies up to 10 MB. Each request goes to
//! [`floe_node::Triggers::serve`]; this module only converts between HTTP and the
//! service's request and response.
//!
//! Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that
//! events carry the client's `sourceIp`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use floe_node::triggers::{GatewayError, HttpRequest, HttpResponse, MAX_REQUEST_BODY};
use floe_node::Node;
use http_body_util::{BodyExt, LengthLimitError, Limited};

pub fn router(node: Node) -> Router {
    Router::new().fallback(serve).with_state(node)
}

async fn serve(State(node): State<Node>, request: Request) -> Response {
    let triggers = node.triggers();
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return to_response(triggers.reject(GatewayError::RequestTooLarge));
    }
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return to_response(triggers.reject(GatewayError::RequestTooLarge))
        }
        Err(e) => {
            tracing::debug!("trigger request body: {e}");
            return to_response(triggers.reject(GatewayError::BadRequest));
        }
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        protocol: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        body,
        source_ip: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()),
    };
    to_response(triggers.serve(request).await)
}

fn to_response(r: HttpResponse) -> Response {
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in r.headers {
        // The service checked names and values; a pair HTTP still refuses is dropped.
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        {
            headers.append(name, value);
        }
    }
    response
}
