//! The Lambda API through the real boto3 and aws CLI: every operation with good
//! input, and every class of bad input answered with a 4xx in Lambda's shape.
mod common;

use common::TestNode;
use serde_json::{json, Value};

const HELPERS: &str = include_str!("common/lambda_helpers.py");

fn script(node: &TestNode, body: &str) -> Value {
    node.boto3(&format!("{HELPERS}\n{body}"))
}

#[test]
fn functions_are_created_read_listed_updated_invoked_and_deleted() {
    let Some(node) = TestNode::start() else { return };
    let out = script(
        &node,
        r#"
r = create('demo', Description='first', MemorySize=256, Environment={'Variables': {'GREETING': 'hello'}})
assert r['ResponseMetadata']['HTTPStatusCode'] == 201, r
assert r['FunctionArn'] == 'arn:aws:lambda:eu-west-3:123456789012:function:demo', r['FunctionArn']
assert (r['State'], r['LastUpdateStatus'], r['PackageType'], r['Version']) == ('Active', 'Successful', 'Zip', '$LATEST'), r
created = r

g = lam.get_function(FunctionName='demo')
assert g['Configuration']['Environment'] == {'Variables': {'GREETING': 'hello'}}, g
assert g['Code']['RepositoryType'] == 'S3' and 'Concurrency' not in g, g
with urllib.request.urlopen(g['Code']['Location']) as resp:
    package = resp.read()
import hashlib
assert base64.b64encode(hashlib.sha256(package).digest()).decode() == created['CodeSha256']
assert zipfile.ZipFile(io.BytesIO(package)).read('app.py').decode() == HANDLER

# Every way of naming the function reaches it; another version does not exist.
for name in ['demo', 'demo:$LATEST', '123456789012:function:demo', created['FunctionArn'],
             created['FunctionArn'] + ':$LATEST']:
    assert lam.get_function_configuration(FunctionName=name)['FunctionName'] == 'demo', name
assert lam.get_function_configuration(FunctionName='demo', Qualifier='$LATEST')['FunctionName'] == 'demo'
missing = [error_of(lam.get_function, FunctionName=n) for n in
           ['demo:prod', 'nothing', 'arn:aws:lambda:us-east-1:123456789012:function:demo', '999999999999:function:demo']]

r = lam.invoke(FunctionName='demo', Payload=json.dumps({'n': 1}), LogType='Tail',
               ClientContext=base64.b64encode(json.dumps({'custom': {'k': 'v'}}).encode()).decode())
assert r['StatusCode'] == 200 and 'FunctionError' not in r, r
sync = json.loads(r['Payload'].read())
tail = base64.b64decode(r['LogResult']).decode()
assert r['ExecutedVersion'] == '$LATEST', r
assert r['ResponseMetadata']['HTTPHeaders']['x-amzn-requestid'], r
failed = lam.invoke(FunctionName='demo', Payload=json.dumps({'fail': True}))
failure = [failed['StatusCode'], failed.get('FunctionError'), json.loads(failed['Payload'].read())]
event = lam.invoke(FunctionName='demo', InvocationType='Event', Payload=b'{"n": 2}')
dry = lam.invoke(FunctionName='demo', InvocationType='DryRun')
qualified = lam.invoke(FunctionName='demo:$LATEST', Payload=b'')

lam.update_function_code(FunctionName='demo', ZipFile=zip_of({'app.py': HANDLER.replace("'version': 1", "'version': 2")}))
u = lam.update_function_configuration(FunctionName='demo', MemorySize=512, Timeout=30, Description='second',
        Environment={'Variables': {'GREETING': 'bonjour'}}, EphemeralStorage={'Size': 1024})
assert (u['MemorySize'], u['Timeout'], u['Description'], u['EphemeralStorage']) == (512, 30, 'second', {'Size': 1024}), u
stale = error_of(lam.update_function_configuration, FunctionName='demo', Description='x', RevisionId='not-current')
lam.update_function_configuration(FunctionName='demo', Description='third', RevisionId=u['RevisionId'])
after = json.loads(lam.invoke(FunctionName='demo', Payload=b'{}')['Payload'].read())

for n in ['b-fn', 'a-fn', 'c-fn']:
    create(n)
pages, marker = [], None
while True:
    kw = {'MaxItems': 2}
    if marker:
        kw['Marker'] = marker
    page = lam.list_functions(**kw)
    pages.append([f['FunctionName'] for f in page['Functions']])
    marker = page.get('NextMarker')
    if not marker:
        break
settings = lam.get_account_settings()

d = lam.delete_function(FunctionName='demo')
gone = error_of(lam.get_function, FunctionName='demo')
again = error_of(lam.delete_function, FunctionName='demo')
out({'missing': missing, 'sync': sync, 'tail': tail, 'failure': failure, 'event': event['StatusCode'],
     'dry': dry['StatusCode'], 'qualified': json.loads(qualified['Payload'].read())['event'], 'stale': stale,
     'after': after, 'pages': pages, 'settings': settings['AccountUsage'], 'limit': settings['AccountLimit'],
     'deleted': d['ResponseMetadata']['HTTPStatusCode'], 'gone': gone, 'again': again})
"#,
    );
    for e in out["missing"].as_array().unwrap() {
        assert_eq!(e[0], 404, "{e}");
        assert_eq!(e[1], "ResourceNotFoundException", "{e}");
    }
    assert!(out["missing"][0][2].as_str().unwrap().contains("demo:prod"), "{}", out["missing"][0]);
    assert_eq!(out["sync"]["event"], json!({"n": 1}));
    assert_eq!(out["sync"]["function"], "demo");
    assert_eq!(out["sync"]["memory"], "256");
    assert_eq!(out["sync"]["greeting"], "hello");
    assert_eq!(out["sync"]["custom"], json!({"k": "v"}));
    let tail = out["tail"].as_str().unwrap();
    assert!(tail.contains("handling {\"n\": 1}"), "{tail}");
    let report = tail.lines().find(|l| l.starts_with("REPORT RequestId: ")).unwrap_or_else(|| panic!("{tail}"));
    for field in ["Duration: ", "Billed Duration: ", "Memory Size: 256 MB", "Max Memory Used: "] {
        assert!(report.contains(field), "{report}");
    }
    assert_eq!(out["failure"][0], 200);
    assert_eq!(out["failure"][1], "Unhandled");
    assert_eq!(out["failure"][2]["errorType"], "ValueError");
    assert_eq!(out["failure"][2]["errorMessage"], "asked to fail");
    assert_eq!(out["event"], 202);
    assert_eq!(out["dry"], 204);
    assert_eq!(out["qualified"], json!({}));
    assert_eq!(out["stale"][0], 412, "{}", out["stale"]);
    assert_eq!(out["stale"][1], "PreconditionFailedException");
    assert_eq!(out["after"]["version"], 2);
    assert_eq!(out["after"]["greeting"], "bonjour");
    assert_eq!(out["after"]["memory"], "512");
    assert_eq!(out["pages"], json!([["a-fn", "b-fn"], ["c-fn", "demo"]]));
    assert_eq!(out["settings"]["FunctionCount"], 4);
    assert!(out["settings"]["TotalCodeSize"].as_u64().unwrap() > 0);
    assert_eq!(out["limit"]["ConcurrentExecutions"], 1000);
    assert_eq!(out["limit"]["UnreservedConcurrentExecutions"], 1000);
    assert_eq!(out["limit"]["CodeSizeZipped"], 50 * 1024 * 1024);
    assert_eq!(out["deleted"], 204);
    assert_eq!(out["gone"][1], "ResourceNotFoundException");
    assert_eq!(out["again"][1], "ResourceNotFoundException");
}

