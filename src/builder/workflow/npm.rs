//! Node.js with npm, as sam's NodejsNpmBuilder (dependencies for esbuild too).

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{Workflow, WorkflowError, io_error, run};
use crate::builder::graph::BuildUnit;
use crate::builder::{fsops, inputs};

/// Installs `manifest`'s dependencies into `out/node_modules`.
pub(super) async fn install(
    workflow: Workflow,
    unit: &BuildUnit,
    manifest: &Path,
    out: &Path,
) -> Result<(), WorkflowError> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let install_dir = stage_local_packages(manifest, out)?;
    fsops::copy_file(manifest, &install_dir.join("package.json")).map_err(io_error(manifest))?;
    for lock in workflow.lockfiles().iter().chain(&[".npmrc"]) {
        let from = dir.join(lock);
        if from.is_file() {
            fsops::copy_file(&from, &install_dir.join(lock)).map_err(io_error(&from))?;
        }
    }
    let locked = workflow.lockfiles().iter().any(|l| install_dir.join(l).is_file());
    let use_ci = locked && unit.build_properties().get("UseNpmCi") == Some(&serde_json::Value::Bool(true));
    let mut npm = Command::new("npm");
    npm.current_dir(&install_dir);
    if use_ci {
        npm.args(["ci", "-q", "--no-audit", "--no-fund", "--unsafe-perm"]);
    } else {
        npm.args(["install", "-q", "--no-audit", "--no-fund", "--no-save", "--unsafe-perm"]);
    }
    // Local (`file:`) packages as real copies, never links out of the artifact.
    npm.arg("--install-links");
    if workflow == Workflow::Npm {
        npm.arg("--omit=dev");
    }
    run(npm, "NodejsNpmBuilder:NpmInstall").await?;
    keep_only_node_modules(&install_dir, out)
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
    if modules.is_dir() {
        std::fs::rename(&modules, &kept).map_err(io_error(&modules))?;
    }
    for entry in std::fs::read_dir(out).map_err(io_error(out))?.flatten() {
        let path = entry.path();
        if path == kept {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.map_err(io_error(&path))?;
    }
    if kept.is_dir() {
        std::fs::rename(&kept, out.join("node_modules")).map_err(io_error(&kept))?;
    }
    // npm's hidden lock file: sam's artifacts do not have it.
    let hidden = out.join("node_modules/.package-lock.json");
    if hidden.exists() {
        std::fs::remove_file(&hidden).map_err(io_error(&hidden))?;
    }
    Ok(())
}
