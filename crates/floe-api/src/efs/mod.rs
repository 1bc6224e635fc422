//! The Amazon EFS API (rest-json, `2015-02-01`): file systems, access points,
//! file system policies and tags. Each handler reads the request, calls the node's
//! [`FileSystems`] service on a blocking thread (the metadata engine is
//! synchronous) and writes EFS's wire shape; [`From<EfsError>`] is the one place
//! errors get their status and code.

mod access_points;
mod file_systems;
mod input;
mod policy;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::Router;
use floe_meta::TimeSpec;
use floe_node::filesystems::{EfsError, Tag};
use floe_node::FileSystems;

use crate::{error::unknown_operation, ApiState, AwsError};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/2015-02-01/file-systems",
            post(file_systems::create).get(file_systems::describe).fallback(unknown_operation),
        )
        .route(
            "/2015-02-01/file-systems/{id}",
            put(file_systems::update).delete(file_systems::delete).fallback(unknown_operation),
        )
        .route(
            "/2015-02-01/file-systems/{id}/policy",
            put(policy::put).get(policy::describe).delete(policy::delete).fallback(unknown_operation),
        )
        .route(
            "/2015-02-01/access-points",
            post(access_points::create).get(access_points::describe).fallback(unknown_operation),
        )
        .route("/2015-02-01/access-points/{id}", delete(access_points::delete).fallback(unknown_operation))
        .route(
            "/2015-02-01/resource-tags/{id}",
            post(policy::tag).delete(policy::untag).get(policy::list_tags).fallback(unknown_operation),
        )
}

impl From<EfsError> for AwsError {
    fn from(e: EfsError) -> AwsError {
        let message = e.to_string();
        match e {
            EfsError::BadRequest(_) => AwsError::efs(400, "BadRequest", message),
            EfsError::FileSystemNotFound(_) => AwsError::efs(404, "FileSystemNotFound", message),
            EfsError::AccessPointNotFound(_) => AwsError::efs(404, "AccessPointNotFound", message),
            EfsError::FileSystemAlreadyExists { id, .. } => {
                let mut out = AwsError::efs(409, "FileSystemAlreadyExists", message);
                out.body["FileSystemId"] = id.to_string().into();
                out
            }
            EfsError::AccessPointAlreadyExists { id, .. } => {
                let mut out = AwsError::efs(409, "AccessPointAlreadyExists", message);
                out.body["AccessPointId"] = id.to_string().into();
                out
            }
            EfsError::FileSystemInUse(_) => AwsError::efs(409, "FileSystemInUse", message),
            EfsError::InvalidPolicy(_) => AwsError::efs(400, "InvalidPolicyException", message),
            EfsError::PolicyNotFound(_) => AwsError::efs(404, "PolicyNotFound", message),
            EfsError::Conflict(_) => AwsError::efs(409, "ConflictException", message),
            EfsError::Internal(_) => AwsError::efs(500, "InternalServerError", message),
        }
    }
}

/// Runs a service call on a blocking thread.
async fn call<T: Send + 'static>(
    state: &ApiState,
    op: impl FnOnce(&FileSystems) -> Result<T, EfsError> + Send + 'static,
) -> Result<T, AwsError> {
    let node = state.node.clone();
    tokio::task::spawn_blocking(move || op(node.filesystems()))
        .await
        .map_err(|e| AwsError::efs(500, "InternalServerError", format!("the request failed: {e}")))?
        .map_err(AwsError::from)
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (status, [("content-type", "application/json")], value.to_string()).into_response()
}

/// EFS timestamps: seconds since the epoch (fractions allowed).
fn epoch_seconds(t: TimeSpec) -> f64 {
    (t.0 / 1_000_000) as f64 / 1000.0
}

fn tags_json(tags: &[Tag]) -> serde_json::Value {
    tags.iter().map(|t| serde_json::json!({"Key": t.key, "Value": t.value})).collect()
}

/// The id in a request's path (`{id}`), percent-decoded; a path that does not
/// decode is a `BadRequest`, not axum's plain-text rejection.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = AwsError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, AwsError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Id(id)),
            Err(e) => Err(input::bad_request(format!("the id in the path is unreadable: {e}"))),
        }
    }
}
