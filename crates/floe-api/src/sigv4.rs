//! SigV4 verification of API requests. SKELETON: filled in by the Lambda API work.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::ApiState;

/// Verifies the request's signature against the node's credentials before any
/// route sees it.
pub async fn verify(State(_state): State<ApiState>, request: Request, next: Next) -> Response {
    next.run(request).await
}
