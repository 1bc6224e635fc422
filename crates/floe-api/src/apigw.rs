//! The API Gateway v2 management API (HTTP APIs, integrations, routes, stages).
//! SKELETON: filled in by the triggers work.

use axum::Router;

use crate::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new()
}
