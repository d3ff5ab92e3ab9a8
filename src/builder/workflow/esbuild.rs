//! Node.js bundled with esbuild, as sam's NodejsNpmEsbuildBuilder.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{WorkflowError, io_error, run};
use crate::builder::graph::BuildUnit;
use crate::builder::inputs;

/// Bundles `unit`'s entry points into `out`; returns the files the bundle read.
pub(super) async fn bundle(unit: &BuildUnit, deps: Option<&Path>, out: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    let props = unit.build_properties().as_object().cloned().unwrap_or_default();
    let entry_points: Vec<String> = match props.get("EntryPoints").and_then(|e| e.as_array()) {
        Some(list) => list.iter().filter_map(|e| e.as_str().map(str::to_string)).collect(),
        None => {
            let handler = unit.handler.clone().unwrap_or_default();
            let module = handler.rsplit_once('.').map_or(handler.as_str(), |(m, _)| m).to_string();
            vec![module]
        }
    };
    let node_modules = deps.map(|d| d.join("node_modules"));
    let binary = node_modules
        .as_ref()
        .map(|n| n.join(".bin/esbuild"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("esbuild"));
    let mut cmd = Command::new(binary);
    cmd.current_dir(&unit.source_dir);
    for entry in &entry_points {
        let file = resolve_entry(&unit.source_dir, entry);
        cmd.arg(file);
    }
    cmd.args(["--bundle", "--platform=node"]).arg(format!("--outdir={}", out.display()));
    if let Some(n) = &node_modules {
        cmd.env("NODE_PATH", n);
    }
    let mut defaults = vec![("Target", "es2020"), ("Format", "cjs"), ("Minify", "true")];
    for (key, value) in &props {
        if matches!(key.as_str(), "EntryPoints" | "UseNpmCi") {
            continue;
        }
        defaults.retain(|(k, _)| k != key);
        cmd.args(esbuild_flag(key, value));
    }
    for (key, value) in defaults {
        let value = if value == "true" { serde_json::Value::Bool(true) } else { value.into() };
        cmd.args(esbuild_flag(key, &value));
    }
    // What the bundle read, to key the cache on it (outside the artifact).
    let meta = tempfile::NamedTempFile::new().map_err(io_error(&std::env::temp_dir()))?;
    cmd.arg(format!("--metafile={}", meta.path().display()));
    run(cmd, "NodejsNpmEsbuildBuilder:EsbuildBundle").await?;
    inputs::esbuild_inputs(meta.path(), &unit.source_dir).map_err(io_error(meta.path()))
}

/// `Minify: true` → `--minify`; `Target: es2020` → `--target=es2020`;
/// `External: [a, b]` → `--external:a --external:b`.
fn esbuild_flag(key: &str, value: &serde_json::Value) -> Vec<String> {
    let mut kebab = String::new();
    for (i, c) in key.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            kebab.push('-');
        }
        kebab.push(c.to_ascii_lowercase());
    }
    match value {
        serde_json::Value::Bool(true) => vec![format!("--{kebab}")],
        serde_json::Value::Bool(false) | serde_json::Value::Null => vec![],
        serde_json::Value::Array(items) => {
            items.iter().filter_map(|i| i.as_str()).map(|i| format!("--{kebab}:{i}")).collect()
        }
        serde_json::Value::String(s) => vec![format!("--{kebab}={s}")],
        other => vec![format!("--{kebab}={other}")],
    }
}

/// An entry point as written may omit its extension.
fn resolve_entry(source: &Path, entry: &str) -> String {
    if source.join(entry).is_file() {
        return entry.to_string();
    }
    ["ts", "js", "mjs", "cjs", "tsx", "jsx"]
        .iter()
        .map(|ext| format!("{entry}.{ext}"))
        .find(|candidate| source.join(candidate).is_file())
        .unwrap_or_else(|| entry.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn esbuild_properties_become_flags() {
        assert_eq!(esbuild_flag("Minify", &json!(true)), ["--minify"]);
        assert!(esbuild_flag("Sourcemap", &json!(false)).is_empty());
        assert_eq!(esbuild_flag("Target", &json!("es2022")), ["--target=es2022"]);
        assert_eq!(esbuild_flag("MainFields", &json!("module,main")), ["--main-fields=module,main"]);
        assert_eq!(esbuild_flag("External", &json!(["a", "b"])), ["--external:a", "--external:b"]);
        assert_eq!(esbuild_flag("Loader", &json!([".png=file"])), ["--loader:.png=file"]);
    }
}
