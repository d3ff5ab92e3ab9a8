//! Hotswap (issue 15): configuration changes a service API applies in place
//! — today Lambda's `UpdateFunctionConfiguration` — with every template value
//! worked out from the deployed stack (physical ids, ARNs, the stack's
//! parameters and pseudo-parameters). A value that cannot be worked out
//! makes its change structural: CloudFormation deploys it.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::compare::Structural;
use super::plan::{Action, Body, Flow};
use crate::aws::cloudformation::DeployedStack;
use crate::aws::lambda::{FunctionConfig, Logging};
use crate::builder::adl;
use crate::template::globals::Globals;
use crate::template::intrinsics::{self, scalar_string as scalar, single_entry};
use crate::template::kind::ResourceKind;

/// What the deployed stack tells about itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct StackFacts {
    /// The root stack's ARN (`arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>`).
    pub(crate) stack_id: String,
    /// The root stack's parameter values.
    pub(crate) parameters: Vec<(String, String)>,
    /// Resources by full path.
    pub(crate) deployed: DeployedStack,
}

/// Why a value cannot be worked out from the deployed stack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unresolved {
    /// `Ref` or `GetAtt` of a resource that is not deployed.
    #[error("{0} is not deployed")]
    NotDeployed(String),
    /// A parameter or attribute the deployed stack does not give.
    #[error("{0} is not known from the deployed stack")]
    Unknown(String),
    /// An intrinsic accel does not work out (`Fn::If`, `Fn::ImportValue` …).
    #[error("{0} cannot be worked out from the deployed stack")]
    Intrinsic(String),
    /// A value of the wrong shape for the API.
    #[error("{0}")]
    Invalid(String),
}

/// Resolves values of one stack of the tree (`prefix`: `""` or `Child/`).
struct Scope<'a> {
    facts: &'a StackFacts,
    prefix: &'a str,
    resources: Map<String, Value>,
    parameters: Map<String, Value>,
    partition: String,
    region: String,
    account: String,
    stack_id: String,
}

impl<'a> Scope<'a> {
    fn new(facts: &'a StackFacts, prefix: &'a str, template: &Value) -> Self {
        // A nested stack's physical id is its ARN.
        let stack_id = match prefix.strip_suffix('/') {
            Some(path) => facts.deployed.get(path).map(|d| d.physical_id.clone()).unwrap_or_default(),
            None => facts.stack_id.clone(),
        };
        let part = |i: usize| stack_id.split(':').nth(i).unwrap_or_default().to_string();
        Scope {
            facts,
            prefix,
            resources: template.get("Resources").and_then(Value::as_object).cloned().unwrap_or_default(),
            parameters: template.get("Parameters").and_then(Value::as_object).cloned().unwrap_or_default(),
            partition: part(1),
            region: part(3),
            account: part(4),
            stack_id: stack_id.clone(),
        }
    }

