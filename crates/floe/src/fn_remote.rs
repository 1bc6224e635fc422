//! `floe fn ...` through a running node: each command becomes one call of the node's
//! Lambda API (signed with the deployment's key), so it uses the node's warm
//! environments, mounts and limits, and prints what the in-process path prints.

use std::io::Write;

use anyhow::{bail, Context, Result};
use base64::Engine;
use floe_api::client::{Client, ClientError, InvocationType};
use floe_lambda::Settings;
use serde_json::{json, Value};

use crate::config::DataDir;
use crate::fn_cmd::{read_payload, FnCommand};
use crate::node_config::NodeFile;

fn api_error(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Api { code, message, .. } => anyhow::anyhow!("{code}: {message}"),
        other => anyhow::anyhow!("{other}"),
    }
}

fn encode(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

struct Remote {
    client: Client,
    node: NodeFile,
}

impl Remote {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if text.is_empty() { &[] } else { &[("content-type", "application/json")] };
        let response = self.client.request(method, path, headers, text.as_bytes()).map_err(api_error)?;
        if let Some(e) = response.error() {
            return Err(api_error(e));
        }
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&response.body).context("the node answered something that is not JSON")
    }

    /// A mount source as the API takes it: an access point id becomes its ARN.
    fn access_point_arn(&self, source: &str) -> String {
        if source.starts_with("fsap-") {
            let deployment =
                floe_node::Deployment { region: self.node.region.clone(), account_id: self.node.account_id.clone() };
            deployment.arn("elasticfilesystem", &format!("access-point/{source}"))
        } else {
            source.to_string()
        }
    }

    /// The settings as `CreateFunction` / `UpdateFunctionConfiguration` members.
    fn settings_json(&self, s: Settings) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        if let Some(v) = s.runtime {
            put("Runtime", v.into());
        }
        if let Some(v) = s.handler {
            put("Handler", v.into());
        }
        if let Some(v) = s.memory_mb {
            put("MemorySize", v.into());
        }
        if let Some(v) = s.timeout_s {
            put("Timeout", v.into());
        }
        if let Some(v) = s.ephemeral_mb {
            put("EphemeralStorage", json!({ "Size": v }));
        }
        if let Some(v) = s.environment {
            put("Environment", json!({ "Variables": v }));
        }
        if let Some(mounts) = s.mounts {
            let list: Vec<Value> = mounts
                .into_iter()
                .map(|m| json!({ "Arn": self.access_point_arn(&m.source), "LocalMountPath": m.local_mount_path }))
                .collect();
            put("FileSystemConfigs", list.into());
        }
        if let Some(v) = s.description {
            put("Description", v.into());
        }
        if let Some(v) = s.role {
            put("Role", v.into());
        }
        m
    }
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON prints"));
}

pub fn run(paths: &DataDir, node: NodeFile, command: FnCommand) -> Result<()> {
    let meta = paths.meta()?;
    let key = crate::credentials::load(&meta)?.context("the running node's credentials are not in its metadata")?;
    let client = Client::new(&node.endpoint, key, &node.region).map_err(api_error)?;
    let remote = Remote { client, node };
    let function = |name: &str| format!("/2015-03-31/functions/{}", encode(name));
    match command {
        FnCommand::Create { name, code, settings } => {
            let package = crate::fn_cmd::package(&code, &Default::default())?;
            let mut body = remote.settings_json(settings.into_settings()?);
            body.entry("Role")
                .or_insert_with(|| format!("arn:aws:iam::{}:role/floe-cli", remote.node.account_id).into());
            body.insert("FunctionName".into(), name.into());
            body.insert(
                "Code".into(),
                json!({ "ZipFile": base64::engine::general_purpose::STANDARD.encode(&package.zip) }),
            );
            print(&remote.call("POST", "/2015-03-31/functions", Some(Value::Object(body)))?);
        }
        FnCommand::Update { name, code, settings } => {
            let settings = settings.into_settings()?;
            let mut last = None;
            if let Some(code) = code {
                let package = crate::fn_cmd::package(&code, &Default::default())?;
                let zip = base64::engine::general_purpose::STANDARD.encode(&package.zip);
                last =
                    Some(remote.call("PUT", &format!("{}/code", function(&name)), Some(json!({ "ZipFile": zip })))?);
            }
            if settings != Settings::default() || last.is_none() {
                let body = Value::Object(remote.settings_json(settings));
                last = Some(remote.call("PUT", &format!("{}/configuration", function(&name)), Some(body))?);
            }
            print(&last.expect("one update was made"));
        }
        FnCommand::Invoke { name, payload, payload_file, invocation_type, log_type } => {
            let payload = read_payload(payload, payload_file)?;
            let kind = match invocation_type.as_str() {
                "RequestResponse" => InvocationType::RequestResponse,
                "Event" => InvocationType::Event,
                "DryRun" => InvocationType::DryRun,
                other => bail!(
                    "InvalidParameterValueException: 1 validation error detected: Value '{other}' at \
                     'invocationType' failed to satisfy constraint: Member must satisfy enum value set: \
                     [Event, RequestResponse, DryRun]"
                ),
            };
            let tail = crate::fn_cmd::wants_tail(log_type.as_deref())?;
            let invocation = remote.client.invoke(&name, &payload, kind, tail).map_err(api_error)?;
            if let Some(log) = &invocation.log_tail {
                std::io::stderr().write_all(log.as_bytes())?;
            }
            if kind == InvocationType::Event {
                eprintln!("accepted ({})", invocation.request_id.as_deref().unwrap_or("no request id"));
            }
            let mut out = std::io::stdout();
            out.write_all(&invocation.payload)?;
            if !invocation.payload.is_empty() {
                out.write_all(b"\n")?;
            }
            if let Some(error) = invocation.function_error {
                bail!("the function failed ({error})");
            }
        }
        FnCommand::List => {
            let mut all = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let path = match &marker {
                    Some(m) => format!("/2015-03-31/functions/?Marker={}", encode(m)),
                    None => "/2015-03-31/functions/".to_string(),
                };
                let page = remote.call("GET", &path, None)?;
                all.extend(page["Functions"].as_array().cloned().unwrap_or_default());
                match page["NextMarker"].as_str() {
                    Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                    _ => break,
                }
            }
            print(&json!({ "Functions": all }));
        }
        FnCommand::Get { name } => {
            print(&remote.call("GET", &format!("{}/configuration", function(&name)), None)?);
        }
        FnCommand::Delete { name } => {
            remote.call("DELETE", &function(&name), None)?;
        }
        FnCommand::Logs { name, tail } => {
            remote.call("GET", &format!("{}/configuration", function(&name)), None)?;
            crate::fn_cmd::print_logs(&paths.root.join("node").join("logs").join(&name), tail)?;
        }
        FnCommand::Concurrency { name, reserved, delete } => {
            let path = format!("/2017-10-31/functions/{}/concurrency", encode(&name));
            if delete {
                remote.call("DELETE", &path, None)?;
            } else if let Some(r) = reserved {
                remote.call("PUT", &path, Some(json!({ "ReservedConcurrentExecutions": r })))?;
            }
            let got = remote.call("GET", &path, None)?;
            print(&json!({ "ReservedConcurrentExecutions": got.get("ReservedConcurrentExecutions") }));
        }
    }
    Ok(())
}
