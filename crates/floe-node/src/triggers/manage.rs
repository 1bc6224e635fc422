//! The management operations, with API Gateway v2's rules and messages.

use super::model::{
    check_description, check_name, check_tags, new_id, not_found, Api, Apis, Integration, NewApi, NewIntegration,
    NewRoute, NewStage, Result, Route, Stage, TriggerError, DEFAULT_STAGE, MAX_INTEGRATION_TIMEOUT_MS,
    MIN_INTEGRATION_TIMEOUT_MS, PAYLOAD_FORMAT,
};
use super::{clock, RouteKey, Triggers};
use crate::Deployment;

fn bad(message: impl Into<String>) -> TriggerError {
    TriggerError::BadRequest(message.into())
}

impl Triggers {
    /// CreateApi. With a target (quick create) it also makes the integration, the
    /// route (default `$default`) and the `$default` stage.
    pub fn create_api(&self, new: NewApi) -> Result<Api> {
        if new.protocol != "HTTP" {
            return Err(bad(format!("Invalid protocolType '{}': floe serves HTTP APIs only (HTTP)", new.protocol)));
        }
        check_name(&new.name)?;
        check_description(&new.description)?;
        check_tags(&new.tags)?;
        let quick = match (&new.target, &new.route_key) {
            (None, Some(_)) => return Err(bad("routeKey is only for quick create: give a target with it")),
            (None, None) => None,
            (Some(target), key) => {
                function_name(&self.inner.deployment, target)?;
                let key = RouteKey::parse(key.as_deref().unwrap_or("$default")).map_err(bad)?;
                Some((target.clone(), key))
            }
        };
        self.update(|apis| {
            let now = clock::now_ms();
            let mut api = Api {
                id: fresh_api_id(apis),
                name: new.name.clone(),
                description: new.description.clone(),
                created_ms: now,
                tags: new.tags.clone(),
                integrations: Vec::new(),
                routes: Vec::new(),
                stages: Vec::new(),
            };
            if let Some((target, key)) = &quick {
                apis.check_route_key_free(key)?;
                let integration = Integration {
                    id: api.fresh_id(),
                    uri: target.clone(),
                    payload_format_version: PAYLOAD_FORMAT.into(),
                    timeout_ms: MAX_INTEGRATION_TIMEOUT_MS,
                    description: None,
                };
                let route = Route {
                    id: api.fresh_id(),
                    key: key.text().to_string(),
                    integration: Some(integration.id.clone()),
                };
                api.integrations.push(integration);
                api.routes.push(route);
                api.stages.push(Stage {
                    name: DEFAULT_STAGE.into(),
                    description: None,
                    created_ms: now,
                    updated_ms: now,
                });
            }
            apis.apis.push(api.clone());
            Ok(api)
        })
    }

    pub fn get_api(&self, api_id: &str) -> Result<Api> {
        Ok(self.load()?.0.get(api_id)?.clone())
    }

    /// Every API, oldest first.
    pub fn list_apis(&self) -> Result<Vec<Api>> {
        Ok(self.load()?.0.apis)
    }

    /// DeleteApi: the API with its integrations, routes and stages.
    pub fn delete_api(&self, api_id: &str) -> Result<Api> {
        self.update(|apis| {
            let i = apis.apis.iter().position(|a| a.id == api_id).ok_or_else(|| not_found("API", api_id))?;
            Ok(apis.apis.remove(i))
        })
    }

