//! The language workflows, each split into a dependency step (keyed by the
//! manifest) and a code step (keyed by the source), so that each is cached
//! and reused on its own (spec §1.3, §1.4).

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::fsops;
use super::graph::BuildUnit;

mod bundler;
mod cargo_lambda;
mod esbuild;
mod go;
mod makefile;
mod maven;
mod npm;
mod pip;
mod uv;

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
    /// A build property of the wrong type.
    #[error("Metadata.BuildProperties.{name} must be {expected}")]
    Property {
        /// The property.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// cargo-lambda built several binaries (or none) and none was named.
    #[error("{}: cargo-lambda built more than one binary (or none); name the function's in Metadata.BuildProperties.Binary", .0.display())]
    CargoBinary(PathBuf),
    /// A Java function without a build manifest (sam's message, naming the
    /// code folder only).
    #[error("Unable to find a supported build workflow for runtime '{runtime}'. Reason: None of the supported manifests 'build.gradle', 'build.gradle.kts', 'pom.xml' were found in {}", folder.display())]
    NoJavaManifest {
        /// The function's runtime.
        runtime: String,
        /// Its code folder.
        folder: PathBuf,
    },
    /// `mvn install` left no compiled classes (sam's message).
    #[error("Required target/classes directory was not produced from 'mvn package'")]
    NoClasses,
    /// A makefile build without a Makefile.
    #[error("Makefile not found at {}", .0.display())]
    NoMakefile(PathBuf),
    /// A build tool that is not installed: one line naming it and how to
    /// install it (in sam's words where sam has some), so a missing
    /// toolchain is told apart from a failing build.
    #[error("{0}")]
    MissingTool(String),
    /// Python dependencies with no wheel Lambda can run, even after
    /// building their sdists (sam's `MissingDependencyError`, in its words).
    #[error("{}:ResolveDependencies - {{{}}}", workflow.builder_name(), missing.join(", "))]
    MissingDependencies {
        /// The workflow that looked for them.
        workflow: Workflow,
        /// `name==version(sdist)` or `(wheel)`, as sam lists them.
        missing: Vec<String>,
    },
    /// A requirement no index has (sam's `NoSuchPackageError`, in its words).
    #[error("{}:ResolveDependencies - Could not satisfy the requirement: {package}", workflow.builder_name())]
    NoSuchPackage {
        /// The workflow that looked for it.
        workflow: Workflow,
        /// The requirement as pip names it.
        package: String,
    },
    /// A `--manifest` the uv workflow cannot read (sam's words).
    #[error("PythonUvBuilder:ResolveDependencies - UV package build failed: Unsupported manifest file: {}", .0.file_name().unwrap_or_default().to_string_lossy())]
    UnsupportedManifest(PathBuf),
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

pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> WorkflowError + '_ {
    move |source| WorkflowError::Io { path: path.to_path_buf(), source }
}

/// The files sam's Python workflows never copy from the source, plus `extra`.
macro_rules! python_excludes {
    ($($extra:literal),*) => {
        &[
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
            $($extra,)*
            ".vscode",
            ".idea",
        ]
    };
}

/// A build workflow, chosen by `Metadata.BuildMethod`, else by `Runtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Workflow {
    /// Python with pip (`requirements.txt`).
    Pip,
    /// Python with uv (`BuildMethod: python-uv`; requirements or pyproject.toml).
    Uv,
    /// Node.js with npm (`package.json`).
    Npm,
    /// Node.js bundled with esbuild.
    Esbuild,
    /// `make build-<LogicalId>` with `ARTIFACTS_DIR`.
    Makefile,
    /// Go modules.
    Go,
    /// Rust with `cargo lambda build` (`BuildMethod: rust-cargolambda`).
    CargoLambda,
    /// Ruby with Bundler (`Gemfile`).
    Bundler,
    /// Java with Maven (`pom.xml`).
    Maven,
}

