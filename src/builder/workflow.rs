//! The language workflows, each split into a dependency step (keyed by the
//! manifest) and a code step (keyed by the source), so that each is cached
//! and reused on its own (spec §1.3, §1.4).

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::graph::BuildUnit;
use super::{fsops, inputs};

/// Why a workflow cannot build, or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkflowError {
    /// A runtime sam no longer builds.
    #[error("Building functions with {0} is no longer supported")]
    Deprecated(String),
    /// A workflow sam has and accel does not.
    #[error("'{key}' builds ({tool}) are not supported by accel yet; build this resource with `sam build`")]
    NotYet {
        /// Build method or runtime.
        key: String,
        /// The tool it needs.
        tool: &'static str,
    },
    /// An unknown build method.
    #[error("'{0}' does not have a supported builder")]
    NoBuilder(String),
    /// An unknown runtime.
    #[error("'{0}' runtime is not supported")]
    Runtime(String),
    /// An architecture Lambda does not have (sam's validation message).
    #[error("{}:Validation - Architecture {architecture} is not supported for runtime {runtime}", workflow.builder_name())]
    Architecture {
        /// The workflow that refused it.
        workflow: Workflow,
        /// The architecture given.
        architecture: String,
        /// The function's runtime.
        runtime: String,
    },
    /// A makefile build without a Makefile.
    #[error("Makefile not found at {}", .0.display())]
    NoMakefile(PathBuf),
    /// The build tool could not be started.
    #[error("{action} - cannot run {program}: {source}")]
    Spawn {
        /// sam's `<Workflow>:<Action>`.
        action: &'static str,
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The build tool failed; its output.
    #[error("{action} - {program} failed ({status}):\n{output}")]
    Failed {
        /// sam's `<Workflow>:<Action>`.
        action: &'static str,
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// stdout then stderr.
        output: String,
    },
    /// A `file:` dependency that is not a folder inside reach.
    #[error("{}: the local package {} cannot be installed (not a folder, or outside the project)", manifest.display(), path.display())]
    LocalPackage {
        /// The package.json naming it.
        manifest: PathBuf,
        /// Where its path resolved to.
        path: PathBuf,
    },
    /// Copying sources or manifests.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> WorkflowError + '_ {
    move |source| WorkflowError::Io { path: path.to_path_buf(), source }
}

/// A build workflow, chosen by `Metadata.BuildMethod`, else by `Runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Workflow {
    /// Python with pip (`requirements.txt`).
    Pip,
    /// Node.js with npm (`package.json`).
    Npm,
    /// Node.js bundled with esbuild.
    Esbuild,
    /// `make build-<LogicalId>` with `ARTIFACTS_DIR`.
    Makefile,
    /// Go modules.
    Go,
}

/// Runtimes sam no longer builds.
const DEPRECATED: [&str; 14] = [
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "java8",
    "python2.7",
    "python3.6",
    "python3.7",
    "ruby2.7",
];

/// Workflows sam has and accel does not (yet): the tool each needs.
const NOT_YET: [(&str, &str); 5] = [
    ("java", "Maven/Gradle"),
    ("ruby", "Bundler"),
    ("dotnet", ".NET"),
    ("rust-cargolambda", "cargo-lambda"),
    ("python-uv", "uv"),
];

impl Workflow {
    /// The workflow for a build method or runtime, or sam's error message.
    pub(crate) fn select(build_method: Option<&str>, runtime: &str) -> Result<Workflow, WorkflowError> {
        let key = build_method.unwrap_or(runtime);
        if DEPRECATED.contains(&key) || (build_method.is_none() && DEPRECATED.contains(&runtime)) {
            return Err(WorkflowError::Deprecated(key.to_string()));
        }
        if let Some((_, tool)) = NOT_YET.iter().find(|(prefix, _)| key.starts_with(prefix)) {
            return Err(WorkflowError::NotYet { key: key.to_string(), tool });
        }
        Ok(match key {
            "esbuild" => Workflow::Esbuild,
            "makefile" | "provided" | "provided.al2" | "provided.al2023" => Workflow::Makefile,
            "go1.x" => Workflow::Go,
            k if k.starts_with("python3.") => Workflow::Pip,
            k if k.starts_with("nodejs") && k.ends_with(".x") => Workflow::Npm,
            _ if build_method.is_some() => return Err(WorkflowError::NoBuilder(key.to_string())),
            _ => return Err(WorkflowError::Runtime(key.to_string())),
        })
    }

