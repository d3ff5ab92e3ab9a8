//! The code-sync plan (spec §2.7–2.8): which resources to push and how,
//! decided from plain data — the template, the deployed stack, the build's
//! artifact folders and a selection — with no disk or network access, so a
//! plan can be printed and unit-tested.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::SyncError;
use crate::aws::cloudformation::DeployedStack;
use crate::aws::lambda::FunctionConfig;
use crate::builder::{Artifacts, adl};
use crate::template::kind::{ResourceKind, SyncFlow};
use crate::template::resources::{Definition, HttpApi, Layer, PackageType, RestApi, StateMachine};
use crate::template::{CodeLocation, Function, Resource, Stack};

/// Where a package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A folder to zip (a built artifact, or the source itself).
    Folder(PathBuf),
    /// A `.zip` file sent as is.
    Zip(PathBuf),
    /// Inline source, zipped as `file`.
    Inline {
        /// File name in the zip (`index.py`, `index.js`).
        file: String,
        /// The source.
        text: String,
    },
}

/// Where a definition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// A local file, sent as sam sends it (with `Fn::Sub` resolved).
    File(PathBuf),
    /// A template's inline definition, resolved from the deployed stack (hotswap).
    Inline(String),
}

/// What one action sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flow {
    /// A zip function's code.
    Function {
        /// Physical name.
        name: String,
        /// The package.
        source: Source,
        /// `AutoPublishAlias`.
        alias: Option<String>,
    },
    /// A function's configuration (hotswap): UpdateFunctionConfiguration.
    FunctionConfig {
        /// Physical name.
        name: String,
        /// What to send.
        config: FunctionConfig,
        /// `AutoPublishAlias`.
        alias: Option<String>,
        /// The function's dependency layer (ARN without version), kept when
        /// `Layers` change.
        keep_layer: Option<String>,
    },
    /// A layer: a new version, re-pointed users, the old version deleted.
    Layer {
        /// Layer ARN without version.
        arn: String,
        /// The package.
        source: Source,
        /// What the new version keeps of the template.
        runtimes: Vec<String>,
        /// Compatible architectures.
        architectures: Vec<String>,
        /// Description.
        description: Option<String>,
        /// Licence.
        license: Option<String>,
        /// The functions known to be its only users (an auto dependency
        /// layer's function); `None`: every deployed function is asked.
        users: Option<Vec<String>>,
    },
    /// A REST API definition: PutRestApi, then a deployment on its stages.
    RestApi {
        /// API id.
        id: String,
        /// The definition.
        body: Body,
        /// Stages the template names.
        stages: Vec<String>,
    },
    /// An HTTP API definition: ReimportApi.
    HttpApi {
        /// API id.
        id: String,
        /// The definition.
        body: Body,
    },
    /// A state machine definition: UpdateStateMachine.
    StateMachine {
        /// State machine ARN.
        arn: String,
        /// The definition.
        body: Body,
        /// `${Name}` → value, from `DefinitionSubstitutions`.
        substitutions: Vec<(String, String)>,
    },
}

impl Flow {
    /// The service flow this is.
    pub(crate) fn kind(&self) -> SyncFlow {
        match self {
            Flow::Function { .. } => SyncFlow::Function,
            Flow::Layer { .. } => SyncFlow::Layer,
            Flow::RestApi { .. } => SyncFlow::RestApi,
            Flow::HttpApi { .. } => SyncFlow::HttpApi,
            Flow::StateMachine { .. } => SyncFlow::StateMachine,
            Flow::FunctionConfig { .. } => SyncFlow::FunctionConfig,
        }
    }

    /// The service call that applies it.
    pub(crate) fn call(&self) -> &'static str {
        match self {
            Flow::Function { .. } => "UpdateFunctionCode",
            Flow::FunctionConfig { .. } => "UpdateFunctionConfiguration",
            Flow::Layer { .. } => "PublishLayerVersion",
            Flow::RestApi { .. } => "PutRestApi",
            Flow::HttpApi { .. } => "ReimportApi",
            Flow::StateMachine { .. } => "UpdateStateMachine",
        }
    }
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Action {
    /// Full path of the resource.
    pub(crate) resource: String,
    /// What to send.
    pub(crate) flow: Flow,
    /// For a hotswap, the template properties it applies and their values
    /// (Globals merged, intrinsics as written; null when removed): what
    /// CloudFormation is then behind on.
    pub(crate) hotswap: Option<BTreeMap<String, Value>>,
}

