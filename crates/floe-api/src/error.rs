//! Errors in the AWS wire shape (rest-json): the status, the error code in the
//! `X-Amzn-ErrorType` header (which botocore reads), and a JSON body whose fields
//! each service's model names (`message` for Lambda, `ErrorCode` + `Message` for
//! EFS, `message` for API Gateway).

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use floe_lambda::LambdaError;

/// An error as an AWS API returns it.
#[derive(Clone, Debug)]
pub struct AwsError {
    pub status: StatusCode,
    pub code: String,
    pub body: serde_json::Value,
    /// Extra response headers (`Retry-After` on throttling).
    pub headers: Vec<(HeaderName, String)>,
}

impl AwsError {
    /// An error whose body is `{"message": ...}` (Lambda, API Gateway, SigV4).
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> AwsError {
        AwsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: code.to_string(),
            body: serde_json::json!({ "message": message.into() }),
            headers: Vec::new(),
        }
    }

    /// An EFS error: `{"ErrorCode": code, "Message": message}`.
    pub fn efs(status: u16, code: &str, message: impl Into<String>) -> AwsError {
        let mut e = AwsError::new(status, code, "");
        e.body = serde_json::json!({ "ErrorCode": code, "Message": message.into() });
        e
    }

    /// A body that is not JSON, or not the JSON the operation takes.
    pub fn serialization(message: impl Into<String>) -> AwsError {
        AwsError::new(400, "SerializationException", message)
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> AwsError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn message(&self) -> &str {
        self.body.get("message").or_else(|| self.body.get("Message")).and_then(|m| m.as_str()).unwrap_or_default()
    }
}

impl From<LambdaError> for AwsError {
    fn from(e: LambdaError) -> AwsError {
        let mut out = AwsError::new(e.kind.status(), e.kind.code(), "");
        out.body = e.body();
        if e.kind == floe_lambda::ErrorKind::TooManyRequests {
            out.headers.push((HeaderName::from_static("retry-after"), "1".to_string()));
        }
        out
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status.as_u16(), self.message())
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, message = %self.message(), "request failed");
        }
        let mut response = (self.status, self.body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(&self.code) {
            headers.insert("x-amzn-errortype", v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}

/// Requests that match no operation floe serves.
pub async fn unknown_operation(method: axum::http::Method, uri: axum::http::Uri) -> AwsError {
    AwsError::new(404, "UnknownOperationException", format!("floe serves no operation at {method} {}", uri.path()))
}
