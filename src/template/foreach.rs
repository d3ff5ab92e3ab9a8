//! `Fn::ForEach` loops of the `AWS::LanguageExtensions` transform, expanded
//! locally as sam ≥ 1.160 does with `--language-extensions`: the build and
//! the sync plan see one resource per item, while the built template keeps
//! the loops (CloudFormation expands them at deploy) with their artifact
//! paths put back — one path for a static `CodeUri`, a generated
//! `SAM<Property><Loops>` mapping for a `CodeUri` that names the identifier.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::intrinsics::Resolver;
use super::kind::path_properties;

/// The transform that declares the loops.
const TRANSFORM: &str = "AWS::LanguageExtensions";
/// A loop's key is this prefix and the loop's name.
const PREFIX: &str = "Fn::ForEach::";
/// CloudFormation's limit on nested loops.
const MAX_DEPTH: usize = 5;
/// The sections whose keys may be loops, in the order sam expands them.
const SECTIONS: [&str; 3] = ["Conditions", "Resources", "Outputs"];

/// A loop that cannot be expanded; each names the loop (sam's words where
/// sam has them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ForEachError {
    /// Not `[Identifier, Collection, {Body}]`.
    #[error("{0} layout is incorrect")]
    Layout(String),
    /// The identifier is also a parameter's name.
    #[error("{key}: identifier '{identifier}' conflicts with parameter name")]
    IdentifierIsParameter { key: String, identifier: String },
    /// An enclosing loop already uses the identifier.
    #[error("{key}: identifier '{identifier}' conflicts with another loop identifier")]
    IdentifierReused { key: String, identifier: String },
    /// The loop's name is also a parameter's name.
    #[error("{key}: loop name '{name}' conflicts with parameter name")]
    NameIsParameter { key: String, name: String },
    /// More than CloudFormation's five nested loops.
    #[error(
        "{key}: Fn::ForEach nesting depth of {depth} exceeds the maximum allowed depth of {MAX_DEPTH}. CloudFormation supports up to {MAX_DEPTH} nested Fn::ForEach loops."
    )]
    TooDeep { key: String, depth: usize },
    /// Two items (or a loop and a plain entry) give the same key.
    #[error("Fn::ForEach expansion in '{key}' produced logical IDs that conflict with existing entries: {ids}")]
    Conflict { key: String, ids: String },
    /// The collection needs the cloud (`!GetAtt`, an import, an SSM value)
    /// or a parameter without a value.
    #[error(
        "{key}: the collection {collection} cannot be resolved locally; give a list, or a !Ref to a CommaDelimitedList parameter with a Default or a value in --parameter-overrides"
    )]
    Unresolvable { key: String, collection: String },
    /// Two resources of one loop have a dynamic path of the same property,
    /// and one's key is only identifiers: its mapping name would not be unique.
    #[error(
        "{key}: resource key '{resource}' produces an empty suffix after sanitization; each resource key in the loop body needs an alphanumeric part besides the loop identifiers to name its generated mapping"
    )]
    MappingName { key: String, resource: String },
    /// The template has loops but expansion is off.
    #[error(
        "{0}: Fn::ForEach is expanded only with --language-extensions (or SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS=1 in the environment)"
    )]
    Disabled(String),
    /// The template has loops but not the transform that declares them.
    #[error("{0}: Fn::ForEach needs `Transform: AWS::LanguageExtensions` in the template")]
    NoTransform(String),
}

impl ForEachError {
    /// The key of the loop at fault, to find its line.
    pub(crate) fn key(&self) -> &str {
        match self {
            ForEachError::Layout(key) | ForEachError::Disabled(key) | ForEachError::NoTransform(key) => key,
            ForEachError::IdentifierIsParameter { key, .. }
            | ForEachError::IdentifierReused { key, .. }
            | ForEachError::NameIsParameter { key, .. }
            | ForEachError::TooDeep { key, .. }
            | ForEachError::Conflict { key, .. }
            | ForEachError::Unresolvable { key, .. }
            | ForEachError::MappingName { key, .. } => key,
        }
    }
}

/// A template whose loops were expanded, as written, with what putting its
/// built artifact paths back needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Original {
    /// The template as written, loops and all.
    template: Value,
    /// Each loop's items as the expansion resolved them, by loop key.
    collections: HashMap<String, Vec<String>>,
    /// The top-level loop each generated resource comes from, by logical id.
    origins: HashMap<String, String>,
}

