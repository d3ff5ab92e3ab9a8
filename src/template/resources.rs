//! Typed views of the resources accel builds and syncs — functions, layers,
//! REST and HTTP APIs, state machines — over both their Serverless form and
//! their raw CloudFormation twin.

use std::path::PathBuf;

use serde_json::Value;

use super::kind::{ResourceKind, path_properties};
use super::stack::{Resource, Stack, is_local};

/// Where a function's code, a layer's content or a definition comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CodeLocation {
    /// A local folder (or file), absolute; `uri` is the text as written.
    Local {
        /// The path as written in the template.
        uri: String,
        /// The absolute path.
        path: PathBuf,
    },
    /// A local `.zip` file, absolute: packaged as is, never built.
    PreZipped(PathBuf),
    /// An object in S3 (`s3://…` or a Bucket/Key mapping).
    S3(Value),
    /// Source written in the template (`InlineCode`, `Code.ZipFile`).
    Inline(String),
    /// A value that could not be resolved locally.
    Unresolved(Value),
}

impl CodeLocation {
    fn from_uri(stack: &Stack, value: &Value) -> CodeLocation {
        match value {
            Value::String(uri) if is_local(uri) => {
                let path = stack.base_dir.join(uri);
                if uri.ends_with(".zip") {
                    CodeLocation::PreZipped(path)
                } else {
                    CodeLocation::Local { uri: uri.clone(), path }
                }
            }
            Value::String(_) => CodeLocation::S3(value.clone()),
            Value::Object(map) if map.contains_key("Bucket") || map.contains_key("S3Bucket") => {
                CodeLocation::S3(value.clone())
            }
            other => CodeLocation::Unresolved(other.clone()),
        }
    }

    /// The local path, for `Local` and `PreZipped`.
    pub(crate) fn local_path(&self) -> Option<&PathBuf> {
        match self {
            CodeLocation::Local { path, .. } | CodeLocation::PreZipped(path) => Some(path),
            _ => None,
        }
    }
}

/// Zip or image package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PackageType {
    /// A zip archive (the default).
    Zip,
    /// A container image.
    Image,
}

/// A Lambda function (`AWS::Serverless::Function` or `AWS::Lambda::Function`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Function<'a> {
    /// The resource behind the view.
    pub(crate) resource: &'a Resource,
    /// Zip or image.
    pub(crate) package_type: PackageType,
    /// Code location (Zip functions).
    pub(crate) code: CodeLocation,
    /// `ImageUri` (image functions).
    pub(crate) image_uri: Option<Value>,
    /// `Handler`.
    pub(crate) handler: Option<String>,
    /// `Runtime`.
    pub(crate) runtime: Option<String>,
    /// `Architectures[0]`, default `x86_64`.
    pub(crate) architecture: String,
    /// Every entry of `Architectures` (more than one is an error for a build).
    pub(crate) architectures: Vec<String>,
    /// `Layers`, each an ARN or an unresolved reference.
    pub(crate) layers: Vec<Value>,
    /// `Metadata.BuildMethod`.
    pub(crate) build_method: Option<String>,
    /// `Metadata.BuildProperties`.
    pub(crate) build_properties: Value,
    /// `Metadata.SkipBuild`.
    pub(crate) skip_build: bool,
    /// `AutoPublishAlias`.
    pub(crate) auto_publish_alias: Option<String>,
    /// `LoggingConfig`.
    pub(crate) logging_config: Option<Value>,
}

impl<'a> Function<'a> {
    /// The view of `resource`, if it is a function.
    pub(crate) fn of(stack: &Stack, resource: &'a Resource) -> Option<Self> {
        let serverless = match ResourceKind::of(&resource.resource_type)? {
            ResourceKind::ServerlessFunction => true,
            ResourceKind::LambdaFunction => false,
            _ => return None,
        };
        let package_type = match resource.string("PackageType") {
            Some("Image") => PackageType::Image,
            _ => PackageType::Zip,
        };
        let (code, image_uri) = if serverless {
            let code = match (resource.property("InlineCode"), resource.property("CodeUri")) {
                (Some(Value::String(src)), _) => CodeLocation::Inline(src.clone()),
                (_, Some(uri)) => CodeLocation::from_uri(stack, uri),
                // sam builds a function without CodeUri from the template's folder.
                (_, None) => CodeLocation::from_uri(stack, &Value::String(".".into())),
            };
            (code, resource.property("ImageUri").cloned())
        } else {
            let code = resource.property("Code").cloned().unwrap_or(Value::Null);
            let location = match &code {
                Value::Object(map) if map.contains_key("ZipFile") => {
                    CodeLocation::Inline(map["ZipFile"].as_str().unwrap_or_default().to_string())
                }
                other => CodeLocation::from_uri(stack, other),
            };
            (location, code.get("ImageUri").cloned())
        };
        let architectures = string_list(resource.property("Architectures"));
        Some(Function {
            resource,
            package_type,
            code,
            image_uri,
            handler: resource.string("Handler").map(str::to_string),
            runtime: resource.string("Runtime").map(str::to_string),
            architecture: architectures.first().cloned().unwrap_or_else(|| "x86_64".into()),
            architectures,
            layers: resource.property("Layers").and_then(Value::as_array).cloned().unwrap_or_default(),
            build_method: resource.metadata("BuildMethod").and_then(Value::as_str).map(str::to_string),
            build_properties: resource.metadata("BuildProperties").cloned().unwrap_or(Value::Null),
            skip_build: resource.metadata("SkipBuild").and_then(Value::as_bool).unwrap_or(false),
            auto_publish_alias: resource.string("AutoPublishAlias").map(str::to_string),
            logging_config: resource.property("LoggingConfig").cloned(),
        })
    }

