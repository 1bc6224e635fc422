//! CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
//! UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use floe_lambda::code::Package;
use floe_lambda::{ErrorKind, Function, Functions};
use serde_json::json;

use super::wire::{self, CreateFunction, FunctionCode, UpdateCode, UpdateConfiguration};
use super::{function_name, invalid, json, lambda_error, query_param, query_params, FunctionParam};
use crate::sigv4::VerifiedKey;
use crate::{ApiState, AwsError};

/// ListFunctions' page size when `MaxItems` is not given, and its largest.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 10_000;

fn configuration(functions: &Functions, function: &Function) -> serde_json::Value {
    function.configuration(&functions.function_arn(&function.name))
}

/// Decodes and checks a code package off the async threads (a 50 MB zip in
/// base64 takes a while).
async fn package(functions: &Functions, code: FunctionCode) -> Result<Package, AwsError> {
    let limits = functions.limits().clone();
    tokio::task::spawn_blocking(move || {
        let zip = wire::zip_of(&code)?;
        Package::from_zip(zip.into(), &limits).map_err(AwsError::from)
    })
    .await
    .map_err(|e| lambda_error(ErrorKind::Service, format!("checking the code package failed: {e}")))?
}

/// `RevisionId`: the update applies only to the revision the caller read.
fn check_revision(functions: &Functions, name: &str, revision: Option<&str>) -> Result<(), AwsError> {
    let Some(revision) = revision else { return Ok(()) };
    if functions.get_function(name)?.revision_id != revision {
        return Err(AwsError::new(
            412,
            "PreconditionFailedException",
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to \
             retrieve the latest Revision Id",
        ));
    }
    Ok(())
}

pub(super) async fn create(State(state): State<ApiState>, body: Bytes) -> Result<Response, AwsError> {
    let mut request: CreateFunction = wire::parse("CreateFunction", &body)?;
    let missing = request.missing();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "CreateFunction requires FunctionName, Role, Code, Runtime and Handler (for a .zip package); missing: {}",
            missing.join(", ")
        )));
    }
    request.unsupported()?;
    let given = request.function_name.take().unwrap_or_default();
    let name = function_name(&state, &given, None)?;
    let settings = request.configuration().settings()?;
    let functions = state.node.functions();
    let code = request.code.take().ok_or_else(|| invalid("Code is required"))?;
    let package = package(functions, code).await?;
    let function = functions.create_function(&name, settings, package).await?;
    Ok(json(StatusCode::CREATED, configuration(functions, &function)))
}

pub(super) async fn get(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    uri: Uri,
    headers: HeaderMap,
    key: Option<Extension<VerifiedKey>>,
) -> Result<Response, AwsError> {
    let params = query_params(&uri);
    let name = function_name(&state, &given, query_param(&params, "Qualifier"))?;
    let functions = state.node.functions();
    let function = functions.get_function(&name)?;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let location = key.map(|Extension(VerifiedKey(key))| super::code_location(&state, host, &key, &function));
    let mut body = json!({
        "Configuration": configuration(functions, &function),
        "Code": { "RepositoryType": "S3", "Location": location },
        "Tags": {},
    });
    if let Some(reserved) = function.reserved_concurrency {
        body["Concurrency"] = json!({ "ReservedConcurrentExecutions": reserved });
    }
    Ok(json(StatusCode::OK, body))
}

pub(super) async fn get_configuration(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    uri: Uri,
) -> Result<Response, AwsError> {
    let params = query_params(&uri);
    let name = function_name(&state, &given, query_param(&params, "Qualifier"))?;
    let functions = state.node.functions();
    Ok(json(StatusCode::OK, configuration(functions, &functions.get_function(&name)?)))
}

/// Functions by name; `Marker` is the last name of the previous page.
pub(super) async fn list(State(state): State<ApiState>, uri: Uri) -> Result<Response, AwsError> {
    let params = query_params(&uri);
    let max = match query_param(&params, "MaxItems") {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| invalid(format!("MaxItems must be a number between 1 and {MAX_PAGE} (got '{v}')")))?,
    };
    if let Some(v) = query_param(&params, "FunctionVersion").filter(|v| *v != "ALL") {
        return Err(invalid(format!("FunctionVersion must be ALL (got '{v}')")));
    }
    let functions = state.node.functions();
    let mut all = functions.list_functions()?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let start = query_param(&params, "Marker").map_or(0, |m| all.partition_point(|f| f.name.as_str() <= m));
    let page: Vec<&Function> = all[start..].iter().take(max).collect();
    let mut body = json!({ "Functions": page.iter().map(|f| configuration(functions, f)).collect::<Vec<_>>() });
    if start + page.len() < all.len() {
        if let Some(last) = page.last() {
            body["NextMarker"] = json!(last.name);
        }
    }
    Ok(json(StatusCode::OK, body))
}

pub(super) async fn update_code(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    body: Bytes,
) -> Result<Response, AwsError> {
    let request: UpdateCode = wire::parse("UpdateFunctionCode", &body)?;
    request.unsupported()?;
    let name = function_name(&state, &given, None)?;
    let functions = state.node.functions();
    check_revision(functions, &name, request.revision_id.as_deref())?;
    let package = package(functions, request.code()).await?;
    let function = functions.update_function_code(&name, package).await?;
    Ok(json(StatusCode::OK, configuration(functions, &function)))
}

pub(super) async fn update_configuration(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    body: Bytes,
) -> Result<Response, AwsError> {
    let request: UpdateConfiguration = wire::parse("UpdateFunctionConfiguration", &body)?;
    request.unsupported()?;
    let name = function_name(&state, &given, None)?;
    let functions = state.node.functions();
    check_revision(functions, &name, request.revision_id.as_deref())?;
    let settings = request.configuration().settings()?;
    let function = functions.update_function_configuration(&name, settings).await?;
    Ok(json(StatusCode::OK, configuration(functions, &function)))
}

pub(super) async fn delete(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    uri: Uri,
) -> Result<Response, AwsError> {
    let params = query_params(&uri);
    let name = function_name(&state, &given, query_param(&params, "Qualifier"))?;
    state.node.functions().delete_function(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The package GetFunction's `Code.Location` points at, while it is still the
/// function's.
pub(super) async fn package_download(
    State(state): State<ApiState>,
    axum::extract::Path((given, sha256)): axum::extract::Path<(String, String)>,
) -> Result<Response, AwsError> {
    let name = function_name(&state, &given, None)?;
    let functions = state.node.functions();
    let function = functions.get_function(&name)?;
    if function.code_sha256 != sha256 {
        return Err(lambda_error(
            ErrorKind::ResourceNotFound,
            format!("The code package {sha256} is no longer the code of {name}: call GetFunction again"),
        ));
    }
    let zip = functions.code_package(&function).await?;
    Ok((StatusCode::OK, [("content-type", "application/zip")], zip).into_response())
}
