//! Reserved concurrency (Put/Get/DeleteFunctionConcurrency), provisioned
//! concurrency (Put/Get/DeleteProvisionedConcurrencyConfig, on `$LATEST`, the only
//! version) and GetAccountSettings.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use floe_lambda::{Function, Functions};
use serde_json::json;

use super::wire::{self, PutConcurrency, PutProvisioned};
use super::{function_name, invalid, json, query_param, query_params, FunctionParam};
use crate::{ApiState, AwsError};

pub(super) async fn put_reserved(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    body: Bytes,
) -> Result<Response, AwsError> {
    let request: PutConcurrency = wire::parse("PutFunctionConcurrency", &body)?;
    let reserved = request.reserved.ok_or_else(|| invalid("ReservedConcurrentExecutions is required"))?;
    let name = function_name(&state, &given, None)?;
    let reserved = state.node.functions().put_function_concurrency(&name, reserved)?;
    Ok(json(StatusCode::OK, json!({ "ReservedConcurrentExecutions": reserved })))
}

pub(super) async fn get_reserved(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
) -> Result<Response, AwsError> {
    let name = function_name(&state, &given, None)?;
    let body = match state.node.functions().get_function_concurrency(&name)? {
        Some(reserved) => json!({ "ReservedConcurrentExecutions": reserved }),
        None => json!({}),
    };
    Ok(json(StatusCode::OK, body))
}

pub(super) async fn delete_reserved(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
) -> Result<Response, AwsError> {
    let name = function_name(&state, &given, None)?;
    state.node.functions().delete_function_concurrency(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The function a provisioned concurrency request names; `Qualifier` is required.
fn provisioned_target(state: &ApiState, given: &str, uri: &Uri) -> Result<String, AwsError> {
    let params = query_params(uri);
    let qualifier = query_param(&params, "Qualifier").ok_or_else(|| {
        invalid(format!("Qualifier is required (floe functions have only the version {})", floe_lambda::LATEST))
    })?;
    function_name(state, given, Some(qualifier))
}

/// A provisioned concurrency config as Lambda shows it. Environments count as
/// available once initialized and idle, so a burst that keeps them all busy shows
/// the config IN_PROGRESS until they come back.
fn provisioned_config(functions: &Functions, function: &Function) -> serde_json::Value {
    let requested = function.provisioned_concurrency;
    let available = functions.pool_stats(&function.name).provisioned_ready.min(requested);
    json!({
        "RequestedProvisionedConcurrentExecutions": requested,
        "AvailableProvisionedConcurrentExecutions": available,
        "AllocatedProvisionedConcurrentExecutions": available,
        "Status": if available >= requested { "READY" } else { "IN_PROGRESS" },
        "LastModified": function.last_modified,
    })
}

pub(super) async fn put_provisioned(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    uri: Uri,
    body: Bytes,
) -> Result<Response, AwsError> {
    let name = provisioned_target(&state, &given, &uri)?;
    let request: PutProvisioned = wire::parse("PutProvisionedConcurrencyConfig", &body)?;
    let target = request.provisioned.ok_or_else(|| invalid("ProvisionedConcurrentExecutions is required"))?;
    let functions = state.node.functions();
    functions.put_provisioned_concurrency(&name, target).await?;
    let function = functions.get_function(&name)?;
    Ok(json(StatusCode::ACCEPTED, provisioned_config(functions, &function)))
}

pub(super) async fn get_provisioned(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    uri: Uri,
) -> Result<Response, AwsError> {
    let name = provisioned_target(&state, &given, &uri)?;
    let functions = state.node.functions();
    let function = functions.get_function(&name)?;
    if function.provisioned_concurrency == 0 {
        let mut error = super::lambda_error(
            floe_lambda::ErrorKind::ResourceNotFound,
            "No Provisioned Concurrency Config found for this function",
        );
        error.code = "ProvisionedConcurrencyConfigNotFoundException".to_string();
        return Err(error);
    }
    Ok(json(StatusCode::OK, provisioned_config(functions, &function)))
}

pub(super) async fn delete_provisioned(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    uri: Uri,
) -> Result<Response, AwsError> {
    let name = provisioned_target(&state, &given, &uri)?;
    state.node.functions().delete_provisioned_concurrency(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn account_settings(State(state): State<ApiState>) -> Result<Response, AwsError> {
    let functions = state.node.functions();
    let all = functions.list_functions()?;
    let limits = functions.limits();
    let invoker = functions.invoker();
    Ok(json(
        StatusCode::OK,
        json!({
            "AccountLimit": {
                "TotalCodeSize": limits.max_total_code_bytes,
                "CodeSizeUnzipped": limits.max_unzipped_bytes,
                "CodeSizeZipped": limits.max_zip_bytes,
                "ConcurrentExecutions": invoker.config().account_concurrency,
                "UnreservedConcurrentExecutions": invoker.unreserved_concurrency(),
            },
            "AccountUsage": {
                "TotalCodeSize": all.iter().map(|f| f.code_size).sum::<u64>(),
                "FunctionCount": all.len(),
            },
        }),
    ))
}