/// Expands the loops of `template` when `enabled` and the template declares
/// the transform (sam expands nothing otherwise). Returns the template the
/// build and sync work on and, when expanded, the original for the built
/// template. A template with resource loops that is not expanded is
/// refused: sam fails on it too, with a stack trace.
pub(crate) fn expand(
    template: Value,
    resolver: &Resolver,
    enabled: bool,
) -> Result<(Value, Option<Original>), ForEachError> {
    if !(enabled && uses_transform(&template)) {
        return match first_loop(&template) {
            Some(key) if enabled => Err(ForEachError::NoTransform(key)),
            Some(key) => Err(ForEachError::Disabled(key)),
            None => Ok((template, None)),
        };
    }
    check_depth(&template)?;
    let parameters = template.get("Parameters").and_then(Value::as_object).map(|p| p.keys().cloned().collect());
    let mut expander = Expander {
        resolver,
        parameters: parameters.unwrap_or_default(),
        collections: HashMap::new(),
        origins: HashMap::new(),
    };
    let Value::Object(sections) = &template else { return Ok((template, None)) };
    let mut out = sections.clone();
    for name in SECTIONS {
        let Some(Value::Object(section)) = sections.get(name) else { continue };
        let section =
            if name == "Resources" { expander.resources(section)? } else { expander.section(section, &[])? };
        if section.is_empty() && name != "Resources" {
            out.shift_remove(name);
        } else {
            out.insert(name.to_string(), Value::Object(section));
        }
    }
    let original = Original { template, collections: expander.collections, origins: expander.origins };
    original.check_mapping_names()?;
    Ok((Value::Object(out), Some(original)))
}

/// `Fn::ForEach::<Name>`.
fn is_loop(key: &str) -> bool {
    key.starts_with(PREFIX)
}

/// `Transform: AWS::LanguageExtensions`, alone or in a list.
fn uses_transform(template: &Value) -> bool {
    match template.get("Transform") {
        Some(Value::String(t)) => t == TRANSFORM,
        Some(Value::Array(list)) => list.iter().any(|t| t.as_str() == Some(TRANSFORM)),
        _ => false,
    }
}

/// The first loop among the resources: what sam cannot build unexpanded
/// (loops elsewhere it writes back as they are).
fn first_loop(template: &Value) -> Option<String> {
    template.get("Resources")?.as_object()?.keys().find(|k| is_loop(k)).cloned()
}

/// Refuses loops nested deeper than CloudFormation allows, naming the
/// outermost loop of the offending nest.
fn check_depth(template: &Value) -> Result<(), ForEachError> {
    fn depth(node: &Value, current: usize) -> usize {
        match node {
            Value::Object(map) => map
                .iter()
                .map(|(key, value)| match (is_loop(key), value.as_array().and_then(|parts| parts.get(2))) {
                    (true, Some(body)) => depth(body, current + 1),
                    (true, None) => current + 1,
                    (false, _) => depth(value, current),
                })
                .fold(current, usize::max),
            Value::Array(items) => items.iter().map(|v| depth(v, current)).fold(current, usize::max),
            _ => current,
        }
    }
    for name in SECTIONS {
        let Some(Value::Object(section)) = template.get(name) else { continue };
        for (key, value) in section {
            let found = depth(&Value::Object(Map::from_iter([(key.clone(), value.clone())])), 0);
            if found > MAX_DEPTH {
                return Err(ForEachError::TooDeep { key: key.clone(), depth: found });
            }
        }
    }
    Ok(())
}

/// Expands loops in the order sam does, recording each loop's items.
struct Expander<'a> {
    /// Resolves collections (`!Ref` to a parameter, with its override).
    resolver: &'a Resolver,
    /// The template's parameter names, which identifiers and loop names must not reuse.
    parameters: Vec<String>,
    /// See [`Original`].
    collections: HashMap<String, Vec<String>>,
    /// See [`Original`].
    origins: HashMap<String, String>,
}

