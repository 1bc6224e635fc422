//! A small SigV4-signing client of floe's own API, for floe's own tools (the CLI
//! talking to a running node): plain HTTP, blocking, one request at a time. It
//! signs with the same canonicalization the node verifies with
//! ([`crate::sigv4::sign`]).

use std::time::{Duration, SystemTime};

use base64::Engine;

use crate::sigv4::{sign, RequestToSign};
use crate::Credential;

/// The largest response body read (a 50 MB code package, with room).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Why a request got no answer, or an AWS error as its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("request to {endpoint} failed: {source}")]
    Transport { endpoint: String, source: ureq::Error },
    /// The node answered with an error in the AWS shape.
    #[error("{code} ({status}): {message}")]
    Api { status: u16, code: String, message: String },
}

/// An answer, whatever its status.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The AWS error this answer is, if it is one (a status of 400 or more).
    pub fn error(&self) -> Option<ClientError> {
        if self.status < 400 {
            return None;
        }
        let body: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        let message = body.get("message").or_else(|| body.get("Message")).and_then(|m| m.as_str());
        Some(ClientError::Api {
            status: self.status,
            code: self.header("x-amzn-errortype").unwrap_or("UnknownError").to_string(),
            message: message.map(str::to_string).unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned()),
        })
    }
}

/// How to run a function (`X-Amz-Invocation-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    fn header(self) -> &'static str {
        match self {
            InvocationType::RequestResponse => "RequestResponse",
            InvocationType::Event => "Event",
            InvocationType::DryRun => "DryRun",
        }
    }
}

/// What Invoke returned.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// 200, 202 (Event) or 204 (DryRun).
    pub status: u16,
    pub payload: Vec<u8>,
    /// `Handled` or `Unhandled` when the function failed.
    pub function_error: Option<String>,
    /// The log tail, decoded, when asked for.
    pub log_tail: Option<String>,
    pub executed_version: Option<String>,
    pub request_id: Option<String>,
}

/// A client of one node's API.
pub struct Client {
    endpoint: String,
    /// `host[:port]`, as sent in `Host` and signed.
    host: String,
    credential: Credential,
    region: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `endpoint` (`http://host:port`).
    pub fn new(endpoint: &str, credential: Credential, region: &str) -> Result<Client, ClientError> {
        let bad = |reason: &str| ClientError::Endpoint { endpoint: endpoint.to_string(), reason: reason.to_string() };
        let rest = endpoint.strip_prefix("http://").ok_or_else(|| bad("must start with http://"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') || host.contains('?') {
            return Err(bad("must be http://host[:port] without a path"));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            // Synchronous invocations run up to 900 s.
            .timeout_global(Some(Duration::from_secs(960)))
            .build()
            .into();
        Ok(Client {
            endpoint: format!("http://{host}"),
            host: host.to_string(),
            credential,
            region: region.to_string(),
            agent,
        })
    }

    /// Sends one signed request. `path_and_query` is sent as given, so it must be
    /// percent-encoded already. Any status is an `Ok` answer.
    pub fn request(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, ClientError> {
        let mut to_sign: Vec<(String, String)> = vec![("host".to_string(), self.host.clone())];
        to_sign.extend(headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.to_string())));
        let request = RequestToSign { method, path_and_query, headers: &to_sign, body };
        // The service name only scopes the key; floe serves every service on one endpoint.
        let signed = sign(&self.credential, &self.region, "lambda", &request, SystemTime::now());
        let mut builder =
            ureq::http::Request::builder().method(method).uri(format!("{}{path_and_query}", self.endpoint));
        for (name, value) in to_sign.iter().chain(&signed) {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let transport = |source| ClientError::Transport { endpoint: self.endpoint.clone(), source };
        let request = builder.body(body.to_vec()).map_err(|e| transport(ureq::Error::from(e)))?;
        let mut response = self.agent.run(request).map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = response.body_mut().with_config().limit(MAX_RESPONSE_BYTES).read_to_vec().map_err(transport)?;
        Ok(Response { status, headers, body })
    }

    /// Invokes a function (name, `name:qualifier` or ARN).
    pub fn invoke(
        &self,
        function: &str,
        payload: &[u8],
        invocation_type: InvocationType,
        log_tail: bool,
    ) -> Result<Invocation, ClientError> {
        let name = percent_encoding::utf8_percent_encode(function, percent_encoding::NON_ALPHANUMERIC).to_string();
        let path = format!("/2015-03-31/functions/{name}/invocations");
        let mut headers = vec![("x-amz-invocation-type", invocation_type.header())];
        if log_tail {
            headers.push(("x-amz-log-type", "Tail"));
        }
        let response = self.request("POST", &path, &headers, payload)?;
        if let Some(error) = response.error() {
            return Err(error);
        }
        let log_tail = response
            .header("x-amz-log-result")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(Invocation {
            status: response.status,
            function_error: response.header("x-amz-function-error").map(str::to_string),
            executed_version: response.header("x-amz-executed-version").map(str::to_string),
            request_id: response.header("x-amzn-requestid").map(str::to_string),
            log_tail,
            payload: response.body,
        })
    }
}