    /// `Ref name`: a parameter, a pseudo-parameter or a resource's physical
    /// id. `None` for `AWS::NoValue`.
    fn reference(&self, name: &str) -> Result<Option<String>, Unresolved> {
        let text = match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => self.account.clone(),
            "AWS::Partition" => self.partition.clone(),
            "AWS::StackId" => self.stack_id.clone(),
            "AWS::StackName" => self.stack_id.split('/').nth(1).unwrap_or_default().to_string(),
            "AWS::URLSuffix" => {
                if self.region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" }.to_string()
            }
            _ if self.resources.contains_key(name) => self.deployed(name)?.physical_id.clone(),
            // DescribeStacks shows a NoEcho parameter as `****`; parameters
            // of nested stacks are not read.
            _ if self.no_echo(name) => return Err(Unresolved::Unknown(name.to_string())),
            _ => match self.prefix {
                "" => self.facts.parameters.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
                _ => None,
            }
            .ok_or_else(|| Unresolved::Unknown(name.to_string()))?,
        };
        Ok(Some(text))
    }

    /// Whether parameter `name` is declared `NoEcho`.
    fn no_echo(&self, name: &str) -> bool {
        let declared = self.parameters.get(name).and_then(|p| p.get("NoEcho"));
        declared
            .is_some_and(|v| v.as_bool() == Some(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
    }

    /// The deployed resource of logical id `id`. SAM's translator renames a
    /// Serverless layer to `<Id><10 hash characters>`.
    fn deployed(&self, id: &str) -> Result<&crate::aws::cloudformation::DeployedResource, Unresolved> {
        let path = format!("{}{id}", self.prefix);
        let serverless_layer = self.resources.get(id).and_then(|r| r.get("Type")).and_then(Value::as_str)
            == Some(ResourceKind::ServerlessLayer.type_name());
        let found = if serverless_layer {
            self.facts
                .deployed
                .iter()
                .find(|(p, d)| {
                    d.resource_type == ResourceKind::LambdaLayer.type_name()
                        && p.strip_prefix(&path).is_some_and(|rest| rest.len() == 10)
                })
                .map(|(_, d)| d)
        } else {
            self.facts.deployed.get(&path)
        };
        found.ok_or(Unresolved::NotDeployed(path))
    }

    /// `Fn::GetAtt id.attribute`: ARNs only.
    fn attribute(&self, id: &str, attribute: &str) -> Result<String, Unresolved> {
        let d = self.deployed(id)?;
        match attribute {
            "Arn" => d.arn(&self.partition, &self.region, &self.account),
            _ => None,
        }
        .ok_or_else(|| Unresolved::Unknown(format!("{id}.{attribute}")))
    }

    /// `value` with every intrinsic worked out; `None` for `AWS::NoValue`.
    fn resolve(&self, value: &Value) -> Result<Option<Value>, Unresolved> {
        if let Some((name, args)) = single_entry(value).filter(|_| intrinsics::is_intrinsic(value)) {
            let text = |v: Value| scalar(&v).ok_or_else(|| Unresolved::Invalid(format!("{name}: {v} is not a string")));
            return match (name, args) {
                ("Ref", Value::String(target)) => Ok(self.reference(target)?.map(Value::String)),
                ("Fn::GetAtt", _) => {
                    let (id, attribute) = match args {
                        Value::String(s) => s.split_once('.').unwrap_or((s, "")),
                        Value::Array(a) => (
                            a.first().and_then(Value::as_str).unwrap_or(""),
                            a.get(1).and_then(Value::as_str).unwrap_or(""),
                        ),
                        _ => ("", ""),
                    };
                    Ok(Some(Value::String(self.attribute(id, attribute)?)))
                }
                ("Fn::Sub", _) => {
                    let (template, variables) = match args {
                        Value::Array(a) => (a.first(), a.get(1).and_then(Value::as_object)),
                        other => (Some(other), None),
                    };
                    let template = template.and_then(Value::as_str).ok_or(Unresolved::Intrinsic(name.into()))?;
                    let mut values = HashMap::new();
                    for (k, v) in variables.into_iter().flatten() {
                        values.insert(k.clone(), self.resolve(v)?.map(text).transpose()?.unwrap_or_default());
                    }
                    let mut failure = None;
                    let done = intrinsics::substitute(template, |name| {
                        let found = match values.get(name) {
                            Some(v) => Ok(v.clone()),
                            None => match name.split_once('.') {
                                Some((id, attribute)) => self.attribute(id, attribute),
                                None => self.reference(name).map(Option::unwrap_or_default),
                            },
                        };
                        found.map_err(|e| failure = Some(e)).ok()
                    });
                    match (done, failure) {
                        (Some(done), _) => Ok(Some(Value::String(done))),
                        (None, failure) => Err(failure.unwrap_or(Unresolved::Intrinsic(name.into()))),
                    }
                }
                ("Fn::Join", Value::Array(a)) if a.len() == 2 => {
                    let delimiter = a[0].as_str().unwrap_or_default();
                    let Some(Value::Array(items)) = self.resolve(&a[1])? else {
                        return Err(Unresolved::Intrinsic(name.into()));
                    };
                    let parts = items.into_iter().map(text).collect::<Result<Vec<_>, _>>()?;
                    Ok(Some(Value::String(parts.join(delimiter))))
                }
                ("Fn::Select", Value::Array(a)) if a.len() == 2 => {
                    let index = self.resolve(&a[0])?.as_ref().and_then(scalar).and_then(|i| i.parse::<usize>().ok());
                    match (index, self.resolve(&a[1])?) {
                        (Some(i), Some(Value::Array(items))) if i < items.len() => Ok(Some(items[i].clone())),
                        _ => Err(Unresolved::Intrinsic(name.into())),
                    }
                }
                _ => Err(Unresolved::Intrinsic(name.to_string())),
            };
        }
        Ok(Some(match value {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve(v)? {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.resolve(item)?);
                }
                Value::Array(out)
            }
            other => other.clone(),
        }))
    }
}

