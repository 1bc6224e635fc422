//! The triggers service through its public API: the management rules, route
//! changes seen by another node at its next request, API Gateway's precedence
//! between the routes of several APIs with a real function, and the cost of
//! routing a request.

use std::sync::Arc;
use std::time::Instant;

use floe_meta::{Meta, SqliteStore};
use floe_node::triggers::{HttpRequest, NewApi, NewIntegration, NewRoute, NewStage, TriggerError};
use floe_node::{Deployment, Node, NodeSettings, Triggers};

fn deployment() -> Deployment {
    Deployment { region: "eu-west-3".into(), account_id: "123456789012".into() }
}

fn meta(dir: &std::path::Path) -> Meta {
    Meta::new(SqliteStore::open(&dir.join("meta.db")).expect("sqlite"))
}

fn http_api(name: &str) -> NewApi {
    NewApi { name: name.into(), protocol: "HTTP".into(), ..NewApi::default() }
}

fn lambda(uri: &str) -> NewIntegration {
    NewIntegration { integration_type: "AWS_PROXY".into(), uri: Some(uri.into()), ..NewIntegration::default() }
}

fn route(key: &str, integration: &str) -> NewRoute {
    NewRoute { key: key.into(), target: Some(format!("integrations/{integration}")) }
}

fn default_stage() -> NewStage {
    NewStage { name: "$default".into(), ..NewStage::default() }
}