impl Expander<'_> {
    /// Loops among the resources, then loops among each resource's properties.
    fn resources(&mut self, section: &Map<String, Value>) -> Result<Map<String, Value>, ForEachError> {
        let mut out = Map::new();
        for (key, value) in section {
            if is_loop(key) {
                let mut generated = Map::new();
                for (id, resource) in self.expand_loop(key, value, &[])? {
                    self.origins.insert(id.clone(), key.clone());
                    generated.insert(id, self.properties(resource)?);
                }
                merge(&mut out, generated, key)?;
            } else {
                out.insert(key.clone(), self.properties(value.clone())?);
            }
        }
        Ok(out)
    }

    /// Loops directly among a resource's properties.
    fn properties(&mut self, mut resource: Value) -> Result<Value, ForEachError> {
        if let Some(Value::Object(props)) = resource.get("Properties") {
            let expanded = self.section(props, &[])?;
            resource["Properties"] = Value::Object(expanded);
        }
        Ok(resource)
    }

    /// Loops among the keys of `section`; `parents` are the identifiers of
    /// the enclosing loops.
    fn section(&mut self, section: &Map<String, Value>, parents: &[&str]) -> Result<Map<String, Value>, ForEachError> {
        let mut out = Map::new();
        for (key, value) in section {
            if is_loop(key) {
                let expanded = self.expand_loop(key, value, parents)?;
                merge(&mut out, expanded, key)?;
            } else {
                out.insert(key.clone(), value.clone());
            }
        }
        Ok(out)
    }

    /// One copy of the body per item, then the loops nested in it.
    fn expand_loop(&mut self, key: &str, value: &Value, parents: &[&str]) -> Result<Map<String, Value>, ForEachError> {
        let (identifier, items, body) = self.parse(key, value, parents)?;
        let nested: Vec<&str> = parents.iter().copied().chain([identifier]).collect();
        let mut out = Map::new();
        for item in &items {
            // A body that is only `{Ref: Identifier}` becomes a string.
            let Value::Object(copy) = substitute(body, identifier, item) else {
                return Err(ForEachError::Layout(key.to_string()));
            };
            let expanded = self.section(&copy, &nested)?;
            merge(&mut out, expanded, key)?;
        }
        Ok(out)
    }

    /// Checks a loop in sam's order and resolves its collection.
    fn parse<'v>(
        &mut self,
        key: &str,
        value: &'v Value,
        parents: &[&str],
    ) -> Result<(&'v str, Vec<String>, &'v Value), ForEachError> {
        let layout = || ForEachError::Layout(key.to_string());
        let Some([identifier, collection, body]) = value.as_array().map(Vec::as_slice) else {
            return Err(layout());
        };
        let identifier = identifier.as_str().filter(|i| !i.is_empty()).ok_or_else(layout)?;
        if self.parameters.iter().any(|p| p == identifier) {
            return Err(ForEachError::IdentifierIsParameter { key: key.into(), identifier: identifier.into() });
        }
        if parents.contains(&identifier) {
            return Err(ForEachError::IdentifierReused { key: key.into(), identifier: identifier.into() });
        }
        let name = &key[PREFIX.len()..];
        if self.parameters.iter().any(|p| p == name) {
            return Err(ForEachError::NameIsParameter { key: key.into(), name: name.into() });
        }
        if !body.is_object() {
            return Err(layout());
        }
        let items = self.collection(key, collection)?;
        self.collections.entry(key.to_string()).or_insert_with(|| items.clone());
        Ok((identifier, items, body))
    }

    /// The items: a list, or what an intrinsic (a `!Ref` to a list
    /// parameter) resolves to locally; a comma-separated string is split.
    fn collection(&self, key: &str, collection: &Value) -> Result<Vec<String>, ForEachError> {
        let unresolvable = || ForEachError::Unresolvable { key: key.to_string(), collection: compact(collection) };
        match self.resolver.resolve(collection) {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) if s.contains("{{resolve:") => None,
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<String>>>()
                .ok_or_else(unresolvable),
            Value::String(s) if s.contains("{{resolve:") => Err(unresolvable()),
            Value::String(s) if s.contains(',') => Ok(s.split(',').map(|i| i.trim().to_string()).collect()),
            Value::Object(_) => Err(unresolvable()),
            _ => Err(ForEachError::Layout(key.to_string())),
        }
    }
}

/// Adds `entries` to `out`; a key both have is an error naming the loop.
fn merge(out: &mut Map<String, Value>, entries: Map<String, Value>, key: &str) -> Result<(), ForEachError> {
    let mut clashes: Vec<&String> = entries.keys().filter(|k| out.contains_key(*k)).collect();
    if !clashes.is_empty() {
        clashes.sort();
        let ids = clashes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(ForEachError::Conflict { key: key.to_string(), ids });
    }
    out.extend(entries);
    Ok(())
}

/// `${Identifier}` becomes the item, `&{Identifier}` the item's letters and
/// digits, and `{Ref: Identifier}` the item, in keys and values alike.
fn substitute(value: &Value, identifier: &str, item: &str) -> Value {
    match value {
        Value::String(s) => {
            let alphanumeric: String = item.chars().filter(char::is_ascii_alphanumeric).collect();
            Value::String(
                s.replace(&format!("${{{identifier}}}"), item).replace(&format!("&{{{identifier}}}"), &alphanumeric),
            )
        }
        Value::Object(map) if map.len() == 1 && map.get("Ref").and_then(Value::as_str) == Some(identifier) => {
            Value::String(item.to_string())
        }
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| (substitute_key(k, identifier, item), substitute(v, identifier, item))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, identifier, item)).collect()),
        other => other.clone(),
    }
}

/// [`substitute`] on a mapping key.
fn substitute_key(key: &str, identifier: &str, item: &str) -> String {
    match substitute(&Value::String(key.to_string()), identifier, item) {
        Value::String(s) => s,
        _ => key.to_string(),
    }
}

/// `${Identifier}` only, as sam names the expanded resources when it puts
/// paths back (so `&{…}` keys are not found there, as in sam).
fn substitute_dollar(text: &str, identifier: &str, item: &str) -> String {
    text.replace(&format!("${{{identifier}}}"), item)
}

/// Whether `value` names the identifier: `${Identifier}` in a string or a
/// `{Ref: Identifier}`.
fn mentions(value: &Value, identifier: &str) -> bool {
    match value {
        Value::String(s) => s.contains(&format!("${{{identifier}}}")),
        Value::Object(map) => {
            map.get("Ref").and_then(Value::as_str) == Some(identifier) || map.values().any(|v| mentions(v, identifier))
        }
        Value::Array(items) => items.iter().any(|v| mentions(v, identifier)),
        _ => false,
    }
}

