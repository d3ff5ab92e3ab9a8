//! Python builds (issue 13 items 7, 8, 18, 19): requirements chosen for the
//! function's Python and architecture, sdists built as sam builds them, the
//! `python-uv` build method, and a missing tool named in one line. The
//! host's Python is 3.11: the fixtures' other runtimes are cross builds.

use std::path::Path;

#[cfg(unix)]
use crate::support::step;
use crate::support::{RunOutput, TestContext, listing};

/// The names at the top of an artifact folder.
fn entries(ctx: &TestContext, artifact: &str) -> Vec<String> {
    listing(&ctx.join(&format!(".aws-sam/build/{artifact}")))
}

/// The `Tag:` lines of an installed package's `WHEEL` file.
fn wheel_tags(ctx: &TestContext, dist_info: &str) -> Vec<String> {
    let wheel = ctx.read(&format!(".aws-sam/build/{dist_info}/WHEEL"));
    wheel.lines().filter_map(|l| l.strip_prefix("Tag: ")).map(str::to_string).collect()
}

/// A script `runtime-bin/<name>` that runs `prelude`, then the host's
/// `python3` with its arguments: another Python, as PATH or
/// `ACCEL_PYTHON` would find it. A `sh` script: the tests using it are
/// Unix-only.
#[cfg(unix)]
fn python_wrapper(ctx: &TestContext, name: &str, prelude: &str) -> std::path::PathBuf {
    let real = std::process::Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output();
    let real = String::from_utf8(real.unwrap().stdout).unwrap().trim().to_string();
    let bin = ctx.root().join("runtime-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join(name), format!("#!/bin/sh\n{prelude}exec '{real}' \"$@\"\n")).unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(bin.join(name), executable).unwrap();
    bin.join(name)
}

/// The one `Error:` line of a failed run, checked to be its only line on stderr.
fn only_error_line(out: &RunOutput) -> String {
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "one Error: line\n{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    errors[0].to_string()
}

#[test]
fn markers_and_requires_python_follow_the_functions_runtime() {
    // One requirements file, built for Python 3.8, 3.9 and 3.13 (x86_64 and
    // arm64) on a 3.11 host: what each function gets is what its own Python
    // and machine select, as sam does with the runtime's interpreter.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-markers");
    ctx.accel(&["build"]).assert_success();
    let has = |artifact: &str, name: &str| entries(&ctx, artifact).iter().any(|e| e == name);
    for artifact in ["Py38Function", "Py39Function"] {
        assert!(has(artifact, "idna"), "python_version < 3.10 applies to {artifact}");
        assert!(!has(artifact, "six.py"), "python_version >= 3.10 does not apply to {artifact}");
        assert!(has(artifact, "typing_extensions.py"), "a dependency's own marker (< 3.13) applies to {artifact}");
    }
    // Requires-Python: typing-extensions 4.13.2 is the last release for 3.8.
    assert!(has("Py38Function", "typing_extensions-4.13.2.dist-info"), "{:?}", entries(&ctx, "Py38Function"));
    assert!(!has("Py39Function", "typing_extensions-4.13.2.dist-info"));
    for artifact in ["Py313Function", "Py313ArmFunction"] {
        assert!(has(artifact, "six.py") && has(artifact, "exceptiongroup"), "{:?}", entries(&ctx, artifact));
        assert!(!has(artifact, "idna"), "python_version < 3.10 does not apply to {artifact}");
        assert!(!has(artifact, "typing_extensions.py"), "exceptiongroup needs typing-extensions below 3.13 only");
    }
    // platform_machine is the function's architecture, not the host's.
    assert!(has("Py313ArmFunction", "attrs-24.2.0.dist-info"));
    assert!(!has("Py313Function", "attr") && !has("Py39Function", "attr"));
}

#[cfg(unix)] // python_wrapper
#[test]
fn a_pure_python_sdist_is_built_into_a_wheel_and_unpacked() {
    // accel-pure-demo exists only as an sdist (a --find-links folder): as
    // sam, it is built with `pip wheel` and unpacked like any wheel.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-sdist");
    // The runtime's own Python (python3.11 here) builds it, as sam's does:
    // a wrapper on PATH records its calls.
    let log = ctx.root().join("python3.11.log");
    let wrapper = python_wrapper(&ctx, "python3.11", &format!("echo \"$@\" >> '{}'\n", log.display()));
    let path = format!("{}:{}", wrapper.parent().unwrap().display(), std::env::var("PATH").unwrap());
    ctx.accel(&["build"]).env("PATH", &path).assert_success();
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(calls.contains("-m pip wheel") && calls.contains("accel-pure-demo-1.0.tar.gz"), "{calls}");
    assert_eq!(
        entries(&ctx, "PureFunction"),
        [
            "accel_pure_demo",
            "accel_pure_demo-1.0.dist-info",
            "app.py",
            "requirements.txt",
            "six-1.16.0.dist-info",
            "six.py"
        ]
    );
    assert!(ctx.read(".aws-sam/build/PureFunction/accel_pure_demo/__init__.py").contains("def greet"));
    assert_eq!(wheel_tags(&ctx, "PureFunction/accel_pure_demo-1.0.dist-info"), ["py3-none-any"]);
}

#[test]
fn a_native_sdist_is_built_for_the_host_and_refused_for_another_machine() {
    // The host (x86_64, Python 3.11) compiles the C extension for a
    // python3.11 x86_64 function, as sam does.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-sdist-native");
    ctx.accel(&["build"]).assert_success();
    assert!(
        ctx.join(".aws-sam/build/NativeFunction/accel_native_demo/_speedups.cpython-311-x86_64-linux-gnu.so").is_file(),
        "{:?}",
        entries(&ctx, "NativeFunction/accel_native_demo")
    );
    // For arm64 the host's wheel does not fit and no compiler-free build
    // exists: sam's error, naming the package; the previous build stays.
    let out = ctx.accel(&["build", "--parameter-overrides", "Arch=arm64"]).assert_code(1);
    assert_eq!(
        only_error_line(&out),
        "Error: NativeFunction: PythonPipBuilder:ResolveDependencies - {accel-native-demo==1.0(wheel)}"
    );
    assert!(ctx.join(".aws-sam/build/NativeFunction/accel_native_demo").is_dir());
}

#[test]
fn an_unknown_requirement_is_sams_one_line_error() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-sdist");
    ctx.write("pure/requirements.txt", "--find-links ../sdists\naccel-no-such-package-anywhere==1.0\n");
    let out = ctx.accel(&["build"]).assert_code(1);
    assert_eq!(
        only_error_line(&out),
        "Error: PureFunction: PythonPipBuilder:ResolveDependencies - Could not satisfy the requirement: \
         accel-no-such-package-anywhere==1.0"
    );
}

