//! What a build leaves for `sam deploy`/`sam package` and for sam itself:
//! `.aws-sam/build/template.yaml` (and nested templates) with artifact paths
//! rewritten relative to the build folder (spec §1.6), and `build.toml` in
//! sam's format (spec §1.7).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::adl::{self, AdlLayer};
use super::graph::{BuildUnit, UnitKind};
use crate::template::kind::PATH_PROPERTIES;
use crate::template::yaml;
use crate::template::{Stack, cdk};

/// Property changes a workflow asks of the output template (esbuild's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Patch {
    /// A new `Handler`.
    pub(crate) handler: Option<String>,
    /// A new `Environment.Variables.NODE_OPTIONS`.
    pub(crate) node_options: Option<String>,
}

/// Writes `template.yaml` for every stack of `root` under `build_dir`.
/// `artifacts` maps a resource's full path to its built folder.
pub(crate) fn write_templates(
    root: &Stack,
    build_dir: &Path,
    artifacts: &HashMap<String, PathBuf>,
    patches: &HashMap<String, Patch>,
    layers: &[AdlLayer],
) -> std::io::Result<()> {
    for stack in root.stacks() {
        let out_dir = build_dir.join(&stack.build_path);
        let mut template = rewrite(stack, build_dir, artifacts);
        match &stack.foreach {
            // sam writes the loops back, not the expansion (and no patches).
            Some(original) => {
                let built = |id: &str| artifacts.contains_key(&full_path(stack, id));
                let relocate = |property: &str, path: &str| relocate(stack, property, path, &out_dir);
                template = original.restore(&template, &built, &relocate);
            }
            None => apply_patches(stack, &mut template, patches),
        }
        let mine: Vec<&AdlLayer> = layers.iter().filter(|l| l.stack_path == stack.build_path).collect();
        if !mine.is_empty() {
            let nested = out_dir.join(adl::NESTED_TEMPLATE);
            crate::files::write_if_changed(&nested, yaml::to_yaml(&adl::nested_template(&mine)).as_bytes())?;
            adl::wire(&mut template, &mine, &nested);
        }
        crate::files::write_if_changed(&out_dir.join("template.yaml"), yaml::to_yaml(&template).as_bytes())?;
    }
    Ok(())
}

fn rewrite(stack: &Stack, build_dir: &Path, artifacts: &HashMap<String, PathBuf>) -> Value {
    let out_dir = &build_dir.join(&stack.build_path);
    let mut template = stack.template.clone();
    let Some(resources) = template.get_mut("Resources").and_then(Value::as_object_mut) else {
        return template;
    };
    for (id, resource) in resources.iter_mut() {
        let Some(kind) = resource.get("Type").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        let Some((_, properties)) = PATH_PROPERTIES.iter().find(|(t, _)| *t == kind) else {
            continue;
        };
        let full_path = full_path(stack, id);
        let child = stack.children.iter().find(|c| c.stack_path == full_path);
        let built = artifacts
            .get(&full_path)
            .cloned()
            .or_else(|| child.map(|child| build_dir.join(&child.build_path).join("template.yaml")));
        // A CDK asset's folder, relative to the template, must stay valid.
        if let Some(Value::String(path)) = resource.pointer(&format!("/Metadata/{}", cdk::ASSET_PATH))
            && is_relative_local(path)
        {
            let moved = Value::String(relative(&stack.dir.join(path), out_dir));
            if let Some(metadata) = resource.get_mut("Metadata").and_then(Value::as_object_mut) {
                metadata.insert(cdk::ASSET_PATH.into(), moved);
            }
        }
        // sam gives built resources and nested stacks their normalized metadata.
        let metadata = built.as_ref().map(|_| cdk::built_metadata(resource, id));
        let Some(resource) = resource.as_object_mut() else {
            continue;
        };
        let Some(props) = resource.entry("Properties").or_insert_with(|| Value::Object(Map::new())).as_object_mut()
        else {
            continue;
        };
        if let (Some(built), Some(metadata)) = (built, metadata) {
            props.insert(properties[0].to_string(), Value::String(relative(&built, out_dir)));
            resource.insert("Metadata".into(), metadata);
            continue;
        }
        // Any other relative local path must stay valid from the new location.
        for property in *properties {
            if let Some(Value::String(path)) = props.get(*property)
                && let Some(moved) = relocate(stack, property, path, out_dir)
            {
                props.insert((*property).to_string(), Value::String(moved));
            }
        }
    }
    template
}

/// A resource's full path (`Child/Logical`) in `stack`.
fn full_path(stack: &Stack, id: &str) -> String {
    if stack.stack_path.is_empty() { id.to_string() } else { format!("{}/{id}", stack.stack_path) }
}

/// `path`, a relative local path of `property`, made relative to `out_dir`
/// (templates are relative to their file, code to the base dir); `None` for
/// S3, HTTP and absolute paths, which stay as they are.
fn relocate(stack: &Stack, property: &str, path: &str, out_dir: &Path) -> Option<String> {
    if !is_relative_local(path) {
        return None;
    }
    let absolute = if property.contains("TemplateURL") || property == "Location" {
        stack.dir.join(path)
    } else {
        stack.base_dir.join(path)
    };
    Some(relative(&absolute, out_dir))
}

fn apply_patches(stack: &Stack, template: &mut Value, patches: &HashMap<String, Patch>) {
    for resource in &stack.resources {
        let Some(patch) = patches.get(&resource.full_path) else { continue };
        let pointer = format!("/Resources/{}/Properties", resource.logical_id);
        let Some(props) = template.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(handler) = &patch.handler {
            props.insert("Handler".into(), Value::String(handler.clone()));
        }
        if let Some(options) = &patch.node_options {
            let env = props.entry("Environment").or_insert_with(|| serde_json::json!({}));
            let vars = env.as_object_mut().map(|e| e.entry("Variables").or_insert_with(|| serde_json::json!({})));
            if let Some(vars) = vars.and_then(Value::as_object_mut) {
                vars.insert("NODE_OPTIONS".into(), Value::String(options.clone()));
            }
        }
    }
}