#[test]
fn reserved_and_provisioned_concurrency() {
    let Some(node) = TestNode::start() else { return };
    let out = script(
        &node,
        r#"
create('busy')
none = lam.get_function_concurrency(FunctionName='busy')
put = lam.put_function_concurrency(FunctionName='busy', ReservedConcurrentExecutions=0)
got = lam.get_function_concurrency(FunctionName='busy')
in_get = lam.get_function(FunctionName='busy').get('Concurrency')
throttled = error_of(lam.invoke, FunctionName='busy', Payload=b'{}')
throttled_event = error_of(lam.invoke, FunctionName='busy', InvocationType='Event', Payload=b'{}')
unreserved = lam.get_account_settings()['AccountLimit']['UnreservedConcurrentExecutions']
too_many = error_of(lam.put_function_concurrency, FunctionName='busy', ReservedConcurrentExecutions=1000)
deleted = lam.delete_function_concurrency(FunctionName='busy')['ResponseMetadata']['HTTPStatusCode']
works = lam.invoke(FunctionName='busy', Payload=b'{}')['StatusCode']

lam.put_function_concurrency(FunctionName='busy', ReservedConcurrentExecutions=5)
p = lam.put_provisioned_concurrency_config(FunctionName='busy', Qualifier='$LATEST', ProvisionedConcurrentExecutions=2)
status = p['ResponseMetadata']['HTTPStatusCode']
deadline = time.time() + 60
while True:
    g = lam.get_provisioned_concurrency_config(FunctionName='busy', Qualifier='$LATEST')
    if g['Status'] == 'READY' or time.time() > deadline:
        break
    time.sleep(0.1)
over_reserved = error_of(lam.put_provisioned_concurrency_config, FunctionName='busy', Qualifier='$LATEST',
                         ProvisionedConcurrentExecutions=6)
other_version = error_of(lam.get_provisioned_concurrency_config, FunctionName='busy', Qualifier='1')
del_status = lam.delete_provisioned_concurrency_config(FunctionName='busy', Qualifier='$LATEST')['ResponseMetadata']['HTTPStatusCode']
after = error_of(lam.get_provisioned_concurrency_config, FunctionName='busy', Qualifier='$LATEST')
out({'none': {k: v for k, v in none.items() if k != 'ResponseMetadata'}, 'put': put['ReservedConcurrentExecutions'],
     'got': got['ReservedConcurrentExecutions'], 'in_get': in_get, 'throttled': throttled,
     'throttled_event': throttled_event, 'unreserved': unreserved, 'too_many': too_many, 'deleted': deleted,
     'works': works, 'status': status, 'requested': p['RequestedProvisionedConcurrentExecutions'],
     'ready': [g['Status'], g['AvailableProvisionedConcurrentExecutions'], g['AllocatedProvisionedConcurrentExecutions']],
     'over_reserved': over_reserved, 'other_version': other_version, 'del_status': del_status, 'after': after})
"#,
    );
    assert_eq!(out["none"], json!({}));
    assert_eq!(out["put"], 0);
    assert_eq!(out["got"], 0);
    assert_eq!(out["in_get"], json!({"ReservedConcurrentExecutions": 0}));
    for key in ["throttled", "throttled_event"] {
        let e = &out[key];
        assert_eq!(e[0], 429, "{e}");
        assert_eq!(e[1], "TooManyRequestsException", "{e}");
        assert_eq!(e[3], "ReservedFunctionConcurrentInvocationLimitExceeded", "{e}");
    }
    assert_eq!(out["unreserved"], 1000);
    assert_eq!(out["too_many"][1], "InvalidParameterValueException");
    assert_eq!(out["deleted"], 204);
    assert_eq!(out["works"], 200);
    assert_eq!(out["status"], 202);
    assert_eq!(out["requested"], 2);
    assert_eq!(out["ready"], json!(["READY", 2, 2]));
    assert_eq!(out["over_reserved"][1], "InvalidParameterValueException");
    assert_eq!(out["other_version"][1], "ResourceNotFoundException");
    assert_eq!(out["del_status"], 204);
    assert_eq!(out["after"][0], 404);
    assert_eq!(out["after"][1], "ProvisionedConcurrencyConfigNotFoundException");
}

