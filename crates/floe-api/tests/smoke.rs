//! The node and its listeners start, and a request reaches the API.
mod common;

#[test]
fn an_unknown_operation_gets_an_aws_shaped_404() {
    let Some(node) = common::TestNode::start() else { return };
    let out = node.boto3(
        "import urllib.request, urllib.error\n\
         try:\n    urllib.request.urlopen(ENDPOINT + '/nothing-here')\n    out(None)\n\
         except urllib.error.HTTPError as e:\n    out([e.code, e.headers.get('x-amzn-errortype')])\n"
            .replace("ENDPOINT", &format!("'{}'", node.endpoint))
            .as_str(),
    );
    assert_eq!(out, serde_json::json!([404, "UnknownOperationException"]));
}

/// Load balancers probe `GET /health` unsigned; signed operations stay signed.
#[test]
fn health_answers_unsigned_while_operations_need_a_signature() {
    let Some(node) = common::TestNode::start() else { return };
    let out = node.boto3(
        "import urllib.request, urllib.error\n\
         r = urllib.request.urlopen(ENDPOINT + '/health')\n\
         health = [r.status, json.loads(r.read())]\n\
         try:\n    urllib.request.urlopen(ENDPOINT + '/2015-03-31/functions/')\n    out(None)\n\
         except urllib.error.HTTPError as e:\n    out([health, e.code])\n"
            .replace("ENDPOINT", &format!("'{}'", node.endpoint))
            .as_str(),
    );
    assert_eq!(out, serde_json::json!([[200, {"status": "ok"}], 403]));
}