/// A lock or config file beside a manifest: its name and its bytes.
pub(crate) type KeyFile = (&'static str, Vec<u8>);

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

/// Workflows sam has and accel does not: the tool each needs.
const NOT_YET: [(&str, &str); 1] = [("dotnet", ".NET")];

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
            "python-uv" => Workflow::Uv,
            "makefile" | "provided" | "provided.al2" | "provided.al2023" => Workflow::Makefile,
            "go1.x" => Workflow::Go,
            "rust-cargolambda" => Workflow::CargoLambda,
            "ruby3.2" | "ruby3.3" | "ruby3.4" | "ruby4.0" => Workflow::Bundler,
            "java8.al2" | "java8.al2023" | "java11" | "java11.al2023" | "java17" | "java17.al2023" | "java21"
            | "java25" => Workflow::Maven,
            k if k.starts_with("python3.") => Workflow::Pip,
            k if k.starts_with("nodejs") && k.ends_with(".x") => Workflow::Npm,
            _ if build_method.is_some() => return Err(WorkflowError::NoBuilder(key.to_string())),
            _ => return Err(WorkflowError::Runtime(key.to_string())),
        })
    }

    /// The workflow's name in cache keys: fixed text, never a `Debug` dump
    /// (the same names as the first cache bucket, so its entries stay valid).
    /// A workflow whose output changed for the same inputs gets a new name,
    /// so that older entries are not reused.
    pub(crate) fn key_name(self) -> &'static str {
        match self {
            // 2: markers and sdists for the function's Python (issue 13 items 7, 8).
            Workflow::Pip => "Pip2",
            Workflow::Uv => "Uv",
            Workflow::Npm => "Npm",
            Workflow::Esbuild => "Esbuild",
            Workflow::Makefile => "Makefile",
            Workflow::Go => "Go",
            Workflow::CargoLambda => "CargoLambda",
            Workflow::Bundler => "Bundler",
            Workflow::Maven => "Maven",
        }
    }

    /// aws-lambda-builders' name of the workflow, as sam's messages use it.
    pub(crate) fn builder_name(self) -> &'static str {
        match self {
            Workflow::Pip => "PythonPipBuilder",
            Workflow::Uv => "PythonUvBuilder",
            Workflow::Npm => "NodejsNpmBuilder",
            Workflow::Esbuild => "NodejsNpmEsbuildBuilder",
            Workflow::Makefile => "CustomMakeBuilder",
            Workflow::Go => "GoModulesBuilder",
            Workflow::CargoLambda => "RustCargoLambdaBuilder",
            Workflow::Bundler => "RubyBundlerBuilder",
            Workflow::Maven => "JavaMavenWorkflow",
        }
    }

    /// The dependency manifests this workflow reads, by preference: the
    /// first present in the source folder is the unit's manifest.
    pub(crate) fn manifest_names(self) -> &'static [&'static str] {
        match self {
            Workflow::Pip => &["requirements.txt"],
            // aws-lambda-builders' `detect_uv_manifest` order.
            Workflow::Uv => &[
                "requirements.txt",
                "requirements-dev.txt",
                "requirements-test.txt",
                "requirements-prod.txt",
                "pyproject.toml",
            ],
            Workflow::Npm | Workflow::Esbuild => &["package.json"],
            Workflow::Bundler => &["Gemfile"],
            // go.mod/go.sum and Cargo.toml/Cargo.lock are part of the source:
            // `go build` and `cargo lambda build` fetch and compile in one
            // step, keyed by the code; Maven compiles and resolves in one
            // `mvn install`.
            Workflow::Go | Workflow::CargoLambda | Workflow::Maven | Workflow::Makefile => &[],
        }
    }

    /// Lock files hashed with the manifest: a change in them reinstalls.
    pub(crate) fn lockfiles(self) -> &'static [&'static str] {
        match self {
            Workflow::Npm | Workflow::Esbuild => &["package-lock.json", "npm-shrinkwrap.json"],
            Workflow::Uv => &["uv.lock"],
            Workflow::Bundler => &["Gemfile.lock"],
            _ => &[],
        }
    }

    /// Configuration files beside the manifest that the install reads
    /// (npm's `.npmrc`: registry, flags), keyed with it.
    pub(crate) fn install_configs(self) -> &'static [&'static str] {
        match self {
            Workflow::Npm | Workflow::Esbuild => &[".npmrc"],
            _ => &[],
        }
    }

    /// What of the manifest's bytes and of the lock and config files beside
    /// it keys the install: npm's without what only describes the package
    /// ([`npm::install_key`]), the others' as read.
    pub(crate) fn install_key(self, manifest: Vec<u8>, files: Vec<KeyFile>) -> (Vec<u8>, Vec<KeyFile>) {
        match self {
            Workflow::Npm | Workflow::Esbuild => npm::install_key(manifest, files),
            _ => (manifest, files),
        }
    }

    /// Whether [`Workflow::install_key`] keeps the files as read, so that
    /// their digests may come from the hash memo without reading them.
    pub(crate) fn keys_install_as_read(self) -> bool {
        !matches!(self, Workflow::Npm | Workflow::Esbuild)
    }

    /// What outside the project decides an install's result, as found now
    /// (the Pythons pip runs), keyed with the manifest.
    pub(crate) fn install_tools(self, unit: &BuildUnit) -> Vec<String> {
        match self {
            Workflow::Pip => pip::interpreters(unit),
            _ => Vec::new(),
        }
    }

    /// Where a layer's content goes inside its artifact folder, by build method.
    pub(crate) fn layer_subfolder(self, method: &str) -> Option<&'static str> {
        match self {
            Workflow::Pip => Some("python"),
            Workflow::Npm => Some("nodejs"),
            Workflow::Makefile => Some(""),
            Workflow::Bundler => Some("ruby/lib"),
            Workflow::Maven => Some("java"),
            _ if method.starts_with("python") => Some("python"),
            _ => None,
        }
    }

    /// Folder and file names never copied from the source.
    pub(crate) fn excludes(self) -> &'static [&'static str] {
        match self {
            Workflow::Pip => python_excludes!(),
            // sam's PythonUvWorkflow adds uv's own leftovers.
            Workflow::Uv => python_excludes!(".uv-cache", "uv.lock.bak"),
            // npm packs a `node_modules` below the root (`lib/node_modules/`)
            // like any folder; esbuild's copy leaves out every one, as sam's.
            Workflow::Npm => &[".aws-sam", ".git", "/node_modules"],
            Workflow::Esbuild => &[".aws-sam", ".git", "node_modules"],
            Workflow::Makefile | Workflow::Go | Workflow::Bundler | Workflow::Maven => &[".aws-sam", ".git"],
            // cargo builds in the source folder (as sam): its `target/` is output.
            Workflow::CargoLambda => &[".aws-sam", ".git", "target"],
        }
    }

    /// Whether the code step reads the installed dependencies (so its cache
    /// key must include theirs): esbuild bundles them, Bundler's code step
    /// leaves out the files the install rewrote.
    pub(crate) fn code_uses_dependencies(self) -> bool {
        matches!(self, Workflow::Esbuild | Workflow::Bundler)
    }

    /// Installs the dependencies of `unit` into `out` (a fresh folder).
    /// `tool_cache`: where a tool keeps its own download cache across builds.
    pub(crate) async fn install_dependencies(
        self,
        unit: &BuildUnit,
        manifest: &Path,
        out: &Path,
        tool_cache: &Path,
    ) -> Result<(), WorkflowError> {
        match self {
            Workflow::Pip => pip::install(unit, manifest, out).await,
            Workflow::Uv => uv::install(unit, manifest, out, tool_cache).await,
            Workflow::Npm | Workflow::Esbuild => npm::install(self, unit, manifest, out).await,
            Workflow::Bundler => bundler::install(manifest, out).await,
            Workflow::Go | Workflow::CargoLambda | Workflow::Maven | Workflow::Makefile => Ok(()),
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
            Workflow::Pip | Workflow::Uv => fsops::copy_tree(&unit.source_dir, out, self.excludes())
                .map(|()| Vec::new())
                .map_err(io_error(&unit.source_dir)),
            Workflow::Npm => npm::copy_package(unit, out).await,
            Workflow::Esbuild => esbuild::bundle(unit, deps, out).await,
            Workflow::Makefile => makefile::build(unit, out).await,
            Workflow::Go => go::build(unit, out).await.map(|()| Vec::new()),
            Workflow::CargoLambda => cargo_lambda::build(unit, out).await,
            Workflow::Bundler => bundler::build(unit, deps, out).map(|()| Vec::new()),
            Workflow::Maven => maven::build(unit, out).await.map(|()| Vec::new()),
        }
    }

    /// Whether [`Workflow::build_code`] may read files outside the unit's
    /// folder (and so record them): the others only copy or compile it.
    pub(crate) fn records_inputs(self) -> bool {
        matches!(self, Workflow::Npm | Workflow::Esbuild | Workflow::Makefile | Workflow::CargoLambda)
    }

    /// Whether this workflow builds in the source folder for sam's
    /// `--build-in-source`/`--no-build-in-source` value (`None`: unset), and
    /// sam's warning when the workflow does not take that value (sam's
    /// `BUILD_IN_SOURCE_SUPPORT`: npm, esbuild and makefile take both, pip
    /// only "no", Go only "yes", which is how accel builds Go anyway).
    pub(crate) fn builds_in_source(self, requested: Option<bool>) -> (bool, Option<String>) {
        let (supported, default): (&[bool], bool) = match self {
            Workflow::Npm | Workflow::Esbuild | Workflow::Makefile => (&[false, true], false),
            Workflow::Pip | Workflow::Uv | Workflow::Bundler | Workflow::Maven => (&[false], false),
            // Builders that only build where the source is (and so does accel).
            Workflow::Go | Workflow::CargoLambda => (&[true], true),
        };
        let python = |b: bool| if b { "True" } else { "False" };
        let warning = requested.filter(|value| !supported.contains(value)).map(|value| {
            format!(
                "Workflow {} does not support value \"{}\" for building in source. Using default value \"{}\".",
                self.builder_name(),
                python(value),
                python(default)
            )
        });
        let chosen = requested.filter(|value| supported.contains(value)).unwrap_or(default);
        // Go and cargo-lambda build where they always build: only the others change.
        (chosen && !matches!(self, Workflow::Go | Workflow::CargoLambda), warning)
    }

    /// Whether the installed dependencies go into the artifact (pip's
    /// packages at its root, npm's `node_modules/`, Bundler's
    /// `vendor/bundle`); esbuild bundles them.
    pub(crate) fn ships_dependencies(self) -> bool {
        matches!(self, Workflow::Pip | Workflow::Uv | Workflow::Npm | Workflow::Bundler)
    }

    /// Whether the source is copied over the installed dependencies (sam's
    /// Python workflows install first, then copy the source) rather than the
    /// dependencies installed over the source (npm, Bundler): where both
    /// hold a path, the later one's file is the artifact's.
    pub(crate) fn source_over_dependencies(self) -> bool {
        matches!(self, Workflow::Pip | Workflow::Uv)
    }
}

