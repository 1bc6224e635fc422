//! AWS Signature Version 4: verification of every API request ([`verify`]) and
//! signing for floe's own client ([`sign`]), with one canonicalization so the two
//! cannot drift apart.
//!
//! The canonical request is built the way botocore builds it for rest-json
//! services: the path as sent on the wire, with dot segments and empty segments
//! removed, URI-encoded once more (so `%3A` becomes `%253A`); the query pairs
//! sorted; the signed headers lower-cased, their values trimmed with inner runs of
//! whitespace collapsed and repeated headers joined with commas; the payload's
//! SHA-256 (or the `X-Amz-Content-SHA256` header, which must then match the body).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::{ApiState, AwsError, Credential};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's `X-Amz-Date` may be from the node's clock, as AWS.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The largest request body: a 50 MB zip in base64 (CreateFunction's `ZipFile`)
/// and 1 MiB for the rest of the JSON around it.
pub const MAX_BODY_BYTES: usize = (50usize << 20).div_ceil(3) * 4 + (1 << 20);

/// Characters left as they are by the URI encoding of SigV4: unreserved ones.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same, keeping the path's slashes.
const PATH_UNRESERVED: &AsciiSet = &UNRESERVED.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

/// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Authorization {
    access_key_id: String,
    /// `YYYYMMDD/region/service/aws4_request`.
    scope: String,
    date: String,
    signed_headers: Vec<String>,
    signature: Vec<u8>,
}

fn incomplete(message: impl Into<String>) -> AwsError {
    AwsError::new(403, "IncompleteSignatureException", message)
}

fn invalid_signature(message: impl Into<String>) -> AwsError {
    AwsError::new(403, "InvalidSignatureException", message)
}

impl Authorization {
    fn parse(header: &str) -> Result<Authorization, AwsError> {
        let rest = header.strip_prefix(ALGORITHM).filter(|r| r.starts_with(' ')).ok_or_else(|| {
            incomplete(format!("Authorization header must start with '{ALGORITHM} ' (got '{header}')"))
        })?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| incomplete(format!("'{}' in the Authorization header is not key=value", part.trim())))?;
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed = Some(value),
                "Signature" => signature = Some(value),
                _ => return Err(incomplete(format!("Authorization header has an unknown parameter '{key}'"))),
            }
        }
        fn require<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, AwsError> {
            v.filter(|v| !v.is_empty())
                .ok_or_else(|| incomplete(format!("Authorization header requires '{name}' parameter")))
        }
        let credential = require(credential, "Credential")?;
        let signed = require(signed, "SignedHeaders")?;
        let signature = require(signature, "Signature")?;
        let mut fields = credential.splitn(5, '/');
        let access_key_id = fields.next().unwrap_or_default().to_string();
        let scope: Vec<&str> = fields.collect();
        let well_formed = !access_key_id.is_empty()
            && scope.len() == 4
            && scope[0].len() == 8
            && scope[0].bytes().all(|b| b.is_ascii_digit())
            && !scope[1].is_empty()
            && !scope[2].is_empty()
            && scope[3] == "aws4_request";
        if !well_formed {
            return Err(incomplete(format!(
                "Credential '{credential}' must have the form <access key>/<YYYYMMDD>/<region>/<service>/aws4_request"
            )));
        }
        let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
        if signed_headers.iter().any(|h| h.is_empty() || *h != h.to_ascii_lowercase()) {
            return Err(incomplete(format!("SignedHeaders '{signed}' must be lower-case names separated by ';'")));
        }
        if !signed_headers.iter().any(|h| h == "host") {
            return Err(incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization"));
        }
        let signature = hex::decode(signature)
            .ok()
            .filter(|s| s.len() == 32)
            .ok_or_else(|| incomplete(format!("Signature '{signature}' must be 64 hexadecimal digits")))?;
        Ok(Authorization {
            access_key_id,
            date: scope[0].to_string(),
            scope: scope.join("/"),
            signed_headers,
            signature,
        })
    }
}

