//! The auto dependency layer (spec §2.4): for `accel sync`, the dependencies
//! of each Python and Node function go into a layer of their own, in the
//! nested stack `AwsSamAutoDependencyLayerNestedStack`, so that a code sync
//! sends only the function's own code. Names and wiring are sam's, so a
//! stack synced by one tool is understood by the other.

use std::path::{Path, PathBuf};

use md5::Digest;
use serde_json::{Value, json};

use super::graph::BuildUnit;
use super::workflow::Workflow;

/// Logical id of the nested stack that holds the layers.
pub(crate) const NESTED_STACK: &str = "AwsSamAutoDependencyLayerNestedStack";

/// File name of the nested template, next to each stack's template.
pub(crate) const NESTED_TEMPLATE: &str = "adl_nested_template.yaml";

const CREATED_BY: &str = "AWS SAM CLI sync command";

/// One function's dependency layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdlLayer {
    /// The function's full path.
    pub(crate) function: String,
    /// The function's stack (`""` for the root).
    pub(crate) stack_path: String,
    /// The function's logical id.
    pub(crate) function_logical_id: String,
    /// The layer's logical id in the nested stack.
    pub(crate) layer_logical_id: String,
    /// The layer's name.
    pub(crate) layer_name: String,
    /// The function's runtime.
    pub(crate) runtime: String,
    /// The layer folder (holding `python/` or `nodejs/`).
    pub(crate) folder: PathBuf,
}

fn md5_8(text: &str) -> String {
    hex::encode(md5::Md5::digest(text.as_bytes()))[..8].to_string()
}

fn alphanumeric(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).collect()
}

/// `<full path, alphanumerics only, 48 chars><md5[:8]>DepLayer`.
pub(crate) fn layer_logical_id(full_path: &str) -> String {
    let clean: String = alphanumeric(full_path).chars().take(48).collect();
    format!("{clean}{}DepLayer", md5_8(full_path))
}

/// `<stack[:16]><md5(stack)[:8]>-<full path[:22]><md5(full path)[:8]>-DepLayer`.
pub(crate) fn layer_name(stack_name: &str, full_path: &str) -> String {
    let stack: String = stack_name.chars().take(16).collect();
    let function: String = alphanumeric(full_path).chars().take(22).collect();
    format!("{stack}{}-{function}{}-DepLayer", md5_8(stack_name), md5_8(full_path))
}

/// Whether a unit's dependencies go into layers: Python and Node functions
/// whose workflow installs them separately.
pub(crate) fn eligible(unit: &BuildUnit) -> bool {
    !unit.is_layer() && matches!(unit.workflow, Workflow::Pip | Workflow::Uv | Workflow::Npm)
}

/// The layers of a unit's functions.
pub(crate) fn layers_of(unit: &BuildUnit, stack_name: &str, build_dir: &Path) -> Vec<AdlLayer> {
    unit.resources()
        .into_iter()
        .zip(&unit.logical_ids)
        .map(|(function, logical_id)| {
            let layer_logical_id = layer_logical_id(&function);
            AdlLayer {
                layer_name: layer_name(stack_name, &function),
                folder: build_dir.join(&unit.stack_path).join(&layer_logical_id),
                layer_logical_id,
                function,
                stack_path: unit.stack_path.clone(),
                function_logical_id: logical_id.clone(),
                runtime: unit.runtime.clone(),
            }
        })
        .collect()
}

/// The README sam puts in each layer.
pub(crate) fn readme(function: &str) -> String {
    format!(
        "This layer contains dependencies of function {function} and automatically added by AWS SAM CLI command 'sam sync'"
    )
}