/// Asserts `[status, code, message, ...]` and that the message mentions `words`.
fn assert_error(out: &Value, case: &str, status: u16, code: &str, words: &[&str]) {
    let e = &out[case];
    assert_eq!(e[0], status, "{case}: {e}");
    assert_eq!(e[1], code, "{case}: {e}");
    let message = e[2].as_str().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "{case}: {word:?} not in {message:?}");
    }
}

#[test]
fn bad_input_gets_a_4xx_that_says_what_to_fix() {
    let Some(node) = TestNode::start() else { return };
    let out = script(
        &node,
        r#"
create('target')
P = '/2015-03-31/functions'
full = lambda **kw: json.dumps(dict(dict(FunctionName='x', Role=ROLE, Runtime=RUNTIME, Handler='app.handler',
                                         Code={'ZipFile': base64.b64encode(zip_of({'app.py': HANDLER})).decode()}), **kw))
AP = 'arn:aws:elasticfilesystem:eu-west-3:123456789012:access-point/fsap-0123456789abcdef0'
c = {}
c['not_json'] = raw_error('POST', P, '{"FunctionName": ')
c['not_object'] = raw_error('POST', P, '[1, 2]')
c['unknown'] = raw_error('POST', P, full(Colour='blue'))
c['wrong_type'] = raw_error('POST', P, full(MemorySize='big'))
c['negative'] = raw_error('POST', P, full(Timeout=-3))
c['missing'] = raw_error('POST', P, json.dumps({'FunctionName': 'x', 'Runtime': RUNTIME}))
c['empty'] = raw_error('POST', P, '')
c['s3'] = error_of(create, 'x', Code={'S3Bucket': 'bucket', 'S3Key': 'key'})
c['not_base64'] = raw_error('POST', P, full(Code={'ZipFile': '***'}))
c['not_zip'] = error_of(create, 'x', Code={'ZipFile': b'not a zip'})
c['memory'] = error_of(create, 'x', client=lax, MemorySize=64)
c['timeout'] = error_of(create, 'x', Timeout=901)
c['runtime'] = error_of(create, 'x', client=lax, Runtime='cobol1.0')
c['name'] = error_of(create, 'bad name!', client=lax)
c['role'] = error_of(create, 'x', client=lax, Role='not-a-role')
c['duplicate'] = error_of(create, 'target')
c['publish'] = error_of(create, 'x', Publish=True)
c['reserved_env'] = error_of(create, 'x', Environment={'Variables': {'AWS_REGION': 'x'}})
c['fs_malformed'] = error_of(create, 'x', FileSystemConfigs=[{'Arn': 'arn:aws:elasticfilesystem:eu-west-3:123456789012:nothing', 'LocalMountPath': '/mnt/data'}])
c['fs_missing'] = error_of(create, 'x', FileSystemConfigs=[{'Arn': AP, 'LocalMountPath': '/mnt/data'}])
c['fs_two'] = error_of(create, 'x', FileSystemConfigs=[{'Arn': AP, 'LocalMountPath': '/mnt/a'}, {'Arn': AP, 'LocalMountPath': '/mnt/b'}])
c['fs_update'] = error_of(lam.update_function_configuration, FunctionName='target', FileSystemConfigs=[{'Arn': 'fsap-nothing', 'LocalMountPath': '/mnt/data'}])
c['update_unknown'] = raw_error('PUT', P + '/target/configuration', '{"Memory": 256}')
c['update_memory'] = error_of(lax.update_function_configuration, FunctionName='target', MemorySize=20000)
c['update_code_s3'] = error_of(lam.update_function_code, FunctionName='target', S3Bucket='bucket', S3Key='key')
c['update_code_none'] = raw_error('PUT', P + '/target/code', '{}')
c['update_missing'] = error_of(lam.update_function_configuration, FunctionName='nothing', Timeout=5)
c['sync_large'] = error_of(lam.invoke, FunctionName='target', Payload=b'"' + b'a' * (6 * 1024 * 1024) + b'"')
c['async_large'] = error_of(lam.invoke, FunctionName='target', InvocationType='Event', Payload=b'"' + b'a' * (256 * 1024) + b'"')
c['bad_payload'] = error_of(lam.invoke, FunctionName='target', Payload=b'{not json')
c['bad_type'] = raw_error('POST', P + '/target/invocations', '{}', {'X-Amz-Invocation-Type': 'Sometimes'})
c['bad_log'] = raw_error('POST', P + '/target/invocations', '{}', {'X-Amz-Log-Type': 'Head'})
c['bad_context'] = error_of(lam.invoke, FunctionName='target', ClientContext='!!not base64!!', Payload=b'{}')
c['max_items'] = raw_error('GET', P + '?MaxItems=0')
c['bad_concurrency'] = raw_error('PUT', '/2017-10-31/functions/target/concurrency', '{"ReservedConcurrentExecutions": -1}')
c['no_concurrency'] = raw_error('PUT', '/2017-10-31/functions/target/concurrency', '{}')
c['no_qualifier'] = raw_error('GET', '/2019-09-30/functions/target/provisioned-concurrency')
c['zero_provisioned'] = raw_error('PUT', '/2019-09-30/functions/target/provisioned-concurrency?Qualifier=%24LATEST', '{"ProvisionedConcurrentExecutions": 0}')
c['bad_arn'] = raw_error('GET', P + '/a%3Ab%3Ac%3Ad%3Ae')
c['method'] = raw_error('PATCH', P)
out(c)
"#,
    );
    let bad = "InvalidRequestContentException";
    let invalid = "InvalidParameterValueException";
    assert_error(&out, "not_json", 400, bad, &["Could not parse request body"]);
    assert_error(&out, "not_object", 400, bad, &[]);
    assert_error(&out, "unknown", 400, bad, &["Colour"]);
    assert_error(&out, "wrong_type", 400, bad, &["MemorySize", "\"big\""]);
    assert_error(&out, "negative", 400, bad, &["Timeout"]);
    assert_error(&out, "missing", 400, invalid, &["missing: Role, Code, Handler"]);
    assert_error(&out, "empty", 400, invalid, &["missing: FunctionName, Role, Code, Runtime, Handler"]);
    assert_error(&out, "s3", 400, invalid, &["Code.S3Bucket", "only Code.ZipFile"]);
    assert_error(&out, "not_base64", 400, bad, &["base64"]);
    assert_error(&out, "not_zip", 400, invalid, &["Could not unzip"]);
    assert_error(&out, "memory", 400, invalid, &["MemorySize"]);
    assert_error(&out, "timeout", 400, invalid, &["Timeout"]);
    assert_error(&out, "runtime", 400, invalid, &["cobol1.0"]);
    assert_error(&out, "name", 400, invalid, &["functionName"]);
    assert_error(&out, "role", 400, invalid, &["role"]);
    assert_error(&out, "duplicate", 409, "ResourceConflictException", &["target"]);
    assert_error(&out, "publish", 400, invalid, &["Publish"]);
    assert_error(&out, "reserved_env", 400, invalid, &["AWS_REGION"]);
    assert_error(&out, "fs_malformed", 400, invalid, &["not an access point"]);
    assert_error(&out, "fs_missing", 400, invalid, &["fsap-0123456789abcdef0", "does not exist"]);
    assert_error(&out, "fs_two", 400, invalid, &["at most 1"]);
    assert_error(&out, "fs_update", 400, invalid, &["fsap-nothing"]);
    assert_error(&out, "update_unknown", 400, bad, &["Memory"]);
    assert_error(&out, "update_memory", 400, invalid, &["MemorySize"]);
    assert_error(&out, "update_code_s3", 400, invalid, &["only Code.ZipFile"]);
    assert_error(&out, "update_code_none", 400, invalid, &["ZipFile"]);
    assert_error(&out, "update_missing", 404, "ResourceNotFoundException", &["nothing"]);
    assert_error(&out, "sync_large", 413, "RequestTooLargeException", &["RequestResponse"]);
    assert_error(&out, "async_large", 413, "RequestTooLargeException", &["Event"]);
    assert_error(&out, "bad_payload", 400, bad, &["json"]);
    assert_error(&out, "bad_type", 400, invalid, &["Sometimes"]);
    assert_error(&out, "bad_log", 400, invalid, &["Head"]);
    assert_error(&out, "bad_context", 400, invalid, &["Base64"]);
    assert_error(&out, "max_items", 400, invalid, &["MaxItems"]);
    assert_error(&out, "bad_concurrency", 400, bad, &["ReservedConcurrentExecutions"]);
    assert_error(&out, "no_concurrency", 400, invalid, &["ReservedConcurrentExecutions is required"]);
    assert_error(&out, "no_qualifier", 400, invalid, &["Qualifier is required"]);
    assert_error(&out, "zero_provisioned", 400, invalid, &["at least 1"]);
    assert_error(&out, "bad_arn", 400, invalid, &["a:b:c:d:e"]);
    assert_error(&out, "method", 404, "UnknownOperationException", &["PATCH"]);
}