/// The path as SigV4 signs it: dot and empty segments removed, then URI-encoded
/// (an already encoded path is encoded again, as botocore does outside S3).
pub fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    utf8_percent_encode(&path, PATH_UNRESERVED).to_string()
}

/// The query as SigV4 signs it: each name and value URI-encoded, sorted by name
/// then value.
pub fn canonical_query(raw_query: &str) -> String {
    let encode = |s: &str| {
        let decoded = percent_decode_str(s).collect::<Vec<u8>>();
        percent_encoding::percent_encode(&decoded, UNRESERVED).to_string()
    };
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(k), encode(v))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// A header value as SigV4 signs it: trimmed, inner whitespace runs made one space.
fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a signature covers, already in canonical form except the path and query.
struct Canonical<'a> {
    method: &'a str,
    raw_path: &'a str,
    raw_query: &'a str,
    /// Lower-case name and canonical value, sorted by name.
    headers: Vec<(String, String)>,
    payload_hash: String,
}

impl Canonical<'_> {
    fn request(&self) -> String {
        let headers: String = self.headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let signed = self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
        format!(
            "{}\n{}\n{}\n{headers}\n{signed}\n{}",
            self.method,
            canonical_uri(self.raw_path),
            canonical_query(self.raw_query),
            self.payload_hash
        )
    }
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request)))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The key that signs: the secret through date, region, service and `aws4_request`.
fn signing_key(secret: &str, scope: &str) -> Vec<u8> {
    scope.split('/').fold(format!("AWS4{secret}").into_bytes(), |key, part| hmac(&key, part))
}

/// `YYYYMMDDTHHMMSSZ` of a time.
pub fn amz_date(time: SystemTime) -> String {
    let ms = time.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let t = floe_lambda::time::Utc::from_millis(ms);
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// Seconds since the epoch of a `YYYYMMDDTHHMMSSZ` time.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // A civil date to days since 1970-01-01 (the inverse of `Utc::from_millis`).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// A request to sign, as the client will send it.
pub struct RequestToSign<'a> {
    pub method: &'a str,
    /// The path exactly as sent (already percent-encoded), with its query.
    pub path_and_query: &'a str,
    /// Every header to sign, `host` included.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Signs a request: the headers to add to it (`x-amz-date`, `authorization`).
pub fn sign(
    credential: &Credential,
    region: &str,
    service: &str,
    request: &RequestToSign<'_>,
    time: SystemTime,
) -> Vec<(String, String)> {
    let date = amz_date(time);
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), canonical_header_value(v)))
        .filter(|(n, _)| n != "x-amz-date" && n != "authorization")
        .chain(std::iter::once(("x-amz-date".to_string(), date.clone())))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    // Repeated names sign as one header with the values joined by commas.
    headers.dedup_by(|later, first| {
        let same = later.0 == first.0;
        if same {
            first.1 = format!("{},{}", first.1, later.1);
        }
        same
    });
    let (raw_path, raw_query) = request.path_and_query.split_once('?').unwrap_or((request.path_and_query, ""));
    let canonical = Canonical {
        method: request.method,
        raw_path,
        raw_query,
        headers,
        payload_hash: hex::encode(Sha256::digest(request.body)),
    };
    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    let to_sign = string_to_sign(&date, &scope, &canonical.request());
    let signature = hex::encode(hmac(&signing_key(&credential.secret_access_key, &scope), &to_sign));
    let signed = canonical.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    vec![
        ("x-amz-date".to_string(), date),
        (
            "authorization".to_string(),
            format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
                credential.access_key_id
            ),
        ),
    ]
}

/// The access key a request was verified with (a request extension after
/// [`verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedKey(pub String);

/// Query parameters of a presigned URL.
const PRESIGNED: [&str; 6] =
    ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"];
/// A presigned URL is valid this long at most (as S3: 7 days).
const MAX_PRESIGNED_EXPIRY: u64 = 7 * 24 * 3600;