/// `program` as found on PATH (or as given, when it is a path), or the
/// one-line error naming it and how to install it.
pub(super) fn find_tool(program: &Path, install: &'static str) -> Result<PathBuf, WorkflowError> {
    let found = if program.components().count() > 1 {
        program.is_file().then(|| program.to_path_buf())
    } else {
        on_path(program)
    };
    found.ok_or_else(|| WorkflowError::missing_tool(&program.display().to_string(), install))
}

/// The executable `program` in a folder of `PATH`, if there is one. On
/// Windows a bare name is also tried with each extension of `PATHEXT`, as
/// the shell does: npm, for one, is `npm.cmd` there.
pub(super) fn on_path(program: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extensions = match cfg!(windows) {
        true => std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".to_string()),
        false => String::new(),
    };
    let runnable = |candidate: &Path| candidate.metadata().is_ok_and(|m| m.is_file() && is_executable(&m));
    find_in(program, std::env::split_paths(&path), &extensions, runnable)
}

/// The first of `program` in `dirs` that is `runnable`. With `extensions`
/// (`;`-separated, Windows' `PATHEXT`), a name without one is tried with
/// each instead, never bare: Node's folder holds `npm` (a shell script
/// Windows cannot run) beside `npm.cmd`.
fn find_in(
    program: &Path,
    dirs: impl Iterator<Item = PathBuf>,
    extensions: &str,
    runnable: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let with = |extension: &str| {
        let mut name = program.as_os_str().to_owned();
        name.push(extension.to_ascii_lowercase());
        name
    };
    let names: Vec<_> = match program.extension() {
        None if !extensions.is_empty() => extensions.split(';').filter(|e| !e.is_empty()).map(with).collect(),
        _ => vec![program.as_os_str().to_owned()],
    };
    dirs.flat_map(|dir| names.iter().map(move |name| dir.join(name))).find(|candidate| runnable(candidate))
}