    /// The layers of this function defined in the same template (`Ref Layer`).
    pub(crate) fn layer_refs(&self) -> Vec<&str> {
        self.layers.iter().filter_map(|l| l.get("Ref").and_then(Value::as_str)).collect()
    }
}

/// A layer (`AWS::Serverless::LayerVersion` or `AWS::Lambda::LayerVersion`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layer<'a> {
    /// The resource behind the view.
    pub(crate) resource: &'a Resource,
    /// `ContentUri` / `Content`.
    pub(crate) content: CodeLocation,
    /// `Metadata.BuildMethod`: without one a layer is packaged as is.
    pub(crate) build_method: Option<String>,
    /// `Metadata.BuildArchitecture`, default `x86_64`.
    pub(crate) build_architecture: String,
    /// `CompatibleRuntimes`.
    pub(crate) compatible_runtimes: Vec<String>,
    /// `CompatibleArchitectures`, default `[x86_64]`.
    pub(crate) compatible_architectures: Vec<String>,
    /// `LayerName`.
    pub(crate) layer_name: Option<String>,
    /// `Description`.
    pub(crate) description: Option<String>,
    /// `LicenseInfo`.
    pub(crate) license_info: Option<String>,
    /// `Metadata.SkipBuild`.
    pub(crate) skip_build: bool,
}

