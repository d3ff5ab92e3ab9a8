//! Node.js with npm, as sam's NodejsNpmBuilder (dependencies for esbuild too).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{KeyFile, Workflow, WorkflowError, io_error, on_path, output, run};
use crate::builder::graph::BuildUnit;
use crate::builder::{fsops, inputs};

/// How to get npm (and the Node.js it runs on) when it is missing.
const NPM_INSTALL: &str = "install Node.js with npm (https://nodejs.org, or `apt-get install nodejs npm`)";

/// Fails with one line naming npm, or the Node.js npm runs on, when it is
/// not on `PATH`, before anything runs (sam's path resolver, in its words).
fn require_npm(workflow: Workflow, runtime: &str) -> Result<(), WorkflowError> {
    let missing = ["npm", "node"].into_iter().find(|tool| on_path(Path::new(tool)).is_none());
    match missing {
        None => Ok(()),
        Some(tool) => Err(WorkflowError::MissingTool(format!(
            "{}:Resolver - Path resolution for runtime: {runtime} of binary: {tool} was not successful; {NPM_INSTALL}",
            workflow.builder_name()
        ))),
    }
}

/// Installs `manifest`'s dependencies into `out/node_modules`; with
/// `--build-in-source`, into the source (or the external manifest's) folder
/// as sam does, then copies them into `out` for npm builds.
pub(super) async fn install(
    workflow: Workflow,
    unit: &BuildUnit,
    manifest: &Path,
    out: &Path,
) -> Result<(), WorkflowError> {
    require_npm(workflow, &unit.runtime)?;
    if unit.build_in_source {
        return install_in_source(workflow, unit, manifest, out).await;
    }
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let install_dir = stage_local_packages(manifest, out)?;
    fsops::copy_file(manifest, &install_dir.join("package.json")).map_err(io_error(manifest))?;
    for lock in workflow.lockfiles().iter().chain(workflow.install_configs()) {
        let from = dir.join(lock);
        if from.is_file() {
            fsops::copy_file(&from, &install_dir.join(lock)).map_err(io_error(&from))?;
        }
    }
    let locked = workflow.lockfiles().iter().any(|l| install_dir.join(l).is_file());
    let npm = |prefer_offline: bool| {
        let mut npm = super::tool("npm");
        npm.current_dir(&install_dir);
        if locked && uses_npm_ci(unit) {
            npm.args(["ci", "-q", "--no-audit", "--no-fund", "--unsafe-perm"]);
        } else {
            npm.args(["install", "-q", "--no-audit", "--no-fund", "--no-save", "--unsafe-perm"]);
        }
        // Local (`file:`) packages as real copies, never links out of the artifact.
        npm.arg("--install-links");
        if workflow == Workflow::Npm {
            npm.arg("--omit=dev");
        }
        if prefer_offline {
            npm.arg("--prefer-offline");
        }
        npm
    };
    // A lock file pins every version, so npm's cached metadata, however
    // old, installs what the registry would: no round trip per package.
    // Without one, npm resolves ranges from that metadata, which
    // `--prefer-offline` never refreshes: older versions than sam's.
    match run(npm(locked), "NodejsNpmBuilder:NpmInstall").await {
        // A locked version published after npm cached its package's
        // metadata: npm does not look again (pacote's "add ETARGET
        // revalidation" is a to-do), so the registry is asked.
        Err(WorkflowError::Failed { output, .. }) if locked && output.contains("ETARGET") => {
            run(npm(false), "NodejsNpmBuilder:NpmInstall").await?
        }
        ran => ran?,
    }
    keep_only_node_modules(&install_dir, out)
}