    /// The workflow's name in cache keys: fixed text, never a `Debug` dump
    /// (the same names as the first cache bucket, so its entries stay valid).
    pub(crate) fn key_name(self) -> &'static str {
        match self {
            Workflow::Pip => "Pip",
            Workflow::Npm => "Npm",
            Workflow::Esbuild => "Esbuild",
            Workflow::Makefile => "Makefile",
            Workflow::Go => "Go",
        }
    }

    /// aws-lambda-builders' name of the workflow, as sam's messages use it.
    pub(crate) fn builder_name(self) -> &'static str {
        match self {
            Workflow::Pip => "PythonPipBuilder",
            Workflow::Npm => "NodejsNpmBuilder",
            Workflow::Esbuild => "NodejsNpmEsbuildBuilder",
            Workflow::Makefile => "CustomMakeBuilder",
            Workflow::Go => "GoModulesBuilder",
        }
    }

    /// The dependency manifest this workflow reads.
    pub(crate) fn manifest_name(self) -> Option<&'static str> {
        match self {
            Workflow::Pip => Some("requirements.txt"),
            Workflow::Npm | Workflow::Esbuild => Some("package.json"),
            // go.mod and go.sum are part of the source: `go build` fetches and
            // compiles in one step, keyed by the code.
            Workflow::Go | Workflow::Makefile => None,
        }
    }

    /// Lock files hashed with the manifest: a change in them reinstalls.
    pub(crate) fn lockfiles(self) -> &'static [&'static str] {
        match self {
            Workflow::Npm | Workflow::Esbuild => &["package-lock.json", "npm-shrinkwrap.json"],
            _ => &[],
        }
    }

    /// Where a layer's content goes inside its artifact folder, by build method.
    pub(crate) fn layer_subfolder(self, method: &str) -> Option<&'static str> {
        match self {
            Workflow::Pip => Some("python"),
            Workflow::Npm => Some("nodejs"),
            Workflow::Makefile => Some(""),
            _ if method.starts_with("python") => Some("python"),
            _ => None,
        }
    }

    /// Folder and file names never copied from the source.
    pub(crate) fn excludes(self) -> &'static [&'static str] {
        match self {
            Workflow::Pip => &[
                ".aws-sam",
                ".chalice",
                ".git",
                ".gitignore",
                "*.pyc",
                "__pycache__",
                "*.so",
                ".Python",
                "*.egg-info",
                "*.egg",
                "pip-log.txt",
                "pip-delete-this-directory.txt",
                "htmlcov",
                ".tox",
                ".nox",
                ".coverage",
                ".cache",
                ".pytest_cache",
                ".python-version",
                ".mypy_cache",
                ".dmypy.json",
                ".pyre",
                ".env",
                ".venv",
                "venv",
                "venv.bak",
                "env.bak",
                "ENV",
                "env",
                ".vscode",
                ".idea",
            ],
            Workflow::Npm | Workflow::Esbuild => &[".aws-sam", ".git", "node_modules"],
            Workflow::Makefile | Workflow::Go => &[".aws-sam", ".git"],
        }
    }

    /// Whether the code step reads the installed dependencies (so its cache
    /// key must include theirs).
    pub(crate) fn code_uses_dependencies(self) -> bool {
        self == Workflow::Esbuild
    }

    /// Installs the dependencies of `unit` into `out` (a fresh folder).
    pub(crate) async fn install_dependencies(
        self,
        unit: &BuildUnit,
        manifest: &Path,
        out: &Path,
    ) -> Result<(), WorkflowError> {
        match self {
            Workflow::Pip => {
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
            Workflow::Npm | Workflow::Esbuild => {
                let dir = manifest.parent().unwrap_or(Path::new("."));
                let install_dir = stage_local_packages(manifest, out)?;
                fsops::copy_file(manifest, &install_dir.join("package.json")).map_err(io_error(manifest))?;
                for lock in self.lockfiles().iter().chain(&[".npmrc"]) {
                    let from = dir.join(lock);
                    if from.is_file() {
                        fsops::copy_file(&from, &install_dir.join(lock)).map_err(io_error(&from))?;
                    }
                }
                let locked = self.lockfiles().iter().any(|l| install_dir.join(l).is_file());
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
                if self == Workflow::Npm {
                    npm.arg("--omit=dev");
                }
                run(npm, "NodejsNpmBuilder:NpmInstall").await?;
                keep_only_node_modules(&install_dir, out)
            }
            Workflow::Go | Workflow::Makefile => Ok(()),
        }
    }

    /// Builds the code of `unit` into `out` (a fresh folder), using the
    /// installed dependencies in `deps` where the workflow needs them.
    /// Returns the files it read outside the unit's folder (esbuild imports).
    pub(crate) async fn build_code(
        self,
        unit: &BuildUnit,
        deps: Option<&Path>,
        out: &Path,
    ) -> Result<Vec<PathBuf>, WorkflowError> {
        match self {
            Workflow::Pip | Workflow::Npm => fsops::copy_tree(&unit.source_dir, out, self.excludes())
                .map(|()| Vec::new())
                .map_err(io_error(&unit.source_dir)),
            Workflow::Esbuild => esbuild(unit, deps, out).await,
            Workflow::Makefile => makefile(unit, out).await.map(|()| Vec::new()),
            Workflow::Go => go_build(unit, out).await.map(|()| Vec::new()),
        }
    }

    /// Whether the installed dependencies go into the artifact (pip's
    /// packages at its root, npm's `node_modules/`); esbuild bundles them.
    pub(crate) fn ships_dependencies(self) -> bool {
        matches!(self, Workflow::Pip | Workflow::Npm)
    }
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

fn python_command() -> PathBuf {
    std::env::var_os("ACCEL_PYTHON").map(PathBuf::from).unwrap_or_else(|| "python3".into())
}

async fn esbuild(unit: &BuildUnit, deps: Option<&Path>, out: &Path) -> Result<Vec<PathBuf>, WorkflowError> {
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

async fn makefile(unit: &BuildUnit, out: &Path) -> Result<(), WorkflowError> {
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    fsops::copy_tree(&unit.source_dir, scratch.path(), Workflow::Makefile.excludes())
        .map_err(io_error(&unit.source_dir))?;
    let makefile = scratch.path().join("Makefile");
    if !makefile.is_file() {
        return Err(WorkflowError::NoMakefile(unit.source_dir.join("Makefile")));
    }
    let mut make = Command::new("make");
    make.current_dir(scratch.path())
        .arg("--makefile")
        .arg(&makefile)
        .arg(format!("build-{}", unit.logical_ids[0]))
        .env("ARTIFACTS_DIR", out);
    run(make, "CustomMakeBuilder:MakeBuild").await
}

async fn go_build(unit: &BuildUnit, out: &Path) -> Result<(), WorkflowError> {
    let binary = if unit.runtime.starts_with("provided") {
        "bootstrap".to_string()
    } else {
        unit.handler.clone().unwrap_or_default()
    };
    let arch = if unit.architecture == "arm64" { "arm64" } else { "amd64" };
    // sam's command exactly (aws-lambda-builders' GoModulesBuilder): the same
    // flags give the same binary. `-trimpath` only with `TrimGoPath`, and the
    // environment (CGO_ENABLED included) is the user's.
    let trim = unit.build_properties().get("TrimGoPath") == Some(&serde_json::Value::Bool(true));
    let command = |package: &Path| {
        let mut go = Command::new("go");
        go.current_dir(&unit.source_dir).arg("build");
        if trim {
            go.arg("-trimpath");
        }
        go.arg("-o").arg(out.join(&binary)).arg(package).env("GOOS", "linux").env("GOARCH", arch);
        go
    };
    match run(command(&unit.source_dir), "GoModulesBuilder:Build").await {
        // As sam: no Go files at CodeUri, so build the handler's folder below it.
        Err(WorkflowError::Failed { .. })
            if unit.handler.as_deref().is_some_and(|h| unit.source_dir.join(h).is_dir()) =>
        {
            run(command(&unit.source_dir.join(unit.handler.as_deref().unwrap_or_default())), "GoModulesBuilder:Build")
                .await
        }
        result => result,
    }
}

/// Runs a build tool; on failure, its output and sam's `<Workflow>:<Action>`.
async fn run(mut command: Command, action: &'static str) -> Result<(), WorkflowError> {
    let program = command.as_std().get_program().to_string_lossy().into_owned();
    let output = match command.stdin(std::process::Stdio::null()).output().await {
        Ok(output) => output,
        Err(source) => return Err(WorkflowError::Spawn { action, program, source }),
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.trim().is_empty() {
        text = format!("{}\n{text}", stdout.trim());
    }
    Err(WorkflowError::Failed { action, program, status: output.status, output: text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selection_follows_build_method_then_runtime() {
        assert_eq!(Workflow::select(None, "python3.12").unwrap(), Workflow::Pip);
        assert_eq!(Workflow::select(None, "nodejs22.x").unwrap(), Workflow::Npm);
        assert_eq!(Workflow::select(Some("esbuild"), "nodejs22.x").unwrap(), Workflow::Esbuild);
        assert_eq!(Workflow::select(Some("makefile"), "python3.12").unwrap(), Workflow::Makefile);
        assert_eq!(Workflow::select(None, "provided.al2023").unwrap(), Workflow::Makefile);
        assert_eq!(Workflow::select(Some("python3.12"), "python3.12").unwrap(), Workflow::Pip);
        let message = |method, runtime| Workflow::select(method, runtime).unwrap_err().to_string();
        assert_eq!(message(None, "python3.7"), "Building functions with python3.7 is no longer supported");
        assert_eq!(message(Some("magic"), "python3.12"), "'magic' does not have a supported builder");
        assert_eq!(message(None, "cobol1.x"), "'cobol1.x' runtime is not supported");
        assert!(matches!(Workflow::select(None, "java21"), Err(WorkflowError::NotYet { tool: "Maven/Gradle", .. })));
    }

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
