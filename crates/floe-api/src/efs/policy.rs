//! Put/Describe/DeleteFileSystemPolicy, and the tagging operations (TagResource,
//! UntagResource, ListTagsForResource).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use floe_node::filesystems::PolicyDescription;
use serde_json::json;

use super::input::{bad_request, Body, Query};
use super::{call, json, tags_json, Id};
use crate::{ApiState, AwsError};

fn description(p: &PolicyDescription) -> Response {
    json(StatusCode::OK, json!({"FileSystemId": p.file_system_id.as_str(), "Policy": p.policy}))
}

pub async fn put(State(state): State<ApiState>, Id(id): Id, body: Bytes) -> Result<Response, AwsError> {
    let body = Body::parse(&body)?;
    body.only(&["Policy", "BypassPolicyLockoutSafetyCheck"])?;
    // floe's policies cannot lock clients out (mounting is always allowed), so
    // there is no safety check to bypass.
    body.bool("BypassPolicyLockoutSafetyCheck")?;
    let document = body.required_string("Policy")?;
    let policy = call(&state, move |fss| fss.put_file_system_policy(&id, &document)).await?;
    Ok(description(&policy))
}

pub async fn describe(State(state): State<ApiState>, Id(id): Id) -> Result<Response, AwsError> {
    let policy = call(&state, move |fss| fss.describe_file_system_policy(&id)).await?;
    Ok(description(&policy))
}

pub async fn delete(State(state): State<ApiState>, Id(id): Id) -> Result<StatusCode, AwsError> {
    call(&state, move |fss| fss.delete_file_system_policy(&id)).await?;
    Ok(StatusCode::OK)
}

pub async fn tag(State(state): State<ApiState>, Id(id): Id, body: Bytes) -> Result<StatusCode, AwsError> {
    let body = Body::parse(&body)?;
    body.only(&["Tags"])?;
    let tags = body.tags("Tags")?.ok_or_else(|| bad_request("Tags is required"))?;
    call(&state, move |fss| fss.tag_resource(&id, tags)).await?;
    Ok(StatusCode::OK)
}

pub async fn untag(State(state): State<ApiState>, Id(id): Id, RawQuery(raw): RawQuery) -> Result<StatusCode, AwsError> {
    let query = Query::parse(raw.as_deref());
    query.only(&["tagKeys"])?;
    let keys = query.all("tagKeys");
    if keys.is_empty() {
        return Err(bad_request("tagKeys is required: the keys of the tags to remove"));
    }
    call(&state, move |fss| fss.untag_resource(&id, &keys)).await?;
    Ok(StatusCode::OK)
}

pub async fn list_tags(
    State(state): State<ApiState>,
    Id(id): Id,
    RawQuery(raw): RawQuery,
) -> Result<Response, AwsError> {
    let query = Query::parse(raw.as_deref());
    query.only(&["MaxResults", "NextToken"])?;
    let max = query.count("MaxResults")?;
    let token = query.get("NextToken");
    let page = call(&state, move |fss| fss.list_tags_for_resource(&id, max, token.as_deref())).await?;
    let mut out = json!({"Tags": tags_json(&page.items)});
    if let Some(next) = page.next {
        out["NextToken"] = next.into();
    }
    Ok(json(StatusCode::OK, out))
}