/// package.json fields npm only describes or publishes the package with,
/// never reads to install its dependencies: functions whose manifests
/// differ only in them share one install. The root's `name` and `version`
/// reach nothing that ships: npm writes them into
/// `node_modules/.package-lock.json`, which sam deletes (and so does
/// [`keep_only_node_modules`]), and gives them to the root's own scripts,
/// which [`INSTALL_SCRIPTS`] rules out. Lock files repeat them at their top
/// and in their root entry (`packages[""]`), where npm ignores them too.
const DESCRIPTIVE: [&str; 11] = [
    "name",
    "version",
    "description",
    "keywords",
    "homepage",
    "bugs",
    "license",
    "author",
    "contributors",
    "funding",
    "repository",
];

/// The root package's scripts that `npm install` and `npm ci` run: a
/// script may read any field of package.json, so a manifest with one keys
/// its install as read.
const INSTALL_SCRIPTS: [&str; 8] =
    ["preinstall", "install", "postinstall", "prepublish", "preprepare", "prepare", "postprepare", "dependencies"];

/// What of package.json (`manifest`) and of the lock and config files
/// beside it (`files`, by name) keys an install: both without the
/// [`DESCRIPTIVE`] fields, as compact JSON in the files' own key order
/// (npm reads dependencies in that order; whitespace it ignores). As read
/// when the manifest has an install script or a file is not JSON (npm then
/// fails on it, per function).
pub(super) fn install_key(manifest: Vec<u8>, files: Vec<KeyFile>) -> (Vec<u8>, Vec<KeyFile>) {
    let Ok(mut package) = serde_json::from_slice::<Value>(&manifest) else {
        return (manifest, files);
    };
    if INSTALL_SCRIPTS.iter().any(|script| package.pointer(&format!("/scripts/{script}")).is_some()) {
        return (manifest, files);
    }
    strip_descriptive(&mut package);
    let files = files
        .into_iter()
        .map(|(name, bytes)| match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut lock) if Workflow::Npm.lockfiles().contains(&name) => {
                strip_descriptive(&mut lock);
                if let Some(root) = lock.pointer_mut("/packages/") {
                    strip_descriptive(root);
                }
                (name, lock.to_string().into_bytes())
            }
            _ => (name, bytes),
        })
        .collect();
    (package.to_string().into_bytes(), files)
}

/// Takes the [`DESCRIPTIVE`] fields out of a package (or lock) object.
fn strip_descriptive(package: &mut Value) {
    if let Some(fields) = package.as_object_mut() {
        for field in DESCRIPTIVE {
            fields.shift_remove(field);
        }
    }
}

/// `BuildProperties.UseNpmCi: true`.
fn uses_npm_ci(unit: &BuildUnit) -> bool {
    unit.build_properties().get("UseNpmCi") == Some(&Value::Bool(true))
}

/// sam's in-source install: `npm ci --install-links` (UseNpmCi and a lock
/// file) or `npm update … --install-links` in the manifest's folder, which
/// then holds `node_modules`; an external manifest's `node_modules` is
/// linked into the source as sam links it. npm builds ship a copy of it
/// (hard links); esbuild bundles from the source, so `out` stays empty.
async fn install_in_source(
    workflow: Workflow,
    unit: &BuildUnit,
    manifest: &Path,
    out: &Path,
) -> Result<(), WorkflowError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    // sam looks for the lock file in the source folder even when npm runs
    // in an external manifest's (aws-lambda-builders' `get_install_action`;
    // checked against sam 1.170): same choice of `ci` or `update` as sam.
    let locked = Workflow::Npm.lockfiles().iter().any(|l| unit.source_dir.join(l).is_file());
    let mut npm = super::tool("npm");
    npm.current_dir(dir);
    if locked && uses_npm_ci(unit) {
        npm.args(["ci", "--install-links"]);
        run(npm, "NodejsNpmBuilder:NpmCI").await?;
    } else {
        npm.args(["update", "--no-audit", "--no-save", "--unsafe-perm", "--no-package-lock", "--install-links"]);
        // esbuild bundles need the bundler, a devDependency as often as not.
        if workflow == Workflow::Npm {
            npm.arg("--omit=dev");
        }
        run(npm, "NodejsNpmBuilder:NpmUpdate").await?;
    }
    let modules = dir.join("node_modules");
    let linked = unit.source_dir.join("node_modules");
    if dir != unit.source_dir && modules.is_dir() && !linked.exists() {
        fsops::symlink(&modules, &linked).map_err(io_error(&linked))?;
    }
    if workflow == Workflow::Npm && modules.is_dir() {
        fsops::link_tree(&modules, &out.join("node_modules")).map_err(io_error(&modules))?;
    }
    Ok(())
}

