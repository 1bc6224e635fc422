//! API Gateway v2's JSON members (lower camel case, as botocore's `apigatewayv2`
//! model names them): request bodies floe takes, and the resources it returns.
//! Members the model has and floe does not serve are refused by name (unknown
//! fields), rather than accepted and ignored.

use std::collections::BTreeMap;

use floe_node::triggers::{
    iso8601, Api, Integration, NewApi, NewIntegration, NewRoute, NewStage, Route, Stage, PAYLOAD_FORMAT,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::AwsError;

fn bad(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "BadRequestException", message)
}

fn required<T>(value: Option<T>, member: &str) -> Result<T, AwsError> {
    value.ok_or_else(|| bad(format!("{member} is required")))
}

/// A request body of type `T`; an empty body is `{}`.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| bad(format!("Invalid request body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateApi {
    name: Option<String>,
    protocol_type: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    target: Option<String>,
    route_key: Option<String>,
}

impl CreateApi {
    pub fn into_new(self) -> Result<NewApi, AwsError> {
        Ok(NewApi {
            name: required(self.name, "name")?,
            protocol: required(self.protocol_type, "protocolType")?,
            description: self.description,
            tags: self.tags,
            target: self.target,
            route_key: self.route_key,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIntegration {
    integration_type: Option<String>,
    integration_uri: Option<String>,
    payload_format_version: Option<String>,
    timeout_in_millis: Option<i64>,
    integration_method: Option<String>,
    connection_type: Option<String>,
    description: Option<String>,
}

impl CreateIntegration {
    pub fn into_new(self) -> Result<NewIntegration, AwsError> {
        if let Some(c) = self.connection_type.as_deref().filter(|c| *c != "INTERNET") {
            return Err(bad(format!("Invalid connectionType '{c}': Lambda integrations use INTERNET")));
        }
        let timeout_ms = match self.timeout_in_millis {
            None => None,
            Some(t) => Some(
                u32::try_from(t)
                    .map_err(|_| bad(format!("Invalid timeoutInMillis {t}: it must be between 50 and 30000")))?,
            ),
        };
        Ok(NewIntegration {
            integration_type: required(self.integration_type, "integrationType")?,
            uri: self.integration_uri,
            payload_format_version: self.payload_format_version,
            timeout_ms,
            method: self.integration_method,
            description: self.description,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateRoute {
    route_key: Option<String>,
    target: Option<String>,
    authorization_type: Option<String>,
    api_key_required: Option<bool>,
}

impl CreateRoute {
    pub fn into_new(self) -> Result<NewRoute, AwsError> {
        if let Some(a) = self.authorization_type.as_deref().filter(|a| *a != "NONE") {
            return Err(bad(format!("Invalid authorizationType '{a}': floe's routes are public (NONE)")));
        }
        if self.api_key_required == Some(true) {
            return Err(bad("apiKeyRequired is not supported by HTTP APIs"));
        }
        Ok(NewRoute { key: required(self.route_key, "routeKey")?, target: self.target })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateStage {
    stage_name: Option<String>,
    auto_deploy: Option<bool>,
    description: Option<String>,
}

impl CreateStage {
    pub fn into_new(self) -> Result<NewStage, AwsError> {
        Ok(NewStage {
            name: required(self.stage_name, "stageName")?,
            auto_deploy: self.auto_deploy,
            description: self.description,
        })
    }
}

pub fn api(api: &Api, endpoint: Option<&str>) -> Value {
    let mut out = json!({
        "apiId": api.id,
        "apiKeySelectionExpression": "$request.header.x-api-key",
        "createdDate": iso8601(api.created_ms),
        "disableExecuteApiEndpoint": false,
        "name": api.name,
        "protocolType": "HTTP",
        "routeSelectionExpression": "$request.method $request.path",
        "tags": api.tags,
    });
    if let Some(endpoint) = endpoint {
        out["apiEndpoint"] = endpoint.into();
    }
    if let Some(d) = &api.description {
        out["description"] = d.as_str().into();
    }
    out
}

pub fn integration(i: &Integration) -> Value {
    let mut out = json!({
        "connectionType": "INTERNET",
        "integrationId": i.id,
        "integrationMethod": "POST",
        "integrationType": "AWS_PROXY",
        "integrationUri": i.uri,
        "payloadFormatVersion": PAYLOAD_FORMAT,
        "timeoutInMillis": i.timeout_ms,
    });
    if let Some(d) = &i.description {
        out["description"] = d.as_str().into();
    }
    out
}

pub fn route(r: &Route) -> Value {
    let mut out = json!({
        "apiKeyRequired": false,
        "authorizationType": "NONE",
        "routeId": r.id,
        "routeKey": r.key,
    });
    if let Some(target) = r.target() {
        out["target"] = target.into();
    }
    out
}

pub fn stage(s: &Stage) -> Value {
    let mut out = json!({
        "autoDeploy": true,
        "createdDate": iso8601(s.created_ms),
        "lastUpdatedDate": iso8601(s.updated_ms),
        "routeSettings": {},
        "stageName": s.name,
        "stageVariables": {},
        "tags": {},
    });
    if let Some(d) = &s.description {
        out["description"] = d.as_str().into();
    }
    out
}

/// One page of a list: `items` and, when more follow, `nextToken` (the index of
/// the next item).
pub fn page(items: Vec<Value>, max_results: Option<&str>, next_token: Option<&str>) -> Result<Value, AwsError> {
    let start = match next_token {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| bad(format!("Invalid nextToken '{t}'")))?,
    };
    let max = match max_results {
        None => usize::MAX,
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|m| *m >= 1)
            .ok_or_else(|| bad(format!("Invalid maxResults '{m}': a positive number")))?,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    let mut out = json!({ "items": page });
    let end = start.saturating_add(max);
    if end < total {
        out["nextToken"] = end.to_string().into();
    }
    Ok(out)
}