impl Action {
    /// A code sync's action.
    pub(crate) fn code(resource: String, flow: Flow) -> Action {
        Action { resource, flow, hotswap: None }
    }

    /// `A, B`: the properties a hotswap applies.
    fn properties(&self) -> Option<String> {
        let names: Vec<&str> = self.hotswap.as_ref()?.keys().map(String::as_str).collect();
        Some(names.join(", "))
    }

    /// The word shown next to the resource: `code`, `config (Environment)` …
    pub(crate) fn label(&self) -> String {
        let kind = self.flow.kind().label();
        match self.properties() {
            Some(names) => format!("{kind} ({names})"),
            None => kind.to_string(),
        }
    }

    /// The call, as the plan shows it: `UpdateFunctionConfiguration (Environment)`.
    pub(crate) fn call(&self) -> String {
        match self.properties() {
            Some(names) => format!("{} ({names})", self.flow.call()),
            None => self.flow.call().to_string(),
        }
    }
}

/// Why a selected resource is not synced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SkipReason {
    /// An image function.
    #[error("image functions need Docker, which accel does not use")]
    Image,
    /// Code in S3.
    #[error("its code is in S3, not local")]
    RemoteCode,
    /// Layer content in S3 or unresolved.
    #[error("its content is not local")]
    RemoteContent,
    /// A definition that is not a local file.
    #[error("its {0} is not a local file")]
    RemoteDefinition(&'static str),
    /// No definition file at all (inline `DefinitionBody` …).
    #[error("does not have {0} specified. Skipping the sync.")]
    NoDefinition(&'static str),
    /// `DefinitionSubstitutions` that the deployed stack cannot fill.
    #[error("DefinitionSubstitutions: {0}; run accel sync without --code")]
    Substitutions(SubstitutionError),
}

/// Why a `DefinitionSubstitutions` value cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubstitutionError {
    /// It names a resource that is not deployed.
    #[error("{0} is not deployed")]
    NotDeployed(String),
    /// `GetAtt Arn` of a type whose ARN cannot be built.
    #[error("cannot build the ARN of a {0}")]
    NoArn(String),
    /// Anything but a literal, `Ref` or `GetAtt X.Arn`.
    #[error("{0} is not a literal, Ref or GetAtt Arn")]
    Unsupported(String),
}

/// A selected resource that will not be synced, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// Full path of the resource.
    pub(crate) resource: String,
    /// Why.
    pub(crate) reason: SkipReason,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            SkipReason::NoDefinition(_) => write!(f, "Resource {} {}", self.resource, self.reason),
            reason => write!(f, "{}: {reason}", self.resource),
        }
    }
}

/// What a code sync will do: the actions, and the selected resources it
/// cannot sync (each named once with the reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SyncPlan {
    /// Actions, in template order.
    pub(crate) actions: Vec<Action>,
    /// Selected resources left out.
    pub(crate) skipped: Vec<Skipped>,
}