/// The npm code step, as sam's `npm pack` + copy: the files `npm pack`
/// would put in the package of the manifest's folder (`files`, `.npmignore`,
/// npm's default exclusions), the source's lock files, and, when the
/// manifest lives elsewhere (`-m`), the whole source over them. Returns what
/// the code then depends on beyond the source tree's hash: the external
/// manifest's folder, and the bundled dependencies packed from its
/// `node_modules`.
pub(super) async fn copy_package(unit: &BuildUnit, out: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    require_npm(Workflow::Npm, &unit.runtime)?;
    let source = &unit.source_dir;
    let Some(manifest) = unit.manifest.as_deref().filter(|m| m.is_file()) else {
        // sam: "package.json file not found. Continuing the build without dependencies."
        fsops::copy_tree(source, out, Workflow::Npm.excludes()).map_err(io_error(source))?;
        return Ok(Vec::new());
    };
    let package_dir = inputs::normalize(manifest.parent().unwrap_or(Path::new(".")));
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    let mut read = Vec::new();
    for rel in pack_list(&package_dir).await? {
        let from = package_dir.join(&rel);
        fsops::copy_file(&from, &out.join(&rel)).map_err(io_error(&from))?;
        if let Some(bundled) = bundled_package(&rel) {
            read.push(package_dir.join(bundled));
        }
    }
    read.dedup();
    // sam copies the source's lock files into the package after packing.
    for lock in Workflow::Npm.lockfiles() {
        let from = source.join(lock);
        if from.is_file() {
            fsops::copy_file(&from, &out.join(lock)).map_err(io_error(&from))?;
        }
    }
    if package_dir == inputs::normalize(source) {
        return Ok(read);
    }
    fsops::copy_tree(source, out, Workflow::Npm.excludes()).map_err(io_error(source))?;
    read.push(package_dir);
    Ok(read)
}

/// The folder of the bundled dependency a packed path belongs to
/// (`node_modules/x`, `node_modules/@scope/x`), if it is one: the code's
/// key leaves out the root `node_modules`, so the build reports these.
fn bundled_package(rel: &Path) -> Option<PathBuf> {
    let mut parts = rel.components().map(|c| c.as_os_str());
    if parts.next()? != "node_modules" {
        return None;
    }
    let first = parts.next()?;
    let package = match first.to_string_lossy().starts_with('@') {
        true => Path::new("node_modules").join(first).join(parts.next()?),
        false => Path::new("node_modules").join(first),
    };
    // A file directly in `node_modules` is no package; npm packs none.
    parts.next().map(|_| package)
}