/// A command for the build tool `program`, found on `PATH` (with `PATHEXT`
/// on Windows, where spawning `npm` alone would not find `npm.cmd`); left
/// bare when it is not there, so that running it reports the missing tool.
pub(super) fn tool(program: &str) -> Command {
    Command::new(on_path(Path::new(program)).unwrap_or_else(|| PathBuf::from(program)))
}

/// Whether a file's mode lets anyone run it.
#[cfg(unix)]
fn is_executable(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

/// Windows has no execute bit: any file may be run.
#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    true
}

impl WorkflowError {
    /// accel's line for a tool that is not on `PATH`.
    pub(super) fn missing_tool(tool: &str, install: &str) -> WorkflowError {
        WorkflowError::MissingTool(format!("{tool} is not installed or not on PATH; {install}"))
    }
}

/// How to install a build tool, for [`WorkflowError::MissingTool`].
fn install_hint(tool: &str) -> &'static str {
    match tool {
        "cargo" => "install Rust with rustup (https://rustup.rs)",
        "cargo-lambda" => "install it with `pip install cargo-lambda` (or `cargo install --locked cargo-lambda`)",
        "bundle" => "install Ruby and Bundler (Debian/Ubuntu: `apt-get install -y ruby bundler`)",
        "mvn" => "install Maven (Debian/Ubuntu: `apt-get install -y maven`)",
        "npm" => "install Node.js with npm (https://nodejs.org)",
        "go" => "install Go (https://go.dev/dl)",
        "make" => "install make (Debian/Ubuntu: `apt-get install -y make`)",
        _ => "install it and put it on PATH",
    }
}