#[test]
fn the_aws_cli_manages_and_invokes_functions() {
    let Some(node) = TestNode::start() else { return };
    let code = node.dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(
        code.join("app.py"),
        "def handler(event, context):\n    print('cli event', event)\n    return {'sum': event['a'] + event['b']}\n",
    )
    .unwrap();
    let package = floe_lambda::code::Package::from_dir(&code, &floe_lambda::Limits::default()).unwrap();
    let zip = node.dir.path().join("code.zip");
    std::fs::write(&zip, &package.zip).unwrap();
    let run = |args: &[&str]| -> Value {
        let output = node.aws(args);
        assert!(
            output.status.success(),
            "aws {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    };
    let zip_arg = format!("fileb://{}", zip.display());
    let created = run(&[
        "lambda",
        "create-function",
        "--function-name",
        "cli",
        "--runtime",
        "python3.11",
        "--handler",
        "app.handler",
        "--role",
        "arn:aws:iam::123456789012:role/floe-test",
        "--zip-file",
        &zip_arg,
        "--timeout",
        "10",
    ]);
    assert_eq!(created["FunctionName"], "cli");
    assert_eq!(created["Timeout"], 10);
    let result = node.dir.path().join("result.json");
    let result_arg = result.display().to_string();
    let invoked = run(&[
        "lambda",
        "invoke",
        "--function-name",
        "cli",
        "--payload",
        r#"{"a": 2, "b": 3}"#,
        "--log-type",
        "Tail",
        &result_arg,
    ]);
    assert_eq!(invoked["StatusCode"], 200);
    assert_eq!(invoked["ExecutedVersion"], "$LATEST");
    assert_eq!(serde_json::from_slice::<Value>(&std::fs::read(&result).unwrap()).unwrap(), json!({"sum": 5}));
    use base64::Engine;
    let tail = base64::engine::general_purpose::STANDARD.decode(invoked["LogResult"].as_str().unwrap()).unwrap();
    let tail = String::from_utf8_lossy(&tail);
    assert!(tail.contains("cli event {'a': 2, 'b': 3}") && tail.contains("REPORT RequestId:"), "{tail}");
    let got = run(&["lambda", "get-function", "--function-name", "cli"]);
    assert_eq!(got["Configuration"]["Handler"], "app.handler");
    let listed = run(&["lambda", "list-functions"]);
    assert_eq!(listed["Functions"][0]["FunctionName"], "cli");
    let reserved =
        run(&["lambda", "put-function-concurrency", "--function-name", "cli", "--reserved-concurrent-executions", "3"]);
    assert_eq!(reserved["ReservedConcurrentExecutions"], 3);
    let settings = run(&["lambda", "get-account-settings"]);
    assert_eq!(settings["AccountLimit"]["UnreservedConcurrentExecutions"], 997);
    assert_eq!(settings["AccountUsage"]["FunctionCount"], 1);
    let refused = node.aws(&["lambda", "update-function-configuration", "--function-name", "cli", "--timeout", "1000"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("InvalidParameterValueException") && stderr.contains("Timeout"), "{stderr}");
    run(&["lambda", "delete-function", "--function-name", "cli"]);
    let gone = node.aws(&["lambda", "get-function", "--function-name", "cli"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("ResourceNotFoundException"));
}
