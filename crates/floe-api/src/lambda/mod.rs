//! The AWS Lambda API (rest-json, `2015-03-31` and friends). SKELETON: filled in
//! by the Lambda API work.

use axum::Router;

use crate::ApiState;

pub fn routes() -> Router<ApiState> {
    Router::new()
}