/// What a request's signature claims: from its `Authorization` header, or from the
/// query of a presigned URL.
struct Claim {
    auth: Authorization,
    amz_date: String,
    /// Presigned: seconds after `amz_date` the URL stops working.
    expires: Option<u64>,
    /// The query as signed (a presigned URL's signature is not part of it).
    raw_query: String,
    payload_hash: Option<String>,
}

fn header_claim(parts: &Parts, header: &axum::http::HeaderValue) -> Result<Claim, AwsError> {
    let header = header.to_str().map_err(|_| incomplete("The Authorization header is not ASCII"))?;
    let auth = Authorization::parse(header)?;
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("Authorization header requires existence of a 'X-Amz-Date' header"))?
        .to_string();
    Ok(Claim {
        auth,
        amz_date,
        expires: None,
        raw_query: parts.uri.query().unwrap_or("").to_string(),
        payload_hash: None,
    })
}

fn presigned_claim(parts: &Parts) -> Result<Claim, AwsError> {
    let raw_query = parts.uri.query().unwrap_or("");
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut found: [Option<String>; 6] = Default::default();
    let mut signed_query = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k);
        if let Some(i) = PRESIGNED.iter().position(|p| *p == key) {
            found[i] = Some(decode(v));
        }
        if key != "X-Amz-Signature" {
            signed_query.push(pair);
        }
    }
    let [algorithm, credential, date, expires, signed, signature] = found;
    let missing: Vec<&str> = PRESIGNED
        .iter()
        .zip([&algorithm, &credential, &date, &expires, &signed, &signature])
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(incomplete(format!("A presigned URL requires the query parameters {}", missing.join(", "))));
    }
    if parts.method != axum::http::Method::GET && parts.method != axum::http::Method::HEAD {
        return Err(incomplete("Presigned URLs are for GET requests only"));
    }
    let expires = expires
        .as_deref()
        .and_then(|e| e.parse::<u64>().ok())
        .filter(|e| (1..=MAX_PRESIGNED_EXPIRY).contains(e))
        .ok_or_else(|| {
            incomplete(format!("X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRY}"))
        })?;
    let header = format!(
        "{} Credential={}, SignedHeaders={}, Signature={}",
        algorithm.unwrap_or_default(),
        credential.unwrap_or_default(),
        signed.unwrap_or_default(),
        signature.unwrap_or_default()
    );
    Ok(Claim {
        auth: Authorization::parse(&header)?,
        amz_date: date.unwrap_or_default(),
        expires: Some(expires),
        raw_query: signed_query.join("&"),
        payload_hash: Some(UNSIGNED_PAYLOAD.to_string()),
    })
}

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Checks a request's signature, `secret_of` giving the secret of an access key,
/// at `now`; the access key it was signed with.
fn check(
    secret_of: &dyn Fn(&str) -> Option<String>,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<VerifiedKey, AwsError> {
    let claim = match parts.headers.get("authorization") {
        Some(header) => header_claim(parts, header)?,
        None if parts.uri.query().is_some_and(|q| q.contains("X-Amz-Algorithm=")) => presigned_claim(parts)?,
        None => return Err(AwsError::new(403, "MissingAuthenticationTokenException", "Missing Authentication Token")),
    };
    let Claim { auth, amz_date: date, expires, raw_query, payload_hash } = claim;
    let secret = secret_of(&auth.access_key_id).ok_or_else(|| {
        AwsError::new(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
    })?;
    let signed_at = parse_amz_date(&date)
        .ok_or_else(|| incomplete(format!("X-Amz-Date '{date}' must have the form YYYYMMDD'T'HHMMSS'Z'")))?;
    if date[..8] != auth.date {
        return Err(invalid_signature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', \
             from '{date}'.",
            auth.date,
            &date[..8]
        )));
    }
    let now_secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let skew = MAX_CLOCK_SKEW.as_secs() as i64;
    let at = |secs: i64| amz_date(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64));
    if let Some(expires) = expires {
        if signed_at + (expires as i64) < now_secs {
            return Err(AwsError::new(
                403,
                "AccessDeniedException",
                format!("Request has expired: signed at {date} for {expires} s"),
            ));
        }
    } else if signed_at < now_secs - skew {
        return Err(invalid_signature(format!(
            "Signature expired: {date} is now earlier than {} ({} - 15 min.)",
            at(now_secs - skew),
            at(now_secs)
        )));
    }
    if signed_at > now_secs + skew {
        return Err(invalid_signature(format!(
            "Signature not yet current: {date} is still later than {} ({} + 15 min.)",
            at(now_secs + skew),
            at(now_secs)
        )));
    }
    let payload_hash = match payload_hash {
        Some(hash) => hash,
        None => {
            let body_hash = hex::encode(Sha256::digest(body));
            match parts.headers.get("x-amz-content-sha256").map(|v| v.to_str()) {
                Some(Ok(sent)) if sent.eq_ignore_ascii_case(&body_hash) => sent.to_string(),
                Some(_) => {
                    return Err(invalid_signature(
                        "The X-Amz-Content-SHA256 header does not match the SHA-256 of the request body",
                    ))
                }
                None => body_hash,
            }
        }
    };
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let values: Vec<String> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| canonical_header_value(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            return Err(invalid_signature(format!("The signed header '{name}' is not in the request")));
        }
        headers.push((name.clone(), values.join(",")));
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical = Canonical {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: &raw_query,
        headers,
        payload_hash,
    };
    let canonical_request = canonical.request();
    let to_sign = string_to_sign(&date, &auth.scope, &canonical_request);
    let mut mac = HmacSha256::new_from_slice(&signing_key(&secret, &auth.scope)).expect("HMAC takes any key");
    mac.update(to_sign.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&auth.signature).map_err(|_| {
        invalid_signature(format!(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method.\n\nThe Canonical String for this request should have been\n'{canonical_request}'\
             \n\nThe String-to-Sign should have been\n'{to_sign}'\n"
        ))
    })?;
    Ok(VerifiedKey(auth.access_key_id))
}

