//! The API Gateway v2 management API (rest-json under `/v2/`): HTTP APIs,
//! integrations, routes and the `$default` stage, on [`floe_node::Triggers`].
//! Errors are `BadRequestException` (400), `NotFoundException` (404) and
//! `ConflictException` (409) with a `{"message": ...}` body.

mod wire;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use floe_node::triggers::TriggerError;
use serde_json::Value;

use crate::{ApiState, AwsError};

impl From<TriggerError> for AwsError {
    fn from(e: TriggerError) -> AwsError {
        match e {
            TriggerError::BadRequest(m) => AwsError::new(400, "BadRequestException", m),
            TriggerError::NotFound(m) => AwsError::new(404, "NotFoundException", m),
            TriggerError::Conflict(m) => AwsError::new(409, "ConflictException", m),
            TriggerError::Storage(m) => AwsError::new(500, "InternalServerException", m),
        }
    }
}

type Reply = Result<Response, AwsError>;
type Params = Query<HashMap<String, String>>;

fn json(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn list(items: Vec<Value>, query: &Params) -> Reply {
    let page =
        wire::page(items, query.get("maxResults").map(String::as_str), query.get("nextToken").map(String::as_str))?;
    Ok(json(StatusCode::OK, page))
}

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v2/apis", post(create_api).get(get_apis))
        .route("/v2/apis/{api_id}", get(get_api).delete(delete_api))
        .route("/v2/apis/{api_id}/integrations", post(create_integration).get(get_integrations))
        .route("/v2/apis/{api_id}/integrations/{integration_id}", get(get_integration).delete(delete_integration))
        .route("/v2/apis/{api_id}/routes", post(create_route).get(get_routes))
        .route("/v2/apis/{api_id}/routes/{route_id}", get(get_route).delete(delete_route))
        .route("/v2/apis/{api_id}/stages", post(create_stage).get(get_stages))
        .route("/v2/apis/{api_id}/stages/{stage_name}", get(get_stage).delete(delete_stage))
        // UpdateApi, UpdateRoute, ...: an AWS-shaped answer naming what is not served.
        .method_not_allowed_fallback(crate::error::unknown_operation)
}

async fn create_api(State(s): State<ApiState>, body: Bytes) -> Reply {
    let new = wire::parse::<wire::CreateApi>(&body)?.into_new()?;
    let triggers = s.node.triggers();
    let api = triggers.create_api(new)?;
    Ok(json(StatusCode::CREATED, wire::api(&api, triggers.endpoint().as_deref())))
}

async fn get_api(State(s): State<ApiState>, Path(api_id): Path<String>) -> Reply {
    let triggers = s.node.triggers();
    Ok(json(StatusCode::OK, wire::api(&triggers.get_api(&api_id)?, triggers.endpoint().as_deref())))
}

async fn get_apis(State(s): State<ApiState>, query: Params) -> Reply {
    let triggers = s.node.triggers();
    let endpoint = triggers.endpoint();
    list(triggers.list_apis()?.iter().map(|a| wire::api(a, endpoint.as_deref())).collect(), &query)
}

async fn delete_api(State(s): State<ApiState>, Path(api_id): Path<String>) -> Reply {
    s.node.triggers().delete_api(&api_id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_integration(State(s): State<ApiState>, Path(api_id): Path<String>, body: Bytes) -> Reply {
    let new = wire::parse::<wire::CreateIntegration>(&body)?.into_new()?;
    let integration = s.node.triggers().create_integration(&api_id, new)?;
    Ok(json(StatusCode::CREATED, wire::integration(&integration)))
}

async fn get_integration(State(s): State<ApiState>, Path((api_id, id)): Path<(String, String)>) -> Reply {
    Ok(json(StatusCode::OK, wire::integration(&s.node.triggers().get_integration(&api_id, &id)?)))
}

async fn get_integrations(State(s): State<ApiState>, Path(api_id): Path<String>, query: Params) -> Reply {
    list(s.node.triggers().list_integrations(&api_id)?.iter().map(wire::integration).collect(), &query)
}

async fn delete_integration(State(s): State<ApiState>, Path((api_id, id)): Path<(String, String)>) -> Reply {
    s.node.triggers().delete_integration(&api_id, &id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_route(State(s): State<ApiState>, Path(api_id): Path<String>, body: Bytes) -> Reply {
    let new = wire::parse::<wire::CreateRoute>(&body)?.into_new()?;
    let route = s.node.triggers().create_route(&api_id, new)?;
    Ok(json(StatusCode::CREATED, wire::route(&route)))
}

async fn get_route(State(s): State<ApiState>, Path((api_id, id)): Path<(String, String)>) -> Reply {
    Ok(json(StatusCode::OK, wire::route(&s.node.triggers().get_route(&api_id, &id)?)))
}

async fn get_routes(State(s): State<ApiState>, Path(api_id): Path<String>, query: Params) -> Reply {
    list(s.node.triggers().list_routes(&api_id)?.iter().map(wire::route).collect(), &query)
}

async fn delete_route(State(s): State<ApiState>, Path((api_id, id)): Path<(String, String)>) -> Reply {
    s.node.triggers().delete_route(&api_id, &id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_stage(State(s): State<ApiState>, Path(api_id): Path<String>, body: Bytes) -> Reply {
    let new = wire::parse::<wire::CreateStage>(&body)?.into_new()?;
    let stage = s.node.triggers().create_stage(&api_id, new)?;
    Ok(json(StatusCode::CREATED, wire::stage(&stage)))
}

async fn get_stage(State(s): State<ApiState>, Path((api_id, name)): Path<(String, String)>) -> Reply {
    Ok(json(StatusCode::OK, wire::stage(&s.node.triggers().get_stage(&api_id, &name)?)))
}

async fn get_stages(State(s): State<ApiState>, Path(api_id): Path<String>, query: Params) -> Reply {
    list(s.node.triggers().list_stages(&api_id)?.iter().map(wire::stage).collect(), &query)
}

async fn delete_stage(State(s): State<ApiState>, Path((api_id, name)): Path<(String, String)>) -> Reply {
    s.node.triggers().delete_stage(&api_id, &name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
