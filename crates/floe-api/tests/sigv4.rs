//! SigV4 on a running node: requests signed by botocore and by floe's own client
//! pass; unsigned, wrongly signed, unknown-key, malformed and expired ones get a
//! 403 with the AWS code; an oversized body gets a 413.
mod common;

use common::{TestNode, ACCESS_KEY, REGION, SECRET_KEY};
use floe_api::client::{Client, ClientError, InvocationType};
use floe_api::Credential;
use serde_json::{json, Value};

const HELPERS: &str = include_str!("common/lambda_helpers.py");

#[test]
fn only_requests_signed_with_a_known_key_and_a_current_date_pass() {
    let Some(node) = TestNode::start() else { return };
    let out = node.boto3(&format!(
        "{HELPERS}\n{}",
        r#"
P = '/2015-03-31/functions'
c = {}
c['signed'] = raw('GET', P)[0]
c['unsigned'] = raw_error('GET', P, sign=False)
c['wrong_secret'] = raw_error('GET', P, keys=Credentials(KEYS.access_key, 'not-the-secret'))
c['unknown_key'] = raw_error('GET', P, keys=Credentials('AKIANOBODYKNOWS00000', KEYS.secret_key))
c['expired'] = raw_error('GET', P, at=utcnow() - datetime.timedelta(minutes=20))
c['future'] = raw_error('GET', P, at=utcnow() + datetime.timedelta(minutes=20))
c['nearly_expired'] = raw('GET', P, at=utcnow() - datetime.timedelta(minutes=14))[0]
c['malformed'] = raw_error('GET', P, sign=False, headers={'Authorization': 'AWS4-HMAC-SHA256 Credential=' + KEYS.access_key,
                                                          'X-Amz-Date': '20260101T000000Z'})
c['not_sigv4'] = raw_error('GET', P, sign=False, headers={'Authorization': 'Basic dXNlcjpwYXNz'})
c['tampered_body'] = None
status, headers, body = raw('POST', P + '/nothing/invocations', '{"a": 1}')
c['signed_post'] = [status, headers.get('x-amzn-errortype')]
# A body changed after signing.
req = AWSRequest(method='POST', url=ENDPOINT + P + '/nothing/invocations', data=b'{"a": 1}')
botocore.auth.SigV4Auth(KEYS, 'lambda', REGION).add_auth(req)
prepared = req.prepare()
r = urllib.request.Request(prepared.url, data=b'{"a": 2}', method='POST', headers=dict(prepared.headers))
try:
    urllib.request.urlopen(r)
except urllib.error.HTTPError as e:
    c['tampered_body'] = [e.code, e.headers.get('x-amzn-errortype')]
# The wrong-secret refusal shows what the server signed, for whoever writes a client.
c['wrong_secret_detail'] = 'The Canonical String for this request should have been' in c['wrong_secret'][2]
# boto3 itself with a wrong secret, and a name:qualifier (encoded twice in the canonical path).
bad = boto3.client('lambda', endpoint_url=ENDPOINT, aws_access_key_id=KEYS.access_key, aws_secret_access_key='nope', config=_cfg)
c['boto3_wrong_secret'] = error_of(bad.list_functions)
c['boto3_qualified'] = error_of(lam.get_function, FunctionName='nothing:$LATEST')
# A body larger than any operation takes is refused before it is read.
import http.client
conn = http.client.HTTPConnection(ENDPOINT.split('//')[1])
conn.putrequest('POST', P)
conn.putheader('Content-Length', str(200 * 1024 * 1024))
conn.endheaders()
resp = conn.getresponse()
c['too_large'] = [resp.status, resp.headers.get('x-amzn-errortype')]
out(c)
"#
    ));
    assert_eq!(out["signed"], 200);
    assert_eq!(out["nearly_expired"], 200);
    let refused = |case: &str, code: &str, words: &str| {
        let e = &out[case];
        assert_eq!(e[0], 403, "{case}: {e}");
        assert_eq!(e[1], code, "{case}: {e}");
        assert!(e[2].as_str().unwrap_or_default().contains(words), "{case}: {e}");
    };
    refused("unsigned", "MissingAuthenticationTokenException", "Missing Authentication Token");
    refused("wrong_secret", "InvalidSignatureException", "signature we calculated does not match");
    refused("unknown_key", "UnrecognizedClientException", "security token");
    refused("expired", "InvalidSignatureException", "Signature expired: ");
    refused("future", "InvalidSignatureException", "Signature not yet current");
    refused("malformed", "IncompleteSignatureException", "SignedHeaders");
    refused("not_sigv4", "IncompleteSignatureException", "AWS4-HMAC-SHA256");
    assert_eq!(out["signed_post"], json!([404, "ResourceNotFoundException"]));
    assert_eq!(out["tampered_body"], json!([403, "InvalidSignatureException"]));
    assert_eq!(out["wrong_secret_detail"], true);
    assert_eq!(out["boto3_wrong_secret"][0], 403);
    assert_eq!(out["boto3_wrong_secret"][1], "InvalidSignatureException");
    // Signed right, so it got as far as the function lookup.
    assert_eq!(out["boto3_qualified"][1], "ResourceNotFoundException");
    assert_eq!(out["too_large"], json!([413, "RequestTooLargeException"]));
}