/// A presigned `GET` URL's path and query: `path` (as sent, already encoded) with
/// the query parameters that let anyone holding it make that one request until
/// `expires` after `time`. Only the host is signed.
pub fn presign(
    credential: &Credential,
    region: &str,
    service: &str,
    host: &str,
    path: &str,
    expires: Duration,
    time: SystemTime,
) -> String {
    let date = amz_date(time);
    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    let encode = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    let query = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={date}&X-Amz-Expires={}&X-Amz-SignedHeaders=host",
        encode(&format!("{}/{scope}", credential.access_key_id)),
        expires.as_secs()
    );
    let canonical = Canonical {
        method: "GET",
        raw_path: path,
        raw_query: &query,
        headers: vec![("host".to_string(), canonical_header_value(host))],
        payload_hash: UNSIGNED_PAYLOAD.to_string(),
    };
    let to_sign = string_to_sign(&date, &scope, &canonical.request());
    let signature = hex::encode(hmac(&signing_key(&credential.secret_access_key, &scope), &to_sign));
    format!("{path}?{query}&X-Amz-Signature={signature}")
}

fn too_large() -> Response {
    AwsError::new(
        413,
        "RequestTooLargeException",
        format!("Request must be smaller than {MAX_BODY_BYTES} bytes for any operation"),
    )
    .into_response()
}

