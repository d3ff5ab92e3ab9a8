//! Node.js builds as sam's (issue 13 items 9, 10, 16, 19): npm artifacts
//! hold what `npm pack` packs, unminified esbuild bundles name modules by
//! paths that do not depend on the cache, `--build-in-source` builds in the
//! source folder, and a missing tool is named in one line. `scripts/parity`
//! builds the same fixtures with sam and compares them byte for byte.

use std::collections::BTreeMap;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;

use crate::support::{RunOutput, TestContext, files_of, step};

/// The files of an artifact, without its installed `node_modules`.
fn code_files(ctx: &TestContext, artifact: &str) -> Vec<String> {
    let files = files_of(&ctx.join(&format!(".aws-sam/build/{artifact}")));
    files.into_keys().filter(|f| !f.starts_with("node_modules/")).collect()
}

/// What the unit labelled `label` did with its code (`built`, `reused`).
fn code_step(out: &RunOutput, label: &str) -> String {
    step(out, label, "code")
}

#[test]
fn npm_artifacts_hold_what_npm_pack_packs() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-pack");
    ctx.accel(&["build", "--cached"]).assert_success();
    // `files` decides, plus what npm always packs (package.json, README).
    assert_eq!(code_files(&ctx, "FilesFunction"), ["README.md", "index.js", "lib/util.js", "package.json"]);
    // `.npmignore` decides; sam adds the source's lock file and drops
    // `.npmrc`; the `prepare` script ran in the source, as sam's npm pack runs it.
    assert_eq!(code_files(&ctx, "IgnoreFunction"), ["index.js", "package-lock.json", "package.json", "prepared.txt"]);
    assert_eq!(ctx.read("ignore/prepared.txt"), "prepared\n");
    // npm's default rules: no `.npmrc`, `*.orig`, `npm-debug.log`, `build/config.gypi`;
    // a nested lock file stays, the root one comes back from the source.
    assert_eq!(
        code_files(&ctx, "PlainFunction"),
        ["build/kept.gypi", "index.js", "lib/one.js", "lib/package-lock.json", "package-lock.json", "package.json"]
    );
    for artifact in ["FilesFunction", "IgnoreFunction", "PlainFunction"] {
        let deps = ctx.join(&format!(".aws-sam/build/{artifact}/node_modules"));
        assert!(deps.join("is-number/index.js").is_file(), "{artifact}: dependencies installed");
        assert!(!deps.join(".package-lock.json").exists(), "{artifact}: no npm hidden lock file, as sam");
    }

    // The files that decide the copy are part of the code's key.
    ctx.write("ignore/.npmignore", "test/\n*.log\n");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "IgnoreFunction"), "built", "{}", out.stderr);
    assert_eq!(
        code_files(&ctx, "IgnoreFunction"),
        ["docs/guide.md", "index.js", "package-lock.json", "package.json", "prepared.txt"]
    );
    ctx.replace("files/package.json", r#""lib/""#, r#""lib/", "NOTES.md""#);
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "FilesFunction"), "built", "{}", out.stderr);
    assert!(code_files(&ctx, "FilesFunction").contains(&"NOTES.md".to_string()));
    assert_eq!(code_step(&out, "PlainFunction"), "reused", "{}", out.stderr);
}

