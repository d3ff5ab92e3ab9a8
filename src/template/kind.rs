//! The one place that knows each resource type accel acts on: which
//! properties hold its code, which hold local paths, how a code sync pushes
//! it, whether it has logs, and whether it is a nested stack.

/// A resource type accel builds, syncs, packages or reads logs of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ResourceKind {
    /// `AWS::Serverless::Function`.
    ServerlessFunction,
    /// `AWS::Lambda::Function`.
    LambdaFunction,
    /// `AWS::Serverless::LayerVersion`.
    ServerlessLayer,
    /// `AWS::Lambda::LayerVersion`.
    LambdaLayer,
    /// `AWS::Serverless::Api`.
    ServerlessApi,
    /// `AWS::ApiGateway::RestApi`.
    RestApi,
    /// `AWS::Serverless::HttpApi`.
    ServerlessHttpApi,
    /// `AWS::ApiGatewayV2::Api`.
    HttpApi,
    /// `AWS::Serverless::StateMachine`.
    ServerlessStateMachine,
    /// `AWS::StepFunctions::StateMachine`.
    StateMachine,
    /// `AWS::Serverless::Application`.
    ServerlessApplication,
    /// `AWS::CloudFormation::Stack`.
    Stack,
}

/// How a code sync pushes a resource (sam's sync flow classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncFlow {
    /// UpdateFunctionCode.
    Function,
    /// PublishLayerVersion.
    Layer,
    /// PutRestApi + CreateDeployment.
    RestApi,
    /// ReimportApi.
    HttpApi,
    /// UpdateStateMachine.
    StateMachine,
    /// UpdateFunctionConfiguration (accel's hotswap; never in `sync.toml`).
    FunctionConfig,
}

impl SyncFlow {
    /// sam's flow class name, the first half of a `sync.toml` key.
    pub(crate) fn class(self) -> &'static str {
        match self {
            SyncFlow::Function => "ZipFunctionSyncFlow",
            SyncFlow::Layer => "LayerSyncFlow",
            SyncFlow::RestApi => "RestApiSyncFlow",
            SyncFlow::HttpApi => "HttpApiSyncFlow",
            SyncFlow::StateMachine => "StepFunctionsSyncFlow",
            SyncFlow::FunctionConfig => "AccelFunctionConfigSyncFlow",
        }
    }

    /// The word shown next to a synced resource.
    pub(crate) fn label(self) -> &'static str {
        match self {
            SyncFlow::Function => "code",
            SyncFlow::Layer => "layer",
            SyncFlow::RestApi | SyncFlow::HttpApi => "api",
            SyncFlow::StateMachine => "definition",
            SyncFlow::FunctionConfig => "config",
        }
    }
}

impl ResourceKind {
    /// Every kind.
    pub(crate) const ALL: [ResourceKind; 12] = [
        ResourceKind::ServerlessFunction,
        ResourceKind::LambdaFunction,
        ResourceKind::ServerlessLayer,
        ResourceKind::LambdaLayer,
        ResourceKind::ServerlessApi,
        ResourceKind::RestApi,
        ResourceKind::ServerlessHttpApi,
        ResourceKind::HttpApi,
        ResourceKind::ServerlessStateMachine,
        ResourceKind::StateMachine,
        ResourceKind::ServerlessApplication,
        ResourceKind::Stack,
    ];

    /// The kind of a `Type`, if accel knows it.
    pub(crate) fn of(type_name: &str) -> Option<ResourceKind> {
        Self::ALL.into_iter().find(|k| k.type_name() == type_name)
    }

