//! CreateAccessPoint, DescribeAccessPoints, DeleteAccessPoint.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use floe_node::filesystems::{AccessPointDescription, AccessPointQuery, NewAccessPoint, PosixUser, RootDirectory};
use serde_json::{json, Value};

use super::input::{Body, Query};
use super::{call, json, tags_json, Id};
use crate::{ApiState, AwsError};

fn description(ap: &AccessPointDescription, owner: &str) -> Value {
    let mut posix_user = json!({"Uid": ap.posix_user.uid, "Gid": ap.posix_user.gid});
    if !ap.posix_user.groups.is_empty() {
        posix_user["SecondaryGids"] = ap.posix_user.groups.clone().into();
    }
    let mut root = json!({"Path": ap.path});
    if let Some(c) = ap.creation {
        root["CreationInfo"] = json!({"OwnerUid": c.uid, "OwnerGid": c.gid, "Permissions": format!("{:03o}", c.mode)});
    }
    let mut out = json!({
        "ClientToken": ap.client_token,
        "Tags": tags_json(&ap.tags),
        "AccessPointId": ap.id.as_str(),
        "AccessPointArn": ap.arn,
        "FileSystemId": ap.file_system_id.as_str(),
        "PosixUser": posix_user,
        "RootDirectory": root,
        "OwnerId": owner,
        "LifeCycleState": "available",
    });
    if let Some(name) = ap.name() {
        out["Name"] = name.into();
    }
    out
}

pub async fn create(State(state): State<ApiState>, body: Bytes) -> Result<Response, AwsError> {
    let body = Body::parse(&body)?;
    body.only(&["ClientToken", "Tags", "FileSystemId", "PosixUser", "RootDirectory"])?;
    let posix_user = match body.object("PosixUser")? {
        Some(user) => {
            user.only(&["Uid", "Gid", "SecondaryGids"])?;
            Some(PosixUser {
                uid: user.required_id("Uid")?,
                gid: user.required_id("Gid")?,
                secondary_gids: user.ids("SecondaryGids")?,
            })
        }
        None => None,
    };
    let root_directory = match body.object("RootDirectory")? {
        Some(root) => {
            root.only(&["Path", "CreationInfo"])?;
            let creation = match root.object("CreationInfo")? {
                Some(info) => {
                    info.only(&["OwnerUid", "OwnerGid", "Permissions"])?;
                    Some((
                        info.required_id("OwnerUid")?,
                        info.required_id("OwnerGid")?,
                        info.required_string("Permissions")?,
                    ))
                }
                None => None,
            };
            RootDirectory { path: root.string("Path")?, creation }
        }
        None => RootDirectory::default(),
    };
    let new = NewAccessPoint {
        client_token: Some(body.required_string("ClientToken")?),
        file_system_id: body.required_string("FileSystemId")?,
        posix_user,
        root_directory,
        tags: body.tags("Tags")?.unwrap_or_default(),
    };
    let owner = state.node.deployment().account_id.clone();
    let ap = call(&state, move |fss| fss.create_access_point(new)).await?;
    Ok(json(StatusCode::OK, description(&ap, &owner)))
}

pub async fn describe(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> Result<Response, AwsError> {
    let query = Query::parse(raw.as_deref());
    query.only(&["MaxResults", "NextToken", "AccessPointId", "FileSystemId"])?;
    let request = AccessPointQuery {
        access_point_id: query.get("AccessPointId"),
        file_system_id: query.get("FileSystemId"),
        max_results: query.count("MaxResults")?,
        next_token: query.get("NextToken"),
    };
    let owner = state.node.deployment().account_id.clone();
    let page = call(&state, move |fss| fss.describe_access_points(&request)).await?;
    let mut out = json!({
        "AccessPoints": page.items.iter().map(|ap| description(ap, &owner)).collect::<Vec<_>>(),
    });
    if let Some(next) = page.next {
        out["NextToken"] = next.into();
    }
    Ok(json(StatusCode::OK, out))
}

pub async fn delete(State(state): State<ApiState>, Id(id): Id) -> Result<StatusCode, AwsError> {
    call(&state, move |fss| fss.delete_access_point(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