/// esbuild's template fixes (spec §1.4): a handler whose file the bundle
/// does not have at its path becomes its basename (`src/app.handler` →
/// `app.handler`); `Sourcemap: true` needs `--enable-source-maps` in NODE_OPTIONS.
pub(crate) fn esbuild_patch(resource: &crate::template::Resource, artifact: &Path, build_properties: &Value) -> Patch {
    let mut patch = Patch::default();
    if let Some(handler) = resource.string("Handler")
        && let Some((module, function)) = handler.rsplit_once('.')
        && !handler.starts_with("/opt")
        && !artifact.join(format!("{module}.js")).is_file()
    {
        let base = module.rsplit('/').next().unwrap_or(module);
        patch.handler = Some(format!("{base}.{function}"));
    }
    if build_properties.get("Sourcemap") == Some(&Value::Bool(true)) {
        let current = resource
            .property("Environment")
            .and_then(|e| e.pointer("/Variables/NODE_OPTIONS"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !current.contains("--enable-source-maps") {
            patch.node_options = Some(format!("{current} --enable-source-maps").trim().to_string());
        }
    }
    patch
}

fn is_relative_local(path: &str) -> bool {
    !(path.starts_with("s3://")
        || path.starts_with("http://")
        || path.starts_with("https://")
        || Path::new(path).is_absolute())
}

fn relative(path: &Path, from: &Path) -> String {
    let rel = pathdiff::diff_paths(path, from).unwrap_or_else(|| path.to_path_buf());
    let text = rel.to_string_lossy().into_owned();
    if text.is_empty() { ".".into() } else { text }
}

/// `build.toml` in sam's format: one definition per unit, with a stable id
/// derived from what the unit builds (sam uses random uuids; any id works).
pub(crate) fn build_toml(units: &[(BuildUnit, Option<String>, String)]) -> String {
    let mut doc = toml_edit::DocumentMut::new();
    doc.decor_mut().set_prefix("# This file is auto generated by SAM CLI build command\n\n");
    let mut functions = toml_edit::Table::new();
    let mut layers = toml_edit::Table::new();
    functions.set_implicit(true);
    layers.set_implicit(true);
    for (unit, manifest_md5, source_hash) in units {
        let mut t = toml_edit::Table::new();
        let resources = unit.resources();
        let id = stable_uuid(unit);
        let codeuri = unit.source_dir.to_string_lossy().into_owned();
        match &unit.kind {
            UnitKind::Functions(_) => {
                t["codeuri"] = toml_edit::value(codeuri);
                t["runtime"] = toml_edit::value(unit.runtime.clone());
                t["architecture"] = toml_edit::value(unit.architecture.clone());
                t["handler"] = toml_edit::value(unit.handler.clone().unwrap_or_default());
                t["source_hash"] = toml_edit::value(source_hash.clone());
                t["manifest_hash"] = toml_edit::value(manifest_md5.clone().unwrap_or_default());
                t["packagetype"] = toml_edit::value("Zip");
                t["functions"] = toml_edit::value(resources.iter().map(String::as_str).collect::<toml_edit::Array>());
                if let Some(meta) = unit.metadata.as_object().filter(|m| !m.is_empty()) {
                    t["metadata"] = toml_edit::Item::Table(json_table(meta));
                }
                functions[&id] = toml_edit::Item::Table(t);
            }
            UnitKind::Layer(path) => {
                t["layer_name"] = toml_edit::value(path.clone());
                t["codeuri"] = toml_edit::value(codeuri);
                t["build_method"] = toml_edit::value(unit.runtime.clone());
                t["compatible_runtimes"] =
                    toml_edit::value(unit.compatible_runtimes.iter().map(String::as_str).collect::<toml_edit::Array>());
                t["architecture"] = toml_edit::value(unit.architecture.clone());
                t["source_hash"] = toml_edit::value(source_hash.clone());
                t["manifest_hash"] = toml_edit::value(manifest_md5.clone().unwrap_or_default());
                t["layer"] = toml_edit::value(path.clone());
                layers[&id] = toml_edit::Item::Table(t);
            }
        }
    }
    doc["function_build_definitions"] = toml_edit::Item::Table(functions);
    doc["layer_build_definitions"] = toml_edit::Item::Table(layers);
    doc.to_string()
}

fn json_table(map: &Map<String, Value>) -> toml_edit::Table {
    let mut t = toml_edit::Table::new();
    for (k, v) in map {
        t[k] = match v {
            Value::Object(inner) => toml_edit::Item::Table(json_table(inner)),
            other => toml_edit::value(json_value(other)),
        };
    }
    t
}

fn json_value(v: &Value) -> toml_edit::Value {
    match v {
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => n.as_i64().map_or_else(|| n.as_f64().unwrap_or_default().into(), toml_edit::Value::from),
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => items.iter().map(json_value).collect::<toml_edit::Array>().into(),
        Value::Object(map) => {
            let mut inline = toml_edit::InlineTable::new();
            for (k, v) in map {
                inline.insert(k, json_value(v));
            }
            inline.into()
        }
        Value::Null => "".into(),
    }
}

/// A UUID-shaped id from what the unit builds, so that it is stable across
/// builds and checkouts.
fn stable_uuid(unit: &BuildUnit) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}|{}|{}|{}", unit.label(), unit.runtime, unit.architecture, unit.metadata));
    let h = hex::encode(&digest[..16]);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
