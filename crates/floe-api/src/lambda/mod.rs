//! The AWS Lambda API (rest-json, the `2015-03-31` operations and the later
//! concurrency and account ones): each route parses its request, calls the node's
//! functions service ([`floe_lambda::Functions`]) and answers in Lambda's wire
//! shape. `functions.rs` (create, get, list, update, delete), `invoke.rs`,
//! `concurrency.rs` (reserved, provisioned, account settings), `wire.rs` (the JSON
//! request shapes and their checks).

mod concurrency;
mod functions;
mod invoke;
mod wire;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use floe_lambda::{ErrorKind, LambdaError, LATEST};
use percent_encoding::percent_decode_str;

use crate::error::unknown_operation;
use crate::{ApiState, AwsError};

/// Every operation's route. Bodies were read (and limited) by the SigV4 layer, so
/// no further limit applies here.
pub fn routes() -> Router<ApiState> {
    let route = |m: MethodRouter<ApiState>| m.fallback(unknown_operation);
    Router::new()
        .route("/2015-03-31/functions", route(post(functions::create).get(functions::list)))
        .route("/2015-03-31/functions/", route(get(functions::list)))
        .route("/2015-03-31/functions/{name}", route(get(functions::get).delete(functions::delete)))
        .route(
            "/2015-03-31/functions/{name}/configuration",
            route(get(functions::get_configuration).put(functions::update_configuration)),
        )
        .route("/2015-03-31/functions/{name}/code", route(axum::routing::put(functions::update_code)))
        .route("/2015-03-31/functions/{name}/invocations", route(post(invoke::invoke)))
        .route("/2015-03-31/functions/{name}/package/{sha256}", route(get(functions::package_download)))
        .route(
            "/2017-10-31/functions/{name}/concurrency",
            route(axum::routing::put(concurrency::put_reserved).delete(concurrency::delete_reserved)),
        )
        .route("/2019-09-30/functions/{name}/concurrency", route(get(concurrency::get_reserved)))
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            route(
                get(concurrency::get_provisioned)
                    .put(concurrency::put_provisioned)
                    .delete(concurrency::delete_provisioned),
            ),
        )
        .route("/2016-08-19/account-settings", route(get(concurrency::account_settings)))
        .route("/2016-08-19/account-settings/", route(get(concurrency::account_settings)))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(with_request_id))
}

/// Every Lambda response carries a request id (botocore reads `x-amzn-RequestId`);
/// Invoke sets its invocation's own.
async fn with_request_id(mut response: Response) -> Response {
    if !response.headers().contains_key("x-amzn-requestid") {
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-amzn-requestid", v);
        }
    }
    response
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

pub(crate) fn lambda_error(kind: ErrorKind, message: impl Into<String>) -> AwsError {
    AwsError::from(LambdaError::new(kind, message))
}

pub(crate) fn invalid(message: impl Into<String>) -> AwsError {
    lambda_error(ErrorKind::InvalidParameterValue, message)
}

/// The `{name}` of a route, percent-decoded, refused in Lambda's shape when it is
/// not UTF-8.
pub(crate) struct FunctionParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for FunctionParam {
    type Rejection = AwsError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<FunctionParam, AwsError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(name)| FunctionParam(name))
            .map_err(|e| invalid(format!("The function name in the path is not valid: {e}")))
    }
}

/// The query's parameters, percent-decoded, in order.
pub(crate) fn query_params(parts: &axum::http::Uri) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    parts
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub(crate) fn query_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The function a request names: `name`, `name:qualifier`,
/// `123456789012:function:name[:qualifier]` or
/// `arn:aws:lambda:<region>:<account>:function:name[:qualifier]`, with an optional
/// `Qualifier` from the query. Only `$LATEST` exists.
pub(crate) fn function_name(state: &ApiState, given: &str, qualifier: Option<&str>) -> Result<String, AwsError> {
    let deployment = state.node.deployment();
    let parts: Vec<&str> = given.split(':').collect();
    let not_ours = || {
        lambda_error(
            ErrorKind::ResourceNotFound,
            format!(
                "Function not found: {given} (this endpoint serves region {} and account {})",
                deployment.region, deployment.account_id
            ),
        )
    };
    let (name, from_name) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        [account, "function", name, rest @ ..] if rest.len() <= 1 => {
            if *account != deployment.account_id {
                return Err(not_ours());
            }
            (*name, rest.first().copied())
        }
        ["arn", _, "lambda", region, account, "function", name, rest @ ..] if rest.len() <= 1 => {
            if *region != deployment.region || *account != deployment.account_id {
                return Err(not_ours());
            }
            (*name, rest.first().copied())
        }
        _ => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{given}' at 'functionName' failed to satisfy constraint: \
                 Member must be a function name, name:qualifier, a partial ARN 123456789012:function:name or an ARN \
                 arn:aws:lambda:<region>:<account>:function:name"
            )))
        }
    };
    let qualifier = match (from_name, qualifier) {
        (Some(a), Some(b)) if a != b => {
            return Err(invalid("The derived qualifier from the function name does not match the specified qualifier."))
        }
        (a, b) => a.or(b),
    };
    if let Some(q) = qualifier.filter(|q| *q != LATEST) {
        return Err(lambda_error(
            ErrorKind::ResourceNotFound,
            format!(
                "Function not found: {}:{q} (floe functions have only the version {LATEST})",
                state.node.functions().function_arn(name)
            ),
        ));
    }
    Ok(name.to_string())
}

/// How long GetFunction's `Code.Location` works (Lambda's: 10 minutes).
const CODE_LOCATION_EXPIRY: std::time::Duration = std::time::Duration::from_secs(600);

/// GetFunction's `Code.Location`: a presigned URL of the function's package on
/// this endpoint (as the caller reached it), signed with the caller's key.
pub(crate) fn code_location(state: &ApiState, host: &str, key: &str, function: &floe_lambda::Function) -> String {
    let Some(secret) = state.secret(key) else { return String::new() };
    let credential = crate::Credential { access_key_id: key.to_string(), secret_access_key: secret.to_string() };
    let path = format!("/2015-03-31/functions/{}/package/{}", function.name, function.code_sha256);
    let signed = crate::sigv4::presign(
        &credential,
        &state.node.deployment().region,
        "lambda",
        host,
        &path,
        CODE_LOCATION_EXPIRY,
        std::time::SystemTime::now(),
    );
    format!("http://{host}{signed}")
}
