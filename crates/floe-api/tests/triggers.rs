//! HTTP triggers end to end: routes made with the real boto3 and aws CLI, requests
//! sent with curl and Python's urllib to the trigger listener, a real Python
//! function behind them.
mod common;

use std::path::Path;
use std::process::Command;

use common::TestNode;
use serde_json::{json, Value};

/// One function for every case: the path picks what it returns.
const WEB: &str = r#"
import base64, time

def handler(event, context):
    p = event['rawPath']
    if p == '/shaped':
        return {'statusCode': 201, 'headers': {'X-Kind': 'shaped', 'Content-Type': 'text/plain'},
                'cookies': ['a=1; Path=/', 'b=2'], 'body': 'made'}
    if p == '/binary':
        return {'statusCode': 200, 'headers': {'content-type': 'application/octet-stream'},
                'isBase64Encoded': True, 'body': base64.b64encode(bytes(range(256))).decode()}
    if p == '/bare':
        return 'just a string'
    if p == '/fail':
        raise ValueError('boom')
    if p == '/slow':
        time.sleep(3)
    return event
"#;

fn create_function(node: &TestNode, name: &str, timeout_s: u32) -> String {
    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("app.py"), WEB).unwrap();
    let package = floe_lambda::code::Package::from_dir(code.path(), &Default::default()).unwrap();
    let settings = floe_lambda::Settings {
        runtime: Some("python3.12".into()),
        handler: Some("app.handler".into()),
        timeout_s: Some(timeout_s),
        ..Default::default()
    };
    let functions = node.node.functions();
    node.block_on(functions.create_function(name, settings, package)).expect("create function");
    functions.function_arn(name)
}

struct Reply {
    status: u16,
    /// Lower-case names, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{:?} is not JSON: {e}", String::from_utf8_lossy(&self.body)))
    }
}

