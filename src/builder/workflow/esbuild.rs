//! Node.js bundled with esbuild, as sam's NodejsNpmEsbuildBuilder.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{WorkflowError, io_error, on_path, run};
use crate::builder::graph::BuildUnit;
use crate::builder::{fsops, inputs};

/// sam's words when no esbuild is found, and how to get one.
const NO_ESBUILD: &str = "NodejsNpmEsbuildBuilder:EsbuildBundle - Cannot find esbuild. esbuild must be installed on the host machine to use this feature. It is recommended to be installed on the PATH, but can also be included as a project dependency (`npm install -g esbuild`, or esbuild in devDependencies).";

/// Bundles `unit`'s entry points into `out`; returns the files the bundle read.
///
/// esbuild names every module by its path from its working folder (in
/// comments and `__commonJS` keys of unminified bundles), so it runs where
/// those paths are sam's: in the source folder with `--build-in-source`,
/// else in a scratch folder laid out like sam's scratch copy (the source's
/// entries, `node_modules` beside them) whose paths do not depend on the
/// cache: the same source gives the same bundle on every machine.
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
    let scratch = match unit.build_in_source {
        true => None,
        false => Some(stage(&unit.source_dir, deps).map_err(io_error(&unit.source_dir))?),
    };
    let workdir = scratch.as_ref().map_or(unit.source_dir.clone(), |(_, dir)| dir.clone());
    let binary = esbuild_binary(&workdir)?;
    let mut cmd = Command::new(&binary);
    cmd.current_dir(&workdir);
    for entry in &entry_points {
        cmd.arg(resolve_entry(&unit.source_dir, entry));
    }
    cmd.args(["--bundle", "--platform=node"]).arg(format!("--outdir={}", out.display()));
    if scratch.is_some() {
        // Module paths as laid out in the scratch folder, not the cache's.
        cmd.arg("--preserve-symlinks");
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
    let mut read =
        inputs::esbuild_inputs(meta.path(), &unit.source_dir, unit.build_in_source).map_err(io_error(meta.path()))?;
    if unit.build_in_source && binary.starts_with(&workdir) {
        // The source's esbuild, which `npm update` may move to a new version.
        read.push(binary);
    }
    Ok(read)
}

/// The project's esbuild (`node_modules/.bin` of the bundling folder, as
/// sam looks in `npm root`), else the one on `PATH`.
fn esbuild_binary(workdir: &Path) -> Result<PathBuf, WorkflowError> {
    let local = workdir.join("node_modules/.bin/esbuild");
    if local.is_file() {
        return Ok(local);
    }
    on_path(Path::new("esbuild")).ok_or_else(|| WorkflowError::MissingTool(NO_ESBUILD.to_string()))
}

/// sam's scratch layout without copying: a folder of links to the source's
/// entries, with the installed `node_modules` linked beside them. Imports
/// from outside the source keep working for a source inside the current
/// folder: each folder between the two is mirrored the same way, so
/// `../shared/util.js` names the same file from the scratch folder. Returns
/// the scratch folder (removed on drop) and where the source sits in it.
fn stage(source: &Path, deps: Option<&Path>) -> std::io::Result<(tempfile::TempDir, PathBuf)> {
    let scratch = tempfile::tempdir()?;
    let source = inputs::normalize(source);
    let mut mirror = scratch.path().to_path_buf();
    let cwd = std::env::current_dir().map(|c| inputs::normalize(&c))?;
    match source.strip_prefix(&cwd) {
        Ok(below) => {
            let mut real = cwd.clone();
            for part in below.components() {
                link_entries(&real, &mirror, &[part.as_os_str().to_str().unwrap_or_default()])?;
                real.push(part);
                mirror.push(part);
                std::fs::create_dir(&mirror)?;
            }
        }
        Err(_) => {
            mirror.push("source");
            std::fs::create_dir(&mirror)?;
        }
    }
    link_entries(&source, &mirror, &["node_modules", ".git"])?;
    if let Some(modules) = deps.map(|d| d.join("node_modules")).filter(|m| m.is_dir()) {
        fsops::symlink(&modules, &mirror.join("node_modules"))?;
    }
    Ok((scratch, mirror))
}

/// Links every entry of `real` into `mirror`, except `.aws-sam` and `skip`.
fn link_entries(real: &Path, mirror: &Path, skip: &[&str]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(real)? {
        let name = entry?.file_name();
        let name_text = name.to_string_lossy();
        if name_text == ".aws-sam" || skip.contains(&name_text.as_ref()) {
            continue;
        }
        fsops::symlink(&real.join(&name), &mirror.join(&name))?;
    }
    Ok(())
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