fn get(path: &str) -> HttpRequest {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        query: query.into(),
        protocol: "HTTP/1.1".into(),
        headers: vec![("host".into(), "localhost:9001".into())],
        ..HttpRequest::default()
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn management_rules() {
    let dir = tempfile::tempdir().unwrap();
    let t = Triggers::new(meta(dir.path()), None, deployment());
    let api = t.create_api(http_api("shop")).unwrap();
    assert_eq!(api.id.len(), 10);
    assert!(api.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{}", api.id);
    let i = t.create_integration(&api.id, lambda("arn:aws:lambda:eu-west-3:123456789012:function:web")).unwrap();
    assert_eq!((i.payload_format_version.as_str(), i.timeout_ms), ("2.0", 30_000));
    let r = t.create_route(&api.id, route("GET /items/{id}", &i.id)).unwrap();
    assert_eq!(r.target().as_deref(), Some(format!("integrations/{}", i.id).as_str()));

    let bad = |e: TriggerError| match e {
        TriggerError::BadRequest(m) => m,
        other => panic!("expected BadRequest, got {other:?}"),
    };
    let mut v1 = lambda("web");
    v1.payload_format_version = Some("1.0".into());
    assert!(bad(t.create_integration(&api.id, v1).unwrap_err()).contains("1.0 is not supported"));
    let http = NewIntegration { integration_type: "HTTP_PROXY".into(), ..lambda("web") };
    assert!(bad(t.create_integration(&api.id, http).unwrap_err()).contains("AWS_PROXY"));
    assert!(bad(t.create_route(&api.id, route("GET items", &i.id)).unwrap_err()).contains("Invalid route key"));
    assert!(bad(t.create_route(&api.id, route("GET /x", "nope")).unwrap_err()).contains("no integration nope"));
    let ws = NewApi { protocol: "WEBSOCKET".into(), ..http_api("ws") };
    assert!(bad(t.create_api(ws).unwrap_err()).contains("HTTP APIs only"));
    let stage = NewStage { auto_deploy: Some(false), ..default_stage() };
    assert!(bad(t.create_stage(&api.id, stage).unwrap_err()).contains("autoDeploy"));
    let prod = NewStage { name: "prod".into(), ..default_stage() };
    assert!(bad(t.create_stage(&api.id, prod).unwrap_err()).contains("$default"));

    // A route key is unique in the deployment, parameter names aside.
    let other = t.create_api(http_api("other")).unwrap();
    let j = t.create_integration(&other.id, lambda("web")).unwrap();
    for key in ["GET /items/{id}", "GET /items/{name}"] {
        match t.create_route(&other.id, route(key, &j.id)) {
            Err(TriggerError::Conflict(m)) => assert!(m.contains(&r.id), "{m}"),
            x => panic!("{key}: expected a conflict, got {x:?}"),
        }
    }
    t.create_route(&other.id, route("ANY /items/{id}", &j.id)).expect("another method is another key");

    // An integration in use stays; a stage exists once; unknown ids are NotFound.
    assert!(matches!(t.delete_integration(&api.id, &i.id), Err(TriggerError::Conflict(_))));
    t.create_stage(&api.id, default_stage()).unwrap();
    assert!(matches!(t.create_stage(&api.id, default_stage()), Err(TriggerError::Conflict(_))));
    assert!(matches!(t.get_route(&api.id, "nothing"), Err(TriggerError::NotFound(_))));
    assert!(matches!(t.get_api("0123456789"), Err(TriggerError::NotFound(_))));
    t.delete_route(&api.id, &r.id).unwrap();
    t.delete_integration(&api.id, &i.id).unwrap();

    // Quick create makes the integration, the route and the stage.
    let quick = NewApi { target: Some("web".into()), route_key: Some("POST /hooks".into()), ..http_api("q") };
    let q = t.create_api(quick).unwrap();
    assert_eq!(q.routes.len(), 1);
    assert_eq!(q.routes[0].key, "POST /hooks");
    assert_eq!(q.routes[0].integration.as_deref(), Some(q.integrations[0].id.as_str()));
    assert_eq!(q.stages[0].name, "$default");
    let again = NewApi { target: Some("web".into()), route_key: Some("POST /hooks".into()), ..http_api("q2") };
    assert!(matches!(t.create_api(again), Err(TriggerError::Conflict(_))));
    t.delete_api(&q.id).unwrap();
    let names: Vec<String> = t.list_apis().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["shop", "other"]);
}

/// Two processes on one metadata engine: what one changes, the other serves at its
/// next request. Neither runs functions, so a matched route answers 500 and an
/// unmatched one 404.
#[test]
fn a_route_change_on_one_node_is_served_by_another_at_its_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Triggers::new(meta(dir.path()), None, deployment());
    let managing = Triggers::new(meta(dir.path()), None, deployment());
    block_on(async {
        assert_eq!(serving.serve(get("/hello")).await.status, 404);
        let api = managing.create_api(http_api("a")).unwrap();
        let i = managing.create_integration(&api.id, lambda("web")).unwrap();
        let r = managing.create_route(&api.id, route("GET /hello", &i.id)).unwrap();
        assert_eq!(serving.serve(get("/hello")).await.status, 404, "no $default stage yet");
        managing.create_stage(&api.id, default_stage()).unwrap();
        let response = serving.serve(get("/hello")).await;
        assert_eq!(response.status, 500, "served, but this process runs no functions");
        assert_eq!(response.body.as_ref(), br#"{"message":"Internal Server Error"}"#);
        assert_eq!(response.header("apigw-requestid").map(str::len), Some(16));
        managing.delete_route(&api.id, &r.id).unwrap();
        let response = serving.serve(get("/hello")).await;
        assert_eq!((response.status, response.body.as_ref()), (404, br#"{"message":"Not Found"}"#.as_ref()));
    });
}

/// What routing costs a request: reading the record (one row) and, when its
/// revision moved, parsing it again.
#[test]
fn routing_cost() {
    let dir = tempfile::tempdir().unwrap();
    let t = Triggers::new(meta(dir.path()), None, deployment());
    for a in 0..5 {
        let api = t.create_api(http_api(&format!("api{a}"))).unwrap();
        let i = t.create_integration(&api.id, lambda("web")).unwrap();
        for r in 0..20 {
            t.create_route(&api.id, route(&format!("GET /a{a}/r{r}/{{id}}"), &i.id)).unwrap();
        }
        t.create_stage(&api.id, default_stage()).unwrap();
    }
    block_on(async {
        let n = 2000;
        let started = Instant::now();
        for _ in 0..n {
            assert_eq!(t.serve(get("/nothing/here")).await.status, 404);
        }
        let cached = started.elapsed() / n;
        let started = Instant::now();
        let api = t.list_apis().unwrap()[0].id.clone();
        let m = 50;
        for k in 0..m {
            let stage = t.delete_stage(&api, "$default").unwrap();
            t.create_stage(&api, NewStage { name: stage.name, ..default_stage() }).unwrap();
            assert_eq!(t.serve(get(&format!("/nothing/{k}"))).await.status, 404);
        }
        let changed = started.elapsed() / m;
        eprintln!(
            "routing a request over 100 routes in 5 APIs: {:.1} µs at an unchanged revision; \
             {:.1} µs per (2 route changes + 1 request)",
            cached.as_secs_f64() * 1e6,
            changed.as_secs_f64() * 1e6
        );
    });
}

const ECHO: &str = "def handler(event, context):\n    return {'routeKey': event['routeKey'], \
                    'params': event.get('pathParameters'), 'api': event['requestContext']['apiId']}\n";

/// API Gateway's precedence between routes of two APIs, with a real function.
#[test]
fn precedence_across_apis_with_a_real_function() {
    if !nix::unistd::geteuid().is_root() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true but functions need root");
        eprintln!("skipped: functions need root for their sandboxes");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        std::fs::create_dir_all(dir.path().join("objects")).unwrap();
        let objects =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path().join("objects")).unwrap());
        let mut settings = NodeSettings::new(dir.path().join("node"), deployment());
        settings.functions.prepared_sandboxes = 1;
        let node = Node::open(meta(dir.path()), objects, settings).await.expect("node");
        let code = tempfile::tempdir().unwrap();
        std::fs::write(code.path().join("app.py"), ECHO).unwrap();
        let package = floe_lambda::code::Package::from_dir(code.path(), &Default::default()).unwrap();
        let fn_settings = floe_lambda::Settings {
            runtime: Some("python3.12".into()),
            handler: Some("app.handler".into()),
            ..Default::default()
        };
        node.functions().create_function("echo", fn_settings, package).await.expect("function");

        let t = node.triggers();
        let mut api_of = std::collections::HashMap::new();
        for (name, keys) in [
            ("pets", &["GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}"][..]),
            ("catchall", &["ANY /pets/dog/{id}", "ANY /{proxy+}", "$default"][..]),
        ] {
            let api = t.create_api(http_api(name)).unwrap();
            let i = t.create_integration(&api.id, lambda("echo")).unwrap();
            for key in keys {
                t.create_route(&api.id, route(key, &i.id)).unwrap();
                api_of.insert(key.to_string(), api.id.clone());
            }
            t.create_stage(&api.id, default_stage()).unwrap();
        }
        let table = [
            ("GET", "/pets/dog/1", "GET /pets/dog/1", serde_json::Value::Null),
            ("GET", "/pets/dog/7", "GET /pets/dog/{id}", serde_json::json!({"id": "7"})),
            ("PUT", "/pets/dog/7", "ANY /pets/dog/{id}", serde_json::json!({"id": "7"})),
            ("GET", "/pets/cat/7", "GET /pets/{proxy+}", serde_json::json!({"proxy": "cat/7"})),
            ("POST", "/pets/cat", "ANY /{proxy+}", serde_json::json!({"proxy": "pets/cat"})),
            ("GET", "/", "$default", serde_json::Value::Null),
        ];
        for (method, path, key, params) in table {
            let response = t.serve(HttpRequest { method: method.into(), ..get(path) }).await;
            assert_eq!(response.status, 200, "{method} {path}: {:?}", response.body);
            let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(body["routeKey"], key, "{method} {path}");
            assert_eq!(body["params"], params, "{method} {path}");
            assert_eq!(body["api"], api_of[key].as_str(), "{method} {path}");
        }
        node.shutdown();
    });
}