#[test]
fn an_external_manifest_is_packed_with_its_folder() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-manifest");
    let build = || ctx.accel(&["build", "--cached", "-m", "other/package.json"]).assert_success();
    build();
    // sam packs the manifest's folder, then copies the source over it.
    assert_eq!(code_files(&ctx, "ManifestFunction"), ["extra.txt", "index.js", "notes.txt", "package.json"]);
    assert_eq!(ctx.read(".aws-sam/build/ManifestFunction/package.json"), ctx.read("other/package.json"));
    assert!(ctx.join(".aws-sam/build/ManifestFunction/node_modules/is-number").is_dir());

    // The manifest's folder is an input of the code: an edit there rebuilds it.
    ctx.write("other/extra.txt", "edited beside the manifest\n");
    let out = build();
    assert_eq!(code_step(&out, "ManifestFunction"), "built", "{}", out.stderr);
    assert_eq!(ctx.read(".aws-sam/build/ManifestFunction/extra.txt"), "edited beside the manifest\n");
    assert_eq!(code_step(&build(), "ManifestFunction"), "reused");

    // In source, sam installs beside the manifest and links the source's
    // node_modules to it; neither becomes code.
    let out = ctx.accel(&["build", "--cached", "-m", "other/package.json", "--build-in-source"]).assert_success();
    assert!(ctx.join("other/node_modules/is-number/index.js").is_file(), "installed beside the manifest");
    let link = std::fs::read_link(ctx.join("src/node_modules")).expect("src/node_modules is a link");
    assert_eq!(link, ctx.join("other/node_modules"));
    assert!(ctx.join(".aws-sam/build/ManifestFunction/node_modules/is-number/index.js").is_file());
    assert_eq!(code_files(&ctx, "ManifestFunction"), ["extra.txt", "index.js", "notes.txt", "package.json"]);
    assert_eq!(code_step(&out, "ManifestFunction"), "built", "in source is a key of its own");
}

#[test]
fn unminified_bundles_do_not_depend_on_the_cache() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-esbuild");
    ctx.accel(&["build", "--cached"]).assert_success();
    let bundle = ctx.read(".aws-sam/build/BundleFunction/app.js");
    // Module paths as in sam's scratch copy: node_modules beside the source.
    assert!(bundle.contains("// node_modules/is-number/index.js\n"), "{bundle}");
    assert!(bundle.contains("// lib/label.ts\n"), "{bundle}");
    assert!(!bundle.contains(".aws-sam"), "no cache path in the bundle:\n{bundle}");

    // Another dependency key (same packages; a description would not
    // change it): the same bytes.
    ctx.replace("src/package.json", r#""version": "1.0.0","#, r#""version": "1.0.0", "private": true,"#);
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(step(&out, "BundleFunction", "deps"), "built", "{}", out.stderr);
    assert_eq!(code_step(&out, "BundleFunction"), "built", "{}", out.stderr);
    assert_eq!(ctx.read(".aws-sam/build/BundleFunction/app.js"), bundle);
    // A clean build elsewhere: the same bytes too.
    let other = TestContext::from_fixture("tests/fixtures/apps/node-esbuild");
    other.accel(&["build"]).assert_success();
    assert_eq!(other.read(".aws-sam/build/BundleFunction/app.js"), bundle);

    // sam writes the built resource's Metadata with sorted keys.
    let template = ctx.read(".aws-sam/build/template.yaml");
    let order: Vec<usize> =
        ["BuildMethod:", "BuildProperties:", "EntryPoints:", "Minify:", "Target:", "SamResourceId:", "Zeta:"]
            .iter()
            .map(|key| template.find(key).unwrap_or_else(|| panic!("{key} in {template}")))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{template}");
}

