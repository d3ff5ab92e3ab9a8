//! The `Globals` section, merged into Serverless resources exactly as the SAM
//! translator does it (samtranslator/plugins/globals): local scalars win,
//! dictionaries merge key by key, lists concatenate global + local, an
//! intrinsic counts as a scalar, and `Function.Architectures` is replaced.

use serde_json::{Map, Value};

use super::intrinsics::is_intrinsic;

/// Properties each Globals section may set, as in aws-sam-translator 1.115.
const SUPPORTED: &[(&str, &[&str])] = &[
    (
        "Function",
        &[
            "Handler",
            "Runtime",
            "CodeUri",
            "DeadLetterQueue",
            "Description",
            "MemorySize",
            "Timeout",
            "VpcConfig",
            "Environment",
            "Tags",
            "PropagateTags",
            "Tracing",
            "KmsKeyArn",
            "AutoPublishAlias",
            "AutoPublishAliasAllProperties",
            "Layers",
            "DeploymentPreference",
            "RolePath",
            "PermissionsBoundary",
            "ReservedConcurrentExecutions",
            "ProvisionedConcurrencyConfig",
            "AssumeRolePolicyDocument",
            "EventInvokeConfig",
            "FileSystemConfigs",
            "CodeSigningConfigArn",
            "Architectures",
            "SnapStart",
            "EphemeralStorage",
            "FunctionUrlConfig",
            "RuntimeManagementConfig",
            "LoggingConfig",
            "RecursiveLoop",
            "SourceKMSKeyArn",
            "TenancyConfig",
            "DurableConfig",
            "CapacityProviderConfig",
            "FunctionScalingConfig",
            "PublishToLatestPublished",
            "VersionDeletionPolicy",
        ],
    ),
    (
        "Api",
        &[
            "Auth",
            "Name",
            "DefinitionUri",
            "CacheClusterEnabled",
            "CacheClusterSize",
            "MergeDefinitions",
            "Variables",
            "EndpointConfiguration",
            "MethodSettings",
            "BinaryMediaTypes",
            "MinimumCompressionSize",
            "Cors",
            "GatewayResponses",
            "AccessLogSetting",
            "CanarySetting",
            "TracingEnabled",
            "OpenApiVersion",
            "Domain",
            "AlwaysDeploy",
            "PropagateTags",
            "SecurityPolicy",
            "EndpointAccessMode",
        ],
    ),
    (
        "HttpApi",
        &[
            "Auth",
            "AccessLogSettings",
            "StageVariables",
            "Tags",
            "CorsConfiguration",
            "DefaultRouteSettings",
            "Domain",
            "RouteSettings",
            "FailOnWarnings",
            "PropagateTags",
        ],
    ),
    ("SimpleTable", &["SSESpecification"]),
    ("StateMachine", &["PropagateTags"]),
    ("LayerVersion", &["PublishLambdaVersion"]),
    (
        "CapacityProvider",
        &[
            "VpcConfig",
            "OperatorRole",
            "Tags",
            "InstanceRequirements",
            "ScalingConfig",
            "KmsKeyArn",
            "PropagateTags",
            "LoggingConfig",
            "ManagedResourceTags",
        ],
    ),
    (
        "WebSocketApi",
        &[
            "AccessLogSettings",
            "ApiKeySelectionExpression",
            "DefaultRouteSettings",
            "DisableExecuteApiEndpoint",
            "DisableSchemaValidation",
            "Domain",
            "FailOnWarnings",
            "IpAddressType",
            "PropagateTags",
            "RouteSelectionExpression",
            "RouteSettings",
            "StageVariables",
            "Tags",
        ],
    ),
];

/// Paths (below a section) whose list or dict value the local one replaces.
const REPLACE: &[(&str, &str)] = &[("Function", "Architectures")];

/// A Globals section that SAM would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Globals: {0}")]
pub(crate) struct GlobalsError(pub String);

/// The parsed `Globals` section: section name (e.g. `Function`) to properties.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Globals {
    sections: Map<String, Value>,
}

impl Globals {
    /// Reads and checks the template's `Globals`.
    pub(crate) fn parse(template: &Value) -> Result<Self, GlobalsError> {
        let Some(section) = template.get("Globals") else {
            return Ok(Self::default());
        };
        let Some(sections) = section.as_object() else {
            return Err(GlobalsError("It must be a non-empty dictionary".into()));
        };
        for (name, props) in sections {
            let Some((_, allowed)) = SUPPORTED.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = SUPPORTED.iter().map(|(n, _)| *n).collect();
                return Err(GlobalsError(format!("'{name}' is not supported. Must be one of {names:?}")));
            };
            let Some(props) = props.as_object() else {
                return Err(GlobalsError(format!("Value of {name} must be a dictionary")));
            };
            if let Some(bad) = props.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(GlobalsError(format!("'{bad}' is not a supported property of '{name}'")));
            }
        }
        Ok(Globals { sections: sections.clone() })
    }

    /// The properties of a resource of `resource_type` with Globals merged in,
    /// honouring the resource's `IgnoreGlobals` attribute.
    pub(crate) fn merge(&self, resource_type: &str, resource: &Value) -> Result<Value, GlobalsError> {
        let local = resource.get("Properties").cloned().unwrap_or_else(|| Value::Object(Map::new()));
        let Some(section) = resource_type.strip_prefix("AWS::Serverless::") else {
            return Ok(local);
        };
        let Some(Value::Object(global)) = self.sections.get(section) else {
            return Ok(local);
        };
        let mut global = global.clone();
        match resource.get("IgnoreGlobals") {
            None => {}
            Some(Value::String(s)) if s == "*" => return Ok(local),
            Some(Value::Array(keys)) => {
                for key in keys {
                    let key = key.as_str().unwrap_or_default();
                    if global.remove(key).is_none() {
                        return Err(GlobalsError(format!(
                            "invalid resource attribute 'IgnoreGlobals' on item '{key}'"
                        )));
                    }
                }
            }
            Some(_) => {
                return Err(GlobalsError("invalid resource attribute 'IgnoreGlobals'".into()));
            }
        }
        Ok(merge_value(section, "", Value::Object(global), local))
    }
}