/// Plans a code sync of the resources `selected` picks.
pub(crate) fn plan(
    root: &Stack,
    deployed: &DeployedStack,
    artifacts: &Artifacts,
    selected: impl Fn(&Resource) -> bool,
) -> Result<SyncPlan, SyncError> {
    let mut plan = SyncPlan::default();
    for (stack, resource) in root.all_resources() {
        let syncable = ResourceKind::of(&resource.resource_type).and_then(ResourceKind::sync_flow).is_some();
        if !syncable || !selected(resource) {
            continue;
        }
        let path = &resource.full_path;
        let skip = |reason| Skipped { resource: path.clone(), reason };
        let physical = |path: &str| {
            deployed.get(path).map(|d| d.physical_id.clone()).ok_or_else(|| SyncError::NotDeployed(path.to_string()))
        };
        let folder = |dir: &PathBuf| Source::Folder(artifacts.folders.get(path).unwrap_or(dir).clone());
        if let Some(f) = Function::of(stack, resource) {
            let source = match (&f.package_type, &f.code) {
                (PackageType::Image, _) => {
                    plan.skipped.push(skip(SkipReason::Image));
                    continue;
                }
                (_, CodeLocation::Local { path: dir, .. }) => folder(dir),
                (_, CodeLocation::PreZipped(file)) => Source::Zip(file.clone()),
                (_, CodeLocation::Inline(text)) => {
                    let module = f.handler.as_deref().and_then(|h| h.rsplit_once('.')).map_or("index", |(m, _)| m);
                    let ext = if f.runtime.as_deref().is_some_and(|r| r.starts_with("python")) { "py" } else { "js" };
                    Source::Inline { file: format!("{module}.{ext}"), text: text.clone() }
                }
                _ => {
                    plan.skipped.push(skip(SkipReason::RemoteCode));
                    continue;
                }
            };
            // With the auto dependency layer, the dependencies travel apart.
            if let Some(layer_folder) = artifacts.dependency_layers.get(path) {
                let prefix = if stack.stack_path.is_empty() { String::new() } else { format!("{}/", stack.stack_path) };
                let layer_path = format!("{prefix}{}/{}", adl::NESTED_STACK, adl::layer_logical_id(path));
                plan.actions.push(Action::code(
                    layer_path.clone(),
                    Flow::Layer {
                        arn: layer_arn(deployed, &layer_path, false)?,
                        source: Source::Folder(layer_folder.clone()),
                        runtimes: f.runtime.clone().into_iter().collect(),
                        architectures: Vec::new(),
                        description: Some(format!("Auto created layer for dependencies of function {path}")),
                        license: None,
                        users: Some(vec![physical(path)?]),
                    },
                ));
            }
            let flow = Flow::Function { name: physical(path)?, source, alias: f.auto_publish_alias.clone() };
            plan.actions.push(Action::code(path.clone(), flow));
        } else if let Some(layer) = Layer::of(stack, resource) {
            let source = match &layer.content {
                CodeLocation::Local { path: dir, .. } => folder(dir),
                CodeLocation::PreZipped(file) => Source::Zip(file.clone()),
                _ => {
                    plan.skipped.push(skip(SkipReason::RemoteContent));
                    continue;
                }
            };
            let raw = ResourceKind::of(&resource.resource_type) == Some(ResourceKind::LambdaLayer);
            let flow = Flow::Layer {
                arn: layer_arn(deployed, path, raw)?,
                source,
                runtimes: layer.compatible_runtimes.clone(),
                architectures: layer.compatible_architectures.clone(),
                description: layer.description.clone(),
                license: layer.license_info.clone(),
                users: None,
            };
            plan.actions.push(Action::code(path.clone(), flow));
        } else if let Some(api) = RestApi::of(stack, resource) {
            match definition_file(&api.definition) {
                Ok(file) => {
                    let stages = api.stage_name.into_iter().collect();
                    let flow = Flow::RestApi { id: physical(path)?, body: Body::File(file), stages };
                    plan.actions.push(Action::code(path.clone(), flow));
                }
                Err(reason) => plan.skipped.push(skip(reason)),
            }
        } else if let Some(api) = HttpApi::of(stack, resource) {
            match definition_file(&api.definition) {
                Ok(file) => plan
                    .actions
                    .push(Action::code(path.clone(), Flow::HttpApi { id: physical(path)?, body: Body::File(file) })),
                Err(reason) => plan.skipped.push(skip(reason)),
            }
        } else if let Some(machine) = StateMachine::of(stack, resource) {
            let file = match definition_file(&machine.definition) {
                Ok(file) => file,
                Err(reason) => {
                    plan.skipped.push(skip(reason));
                    continue;
                }
            };
            let arn = physical(path)?;
            // sam refuses DefinitionSubstitutions; accel fills them in from
            // the deployed stack, as CloudFormation would.
            let substitutions = match &machine.substitutions {
                Some(Value::Object(map)) => {
                    let prefix = path.strip_suffix(resource.logical_id.as_str()).unwrap_or_default();
                    match substitutions(map, prefix, &arn, deployed) {
                        Ok(pairs) => pairs,
                        Err(e) => {
                            plan.skipped.push(skip(SkipReason::Substitutions(e)));
                            continue;
                        }
                    }
                }
                _ => Vec::new(),
            };
            let flow = Flow::StateMachine { arn, body: Body::File(file), substitutions };
            plan.actions.push(Action::code(path.clone(), flow));
        }
    }
    Ok(plan)
}

/// The local definition file, or why there is none.
fn definition_file(definition: &Definition) -> Result<PathBuf, SkipReason> {
    match definition {
        Definition::Uri(location) => {
            location.local_path().cloned().ok_or(SkipReason::RemoteDefinition("DefinitionUri"))
        }
        _ => Err(SkipReason::NoDefinition("DefinitionUri")),
    }
}

