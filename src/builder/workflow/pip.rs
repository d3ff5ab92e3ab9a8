//! Python with pip, as sam's PythonPipBuilder: wheels for Lambda's platform
//! and the function's Python, sdists built into wheels where the host can,
//! then unpacked.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::{Workflow, WorkflowError, find_tool, io_error, output};
use crate::builder::fsops;
use crate::builder::graph::BuildUnit;

/// How to get a Python with pip, for the missing-tool message.
pub(super) const INSTALL_PYTHON: &str =
    "install it with `apt-get install python3 python3-pip` (or set ACCEL_PYTHON to a Python 3 with pip)";

/// Runs pip with its environment markers evaluated for the function's
/// Python and architecture (pip evaluates them for the interpreter running
/// it, even with `--python-version`), and with sdists allowed next to the
/// target's wheels (pip refuses `--platform` without `--only-binary=:all:`,
/// which would rule out the sdists sam builds). Arguments: the target's
/// `X.Y`, its machine, then pip's own arguments.
const PIP_FOR_TARGET: &str = r#"import sys
from pip._vendor.packaging import markers
from pip._internal.cli import cmdoptions
version, machine = sys.argv[1], sys.argv[2]
host = markers.default_environment
def target():
    env = host()
    if env["python_version"] != version:
        env.update(python_version=version, python_full_version=version + ".0", implementation_version=version + ".0")
    env.update(platform_machine=machine, platform_system="Linux", sys_platform="linux", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython")
    return env
markers.default_environment = target
cmdoptions.check_dist_restriction = lambda *args, **kwargs: None
from pip._internal.cli.main import main
sys.exit(main(sys.argv[3:]))
"#;

/// What Lambda runs a Python function on: its Python version and machine.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// `3.12`.
    pub(super) version: String,
    /// `12`.
    pub(super) minor: u32,
    /// `x86_64` or `aarch64`.
    pub(super) machine: &'static str,
}

impl Target {
    /// The target of a unit whose runtime (or layer build method) is
    /// `pythonX.Y`; for a layer built with `python-uv`, its first
    /// compatible Python runtime, else Python 3.12 (sam cannot build such
    /// a layer: it takes `python-uv` for the Python version).
    pub(super) fn of(unit: &BuildUnit) -> Target {
        let runtime = std::iter::once(&unit.runtime)
            .chain(&unit.compatible_runtimes)
            .find(|r| r.strip_prefix("python3.").is_some_and(|m| m.parse::<u32>().is_ok()))
            .map_or("python3.12", String::as_str);
        let version = runtime.trim_start_matches("python").to_string();
        let minor = version.strip_prefix("3.").and_then(|m| m.parse().ok()).unwrap_or(0);
        Target { version, minor, machine: unit.machine() }
    }

    /// Whether the runtime runs on Amazon Linux 2023 (glibc 2.34), not 2.
    pub(super) fn al2023(&self) -> bool {
        self.minor >= 12
    }

    /// The ABI tag of the runtime's CPython (`cp312`).
    fn abi(&self) -> String {
        format!("cp3{}", self.minor)
    }

    /// The wheel platform tags sam accepts (aws-lambda-builders'
    /// `compatible_platforms`): up to manylinux_2_34 on Amazon Linux 2023
    /// runtimes, up to manylinux_2_17 before.
    fn platforms(&self) -> Vec<String> {
        let arch = self.machine;
        let mut tags = match arch {
            "aarch64" => vec!["linux", "manylinux2014", "manylinux_2_17"],
            _ => vec!["linux", "manylinux1", "manylinux2010", "manylinux2014", "manylinux_2_17"],
        };
        if self.al2023() {
            tags.extend(["manylinux_2_28", "manylinux_2_34"]);
        }
        std::iter::once("any".to_string()).chain(tags.iter().map(|t| format!("{t}_{arch}"))).collect()
    }

    /// sam's `_is_compatible_platform_tag`: a listed tag, or a manylinux
    /// tag whose glibc the runtime has.
    fn platform_ok(&self, platform: &str) -> bool {
        if self.platforms().iter().any(|p| p == platform) {
            return true;
        }
        let arch = self.machine;
        let perennial = match platform.strip_suffix(&format!("_{arch}")) {
            Some("manylinux1") => "manylinux_2_5",
            Some("manylinux2010") => "manylinux_2_12",
            Some("manylinux2014") => "manylinux_2_17",
            Some(other) => other,
            None => return false,
        };
        let glibc = if self.al2023() { (2, 34) } else { (2, 26) };
        let mut parts = perennial.strip_prefix("manylinux_").into_iter().flat_map(|v| v.split('_'));
        match (parts.next().and_then(|m| m.parse().ok()), parts.next().and_then(|m| m.parse().ok()), parts.next()) {
            (Some(major), Some(minor), None) => (major, minor) <= glibc,
            _ => false,
        }
    }