/// The hotswap actions for `changed` (full path → properties), read from
/// the new templates by stack prefix; changes that cannot be worked out
/// from the deployed stack come back as structural, with the reason.
pub(crate) fn config_actions(
    templates: &HashMap<String, &Value>,
    changed: &BTreeMap<String, Vec<String>>,
    facts: &StackFacts,
) -> (Vec<Action>, Vec<Structural>) {
    let (mut actions, mut refused) = (Vec::new(), Vec::new());
    for (path, properties) in changed {
        let (prefix, id) = split_path(path);
        let Some(template) = templates.get(&prefix) else { continue };
        let scope = Scope::new(facts, &prefix, template);
        let action = merged_properties(template, id).map_err(Unresolved::Invalid).and_then(|props| {
            let kind = template.pointer(&format!("/Resources/{id}/Type")).and_then(Value::as_str);
            let flow = match kind.and_then(ResourceKind::of) {
                Some(ResourceKind::ServerlessFunction | ResourceKind::LambdaFunction) => {
                    function_config(&scope, id, &props, properties)?
                }
                Some(ResourceKind::ServerlessStateMachine | ResourceKind::StateMachine) => {
                    state_machine(&scope, id, &props)?
                }
                Some(
                    kind @ (ResourceKind::ServerlessApi | ResourceKind::ServerlessHttpApi | ResourceKind::HttpApi),
                ) => api(&scope, id, kind, &props)?,
                _ => return Err(Unresolved::Invalid("not hotswappable".into())),
            };
            let values = properties.iter().map(|p| (p.clone(), props.get(p).cloned().unwrap_or(Value::Null)));
            Ok(Action { resource: path.clone(), flow, hotswap: Some(values.collect()) })
        });
        match action {
            Ok(action) => actions.push(action),
            Err(e) => refused.push(Structural { what: path.clone(), why: e.to_string() }),
        }
    }
    (actions, refused)
}

/// `UpdateStateMachine` with the inline definition (`Definition` or
/// `DefinitionString`) and its `DefinitionSubstitutions`, resolved.
fn state_machine(scope: &Scope<'_>, id: &str, props: &Value) -> Result<Flow, Unresolved> {
    let invalid = |why: &str| Unresolved::Invalid(why.to_string());
    let arn = scope.deployed(id)?.physical_id.clone();
    let definition = match (props.get("Definition"), props.get("DefinitionString")) {
        (Some(definition), _) => {
            let resolved = scope.resolve(definition)?.unwrap_or_default();
            serde_json::to_string(&resolved).map_err(|e| invalid(&e.to_string()))?
        }
        (None, Some(text)) => {
            scope.resolve(text)?.as_ref().and_then(scalar).ok_or_else(|| invalid("DefinitionString is not a string"))?
        }
        (None, None) => return Err(invalid("the definition is a file (DefinitionUri), which a code sync sends")),
    };
    let mut substitutions = Vec::new();
    for (name, value) in props.get("DefinitionSubstitutions").and_then(Value::as_object).into_iter().flatten() {
        let text = scope.resolve(value)?.as_ref().and_then(scalar);
        substitutions.push((name.clone(), text.ok_or_else(|| invalid(&format!("{name} is not a string")))?));
    }
    Ok(Flow::StateMachine { arn, body: Body::Inline(definition), substitutions })
}

/// Properties from which the SAM translator adds to a Serverless API's
/// definition: with any of them, the body sent would not be what runs.
const SAM_ADDS_TO_BODY: &[&str] = &[
    "Auth",
    "Cors",
    "CorsConfiguration",
    "GatewayResponses",
    "Models",
    "Domain",
    "BinaryMediaTypes",
    "DisableExecuteApiEndpoint",
    "EndpointConfiguration",
    "OpenApiVersion",
    "ApiKeySourceType",
    "Description",
];