/// The nested template holding `layers` (all of one stack).
pub(crate) fn nested_template(layers: &[&AdlLayer]) -> Value {
    let mut resources = serde_json::Map::new();
    let mut outputs = serde_json::Map::new();
    for layer in layers {
        resources.insert(
            layer.layer_logical_id.clone(),
            json!({
                "Type": "AWS::Serverless::LayerVersion",
                "Properties": {
                    "LayerName": layer.layer_name,
                    "Description": format!("Auto created layer for dependencies of function {}", layer.function),
                    "ContentUri": layer.folder.to_string_lossy(),
                    "RetentionPolicy": "Delete",
                    "CompatibleRuntimes": [layer.runtime],
                },
                "Metadata": { "CreatedBy": CREATED_BY },
            }),
        );
        outputs.insert(layer.layer_logical_id.clone(), json!({ "Value": { "Ref": layer.layer_logical_id } }));
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "AWS SAM CLI Nested Stack for Auto Dependency Layer Creation",
        "Metadata": { "SamCliInfo": format!("accel {}", env!("CARGO_PKG_VERSION")), "key": CREATED_BY },
        "Resources": resources,
        "Outputs": outputs,
    })
}

/// Adds the nested stack to a stack's template and appends each function's
/// layer to its `Layers`.
pub(crate) fn wire(template: &mut Value, layers: &[&AdlLayer], nested_template: &Path) {
    let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) else { return };
    for layer in layers {
        let Some(props) = resources
            .get_mut(&layer.function_logical_id)
            .and_then(Value::as_object_mut)
            .and_then(|r| r.entry("Properties").or_insert_with(|| json!({})).as_object_mut())
        else {
            continue;
        };
        let reference = json!({ "Fn::GetAtt": [NESTED_STACK, format!("Outputs.{}", layer.layer_logical_id)] });
        match props.get_mut("Layers").and_then(Value::as_array_mut) {
            Some(existing) => existing.push(reference),
            None => {
                props.insert("Layers".into(), json!([reference]));
            }
        }
    }
    // First in the map: order means nothing to CloudFormation, but emulators
    // that create resources in template order then resolve the layer outputs.
    let nested = json!({
        "Type": "AWS::CloudFormation::Stack",
        "DeletionPolicy": "Delete",
        "Properties": { "TemplateURL": nested_template.to_string_lossy() },
        "Metadata": { "CreatedBy": CREATED_BY },
    });
    let rest = std::mem::take(resources);
    resources.insert(NESTED_STACK.to_string(), nested);
    resources.extend(rest.into_iter().filter(|(id, _)| id != NESTED_STACK));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_sam() {
        assert_eq!(layer_logical_id("HelloFunction"), format!("HelloFunction{}DepLayer", md5_8("HelloFunction")));
        assert!(layer_logical_id("Child/ChildFn").starts_with("ChildChildFn"));
        let name = layer_name("my-stack", "HelloFunction");
        assert_eq!(name, format!("my-stack{}-HelloFunction{}-DepLayer", md5_8("my-stack"), md5_8("HelloFunction")));
        let long = layer_name("a-very-long-stack-name-indeed", "AFunctionWithAVeryLongLogicalIdIndeed");
        assert!(long.starts_with("a-very-long-stac") && long.len() <= 16 + 8 + 1 + 22 + 8 + 9, "{long}");
    }

    #[test]
    fn wiring_appends_the_layer() {
        let layer = AdlLayer {
            function: "Fn".into(),
            stack_path: String::new(),
            function_logical_id: "Fn".into(),
            layer_logical_id: layer_logical_id("Fn"),
            layer_name: layer_name("s", "Fn"),
            runtime: "python3.12".into(),
            folder: "/b/FnDep".into(),
        };
        let mut template = json!({"Resources": {"Fn": {"Type": "AWS::Serverless::Function",
            "Properties": {"Layers": [{"Ref": "Mine"}]}}}});
        wire(&mut template, &[&layer], Path::new("/b/adl_nested_template.yaml"));
        let layers = &template["Resources"]["Fn"]["Properties"]["Layers"];
        assert_eq!(layers[0], json!({"Ref": "Mine"}));
        assert_eq!(layers[1]["Fn::GetAtt"][1], format!("Outputs.{}", layer.layer_logical_id));
        assert_eq!(template["Resources"][NESTED_STACK]["Properties"]["TemplateURL"], "/b/adl_nested_template.yaml");
        let nested = nested_template(&[&layer]);
        assert_eq!(nested["Resources"][&layer.layer_logical_id]["Properties"]["ContentUri"], "/b/FnDep");
    }
}
