//! The HTTP trigger listener. SKELETON: filled in by the triggers work.

use axum::Router;
use floe_node::Node;

pub fn router(_node: Node) -> Router {
    Router::new()
}