/// `DefinitionSubstitutions` values from the deployed stack: literals, `Ref`
/// (a physical id) and `Fn::GetAtt [X, Arn]` (an ARN, built for functions
/// from the state machine's own region and account).
fn substitutions(
    map: &serde_json::Map<String, Value>,
    prefix: &str,
    machine_arn: &str,
    deployed: &DeployedStack,
) -> Result<Vec<(String, String)>, SubstitutionError> {
    let target = |id: &str| deployed.get(&format!("{prefix}{id}")).ok_or(SubstitutionError::NotDeployed(id.into()));
    let mut parts = machine_arn.split(':');
    let (partition, region, account) =
        (parts.nth(1).unwrap_or("aws"), parts.nth(1).unwrap_or(""), parts.next().unwrap_or(""));
    map.iter()
        .map(|(name, value)| {
            let resolved = match value {
                Value::String(text) => text.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => match crate::template::intrinsics::single_entry(other) {
                    Some(("Ref", Value::String(id))) => target(id)?.physical_id.clone(),
                    Some(("Fn::GetAtt", Value::Array(args))) if args.get(1).and_then(Value::as_str) == Some("Arn") => {
                        let id = args.first().and_then(Value::as_str).unwrap_or_default();
                        let d = target(id)?;
                        d.arn(partition, region, account)
                            .ok_or_else(|| SubstitutionError::NoArn(d.resource_type.clone()))?
                    }
                    _ => return Err(SubstitutionError::Unsupported(name.clone())),
                },
            };
            Ok((name.clone(), resolved))
        })
        .collect()
}