#[test]
fn build_in_source_builds_in_the_source_folder() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-in-source");
    let out = ctx.accel(&["build", "--build-in-source", "--cached"]).assert_success();
    // sam's warning for a workflow that cannot build in source, then its default.
    let warning = r#"Workflow PythonPipBuilder does not support value "True" for building in source. Using default value "False"."#;
    assert!(out.stderr.contains(warning), "{}", out.stderr);
    assert!(ctx.join(".aws-sam/build/PyFunction/app.py").is_file());
    // npm: `npm update` in the source; the artifact has its node_modules.
    assert!(ctx.join("npmfn/node_modules/is-number/index.js").is_file(), "installed in the source");
    assert!(!ctx.join("npmfn/node_modules/is-odd").exists(), "production dependencies only");
    let artifact: BTreeMap<String, Vec<u8>> = files_of(&ctx.join(".aws-sam/build/NpmFunction"));
    let source_modules = files_of(&ctx.join("npmfn/node_modules"));
    let shipped: BTreeMap<String, Vec<u8>> = artifact
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("node_modules/").map(|k| (k.to_string(), v.clone())))
        .collect();
    assert_eq!(shipped, source_modules, "the artifact ships the source's node_modules, as sam links it");
    // esbuild: bundled in the source, beside its node_modules.
    assert!(ctx.join("esbfn/node_modules/is-number").is_dir());
    let bundle = ctx.read(".aws-sam/build/EsbuildFunction/app.js");
    assert!(bundle.contains("// node_modules/is-number/index.js\n"), "{bundle}");
    // make: runs in the source, which keeps what it wrote.
    assert_eq!(ctx.read("make/built.txt"), "made\n");
    assert_eq!(ctx.read(".aws-sam/build/MakeFunction/built.txt"), "made\n");

    // node_modules in the source is not code: the code is reused.
    let out = ctx.accel(&["build", "--build-in-source", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "NpmFunction"), "reused", "{}", out.stderr);
    assert_eq!(code_step(&out, "EsbuildFunction"), "reused", "{}", out.stderr);
    // But what the bundle read from it is: npm updates it in place, and a
    // patched module (patch-package) changes no lock file.
    let module = ctx.read("esbfn/node_modules/is-number/index.js");
    ctx.write("esbfn/node_modules/is-number/index.js", &format!("{module}\nmodule.exports.patched = \"patched\";\n"));
    let out = ctx.accel(&["build", "--build-in-source", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "EsbuildFunction"), "built", "{}", out.stderr);
    assert!(ctx.read(".aws-sam/build/EsbuildFunction/app.js").contains(r#".exports.patched = "patched";"#));
    // Back to a scratch build: nothing of the source's node_modules leaks in.
    ctx.accel(&["build", "--cached"]).assert_success();
    assert!(!ctx.join(".aws-sam/build/NpmFunction/node_modules/.package-lock.json").exists());
    assert_eq!(code_files(&ctx, "NpmFunction"), ["index.js", "package.json"]);
}

#[test]
fn samconfig_build_in_source_is_honoured() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-in-source");
    ctx.write("samconfig.toml", "version = 0.1\n[default.build.parameters]\nbuild_in_source = true\n");
    ctx.accel(&["build", "MakeFunction"]).assert_success();
    assert_eq!(ctx.read("make/built.txt"), "made\n", "make ran in the source");
    // The flag wins over the file.
    ctx.write(
        "make/Makefile",
        "build-MakeFunction:\n\techo again > built2.txt\n\tcp built2.txt \"$(ARTIFACTS_DIR)/\"\n",
    );
    ctx.accel(&["build", "MakeFunction", "--no-build-in-source"]).assert_success();
    assert!(!ctx.join("make/built2.txt").exists(), "a scratch copy, not the source");
    assert!(ctx.join(".aws-sam/build/MakeFunction/built2.txt").is_file());
}

#[test]
fn missing_node_tools_are_named_in_one_line() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-pack");
    let out = ctx.accel(&["build"]).env("PATH", "/nonexistent").assert_code(1);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(errors[0].contains("of binary: npm was not successful; install Node.js with npm"), "{}", errors[0]);

    // npm without the Node.js it runs on.
    let only_npm = tempfile::tempdir().unwrap();
    crate::support::symlink(real_npm(), only_npm.path().join("npm"));
    let out = ctx.accel(&["build"]).env("PATH", only_npm.path().to_str().unwrap()).assert_code(1);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(errors[0].contains("of binary: node was not successful; install Node.js with npm"), "{}", errors[0]);

    // esbuild without a package.json: nothing to install it from.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-esbuild");
    std::fs::remove_file(ctx.join("src/package.json")).unwrap();
    let out = ctx.accel(&["build"]).env("PATH", "/nonexistent").assert_code(1);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0].starts_with("Error: BundleFunction: NodejsNpmEsbuildBuilder:EsbuildBundle - Cannot find esbuild.")
    );
    assert!(errors[0].contains("`npm install -g esbuild`"), "{}", errors[0]);
}

#[test]
fn a_package_npm_cannot_pack_fails_as_sams() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-pack");
    ctx.write("plain/package.json", r#"{"dependencies": {"is-number": "7.0.0"}}"#);
    let out = ctx.accel(&["build", "PlainFunction"]).assert_code(1);
    let error = out.stderr.lines().find(|l| l.starts_with("Error:")).unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(error.starts_with("Error: PlainFunction: NodejsNpmBuilder:NpmPack - npm failed"), "{error}");
    assert!(out.stderr.contains("Invalid package, must have name and version"), "{}", out.stderr);
    assert!(!ctx.join(".aws-sam/build/PlainFunction").exists(), "nothing built");
}