#[test]
fn python_uv_builds_for_lambdas_glibc_from_requirements_and_from_a_lock() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-uv");
    ctx.accel(&["build"]).assert_success();
    // python3.11 runs on Amazon Linux 2: manylinux2014, not uv's default
    // manylinux_2_28 (which sam's experimental workflow picks).
    assert_eq!(
        wheel_tags(&ctx, "UvRequirementsFunction/bcrypt-5.0.0.dist-info"),
        ["cp39-abi3-manylinux_2_17_x86_64", "cp39-abi3-manylinux2014_x86_64"]
    );
    // python3.13 runs on Amazon Linux 2023, here on arm64: manylinux_2_34.
    assert_eq!(wheel_tags(&ctx, "UvProjectFunction/bcrypt-5.0.0.dist-info"), ["cp39-abi3-manylinux_2_34_aarch64"]);
    let requirements = entries(&ctx, "UvRequirementsFunction");
    for name in ["app.py", "requirements.txt", "six.py", "markupsafe", "bcrypt", "wheel", "__pycache__"] {
        assert!(requirements.iter().any(|e| e == name), "{name} in {requirements:?}");
    }
    // uv writes console scripts naming the host's Python: dropped, as pip's workflow never writes them.
    assert!(!requirements.iter().any(|e| e == "bin"), "{requirements:?}");
    // CompileBytecode: the runtime's own Python compiled the packages.
    assert!(ctx.join(".aws-sam/build/UvRequirementsFunction/__pycache__/six.cpython-311.pyc").is_file());
    // From uv.lock: the lock's markers for Python 3.13, no development group,
    // not the project itself, no console scripts.
    let project = entries(&ctx, "UvProjectFunction");
    for name in ["idna", "markupsafe", "bcrypt", "uv.lock", "pyproject.toml"] {
        assert!(project.iter().any(|e| e == name), "{name} in {project:?}");
    }
    for name in ["six.py", "iniconfig", "bin", "__pycache__"] {
        assert!(!project.iter().any(|e| e == name), "{name} not in {project:?}");
    }
    // A layer: its first compatible runtime's Python, under python/ (sam
    // cannot build it: it takes "python-uv" for the Python version).
    assert_eq!(
        entries(&ctx, "UvLayer/python"),
        [".lock", "requirements.txt", "shared.py", "six-1.16.0.dist-info", "six.py"]
    );
    // uv's cache outlives the build: a rebuild of the dependencies works offline.
    let cache = ctx.join(".aws-sam/cache/tools/uv");
    assert!(std::fs::read_dir(&cache).map(|mut d| d.next().is_some()).unwrap_or(false), "{}", cache.display());
    std::fs::remove_dir_all(ctx.join(".aws-sam/deps")).unwrap();
    ctx.accel(&["build"]).env("UV_OFFLINE", "1").assert_success();
    assert!(ctx.join(".aws-sam/build/UvProjectFunction/bcrypt").is_dir());
    // The dependencies are cached by manifest and lock file like pip's.
    let cached = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(cached.stderr.lines().filter(|l| l.contains("deps reused")).count(), 3, "{cached}");
    ctx.replace("project/uv.lock", "name = \"uv-project\"", "name = \"uv-project\"\n# edited");
    let relocked = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(relocked.stderr.lines().filter(|l| l.contains("deps built")).count(), 1, "{relocked}");
}

