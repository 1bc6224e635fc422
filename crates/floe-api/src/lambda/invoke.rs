//! Invoke: the raw payload in, the function's answer out, with Lambda's headers.
//! boto3 sends no Content-Type and leaves out `X-Amz-Invocation-Type` for
//! RequestResponse.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use floe_lambda::{InvocationType, InvokeRequest};

use super::{function_name, invalid, query_param, query_params, FunctionParam};
use crate::{ApiState, AwsError};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AwsError> {
    headers.get(name).map(|v| v.to_str().map_err(|_| invalid(format!("The {name} header must be ASCII")))).transpose()
}

pub(super) async fn invoke(
    State(state): State<ApiState>,
    FunctionParam(given): FunctionParam,
    uri: Uri,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<Response, AwsError> {
    let params = query_params(&uri);
    let name = function_name(&state, &given, query_param(&params, "Qualifier"))?;
    let invocation_type = match header(&headers, "x-amz-invocation-type")? {
        Some(t) => InvocationType::parse(t)?,
        None => InvocationType::RequestResponse,
    };
    let tail = match header(&headers, "x-amz-log-type")? {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(invalid(format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must \
                 satisfy enum value set: [Tail, None]"
            )))
        }
    };
    let client_context = header(&headers, "x-amz-client-context")?.map(str::to_string);
    let request = InvokeRequest { payload, invocation_type, tail, client_context };
    let outcome = state.node.functions().invoke(&name, request).await?;
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::OK);
    let mut response = if status == StatusCode::OK {
        (status, [("content-type", "application/json")], outcome.payload).into_response()
    } else {
        status.into_response()
    };
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            response.headers_mut().insert(HeaderName::from_static(name), v);
        }
    };
    set("x-amzn-requestid", &outcome.request_id);
    set("x-amz-request-id", &outcome.request_id);
    if status == StatusCode::OK {
        set("x-amz-executed-version", outcome.executed_version);
    }
    if let Some(error) = &outcome.function_error {
        set("x-amz-function-error", error);
    }
    if let Some(log) = &outcome.log_result {
        set("x-amz-log-result", log);
    }
    Ok(response)
}