/// The inline definition of an API (`DefinitionBody`, or `Body` of an
/// `AWS::ApiGatewayV2::Api`), sent as the definition-file flows send it.
fn api(scope: &Scope<'_>, id: &str, kind: ResourceKind, props: &Value) -> Result<Flow, Unresolved> {
    let invalid = |why: String| Unresolved::Invalid(why);
    let serverless = kind != ResourceKind::HttpApi;
    if serverless {
        if let Some(property) = SAM_ADDS_TO_BODY.iter().find(|p| props.get(**p).is_some()) {
            return Err(invalid(format!("SAM adds {property} to its DefinitionBody")));
        }
        if let Some(function) = event_source(&scope.resources, id) {
            return Err(invalid(format!("SAM adds the events of {function} to its DefinitionBody")));
        }
    }
    let body = props.get(if serverless { "DefinitionBody" } else { "Body" });
    let body = scope.resolve(body.ok_or_else(|| invalid("it has no inline definition".into()))?)?;
    let text = serde_json::to_string(&body.unwrap_or_default()).map_err(|e| invalid(e.to_string()))?;
    let api_id = scope.deployed(id)?.physical_id.clone();
    Ok(match kind {
        ResourceKind::ServerlessApi => {
            let stage = props.get("StageName").map(|s| scope.resolve(s)).transpose()?.flatten();
            Flow::RestApi {
                id: api_id,
                body: Body::Inline(text),
                stages: stage.as_ref().and_then(scalar).into_iter().collect(),
            }
        }
        _ => Flow::HttpApi { id: api_id, body: Body::Inline(text) },
    })
}

/// A function whose events name API `id` (`RestApiId`/`ApiId: !Ref id`).
fn event_source(resources: &Map<String, Value>, id: &str) -> Option<String> {
    let reference = serde_json::json!({ "Ref": id });
    resources.iter().find_map(|(name, resource)| {
        let events = resource.pointer("/Properties/Events")?.as_object()?;
        events
            .values()
            .any(|e| {
                let props = e.get("Properties");
                props.and_then(|p| p.get("RestApiId").or_else(|| p.get("ApiId"))) == Some(&reference)
            })
            .then(|| name.clone())
    })
}

/// The properties of resource `id` of `template`, Globals merged.
pub(crate) fn merged_properties(template: &Value, id: &str) -> Result<Value, String> {
    let raw = template.pointer(&format!("/Resources/{id}")).cloned().unwrap_or_default();
    let kind = raw.get("Type").and_then(Value::as_str).unwrap_or_default();
    let globals = Globals::parse(template).map_err(|e| e.to_string())?;
    globals.merge(kind, &raw).map_err(|e| e.to_string())
}

/// Drops from `changed` the properties whose template value is the one
/// last hotswapped (the deployed template is behind, the function is not).
pub(crate) fn already_hotswapped(
    changed: &mut BTreeMap<String, Vec<String>>,
    templates: &HashMap<String, &Value>,
    hotswapped: impl Fn(&str, &str) -> Option<Value>,
) {
    for (path, properties) in changed.iter_mut() {
        let (prefix, id) = split_path(path);
        let Some(props) = templates.get(&prefix).and_then(|t| merged_properties(t, id).ok()) else { continue };
        properties.retain(|p| hotswapped(path, p) != Some(props.get(p).cloned().unwrap_or(Value::Null)));
    }
    changed.retain(|_, properties| !properties.is_empty());
}

/// Adds to `changed` the hotswapped properties whose template value is no
/// longer the one hotswapped (an edit undone: CloudFormation's template
/// says the same as the file, yet the function runs the hotswapped value).
pub(crate) fn undone(
    changed: &mut BTreeMap<String, Vec<String>>,
    templates: &HashMap<String, &Value>,
    drift: &BTreeMap<String, BTreeMap<String, Value>>,
) {
    for (path, values) in drift {
        let (prefix, id) = split_path(path);
        let Some(props) = templates.get(&prefix).and_then(|t| merged_properties(t, id).ok()) else { continue };
        for (property, value) in values {
            let now = props.get(property).cloned().unwrap_or(Value::Null);
            let properties = changed.entry(path.clone()).or_default();
            if now != *value && !properties.contains(property) {
                properties.push(property.clone());
            }
        }
    }
    changed.retain(|_, properties| !properties.is_empty());
}