/// Verifies the request's signature against the node's keys before any route sees
/// it. The body is read here (the signature covers it) and handed on in one piece.
pub async fn verify(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(),
        Err(e) => {
            return AwsError::new(
                400,
                "InvalidRequestContentException",
                format!("Could not read the request body: {e}"),
            )
            .into_response()
        }
    };
    let secret_of = |key: &str| state.secret(key).map(str::to_string);
    let mut parts = parts;
    match check(&secret_of, &parts, &body, SystemTime::now()) {
        Ok(key) => {
            parts.extensions.insert(key);
        }
        Err(e) => {
            tracing::debug!(code = %e.code, path = %parts.uri.path(), "request refused by SigV4");
            return e.into_response();
        }
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for (secs, text) in [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_700_000_000, "20231114T221320Z"),
            (4_102_444_799, "20991231T235959Z"),
        ] {
            assert_eq!(amz_date(UNIX_EPOCH + Duration::from_secs(secs)), text);
            assert_eq!(parse_amz_date(text), Some(secs as i64), "{text}");
        }
        for bad in ["", "20231114T221320", "2023-11-14T22:13:20Z", "20231314T000000Z", "2023111xT000000Z"] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_are_encoded_again_and_normalized() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(
            canonical_uri("/2015-03-31/functions/demo%3Aprod/invocations"),
            "/2015-03-31/functions/demo%253Aprod/invocations"
        );
        assert_eq!(canonical_uri("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(canonical_uri("/2016-08-19/account-settings/"), "/2016-08-19/account-settings/");
        assert_eq!(canonical_uri("/x y~"), "/x%20y~");
    }

    #[test]
    fn queries_are_sorted_and_encoded() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("Qualifier=%24LATEST"), "Qualifier=%24LATEST");
        assert_eq!(canonical_query("Qualifier=$LATEST&flag"), "Qualifier=%24LATEST&flag=");
    }

    #[test]
    fn authorization_headers_parse_or_say_what_is_wrong() {
        let good = "AWS4-HMAC-SHA256 Credential=AKID/20240102/eu-west-3/lambda/aws4_request, \
                    SignedHeaders=host;x-amz-date, Signature="
            .to_string()
            + &"ab".repeat(32);
        let auth = Authorization::parse(&good).unwrap();
        assert_eq!(auth.access_key_id, "AKID");
        assert_eq!(auth.scope, "20240102/eu-west-3/lambda/aws4_request");
        assert_eq!(auth.signed_headers, ["host", "x-amz-date"]);
        for bad in [
            "Bearer x",
            "AWS4-HMAC-SHA256 Credential=AKID/20240102/eu-west-3/lambda/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKID/2024/eu-west-3/lambda/aws4_request, SignedHeaders=host, Signature=00",
            &good.replace("SignedHeaders=host;", "SignedHeaders="),
            &good.replace("Signature=ab", "Signature=zz"),
        ] {
            let e = Authorization::parse(bad).unwrap_err();
            assert_eq!(e.code, "IncompleteSignatureException", "{bad}");
            assert_eq!(e.status.as_u16(), 403);
        }
    }

    fn credential() -> Credential {
        Credential {
            access_key_id: "AKIAFLOETESTKEY00001".into(),
            secret_access_key: "floe-test-secret-key/0123456789abcdefABCD".into(),
        }
    }

    const PATH: &str = "/2015-03-31/functions/demo%3Aprod/invocations?Qualifier=%24LATEST&B=x%20y";

    fn headers() -> Vec<(String, String)> {
        [
            ("Host", "127.0.0.1:8080"),
            ("X-Amz-Invocation-Type", "Event"),
            ("Content-Type", "application/json"),
            ("X-Amz-Client-Context", "  a   b "),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// 2026-12-03T10:30:45Z
    const SIGNED_AT: u64 = 1_796_293_845;

    #[test]
    fn signatures_match_botocore() {
        // botocore 1.x SigV4Auth.add_auth on this request, its clock set to SIGNED_AT.
        let expected = "AWS4-HMAC-SHA256 Credential=AKIAFLOETESTKEY00001/20261203/eu-west-3/lambda/aws4_request, \
            SignedHeaders=content-type;host;x-amz-client-context;x-amz-date;x-amz-invocation-type, \
            Signature=35497d44e9ce4c39df975dffa91552d1a8aa9d7909eeeced3731d4456a5badfc";
        let headers = headers();
        let request = RequestToSign { method: "POST", path_and_query: PATH, headers: &headers, body: br#"{"a": 1}"# };
        let added = sign(&credential(), "eu-west-3", "lambda", &request, at(SIGNED_AT));
        assert_eq!(added[0], ("x-amz-date".to_string(), "20261203T103045Z".to_string()));
        assert_eq!(added[1], ("authorization".to_string(), expected.to_string()));
    }

    fn signed_parts(body: &[u8], secret: &str, time: SystemTime) -> Parts {
        let headers = headers();
        let request = RequestToSign { method: "POST", path_and_query: PATH, headers: &headers, body };
        let credential = Credential { secret_access_key: secret.into(), ..credential() };
        let mut builder = axum::http::Request::builder().method("POST").uri(PATH);
        for (n, v) in headers.iter().chain(sign(&credential, "eu-west-3", "lambda", &request, time).iter()) {
            builder = builder.header(n, v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn lookup(key: &str) -> Option<String> {
        (key == credential().access_key_id).then(|| credential().secret_access_key)
    }

    #[test]
    fn signed_requests_verify_and_tampered_ones_do_not() {
        let now = at(SIGNED_AT + 60);
        let body = br#"{"a": 1}"#;
        let good = signed_parts(body, &credential().secret_access_key, at(SIGNED_AT));
        assert_eq!(check(&lookup, &good, body, now).unwrap(), VerifiedKey(credential().access_key_id));
        let code = |parts: &Parts, body: &[u8], now| check(&lookup, parts, body, now).unwrap_err().code;
        assert_eq!(code(&good, br#"{"a": 2}"#, now), "InvalidSignatureException");
        let wrong_secret = signed_parts(body, "not-the-secret", at(SIGNED_AT));
        assert_eq!(code(&wrong_secret, body, now), "InvalidSignatureException");
        assert_eq!(code(&good, body, at(SIGNED_AT + 16 * 60)), "InvalidSignatureException");
        assert_eq!(code(&good, body, at(SIGNED_AT - 16 * 60)), "InvalidSignatureException");
        let expired = check(&lookup, &good, body, at(SIGNED_AT + 16 * 60)).unwrap_err();
        assert!(expired.message().starts_with("Signature expired: 20261203T103045Z"), "{}", expired.message());
        let mut changed = good.clone();
        changed.headers.insert("x-amz-invocation-type", "DryRun".parse().unwrap());
        assert_eq!(code(&changed, body, now), "InvalidSignatureException");
        let mut unsigned = good.clone();
        unsigned.headers.remove("authorization");
        assert_eq!(code(&unsigned, body, now), "MissingAuthenticationTokenException");
        let mut stranger = good.clone();
        let auth = good.headers["authorization"].to_str().unwrap().replace("AKIAFLOETESTKEY00001", "AKIASOMEONEELSE");
        stranger.headers.insert("authorization", auth.parse().unwrap());
        assert_eq!(code(&stranger, body, now), "UnrecognizedClientException");
        let mut hashed = good.clone();
        hashed.headers.insert("x-amz-content-sha256", hex::encode(Sha256::digest(b"other")).parse().unwrap());
        assert_eq!(code(&hashed, body, now), "InvalidSignatureException");
    }

    #[test]
    fn presigned_urls_verify_until_they_expire() {
        let path = "/2015-03-31/functions/demo/package";
        let url = presign(
            &credential(),
            "eu-west-3",
            "lambda",
            "127.0.0.1:8080",
            path,
            Duration::from_secs(600),
            at(SIGNED_AT),
        );
        let parts = |method: &str, uri: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("host", "127.0.0.1:8080")
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let code = |p: &Parts, now| check(&lookup, p, b"", now).map(|_| ()).map_err(|e| e.code);
        assert_eq!(code(&parts("GET", &url), at(SIGNED_AT + 599)), Ok(()));
        assert_eq!(code(&parts("GET", &url), at(SIGNED_AT + 601)), Err("AccessDeniedException".into()));
        assert_eq!(code(&parts("DELETE", &url), at(SIGNED_AT)), Err("IncompleteSignatureException".into()));
        let other = url.replace("/demo/", "/other/");
        assert_eq!(code(&parts("GET", &other), at(SIGNED_AT)), Err("InvalidSignatureException".into()));
        let longer = url.replace("X-Amz-Expires=600", "X-Amz-Expires=6000");
        assert_eq!(code(&parts("GET", &longer), at(SIGNED_AT)), Err("InvalidSignatureException".into()));
    }
}