/// Runs Debian's curl against the trigger listener (`path` appended to its URL).
fn curl(node: &TestNode, path: &str, args: &[&str]) -> Reply {
    let dir = tempfile::tempdir_in(node.dir.path()).unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let output = Command::new("curl")
        .args(["-sS", "--http1.1", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .arg(format!("{}{path}", node.triggers))
        .output()
        .expect("curl (Debian's curl: apt-get install curl)");
    assert!(output.status.success(), "curl {path} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    let head = std::fs::read_to_string(head).unwrap();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply { status, headers, body: std::fs::read(body).unwrap_or_default() }
}

fn aws_json(node: &TestNode, args: &[&str]) -> Value {
    let output = node.aws(args);
    assert!(
        output.status.success(),
        "aws {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    format!("@{}", path.display())
}

const SETUP: &str = r#"
api = apigw.create_api(Name='shop', ProtocolType='HTTP', Tags={'team': 'web'})
api_id = api['ApiId']
integ = apigw.create_integration(ApiId=api_id, IntegrationType='AWS_PROXY', IntegrationUri=ARN,
                                 PayloadFormatVersion='2.0')
target = 'integrations/' + integ['IntegrationId']
keys = ['GET /items/{id}', 'POST /items', 'DELETE /items/{id}', 'ANY /files/{path+}', 'GET /shaped',
        'GET /binary', 'GET /bare', 'GET /fail']
routes = {k: apigw.create_route(ApiId=api_id, RouteKey=k, Target=target)['RouteId'] for k in keys}
stage = apigw.create_stage(ApiId=api_id, StageName='$default', AutoDeploy=True)
errors = {}
def err(name, f):
    try:
        f()
        errors[name] = None
    except botocore.exceptions.ClientError as e:
        errors[name] = [e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode'],
                        e.response['Error']['Message']]
err('duplicate', lambda: apigw.create_route(ApiId=api_id, RouteKey='GET /items/{other}', Target=target))
err('v1', lambda: apigw.create_integration(ApiId=api_id, IntegrationType='AWS_PROXY', IntegrationUri=ARN,
                                           PayloadFormatVersion='1.0'))
err('missing', lambda: apigw.get_api(ApiId='zzzzzzzzzz'))
err('bad_key', lambda: apigw.create_route(ApiId=api_id, RouteKey='GET items'))
err('bad_target', lambda: apigw.create_route(ApiId=api_id, RouteKey='GET /x', Target='integrations/nope'))
err('cors', lambda: apigw.create_api(Name='x', ProtocolType='HTTP', CorsConfiguration={'AllowOrigins': ['*']}))
err('update', lambda: apigw.update_route(ApiId=api_id, RouteId=routes['POST /items'], RouteKey='POST /x'))
err('in_use', lambda: apigw.delete_integration(ApiId=api_id, IntegrationId=integ['IntegrationId']))

# Bodies boto3 would never send, signed as it signs.
import urllib.request, urllib.error
from botocore.awsrequest import AWSRequest
from botocore.auth import SigV4Auth
def raw(body):
    req = AWSRequest(method='POST', url=ENDPOINT + '/v2/apis', data=body, headers={'Content-Type': 'application/json'})
    SigV4Auth(boto3.Session().get_credentials(), 'apigateway', 'eu-west-3').add_auth(req)
    try:
        urllib.request.urlopen(urllib.request.Request(req.url, data=body, headers=dict(req.headers), method='POST'))
        return None
    except urllib.error.HTTPError as e:
        return [e.code, e.headers.get('x-amzn-errortype'), json.loads(e.read())['message']]
errors['malformed'] = raw(b'{"name": ')
errors['wrong_type'] = raw(b'{"name": 5, "protocolType": "HTTP"}')
errors['no_protocol'] = raw(b'{"name": "x"}')
for r in [api, integ, stage]:
    r.pop('ResponseMetadata', None)
out({'api': api, 'integration': integ, 'routes': routes, 'stage': stage, 'errors': errors,
     'get_api': {k: v for k, v in apigw.get_api(ApiId=api_id).items() if k != 'ResponseMetadata'},
     'get_routes': sorted(r['RouteKey'] + ' -> ' + r['Target'] for r in apigw.get_routes(ApiId=api_id)['Items']),
     'get_route': apigw.get_route(ApiId=api_id, RouteId=routes['POST /items'])['RouteKey'],
     'apis': [a['Name'] for a in apigw.get_apis()['Items']],
     'page': apigw.get_routes(ApiId=api_id, MaxResults='3').get('NextToken'),
     'integrations': [i['IntegrationUri'] for i in apigw.get_integrations(ApiId=api_id)['Items']],
     'stages': [[s['StageName'], s['AutoDeploy']] for s in apigw.get_stages(ApiId=api_id)['Items']]})
"#;

/// Requests with Python's urllib; `status` catches HTTP errors.
const URLLIB: &str = r#"
import urllib.request, urllib.error
def call(method, path, body=None, headers={}):
    req = urllib.request.Request(BASE + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]
post = call('POST', '/items', b'{"name": "caf\xc3\xa9"}', {'Content-Type': 'application/json'})
delete = call('DELETE', '/items/7?force=true')
put = call('PUT', '/files/a/b%20c/d.txt')
unknown = call('PATCH', '/items/7')
out({'post': [post[0], json.loads(post[1])], 'delete': [delete[0], json.loads(delete[1])],
     'put': [put[0], json.loads(put[1])], 'unknown': unknown})
"#;

/// Median milliseconds of `n` GETs of each path over one kept-alive connection.
const LATENCY: &str = r#"
import http.client, time, urllib.parse
u = urllib.parse.urlparse(BASE)
conn = http.client.HTTPConnection(u.hostname, u.port)
res = {}
for path in PATHS:
    times = []
    for _ in range(200):
        t = time.perf_counter()
        conn.request('GET', path)
        r = conn.getresponse()
        r.read()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    res[path] = [r.status, round(times[len(times) // 2], 3), round(times[int(len(times) * 0.99)], 3)]
out(res)
"#;

#[test]
fn routes_made_with_boto3_serve_payload_2_events() {
    let Some(node) = TestNode::start() else { return };
    node.node.triggers().set_endpoint(node.triggers.clone());
    let arn = create_function(&node, "web", 10);
    let setup =
        node.boto3(&SETUP.replace("ARN", &format!("'{arn}'")).replace("ENDPOINT", &format!("'{}'", node.endpoint)));
    let api_id = setup["api"]["ApiId"].as_str().expect("ApiId").to_string();
    assert_eq!(api_id.len(), 10);
    assert_eq!(setup["api"]["ApiEndpoint"], node.triggers.as_str());
    assert_eq!(setup["api"]["ProtocolType"], "HTTP");
    assert_eq!(setup["api"]["Tags"], json!({"team": "web"}));
    assert_eq!(setup["get_api"]["ApiId"], api_id.as_str());
    assert_eq!(setup["integration"]["PayloadFormatVersion"], "2.0");
    assert_eq!(setup["integration"]["IntegrationType"], "AWS_PROXY");
    assert_eq!(setup["stage"]["StageName"], "$default");
    assert_eq!(setup["stage"]["AutoDeploy"], true);
    assert_eq!(setup["get_routes"].as_array().map(Vec::len), Some(8));
    assert_eq!(setup["get_route"], "POST /items");
    assert_eq!(setup["apis"], json!(["shop"]));
    assert_eq!(setup["page"], "3");
    assert_eq!(setup["integrations"], json!([arn]));
    assert_eq!(setup["stages"], json!([["$default", true]]));
    let errors = &setup["errors"];
    let expect = |name: &str, code: &str, status: u64, words: &str| {
        let e = &errors[name];
        assert_eq!((e[0].as_str(), e[1].as_u64()), (Some(code), Some(status)), "{name}: {e}");
        assert!(e[2].as_str().unwrap_or_default().contains(words), "{name}: {e}");
    };
    expect("duplicate", "ConflictException", 409, "GET /items/{id}");
    expect("v1", "BadRequestException", 400, "1.0 is not supported");
    expect("missing", "NotFoundException", 404, "zzzzzzzzzz");
    expect("bad_key", "BadRequestException", 400, "Invalid route key");
    expect("bad_target", "BadRequestException", 400, "no integration nope");
    expect("cors", "BadRequestException", 400, "corsConfiguration");
    expect("in_use", "ConflictException", 409, "delete them");
    expect("update", "UnknownOperationException", 404, "PATCH /v2/apis/");
    for (name, words) in
        [("malformed", "Invalid request body"), ("wrong_type", "invalid type"), ("no_protocol", "protocolType")]
    {
        let e = &errors[name];
        assert_eq!((e[0].as_u64(), e[1].as_str()), (Some(400), Some("BadRequestException")), "{name}: {e}");
        assert!(e[2].as_str().unwrap_or_default().contains(words), "{name}: {e}");
    }

    // GET with path and query parameters, cookies and repeated headers.
    let r = curl(
        &node,
        "/items/42?x=1&x=2&q=a%20b",
        &["-H", "Cookie: s=1; t=2", "-H", "X-Multi: a", "-H", "X-Multi: b", "-A", "floe-test/1"],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let e = r.json();
    assert_eq!(e["version"], "2.0");
    assert_eq!(e["routeKey"], "GET /items/{id}");
    assert_eq!(e["rawPath"], "/items/42");
    assert_eq!(e["rawQueryString"], "x=1&x=2&q=a%20b");
    assert_eq!(e["queryStringParameters"], json!({"x": "1,2", "q": "a b"}));
    assert_eq!(e["pathParameters"], json!({"id": "42"}));
    assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
    assert_eq!(e["headers"]["x-multi"], "a,b");
    assert_eq!(e["headers"]["user-agent"], "floe-test/1");
    assert!(e["headers"].get("cookie").is_none());
    assert!(e.get("stageVariables").is_none());
    assert_eq!(e["isBase64Encoded"], false);
    let ctx = &e["requestContext"];
    assert_eq!(ctx["accountId"], common::ACCOUNT);
    assert_eq!(ctx["apiId"], api_id.as_str());
    assert_eq!(ctx["domainName"], "127.0.0.1");
    assert_eq!(ctx["stage"], "$default");
    assert_eq!(ctx["routeKey"], "GET /items/{id}");
    assert_eq!(
        ctx["http"],
        json!({"method": "GET", "path": "/items/42", "protocol": "HTTP/1.1",
                                   "sourceIp": "127.0.0.1", "userAgent": "floe-test/1"})
    );
    assert_eq!(ctx["requestId"].as_str(), r.header("apigw-requestid"), "the event's requestId is the response's");
    let time = ctx["time"].as_str().unwrap();
    assert!(time.len() == 26 && time.ends_with(" +0000"), "{time}");
    assert!(ctx["timeEpoch"].as_u64().unwrap() > 1_700_000_000_000);

    // A binary body arrives base64-encoded.
    let bytes: Vec<u8> = (0..=255).collect();
    let file = write(node.dir.path(), "bytes.bin", &bytes);
    let r =
        curl(&node, "/items", &["-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", &file]);
    let e = r.json();
    assert_eq!((e["routeKey"].as_str(), e["isBase64Encoded"].as_bool()), (Some("POST /items"), Some(true)));
    use base64::Engine;
    assert_eq!(e["body"], base64::engine::general_purpose::STANDARD.encode(&bytes));

    // Result mapping: statusCode, headers and cookies; a base64 body; a bare value.
    let r = curl(&node, "/shaped", &[]);
    assert_eq!((r.status, r.body.as_slice()), (201, b"made".as_slice()));
    assert_eq!(r.header("x-kind"), Some("shaped"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let cookies: Vec<&str> = r.headers.iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v.as_str()).collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2"]);
    let r = curl(&node, "/binary", &[]);
    assert_eq!((r.status, &r.body), (200, &bytes));
    let r = curl(&node, "/bare", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, b"just a string".as_slice()));
    assert_eq!(r.header("content-type"), Some("application/json"));

    // The gateway's own errors.
    let r = curl(&node, "/fail", &[]);
    assert_eq!((r.status, r.json()), (500, json!({"message": "Internal Server Error"})));
    let r = curl(&node, "/nothing", &[]);
    assert_eq!((r.status, r.json()), (404, json!({"message": "Not Found"})));
    assert_eq!(r.header("apigw-requestid").map(str::len), Some(16));

    // POST with a text body, DELETE, and a greedy path, with urllib.
    let u = node.boto3(&URLLIB.replace("BASE", &format!("'{}'", node.triggers)));
    assert_eq!(u["post"][0], 200);
    assert_eq!(u["post"][1]["body"], r#"{"name": "café"}"#);
    assert_eq!(u["post"][1]["isBase64Encoded"], false);
    assert_eq!(u["post"][1]["requestContext"]["http"]["method"], "POST");
    assert_eq!(u["delete"][1]["routeKey"], "DELETE /items/{id}");
    assert_eq!(u["delete"][1]["pathParameters"], json!({"id": "7"}));
    assert_eq!(u["delete"][1]["queryStringParameters"], json!({"force": "true"}));
    assert_eq!(u["put"][1]["routeKey"], "ANY /files/{path+}");
    assert_eq!(u["put"][1]["pathParameters"], json!({"path": "a/b c/d.txt"}));
    assert_eq!(u["unknown"], json!([404, r#"{"message":"Not Found"}"#]));

    // What a request through the listener costs: routing alone (404), and a warm
    // function (echo of the event).
    let l = node
        .boto3(&LATENCY.replace("BASE", &format!("'{}'", node.triggers)).replace("PATHS", "['/nothing', '/items/1']"));
    eprintln!("through the listener, median and p99 ms of 200 requests, one connection: {l}");
    assert_eq!((l["/nothing"][0].as_u64(), l["/items/1"][0].as_u64()), (Some(404), Some(200)));

    // Route changes take effect at the next request.
    let bare = setup["routes"]["GET /bare"].as_str().unwrap();
    node.boto3(&format!("apigw.delete_route(ApiId='{api_id}', RouteId='{bare}')\nout(None)"));
    assert_eq!(curl(&node, "/bare", &[]).status, 404);
    let integration = setup["integration"]["IntegrationId"].as_str().unwrap();
    let default = node.boto3(&format!(
        "out(apigw.create_route(ApiId='{api_id}', RouteKey='$default', Target='integrations/{integration}')['RouteKey'])"
    ));
    assert_eq!(default, "$default");
    let r = curl(&node, "/elsewhere", &[]);
    assert_eq!((r.status, r.json()["routeKey"].as_str()), (200, Some("$default")));
    let r = curl(&node, "/items/9", &["-I"]);
    assert_eq!(r.status, 200, "HEAD is no GET: $default serves it");

    // DeleteApi takes everything with it.
    node.boto3(&format!("apigw.delete_api(ApiId='{api_id}')\nout(None)"));
    assert_eq!(curl(&node, "/items/9", &[]).status, 404);
}

#[test]
fn aws_cli_quick_create_throttling_timeouts_and_limits() {
    let Some(node) = TestNode::start() else { return };
    let arn = create_function(&node, "quick", 10);
    create_function(&node, "sleepy", 1);
    let sleepy = node.node.functions().function_arn("sleepy");

    let api = aws_json(
        &node,
        &["apigatewayv2", "create-api", "--name", "quick", "--protocol-type", "HTTP", "--target", &arn],
    );
    let api_id = api["ApiId"].as_str().expect("ApiId").to_string();
    let routes = aws_json(&node, &["apigatewayv2", "get-routes", "--api-id", &api_id]);
    assert_eq!(routes["Items"].as_array().map(Vec::len), Some(1));
    assert_eq!(routes["Items"][0]["RouteKey"], "$default");
    assert!(routes["Items"][0]["Target"].as_str().unwrap().starts_with("integrations/"));
    let stages = aws_json(&node, &["apigatewayv2", "get-stages", "--api-id", &api_id]);
    assert_eq!(stages["Items"][0]["StageName"], "$default");
    let r = curl(&node, "/any/path?a=b", &["-X", "PUT"]);
    assert_eq!(r.status, 200);
    let e = r.json();
    assert_eq!((e["routeKey"].as_str(), e["rawPath"].as_str()), (Some("$default"), Some("/any/path")));
    assert!(e.get("pathParameters").is_none());

    // A second API by hand with the CLI: a missing function, a function timeout.
    let other = aws_json(&node, &["apigatewayv2", "create-api", "--name", "other", "--protocol-type", "HTTP"]);
    let other = other["ApiId"].as_str().unwrap();
    for (key, uri) in [("GET /ghost", "ghost"), ("GET /slow", sleepy.as_str())] {
        let i = aws_json(
            &node,
            &[
                "apigatewayv2",
                "create-integration",
                "--api-id",
                other,
                "--integration-type",
                "AWS_PROXY",
                "--integration-uri",
                uri,
                "--payload-format-version",
                "2.0",
            ],
        );
        let target = format!("integrations/{}", i["IntegrationId"].as_str().unwrap());
        aws_json(&node, &["apigatewayv2", "create-route", "--api-id", other, "--route-key", key, "--target", &target]);
    }
    let duplicate = node.aws(&["apigatewayv2", "create-route", "--api-id", other, "--route-key", "$default"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("ConflictException"));
    assert_eq!(curl(&node, "/ghost", &[]).status, 200, "no stage yet: $default of the first API serves it");
    aws_json(&node, &["apigatewayv2", "create-stage", "--api-id", other, "--stage-name", "$default", "--auto-deploy"]);
    let r = curl(&node, "/ghost", &[]);
    assert_eq!((r.status, r.json()), (500, json!({"message": "Internal Server Error"})));
    let r = curl(&node, "/slow", &[]);
    assert_eq!((r.status, r.json()), (503, json!({"message": "Service Unavailable"})));

    // Over 10 MB: refused before any function runs.
    let big = write(node.dir.path(), "big.bin", &vec![b'a'; (10 << 20) + 1]);
    let r = curl(&node, "/upload", &["-X", "POST", "--data-binary", &big]);
    assert_eq!((r.status, r.json()), (413, json!({"message": "Request Entity Too Large"})));

    // Reserved concurrency 0: throttled.
    node.node.functions().put_function_concurrency("quick", 0).unwrap();
    let r = curl(&node, "/", &[]);
    assert_eq!((r.status, r.json()), (429, json!({"message": "Too Many Requests"})));
    assert!(r.header("apigw-requestid").is_some());
}
