//! Whether the first infra sync may be skipped (spec §2.6): the packaged
//! template tree compared with the deployed one, artifact locations aside,
//! plus the parameters. The resources whose artifacts differ are what a
//! code sync must then push.

use serde_json::Value;

use super::flows::Deployed;
use crate::aws::call_error;
use crate::package::template::Packaged;
use crate::template::yaml;

/// Artifact properties a code sync can update, per type.
const CODE_PROPERTIES: &[(&str, &[&str])] = &[
    ("AWS::Serverless::Function", &["CodeUri", "ImageUri", "InlineCode"]),
    ("AWS::Lambda::Function", &["Code"]),
    ("AWS::Serverless::LayerVersion", &["ContentUri"]),
    ("AWS::Lambda::LayerVersion", &["Content"]),
    ("AWS::Serverless::Api", &["DefinitionUri"]),
    ("AWS::ApiGateway::RestApi", &["BodyS3Location"]),
    ("AWS::Serverless::HttpApi", &["DefinitionUri"]),
    ("AWS::ApiGatewayV2::Api", &["BodyS3Location"]),
    ("AWS::Serverless::StateMachine", &["DefinitionUri"]),
    ("AWS::StepFunctions::StateMachine", &["DefinitionS3Location"]),
];

/// Nested stack locations: their content is compared by recursion instead.
const STACK_PROPERTIES: &[(&str, &str)] =
    &[("AWS::CloudFormation::Stack", "TemplateURL"), ("AWS::Serverless::Application", "Location")];

/// The full paths whose code differs, when nothing else does; `None` when
/// a deploy is needed (template or parameters differ, or the deployed
/// stack cannot be read).
pub async fn code_only_changes(
    cfn: &aws_sdk_cloudformation::Client,
    stack_name: &str,
    packaged: &Packaged,
    overrides: &indexmap::IndexMap<String, String>,
    deployed: &Deployed,
) -> Option<Vec<String>> {
    let stack = cfn.describe_stacks().stack_name(stack_name).send().await.ok()?;
    let params = stack.stacks().first()?.parameters();
    let same_params = overrides.iter().all(|(key, value)| {
        params.iter().any(|p| p.parameter_key() == Some(key.as_str()) && p.parameter_value() == Some(value.as_str()))
    });
    if !same_params {
        return None;
    }
    let mut changed = Vec::new();
    compare(cfn, stack_name, "", packaged, deployed, &mut changed).await.then_some(changed)
}

/// Compares one stack and, recursively, its nested stacks.
async fn compare(
    cfn: &aws_sdk_cloudformation::Client,
    stack_id: &str,
    prefix: &str,
    packaged: &Packaged,
    deployed: &Deployed,
    changed: &mut Vec<String>,
) -> bool {
    let fetched = cfn
        .get_template()
        .stack_name(stack_id)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
        .send()
        .await
        .map_err(|e| call_error("GetTemplate", &e));
    let Some(remote) = fetched.ok().and_then(|t| t.template_body().and_then(|b| yaml::parse(b).ok())) else {
        return false;
    };
    // Compare what a parse of the uploaded text gives, as for the remote.
    let Ok(local) = yaml::parse(&packaged.body()) else { return false };
    if sanitised(&local) != sanitised(&remote) {
        return false;
    }
    changed.extend(code_changes(&local, &remote).into_iter().map(|id| format!("{prefix}{id}")));
    for (logical_id, child) in &packaged.children {
        let path = format!("{prefix}{logical_id}");
        let Some(nested) = deployed.get(&path) else { return false };
        if !Box::pin(compare(cfn, &nested.physical_id, &format!("{path}/"), child, deployed, changed)).await {
            return false;
        }
    }
    true
}

/// The template without code locations, nested stack locations and SAM's
/// resource ids.
pub(crate) fn sanitised(template: &Value) -> Value {
    let mut template = template.clone();
    let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) else { return template };
    for resource in resources.values_mut() {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
        if let Some(props) = resource.get_mut("Properties").and_then(Value::as_object_mut) {
            for property in code_properties(&kind) {
                props.remove(*property);
            }
            if let Some((_, property)) = STACK_PROPERTIES.iter().find(|(t, _)| *t == kind)
                && props.get(*property).is_some_and(Value::is_string)
            {
                props.remove(*property);
            }
        }
        let Some(object) = resource.as_object_mut() else { continue };
        if let Some(metadata) = object.get_mut("Metadata").and_then(Value::as_object_mut) {
            metadata.remove("SamResourceId");
            if metadata.is_empty() {
                object.remove("Metadata");
            }
        }
    }
    template
}

fn code_properties(kind: &str) -> &'static [&'static str] {
    CODE_PROPERTIES.iter().find(|(t, _)| *t == kind).map_or(&[], |(_, p)| p)
}

/// Logical ids whose code properties differ between the two templates.
pub(crate) fn code_changes(local: &Value, remote: &Value) -> Vec<String> {
    let Some(resources) = local.get("Resources").and_then(Value::as_object) else { return Vec::new() };
    resources
        .iter()
        .filter(|(id, resource)| {
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
            code_properties(kind).iter().any(|property| {
                let pointer = format!("/Resources/{id}/Properties/{property}");
                local.pointer(&pointer) != remote.pointer(&pointer)
            })
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(code: &str, memory: u32) -> Value {
        yaml::parse(&format!(
            "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Metadata:\n      SamResourceId: Fn\n    Properties:\n      CodeUri: {code}\n      MemorySize: {memory}\n  Child:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: http://x/{code}.template\n"
        ))
        .unwrap()
    }

    #[test]
    fn code_locations_are_not_template_changes() {
        let (a, b) = (template("s3://b/one", 128), template("s3://b/two", 128));
        assert_eq!(sanitised(&a), sanitised(&b));
        assert_eq!(code_changes(&a, &b), ["Fn"]);
        assert!(code_changes(&a, &a).is_empty());
        assert_ne!(sanitised(&a), sanitised(&template("s3://b/one", 256)));
        assert!(sanitised(&a)["Resources"]["Fn"].get("Metadata").is_none());
    }
}
