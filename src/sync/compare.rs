//! What changed between two versions of a template tree, per resource and
//! per property (spec §2.6, issue 15): code locations (a code sync),
//! configuration the service APIs can change ([`hotswappable`]), or
//! anything else (a CloudFormation deploy, with the reason). Globals are
//! merged into both sides first, so a `Globals.Function` edit is a change of
//! every function it reaches. Pure functions over templates already read.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::package::template::Packaged;
use crate::template::globals::Globals;
use crate::template::kind::ResourceKind;
use crate::template::yaml;

/// The deployed templates, by stack path (`""` for the root, `Child/` …).
pub(crate) type RemoteTemplates = HashMap<String, Value>;

/// A change only CloudFormation can deploy, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Structural {
    /// The resource's full path, or the section or stack that changed.
    pub(crate) what: String,
    /// Why (`Events changed`, `added` …).
    pub(crate) why: String,
}

impl std::fmt::Display for Structural {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.why)
    }
}

/// Every change between two template trees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Full paths whose code (or definition file) location changed.
    pub(crate) code: BTreeSet<String>,
    /// Full path → hotswappable properties that changed.
    pub(crate) config: BTreeMap<String, Vec<String>>,
    /// What needs CloudFormation.
    pub(crate) structural: Vec<Structural>,
}

impl Changes {
    /// Adds `other`, a nested stack's changes.
    pub(crate) fn extend(&mut self, other: Changes) {
        self.code.extend(other.code);
        self.config.extend(other.config);
        self.structural.extend(other.structural);
    }
}

/// The properties of each resource kind that a service API changes in
/// place, besides code: Lambda's `UpdateFunctionConfiguration`, Step
/// Functions' `UpdateStateMachine`, API Gateway's `PutRestApi`/`ReimportApi`
/// for an inline definition.
pub(crate) fn hotswappable(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::ServerlessFunction | ResourceKind::LambdaFunction => &[
            "Environment",
            "Description",
            "MemorySize",
            "Timeout",
            "Handler",
            "Runtime",
            "Layers",
            "EphemeralStorage",
            "Tracing",
            "TracingConfig",
            "LoggingConfig",
        ],
        ResourceKind::ServerlessStateMachine => &["Definition", "DefinitionSubstitutions"],
        ResourceKind::StateMachine => &["Definition", "DefinitionString", "DefinitionSubstitutions"],
        ResourceKind::ServerlessApi | ResourceKind::ServerlessHttpApi => &["DefinitionBody"],
        ResourceKind::HttpApi => &["Body"],
        _ => &[],
    }
}

/// Compares the packaged template tree with the deployed one.
pub(crate) fn packaged_changes(packaged: &Packaged, remote: &RemoteTemplates) -> Changes {
    let mut changes = Changes::default();
    compare_tree("", packaged, remote, &mut changes);
    changes
}

fn compare_tree(prefix: &str, packaged: &Packaged, remote: &RemoteTemplates, changes: &mut Changes) {
    let Some(deployed) = remote.get(prefix) else {
        let what = if prefix.is_empty() { "the stack".to_string() } else { prefix.trim_end_matches('/').to_string() };
        changes.structural.push(Structural { what, why: "its deployed template is unknown".into() });
        return;
    };
    // Compare what a parse of the uploaded text gives, as for the remote.
    match yaml::parse(&packaged.body()) {
        Ok(local) => changes.extend(diff(prefix, deployed, &local)),
        Err(e) => changes.structural.push(Structural { what: prefix.into(), why: e.message }),
    }
    for (logical_id, child) in &packaged.children {
        compare_tree(&format!("{prefix}{logical_id}/"), child, remote, changes);
    }
}

