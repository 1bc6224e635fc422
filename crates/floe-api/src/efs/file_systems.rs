//! CreateFileSystem, DescribeFileSystems, UpdateFileSystem, DeleteFileSystem.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use floe_node::filesystems::{
    DeleteScope, FileSystemDescription, FileSystemQuery, NewFileSystem, PerformanceMode, Throughput,
};
use serde_json::{json, Value};

use super::input::{bad_request, Body, Query};
use super::{call, epoch_seconds, json, tags_json, Id};
use crate::{ApiState, AwsError};

fn description(fs: &FileSystemDescription, owner: &str) -> Value {
    let mut out = json!({
        "OwnerId": owner,
        "CreationToken": fs.creation_token,
        "FileSystemId": fs.id.as_str(),
        "FileSystemArn": fs.arn,
        "CreationTime": epoch_seconds(fs.created),
        "LifeCycleState": "available",
        "NumberOfMountTargets": 0,
        "SizeInBytes": {
            "Value": fs.size_bytes,
            "Timestamp": epoch_seconds(fs.size_time),
            "ValueInStandard": fs.size_bytes,
            "ValueInIA": 0,
            "ValueInArchive": 0,
        },
        "PerformanceMode": fs.performance_mode.as_str(),
        "Encrypted": fs.encrypted,
        "ThroughputMode": fs.throughput.mode(),
        "Tags": tags_json(&fs.tags),
    });
    if let Some(name) = fs.name_tag() {
        out["Name"] = name.into();
    }
    if let Some(mibps) = fs.throughput.provisioned_mibps() {
        out["ProvisionedThroughputInMibps"] = mibps.into();
    }
    out
}

pub async fn create(State(state): State<ApiState>, body: Bytes) -> Result<Response, AwsError> {
    let body = Body::parse(&body)?;
    body.only(&[
        "CreationToken",
        "PerformanceMode",
        "Encrypted",
        "KmsKeyId",
        "ThroughputMode",
        "ProvisionedThroughputInMibps",
        "AvailabilityZoneName",
        "Backup",
        "Tags",
    ])?;
    if body.string("KmsKeyId")?.is_some() {
        return Err(bad_request("KmsKeyId: floe has no KMS keys; leave it out"));
    }
    if body.string("AvailabilityZoneName")?.is_some() {
        return Err(bad_request("AvailabilityZoneName: floe's file systems are not tied to a zone; leave it out"));
    }
    body.bool("Backup")?;
    let new = NewFileSystem {
        creation_token: body.required_string("CreationToken")?,
        name: None,
        performance_mode: match body.string("PerformanceMode")? {
            Some(mode) => PerformanceMode::parse(&mode)?,
            None => PerformanceMode::GeneralPurpose,
        },
        throughput: Throughput::new(
            body.string("ThroughputMode")?.as_deref(),
            body.number("ProvisionedThroughputInMibps")?,
        )?,
        encrypted: body.bool("Encrypted")?.unwrap_or(false),
        tags: body.tags("Tags")?.unwrap_or_default(),
    };
    let owner = state.node.deployment().account_id.clone();
    let fs = call(&state, move |fss| fss.create_file_system(new)).await?;
    Ok(json(StatusCode::CREATED, description(&fs, &owner)))
}

pub async fn describe(State(state): State<ApiState>, RawQuery(raw): RawQuery) -> Result<Response, AwsError> {
    let query = Query::parse(raw.as_deref());
    query.only(&["MaxItems", "Marker", "CreationToken", "FileSystemId"])?;
    let request = FileSystemQuery {
        file_system_id: query.get("FileSystemId"),
        creation_token: query.get("CreationToken"),
        marker: query.get("Marker"),
        max_items: query.count("MaxItems")?,
    };
    let marker = request.marker.clone();
    let owner = state.node.deployment().account_id.clone();
    let page = call(&state, move |fss| fss.describe_file_systems(&request)).await?;
    let mut out = json!({
        "FileSystems": page.items.iter().map(|fs| description(fs, &owner)).collect::<Vec<_>>(),
    });
    if let Some(marker) = marker {
        out["Marker"] = marker.into();
    }
    if let Some(next) = page.next {
        out["NextMarker"] = next.into();
    }
    Ok(json(StatusCode::OK, out))
}

pub async fn update(State(state): State<ApiState>, Id(id): Id, body: Bytes) -> Result<Response, AwsError> {
    let body = Body::parse(&body)?;
    body.only(&["ThroughputMode", "ProvisionedThroughputInMibps"])?;
    let mode = body.string("ThroughputMode")?;
    let mibps = body.number("ProvisionedThroughputInMibps")?;
    let owner = state.node.deployment().account_id.clone();
    let fs = call(&state, move |fss| fss.update_file_system(&id, mode.as_deref(), mibps)).await?;
    Ok(json(StatusCode::ACCEPTED, description(&fs, &owner)))
}

pub async fn delete(State(state): State<ApiState>, Id(id): Id) -> Result<StatusCode, AwsError> {
    call(&state, move |fss| fss.delete_file_system(&id, DeleteScope::Empty)).await?;
    Ok(StatusCode::NO_CONTENT)
}