#[test]
fn files_npm_packs_from_a_node_modules_folder_are_in_the_code_key() {
    // npm packs `lib/node_modules/` like any folder, and a bundled
    // dependency from the root `node_modules`: an edit to either rebuilds.
    let ctx = TestContext::new();
    ctx.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: index.handler\n      Runtime: nodejs20.x\n",
    );
    ctx.write(
        "src/package.json",
        r#"{"name": "app", "version": "1.0.0", "dependencies": {"foo": "file:../foo"}, "bundleDependencies": ["foo"]}"#,
    );
    ctx.write("src/index.js", "exports.handler = async () => 1;\n");
    ctx.write("src/lib/node_modules/kept.js", "one\n");
    ctx.write("foo/package.json", r#"{"name": "foo", "version": "1.0.0"}"#);
    ctx.write("src/node_modules/foo/package.json", r#"{"name": "foo", "version": "1.0.0"}"#);
    ctx.write("src/node_modules/foo/bundled.js", "one\n");
    ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(ctx.read(".aws-sam/build/Fn/lib/node_modules/kept.js"), "one\n");
    assert_eq!(ctx.read(".aws-sam/build/Fn/node_modules/foo/bundled.js"), "one\n");
    ctx.write("src/lib/node_modules/kept.js", "two\n");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "Fn"), "built", "{}", out.stderr);
    assert_eq!(ctx.read(".aws-sam/build/Fn/lib/node_modules/kept.js"), "two\n");
    ctx.write("src/node_modules/foo/bundled.js", "two\n");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "Fn"), "built", "{}", out.stderr);
    assert_eq!(ctx.read(".aws-sam/build/Fn/node_modules/foo/bundled.js"), "two\n");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(code_step(&out, "Fn"), "reused", "{}", out.stderr);
}

#[test]
fn npmrc_is_in_the_dependencies_key() {
    // The install reads `.npmrc` beside the manifest (registry, flags).
    let ctx = TestContext::new();
    ctx.write(
        "template.yaml",
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: index.handler\n      Runtime: nodejs20.x\n",
    );
    ctx.write("src/package.json", r#"{"name": "app", "version": "1.0.0"}"#);
    ctx.write("src/index.js", "exports.handler = async () => 1;\n");
    ctx.accel(&["build", "--cached"]).assert_success();
    ctx.write("src/.npmrc", "fund=false\n");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(step(&out, "Fn", "deps"), "built", "{out}");
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert_eq!(step(&out, "Fn", "deps"), "reused", "{out}");
}

/// The npm on PATH.
fn real_npm() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("npm"))
        .find(|p| p.is_file())
        .expect("npm on PATH")
}