fn credential(secret: &str) -> Credential {
    Credential { access_key_id: ACCESS_KEY.into(), secret_access_key: secret.into() }
}

#[test]
fn floes_client_signs_what_the_node_verifies() {
    let Some(node) = TestNode::start() else { return };
    node.boto3(&format!("{HELPERS}\ncreate('echo')\nout(None)"));
    let client = Client::new(&node.endpoint, credential(SECRET_KEY), REGION).unwrap();
    let listed = client.request("GET", "/2015-03-31/functions?MaxItems=5", &[], b"").unwrap();
    assert_eq!(listed.status, 200, "{}", String::from_utf8_lossy(&listed.body));
    let body: Value = serde_json::from_slice(&listed.body).unwrap();
    assert_eq!(body["Functions"][0]["FunctionName"], "echo");

    let invoked = client.invoke("echo:$LATEST", br#"{"k": "v"}"#, InvocationType::RequestResponse, true).unwrap();
    assert_eq!(invoked.status, 200);
    let payload: Value = serde_json::from_slice(&invoked.payload).unwrap();
    assert_eq!(payload["event"], json!({"k": "v"}));
    assert_eq!(invoked.executed_version.as_deref(), Some("$LATEST"));
    assert!(invoked.log_tail.unwrap_or_default().contains("REPORT RequestId: "));
    let failed = client.invoke("echo", br#"{"fail": true}"#, InvocationType::RequestResponse, false).unwrap();
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(client.invoke("echo", b"{}", InvocationType::Event, false).unwrap().status, 202);
    assert_eq!(client.invoke("echo", b"{}", InvocationType::DryRun, false).unwrap().status, 204);

    match client.invoke("nothing", b"{}", InvocationType::RequestResponse, false) {
        Err(ClientError::Api { status: 404, code, .. }) => assert_eq!(code, "ResourceNotFoundException"),
        other => panic!("{other:?}"),
    }
    let wrong = Client::new(&node.endpoint, credential("not-the-secret"), REGION).unwrap();
    match wrong.invoke("echo", b"{}", InvocationType::RequestResponse, false) {
        Err(ClientError::Api { status: 403, code, .. }) => assert_eq!(code, "InvalidSignatureException"),
        other => panic!("{other:?}"),
    }
    assert!(Client::new("https://example.com", credential(SECRET_KEY), REGION).is_err());
    assert!(Client::new("http://127.0.0.1:1/path", credential(SECRET_KEY), REGION).is_err());
}