    /// sam's `_is_compatible_wheel_filename` (with its allowlist).
    fn wheel_ok(&self, wheel: &Dist) -> bool {
        let tags: Vec<&str> = wheel.file.trim_end_matches(".whl").rsplitn(4, '-').take(3).collect();
        let [platforms, abis, implementations] = tags[..] else { return false };
        let abi = self.abi();
        let tagged = implementations.split('.').any(|implementation| {
            abis.split('.').any(|a| {
                platforms.split('.').any(|p| {
                    self.platform_ok(p)
                        && (a == "none" || implementation.starts_with("cp3") && (a == abi || a == "abi3"))
                })
            })
        });
        tagged || wheel.name == "sqlalchemy"
    }
}

/// A downloaded or built distribution: its file, normalised name and version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Dist {
    name: String,
    version: String,
    file: String,
}

impl Dist {
    /// A wheel (`name-version-…whl`) or an sdist (`name-version.tar.gz`,
    /// `.zip`, `.tar.bz2`) by file name; anything else is none.
    fn parse(file: &str) -> Option<Dist> {
        let (name, version) = if let Some(stem) = file.strip_suffix(".whl") {
            let mut parts = stem.split('-');
            (parts.next()?, parts.next()?)
        } else {
            let stem = [".tar.gz", ".zip", ".tar.bz2"].iter().find_map(|ext| file.strip_suffix(ext))?;
            stem.rsplit_once('-')?
        };
        let mut normalised = String::new();
        for c in name.chars() {
            let c = if matches!(c, '-' | '_' | '.') { '-' } else { c.to_ascii_lowercase() };
            if !(c == '-' && normalised.ends_with('-')) {
                normalised.push(c);
            }
        }
        Some(Dist { name: normalised, version: version.to_string(), file: file.to_string() })
    }

    fn is_wheel(&self) -> bool {
        self.file.ends_with(".whl")
    }

    /// sam's `Package.__str__`: `name==version(sdist)`.
    fn describe(&self) -> String {
        format!("{}=={}({})", self.name, self.version, if self.is_wheel() { "wheel" } else { "sdist" })
    }
}

/// Installs `manifest`'s requirements for `unit`'s runtime into `out`, as
/// sam's `DependencyBuilder`: download what Lambda can run (wheels, else
/// sdists), build sdists and local folders into wheels (again without a C
/// compiler when the first wheel does not fit Lambda), unpack the wheels
/// that fit, and fail naming the packages left without one.
pub(super) async fn install(unit: &BuildUnit, manifest: &Path, out: &Path) -> Result<(), WorkflowError> {
    if !has_requirements(manifest)? {
        return Ok(());
    }
    let python = find_tool(&python_command(), INSTALL_PYTHON)?;
    // sam: "Failed to find a Python runtime containing pip on the PATH."
    if !has_pip(&python).await {
        return Err(WorkflowError::missing_tool(&format!("pip (for {})", python.display()), INSTALL_PYTHON));
    }
    let target = Target::of(unit);
    let scratch = tempfile::tempdir().map_err(io_error(&std::env::temp_dir()))?;
    let dest = scratch.path();
    let stdout = download(&python, &target, manifest, dest).await?;
    let processed = processed_paths(&stdout);
    let builds = !processed.is_empty() || dists(dest)?.iter().any(|d| !d.is_wheel());
    let builder = if builds { wheel_python(&target, &python).await } else { python };
    // Local folders and archives pip says it processed (sam's
    // `_LINK_IS_DIR_PATTERNS`) are built into wheels first, as sam does.
    for local in &processed {
        build_wheel(&builder, Path::new(local), dest, true).await;
    }
    let downloaded = dists(dest)?;
    // As sam counts them: a release with a wheel already is not an sdist.
    let sdists: Vec<&Dist> =
        downloaded.iter().filter(|d| !d.is_wheel() && !downloaded.iter().any(|w| w.is_wheel() && same(w, d))).collect();
    for compile_c in [true, false] {
        let wheels = dists(dest)?;
        for sdist in &sdists {
            if !wheels.iter().any(|w| w.is_wheel() && same(w, sdist) && target.wheel_ok(w)) {
                build_wheel(&builder, &dest.join(&sdist.file), dest, compile_c).await;
            }
        }
    }
    let compatible: Vec<Dist> = dists(dest)?.into_iter().filter(|d| d.is_wheel() && target.wheel_ok(d)).collect();
    unpack_wheels(dest, &compatible, out)?;
    // A release with a wheel (built or not) is reported as one, as sam does.
    let all = dists(dest)?;
    let mut missing: Vec<String> = downloaded
        .iter()
        .filter(|d| !compatible.iter().any(|w| same(w, d)))
        .map(|d| all.iter().find(|w| w.is_wheel() && same(w, d)).unwrap_or(d).describe())
        .collect();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(WorkflowError::MissingDependencies { workflow: Workflow::Pip, missing })
    }
}

