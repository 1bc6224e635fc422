//! What the client gets: a function's result mapped to an HTTP response as API
//! Gateway maps payload 2.0 results, or the gateway's own error responses.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

/// An HTTP response for the listener to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Names lower-case; a name may repeat (`set-cookie`).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// When the gateway answers instead of the function, with API Gateway's status and
/// message for each case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// The request could not be read.
    BadRequest,
    /// No route matches (or the route has no integration, or its API no stage).
    NotFound,
    /// The request body is over [`super::MAX_REQUEST_BODY`].
    RequestTooLarge,
    /// The function is throttled (`TooManyRequestsException`).
    Throttled,
    /// The function failed, is missing, or returned what cannot be mapped.
    Internal,
    /// The function or the integration timed out.
    Unavailable,
}

impl GatewayError {
    pub fn status(self) -> u16 {
        match self {
            GatewayError::BadRequest => 400,
            GatewayError::NotFound => 404,
            GatewayError::RequestTooLarge => 413,
            GatewayError::Throttled => 429,
            GatewayError::Internal => 500,
            GatewayError::Unavailable => 503,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            GatewayError::BadRequest => "Bad Request",
            GatewayError::NotFound => "Not Found",
            GatewayError::RequestTooLarge => "Request Entity Too Large",
            GatewayError::Throttled => "Too Many Requests",
            GatewayError::Internal => "Internal Server Error",
            GatewayError::Unavailable => "Service Unavailable",
        }
    }

    pub fn response(self) -> HttpResponse {
        HttpResponse {
            status: self.status(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::json!({ "message": self.message() }).to_string().into(),
        }
    }
}

/// Maps a function's successful result. `Err` says why it cannot be mapped (the
/// client then gets a 500; the reason goes to the log).
pub(crate) fn map_result(payload: &[u8]) -> Result<HttpResponse, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("the result is not JSON: {e}"))?;
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        // Any other value is the body of a 200: a string as its text, anything else
        // as the JSON the function returned.
        let body = match value {
            Value::String(s) => Bytes::from(s),
            _ => Bytes::copy_from_slice(payload),
        };
        return Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        });
    };
    let status = object["statusCode"]
        .as_u64()
        .or_else(|| object["statusCode"].as_str().and_then(|s| s.parse().ok()))
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| format!("statusCode {} is not an HTTP status", object["statusCode"]))? as u16;
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => return Err(format!("header {name} has the value {other}, not a string")),
                };
                headers.push((checked_name(name)?, checked_value(name, value)?));
            }
        }
        Some(other) => return Err(format!("headers is {other}, not an object")),
    }
    match object.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                let cookie = cookie.as_str().ok_or_else(|| format!("cookie {cookie} is not a string"))?;
                headers.push(("set-cookie".into(), checked_value("set-cookie", cookie.to_string())?));
            }
        }
        Some(other) => return Err(format!("cookies is {other}, not a list")),
    }
    let base64 = match object.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("isBase64Encoded is {other}, not a boolean")),
    };
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if base64 => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Bytes::from)
            .map_err(|e| format!("body is not base64 although isBase64Encoded is true: {e}"))?,
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => return Err(format!("body is {other}, not a string")),
    };
    Ok(HttpResponse { status, headers, body })
}

fn checked_name(name: &str) -> Result<String, String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    Ok(name.to_ascii_lowercase())
}

fn checked_value(name: &str, value: String) -> Result<String, String> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("the value of header {name} contains a line break or NUL"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(payload: &str) -> Result<HttpResponse, String> {
        map_result(payload.as_bytes())
    }

    fn ok(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<HttpResponse, String> {
        Ok(HttpResponse {
            status,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: Bytes::copy_from_slice(body),
        })
    }

    #[test]
    fn mapping_table() {
        let json = [("content-type", "application/json")];
        let table: Vec<(&str, Result<HttpResponse, String>)> = vec![
            (r#""hello""#, ok(200, &json, b"hello")),
            ("42", ok(200, &json, b"42")),
            ("null", ok(200, &json, b"null")),
            (r#"{"a": [1, 2]}"#, ok(200, &json, br#"{"a": [1, 2]}"#)),
            (r#"{"body": "x"}"#, ok(200, &json, br#"{"body": "x"}"#)),
            (r#"{"statusCode": 204}"#, ok(204, &[], b"")),
            (r#"{"statusCode": "201", "body": "made"}"#, ok(201, &[], b"made")),
            (
                r#"{"statusCode": 302, "headers": {"Location": "/x", "X-N": 5}, "cookies": ["a=1", "b=2; Path=/"], "body": "moved"}"#,
                ok(
                    302,
                    &[("location", "/x"), ("x-n", "5"), ("set-cookie", "a=1"), ("set-cookie", "b=2; Path=/")],
                    b"moved",
                ),
            ),
            (r#"{"statusCode": 200, "isBase64Encoded": true, "body": "/wCA"}"#, ok(200, &[], &[0xff, 0, 0x80])),
            (r#"{"statusCode": 200, "multiValueHeaders": {"a": ["1"]}}"#, ok(200, &[], b"")),
        ];
        for (payload, want) in table {
            assert_eq!(map(payload), want, "{payload}");
        }
        for bad in [
            "not json",
            r#"{"statusCode": 1000}"#,
            r#"{"statusCode": "abc"}"#,
            r#"{"statusCode": 200, "body": {"a": 1}}"#,
            r#"{"statusCode": 200, "headers": ["a"]}"#,
            r#"{"statusCode": 200, "headers": {"bad name": "x"}}"#,
            r#"{"statusCode": 200, "headers": {"x": "a\r\nb"}}"#,
            r#"{"statusCode": 200, "cookies": "a=1"}"#,
            r#"{"statusCode": 200, "isBase64Encoded": true, "body": "!!"}"#,
        ] {
            assert!(map(bad).is_err(), "{bad} should not map");
        }
    }

    #[test]
    fn gateway_errors_have_api_gateway_bodies() {
        let r = GatewayError::Throttled.response();
        assert_eq!((r.status, r.body.as_ref()), (429, br#"{"message":"Too Many Requests"}"#.as_ref()));
        assert_eq!(GatewayError::NotFound.response().body.as_ref(), br#"{"message":"Not Found"}"#);
        assert_eq!(GatewayError::Unavailable.status(), 503);
    }
}
