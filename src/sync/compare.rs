//! Whether the first infra sync may be skipped (spec §2.6): the packaged
//! template tree compared with the deployed one, artifact locations aside.
//! The resources whose artifacts differ are what a code sync must then
//! push. Pure functions over templates already read.

use std::collections::HashMap;

use serde_json::Value;

use crate::package::template::Packaged;
use crate::template::kind::ResourceKind;
use crate::template::yaml;

/// The deployed templates, by stack path (`""` for the root, `Child/` …).
pub(crate) type RemoteTemplates = HashMap<String, Value>;

/// The full paths whose code differs when nothing else does; `None` when a
/// deploy is needed (a template differs or is missing).
pub(crate) fn code_only_changes(packaged: &Packaged, remote: &RemoteTemplates) -> Option<Vec<String>> {
    let mut changed = Vec::new();
    compare("", packaged, remote, &mut changed).then_some(changed)
}

fn compare(prefix: &str, packaged: &Packaged, remote: &RemoteTemplates, changed: &mut Vec<String>) -> bool {
    let Some(deployed) = remote.get(prefix) else { return false };
    // Compare what a parse of the uploaded text gives, as for the remote.
    let Ok(local) = yaml::parse(&packaged.body()) else { return false };
    if sanitised(&local) != sanitised(deployed) {
        return false;
    }
    changed.extend(code_changes(&local, deployed).into_iter().map(|id| format!("{prefix}{id}")));
    packaged
        .children
        .iter()
        .all(|(logical_id, child)| compare(&format!("{prefix}{logical_id}/"), child, remote, changed))
}

/// The template without code locations, nested stack locations and SAM's
/// resource ids.
pub(crate) fn sanitised(template: &Value) -> Value {
    let mut template = template.clone();
    let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) else { return template };
    for resource in resources.values_mut() {
        let kind = resource.get("Type").and_then(Value::as_str).and_then(ResourceKind::of);
        if let (Some(kind), Some(props)) = (kind, resource.get_mut("Properties").and_then(Value::as_object_mut)) {
            for property in kind.code_properties() {
                props.remove(*property);
            }
            if let Some(property) = kind.nested_template_property()
                && props.get(property).is_some_and(Value::is_string)
            {
                props.remove(property);
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

/// Logical ids whose code properties differ between the two templates.
pub(crate) fn code_changes(local: &Value, remote: &Value) -> Vec<String> {
    let Some(resources) = local.get("Resources").and_then(Value::as_object) else { return Vec::new() };
    resources
        .iter()
        .filter(|(id, resource)| {
            let kind = resource.get("Type").and_then(Value::as_str).and_then(ResourceKind::of);
            kind.map_or(&[][..], ResourceKind::code_properties).iter().any(|property| {
                let pointer = format!("/Resources/{id}/Properties/{property}");
                local.pointer(&pointer) != remote.pointer(&pointer)
            })
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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

    #[test]
    fn nested_stacks_are_compared_too() {
        let child = Packaged { template: template("s3://b/c2", 128), children: BTreeMap::new() };
        let root =
            Packaged { template: template("s3://b/r1", 128), children: BTreeMap::from([("Child".to_string(), child)]) };
        let remote = RemoteTemplates::from([
            (String::new(), template("s3://b/r1", 128)),
            ("Child/".to_string(), template("s3://b/c1", 128)),
        ]);
        assert_eq!(code_only_changes(&root, &remote), Some(vec!["Child/Fn".to_string()]));
        let mut changed = remote.clone();
        changed.insert("Child/".into(), template("s3://b/c2", 512));
        assert_eq!(code_only_changes(&root, &changed), None, "a nested template change needs a deploy");
        let mut missing = remote;
        missing.remove("Child/");
        assert_eq!(code_only_changes(&root, &missing), None);
    }
}