/// sam's `_has_at_least_one_package`: a line that is not blank or a comment.
fn has_requirements(manifest: &Path) -> Result<bool, WorkflowError> {
    let text = std::fs::read_to_string(manifest).map_err(io_error(manifest))?;
    Ok(text.lines().map(str::trim).any(|l| !l.is_empty() && !l.starts_with('#')))
}

/// Whether two distributions are the same release.
fn same(a: &Dist, b: &Dist) -> bool {
    a.name == b.name && a.version == b.version
}

/// Downloads the requirements' closure for `target` into `dest`; pip's stdout.
async fn download(python: &Path, target: &Target, manifest: &Path, dest: &Path) -> Result<String, WorkflowError> {
    let mut pip = Command::new(python);
    pip.args(["-c", PIP_FOR_TARGET, &target.version, target.machine]);
    pip.args(["download", "--disable-pip-version-check", "--no-input"]);
    pip.args(["--implementation", "cp", "--python-version", &target.version]);
    for platform in target.platforms() {
        pip.args(["--platform", &platform]);
    }
    pip.args(["--exists-action", "i", "--dest"]).arg(dest).arg("-r").arg(manifest);
    let printed = output(pip, "PythonPipBuilder:ResolveDependencies").await;
    match printed.map(|out| String::from_utf8_lossy(&out).into_owned()) {
        // pip reports an unresolvable requirement only in words (its exit
        // code is 1 for any error, and `--report` is `pip install`'s), so
        // this one case is read from its message.
        Err(WorkflowError::Failed { output, .. })
            if output.contains("Could not find a version that satisfies the requirement ") =>
        {
            let package = output
                .split("Could not find a version that satisfies the requirement ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            Err(WorkflowError::NoSuchPackage { workflow: Workflow::Pip, package })
        }
        other => other,
    }
}

/// The local folders and archives pip's output says it processed
/// (`Processing ./pkg`), relative to the working folder as pip prints them.
fn processed_paths(stdout: &str) -> Vec<String> {
    let mut paths: Vec<String> = stdout
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("Processing "))
        .filter_map(|rest| rest.split([' ', ',']).next())
        .map(str::to_string)
        .filter(|path| Path::new(path).exists())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// The Python that builds sdists: the runtime's own (`pythonX.Y` with pip
/// on PATH), as sam requires it, so that a build backend or a C extension
/// sees the function's Python; else `host`, which fits pure-Python sdists.
async fn wheel_python(target: &Target, host: &Path) -> PathBuf {
    let Ok(own) = find_tool(Path::new(&format!("python{}", target.version)), INSTALL_PYTHON) else {
        return host.to_path_buf();
    };
    // A pyenv shim of a version that is not active is on PATH but fails.
    if has_pip(&own).await { own } else { host.to_path_buf() }
}

/// Whether `python` runs and can import pip.
async fn has_pip(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import pip"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .is_ok_and(|out| out.status.success())
}

/// `pip wheel --no-deps` of an sdist or folder into `dest`, without a C
/// compiler unless `compile_c`. Its failures are not errors (as sam): a
/// package left without a wheel is reported at the end.
async fn build_wheel(python: &Path, source: &Path, dest: &Path, compile_c: bool) {
    let mut pip = Command::new(python);
    pip.args(["-m", "pip", "wheel", "--disable-pip-version-check", "--no-input", "--no-deps", "--wheel-dir"])
        .arg(dest)
        .arg(source)
        .stdin(std::process::Stdio::null());
    if !compile_c {
        // sam's posix `pip_no_compile_c_env_vars`: builds fall back to pure Python where they can.
        pip.env("CC", "/var/false");
    }
    let _ = pip.output().await;
}

/// The distributions in `dir`, sorted.
fn dists(dir: &Path) -> Result<Vec<Dist>, WorkflowError> {
    let mut found: Vec<Dist> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .flatten()
        .filter_map(|e| Dist::parse(&e.file_name().to_string_lossy()))
        .collect();
    found.sort();
    Ok(found)
}

/// Unpacks `wheels` (in `dir`) into `out` as sam does: the archive as is,
/// then the `purelib`/`platlib` folders of `<name>-<version>.data` merged
/// into `out` (any other `.data` content stays where the wheel has it).
fn unpack_wheels(dir: &Path, wheels: &[Dist], out: &Path) -> Result<(), WorkflowError> {
    for wheel in wheels {
        let wheel = dir.join(&wheel.file);
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
                    fsops::remove_tree(&from).map_err(io_error(&from))?;
                }
            }
        }
    }
    Ok(())
}