/// `dir/npm`: records each run's arguments in `log`, runs `prelude`, then
/// the real npm. A `sh` script: the tests using it are Unix-only.
#[cfg(unix)]
fn npm_recorder(dir: &Path, log: &Path, prelude: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let (log, npm) = (log.display(), real_npm());
    let script = format!("#!/bin/sh\necho \"$@\" >> '{log}'\n{prelude}exec '{}' \"$@\"\n", npm.display());
    std::fs::write(dir.join("npm"), script).unwrap();
    std::fs::set_permissions(dir.join("npm"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

#[cfg(unix)] // npm_recorder
#[test]
fn manifests_differing_only_in_name_share_one_install() {
    // Three functions, one set of dependencies: npm runs once (issue 16),
    // and each artifact is what sam writes for it (`scripts/parity` builds
    // tests/fixtures/apps/node-twins with both).
    let ctx = TestContext::new();
    let mut template = String::from("Transform: AWS::Serverless-2016-10-31\nResources:\n");
    for (name, version) in [("A", "1.0.0"), ("B", "2.0.0"), ("C", "0.1.0")] {
        let code = name.to_lowercase();
        ctx.write(
            &format!("{code}/package.json"),
            &format!(r#"{{"name": "fn-{code}", "version": "{version}", "dependencies": {{"is-number": "7.0.0"}}}}"#),
        );
        ctx.write(&format!("{code}/index.js"), &format!("exports.handler = async () => '{name}';\n"));
        template.push_str(&format!(
            "  {name}:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: {code}/\n      Handler: index.handler\n      Runtime: nodejs20.x\n"
        ));
    }
    ctx.write("template.yaml", &template);
    let (bin, log) = (ctx.root().join("npm-bin"), ctx.root().join("npm.log"));
    npm_recorder(&bin, &log, "");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let installs = || {
        let runs = std::fs::read_to_string(&log).unwrap_or_default();
        runs.lines().filter(|l| l.starts_with("install ") || l.starts_with("ci ")).count()
    };
    let out = ctx.accel(&["build", "--cached"]).env("PATH", &path).assert_success();
    assert_eq!(installs(), 1, "one npm install for three functions\n{out}");
    let steps: Vec<String> = ["A", "B", "C"].iter().map(|name| step(&out, name, "deps")).collect();
    assert_eq!(steps.iter().filter(|s| *s == "built").count(), 1, "{out}");
    for name in ["A", "B", "C"] {
        let code = name.to_lowercase();
        let artifact = format!(".aws-sam/build/{name}");
        assert_eq!(code_files(&ctx, name), ["index.js", "package.json"]);
        assert_eq!(ctx.read(&format!("{artifact}/package.json")), ctx.read(&format!("{code}/package.json")));
        assert!(ctx.join(&format!("{artifact}/node_modules/is-number/index.js")).is_file(), "{name}");
        // npm's hidden lock file names the package that ran the install: sam deletes it.
        assert!(!ctx.join(&format!("{artifact}/node_modules/.package-lock.json")).exists(), "{name}");
    }

    // Another name: the code is built again, the dependencies are reused.
    ctx.replace("b/package.json", "fn-b", "fn-renamed");
    let out = ctx.accel(&["build", "--cached"]).env("PATH", &path).assert_success();
    assert_eq!(installs(), 1, "{out}");
    assert_eq!((step(&out, "B", "deps"), code_step(&out, "B")), ("reused".into(), "built".into()), "{out}");
    assert!(ctx.read(".aws-sam/build/B/package.json").contains("fn-renamed"));
    // Another dependency: another install.
    ctx.replace("c/package.json", "7.0.0", "6.0.0");
    let out = ctx.accel(&["build", "--cached"]).env("PATH", &path).assert_success();
    assert_eq!(installs(), 2, "{out}");
    assert!(ctx.read(".aws-sam/build/C/node_modules/is-number/package.json").contains("\"version\": \"6.0.0\""));
    assert!(ctx.read(".aws-sam/build/A/node_modules/is-number/package.json").contains("\"version\": \"7.0.0\""));
}

#[cfg(unix)] // npm_recorder
#[test]
fn a_locked_install_prefers_npms_cache_and_asks_the_registry_when_it_is_stale() {
    // A lock file pins every version: npm's cached metadata serves it, with
    // no round trip per package. Without one, npm resolves ranges from the
    // registry as sam's does. A locked version newer than the cached
    // metadata (npm's ETARGET, here faked) is looked up again.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/node-twins");
    let (bin, log) = (ctx.root().join("npm-bin"), ctx.root().join("npm.log"));
    let stale = "case \" $* \" in *\" --prefer-offline \"*) echo 'npm error code ETARGET' >&2; exit 1;; esac\n";
    npm_recorder(&bin, &log, stale);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    ctx.accel(&["build"]).env("PATH", &path).assert_success();
    let runs = std::fs::read_to_string(&log).unwrap();
    let installs: Vec<&str> = runs.lines().filter(|l| l.starts_with("install ")).collect();
    // One install for the two locked functions, tried offline first; one for the two others.
    assert_eq!(installs.len(), 3, "{runs}");
    assert_eq!(installs.iter().filter(|l| l.contains("--prefer-offline")).count(), 1, "{runs}");
    for name in ["AlphaFunction", "BetaFunction", "GammaFunction", "DeltaFunction"] {
        assert!(ctx.join(&format!(".aws-sam/build/{name}/node_modules/is-number/index.js")).is_file(), "{name}");
    }
}