#[test]
fn python_uv_path_sources_are_keyed_with_the_dependencies() {
    // `[tool.uv.sources]` names a local wheel: editing it reinstalls, with
    // the lock (`uv export`) and without (`uv pip install -r pyproject.toml`).
    let ctx = TestContext::new();
    let wheel = |value: u32| {
        let script = format!(
            "import zipfile\nwith zipfile.ZipFile('wheels/lib-0.1.0-py3-none-any.whl', 'w') as z:\n    \
             z.writestr('lib/__init__.py', 'VALUE = {value}\\n')\n    \
             z.writestr('lib-0.1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: lib\\nVersion: 0.1.0\\n')\n    \
             z.writestr('lib-0.1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n    \
             z.writestr('lib-0.1.0.dist-info/RECORD', '')\n"
        );
        std::fs::create_dir_all(ctx.join("wheels")).unwrap();
        let made = std::process::Command::new("python3").arg("-c").arg(script).current_dir(ctx.join("")).status();
        assert!(made.unwrap().success());
    };
    wheel(1);
    ctx.write("fn/app.py", "import lib\n");
    ctx.write(
        "fn/pyproject.toml",
        "[project]\nname = \"fn\"\nversion = \"0.1.0\"\nrequires-python = \">=3.9\"\ndependencies = [\"lib\"]\n\n\
         [tool.uv.sources]\nlib = { path = \"../wheels/lib-0.1.0-py3-none-any.whl\" }\n",
    );
    ctx.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      \
         CodeUri: fn/\n      Handler: app.handler\n      Runtime: python3.12\n    Metadata:\n      BuildMethod: python-uv\n",
    );
    let locked = std::process::Command::new("uv").args(["lock", "-q"]).current_dir(ctx.join("fn")).status();
    assert!(locked.unwrap().success());
    let built = || {
        ctx.accel(&["build", "--cached"]).assert_success();
        ctx.read(".aws-sam/build/Fn/lib/__init__.py")
    };
    assert_eq!(built(), "VALUE = 1\n");
    wheel(2);
    assert_eq!(built(), "VALUE = 2\n", "with uv.lock");
    std::fs::remove_file(ctx.join("fn/uv.lock")).unwrap();
    assert_eq!(built(), "VALUE = 2\n");
    wheel(3);
    assert_eq!(built(), "VALUE = 3\n", "without uv.lock");
}

/// A PATH holding none of the build tools.
fn empty_path(ctx: &TestContext) -> String {
    let dir = ctx.root().join("empty-bin");
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}

#[test]
fn a_missing_python_or_uv_is_named_with_how_to_install_it() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-uv");
    let out = ctx.accel(&["build", "UvRequirementsFunction"]).env("PATH", &empty_path(&ctx)).assert_code(1);
    let line = only_error_line(&out);
    assert!(
        line.starts_with(
            "Error: UvRequirementsFunction: uv is not installed or not on PATH; install it with `pip install uv`"
        ),
        "{line}"
    );

    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-sdist");
    let out = ctx.accel(&["build"]).env("PATH", &empty_path(&ctx)).assert_code(1);
    let line = only_error_line(&out);
    assert!(
        line.starts_with(
            "Error: PureFunction: python3 is not installed or not on PATH; install it with `apt-get install python3"
        ),
        "{line}"
    );
    assert!(!Path::new(&ctx.join(".aws-sam/build/PureFunction")).exists());

    // A Python without pip (sam: "Failed to find a Python runtime containing pip").
    let venv = ctx.root().join("no-pip");
    let made = std::process::Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&venv).status();
    assert!(made.unwrap().success());
    let python = venv.join("bin/python3").display().to_string();
    let out = ctx.accel(&["build"]).env("ACCEL_PYTHON", &python).assert_code(1);
    assert_eq!(
        only_error_line(&out),
        format!(
            "Error: PureFunction: pip (for {python}) is not installed or not on PATH; install it with `apt-get install python3 \
             python3-pip` (or set ACCEL_PYTHON to a Python 3 with pip)"
        )
    );
}

