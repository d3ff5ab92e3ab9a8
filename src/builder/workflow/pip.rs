//! Python with pip, as sam's PythonPipBuilder: wheels for Lambda's platform, unpacked.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{WorkflowError, io_error, run};
use crate::builder::fsops;
use crate::builder::graph::BuildUnit;

/// Installs `manifest`'s requirements for `unit`'s runtime into `out`.
pub(super) async fn install(unit: &BuildUnit, manifest: &Path, out: &Path) -> Result<(), WorkflowError> {
    // As sam: download the wheels Lambda can run (its platform
    // tags, its Python), then unpack them — no `pip install`, so
    // no host-specific console scripts in `bin/` and no
    // installer records, and the same tree on every machine.
    let wheels = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let version = unit.runtime.trim_start_matches("python");
    let mut pip = Command::new(python_command());
    pip.args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-input"]).args([
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        version,
    ]);
    for platform in pip_platforms(version, &unit.architecture) {
        pip.args(["--platform", &platform]);
    }
    pip.args(["--exists-action", "i", "--dest"]).arg(wheels.path()).arg("-r").arg(manifest);
    run(pip, "PythonPipBuilder:ResolveDependencies").await?;
    unpack_wheels(wheels.path(), out)
}

/// The wheel platform tags sam accepts for a Python version and an
/// architecture (aws-lambda-builders' `compatible_platforms`): up to
/// manylinux_2_34 on Amazon Linux 2023 runtimes (3.12 and later), up to
/// manylinux_2_17 before.
fn pip_platforms(version: &str, architecture: &str) -> Vec<String> {
    let minor: u32 = version.strip_prefix("3.").and_then(|m| m.parse().ok()).unwrap_or(0);
    let (arch, mut tags) = match architecture {
        "arm64" => ("aarch64", vec!["linux", "manylinux2014", "manylinux_2_17"]),
        _ => ("x86_64", vec!["linux", "manylinux1", "manylinux2010", "manylinux2014", "manylinux_2_17"]),
    };
    if minor >= 12 {
        tags.extend(["manylinux_2_28", "manylinux_2_34"]);
    }
    std::iter::once("any".to_string()).chain(tags.iter().map(|t| format!("{t}_{arch}"))).collect()
}

/// Unpacks every wheel in `wheels` into `out` as sam does: the archive as
/// is, then the `purelib`/`platlib` folders of `<name>-<version>.data`
/// merged into `out` (any other `.data` content stays where the wheel has it).
fn unpack_wheels(wheels: &Path, out: &Path) -> Result<(), WorkflowError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(wheels)
        .map_err(io_error(wheels))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    files.sort();
    for wheel in files {
        let bad =
            |e: zip::result::ZipError| WorkflowError::Io { path: wheel.clone(), source: std::io::Error::other(e) };
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&wheel).map_err(io_error(&wheel))?).map_err(bad)?;
        let mut data_dirs = std::collections::BTreeSet::new();
        for index in 0..archive.len() {
            let mut entry = archive.by_index(index).map_err(bad)?;
            // Names that would leave `out` (`../x`, `/x`) are skipped, as Python's extractall does.
            let Some(name) = entry.enclosed_name() else { continue };
            if let Some(top) = name.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned())
                && top.ends_with(".data")
            {
                data_dirs.insert(top);
            }
            let path = out.join(&name);
            if entry.is_dir() {
                std::fs::create_dir_all(&path).map_err(io_error(&path))?;
                continue;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_error(parent))?;
            }
            let mut file = std::fs::File::create(&path).map_err(io_error(&path))?;
            std::io::copy(&mut entry, &mut file).map_err(io_error(&path))?;
        }
        for data in data_dirs {
            for lib in ["purelib", "platlib"] {
                let from = out.join(&data).join(lib);
                if from.is_dir() {
                    fsops::copy_tree(&from, out, &[]).map_err(io_error(&from))?;
                    std::fs::remove_dir_all(&from).map_err(io_error(&from))?;
                }
            }
        }
    }
    Ok(())
}

fn python_command() -> PathBuf {
    std::env::var_os("ACCEL_PYTHON").map(PathBuf::from).unwrap_or_else(|| "python3".into())
}