/// A value as one line of JSON, for an error message.
fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// One loop as the write-back walks it.
#[derive(Debug, Clone)]
struct Walk<'a> {
    /// `Fn::ForEach::<Name>`.
    key: &'a str,
    /// The identifier.
    identifier: String,
    /// The items.
    items: Vec<String>,
    /// The loops' names from the outermost, concatenated (`EnvsServices`).
    path: String,
}

/// The artifact paths of a loop body's resources that name the loop's
/// identifier, as (resource key, property).
fn dynamic_paths<'b>(body: &'b Map<String, Value>, identifier: &str) -> Vec<(&'b String, &'static str)> {
    let mut found = Vec::new();
    for (key, resource) in body.iter().filter(|(k, _)| !is_loop(k)) {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default();
        let Some(props) = resource.get("Properties").and_then(Value::as_object) else { continue };
        for prop in path_properties(kind) {
            if props.get(*prop).is_some_and(|v| !v.is_null() && mentions(v, identifier)) {
                found.push((key, *prop));
            }
        }
    }
    found
}

/// Letters and digits of a resource key without its `${…}` parts: the
/// suffix that tells apart two mappings of one loop and property.
fn mapping_suffix(key: &str) -> String {
    let mut out = String::new();
    let mut rest = key;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else { break };
        out.push_str(&rest[..start]);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out.retain(|c| c.is_ascii_alphanumeric());
    out
}

/// Every combination of the outer loops' items, the first loop slowest.
fn combinations(outer: &[Walk<'_>]) -> Vec<Vec<String>> {
    outer.iter().fold(vec![Vec::new()], |acc, walk| {
        acc.iter()
            .flat_map(|prefix| {
                walk.items.iter().map(move |item| prefix.iter().cloned().chain([item.clone()]).collect())
            })
            .collect()
    })
}

impl Original {
    /// Whether the built template keeps resource loops, whose artifacts a
    /// deploy would have to package per item.
    pub(crate) fn has_resource_loops(&self) -> bool {
        first_loop(&self.template).is_some()
    }

    /// The key of the top-level loop that generated resource `id`, to point
    /// an error about it at a line of the file.
    pub(crate) fn origin(&self, id: &str) -> Option<&str> {
        self.origins.get(id).map(String::as_str)
    }

    /// Loop bodies whose dynamic paths would share a mapping name.
    fn check_mapping_names(&self) -> Result<(), ForEachError> {
        let mut failure = Ok(());
        self.walk_loops(&mut |walk, body| {
            if failure.is_err() || walk.items.is_empty() {
                return;
            }
            let dynamic = dynamic_paths(body, &walk.identifier);
            for (resource, prop) in &dynamic {
                let shared = dynamic.iter().filter(|(_, p)| p == prop).count() > 1;
                if shared && mapping_suffix(resource).is_empty() {
                    failure =
                        Err(ForEachError::MappingName { key: walk.key.to_string(), resource: (*resource).clone() });
                }
            }
        });
        failure
    }

    /// Calls `visit` with every loop of the Resources section, outer first.
    fn walk_loops(&self, visit: &mut dyn FnMut(&Walk<'_>, &Map<String, Value>)) {
        fn go<'a>(
            collections: &HashMap<String, Vec<String>>,
            key: &'a str,
            value: &'a Value,
            path: &str,
            visit: &mut dyn FnMut(&Walk<'_>, &Map<String, Value>),
        ) {
            let Some([identifier, _, Value::Object(body)]) = value.as_array().map(Vec::as_slice) else { return };
            let Some(identifier) = identifier.as_str() else { return };
            let items = collections.get(key).cloned().unwrap_or_default();
            let walk =
                Walk { key, identifier: identifier.into(), items, path: format!("{path}{}", &key[PREFIX.len()..]) };
            visit(&walk, body);
            for (k, v) in body.iter().filter(|(k, _)| is_loop(k)) {
                go(collections, k, v, &walk.path, visit);
            }
        }
        let Some(resources) = self.template.get("Resources").and_then(Value::as_object) else { return };
        for (key, value) in resources.iter().filter(|(k, _)| is_loop(k)) {
            go(&self.collections, key, value, "", visit);
        }
    }

    /// The built template, as sam writes it: the template as written, with
    /// the artifact paths of `rewritten` (the expanded template with its
    /// paths rewritten for the build folder) put back. `built` tells
    /// whether a logical id has a built artifact; `relocate` makes a
    /// property's relative path valid from the build folder.
    pub(crate) fn restore(
        &self,
        rewritten: &Value,
        built: &dyn Fn(&str) -> bool,
        relocate: &dyn Fn(&str, &str) -> Option<String>,
    ) -> Value {
        let artifact = |id: &str, prop: &str| -> Option<Value> {
            rewritten.get("Resources")?.get(id)?.get("Properties")?.get(prop).cloned()
        };
        let mut restore =
            Restore { collections: &self.collections, artifact: &artifact, built, relocate, mappings: Vec::new() };
        let mut template = self.template.clone();
        if let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) {
            for (key, resource) in resources.iter_mut() {
                if is_loop(key) {
                    restore.a_loop(key, resource, &[]);
                    continue;
                }
                let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
                for prop in path_properties(&kind) {
                    if let Some(value) = artifact(key, prop)
                        && let Some(props) = resource.get_mut("Properties").and_then(Value::as_object_mut)
                    {
                        props.insert((*prop).to_string(), value);
                    }
                }
            }
        }
        let mut mappings = restore.mappings;
        if !mappings.is_empty()
            && let Some(out) = template.as_object_mut()
        {
            match out.get_mut("Mappings").and_then(Value::as_object_mut) {
                // Added to the user's mappings in loop order.
                Some(existing) => existing.extend(mappings),
                // A section sam creates is written with sorted keys.
                None => {
                    mappings.sort_by(|a, b| a.0.cmp(&b.0));
                    out.insert("Mappings".into(), Value::Object(mappings.into_iter().collect()));
                }
            }
        }
        template
    }
}

/// What putting the paths back into the loops needs, and the mappings it
/// generates (in loop order).
struct Restore<'r> {
    /// Each loop's items, by loop key.
    collections: &'r HashMap<String, Vec<String>>,
    /// A property of an expanded resource in the rewritten template.
    artifact: &'r dyn Fn(&str, &str) -> Option<Value>,
    /// Whether a logical id has a built artifact.
    built: &'r dyn Fn(&str) -> bool,
    /// A property's relative path made valid from the build folder.
    relocate: &'r dyn Fn(&str, &str) -> Option<String>,
    /// The generated mappings, by name, in loop order.
    mappings: Vec<(String, Value)>,
}