#[test]
fn sync_puts_python_uv_dependencies_in_a_dependency_layer() {
    // As sam's auto dependency layer, chosen by runtime: uv functions too.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/py-uv").with_cloud();
    ctx.accel(&["sync", "--stack-name", "accel-py-uv"]).stdin("y\n").assert_success();
    let adl = ctx.join(".aws-sam/auto-dependency-layer");
    let code = listing(&adl.join("UvRequirementsFunction"));
    assert!(code.contains(&"app.py".to_string()) && !code.contains(&"six.py".to_string()), "{code:?}");
    let layer = std::fs::read_dir(&adl)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with("UvRequirementsFunction")
                && p.to_string_lossy().ends_with("DepLayer")
        })
        .unwrap_or_else(|| panic!("no dependency layer in {}", adl.display()));
    assert!(layer.join("python/six.py").is_file() && layer.join("python/bcrypt").is_dir(), "{}", layer.display());
}

/// The one file named `name` in an entry of the cache store `store`.
fn cached_file(ctx: &TestContext, store: &str, name: &str) -> String {
    let dir = ctx.join(&format!(".aws-sam/{store}/accel-v2"));
    let mut found = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path().join(name)).filter(|p| p.is_file());
    let file = found.next().unwrap_or_else(|| panic!("{name} in {}", dir.display()));
    assert!(found.next().is_none(), "one {name} in {}", dir.display());
    std::fs::read_to_string(file).unwrap()
}

#[test]
fn a_vendored_file_a_wheel_also_holds_is_the_sources_and_no_cache_entry_changes() {
    // src/six.py is vendored, and a local wheel the requirements name
    // holds a six.py too. sam installs, then copies the source over: the
    // vendored file wins. Neither cache entry may be written through the
    // artifact's hard links.
    let ctx = local_wheel_app();
    ctx.write("src/six.py", "VENDORED = True\n");
    for _ in 0..2 {
        ctx.accel(&["build", "--cached"]).assert_success();
        assert_eq!(ctx.read(".aws-sam/build/Fn/six.py"), "VENDORED = True\n");
        assert!(entries(&ctx, "Fn").contains(&"six-9.0.dist-info".to_string()), "{:?}", entries(&ctx, "Fn"));
        assert_eq!(cached_file(&ctx, "cache", "six.py"), "VENDORED = True\n");
        assert_eq!(cached_file(&ctx, "deps", "six.py"), "FROM_WHEEL = True\n");
    }
}

/// A python3.11 function `Fn` in `src/` whose requirements include
/// `shared.txt`, which names a local wheel holding `six.py`: no index needed.
fn local_wheel_app() -> TestContext {
    let ctx = TestContext::new();
    ctx.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: app.handler\n      Runtime: python3.11\n",
    );
    ctx.write("src/app.py", "import six\n");
    ctx.write("src/requirements.txt", "-r ../shared.txt\n");
    ctx.write("shared.txt", &format!("{}\n", ctx.join("wheels/six-9.0-py3-none-any.whl").display()));
    let wheel = crate::support::zip_of(&[
        ("six.py", "FROM_WHEEL = True\n"),
        ("six-9.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: six\nVersion: 9.0\n"),
        ("six-9.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        ("six-9.0.dist-info/RECORD", ""),
    ]);
    std::fs::create_dir_all(ctx.join("wheels")).unwrap();
    std::fs::write(ctx.join("wheels/six-9.0-py3-none-any.whl"), wheel).unwrap();
    ctx
}

#[cfg(unix)] // python_wrapper
#[test]
fn the_pythons_pip_runs_are_in_the_dependencies_key() {
    // Another Python builds other wheels from the same requirements.
    let ctx = local_wheel_app();
    ctx.accel(&["build", "--cached"]).assert_success();
    // pip's own, `ACCEL_PYTHON`.
    let pip_python = python_wrapper(&ctx, "python3", "");
    let build = || ctx.accel(&["build", "--cached"]).env("ACCEL_PYTHON", pip_python.to_str().unwrap());
    let out = build().assert_success();
    assert_eq!(step(&out, "Fn", "deps"), "built", "{out}");
    let out = build().assert_success();
    assert_eq!(step(&out, "Fn", "deps"), "reused", "{out}");
    // The runtime's own, which builds sdists, found first on PATH.
    let own = python_wrapper(&ctx, "python3.11", "");
    let path = format!("{}:{}", own.parent().unwrap().display(), std::env::var("PATH").unwrap());
    let out = build().env("PATH", &path).assert_success();
    assert_eq!(step(&out, "Fn", "deps"), "built", "{out}");
}
