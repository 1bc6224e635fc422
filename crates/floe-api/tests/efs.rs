//! The EFS API through the real boto3 and aws CLI: file systems, access points,
//! policies and tags, with good input and bad, and raw signed requests for what
//! the clients would refuse to send (malformed JSON, wrong types, missing fields).

mod common;

use common::TestNode;
use serde_json::{json, Value};

/// Prelude for scripts that expect errors: `err(call)` returns
/// `[status, code, message, response]` of the ClientError a call raises.
const ERR: &str = r#"
from botocore.exceptions import ClientError
def err(f):
    try:
        f()
    except ClientError as e:
        r = e.response
        return [r['ResponseMetadata']['HTTPStatusCode'], r['Error']['Code'], r['Error'].get('Message', ''), {k: v for k, v in r.items() if k not in ('ResponseMetadata', 'Error')}]
    raise AssertionError('the call succeeded')
def status(r):
    return r['ResponseMetadata']['HTTPStatusCode']
"#;

fn script(body: &str) -> String {
    format!("{ERR}\n{body}")
}

#[track_caller]
fn assert_error(got: &Value, status: u64, code: &str, says: &str) {
    assert_eq!(got[0], status, "{got}");
    assert_eq!(got[1], code, "{got}");
    let message = got[2].as_str().unwrap_or_default();
    assert!(message.contains(says), "{code} message {message:?} should say {says:?}");
}