/// Drops from `owed` the properties a deploy sets anyway: those whose
/// value in the new templates differs from the deployed templates' `before`.
pub(crate) fn deployed_anyway(
    owed: &mut BTreeMap<String, Vec<String>>,
    templates: &HashMap<String, &Value>,
    before: &HashMap<String, Value>,
) {
    for (path, properties) in owed.iter_mut() {
        let (prefix, id) = split_path(path);
        let new = templates.get(&prefix).and_then(|t| merged_properties(t, id).ok());
        let old = before.get(&prefix).and_then(|t| merged_properties(t, id).ok());
        let (Some(new), Some(old)) = (new, old) else { continue };
        properties.retain(|p| new.get(p) == old.get(p));
    }
    owed.retain(|_, properties| !properties.is_empty());
}

/// `("Child/", "Fn")` for `Child/Fn`, `("", "Fn")` for `Fn`.
fn split_path(path: &str) -> (String, &str) {
    match path.rsplit_once('/') {
        Some((p, id)) => (format!("{p}/"), id),
        None => (String::new(), path),
    }
}

/// The `UpdateFunctionConfiguration` of function `id` for `properties`.
fn function_config(scope: &Scope<'_>, id: &str, props: &Value, properties: &[String]) -> Result<Flow, Unresolved> {
    let serverless = scope.resources.get(id).and_then(|r| r.get("Type")).and_then(Value::as_str)
        == Some(ResourceKind::ServerlessFunction.type_name());
    if serverless && props.get("Role").is_none() && properties.iter().any(|p| p == "Tracing") {
        return Err(Unresolved::Invalid("Tracing: SAM also changes the X-Ray permissions of the role it makes".into()));
    }
    let name = scope.deployed(id)?.physical_id.clone();
    let mut config = FunctionConfig::default();
    for property in properties {
        let value = match props.get(property) {
            Some(v) => scope.resolve(v).map_err(|e| Unresolved::Invalid(format!("{property}: {e}")))?,
            None => None,
        };
        set(&mut config, property, value, &name).map_err(|why| Unresolved::Invalid(format!("{property}: {why}")))?;
    }
    let alias = match props.get("AutoPublishAlias") {
        Some(v) => scope.resolve(v)?.as_ref().and_then(scalar),
        None => None,
    };
    // The dependency layer is not in the template: a new `Layers` keeps it.
    let prefix = scope.prefix;
    let full_path = format!("{prefix}{id}");
    let adl_path = format!("{prefix}{}/{}", adl::NESTED_STACK, adl::layer_logical_id(&full_path));
    let keep_layer = scope
        .facts
        .deployed
        .iter()
        .find(|(p, d)| d.resource_type == ResourceKind::LambdaLayer.type_name() && p.starts_with(&adl_path))
        .and_then(|(_, d)| d.physical_id.rsplit_once(':').map(|(arn, _)| arn.to_string()));
    Ok(Flow::FunctionConfig { name, config, alias, keep_layer })
}

