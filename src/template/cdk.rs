//! CDK-synthesized templates, as sam's `ResourceMetadataNormalizer` reads
//! them: a resource whose `Metadata` names an asset (`aws:asset:path` and
//! `aws:asset:property`, e.g. `Code`) is built from that local folder instead
//! of the S3 location CDK wrote; `aws:asset:is-bundled: true` means CDK
//! bundled it already (sam's `SkipBuild`); `aws:cdk:path` gives the id sam
//! reports the resource by.

use serde_json::{Map, Value};

/// The metadata key naming the asset's local folder or file.
pub(crate) const ASSET_PATH: &str = "aws:asset:path";
const ASSET_PROPERTY: &str = "aws:asset:property";
const ASSET_BUNDLED: &str = "aws:asset:is-bundled";
const CDK_PATH: &str = "aws:cdk:path";
/// Image assets are built with Docker from the metadata below.
const IMAGE_ASSET_PROPERTY: &str = "Code.ImageUri";
const DOCKERFILE_PATH: &str = "aws:asset:dockerfile-path";
const DOCKER_BUILD_ARGS: &str = "aws:asset:docker-build-args";
const DOCKER_EXTRA_PARAMS: &str = "aws:asset:docker-build-extra-params";
const NESTED_STACK_SUFFIX: &str = ".NestedStack";

/// The asset a resource's metadata names, as (dotted property, local path),
/// unless sam marked the metadata as normalized already. An image asset's
/// "path" is the image name sam builds it as: the lowercased logical id.
fn asset(metadata: &Value, logical_id: &str) -> Option<(String, String)> {
    if metadata.get("SamNormalized").is_some_and(truthy) {
        return None;
    }
    let property = metadata.get(ASSET_PROPERTY).and_then(Value::as_str).filter(|p| !p.is_empty())?;
    let path = if property == IMAGE_ASSET_PROPERTY {
        logical_id.to_lowercase()
    } else {
        metadata.get(ASSET_PATH).and_then(Value::as_str).filter(|p| !p.is_empty())?.to_string()
    };
    Some((property.to_string(), path))
}

/// Points the asset's property (`Code`, `TemplateURL` …) at the asset's
/// local path, gives an image asset the Docker metadata sam builds it with,
/// and turns `aws:asset:is-bundled: true` into `SkipBuild`, as sam does
/// before it builds.
pub(crate) fn normalize(properties: &mut Value, metadata: &mut Value, logical_id: &str) {
    if let Some((property, path)) = asset(metadata, logical_id) {
        if property == IMAGE_ASSET_PROPERTY
            && let Some(map) = metadata.as_object_mut()
        {
            let get = |key: &str, default: Value| map.get(key).cloned().unwrap_or(default);
            let docker = [
                ("Dockerfile", get(DOCKERFILE_PATH, Value::String(String::new()))),
                ("DockerContext", get(ASSET_PATH, Value::String(String::new()))),
                ("DockerBuildArgs", get(DOCKER_BUILD_ARGS, Value::Object(Map::new()))),
                ("DockerBuildExtraParams", get(DOCKER_EXTRA_PARAMS, Value::Array(Vec::new()))),
            ];
            for (key, value) in docker {
                map.insert(key.into(), value);
            }
        }
        let path = Value::String(path);
        if !properties.is_object() {
            *properties = Value::Object(Map::new());
        }
        let mut target = properties;
        let mut keys = property.split('.').peekable();
        while let Some(key) = keys.next() {
            let Some(map) = target.as_object_mut() else { break };
            if keys.peek().is_none() {
                map.insert(key.to_string(), path);
                break;
            }
            // sam replaces every level on the way with a fresh mapping.
            target = map.entry(key.to_string()).or_insert(Value::Null);
            *target = Value::Object(Map::new());
        }
    }
    if metadata.get(ASSET_BUNDLED).is_some_and(truthy)
        && let Some(map) = metadata.as_object_mut()
    {
        map.insert("SkipBuild".into(), Value::Bool(true));
    }
}

/// The id sam gives a resource: `Metadata.SamResourceId`, else the CDK
/// construct id from `aws:cdk:path` (`Stack/Fn/Resource` → `Fn`), else the
/// logical id.
pub(crate) fn resource_id(resource_type: &str, metadata: &Value, logical_id: &str) -> String {
    if let Some(id) = metadata.get("SamResourceId").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        return id.to_string();
    }
    let Some(cdk_path) = metadata.get(CDK_PATH).and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        return logical_id.to_string();
    };
    let parts: Vec<&str> = cdk_path.split('/').collect();
    if !(2..=3).contains(&parts.len()) {
        return logical_id.to_string();
    }
    let is_stack = resource_type == "AWS::CloudFormation::Stack";
    let (last, before) = (parts[parts.len() - 1], parts[parts.len() - 2]);
    let id = if last == "Resource" || (is_stack && before.ends_with(NESTED_STACK_SUFFIX)) { before } else { last };
    match id.strip_suffix(NESTED_STACK_SUFFIX) {
        Some(stripped) if is_stack => stripped.to_string(),
        _ => id.to_string(),
    }
}