/// Compares two versions of one stack's template; full paths get `prefix`.
pub(crate) fn diff(prefix: &str, old: &Value, new: &Value) -> Changes {
    let mut changes = Changes::default();
    let structural = |what: &str, why: String| Structural { what: format!("{prefix}{what}"), why };
    let empty = Map::new();
    let sections = |t: &Value| t.as_object().cloned().unwrap_or_default();
    let (old_sections, new_sections) = (sections(old), sections(new));
    let names: BTreeSet<&String> = old_sections.keys().chain(new_sections.keys()).collect();
    for name in names {
        // Resources are compared one by one; Globals through what they reach.
        if name != "Resources" && name != "Globals" && old_sections.get(name) != new_sections.get(name) {
            changes.structural.push(structural(name, "changed".into()));
        }
    }
    // Globals of other sections also reach resources SAM adds itself (the
    // implicit APIs), which no comparison of `Resources` sees.
    let globals = |t: &Value| t.get("Globals").and_then(Value::as_object).cloned().unwrap_or_default();
    let (old_g, new_g) = (globals(old), globals(new));
    for section in old_g.keys().chain(new_g.keys()).collect::<BTreeSet<_>>() {
        if section != "Function" && old_g.get(section) != new_g.get(section) {
            changes.structural.push(structural(&format!("Globals.{section}"), "changed".into()));
        }
    }
    let (old_globals, new_globals) = match (Globals::parse(old), Globals::parse(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (_, Err(e)) | (Err(e), _) => {
            changes.structural.push(structural("Globals", e.to_string()));
            return changes;
        }
    };
    let resources = |t: &Value| t.get("Resources").and_then(Value::as_object).cloned().unwrap_or_default();
    let (old_resources, new_resources) = (resources(old), resources(new));
    let ids: BTreeSet<&String> = old_resources.keys().chain(new_resources.keys()).collect();
    for id in ids {
        let (Some(before), Some(after)) = (old_resources.get(id), new_resources.get(id)) else {
            let why = if old_resources.contains_key(id) { "removed" } else { "added" };
            changes.structural.push(structural(id, why.into()));
            continue;
        };
        let kind_name = after.get("Type").and_then(Value::as_str).unwrap_or_default();
        if before.get("Type") != after.get("Type") {
            changes.structural.push(structural(id, "Type changed".into()));
            continue;
        }
        let kind = ResourceKind::of(kind_name);
        let attributes = |r: &Value| {
            let mut r = r.as_object().cloned().unwrap_or_default();
            r.remove("Properties");
            if let Some(Value::Object(metadata)) = r.get_mut("Metadata") {
                metadata.remove("SamResourceId");
            }
            if r.get("Metadata").and_then(Value::as_object).is_some_and(Map::is_empty) {
                r.remove("Metadata");
            }
            r
        };
        let (attrs_before, attrs_after) = (attributes(before), attributes(after));
        for attribute in attrs_before.keys().chain(attrs_after.keys()).collect::<BTreeSet<_>>() {
            if attrs_before.get(attribute) != attrs_after.get(attribute) {
                changes.structural.push(structural(id, format!("{attribute} changed")));
            }
        }
        let merged = |globals: &Globals, resource: &Value| globals.merge(kind_name, resource).ok();
        let (props_before, props_after) = (merged(&old_globals, before), merged(&new_globals, after));
        let (props_before, props_after) = (
            props_before.as_ref().and_then(Value::as_object).unwrap_or(&empty),
            props_after.as_ref().and_then(Value::as_object).unwrap_or(&empty),
        );
        let code = kind.map_or(&[][..], ResourceKind::code_properties);
        let config = kind.map_or(&[][..], hotswappable);
        let nested = kind.and_then(ResourceKind::nested_template_property);
        for property in props_before.keys().chain(props_after.keys()).collect::<BTreeSet<_>>() {
            let (a, b) = (props_before.get(property), props_after.get(property));
            if a == b {
                continue;
            }
            let path = format!("{prefix}{id}");
            if code.contains(&property.as_str()) {
                changes.code.insert(path);
            } else if nested == Some(property.as_str())
                && a.is_some_and(Value::is_string)
                && b.is_some_and(Value::is_string)
            {
                // A nested template's location: its own changes are compared.
            } else if config.contains(&property.as_str()) {
                // A new runtime needs a new build (wheels, native modules) as well.
                if property == "Runtime" {
                    changes.code.insert(path.clone());
                }
                changes.config.entry(path).or_default().push(property.clone());
            } else {
                changes.structural.push(structural(id, format!("{property} changed")));
            }
        }
    }
    changes
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
    fn code_locations_are_code_changes() {
        let (a, b) = (template("s3://b/one", 128), template("s3://b/two", 128));
        let changes = diff("", &a, &b);
        assert_eq!(changes.code, BTreeSet::from(["Fn".to_string()]));
        assert!(changes.config.is_empty() && changes.structural.is_empty());
        assert_eq!(diff("", &a, &a), Changes::default());
        let memory = diff("P/", &a, &template("s3://b/one", 256));
        assert_eq!(memory.config, BTreeMap::from([("P/Fn".to_string(), vec!["MemorySize".to_string()])]));
        assert!(memory.structural.is_empty() && memory.code.is_empty());
    }

    #[test]
    fn everything_else_is_structural_with_a_reason() {
        let old = yaml::parse(
            "Globals:\n  Function:\n    Timeout: 3\nResources:\n  A:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: a, Events: {}}\n  B:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: b}\n",
        )
        .unwrap();
        let new = yaml::parse(
            "Globals:\n  Function:\n    Timeout: 9\nResources:\n  A:\n    Type: AWS::Serverless::Function\n    DependsOn: B\n    Properties: {CodeUri: a, Events: {E: {Type: Api}}}\n  B:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: b}\n  C:\n    Type: AWS::SNS::Topic\nOutputs: {}\n",
        )
        .unwrap();
        let changes = diff("", &old, &new);
        let reasons: Vec<String> = changes.structural.iter().map(ToString::to_string).collect();
        assert_eq!(reasons, ["Outputs: changed", "A: DependsOn changed", "A: Events changed", "C: added"]);
        // The Globals edit reaches both functions.
        assert_eq!(
            changes.config,
            BTreeMap::from([
                ("A".to_string(), vec!["Timeout".to_string()]),
                ("B".to_string(), vec!["Timeout".to_string()])
            ])
        );
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
        let changes = packaged_changes(&root, &remote);
        assert_eq!(changes.code, BTreeSet::from(["Child/Fn".to_string()]));
        assert!(changes.config.is_empty() && changes.structural.is_empty(), "{changes:?}");
        let mut changed = remote.clone();
        changed.insert("Child/".into(), template("s3://b/c2", 512));
        assert_eq!(packaged_changes(&root, &changed).config["Child/Fn"], ["MemorySize"]);
        let mut missing = remote;
        missing.remove("Child/");
        assert_eq!(
            packaged_changes(&root, &missing).structural[0].to_string(),
            "Child: its deployed template is unknown"
        );
    }
}