/// Sets the field of `property` from its new value (`None`: removed, so
/// Lambda's default, as CloudFormation would set it).
fn set(config: &mut FunctionConfig, property: &str, value: Option<Value>, function: &str) -> Result<(), String> {
    let number = |v: &Value| scalar(v).and_then(|s| s.parse::<i32>().ok()).ok_or(format!("{v} is not a number"));
    let text = |v: &Value| scalar(v).ok_or(format!("{v} is not a string"));
    match (property, value) {
        ("Environment", v) => {
            let variables = v.as_ref().and_then(|v| v.get("Variables")).and_then(Value::as_object);
            let pairs = variables.into_iter().flatten().map(|(k, v)| Ok((k.clone(), text(v)?)));
            config.environment = Some(pairs.collect::<Result<BTreeMap<_, _>, String>>()?);
        }
        ("Description", v) => config.description = Some(v.as_ref().map(text).transpose()?.unwrap_or_default()),
        ("MemorySize", v) => config.memory_size = Some(v.as_ref().map(number).transpose()?.unwrap_or(128)),
        ("Timeout", v) => config.timeout = Some(v.as_ref().map(number).transpose()?.unwrap_or(3)),
        ("Handler" | "Runtime", None) => return Err("removed".into()),
        ("Handler", Some(v)) => config.handler = Some(text(&v)?),
        ("Runtime", Some(v)) => config.runtime = Some(text(&v)?),
        ("Layers", v) => {
            let items = v.as_ref().map(|v| v.as_array().cloned().ok_or(format!("{v} is not a list"))).transpose()?;
            config.layers = Some(items.unwrap_or_default().iter().map(text).collect::<Result<_, _>>()?);
        }
        ("EphemeralStorage", v) => {
            let size = v.as_ref().and_then(|v| v.get("Size")).map(number).transpose()?;
            config.ephemeral_storage = Some(size.unwrap_or(512));
        }
        ("Tracing", v) => config.tracing = Some(v.as_ref().map(text).transpose()?.unwrap_or("PassThrough".into())),
        ("TracingConfig", v) => {
            let mode = v.as_ref().and_then(|v| v.get("Mode")).map(text).transpose()?;
            config.tracing = Some(mode.unwrap_or("PassThrough".into()));
        }
        ("LoggingConfig", v) => {
            let field = |name: &str| v.as_ref().and_then(|v| v.get(name)).map(text).transpose();
            config.logging = Some(Logging {
                log_format: field("LogFormat")?.unwrap_or("Text".into()),
                application_log_level: field("ApplicationLogLevel")?,
                system_log_level: field("SystemLogLevel")?,
                log_group: Some(field("LogGroup")?.unwrap_or(format!("/aws/lambda/{function}"))),
            });
        }
        (other, _) => return Err(format!("{other} is not hotswappable")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::cloudformation::DeployedResource;
    use crate::template::yaml;

    fn facts() -> StackFacts {
        let resource = |physical: &str, kind: &str| DeployedResource {
            physical_id: physical.to_string(),
            resource_type: kind.to_string(),
        };
        StackFacts {
            stack_id: "arn:aws:cloudformation:eu-west-1:111122223333:stack/blog/abc".into(),
            parameters: vec![("Stage".into(), "prod".into())],
            deployed: DeployedStack::from([
                ("Fn".into(), resource("blog-Fn-1", "AWS::Lambda::Function")),
                ("Table".into(), resource("blog-table", "AWS::DynamoDB::Table")),
                (
                    "Libsabcdefghij".into(),
                    resource("arn:aws:lambda:eu-west-1:111122223333:layer:libs:4", "AWS::Lambda::LayerVersion"),
                ),
                (
                    format!("{}/{}0123456789", adl::NESTED_STACK, adl::layer_logical_id("Fn")),
                    resource(
                        "arn:aws:lambda:eu-west-1:111122223333:layer:blog-Fn-DepLayer:2",
                        "AWS::Lambda::LayerVersion",
                    ),
                ),
            ]),
        }
    }

    const TEMPLATE: &str = "Globals:
  Function:
    Environment:
      Variables: {LEVEL: debug}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn
      Role: arn:aws:iam::111122223333:role/fn
      AutoPublishAlias: live
      Environment:
        Variables:
          TABLE: !Ref Table
          STAGE: !Ref Stage
          URL: !Sub 'https://${AWS::Region}.${AWS::URLSuffix}/${Stage}/${Fn.Arn}'
          COUNT: 3
      Layers: [!Ref Libs]
      MemorySize: '256'
      Timeout: !If [Big, 30, 3]
      Description: !GetAtt Table.StreamArn
  Libs:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: libs}
  Table:
    Type: AWS::DynamoDB::Table
";

    fn plan(properties: &[&str]) -> (Vec<Action>, Vec<Structural>) {
        let template = yaml::parse(TEMPLATE).unwrap();
        let templates = HashMap::from([(String::new(), &template)]);
        let changed = BTreeMap::from([("Fn".to_string(), properties.iter().map(|p| p.to_string()).collect())]);
        config_actions(&templates, &changed, &facts())
    }

    #[test]
    fn values_come_from_the_deployed_stack() {
        let (actions, refused) = plan(&["Environment", "Layers", "MemorySize", "Tracing"]);
        assert!(refused.is_empty(), "{refused:?}");
        let Flow::FunctionConfig { name, config, alias, keep_layer, .. } = &actions[0].flow else { panic!() };
        assert_eq!(name, "blog-Fn-1");
        assert_eq!(alias.as_deref(), Some("live"));
        assert_eq!(keep_layer.as_deref(), Some("arn:aws:lambda:eu-west-1:111122223333:layer:blog-Fn-DepLayer"));
        let environment = config.environment.clone().unwrap();
        assert_eq!(environment["TABLE"], "blog-table");
        assert_eq!(environment["STAGE"], "prod");
        assert_eq!(environment["LEVEL"], "debug", "Globals are merged");
        assert_eq!(environment["COUNT"], "3");
        assert_eq!(
            environment["URL"],
            "https://eu-west-1.amazonaws.com/prod/arn:aws:lambda:eu-west-1:111122223333:function:blog-Fn-1"
        );
        assert_eq!(config.layers, Some(vec!["arn:aws:lambda:eu-west-1:111122223333:layer:libs:4".to_string()]));
        assert_eq!(config.memory_size, Some(256));
        assert_eq!(config.tracing.as_deref(), Some("PassThrough"), "a removed property gets Lambda's default");
        assert_eq!(config.timeout, None, "only changed properties are sent");
    }

    #[test]
    fn what_cannot_be_worked_out_is_structural() {
        let (actions, refused) = plan(&["Timeout"]);
        assert!(actions.is_empty());
        assert_eq!(refused[0].to_string(), "Fn: Timeout: Fn::If cannot be worked out from the deployed stack");
        let (_, refused) = plan(&["Description"]);
        assert_eq!(refused[0].to_string(), "Fn: Description: Table.StreamArn is not known from the deployed stack");
        let (_, refused) = plan(&["Handler"]);
        assert_eq!(refused[0].to_string(), "Fn: Handler: removed");
    }

    #[test]
    fn an_api_body_sam_adds_to_is_structural() {
        let template = yaml::parse(
            "Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties: {StageName: dev, DefinitionBody: {openapi: '3.0'}}
  Secured:
    Type: AWS::Serverless::Api
    Properties: {StageName: dev, DefinitionBody: {openapi: '3.0'}, Auth: {DefaultAuthorizer: AWS_IAM}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /, Method: get}}
",
        )
        .unwrap();
        let templates = HashMap::from([(String::new(), &template)]);
        let body = vec!["DefinitionBody".to_string()];
        let changed = BTreeMap::from([
            ("Api".to_string(), body.clone()),
            ("Secured".to_string(), body),
            ("Fn".to_string(), vec!["Tracing".to_string()]),
        ]);
        let (actions, refused) = config_actions(&templates, &changed, &facts());
        assert!(actions.is_empty());
        let reasons: Vec<String> = refused.iter().map(ToString::to_string).collect();
        assert_eq!(
            reasons,
            [
                "Api: SAM adds the events of Fn to its DefinitionBody",
                "Fn: Tracing: SAM also changes the X-Ray permissions of the role it makes",
                "Secured: SAM adds Auth to its DefinitionBody"
            ]
        );
    }

    #[test]
    fn a_no_echo_parameter_is_not_read_from_the_stack() {
        let template = yaml::parse(
            "Parameters:
  Secret: {Type: String, NoEcho: true}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties: {Environment: {Variables: {SECRET: !Ref Secret}}}
",
        )
        .unwrap();
        let templates = HashMap::from([(String::new(), &template)]);
        let mut stack = facts();
        stack.parameters.push(("Secret".into(), "****".into()));
        let changed = BTreeMap::from([("Fn".to_string(), vec!["Environment".to_string()])]);
        let (actions, refused) = config_actions(&templates, &changed, &stack);
        assert!(actions.is_empty());
        assert_eq!(refused[0].to_string(), "Fn: Environment: Secret is not known from the deployed stack");
    }
}