    /// The CloudFormation `Type`.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            ResourceKind::ServerlessFunction => "AWS::Serverless::Function",
            ResourceKind::LambdaFunction => "AWS::Lambda::Function",
            ResourceKind::ServerlessLayer => "AWS::Serverless::LayerVersion",
            ResourceKind::LambdaLayer => "AWS::Lambda::LayerVersion",
            ResourceKind::ServerlessApi => "AWS::Serverless::Api",
            ResourceKind::RestApi => "AWS::ApiGateway::RestApi",
            ResourceKind::ServerlessHttpApi => "AWS::Serverless::HttpApi",
            ResourceKind::HttpApi => "AWS::ApiGatewayV2::Api",
            ResourceKind::ServerlessStateMachine => "AWS::Serverless::StateMachine",
            ResourceKind::StateMachine => "AWS::StepFunctions::StateMachine",
            ResourceKind::ServerlessApplication => "AWS::Serverless::Application",
            ResourceKind::Stack => "AWS::CloudFormation::Stack",
        }
    }

    /// Properties that hold the code a code sync can update; a change in
    /// any other property needs a CloudFormation deploy.
    pub(crate) fn code_properties(self) -> &'static [&'static str] {
        match self {
            ResourceKind::ServerlessFunction => &["CodeUri", "ImageUri", "InlineCode"],
            ResourceKind::LambdaFunction => &["Code"],
            ResourceKind::ServerlessLayer => &["ContentUri"],
            ResourceKind::LambdaLayer => &["Content"],
            ResourceKind::ServerlessApi | ResourceKind::ServerlessHttpApi | ResourceKind::ServerlessStateMachine => {
                &["DefinitionUri"]
            }
            ResourceKind::RestApi | ResourceKind::HttpApi => &["BodyS3Location"],
            ResourceKind::StateMachine => &["DefinitionS3Location"],
            ResourceKind::ServerlessApplication | ResourceKind::Stack => &[],
        }
    }

    /// The property naming a nested stack's template.
    pub(crate) fn nested_template_property(self) -> Option<&'static str> {
        match self {
            ResourceKind::ServerlessApplication => Some("Location"),
            ResourceKind::Stack => Some("TemplateURL"),
            _ => None,
        }
    }

    /// Whether it is a nested stack.
    pub(crate) fn is_nested_stack(self) -> bool {
        self.nested_template_property().is_some()
    }

    /// How `sync --code` pushes it.
    pub(crate) fn sync_flow(self) -> Option<SyncFlow> {
        match self {
            ResourceKind::ServerlessFunction | ResourceKind::LambdaFunction => Some(SyncFlow::Function),
            ResourceKind::ServerlessLayer | ResourceKind::LambdaLayer => Some(SyncFlow::Layer),
            ResourceKind::ServerlessApi | ResourceKind::RestApi => Some(SyncFlow::RestApi),
            ResourceKind::ServerlessHttpApi | ResourceKind::HttpApi => Some(SyncFlow::HttpApi),
            ResourceKind::ServerlessStateMachine | ResourceKind::StateMachine => Some(SyncFlow::StateMachine),
            ResourceKind::ServerlessApplication | ResourceKind::Stack => None,
        }
    }

    /// Whether a deployed resource of this (CloudFormation) type writes logs
    /// `accel logs` reads.
    pub(crate) fn has_logs(self) -> bool {
        matches!(
            self,
            ResourceKind::LambdaFunction | ResourceKind::RestApi | ResourceKind::HttpApi | ResourceKind::StateMachine
        )
    }
}

/// The types `sync --resource` accepts: those with a sync flow, in sam's order.
pub(crate) fn code_sync_types() -> impl Iterator<Item = &'static str> {
    ResourceKind::ALL.into_iter().filter(|k| k.sync_flow().is_some()).map(ResourceKind::type_name)
}