    pub fn create_integration(&self, api_id: &str, new: NewIntegration) -> Result<Integration> {
        if new.integration_type != "AWS_PROXY" {
            return Err(bad(format!(
                "Invalid integrationType '{}': floe serves AWS_PROXY integrations with Lambda functions only",
                new.integration_type
            )));
        }
        let uri =
            new.uri.clone().ok_or_else(|| bad("integrationUri is required: the Lambda function's ARN or name"))?;
        function_name(&self.inner.deployment, &uri)?;
        match new.payload_format_version.as_deref() {
            None | Some(PAYLOAD_FORMAT) => {}
            Some("1.0") => {
                return Err(bad(
                    "payloadFormatVersion 1.0 is not supported: floe sends API Gateway payload format 2.0 events; \
                     use 2.0",
                ))
            }
            Some(other) => return Err(bad(format!("Invalid payloadFormatVersion '{other}': use 2.0"))),
        }
        let timeout_ms = new.timeout_ms.unwrap_or(MAX_INTEGRATION_TIMEOUT_MS);
        if !(MIN_INTEGRATION_TIMEOUT_MS..=MAX_INTEGRATION_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(bad(format!(
                "Invalid timeoutInMillis {timeout_ms}: it must be between {MIN_INTEGRATION_TIMEOUT_MS} and \
                 {MAX_INTEGRATION_TIMEOUT_MS}"
            )));
        }
        if let Some(method) = new.method.as_deref().filter(|m| *m != "POST") {
            return Err(bad(format!("Invalid integrationMethod '{method}': Lambda proxy integrations use POST")));
        }
        check_description(&new.description)?;
        self.update(|apis| {
            let api = apis.get_mut(api_id)?;
            let integration = Integration {
                id: api.fresh_id(),
                uri: uri.clone(),
                payload_format_version: PAYLOAD_FORMAT.into(),
                timeout_ms,
                description: new.description.clone(),
            };
            api.integrations.push(integration.clone());
            Ok(integration)
        })
    }

    pub fn get_integration(&self, api_id: &str, integration_id: &str) -> Result<Integration> {
        Ok(self.load()?.0.get(api_id)?.integration(integration_id)?.clone())
    }

    pub fn list_integrations(&self, api_id: &str) -> Result<Vec<Integration>> {
        Ok(self.load()?.0.get(api_id)?.integrations.clone())
    }

    /// DeleteIntegration; refused while a route targets it.
    pub fn delete_integration(&self, api_id: &str, integration_id: &str) -> Result<Integration> {
        self.update(|apis| {
            let api = apis.get_mut(api_id)?;
            api.integration(integration_id)?;
            let users: Vec<&str> = api
                .routes
                .iter()
                .filter(|r| r.integration.as_deref() == Some(integration_id))
                .map(|r| r.key.as_str())
                .collect();
            if !users.is_empty() {
                return Err(TriggerError::Conflict(format!(
                    "Integration {integration_id} is the target of route(s) {}: delete them or change their target first",
                    users.join(", ")
                )));
            }
            let i = api.integrations.iter().position(|i| i.id == integration_id).expect("checked above");
            Ok(api.integrations.remove(i))
        })
    }

    pub fn create_route(&self, api_id: &str, new: NewRoute) -> Result<Route> {
        let key = RouteKey::parse(&new.key).map_err(bad)?;
        self.update(|apis| {
            let integration = match &new.target {
                None => None,
                Some(target) => {
                    let id = target.strip_prefix("integrations/").ok_or_else(|| {
                        bad(format!("Invalid target '{target}': a route's target is integrations/<integrationId>"))
                    })?;
                    let api = apis.get(api_id)?;
                    api.integration(id)
                        .map_err(|_| bad(format!("Invalid target '{target}': API {api_id} has no integration {id}")))?;
                    Some(id.to_string())
                }
            };
            apis.get(api_id)?;
            apis.check_route_key_free(&key)?;
            let api = apis.get_mut(api_id)?;
            let route = Route { id: api.fresh_id(), key: key.text().to_string(), integration };
            api.routes.push(route.clone());
            Ok(route)
        })
    }

    pub fn get_route(&self, api_id: &str, route_id: &str) -> Result<Route> {
        Ok(self.load()?.0.get(api_id)?.route(route_id)?.clone())
    }

    pub fn list_routes(&self, api_id: &str) -> Result<Vec<Route>> {
        Ok(self.load()?.0.get(api_id)?.routes.clone())
    }

    pub fn delete_route(&self, api_id: &str, route_id: &str) -> Result<Route> {
        self.update(|apis| {
            let api = apis.get_mut(api_id)?;
            api.route(route_id)?;
            let i = api.routes.iter().position(|r| r.id == route_id).expect("checked above");
            Ok(api.routes.remove(i))
        })
    }