fn merge_value(section: &str, path: &str, global: Value, local: Value) -> Value {
    let replaced = REPLACE.iter().any(|(s, p)| *s == section && *p == path);
    match (global, local) {
        (Value::Object(g), Value::Object(l))
            if !is_intrinsic(&Value::Object(g.clone())) && !is_intrinsic(&Value::Object(l.clone())) =>
        {
            if replaced {
                return Value::Object(l);
            }
            let mut merged = g;
            for (key, local_value) in l {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                let value = match merged.remove(&key) {
                    Some(global_value) => merge_value(section, &child, global_value, local_value),
                    None => local_value,
                };
                merged.insert(key, value);
            }
            Value::Object(merged)
        }
        (Value::Array(g), Value::Array(l)) if !replaced => Value::Array(g.into_iter().chain(l).collect()),
        (_, local) => local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn globals(v: Value) -> Globals {
        Globals::parse(&json!({ "Globals": v })).unwrap()
    }

    #[test]
    fn merge_rules_match_the_translator() {
        let g = globals(json!({"Function": {
            "Runtime": "python3.12",
            "Timeout": 10,
            "Environment": {"Variables": {"TABLE": "t", "STAGE": "dev"}},
            "Layers": ["arn:global"],
            "Architectures": ["x86_64"],
            "CodeUri": "s3://b/k",
            "Tags": {"Fn::If": ["C", {"a": "b"}, {"Ref": "AWS::NoValue"}]}
        }}));
        let resource = json!({"Type": "AWS::Serverless::Function", "Properties": {
            "Timeout": 30,
            "Environment": {"Variables": {"STAGE": "prod", "EXTRA": "1"}},
            "Layers": ["arn:local"],
            "Architectures": ["arm64"],
            "CodeUri": {"Bucket": "b", "Key": "k"},
            "Tags": {"team": "x"}
        }});
        let merged = g.merge("AWS::Serverless::Function", &resource).unwrap();
        assert_eq!(merged["Runtime"], json!("python3.12"), "global fills a gap");
        assert_eq!(merged["Timeout"], json!(30), "local scalar wins");
        assert_eq!(merged["Environment"]["Variables"], json!({"TABLE": "t", "STAGE": "prod", "EXTRA": "1"}));
        assert_eq!(merged["Layers"], json!(["arn:global", "arn:local"]), "lists concatenate, global first");
        assert_eq!(merged["Architectures"], json!(["arm64"]), "Architectures is replaced");
        assert_eq!(merged["CodeUri"], json!({"Bucket": "b", "Key": "k"}), "different types: local wins");
        assert_eq!(merged["Tags"], json!({"team": "x"}), "an intrinsic is a scalar: local wins");
    }

    #[test]
    fn ignore_globals_and_other_types() {
        let g = globals(json!({"Function": {"Runtime": "python3.12", "Timeout": 3}, "Api": {"Name": "n"}}));
        let star = json!({"Type": "AWS::Serverless::Function", "IgnoreGlobals": "*", "Properties": {"Handler": "h"}});
        assert_eq!(g.merge("AWS::Serverless::Function", &star).unwrap(), json!({"Handler": "h"}));
        let some = json!({"Type": "AWS::Serverless::Function", "IgnoreGlobals": ["Timeout"]});
        assert_eq!(g.merge("AWS::Serverless::Function", &some).unwrap(), json!({"Runtime": "python3.12"}));
        let bad = json!({"Type": "AWS::Serverless::Function", "IgnoreGlobals": ["Nope"]});
        assert!(g.merge("AWS::Serverless::Function", &bad).is_err());
        let raw = json!({"Type": "AWS::Lambda::Function", "Properties": {"Handler": "h"}});
        assert_eq!(g.merge("AWS::Lambda::Function", &raw).unwrap(), json!({"Handler": "h"}));
        let api = json!({"Type": "AWS::Serverless::Api"});
        assert_eq!(g.merge("AWS::Serverless::Api", &api).unwrap(), json!({"Name": "n"}));
    }

    #[test]
    fn unsupported_sections_and_properties_are_errors() {
        let e = Globals::parse(&json!({"Globals": {"Function": {"FunctionName": "x"}}})).unwrap_err();
        assert_eq!(e.to_string(), "Globals: 'FunctionName' is not a supported property of 'Function'");
        assert!(Globals::parse(&json!({"Globals": {"Queue": {}}})).is_err());
        assert!(Globals::parse(&json!({"Globals": []})).is_err());
    }
}