/// Properties that hold local paths, per resource type (as `aws cloudformation
/// package` knows them); the first entry is what a build sets.
pub(crate) const PATH_PROPERTIES: &[(&str, &[&str])] = &[
    ("AWS::Serverless::Function", &["CodeUri"]),
    ("AWS::Lambda::Function", &["Code"]),
    ("AWS::Serverless::LayerVersion", &["ContentUri"]),
    ("AWS::Lambda::LayerVersion", &["Content"]),
    ("AWS::Serverless::Api", &["DefinitionUri"]),
    ("AWS::Serverless::HttpApi", &["DefinitionUri"]),
    ("AWS::Serverless::StateMachine", &["DefinitionUri"]),
    ("AWS::Serverless::GraphQLApi", &["SchemaUri", "CodeUri"]),
    ("AWS::ApiGateway::RestApi", &["BodyS3Location"]),
    ("AWS::ApiGatewayV2::Api", &["BodyS3Location"]),
    ("AWS::StepFunctions::StateMachine", &["DefinitionS3Location"]),
    ("AWS::AppSync::GraphQLSchema", &["DefinitionS3Location"]),
    (
        "AWS::AppSync::Resolver",
        &["RequestMappingTemplateS3Location", "ResponseMappingTemplateS3Location", "CodeS3Location"],
    ),
    (
        "AWS::AppSync::FunctionConfiguration",
        &["RequestMappingTemplateS3Location", "ResponseMappingTemplateS3Location", "CodeS3Location"],
    ),
    ("AWS::ElasticBeanstalk::ApplicationVersion", &["SourceBundle"]),
    ("AWS::CloudFormation::ModuleVersion", &["ModulePackage"]),
    ("AWS::CloudFormation::ResourceVersion", &["SchemaHandlerPackage"]),
    ("AWS::Serverless::Application", &["Location"]),
    ("AWS::CloudFormation::Stack", &["TemplateURL"]),
    ("AWS::CloudFormation::StackSet", &["TemplateURL"]),
];

/// The path properties of a type (empty when it has none).
pub(crate) fn path_properties(type_name: &str) -> &'static [&'static str] {
    PATH_PROPERTIES.iter().find(|(t, _)| *t == type_name).map_or(&[], |(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_round_trip() {
        for kind in ResourceKind::ALL {
            assert_eq!(ResourceKind::of(kind.type_name()), Some(kind));
        }
        assert_eq!(ResourceKind::of("AWS::S3::Bucket"), None);
    }

    /// The tables agree: every syncable type is offered by `--resource`,
    /// its code lives in a path property the packager rewrites, and every
    /// nested stack's template property is a path property.
    #[test]
    fn tables_agree() {
        let synced: Vec<&str> = code_sync_types().collect();
        assert_eq!(
            synced,
            [
                "AWS::Serverless::Function",
                "AWS::Lambda::Function",
                "AWS::Serverless::LayerVersion",
                "AWS::Lambda::LayerVersion",
                "AWS::Serverless::Api",
                "AWS::ApiGateway::RestApi",
                "AWS::Serverless::HttpApi",
                "AWS::ApiGatewayV2::Api",
                "AWS::Serverless::StateMachine",
                "AWS::StepFunctions::StateMachine",
            ],
            "sam's --resource choices"
        );
        for kind in ResourceKind::ALL {
            let paths = path_properties(kind.type_name());
            let local_code: Vec<&&str> = kind.code_properties().iter().filter(|p| paths.contains(p)).collect();
            assert_eq!(kind.sync_flow().is_some(), !local_code.is_empty(), "{kind:?}");
            if let Some(property) = kind.nested_template_property() {
                assert_eq!(paths, [property], "{kind:?}");
                assert!(kind.code_properties().is_empty());
            }
            // Logs are read from deployed (CloudFormation) types only.
            if kind.has_logs() {
                assert!(!kind.type_name().starts_with("AWS::Serverless::"), "{kind:?}");
                assert!(kind.sync_flow().is_some());
            }
        }
    }

    #[test]
    fn flow_classes_are_sams() {
        assert_eq!(ResourceKind::LambdaLayer.sync_flow().map(SyncFlow::class), Some("LayerSyncFlow"));
        assert_eq!(ResourceKind::ServerlessApi.sync_flow().map(SyncFlow::label), Some("api"));
    }
}
