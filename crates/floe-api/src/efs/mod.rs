//! The Amazon EFS API (rest-json, `2015-02-01`). SKELETON: filled in by the EFS work.

use axum::Router;

use crate::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new()
}