/// The metadata sam writes for a built resource or a nested stack in the
/// built template: its asset marked normalized, `SamResourceId` set, and
/// the keys sorted at every level (as sam writes them).
pub(crate) fn built_metadata(resource: &Value, logical_id: &str) -> Value {
    let mut metadata =
        resource.get("Metadata").cloned().filter(Value::is_object).unwrap_or_else(|| Value::Object(Map::new()));
    let normalized = asset(&metadata, logical_id).is_some();
    if let Some(map) = metadata.as_object_mut() {
        if normalized {
            map.insert("SamNormalized".into(), Value::Bool(true));
        }
        let resource_type = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
        let id = resource_id(resource_type, resource.get("Metadata").unwrap_or(&Value::Null), logical_id);
        map.insert("SamResourceId".into(), Value::String(id));
    }
    sorted(metadata)
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Python's truthiness for a metadata flag.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn asset_replaces_the_property_and_bundled_skips_the_build() {
        let mut properties = json!({"Code": {"S3Bucket": "b", "S3Key": "k.zip"}, "Handler": "h"});
        let mut metadata =
            json!({"aws:asset:path": "asset.1", "aws:asset:property": "Code", "aws:asset:is-bundled": true});
        normalize(&mut properties, &mut metadata, "Fn");
        assert_eq!(properties, json!({"Code": "asset.1", "Handler": "h"}));
        assert_eq!(metadata["SkipBuild"], json!(true));

        let mut nested = json!({});
        let mut dotted = json!({"aws:asset:path": "a", "aws:asset:property": "Content.S3Key"});
        normalize(&mut nested, &mut dotted, "Fn");
        assert_eq!(nested, json!({"Content": {"S3Key": "a"}}));

        // An image asset: built by Docker as the lowercased logical id.
        let mut image = json!({"Code": {"ImageUri": {"Fn::Sub": "x"}}});
        let mut metadata = json!({"aws:asset:path": "asset.3", "aws:asset:property": "Code.ImageUri",
            "aws:asset:dockerfile-path": "Dockerfile"});
        normalize(&mut image, &mut metadata, "ImageFn12AB");
        assert_eq!(image, json!({"Code": {"ImageUri": "imagefn12ab"}}));
        assert_eq!(metadata["Dockerfile"], "Dockerfile");
        assert_eq!(metadata["DockerContext"], "asset.3");
        assert_eq!(metadata["DockerBuildArgs"], json!({}));

        // Already normalized, or half the pair: untouched.
        for metadata in [
            json!({"aws:asset:path": "a", "aws:asset:property": "Code", "SamNormalized": true}),
            json!({"aws:asset:path": "a"}),
            json!({"aws:asset:property": "Code"}),
        ] {
            let mut properties = json!({"Code": {"S3Key": "k"}});
            normalize(&mut properties, &mut metadata.clone(), "Fn");
            assert_eq!(properties, json!({"Code": {"S3Key": "k"}}));
        }
    }

    #[test]
    fn resource_id_follows_sam() {
        let id = |metadata: Value| resource_id("AWS::Lambda::Function", &metadata, "Logical1234");
        assert_eq!(id(Value::Null), "Logical1234");
        assert_eq!(id(json!({"SamResourceId": "Mine", "aws:cdk:path": "S/Fn/Resource"})), "Mine");
        assert_eq!(id(json!({"aws:cdk:path": "S/Fn/Resource"})), "Fn");
        assert_eq!(id(json!({"aws:cdk:path": "S/Fn"})), "Fn");
        assert_eq!(id(json!({"aws:cdk:path": "S/A/B/Resource"})), "Logical1234");
        let stack = json!({"aws:cdk:path": "S/Child.NestedStack/Child.NestedStackResource"});
        assert_eq!(resource_id("AWS::CloudFormation::Stack", &stack, "L"), "Child");
    }

    #[test]
    fn built_metadata_is_normalized_and_sorted() {
        let resource = json!({"Metadata": {
            "aws:cdk:path": "S/Fn/Resource", "aws:asset:path": "asset.1", "aws:asset:property": "Code",
            "BuildProperties": {"Zeta": 1, "Alpha": 2}}});
        let metadata = built_metadata(&resource, "Fn1234");
        let keys: Vec<&String> = metadata.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "BuildProperties",
                "SamNormalized",
                "SamResourceId",
                "aws:asset:path",
                "aws:asset:property",
                "aws:cdk:path"
            ]
        );
        assert_eq!(metadata["SamResourceId"], json!("Fn"));
        let inner: Vec<&String> = metadata["BuildProperties"].as_object().unwrap().keys().collect();
        assert_eq!(inner, ["Alpha", "Zeta"]);
    }
}