/// Fails with [`WorkflowError::MissingTool`] unless `tool` is an executable
/// on PATH: for tools run through another (`cargo lambda` runs
/// `cargo-lambda`), whose own error would not say what to install.
pub(super) fn require(tool: &str) -> Result<(), WorkflowError> {
    find_tool(Path::new(tool), install_hint(tool)).map(drop)
}

/// Runs a build tool; on failure, its output and sam's `<Workflow>:<Action>`.
pub(super) async fn run(command: Command, action: &'static str) -> Result<(), WorkflowError> {
    output(command, action).await.map(|_| ())
}

/// [`run`], returning what the tool printed on stdout.
pub(super) async fn output(mut command: Command, action: &'static str) -> Result<Vec<u8>, WorkflowError> {
    // Named as typed (`npm`), not as found on PATH (`/usr/bin/npm`, `npm.cmd`).
    let program = Path::new(command.as_std().get_program());
    let name = if cfg!(windows) { program.file_stem() } else { program.file_name() };
    let program = name.unwrap_or(program.as_os_str()).to_string_lossy().into_owned();
    let output = match command.stdin(std::process::Stdio::null()).output().await {
        Ok(output) => output,
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(WorkflowError::missing_tool(&program, install_hint(&program)));
        }
        Err(source) => return Err(WorkflowError::Spawn { action, program, source }),
    };
    if output.status.success() {
        return Ok(output.stdout);
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
    #[test]
    fn tools_are_found_by_pathext_on_windows_and_by_name_elsewhere() {
        let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for file in ["npm", "npm.cmd"] {
            std::fs::write(second.path().join(file), "").unwrap();
        }
        std::fs::write(first.path().join("npm.ps1"), "").unwrap();
        let dirs = || [first.path().to_path_buf(), second.path().to_path_buf()].into_iter();
        let exists = |p: &Path| p.is_file();
        let npm = Path::new("npm");
        assert_eq!(find_in(npm, dirs(), ".COM;.EXE;.BAT;.CMD", exists), Some(second.path().join("npm.cmd")));
        assert_eq!(find_in(npm, dirs(), "", exists), Some(second.path().join("npm")));
        let named = Path::new("npm.ps1");
        assert_eq!(find_in(named, dirs(), ".COM;.EXE", exists), Some(first.path().join("npm.ps1")));
        assert_eq!(find_in(Path::new("node"), dirs(), ".EXE", exists), None);
    }

    use super::*;

    #[test]
    fn selection_follows_build_method_then_runtime() {
        assert_eq!(Workflow::select(None, "python3.12").unwrap(), Workflow::Pip);
        assert_eq!(Workflow::select(None, "nodejs22.x").unwrap(), Workflow::Npm);
        assert_eq!(Workflow::select(Some("esbuild"), "nodejs22.x").unwrap(), Workflow::Esbuild);
        assert_eq!(Workflow::select(Some("makefile"), "python3.12").unwrap(), Workflow::Makefile);
        assert_eq!(Workflow::select(None, "provided.al2023").unwrap(), Workflow::Makefile);
        assert_eq!(Workflow::select(Some("python3.12"), "python3.12").unwrap(), Workflow::Pip);
        assert_eq!(Workflow::select(Some("python-uv"), "python3.12").unwrap(), Workflow::Uv);
        assert_eq!(Workflow::Uv.layer_subfolder("python-uv"), Some("python"));
        assert_eq!(Workflow::select(Some("rust-cargolambda"), "provided.al2023").unwrap(), Workflow::CargoLambda);
        assert_eq!(Workflow::select(None, "ruby3.4").unwrap(), Workflow::Bundler);
        assert_eq!(Workflow::select(Some("ruby3.3"), "ruby3.3").unwrap().layer_subfolder("ruby3.3"), Some("ruby/lib"));
        let message = |method, runtime| Workflow::select(method, runtime).unwrap_err().to_string();
        assert_eq!(message(None, "python3.7"), "Building functions with python3.7 is no longer supported");
        assert_eq!(message(Some("magic"), "python3.12"), "'magic' does not have a supported builder");
        assert_eq!(message(None, "cobol1.x"), "'cobol1.x' runtime is not supported");
        assert_eq!(message(None, "ruby3.1"), "'ruby3.1' runtime is not supported");
        assert_eq!(Workflow::select(None, "java21").unwrap(), Workflow::Maven);
        assert_eq!(message(None, "java8"), "Building functions with java8 is no longer supported");
        assert!(matches!(Workflow::select(None, "dotnet8"), Err(WorkflowError::NotYet { tool: ".NET", .. })));
    }

    #[tokio::test]
    async fn a_tool_missing_from_path_is_named_with_how_to_install_it() {
        let error = run(Command::new("go-but-not-installed"), "X:Y").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "go-but-not-installed is not installed or not on PATH; install it and put it on PATH"
        );
        assert_eq!(
            require("mvn-but-not-installed").unwrap_err().to_string(),
            "mvn-but-not-installed is not installed or not on PATH; install it and put it on PATH"
        );
        // On Windows found through PATHEXT: `cmd` is `cmd.exe`.
        assert!(require(if cfg!(windows) { "cmd" } else { "sh" }).is_ok());
        let error = WorkflowError::missing_tool("mvn", install_hint("mvn"));
        assert_eq!(
            error.to_string(),
            "mvn is not installed or not on PATH; install Maven (Debian/Ubuntu: `apt-get install -y maven`)"
        );
    }

    #[test]
    fn build_in_source_is_taken_where_sam_takes_it() {
        assert_eq!(Workflow::Npm.builds_in_source(Some(true)), (true, None));
        assert_eq!(Workflow::Makefile.builds_in_source(Some(false)), (false, None));
        assert_eq!(Workflow::Esbuild.builds_in_source(None), (false, None));
        let (pip, warning) = Workflow::Pip.builds_in_source(Some(true));
        assert!(!pip);
        assert_eq!(
            warning.as_deref(),
            Some(
                r#"Workflow PythonPipBuilder does not support value "True" for building in source. Using default value "False"."#
            )
        );
        let (go, warning) = Workflow::Go.builds_in_source(Some(false));
        assert!(!go, "Go keeps its own layout");
        assert_eq!(
            warning.as_deref(),
            Some(
                r#"Workflow GoModulesBuilder does not support value "False" for building in source. Using default value "True"."#
            )
        );
        assert_eq!(Workflow::Go.builds_in_source(Some(true)), (false, None));
    }
}