/// The deployed layer's ARN without its version. SAM's translator renames a
/// Serverless layer to `<LogicalId><10 hash characters>`; a raw
/// `AWS::Lambda::LayerVersion` keeps its id.
fn layer_arn(deployed: &DeployedStack, full_path: &str, raw: bool) -> Result<String, SyncError> {
    let exact = deployed.get(full_path).filter(|_| raw);
    let translated = || {
        deployed.iter().find(|(path, d)| {
            d.resource_type == ResourceKind::LambdaLayer.type_name()
                && path.strip_prefix(full_path).is_some_and(|rest| {
                    rest.len() == 10 && rest.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
                })
        })
    };
    let version_arn = match exact {
        Some(d) => &d.physical_id,
        None => &translated().ok_or_else(|| SyncError::NotDeployed(full_path.to_string()))?.1.physical_id,
    };
    Ok(version_arn.rsplit_once(':').map_or(version_arn.as_str(), |(arn, _)| arn).to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::aws::cloudformation::DeployedResource;
    use crate::template::LoadOptions;

    fn deployed(entries: &[(&str, &str, &str)]) -> DeployedStack {
        entries
            .iter()
            .map(|(path, physical, kind)| {
                let resource = DeployedResource { physical_id: physical.to_string(), resource_type: kind.to_string() };
                (path.to_string(), resource)
            })
            .collect()
    }

    fn stack(dir: &Path, template: &str) -> Stack {
        std::fs::write(dir.join("template.yaml"), template).unwrap();
        Stack::load(&dir.join("template.yaml"), &LoadOptions::default()).unwrap()
    }

    const TEMPLATE: &str = "Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.12, AutoPublishAlias: live}
  Remote:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: s3://bucket/key.zip, Handler: app.handler, Runtime: python3.12}
  Image:
    Type: AWS::Serverless::Function
    Properties: {PackageType: Image, ImageUri: repo:tag}
  Libs:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: libs, CompatibleRuntimes: [python3.12]}
  Api:
    Type: AWS::Serverless::Api
    Properties: {StageName: dev, DefinitionUri: api.yaml}
  Inline:
    Type: AWS::Serverless::Api
    Properties: {StageName: dev, DefinitionBody: {openapi: '3.0'}}
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: machine.asl.json
      DefinitionSubstitutions: {FnArn: !GetAtt Fn.Arn, Table: !Ref Table, Fixed: 3}
  Table:
    Type: AWS::DynamoDB::Table
";

    fn cloud() -> DeployedStack {
        deployed(&[
            ("Fn", "blog-Fn-1", "AWS::Lambda::Function"),
            ("Remote", "blog-Remote-1", "AWS::Lambda::Function"),
            ("Libsa1b2c3d4e5", "arn:aws:lambda:eu-west-1:111122223333:layer:libs:3", "AWS::Lambda::LayerVersion"),
            ("Api", "api123", "AWS::ApiGateway::RestApi"),
            ("Machine", "arn:aws:states:eu-west-1:111122223333:stateMachine:m", "AWS::StepFunctions::StateMachine"),
            ("Table", "table-1", "AWS::DynamoDB::Table"),
        ])
    }

    #[test]
    fn everything_selected() {
        let dir = tempfile::tempdir().unwrap();
        let root = stack(dir.path(), TEMPLATE);
        let built = dir.path().join(".aws-sam/build/Fn");
        let artifacts = Artifacts { folders: HashMap::from([("Fn".into(), built.clone())]), ..Artifacts::default() };
        let plan = plan(&root, &cloud(), &artifacts, |_| true).unwrap();
        let resources: Vec<&str> = plan.actions.iter().map(|a| a.resource.as_str()).collect();
        assert_eq!(resources, ["Fn", "Libs", "Api", "Machine"]);
        assert_eq!(
            plan.actions[0].flow,
            Flow::Function { name: "blog-Fn-1".into(), source: Source::Folder(built), alias: Some("live".into()) }
        );
        // Not built: the layer's source folder is sent as is.
        let Flow::Layer { arn, source, .. } = &plan.actions[1].flow else { panic!("{:?}", plan.actions[1]) };
        assert_eq!(arn, "arn:aws:lambda:eu-west-1:111122223333:layer:libs");
        assert_eq!(*source, Source::Folder(dir.path().join("libs")));
        let Flow::StateMachine { substitutions, .. } = &plan.actions[3].flow else { panic!() };
        assert_eq!(
            substitutions,
            &[
                ("FnArn".to_string(), "arn:aws:lambda:eu-west-1:111122223333:function:blog-Fn-1".to_string()),
                ("Table".to_string(), "table-1".to_string()),
                ("Fixed".to_string(), "3".to_string()),
            ]
        );
        let skipped: Vec<String> = plan.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            skipped,
            [
                "Remote: its code is in S3, not local",
                "Image: image functions need Docker, which accel does not use",
                "Resource Inline does not have DefinitionUri specified. Skipping the sync.",
            ]
        );
    }

    #[test]
    fn selection_and_dependency_layers() {
        let dir = tempfile::tempdir().unwrap();
        let root = stack(dir.path(), TEMPLATE);
        let layer_id = adl::layer_logical_id("Fn");
        let layer_path = format!("{}/{layer_id}", adl::NESTED_STACK);
        let mut cloud = cloud();
        cloud.extend(deployed(&[(
            &format!("{layer_path}abcdefghij"),
            "arn:aws:lambda:eu-west-1:111122223333:layer:dep:1",
            "AWS::Lambda::LayerVersion",
        )]));
        let layer_folder = dir.path().join("adl").join(&layer_id);
        let artifacts = Artifacts {
            dependency_layers: HashMap::from([("Fn".into(), layer_folder.clone())]),
            ..Artifacts::default()
        };
        let plan = plan(&root, &cloud, &artifacts, |r| r.logical_id == "Fn").unwrap();
        assert_eq!(plan.actions.len(), 2, "{plan:?}");
        assert_eq!(plan.actions[0].resource, layer_path);
        assert!(matches!(&plan.actions[0].flow, Flow::Layer { source: Source::Folder(f), .. } if *f == layer_folder));
        assert!(plan.skipped.is_empty());
    }

    #[test]
    fn a_resource_missing_remotely_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = stack(dir.path(), TEMPLATE);
        let error = plan(&root, &DeployedStack::new(), &Artifacts::default(), |r| r.logical_id == "Fn").unwrap_err();
        assert!(matches!(error, SyncError::NotDeployed(ref p) if p == "Fn"), "{error}");
    }

    #[test]
    fn substitutions_that_cannot_be_filled_skip_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        let root = stack(dir.path(), TEMPLATE);
        let mut cloud = cloud();
        cloud.remove("Table");
        let plan = plan(&root, &cloud, &Artifacts::default(), |r| r.logical_id == "Machine").unwrap();
        assert!(plan.actions.is_empty());
        assert_eq!(
            plan.skipped[0].to_string(),
            "Machine: DefinitionSubstitutions: Table is not deployed; run accel sync without --code"
        );
    }
}