/// What `npm pack` puts in the package of `dir`, relative. npm itself is
/// asked when a rule beyond its defaults applies (`files`, bundled
/// dependencies, workspaces, an ignore file anywhere), when the package
/// lacks a name or version (npm's refusal is sam's), or when packing runs
/// scripts (`prepack`, `prepare`, `postpack`: sam's `npm pack` runs them in
/// the source and packs what they wrote); otherwise the default rules give
/// the same list without starting npm.
async fn pack_list(dir: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
    let manifest = dir.join("package.json");
    let invalid = |path: &Path, message: String| WorkflowError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    };
    let text = std::fs::read_to_string(&manifest).map_err(io_error(&manifest))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| invalid(&manifest, e.to_string()))?;
    let ruled = ["files", "bundleDependencies", "bundledDependencies", "workspaces"].iter().any(|k| json.get(k).is_some())
            || ["prepack", "prepare", "postpack"].iter().any(|k| json.pointer(&format!("/scripts/{k}")).is_some())
            // npm refuses to pack it, and sam's build fails with npm's words.
            || ["name", "version"].iter().any(|k| !json.get(k).is_some_and(Value::is_string));
    let mut files = Vec::new();
    let ignore_file = default_pack(dir, Path::new(""), &mut files).map_err(io_error(dir))?;
    if !ruled && !ignore_file {
        files.sort();
        return Ok(files);
    }
    let mut npm = super::tool("npm");
    npm.args(["pack", "--dry-run", "--json"]).arg(format!("file:{}", dir.display()));
    npm.current_dir(dir);
    let stdout = output(npm, "NodejsNpmBuilder:NpmPack").await?;
    let packed = trailing_json(&stdout).ok_or_else(|| invalid(&manifest, "npm pack --json printed no list".into()))?;
    let mut files: Vec<PathBuf> = packed
        .pointer("/0/files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("path").and_then(Value::as_str))
        .map(PathBuf::from)
        // sam copies the unpacked package without `.aws-sam` and `.git`.
        .filter(|p| !p.components().any(|c| matches!(c.as_os_str().to_str(), Some(".aws-sam" | ".git"))))
        .collect();
    files.sort();
    Ok(files)
}

/// The JSON document that ends `stdout`: npm prints it after whatever the
/// package's scripts printed.
fn trailing_json(stdout: &[u8]) -> Option<Value> {
    let starts = std::iter::once(0).chain(stdout.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1));
    starts.filter(|&i| stdout.get(i) == Some(&b'[')).find_map(|i| serde_json::from_slice(&stdout[i..]).ok())
}