impl<'a> Layer<'a> {
    /// The view of `resource`, if it is a layer.
    pub(crate) fn of(stack: &Stack, resource: &'a Resource) -> Option<Self> {
        let property = match ResourceKind::of(&resource.resource_type)? {
            ResourceKind::ServerlessLayer => "ContentUri",
            ResourceKind::LambdaLayer => "Content",
            _ => return None,
        };
        let architectures = string_list(resource.property("CompatibleArchitectures"));
        Some(Layer {
            resource,
            content: CodeLocation::from_uri(stack, resource.property(property).unwrap_or(&Value::Null)),
            build_method: resource.metadata("BuildMethod").and_then(Value::as_str).map(str::to_string),
            build_architecture: resource
                .metadata("BuildArchitecture")
                .and_then(Value::as_str)
                .unwrap_or("x86_64")
                .to_string(),
            compatible_runtimes: string_list(resource.property("CompatibleRuntimes")),
            compatible_architectures: if architectures.is_empty() { vec!["x86_64".into()] } else { architectures },
            layer_name: resource.string("LayerName").map(str::to_string),
            description: resource.string("Description").map(str::to_string),
            license_info: resource.string("LicenseInfo").map(str::to_string),
            skip_build: resource.metadata("SkipBuild").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// How an API or a state machine is defined.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Definition {
    /// A definition file (`DefinitionUri`, `BodyS3Location`, `DefinitionS3Location`).
    Uri(CodeLocation),
    /// A definition written in the template (`DefinitionBody`, `Body`, `Definition`).
    Inline(Value),
    /// Neither: SAM generates it (implicit APIs, APIs built from events).
    Generated,
}

impl Definition {
    fn of(stack: &Stack, resource: &Resource, uri: &str, body: &str) -> Self {
        match (resource.property(uri), resource.property(body)) {
            (Some(location), _) => Definition::Uri(CodeLocation::from_uri(stack, location)),
            (None, Some(inline)) => Definition::Inline(inline.clone()),
            (None, None) => Definition::Generated,
        }
    }
}

/// A REST API (`AWS::Serverless::Api` or `AWS::ApiGateway::RestApi`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RestApi<'a> {
    /// The resource behind the view.
    pub(crate) resource: &'a Resource,
    /// Its definition.
    pub(crate) definition: Definition,
    /// `StageName` (Serverless APIs).
    pub(crate) stage_name: Option<String>,
}

impl<'a> RestApi<'a> {
    /// The view of `resource`, if it is a REST API.
    pub(crate) fn of(stack: &Stack, resource: &'a Resource) -> Option<Self> {
        let definition = match ResourceKind::of(&resource.resource_type)? {
            ResourceKind::ServerlessApi => Definition::of(stack, resource, "DefinitionUri", "DefinitionBody"),
            ResourceKind::RestApi => Definition::of(stack, resource, "BodyS3Location", "Body"),
            _ => return None,
        };
        Some(RestApi { resource, definition, stage_name: resource.string("StageName").map(str::to_string) })
    }
}

/// An HTTP API (`AWS::Serverless::HttpApi` or `AWS::ApiGatewayV2::Api`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HttpApi<'a> {
    /// The resource behind the view.
    pub(crate) resource: &'a Resource,
    /// Its definition.
    pub(crate) definition: Definition,
    /// `StageName` (Serverless APIs; `$default` when not set).
    pub(crate) stage_name: Option<String>,
    /// `AccessLogSettings`.
    pub(crate) access_log_settings: Option<Value>,
}

impl<'a> HttpApi<'a> {
    /// The view of `resource`, if it is an HTTP API.
    pub(crate) fn of(stack: &Stack, resource: &'a Resource) -> Option<Self> {
        let definition = match ResourceKind::of(&resource.resource_type)? {
            ResourceKind::ServerlessHttpApi => Definition::of(stack, resource, "DefinitionUri", "DefinitionBody"),
            ResourceKind::HttpApi => Definition::of(stack, resource, "BodyS3Location", "Body"),
            _ => return None,
        };
        Some(HttpApi {
            resource,
            definition,
            stage_name: resource.string("StageName").map(str::to_string),
            access_log_settings: resource.property("AccessLogSettings").cloned(),
        })
    }
}

/// A state machine (`AWS::Serverless::StateMachine` or `AWS::StepFunctions::StateMachine`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StateMachine<'a> {
    /// The resource behind the view.
    pub(crate) resource: &'a Resource,
    /// Its definition.
    pub(crate) definition: Definition,
    /// `DefinitionSubstitutions`.
    pub(crate) substitutions: Option<Value>,
    /// `Logging` / `LoggingConfiguration`.
    pub(crate) logging: Option<Value>,
}

impl<'a> StateMachine<'a> {
    /// The view of `resource`, if it is a state machine.
    pub(crate) fn of(stack: &Stack, resource: &'a Resource) -> Option<Self> {
        let (definition, logging) = match ResourceKind::of(&resource.resource_type)? {
            ResourceKind::ServerlessStateMachine => {
                (Definition::of(stack, resource, "DefinitionUri", "Definition"), "Logging")
            }
            ResourceKind::StateMachine => {
                let definition = match resource.property("DefinitionString") {
                    Some(s) => Definition::Inline(s.clone()),
                    None => Definition::of(stack, resource, "DefinitionS3Location", "Definition"),
                };
                (definition, "LoggingConfiguration")
            }
            _ => return None,
        };
        Some(StateMachine {
            resource,
            definition,
            substitutions: resource.property("DefinitionSubstitutions").cloned(),
            logging: resource.property(logging).cloned(),
        })
    }
}

/// The local paths a resource depends on, by property name, as absolute paths.
pub(crate) fn local_paths(stack: &Stack, resource: &Resource) -> Vec<(&'static str, PathBuf)> {
    let Some(name) = path_properties(&resource.resource_type).first().copied() else { return Vec::new() };
    let definition_path = |definition: &Definition| match definition {
        Definition::Uri(location) => location.local_path().cloned(),
        _ => None,
    };
    let found = if let Some(f) = Function::of(stack, resource) {
        (f.package_type == PackageType::Zip).then(|| f.code.local_path().cloned()).flatten()
    } else if let Some(l) = Layer::of(stack, resource) {
        l.content.local_path().cloned()
    } else if let Some(api) = RestApi::of(stack, resource) {
        definition_path(&api.definition)
    } else if let Some(api) = HttpApi::of(stack, resource) {
        definition_path(&api.definition)
    } else if let Some(sm) = StateMachine::of(stack, resource) {
        definition_path(&sm.definition)
    } else {
        None
    };
    found.map(|path| (name, path)).into_iter().collect()
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}