    /// CreateStage: floe serves one stage, `$default`, and deploys every change at
    /// once (auto-deploy).
    pub fn create_stage(&self, api_id: &str, new: NewStage) -> Result<Stage> {
        if new.name != DEFAULT_STAGE {
            return Err(bad(format!(
                "Invalid stageName '{}': floe serves the $default stage only (requests reach it at the listener's \
                 root)",
                new.name
            )));
        }
        if new.auto_deploy == Some(false) {
            return Err(bad(
                "autoDeploy false is not supported: floe deploys every change at once; omit it or use true",
            ));
        }
        check_description(&new.description)?;
        self.update(|apis| {
            let api = apis.get_mut(api_id)?;
            if api.stage(&new.name).is_ok() {
                return Err(TriggerError::Conflict(format!("Stage {} already exists in API {api_id}", new.name)));
            }
            let now = clock::now_ms();
            let stage = Stage {
                name: new.name.clone(),
                description: new.description.clone(),
                created_ms: now,
                updated_ms: now,
            };
            api.stages.push(stage.clone());
            Ok(stage)
        })
    }

    pub fn get_stage(&self, api_id: &str, name: &str) -> Result<Stage> {
        Ok(self.load()?.0.get(api_id)?.stage(name)?.clone())
    }

    pub fn list_stages(&self, api_id: &str) -> Result<Vec<Stage>> {
        Ok(self.load()?.0.get(api_id)?.stages.clone())
    }

    pub fn delete_stage(&self, api_id: &str, name: &str) -> Result<Stage> {
        self.update(|apis| {
            let api = apis.get_mut(api_id)?;
            api.stage(name)?;
            let i = api.stages.iter().position(|s| s.name == name).expect("checked above");
            Ok(api.stages.remove(i))
        })
    }
}

fn fresh_api_id(apis: &Apis) -> String {
    loop {
        let id = new_id(10);
        if apis.get(&id).is_err() {
            return id;
        }
    }
}

/// The function an integration URI names: a function name, a Lambda function ARN
/// of this deployment, or API Gateway's invocation URI wrapping one
/// (`arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<arn>/invocations`).
pub(crate) fn function_name(deployment: &Deployment, uri: &str) -> Result<String> {
    let wrapped = format!("arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/", deployment.region);
    let uri = match uri.strip_prefix(wrapped.as_str()) {
        Some(rest) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    let name = if uri.starts_with("arn:") {
        let resource = deployment.resource("lambda", uri).ok_or_else(|| {
            bad(format!(
                "Invalid integration URI '{uri}': not a Lambda function ARN of this deployment \
                 (arn:aws:lambda:{}:{}:function:<name>)",
                deployment.region, deployment.account_id
            ))
        })?;
        let name = resource
            .strip_prefix("function:")
            .ok_or_else(|| bad(format!("Invalid integration URI '{uri}': not a function ARN")))?;
        if name.contains(':') {
            return Err(bad(format!(
                "Invalid integration URI '{uri}': floe routes to a function's $LATEST; remove the qualifier"
            )));
        }
        name
    } else {
        uri
    };
    floe_lambda::model::validate_name(name).map_err(|_| {
        bad(format!(
            "Invalid integration URI '{uri}': a function name is 1 to 64 letters, digits, - or _, or give its ARN"
        ))
    })?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integration_uris_name_functions_of_the_deployment() {
        let d = Deployment { region: "eu-west-3".into(), account_id: "123456789012".into() };
        let arn = "arn:aws:lambda:eu-west-3:123456789012:function:echo";
        assert_eq!(function_name(&d, "echo").unwrap(), "echo");
        assert_eq!(function_name(&d, arn).unwrap(), "echo");
        let wrapped = format!("arn:aws:apigateway:eu-west-3:lambda:path/2015-03-31/functions/{arn}/invocations");
        assert_eq!(function_name(&d, &wrapped).unwrap(), "echo");
        for bad in [
            "arn:aws:lambda:us-east-1:123456789012:function:echo",
            "arn:aws:lambda:eu-west-3:123456789012:function:echo:prod",
            "arn:aws:lambda:eu-west-3:123456789012:layer:x",
            "no spaces",
            "",
        ] {
            assert!(matches!(function_name(&d, bad), Err(TriggerError::BadRequest(_))), "{bad}");
        }
    }
}