/// The Python that runs pip: `ACCEL_PYTHON`, else `python3` on PATH
/// (`python` on Windows, where python.org's installer names it so and
/// `python3` is at most the Store's placeholder).
pub(super) fn python_command() -> PathBuf {
    let usual = if cfg!(windows) { "python" } else { "python3" };
    std::env::var_os("ACCEL_PYTHON").map_or_else(|| usual.into(), PathBuf::from)
}

/// The Pythons an install of `unit` would run, as found now (a link's
/// target too, which names the version): pip's, and the runtime's own that
/// builds sdists. Another one builds other wheels from the same manifest.
pub(super) fn interpreters(unit: &BuildUnit) -> Vec<String> {
    let own = PathBuf::from(format!("python{}", Target::of(unit).version));
    let mut out = Vec::new();
    for program in [python_command(), own] {
        let found = find_tool(&program, INSTALL_PYTHON).ok();
        let real = found.as_deref().and_then(|f| std::fs::canonicalize(f).ok());
        out.extend([found, real].map(|p| p.map_or("-".into(), |p| p.to_string_lossy().into_owned())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(version: &str, machine: &'static str) -> Target {
        let minor = version.strip_prefix("3.").unwrap().parse().unwrap();
        Target { version: version.into(), minor, machine }
    }

    #[test]
    fn wheels_fit_as_sam_decides() {
        let ok = |t: &Target, file: &str| t.wheel_ok(&Dist::parse(file).unwrap());
        let (py39, py312, arm) = (target("3.9", "x86_64"), target("3.12", "x86_64"), target("3.12", "aarch64"));
        assert!(ok(&py39, "six-1.16.0-py2.py3-none-any.whl"));
        assert!(ok(&py39, "numpy-2.0.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"));
        assert!(!ok(&py39, "numpy-2.0.2-cp310-cp310-manylinux_2_17_x86_64.whl"), "another Python");
        assert!(!ok(&py39, "x-1-cp39-cp39-manylinux_2_28_x86_64.whl"), "glibc 2.28 is not on Amazon Linux 2");
        assert!(ok(&py312, "x-1-cp312-cp312-manylinux_2_28_x86_64.whl"));
        assert!(ok(&py312, "x-1-cp38-abi3-manylinux_2_34_x86_64.whl"), "the stable ABI");
        assert!(!ok(&py312, "x-1-cp312-cp312-manylinux_2_35_x86_64.whl"));
        assert!(ok(&py312, "x-1-cp312-cp312-linux_x86_64.whl"), "a wheel built on the host, as sam takes it");
        assert!(!ok(&arm, "x-1-cp312-cp312-linux_x86_64.whl"));
        assert!(ok(&arm, "x-1-cp312-cp312-manylinux2014_aarch64.whl"));
        assert!(ok(&py39, "SQLAlchemy-2.0.0-cp311-cp311-linux_x86_64.whl"), "sam's allowlist");
    }

    #[test]
    fn distributions_are_named_as_sam_names_them() {
        let sdist = Dist::parse("python-dateutil-2.8.2.tar.gz").unwrap();
        let wheel = Dist::parse("python_dateutil-2.8.2-py2.py3-none-any.whl").unwrap();
        assert!(same(&sdist, &wheel));
        assert_eq!(sdist.describe(), "python-dateutil==2.8.2(sdist)");
        assert_eq!(Dist::parse("Zope.Interface-6.0.zip").unwrap().name, "zope-interface");
        assert!(Dist::parse("notes.txt").is_none());
    }

    #[test]
    fn platform_tags_per_runtime() {
        assert_eq!(target("3.11", "x86_64").platforms().last().unwrap(), "manylinux_2_17_x86_64");
        assert_eq!(target("3.13", "aarch64").platforms().last().unwrap(), "manylinux_2_34_aarch64");
    }
}
