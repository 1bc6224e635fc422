//! `floe route ...`: HTTP routes to functions, as API Gateway HTTP API routes of an
//! API (`floe` unless `--api` names another), served by `floe up`'s trigger listener.

use anyhow::{bail, Result};
use clap::Subcommand;
use floe_node::triggers::{Api, NewApi, NewIntegration, NewRoute, NewStage, RouteKey, DEFAULT_STAGE};
use floe_node::{Deployment, Triggers};

use crate::config::DataDir;

#[derive(Subcommand)]
pub enum RouteCommand {
    /// Send the requests of a route to a function; creates the API if needed.
    Create {
        /// `METHOD /path` (with `{param}` and a last `{proxy+}`), `ANY /path`, or `$default`.
        key: String,
        /// The function's name.
        #[arg(long)]
        function: String,
        /// The API to add the route to (created when missing).
        #[arg(long, default_value = "floe")]
        api: String,
    },
    /// List the routes of every API.
    List,
    /// Delete a route, by its id or its key (`'POST /messages'`).
    Delete { route: String },
}

pub fn run(paths: &DataDir, command: RouteCommand) -> Result<()> {
    let triggers = Triggers::new(paths.meta()?, None, Deployment::default());
    match command {
        RouteCommand::Create { key, function, api } => create(&triggers, &key, &function, &api),
        RouteCommand::List => list(&triggers),
        RouteCommand::Delete { route } => delete(&triggers, &route),
    }
}

fn create(triggers: &Triggers, key: &str, function: &str, api_name: &str) -> Result<()> {
    // Check the key before creating anything for it.
    RouteKey::parse(key).map_err(anyhow::Error::msg)?;
    let existing = triggers.list_apis()?.into_iter().find(|a| a.name == api_name);
    let api = match existing {
        Some(api) => api,
        None => triggers.create_api(NewApi { name: api_name.into(), protocol: "HTTP".into(), ..NewApi::default() })?,
    };
    if !api.is_deployed() {
        triggers.create_stage(&api.id, NewStage { name: DEFAULT_STAGE.into(), ..NewStage::default() })?;
    }
    let integration = match api.integrations.iter().find(|i| i.uri == function) {
        Some(i) => i.clone(),
        None => triggers.create_integration(
            &api.id,
            NewIntegration {
                integration_type: "AWS_PROXY".into(),
                uri: Some(function.into()),
                ..NewIntegration::default()
            },
        )?,
    };
    let target = Some(format!("integrations/{}", integration.id));
    let route = triggers.create_route(&api.id, NewRoute { key: key.into(), target })?;
    println!("{}\t{}\t-> {function}\t(API {} {})", route.id, route.key, api.name, api.id);
    Ok(())
}

fn list(triggers: &Triggers) -> Result<()> {
    println!("{:<9} {:<12} {:<16} {:<32} FUNCTION", "ROUTE", "API_ID", "API", "KEY");
    for api in triggers.list_apis()? {
        for route in &api.routes {
            let function = route
                .integration
                .as_ref()
                .and_then(|id| api.integrations.iter().find(|i| &i.id == id))
                .map_or("-", |i| i.uri.as_str());
            let stage = if api.is_deployed() { "" } else { " (no $default stage: not served)" };
            println!("{:<9} {:<12} {:<16} {:<32} {function}{stage}", route.id, api.id, api.name, route.key);
        }
    }
    Ok(())
}

fn delete(triggers: &Triggers, what: &str) -> Result<()> {
    // A key matches whatever its parameters are named; keys are unique in a deployment.
    let shape = RouteKey::parse(what).ok().map(|k| k.shape());
    let found = |api: &Api| {
        api.routes
            .iter()
            .find(|r| r.id == what || shape.is_some() && RouteKey::parse(&r.key).ok().map(|k| k.shape()) == shape)
            .cloned()
    };
    let Some((api, route)) = triggers.list_apis()?.into_iter().find_map(|a| found(&a).map(|r| (a, r))) else {
        bail!("no route {what:?} (see floe route list)");
    };
    triggers.delete_route(&api.id, &route.id)?;
    println!("deleted route {} ({}) of API {} {}", route.id, route.key, api.name, api.id);
    Ok(())
}