/// Lists into `out` the files npm's default rules pack from `dir/rel`
/// (regular files only: npm packs no links and no empty folders). Returns
/// whether an ignore file (`.npmignore`, `.gitignore`) was seen, which
/// makes the list npm's to decide.
fn default_pack(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<bool> {
    let mut ignore_file = false;
    for entry in std::fs::read_dir(dir.join(rel))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = rel.join(&name);
        if name == ".npmignore" || name == ".gitignore" {
            ignore_file = true;
        }
        if npm_excludes(&path, &name) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            ignore_file |= default_pack(dir, &path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(ignore_file)
}

/// npm-packlist's default and strict rules (npm 10), and sam's `.aws-sam`.
fn npm_excludes(path: &Path, name: &str) -> bool {
    const ANYWHERE: [&str; 10] =
        [".git", ".svn", ".hg", "CVS", ".DS_Store", "npm-debug.log", ".npmrc", ".npmignore", ".gitignore", ".aws-sam"];
    const AT_ROOT: [&str; 7] = [
        "node_modules",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        ".lock-wscript",
        "archived-packages",
    ];
    let at_root = path.parent() == Some(Path::new(""));
    ANYWHERE.contains(&name)
        || name.starts_with("._")
        || name.ends_with(".orig")
        || (name.starts_with('.') && name.ends_with(".swp"))
        || name.contains('*')
        || (at_root && (AT_ROOT.contains(&name) || name.starts_with(".wafpickle-")))
        || path == Path::new("build/config.gypi")
}

/// Where npm installs for `manifest` inside `out`: as deep as the
/// manifest's `file:` paths climb (`../../shared` → two levels), with each
/// local package copied to the place its relative path names, so that the
/// package and lock files resolve unchanged.
fn stage_local_packages(manifest: &Path, out: &Path) -> Result<PathBuf, WorkflowError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let locals = inputs::npm_local_packages(manifest).map_err(io_error(manifest))?;
    let relative: Vec<(PathBuf, PathBuf)> = locals
        .into_iter()
        .map(|local| (pathdiff::diff_paths(&local, dir).unwrap_or_else(|| local.clone()), local))
        .collect();
    let climb = |rel: &Path| rel.components().take_while(|c| matches!(c, std::path::Component::ParentDir)).count();
    let depth = relative.iter().map(|(rel, _)| climb(rel)).max().unwrap_or(0);
    let install_dir = (0..depth).fold(out.to_path_buf(), |d, level| d.join(format!("_{level}")));
    std::fs::create_dir_all(&install_dir).map_err(io_error(&install_dir))?;
    for (rel, local) in relative {
        if !local.is_dir() {
            return Err(WorkflowError::LocalPackage { manifest: manifest.to_path_buf(), path: local });
        }
        let place = inputs::normalize(&install_dir.join(&rel));
        if !place.starts_with(out) {
            return Err(WorkflowError::LocalPackage { manifest: manifest.to_path_buf(), path: local });
        }
        fsops::copy_tree(&local, &place, &[".git", "node_modules", ".aws-sam"]).map_err(io_error(&local))?;
    }
    Ok(install_dir)
}

/// Leaves only `install_dir/node_modules` in `out` (as `out/node_modules`).
fn keep_only_node_modules(install_dir: &Path, out: &Path) -> Result<(), WorkflowError> {
    let modules = install_dir.join("node_modules");
    let kept = out.join(".accel-node_modules");
    // All in the build's own staging folder, freshly written: a scanner
    // may hold a file for a moment (Windows), so each step waits it out.
    if modules.is_dir() {
        fsops::rename(&modules, &kept).map_err(io_error(&modules))?;
    }
    for entry in std::fs::read_dir(out).map_err(io_error(out))?.flatten() {
        let path = entry.path();
        if path == kept {
            continue;
        }
        let removed = if path.is_dir() { fsops::remove_tree(&path) } else { fsops::remove_file(&path) };
        removed.map_err(io_error(&path))?;
    }
    if kept.is_dir() {
        fsops::rename(&kept, &out.join("node_modules")).map_err(io_error(&kept))?;
    }
    // npm's hidden lock file: sam's artifacts do not have it.
    let hidden = out.join("node_modules/.package-lock.json");
    fsops::remove_file(&hidden).map_err(io_error(&hidden))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_follows_what_scripts_printed() {
        let printed = b"[not json\n[\n  {\"files\": [{\"path\": \"index.js\"}]}\n]\n";
        assert_eq!(trailing_json(printed).unwrap().pointer("/0/files/0/path").unwrap(), "index.js");
        assert!(trailing_json(b"[only noise\n").is_none());
    }

    #[test]
    fn default_rules_pack_what_npm_packs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for file in [
            "package.json",
            "index.js",
            "lib/util.js",
            "lib/node_modules/kept.js",
            "node_modules/dep/index.js",
            "package-lock.json",
            "lib/package-lock.json",
            ".npmrc",
            "lib/.npmrc",
            "npm-debug.log",
            "x.orig",
            ".x.swp",
            "._x",
            ".DS_Store",
            ".git/HEAD",
            ".aws-sam/build.toml",
            "build/config.gypi",
            "build/kept.gypi",
        ] {
            std::fs::create_dir_all(d.join(file).parent().unwrap()).unwrap();
            std::fs::write(d.join(file), "x").unwrap();
        }
        std::fs::create_dir_all(d.join("empty")).unwrap();
        let mut files = Vec::new();
        assert!(!default_pack(d, Path::new(""), &mut files).unwrap());
        files.sort();
        let expected = [
            "build/kept.gypi",
            "index.js",
            "lib/node_modules/kept.js",
            "lib/package-lock.json",
            "lib/util.js",
            "package.json",
        ];
        assert_eq!(files, expected.map(PathBuf::from));
        std::fs::write(d.join("lib/.npmignore"), "util.js\n").unwrap();
        assert!(default_pack(d, Path::new(""), &mut Vec::new()).unwrap(), "an ignore file is npm's to read");
    }
}
