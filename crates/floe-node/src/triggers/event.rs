//! An HTTP request as the listener received it, and the API Gateway payload 2.0
//! event a function gets for it.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::clock;

/// An HTTP request, as the trigger listener hands it over.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// The path as received (percent-encoded), without the query.
    pub path: String,
    /// The query as received, without `?`; empty when there is none.
    pub query: String,
    /// `HTTP/1.1`.
    pub protocol: String,
    /// In the order received, names as sent; values that are not UTF-8 are replaced.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The client's address, when the listener knows it.
    pub source_ip: Option<String>,
}

impl HttpRequest {
    /// The values of a header (name case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Who is serving the request: what `requestContext` says besides the request.
pub(crate) struct Context<'a> {
    pub account_id: &'a str,
    pub api_id: &'a str,
    pub route_key: &'a str,
    pub request_id: &'a str,
    pub now_ms: u64,
}

/// The payload 2.0 event of `request` for a route with these path parameters.
pub(crate) fn build(request: &HttpRequest, params: &[(String, String)], ctx: &Context) -> Value {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            // Payload 2.0 moves cookies out of the headers into their own list.
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_string));
            continue;
        }
        join_into(&mut headers, name, value.clone());
    }
    let host = request.header_values("host").next().unwrap_or_default();
    let domain_name = strip_port(host);
    let mut event = Map::new();
    event.insert("version".into(), "2.0".into());
    event.insert("routeKey".into(), ctx.route_key.into());
    event.insert("rawPath".into(), request.path.clone().into());
    event.insert("rawQueryString".into(), request.query.clone().into());
    if !cookies.is_empty() {
        event.insert("cookies".into(), cookies.into());
    }
    event.insert("headers".into(), to_object(headers));
    let query = query_parameters(&request.query);
    if !query.is_empty() {
        event.insert("queryStringParameters".into(), to_object(query));
    }
    let mut http = json!({
        "method": request.method,
        "path": request.path,
        "protocol": request.protocol,
        "userAgent": request.header_values("user-agent").next().unwrap_or_default(),
    });
    if let Some(ip) = &request.source_ip {
        http["sourceIp"] = ip.as_str().into();
    }
    event.insert(
        "requestContext".into(),
        json!({
            "accountId": ctx.account_id,
            "apiId": ctx.api_id,
            "domainName": domain_name,
            "domainPrefix": domain_prefix(domain_name),
            "http": http,
            "requestId": ctx.request_id,
            "routeKey": ctx.route_key,
            "stage": super::model::DEFAULT_STAGE,
            "time": clock::clf_time(ctx.now_ms),
            "timeEpoch": ctx.now_ms,
        }),
    );
    if !params.is_empty() {
        event.insert("pathParameters".into(), to_object(params.to_vec()));
    }
    let base64 = if request.body.is_empty() {
        false
    } else {
        match std::str::from_utf8(&request.body) {
            Ok(text) => {
                event.insert("body".into(), text.into());
                false
            }
            Err(_) => {
                event.insert("body".into(), base64::engine::general_purpose::STANDARD.encode(&request.body).into());
                true
            }
        }
    };
    event.insert("isBase64Encoded".into(), base64.into());
    Value::Object(event)
}

/// Adds a value under `name`, joining repeated names with commas in order.
fn join_into(pairs: &mut Vec<(String, String)>, name: String, value: String) {
    match pairs.iter_mut().find(|(n, _)| *n == name) {
        Some((_, joined)) => {
            joined.push(',');
            joined.push_str(&value);
        }
        None => pairs.push((name, value)),
    }
}

fn to_object(pairs: Vec<(String, String)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// Decoded query parameters (`+` is a space, as in forms), repeated names joined
/// with commas.
fn query_parameters(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        join_into(&mut out, decode(name), decode(value));
    }
    out
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return host.split_once(']').map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
}

/// The first label of a DNS name (API Gateway's `domainPrefix`); an IP address is
/// its own prefix.
fn domain_prefix(domain: &str) -> &str {
    if domain.parse::<std::net::IpAddr>().is_ok() || domain.starts_with('[') {
        return domain;
    }
    domain.split('.').next().unwrap_or(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            account_id: "123456789012",
            api_id: "abcde12345",
            route_key: "POST /items/{id}",
            request_id: "req-1",
            now_ms: 1_796_293_349_123,
        }
    }

    fn request(body: &[u8]) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: "/items/a%20b".into(),
            query: "x=1&y=a+b&x=2&flag&z=%C3%A9".into(),
            protocol: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "api.example.com:8080".into()),
                ("User-Agent".into(), "curl/8".into()),
                ("X-Multi".into(), "a".into()),
                ("x-multi".into(), "b".into()),
                ("Cookie".into(), "s=1; t=2".into()),
                ("cookie".into(), "u=3".into()),
            ],
            body: Bytes::copy_from_slice(body),
            source_ip: Some("10.0.0.7".into()),
        }
    }

    #[test]
    fn a_text_request_becomes_a_payload_2_event() {
        let params = vec![("id".to_string(), "a b".to_string())];
        let event = build(&request(b"{\"k\": \"v\"}"), &params, &ctx());
        let want = json!({
            "version": "2.0",
            "routeKey": "POST /items/{id}",
            "rawPath": "/items/a%20b",
            "rawQueryString": "x=1&y=a+b&x=2&flag&z=%C3%A9",
            "cookies": ["s=1", "t=2", "u=3"],
            "headers": {"host": "api.example.com:8080", "user-agent": "curl/8", "x-multi": "a,b"},
            "queryStringParameters": {"x": "1,2", "y": "a b", "flag": "", "z": "é"},
            "pathParameters": {"id": "a b"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcde12345",
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {
                    "method": "POST", "path": "/items/a%20b", "protocol": "HTTP/1.1",
                    "sourceIp": "10.0.0.7", "userAgent": "curl/8"
                },
                "requestId": "req-1",
                "routeKey": "POST /items/{id}",
                "stage": "$default",
                "time": "03/Dec/2026:10:22:29 +0000",
                "timeEpoch": 1_796_293_349_123u64,
            },
            "body": "{\"k\": \"v\"}",
            "isBase64Encoded": false,
        });
        assert_eq!(event, want);
        assert!(event.get("stageVariables").is_none());
    }

    #[test]
    fn a_binary_body_is_base64_and_absent_parts_are_absent() {
        let mut r = request(&[0xff, 0x00, 0x80]);
        r.query.clear();
        r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("cookie"));
        let event = build(&r, &[], &ctx());
        assert_eq!(event["body"], "/wCA");
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(event["rawQueryString"], "");
        for absent in ["cookies", "queryStringParameters", "pathParameters"] {
            assert!(event.get(absent).is_none(), "{absent}");
        }
        let empty = build(&HttpRequest { body: Bytes::new(), ..r }, &[], &ctx());
        assert!(empty.get("body").is_none());
        assert_eq!(empty["isBase64Encoded"], false);
    }

    #[test]
    fn domain_names() {
        assert_eq!(strip_port("127.0.0.1:9000"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:9000"), "[::1]");
        assert_eq!(strip_port("a.b"), "a.b");
        assert_eq!(domain_prefix("127.0.0.1"), "127.0.0.1");
        assert_eq!(domain_prefix("abc.execute-api.local"), "abc");
    }
}