impl Restore<'_> {
    /// Puts back the artifact paths of one loop's body resources and of the
    /// loops nested in it; `outer` are the enclosing loops.
    fn a_loop(&mut self, key: &str, value: &mut Value, outer: &[Walk<'_>]) {
        let Some([Value::String(identifier), _, Value::Object(body)]) = value.as_array_mut().map(Vec::as_mut_slice)
        else {
            return;
        };
        let path = format!("{}{}", outer.last().map_or("", |w| w.path.as_str()), &key[PREFIX.len()..]);
        let walk = Walk {
            key,
            identifier: identifier.clone(),
            items: self.collections.get(key).cloned().unwrap_or_default(),
            path,
        };
        let shared: Vec<&'static str> = {
            let dynamic = dynamic_paths(body, &walk.identifier);
            dynamic.iter().map(|(_, p)| *p).filter(|p| dynamic.iter().filter(|(_, q)| q == p).count() > 1).collect()
        };
        let nested: Vec<Walk<'_>> = outer.iter().cloned().chain([walk.clone()]).collect();
        for (resource_key, resource) in body.iter_mut() {
            if is_loop(resource_key) {
                self.a_loop(resource_key, resource, &nested);
                continue;
            }
            let kind = resource.get("Type").and_then(Value::as_str).unwrap_or_default().to_string();
            let Some(props) = resource.get_mut("Properties").and_then(Value::as_object_mut) else { continue };
            for prop in path_properties(&kind) {
                let Some(current) = props.get(*prop).filter(|v| !v.is_null()).cloned() else { continue };
                let restored = if !walk.items.is_empty() && mentions(&current, &walk.identifier) {
                    let mut name = format!("SAM{prop}{}", walk.path);
                    if shared.contains(prop) {
                        name.push_str(&mapping_suffix(resource_key));
                    }
                    self.mapping(&walk, outer, resource_key, prop, &current).map(|(entries, lookup)| {
                        self.mappings.push((name.clone(), entries));
                        json!({ "Fn::FindInMap": [name, lookup, prop] })
                    })
                } else {
                    // A static path: the first item's artifact, as sam does.
                    let first: Option<String> = outer.iter().chain([&walk]).try_fold(resource_key.clone(), |id, w| {
                        w.items.first().map(|item| substitute_dollar(&id, &w.identifier, item))
                    });
                    first.filter(|id| (self.built)(id)).and_then(|id| (self.artifact)(&id, prop))
                };
                let restored = restored
                    .or_else(|| current.as_str().and_then(|path| (self.relocate)(prop, path)).map(Value::String));
                if let Some(value) = restored {
                    props.insert((*prop).to_string(), value);
                }
            }
        }
    }

    /// The mapping of a dynamic artifact path — item (or `Outer-Inner` when
    /// the path names outer identifiers too) to `{Property: artifact}`, sorted
    /// as sam writes it — and the `Fn::FindInMap` key that looks it up. `None`
    /// when no item was built (the path is then left as written).
    fn mapping(
        &self,
        walk: &Walk<'_>,
        outer: &[Walk<'_>],
        resource_key: &str,
        prop: &str,
        current: &Value,
    ) -> Option<(Value, Value)> {
        let referenced: Vec<bool> = outer.iter().map(|w| mentions(current, &w.identifier)).collect();
        let mut entries: BTreeMap<String, Value> = BTreeMap::new();
        for item in &walk.items {
            for combo in combinations(outer) {
                let id = outer
                    .iter()
                    .zip(&combo)
                    .fold(resource_key.to_string(), |id, (w, value)| substitute_dollar(&id, &w.identifier, value));
                let id = substitute_dollar(&id, &walk.identifier, item);
                let Some(value) = (self.built)(&id).then(|| (self.artifact)(&id, prop)).flatten() else { continue };
                let parts: Vec<&str> = combo
                    .iter()
                    .zip(&referenced)
                    .filter(|(_, r)| **r)
                    .map(|(v, _)| v.as_str())
                    .chain([item.as_str()])
                    .collect();
                entries.entry(parts.join("-")).or_insert_with(|| json!({ prop: value }));
            }
        }
        if entries.is_empty() {
            return None;
        }
        let refs: Vec<Value> = outer
            .iter()
            .zip(&referenced)
            .filter(|(_, r)| **r)
            .map(|(w, _)| json!({ "Ref": w.identifier }))
            .chain([json!({ "Ref": walk.identifier })])
            .collect();
        let lookup =
            if refs.len() > 1 { json!({ "Fn::Join": ["-", refs] }) } else { json!({ "Ref": walk.identifier }) };
        Some((Value::Object(entries.into_iter().collect()), lookup))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Pseudo;
    use crate::template::parameters::Overrides;

    const HEAD: &str = "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\n";

    fn load(text: &str, overrides: &[(&str, &str)]) -> Result<(Value, Option<Original>), ForEachError> {
        let template = crate::template::yaml::parse(text).unwrap();
        let overrides: Overrides = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let resolver = Resolver::new(&template, &overrides, Pseudo::default());
        expand(template, &resolver, true)
    }

    fn expanded(text: &str) -> Value {
        load(&format!("{HEAD}{text}"), &[]).unwrap().0
    }

    fn error(text: &str) -> String {
        load(&format!("{HEAD}{text}"), &[]).unwrap_err().to_string()
    }

    fn ids(template: &Value, section: &str) -> Vec<String> {
        template[section].as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn identifiers_are_substituted_in_keys_and_values() {
        let t = expanded(
            "Resources:
  Fn::ForEach::Queues:
    - Name
    - [a.b, c-d, 7, true]
    - Q&{Name}:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: !Sub ${Name}-${AWS::Region}
          Tags: [{Key: name, Value: !Ref Name}, {Key: other, Value: !Ref Other}]
          ${Name}: x
",
        );
        assert_eq!(ids(&t, "Resources"), ["Qab", "Qcd", "Q7", "Qtrue"]);
        let q = &t["Resources"]["Qab"]["Properties"];
        assert_eq!(q["QueueName"], json!({"Fn::Sub": "a.b-${AWS::Region}"}));
        assert_eq!(q["Tags"], json!([{"Key": "name", "Value": "a.b"}, {"Key": "other", "Value": {"Ref": "Other"}}]));
        assert_eq!(q["a.b"], "x");
        assert_eq!(t["Resources"]["Q7"]["Properties"]["QueueName"], json!({"Fn::Sub": "7-${AWS::Region}"}));
    }

    #[test]
    fn nested_loops_property_loops_conditions_and_outputs() {
        let t = expanded(
            "Conditions:
  Fn::ForEach::Flags:
    - F
    - [On, Off]
    - Is${F}: !Equals [!Ref F, 'On']
Resources:
  Fn::ForEach::Envs:
    - Env
    - [Dev, Prod]
    - Fn::ForEach::Apps:
        - App
        - [Web, Api]
        - ${Env}${App}:
            Type: AWS::SNS::Topic
            Properties:
              Fn::ForEach::Tags:
                - Tag
                - [One]
                - Tag${Tag}: ${Env}/${App}/${Tag}
  Plain:
    Type: AWS::SNS::Topic
    Properties:
      Fn::ForEach::Names:
        - N
        - [X]
        - Name${N}: n
Outputs:
  Fn::ForEach::None:
    - Nothing
    - []
    - Out${Nothing}: {Value: x}
",
        );
        assert_eq!(ids(&t, "Resources"), ["DevWeb", "DevApi", "ProdWeb", "ProdApi", "Plain"]);
        assert_eq!(t["Resources"]["ProdApi"]["Properties"], json!({"TagOne": "Prod/Api/One"}));
        assert_eq!(t["Resources"]["Plain"]["Properties"], json!({"NameX": "n"}));
        assert_eq!(
            t["Conditions"],
            json!({"IsOn": {"Fn::Equals": ["On", "On"]}, "IsOff": {"Fn::Equals": ["Off", "On"]}})
        );
        // A section left empty is dropped, as sam does.
        assert!(t.get("Outputs").is_none());
    }

    #[test]
    fn collections_from_parameters() {
        let text = format!(
            "{HEAD}Parameters:
  Names: {{Type: CommaDelimitedList, Default: 'a, b'}}
  Joined: {{Type: String, Default: 'x,y'}}
Resources:
  Fn::ForEach::L1:
    - N
    - !Ref Names
    - T${{N}}: {{Type: AWS::SNS::Topic}}
  Fn::ForEach::L2:
    - J
    - !Ref Joined
    - U${{J}}: {{Type: AWS::SNS::Topic}}
"
        );
        assert_eq!(ids(&load(&text, &[]).unwrap().0, "Resources"), ["Ta", "Tb", "Ux", "Uy"]);
        let overridden = load(&text, &[("Names", "c"), ("Joined", "z,w")]).unwrap().0;
        assert_eq!(ids(&overridden, "Resources"), ["Tc", "Uz", "Uw"]);
        // A String parameter without a comma is not a list (sam: layout).
        assert_eq!(load(&text, &[("Joined", "z")]).unwrap_err(), ForEachError::Layout("Fn::ForEach::L2".into()));
    }

    #[test]
    fn bad_loops_name_the_loop() {
        let body = |identifier: &str, collection: &str| {
            format!(
                "Parameters: {{P: {{Type: String}}}}\nResources:\n  Fn::ForEach::L:\n    - {identifier}\n    - {collection}\n    - 'X${{I}}': {{Type: AWS::SNS::Topic}}\n"
            )
        };
        assert_eq!(error(&body("P", "[a]")), "Fn::ForEach::L: identifier 'P' conflicts with parameter name");
        assert_eq!(error(&body("''", "[a]")), "Fn::ForEach::L layout is incorrect");
        assert!(
            error(&body("I", "!GetAtt X.Y"))
                .starts_with("Fn::ForEach::L: the collection {\"Fn::GetAtt\":[\"X\",\"Y\"]}")
        );
        assert!(error(&body("I", "!Ref P")).starts_with("Fn::ForEach::L: the collection {\"Ref\":\"P\"}"));
        assert!(error(&body("I", "['{{resolve:ssm:/names}}']")).contains("cannot be resolved locally"));
        assert_eq!(
            error(
                "Parameters: {L: {Type: String}}\nResources:\n  Fn::ForEach::L: [I, [a], {'X${I}': {Type: AWS::SNS::Topic}}]\n"
            ),
            "Fn::ForEach::L: loop name 'L' conflicts with parameter name"
        );
        assert_eq!(
            error("Resources:\n  Fn::ForEach::A: [I, [a], {'Fn::ForEach::B': [I, [b], {'X${I}': {Type: T}}]}]\n"),
            "Fn::ForEach::B: identifier 'I' conflicts with another loop identifier"
        );
        assert_eq!(
            error("Resources:\n  Xa: {Type: T}\n  Fn::ForEach::A: [I, [a, b], {'X${I}': {Type: T}}]\n"),
            "Fn::ForEach expansion in 'Fn::ForEach::A' produced logical IDs that conflict with existing entries: Xa"
        );
        let mut deep = "{X: {Type: T}}".to_string();
        for depth in (1..=6).rev() {
            deep = format!("{{'Fn::ForEach::L{depth}': [I{depth}, [a], {deep}]}}");
        }
        let deep = error(&format!("Resources: {deep}\n"));
        assert!(deep.starts_with("Fn::ForEach::L1: Fn::ForEach nesting depth of 6 exceeds"), "{deep}");
    }

    #[test]
    fn loops_without_expansion_are_refused() {
        let text = "Resources:\n  Fn::ForEach::L: [I, [a], {'X${I}': {Type: T}}]\n";
        let template = crate::template::yaml::parse(text).unwrap();
        let resolver = Resolver::new(&template, &Overrides::new(), Pseudo::default());
        assert_eq!(
            expand(template.clone(), &resolver, true).unwrap_err(),
            ForEachError::NoTransform("Fn::ForEach::L".into())
        );
        let with = crate::template::yaml::parse(&format!("{HEAD}{text}")).unwrap();
        assert_eq!(expand(with, &resolver, false).unwrap_err(), ForEachError::Disabled("Fn::ForEach::L".into()));
        // Without resource loops, nothing to do either way: sam writes
        // other loops back as they are.
        let plain = crate::template::yaml::parse(
            "Resources: {X: {Type: T, Properties: {'Fn::ForEach::P': [I, [a], {'${I}': x}]}}}\nOutputs: {'Fn::ForEach::O': [I, [a], {'O${I}': {Value: x}}]}",
        )
        .unwrap();
        assert_eq!(expand(plain.clone(), &resolver, false).unwrap(), (plain, None));
    }

    #[test]
    fn only_resource_loops_stand_in_the_way_of_a_deploy() {
        let looped = load(&format!("{HEAD}Resources:\n  Fn::ForEach::L: [I, [a], {{'X${{I}}': {{Type: T}}}}]\n"), &[]);
        assert!(looped.unwrap().1.unwrap().has_resource_loops());
        let outputs = "Resources: {X: {Type: T}}\nOutputs: {'Fn::ForEach::O': [I, [a], {'O${I}': {Value: x}}]}\n";
        assert!(!load(&format!("{HEAD}{outputs}"), &[]).unwrap().1.unwrap().has_resource_loops());
    }

    /// `restore` with every expanded resource built into a folder named
    /// after it, and relative paths moved one folder up.
    fn restore(text: &str, built: &[&str]) -> Value {
        let (expanded, original) = load(&format!("{HEAD}{text}"), &[]).unwrap();
        let mut rewritten = expanded.clone();
        for id in built {
            rewritten["Resources"][*id]["Properties"]["CodeUri"] = json!(id);
        }
        let built = |id: &str| built.contains(&id);
        let relocate = |_: &str, path: &str| Some(format!("../{path}"));
        original.unwrap().restore(&rewritten, &built, &relocate)
    }

    #[test]
    fn restore_puts_static_and_dynamic_paths_back() {
        let text = "Mappings: {Mine: {a: {b: c}}}
Resources:
  Fn::ForEach::Outer:
    - O
    - [x, y]
    - Fn::ForEach::Inner:
        - I
        - [m, n]
        - ${O}${I}Fn:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: 'src/${O}/${I}'}
          ${O}${I}Same:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: 'src/${I}'}
          ${O}${I}Static:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: src}
  Fn::ForEach::Unbuilt:
    - U
    - [p]
    - Api${U}:
        Type: AWS::Serverless::Api
        Properties: {DefinitionUri: 'api/${U}.yaml'}
";
        let built = ["xmFn", "xnFn", "ymFn", "ynFn", "xmSame", "xnSame", "ymSame", "ynSame", "xmStatic", "ynStatic"];
        let t = restore(text, &built);
        let body = &t["Resources"]["Fn::ForEach::Outer"][2]["Fn::ForEach::Inner"][2];
        // Two dynamic CodeUris in one body: the resource key tells the mappings apart.
        assert_eq!(
            body["${O}${I}Fn"]["Properties"]["CodeUri"],
            json!({"Fn::FindInMap": ["SAMCodeUriOuterInnerFn", {"Fn::Join": ["-", [{"Ref": "O"}, {"Ref": "I"}]]}, "CodeUri"]})
        );
        assert_eq!(
            body["${O}${I}Same"]["Properties"]["CodeUri"],
            json!({"Fn::FindInMap": ["SAMCodeUriOuterInnerSame", {"Ref": "I"}, "CodeUri"]})
        );
        // A static path: the first combination's artifact.
        assert_eq!(body["${O}${I}Static"]["Properties"]["CodeUri"], "xmStatic");
        // Nothing built: the path as written, moved.
        assert_eq!(
            t["Resources"]["Fn::ForEach::Unbuilt"][2]["Api${U}"]["Properties"]["DefinitionUri"],
            "../api/${U}.yaml"
        );
        // The user's mappings first, then the generated ones in loop order.
        assert_eq!(ids(&t, "Mappings"), ["Mine", "SAMCodeUriOuterInnerFn", "SAMCodeUriOuterInnerSame"]);
        assert_eq!(
            t["Mappings"]["SAMCodeUriOuterInnerFn"],
            json!({"x-m": {"CodeUri": "xmFn"}, "x-n": {"CodeUri": "xnFn"}, "y-m": {"CodeUri": "ymFn"}, "y-n": {"CodeUri": "ynFn"}})
        );
        // The inner identifier only: the first outer item's artifact per inner item.
        assert_eq!(
            t["Mappings"]["SAMCodeUriOuterInnerSame"],
            json!({"m": {"CodeUri": "xmSame"}, "n": {"CodeUri": "xnSame"}})
        );
    }

    #[test]
    fn generated_mappings_are_sorted_and_need_distinct_names() {
        let text = "Resources:
  Fn::ForEach::Zeta: [Z, [b, a], {'F${Z}': {Type: AWS::Serverless::Function, Properties: {CodeUri: '${Z}'}}}]
  Fn::ForEach::Alpha: [A, [c], {'G${A}': {Type: AWS::Serverless::Function, Properties: {CodeUri: '${A}'}}}]
";
        let t = restore(text, &["Fb", "Fa", "Gc"]);
        assert_eq!(ids(&t, "Mappings"), ["SAMCodeUriAlpha", "SAMCodeUriZeta"]);
        assert_eq!(ids(&t["Mappings"], "SAMCodeUriZeta"), ["a", "b"]);
        let clash = "Resources:
  Fn::ForEach::L:
    - N
    - [a]
    - ${N}:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: '${N}'}
      ${N}Two:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: '${N}/two'}
";
        assert_eq!(
            load(&format!("{HEAD}{clash}"), &[]).unwrap_err(),
            ForEachError::MappingName { key: "Fn::ForEach::L".into(), resource: "${N}".into() }
        );
    }
}