#[test]
fn file_systems_through_boto3() {
    let Some(node) = TestNode::start() else { return };
    let out = node.boto3(&script(
        r#"
r = efs.create_file_system(CreationToken='tok-1', PerformanceMode='generalPurpose', ThroughputMode='provisioned',
                           ProvisionedThroughputInMibps=64, Encrypted=True, Tags=[{'Key': 'Name', 'Value': 'data'}])
fs = r['FileSystemId']
res = {'create_status': status(r), 'created': {k: v for k, v in r.items() if k != 'ResponseMetadata'}}
res['again'] = err(lambda: efs.create_file_system(CreationToken='tok-1'))
res['bad_rate'] = err(lambda: efs.create_file_system(CreationToken='tok-2', ThroughputMode='provisioned', ProvisionedThroughputInMibps=5000))
res['no_rate'] = err(lambda: efs.create_file_system(CreationToken='tok-2', ThroughputMode='provisioned'))
res['bad_tag'] = err(lambda: efs.create_file_system(CreationToken='tok-2', Tags=[{'Key': 'aws:x', 'Value': 'v'}]))
others = [efs.create_file_system(CreationToken='more-%d' % i)['FileSystemId'] for i in range(3)]
res['others'] = others
res['auto_token'] = efs.create_file_system()['CreationToken'] != ''
res['all'] = [f['FileSystemId'] for f in efs.describe_file_systems()['FileSystems']]
res['by_id'] = efs.describe_file_systems(FileSystemId=fs)['FileSystems'][0]['Name']
res['by_token'] = [f['FileSystemId'] for f in efs.describe_file_systems(CreationToken='more-1')['FileSystems']]
res['by_unknown_token'] = efs.describe_file_systems(CreationToken='nobody')['FileSystems']
page = efs.describe_file_systems(MaxItems=2)
res['page'] = [len(page['FileSystems']), 'NextMarker' in page]
pages = efs.get_paginator('describe_file_systems').paginate(PaginationConfig={'PageSize': 2})
res['paginated'] = [f['FileSystemId'] for p in pages for f in p['FileSystems']]
u = efs.update_file_system(FileSystemId=fs, ThroughputMode='elastic')
res['update'] = [status(u), u['ThroughputMode'], 'ProvisionedThroughputInMibps' in u]
res['update_unknown'] = err(lambda: efs.update_file_system(FileSystemId='fs-00000000000000000', ThroughputMode='elastic'))
res['unknown'] = err(lambda: efs.describe_file_systems(FileSystemId='fs-00000000000000000'))
res['malformed_id'] = err(lambda: efs.describe_file_systems(FileSystemId='nonsense'))
d = efs.delete_file_system(FileSystemId=fs)
res['delete'] = status(d)
res['after_delete'] = err(lambda: efs.describe_file_systems(FileSystemId=fs))
res['delete_again'] = err(lambda: efs.delete_file_system(FileSystemId=fs))
res['token_free'] = efs.create_file_system(CreationToken='tok-1')['FileSystemId'] != fs
out(res)
"#,
    ));
    let created = &out["created"];
    let fs = created["FileSystemId"].as_str().expect("FileSystemId");
    assert_eq!(out["create_status"], 201);
    assert!(fs.starts_with("fs-") && fs.len() == 20, "{fs}");
    assert_eq!(created["FileSystemArn"], format!("arn:aws:elasticfilesystem:eu-west-3:123456789012:file-system/{fs}"));
    assert_eq!(created["OwnerId"], "123456789012");
    assert_eq!(created["CreationToken"], "tok-1");
    assert_eq!(created["LifeCycleState"], "available");
    assert_eq!(created["Name"], "data");
    assert_eq!(created["NumberOfMountTargets"], 0);
    assert_eq!(created["PerformanceMode"], "generalPurpose");
    assert_eq!(created["ThroughputMode"], "provisioned");
    assert_eq!(created["ProvisionedThroughputInMibps"], 64.0);
    assert_eq!(created["Encrypted"], true);
    assert_eq!(created["Tags"], json!([{"Key": "Name", "Value": "data"}]));
    assert!(created["SizeInBytes"]["Value"].is_u64(), "{created}");
    assert_eq!(created["SizeInBytes"]["ValueInStandard"], created["SizeInBytes"]["Value"]);
    // boto3 parses epoch seconds into a datetime.
    assert!(created["CreationTime"].as_str().is_some_and(|t| t.starts_with("20")), "{created}");

    assert_error(&out["again"], 409, "FileSystemAlreadyExists", "tok-1");
    assert_eq!(out["again"][3]["FileSystemId"], fs, "the error names the existing file system");
    assert_error(&out["bad_rate"], 400, "BadRequest", "ProvisionedThroughputInMibps");
    assert_error(&out["no_rate"], 400, "BadRequest", "ProvisionedThroughputInMibps");
    assert_error(&out["bad_tag"], 400, "BadRequest", "aws:");
    assert_eq!(out["auto_token"], true, "boto3 fills the idempotency token itself");
    let all: Vec<&str> = out["all"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(all.len(), 5);
    assert_eq!(out["by_id"], "data");
    assert_eq!(out["by_token"], json!([out["others"][1]]));
    assert_eq!(out["by_unknown_token"], json!([]));
    assert_eq!(out["page"], json!([2, true]));
    assert_eq!(out["paginated"], out["all"], "the paginator walks every file system once, in order");
    assert_eq!(out["update"], json!([202, "elastic", false]));
    assert_error(&out["update_unknown"], 404, "FileSystemNotFound", "fs-00000000000000000");
    assert_error(&out["unknown"], 404, "FileSystemNotFound", "fs-00000000000000000");
    assert_error(&out["malformed_id"], 400, "BadRequest", "FileSystemId");
    assert_eq!(out["delete"], 204);
    assert_error(&out["after_delete"], 404, "FileSystemNotFound", fs);
    assert_error(&out["delete_again"], 404, "FileSystemNotFound", fs);
    assert_eq!(out["token_free"], true);
}

#[test]
fn access_points_through_boto3() {
    let Some(node) = TestNode::start() else { return };
    let out = node.boto3(&script(
        r#"
fs = efs.create_file_system(CreationToken='ap-fs')['FileSystemId']
res = {'fs': fs}
ap = efs.create_access_point(ClientToken='ct-1', FileSystemId=fs, PosixUser={'Uid': 1001, 'Gid': 1001, 'SecondaryGids': [2000, 2001]},
    RootDirectory={'Path': '/message', 'CreationInfo': {'OwnerUid': 1001, 'OwnerGid': 1001, 'Permissions': '750'}},
    Tags=[{'Key': 'Name', 'Value': 'messages'}])
res['create_status'] = status(ap)
res['ap'] = {k: v for k, v in ap.items() if k != 'ResponseMetadata'}
apid = ap['AccessPointId']
res['again'] = err(lambda: efs.create_access_point(ClientToken='ct-1', FileSystemId=fs, PosixUser={'Uid': 1, 'Gid': 1}))
plain = efs.create_access_point(FileSystemId=fs, PosixUser={'Uid': 0, 'Gid': 0})
res['plain'] = [plain['RootDirectory'], 'CreationInfo' in plain['RootDirectory'], plain['ClientToken'] != '']
res['by_fs'] = sorted(a['AccessPointId'] for a in efs.describe_access_points(FileSystemId=fs)['AccessPoints'])
res['by_id'] = efs.describe_access_points(AccessPointId=apid)['AccessPoints'][0]['Name']
page = efs.describe_access_points(MaxResults=1)
res['page'] = [len(page['AccessPoints']), 'NextToken' in page]
pages = efs.get_paginator('describe_access_points').paginate(PaginationConfig={'PageSize': 1})
res['paginated'] = sorted(a['AccessPointId'] for p in pages for a in p['AccessPoints'])
res['bad_path'] = err(lambda: efs.create_access_point(FileSystemId=fs, PosixUser={'Uid': 1, 'Gid': 1}, RootDirectory={'Path': '/a/../b'}))
res['deep_path'] = err(lambda: efs.create_access_point(FileSystemId=fs, PosixUser={'Uid': 1, 'Gid': 1}, RootDirectory={'Path': '/a/b/c/d/e'}))
res['bad_mode'] = err(lambda: efs.create_access_point(FileSystemId=fs, PosixUser={'Uid': 1, 'Gid': 1},
    RootDirectory={'Path': '/m', 'CreationInfo': {'OwnerUid': 1, 'OwnerGid': 1, 'Permissions': '999'}}))
res['big_uid'] = err(lambda: efs.create_access_point(FileSystemId=fs, PosixUser={'Uid': 4294967296, 'Gid': 1}))
res['no_user'] = err(lambda: efs.create_access_point(FileSystemId=fs))
res['unknown_fs'] = err(lambda: efs.create_access_point(FileSystemId='fs-00000000000000000', PosixUser={'Uid': 1, 'Gid': 1}))
res['describe_unknown'] = err(lambda: efs.describe_access_points(AccessPointId='fsap-00000000000000000'))
res['describe_unknown_fs'] = err(lambda: efs.describe_access_points(FileSystemId='fs-00000000000000000'))
res['in_use'] = err(lambda: efs.delete_file_system(FileSystemId=fs))
res['delete'] = [status(efs.delete_access_point(AccessPointId=apid)), status(efs.delete_access_point(AccessPointId=plain['AccessPointArn']))]
res['delete_again'] = err(lambda: efs.delete_access_point(AccessPointId=apid))
res['delete_fs'] = status(efs.delete_file_system(FileSystemId=fs))
out(res)
"#,
    ));
    let fs = out["fs"].as_str().unwrap();
    let ap = &out["ap"];
    let id = ap["AccessPointId"].as_str().unwrap();
    assert_eq!(out["create_status"], 200);
    assert!(id.starts_with("fsap-") && id.len() == 22, "{id}");
    assert_eq!(ap["AccessPointArn"], format!("arn:aws:elasticfilesystem:eu-west-3:123456789012:access-point/{id}"));
    assert_eq!(ap["FileSystemId"], fs);
    assert_eq!(ap["ClientToken"], "ct-1");
    assert_eq!(ap["Name"], "messages");
    assert_eq!(ap["OwnerId"], "123456789012");
    assert_eq!(ap["LifeCycleState"], "available");
    assert_eq!(ap["PosixUser"], json!({"Uid": 1001, "Gid": 1001, "SecondaryGids": [2000, 2001]}));
    assert_eq!(
        ap["RootDirectory"],
        json!({"Path": "/message", "CreationInfo": {"OwnerUid": 1001, "OwnerGid": 1001, "Permissions": "750"}})
    );
    assert_eq!(ap["Tags"], json!([{"Key": "Name", "Value": "messages"}]));
    assert_error(&out["again"], 409, "AccessPointAlreadyExists", "ct-1");
    assert_eq!(out["again"][3]["AccessPointId"], id);
    assert_eq!(out["plain"], json!([{"Path": "/"}, false, true]));
    assert_eq!(out["by_fs"].as_array().unwrap().len(), 2);
    assert!(out["by_fs"].as_array().unwrap().contains(&json!(id)));
    assert_eq!(out["by_id"], "messages");
    assert_eq!(out["page"], json!([1, true]));
    assert_eq!(out["paginated"], out["by_fs"]);
    assert_error(&out["bad_path"], 400, "BadRequest", "RootDirectory.Path");
    assert_error(&out["deep_path"], 400, "BadRequest", "RootDirectory.Path");
    assert_error(&out["bad_mode"], 400, "BadRequest", "Permissions");
    assert_error(&out["big_uid"], 400, "BadRequest", "PosixUser.Uid");
    assert_error(&out["no_user"], 400, "BadRequest", "PosixUser");
    assert_error(&out["unknown_fs"], 404, "FileSystemNotFound", "fs-00000000000000000");
    assert_error(&out["describe_unknown"], 404, "AccessPointNotFound", "fsap-00000000000000000");
    assert_error(&out["describe_unknown_fs"], 404, "FileSystemNotFound", "fs-00000000000000000");
    assert_error(&out["in_use"], 409, "FileSystemInUse", id);
    assert_eq!(out["delete"], json!([204, 204]));
    assert_error(&out["delete_again"], 404, "AccessPointNotFound", id);
    assert_eq!(out["delete_fs"], 204);
}

#[test]
fn policies_and_tags_through_boto3() {
    let Some(node) = TestNode::start() else { return };
    let out = node.boto3(&script(
        r#"
fs = efs.create_file_system(CreationToken='pol')['FileSystemId']
arn = efs.describe_file_systems(FileSystemId=fs)['FileSystems'][0]['FileSystemArn']
res = {'fs': fs}
res['none'] = err(lambda: efs.describe_file_system_policy(FileSystemId=fs))
doc = json.dumps({'Version': '2012-10-17', 'Statement': [{'Sid': 'ro', 'Effect': 'Allow', 'Principal': {'AWS': '*'},
      'Action': ['elasticfilesystem:ClientMount'], 'Resource': arn}]})
p = efs.put_file_system_policy(FileSystemId=fs, Policy=doc)
res['put'] = [status(p), p['FileSystemId'], p['Policy'] == doc]
res['described'] = efs.describe_file_system_policy(FileSystemId=fs)['Policy'] == doc
res['condition'] = err(lambda: efs.put_file_system_policy(FileSystemId=fs, Policy=json.dumps({'Statement': [{'Effect': 'Allow',
    'Principal': '*', 'Action': '*', 'Condition': {'Bool': {'aws:SecureTransport': 'true'}}}]})))
res['principal'] = err(lambda: efs.put_file_system_policy(FileSystemId=fs, Policy=json.dumps({'Statement': [{'Effect': 'Allow',
    'Principal': {'AWS': 'arn:aws:iam::123456789012:role/r'}, 'Action': '*'}]})))
res['malformed'] = err(lambda: efs.put_file_system_policy(FileSystemId=fs, Policy='{"Statement": ['))
res['unknown_fs'] = err(lambda: efs.put_file_system_policy(FileSystemId='fs-00000000000000000', Policy=doc))
res['still'] = efs.describe_file_system_policy(FileSystemId=fs)['Policy'] == doc
out(res)
"#,
    ));
    let fs = out["fs"].as_str().unwrap();
    assert_error(&out["none"], 404, "PolicyNotFound", fs);
    assert_eq!(out["put"], json!([200, fs, true]));
    assert_eq!(out["described"], true);
    assert_error(&out["condition"], 400, "InvalidPolicyException", "conditions");
    assert_error(&out["principal"], 400, "InvalidPolicyException", "Principal");
    assert_error(&out["malformed"], 400, "InvalidPolicyException", "not valid JSON");
    assert_error(&out["unknown_fs"], 404, "FileSystemNotFound", "fs-00000000000000000");
    assert_eq!(out["still"], true, "a refused policy leaves the previous one");
    // What clients enforce: read-only, root squashed.
    let name = node.node.filesystems().file_system(fs).unwrap().name;
    let info = node.node.meta().fs_by_name(&name).unwrap();
    let policy = node.node.meta().policy(info.id).unwrap();
    assert!(policy.read_only && policy.root_squash, "{policy:?}");

    let out = node.boto3(&script(&format!(
        r#"
fs = '{fs}'
res = {{}}
res['delete'] = status(efs.delete_file_system_policy(FileSystemId=fs))
res['gone'] = err(lambda: efs.describe_file_system_policy(FileSystemId=fs))
ap = efs.create_access_point(FileSystemId=fs, PosixUser={{'Uid': 1, 'Gid': 1}})['AccessPointId']
res['tag'] = status(efs.tag_resource(ResourceId=fs, Tags=[{{'Key': 'Name', 'Value': 'tagged'}}, {{'Key': 'team', 'Value': 'ml'}}, {{'Key': 'x', 'Value': '1'}}]))
res['name'] = efs.describe_file_systems(FileSystemId=fs)['FileSystems'][0]['Name']
res['listed'] = efs.list_tags_for_resource(ResourceId=fs)['Tags']
page = efs.list_tags_for_resource(ResourceId=fs, MaxResults=2)
res['page'] = [len(page['Tags']), 'NextToken' in page]
res['rest'] = efs.list_tags_for_resource(ResourceId=fs, MaxResults=2, NextToken=page['NextToken'])['Tags']
res['untag'] = status(efs.untag_resource(ResourceId=fs, TagKeys=['team', 'x']))
res['after_untag'] = efs.list_tags_for_resource(ResourceId=fs)['Tags']
efs.tag_resource(ResourceId=ap, Tags=[{{'Key': 'Name', 'Value': 'ap-name'}}])
res['ap_name'] = efs.describe_access_points(AccessPointId=ap)['AccessPoints'][0]['Name']
res['ap_tags'] = efs.list_tags_for_resource(ResourceId=ap)['Tags']
res['reserved'] = err(lambda: efs.tag_resource(ResourceId=fs, Tags=[{{'Key': 'aws:x', 'Value': 'v'}}]))
res['long_value'] = err(lambda: efs.tag_resource(ResourceId=fs, Tags=[{{'Key': 'k', 'Value': 'v' * 257}}]))
res['too_many'] = err(lambda: efs.tag_resource(ResourceId=fs, Tags=[{{'Key': 'k%d' % i, 'Value': 'v'}} for i in range(50)]))
res['unknown_fs'] = err(lambda: efs.list_tags_for_resource(ResourceId='fs-00000000000000000'))
res['unknown_ap'] = err(lambda: efs.tag_resource(ResourceId='fsap-00000000000000000', Tags=[{{'Key': 'a', 'Value': 'b'}}]))
res['bad_id'] = err(lambda: efs.list_tags_for_resource(ResourceId='fs-nothex'))
out(res)
"#
    )));
    assert_eq!(out["delete"], 200);
    assert_error(&out["gone"], 404, "PolicyNotFound", fs);
    assert_eq!(node.node.meta().policy(info.id).unwrap(), floe_meta::FsPolicy::default(), "everything allowed again");
    assert_eq!(out["tag"], 200);
    assert_eq!(out["name"], "tagged");
    assert_eq!(
        out["listed"],
        json!([{"Key": "Name", "Value": "tagged"}, {"Key": "team", "Value": "ml"}, {"Key": "x", "Value": "1"}])
    );
    assert_eq!(out["page"], json!([2, true]));
    assert_eq!(out["rest"], json!([{"Key": "x", "Value": "1"}]));
    assert_eq!(out["untag"], 200);
    assert_eq!(out["after_untag"], json!([{"Key": "Name", "Value": "tagged"}]));
    assert_eq!(out["ap_name"], "ap-name");
    assert_eq!(out["ap_tags"], json!([{"Key": "Name", "Value": "ap-name"}]));
    assert_error(&out["reserved"], 400, "BadRequest", "aws:");
    assert_error(&out["long_value"], 400, "BadRequest", "256");
    assert_error(&out["too_many"], 400, "BadRequest", "at most 50");
    assert_error(&out["unknown_fs"], 404, "FileSystemNotFound", "fs-00000000000000000");
    assert_error(&out["unknown_ap"], 404, "AccessPointNotFound", "fsap-00000000000000000");
    assert_error(&out["bad_id"], 400, "BadRequest", "ResourceId");
}

/// Runs the aws CLI; returns its JSON output, or panics with its stderr.
fn aws_ok(node: &TestNode, args: &[&str]) -> Value {
    let output = node.aws(args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "aws {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("aws {args:?} printed no JSON ({e}): {stdout}"))
    }
}

/// Runs the aws CLI expecting a refusal; returns its stderr.
fn aws_err(node: &TestNode, args: &[&str]) -> String {
    let output = node.aws(args);
    assert!(!output.status.success(), "aws {args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_aws_cli() {
    let Some(node) = TestNode::start() else { return };
    let fs =
        aws_ok(&node, &["efs", "create-file-system", "--creation-token", "cli-1", "--tags", "Key=Name,Value=from-cli"]);
    let id = fs["FileSystemId"].as_str().expect("FileSystemId").to_string();
    assert_eq!(fs["Name"], "from-cli");
    let again = aws_err(&node, &["efs", "create-file-system", "--creation-token", "cli-1"]);
    assert!(again.contains("FileSystemAlreadyExists"), "{again}");
    let listed = aws_ok(&node, &["efs", "describe-file-systems"]);
    assert_eq!(listed["FileSystems"][0]["FileSystemId"], id.as_str());

    let ap = aws_ok(
        &node,
        &[
            "efs",
            "create-access-point",
            "--file-system-id",
            &id,
            "--posix-user",
            "Uid=1001,Gid=1001",
            "--root-directory",
            "Path=/message,CreationInfo={OwnerUid=1001,OwnerGid=1001,Permissions=750}",
        ],
    );
    let ap_id = ap["AccessPointId"].as_str().expect("AccessPointId").to_string();
    assert_eq!(ap["PosixUser"], json!({"Uid": 1001, "Gid": 1001}));
    assert_eq!(ap["RootDirectory"]["CreationInfo"]["Permissions"], "750");
    let described = aws_ok(&node, &["efs", "describe-access-points", "--file-system-id", &id]);
    assert_eq!(described["AccessPoints"][0]["AccessPointId"], ap_id.as_str());
    let in_use = aws_err(&node, &["efs", "delete-file-system", "--file-system-id", &id]);
    assert!(in_use.contains("FileSystemInUse") && in_use.contains(&ap_id), "{in_use}");

    let policy = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite"]}]}"#;
    let put = aws_ok(&node, &["efs", "put-file-system-policy", "--file-system-id", &id, "--policy", policy]);
    assert_eq!(put["Policy"], policy);
    let shown = aws_ok(&node, &["efs", "describe-file-system-policy", "--file-system-id", &id]);
    assert_eq!(shown["Policy"], policy);
    let invalid = aws_err(&node, &["efs", "put-file-system-policy", "--file-system-id", &id, "--policy", "{"]);
    assert!(invalid.contains("InvalidPolicyException"), "{invalid}");
    aws_ok(&node, &["efs", "delete-file-system-policy", "--file-system-id", &id]);
    let none = aws_err(&node, &["efs", "describe-file-system-policy", "--file-system-id", &id]);
    assert!(none.contains("PolicyNotFound"), "{none}");

    aws_ok(
        &node,
        &["efs", "tag-resource", "--resource-id", &ap_id, "--tags", "Key=team,Value=ml", "Key=env,Value=dev"],
    );
    let tags = aws_ok(&node, &["efs", "list-tags-for-resource", "--resource-id", &ap_id]);
    assert_eq!(tags["Tags"], json!([{"Key": "team", "Value": "ml"}, {"Key": "env", "Value": "dev"}]));
    aws_ok(&node, &["efs", "untag-resource", "--resource-id", &ap_id, "--tag-keys", "team", "env"]);
    let tags = aws_ok(&node, &["efs", "list-tags-for-resource", "--resource-id", &ap_id]);
    assert_eq!(tags["Tags"], json!([]));

    aws_ok(&node, &["efs", "delete-access-point", "--access-point-id", &ap_id]);
    let gone = aws_err(&node, &["efs", "delete-access-point", "--access-point-id", &ap_id]);
    assert!(gone.contains("AccessPointNotFound"), "{gone}");
    aws_ok(&node, &["efs", "update-file-system", "--file-system-id", &id, "--throughput-mode", "elastic"]);
    aws_ok(&node, &["efs", "delete-file-system", "--file-system-id", &id]);
    let listed = aws_ok(&node, &["efs", "describe-file-systems"]);
    assert_eq!(listed["FileSystems"], json!([]));
}

#[test]
fn bad_requests_get_a_400_that_names_the_field() {
    let Some(node) = TestNode::start() else { return };
    let out = node.boto3(
        r#"
import urllib.request, urllib.error
from botocore.awsrequest import AWSRequest
from botocore.auth import SigV4Auth
creds = boto3.Session().get_credentials()
fs = efs.create_file_system(CreationToken='target')['FileSystemId']
def raw(method, path, body=None):
    req = AWSRequest(method=method, url=efs.meta.endpoint_url + path, data=body, headers={'Content-Type': 'application/json'})
    SigV4Auth(creds, 'elasticfilesystem', 'eu-west-3').add_auth(req)
    p = req.prepare()
    data = p.body.encode() if isinstance(p.body, str) else p.body
    r = urllib.request.Request(p.url, data=data, method=method, headers=dict(p.headers))
    try:
        resp = urllib.request.urlopen(r)
        return [resp.status, None, resp.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.headers.get('x-amzn-errortype'), e.read().decode()]
FS = '/2015-02-01/file-systems'
AP = '/2015-02-01/access-points'
cases = {
    'malformed': raw('POST', FS, '{oops'),
    'not_object': raw('POST', FS, '[1, 2]'),
    'no_token': raw('POST', FS, '{}'),
    'token_type': raw('POST', FS, '{"CreationToken": 5}'),
    'encrypted_type': raw('POST', FS, '{"CreationToken": "x", "Encrypted": "yes"}'),
    'rate_type': raw('POST', FS, '{"CreationToken": "x", "ThroughputMode": "provisioned", "ProvisionedThroughputInMibps": "fast"}'),
    'unknown_field': raw('POST', FS, '{"CreationToken": "x", "Bogus": 1}'),
    'mode': raw('POST', FS, '{"CreationToken": "x", "PerformanceMode": "turbo"}'),
    'tags_type': raw('POST', FS, '{"CreationToken": "x", "Tags": {"Key": "a"}}'),
    'tag_value_missing': raw('POST', FS, '{"CreationToken": "x", "Tags": [{"Key": "a"}]}'),
    'ap_no_fs': raw('POST', AP, '{"ClientToken": "c", "PosixUser": {"Uid": 1, "Gid": 1}}'),
    'ap_no_token': raw('POST', AP, '{"FileSystemId": "%s", "PosixUser": {"Uid": 1, "Gid": 1}}' % fs),
    'ap_uid_type': raw('POST', AP, '{"ClientToken": "c", "FileSystemId": "%s", "PosixUser": {"Uid": "abc", "Gid": 1}}' % fs),
    'ap_negative_gid': raw('POST', AP, '{"ClientToken": "c", "FileSystemId": "%s", "PosixUser": {"Uid": 1, "Gid": -1}}' % fs),
    'ap_no_gid': raw('POST', AP, '{"ClientToken": "c", "FileSystemId": "%s", "PosixUser": {"Uid": 1}}' % fs),
    'ap_groups_type': raw('POST', AP, '{"ClientToken": "c", "FileSystemId": "%s", "PosixUser": {"Uid": 1, "Gid": 1, "SecondaryGids": "1"}}' % fs),
    'ap_path_type': raw('POST', AP, '{"ClientToken": "c", "FileSystemId": "%s", "PosixUser": {"Uid": 1, "Gid": 1}, "RootDirectory": {"Path": 7}}' % fs),
    'ap_creation_partial': raw('POST', AP, '{"ClientToken": "c", "FileSystemId": "%s", "PosixUser": {"Uid": 1, "Gid": 1}, "RootDirectory": {"Path": "/a", "CreationInfo": {"OwnerUid": 1}}}' % fs),
    'ap_fs_type': raw('POST', AP, '{"ClientToken": "c", "FileSystemId": ["x"], "PosixUser": {"Uid": 1, "Gid": 1}}'),
    'policy_missing': raw('PUT', FS + '/' + fs + '/policy', '{}'),
    'policy_type': raw('PUT', FS + '/' + fs + '/policy', '{"Policy": 12}'),
    'policy_malformed_body': raw('PUT', FS + '/' + fs + '/policy', 'Policy='),
    'update_type': raw('PUT', FS + '/' + fs, '{"ThroughputMode": 3}'),
    'update_bad_id': raw('PUT', FS + '/nonsense', '{"ThroughputMode": "elastic"}'),
    'delete_bad_id': raw('DELETE', FS + '/nonsense'),
    'max_items': raw('GET', FS + '?MaxItems=abc'),
    'max_items_zero': raw('GET', FS + '?MaxItems=0'),
    'unknown_param': raw('GET', FS + '?Colour=blue'),
    'ap_max_results': raw('GET', AP + '?MaxResults=-1'),
    'tags_missing': raw('POST', '/2015-02-01/resource-tags/' + fs, '{}'),
    'tags_not_list': raw('POST', '/2015-02-01/resource-tags/' + fs, '{"Tags": "x"}'),
    'untag_no_keys': raw('DELETE', '/2015-02-01/resource-tags/' + fs),
    'wrong_method': raw('PATCH', FS),
}
out(cases)
"#,
    );
    let cases = out.as_object().expect("cases");
    let expected: &[(&str, u16, &str, &str)] = &[
        ("malformed", 400, "BadRequest", "not valid JSON"),
        ("not_object", 400, "BadRequest", "JSON object"),
        ("no_token", 400, "BadRequest", "CreationToken is required"),
        ("token_type", 400, "BadRequest", "CreationToken is a string"),
        ("encrypted_type", 400, "BadRequest", "Encrypted is a boolean"),
        ("rate_type", 400, "BadRequest", "ProvisionedThroughputInMibps is a number"),
        ("unknown_field", 400, "BadRequest", "Bogus"),
        ("mode", 400, "BadRequest", "PerformanceMode"),
        ("tags_type", 400, "BadRequest", "Tags is a list"),
        ("tag_value_missing", 400, "BadRequest", "Tags[0].Value is required"),
        ("ap_no_fs", 400, "BadRequest", "FileSystemId is required"),
        ("ap_no_token", 400, "BadRequest", "ClientToken is required"),
        ("ap_uid_type", 400, "BadRequest", "PosixUser.Uid"),
        ("ap_negative_gid", 400, "BadRequest", "PosixUser.Gid"),
        ("ap_no_gid", 400, "BadRequest", "PosixUser.Gid is required"),
        ("ap_groups_type", 400, "BadRequest", "PosixUser.SecondaryGids"),
        ("ap_path_type", 400, "BadRequest", "RootDirectory.Path is a string"),
        ("ap_creation_partial", 400, "BadRequest", "RootDirectory.CreationInfo.OwnerGid is required"),
        ("ap_fs_type", 400, "BadRequest", "FileSystemId is a string"),
        ("policy_missing", 400, "BadRequest", "Policy is required"),
        ("policy_type", 400, "BadRequest", "Policy is a string"),
        ("policy_malformed_body", 400, "BadRequest", "not valid JSON"),
        ("update_type", 400, "BadRequest", "ThroughputMode is a string"),
        ("update_bad_id", 400, "BadRequest", "FileSystemId"),
        ("delete_bad_id", 400, "BadRequest", "FileSystemId"),
        ("max_items", 400, "BadRequest", "MaxItems"),
        ("max_items_zero", 400, "BadRequest", "MaxItems"),
        ("unknown_param", 400, "BadRequest", "Colour"),
        ("ap_max_results", 400, "BadRequest", "MaxResults"),
        ("tags_missing", 400, "BadRequest", "Tags is required"),
        ("tags_not_list", 400, "BadRequest", "Tags is a list"),
        ("untag_no_keys", 400, "BadRequest", "tagKeys"),
        ("wrong_method", 404, "UnknownOperationException", "PATCH"),
    ];
    assert_eq!(cases.len(), expected.len());
    for (name, status, code, says) in expected {
        let got = &cases[*name];
        assert_eq!(got[0], *status, "{name}: {got}");
        assert_eq!(got[1], *code, "{name}: the x-amzn-errortype header: {got}");
        let body: Value = serde_json::from_str(got[2].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{name}: the body is not JSON ({e}): {got}"));
        let message = body.get("Message").or_else(|| body.get("message")).and_then(Value::as_str).unwrap_or_default();
        assert!(message.contains(says), "{name}: {message:?} should say {says:?}");
        if *code != "UnknownOperationException" {
            assert_eq!(body["ErrorCode"], *code, "{name}: {body}");
        }
    }
    // Nothing was created by any of them.
    assert_eq!(node.node.filesystems().list_file_systems().unwrap().len(), 1);
}
