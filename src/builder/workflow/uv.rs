//! Python with uv (`BuildMethod: python-uv`), as sam's experimental
//! PythonUvBuilder (`uv pip install --target` of a requirements file, or of
//! `uv export`'s requirements from `uv.lock`), with what it gets wrong put
//! right: wheels for Lambda's glibc (manylinux2014 on Amazon Linux 2
//! runtimes, manylinux_2_34 on Amazon Linux 2023) instead of uv's default
//! manylinux_2_28, binary wheels only, bytecode when asked, and uv's cache
//! kept under the project's cache folder across builds.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::pip::{INSTALL_PYTHON, Target};
use super::{WorkflowError, find_tool, io_error, run};
use crate::builder::fsops;
use crate::builder::graph::BuildUnit;

/// How to install uv, for the missing-tool message.
const INSTALL_UV: &str =
    "install it with `pip install uv` (or see https://docs.astral.sh/uv/getting-started/installation/)";

/// The build property that asks for `.pyc` files (sam's workflow has the
/// option but never passes it).
const COMPILE_BYTECODE: &str = "CompileBytecode";

/// Installs the dependencies `manifest` names for `unit`'s runtime and
/// architecture into `out`, with uv's cache under `tool_cache`.
pub(super) async fn install(
    unit: &BuildUnit,
    manifest: &Path,
    out: &Path,
    tool_cache: &Path,
) -> Result<(), WorkflowError> {
    let uv = find_tool(Path::new("uv"), INSTALL_UV)?;
    let target = Target::of(unit);
    let project = manifest.parent().unwrap_or(Path::new("."));
    let cache = tool_cache.join("uv");
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let name = manifest.file_name().unwrap_or_default().to_string_lossy();
    let requirements = if name == "pyproject.toml" && project.join("uv.lock").is_file() {
        // As sam: the lock's packages without the project itself and without
        // development groups; their markers are evaluated by the install.
        // The lock is used as it is (`--frozen`): sam re-locks a stale one
        // for the runtime's Python, which needs that Python on the host and
        // writes into the source folder.
        let exported = scratch.path().join("lock_requirements.txt");
        let mut export = uv_command(&uv, project, &cache);
        export.args(["export", "--frozen", "--format", "requirements.txt", "--no-emit-project", "--no-hashes"]);
        export.args(["--no-default-groups", "--output-file"]).arg(&exported);
        run(export, "PythonUvBuilder:ResolveDependencies").await?;
        exported
    } else if name == "pyproject.toml" || requirements_file(&name) {
        // A pyproject.toml without a lock: its dependencies, resolved now
        // (sam runs `uv lock`, which writes uv.lock into the source folder).
        manifest.to_path_buf()
    } else {
        return Err(WorkflowError::UnsupportedManifest(manifest.to_path_buf()));
    };
    let mut install = uv_command(&uv, project, &cache);
    install.args(["pip", "install", "--no-progress", "--link-mode", "copy", "--only-binary", ":all:"]);
    install.args(["--python-version", &target.version, "--python-platform", &python_platform(&target)]);
    if compile_bytecode(unit) {
        // Bytecode is only of use when compiled by the runtime's own Python.
        let python = find_tool(Path::new(&format!("python{}", target.version)), INSTALL_PYTHON)?;
        install.arg("--compile-bytecode").arg("--python").arg(python);
    }
    install.arg("-r").arg(&requirements).arg("--target").arg(out);
    run(install, "PythonUvBuilder:ResolveDependencies").await?;
    // Console scripts name the host's interpreter: useless on Lambda and
    // different on every machine (the pip workflow never writes them).
    let scripts = out.join("bin");
    if scripts.is_dir() {
        fsops::remove_tree(&scripts).map_err(io_error(&scripts))?;
    }
    Ok(())
}

/// sam's `_is_requirements_file`: `requirements.txt` or `requirements-<env>.txt`.
fn requirements_file(name: &str) -> bool {
    name == "requirements.txt"
        || name
            .strip_prefix("requirements-")
            .and_then(|rest| rest.strip_suffix(".txt"))
            .is_some_and(|env| !env.is_empty())
}

/// uv in `project`, with its cache in `cache`, never downloading a Python.
fn uv_command(uv: &PathBuf, project: &Path, cache: &Path) -> Command {
    let mut command = Command::new(uv);
    command.current_dir(project).arg("--cache-dir").arg(cache).env("UV_PYTHON_DOWNLOADS", "never");
    command
}

/// uv's `--python-platform` for Lambda: the glibc of the runtime's Amazon Linux.
fn python_platform(target: &Target) -> String {
    let glibc = if target.al2023() { "manylinux_2_34" } else { "manylinux2014" };
    format!("{}-{glibc}", target.machine)
}

/// Whether the unit's `BuildProperties` ask for bytecode (`true` or `"true"`).
fn compile_bytecode(unit: &BuildUnit) -> bool {
    match unit.build_properties().get(COMPILE_BYTECODE) {
        Some(serde_json::Value::Bool(on)) => *on,
        Some(serde_json::Value::String(on)) => on.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_sam_reads() {
        assert!(requirements_file("requirements.txt") && requirements_file("requirements-prod.txt"));
        assert!(!requirements_file("requirements-.txt") && !requirements_file("requirements2.txt"));
        assert!(!requirements_file("deps.txt"));
    }

    #[test]
    fn lambda_glibc_per_runtime() {
        let target = |minor, machine| Target { version: format!("3.{minor}"), minor, machine };
        assert_eq!(python_platform(&target(11, "x86_64")), "x86_64-manylinux2014");
        assert_eq!(python_platform(&target(12, "aarch64")), "aarch64-manylinux_2_34");
    }
}
