//! `accel build` on real apps: the produced tree and template, `build.toml`
//! in sam's format, and the cache, counted by what each unit did.

use std::collections::HashMap;

use serde_json::Value;

use crate::support::{RunOutput, TestContext, yaml};

/// One unit's report line, by whitespace-separated fields:
/// `LABEL… RUNTIME deps D code C artifact (N written|unchanged) MS ms`.
struct Unit {
    label: String,
    deps: String,
    code: String,
    /// `N` of `N written`, or `unchanged`.
    artifact: String,
}

fn unit(line: &str) -> Option<Unit> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let deps = words.iter().position(|w| *w == "deps")?;
    let after = |w: &str| words.iter().position(|x| *x == w).map(|i| words[i + 1].to_string());
    if deps < 2 || words.get(deps + 2) != Some(&"code") {
        return None;
    }
    // The label may hold spaces (`PyFunction, PyTwinFunction`); the runtime does not.
    Some(Unit {
        label: words[..deps - 1].join(" "),
        deps: after("deps")?,
        code: after("code")?,
        artifact: after("artifact")?,
    })
}

/// What each unit reported: label → (deps, code, artifact).
fn work(out: &RunOutput) -> HashMap<String, (String, String, String)> {
    let units: HashMap<_, _> =
        out.stderr.lines().filter_map(unit).map(|u| (u.label, (u.deps, u.code, u.artifact))).collect();
    assert!(!units.is_empty(), "no unit lines in:\n{out}");
    units
}

fn build(ctx: &TestContext, args: &[&str]) -> RunOutput {
    let mut all = vec!["build"];
    all.extend(args);
    ctx.accel(&all).assert_success()
}

fn app() -> TestContext {
    TestContext::from_fixture("tests/fixtures/apps/mixed")
}

/// The unit lines sorted (units finish in any order), then the rest.
fn build_snapshot(out: &RunOutput) -> String {
    let mut units: Vec<&str> = out.stderr.lines().filter(|l| unit(l).is_some()).collect();
    units.sort();
    let others: Vec<&str> = out.stderr.lines().filter(|l| unit(l).is_none()).collect();
    format!("--- stderr (unit lines sorted)\n{}\n{}\n--- stdout\n{}", units.join("\n"), others.join("\n"), out.stdout)
}

#[test]
fn build_output_snapshot() {
    let ctx = app();
    let first = build(&ctx, &["--cached"]);
    let again = build(&ctx, &["--cached"]);
    ctx.snapshot_settings().bind(|| {
        insta::assert_snapshot!("build_first", build_snapshot(&first));
        insta::assert_snapshot!("build_cached", build_snapshot(&again));
    });
}

#[test]
fn every_workflow_produces_sams_layout() {
    let ctx = app();
    let out = build(&ctx, &[]);
    assert!(out.stdout.contains("Build Succeeded"), "{out}");
    let b = ctx.join(".aws-sam/build");
    // Python with dependencies, built once for two functions sharing CodeUri.
    for f in ["PyFunction", "PyTwinFunction"] {
        assert!(b.join(f).join("app.py").is_file() && b.join(f).join("six.py").is_file(), "{f}");
        assert!(!b.join(f).join("__pycache__").exists(), "no host bytecode");
    }
    assert_eq!(work(&out)["PyFunction, PyTwinFunction"].2, "2", "one build, two artifact folders");
    // A Python layer: code and dependencies under python/.
    assert!(b.join("PyLayer/python/helper.py").is_file() && b.join("PyLayer/python/idna/__init__.py").is_file());
    // npm: production dependencies only.
    assert!(b.join("NodeFunction/index.js").is_file());
    assert!(b.join("NodeFunction/node_modules/is-number/index.js").is_file());
    assert!(!b.join("NodeFunction/node_modules/is-odd").exists(), "no dev dependencies");
    assert!(!b.join("NodeFunction/node_modules/.package-lock.json").exists(), "no npm hidden lock file, as sam");
    // esbuild: one bundle, dependency inlined, no node_modules.
    let bundle = std::fs::read_to_string(b.join("EsbuildFunction/app.js")).unwrap();
    assert!(bundle.contains("ts:") && bundle.contains("Number.isFinite"), "bundle holds the code and is-number");
    assert!(!b.join("EsbuildFunction/node_modules").exists());
    assert!(b.join("EsbuildFunction/app.js.map").is_file(), "Sourcemap: true");
    // makefile function and layer.
    assert!(b.join("MakeFunction/bootstrap").is_file() && b.join("MakeLayer/bin/tool").is_file());
    // Nested stack: its own template and artifacts.
    assert!(b.join("Child/ChildFunction/app.py").is_file());

    let template = yaml(&b.join("template.yaml"));
    let r = &template["Resources"];
    assert_eq!(r["PyFunction"]["Properties"]["CodeUri"], "PyFunction");
    assert_eq!(r["PyFunction"]["Metadata"]["SamResourceId"], "PyFunction");
    assert_eq!(r["PyLayer"]["Properties"]["ContentUri"], "PyLayer");
    assert_eq!(r["MakeLayer"]["Properties"]["ContentUri"], "MakeLayer");
    assert_eq!(r["Flow"]["Properties"]["DefinitionUri"], "../../flow.asl.json", "other paths stay valid");
    assert_eq!(r["Child"]["Properties"]["Location"], "Child/template.yaml");
    let esbuild = &r["EsbuildFunction"]["Properties"];
    assert_eq!(esbuild["Handler"], "app.handler", "the bundle sits at the artifact's root");
    assert_eq!(esbuild["Environment"]["Variables"]["NODE_OPTIONS"], "--max-old-space-size=256 --enable-source-maps");
    assert_eq!(r["InlineFunction"]["Properties"]["InlineCode"], "def handler(e, c): return 1");
    assert_eq!(r["PyFunction"]["Properties"]["Layers"][0]["Ref"], "PyLayer", "long-form intrinsics");
    assert_eq!(template["Globals"]["Function"]["Timeout"], 5, "Globals stay, as sam leaves them");
    let child = yaml(&b.join("Child/template.yaml"));
    assert_eq!(child["Resources"]["ChildFunction"]["Properties"]["CodeUri"], "ChildFunction");

    // build.toml parses in sam's format.
    let text = ctx.read(".aws-sam/build.toml");
    assert!(text.starts_with("# This file is auto generated by SAM CLI build command"));
    let toml: toml::Value = toml::from_str(&text).unwrap();
    let functions = toml["function_build_definitions"].as_table().unwrap();
    let shared =
        functions.values().find(|d| d["functions"].as_array().unwrap().len() == 2).expect("the shared definition");
    assert_eq!(shared["runtime"].as_str(), Some("python3.12"));
    assert_eq!(shared["packagetype"].as_str(), Some("Zip"));
    assert_eq!(shared["manifest_hash"].as_str().map(str::len), Some(32), "md5 of requirements.txt");
    let method = |d: &toml::Value| {
        d.get("metadata").and_then(|m| m.get("BuildMethod")).and_then(|b| b.as_str().map(str::to_string))
    };
    assert!(functions.values().any(|d| method(d).as_deref() == Some("makefile")));
    assert!(functions.values().any(|d| d["functions"][0].as_str() == Some("Child/ChildFunction")));
    let layers = toml["layer_build_definitions"].as_table().unwrap();
    assert_eq!(layers.len(), 2);
}

#[test]
fn cache_reuses_dependencies_and_code_independently() {
    let ctx = app();
    build(&ctx, &["--cached"]);

    // Nothing changed: no install, no code build, no artifact written.
    let out = build(&ctx, &["--cached"]);
    for (label, (deps, code, artifact)) in work(&out) {
        assert!(deps == "reused" || deps == "-", "{label}: deps {deps}");
        assert_eq!((code.as_str(), artifact.as_str()), ("reused", "unchanged"), "{label}");
    }

    // One source file: only that unit's code.
    ctx.write("py/app.py", "def handler(e, c):\n    return 'edited'\n");
    let w = work(&build(&ctx, &["--cached"]));
    assert_eq!(w["PyFunction, PyTwinFunction"], ("reused".into(), "built".into(), "2".into()));
    for (label, (_, code, _)) in w.iter().filter(|(l, _)| !l.starts_with("PyFunction")) {
        assert_eq!(code, "reused", "{label}");
    }
    assert!(ctx.read(".aws-sam/build/PyTwinFunction/app.py").contains("edited"));

    // A manifest: only that unit's dependencies.
    ctx.write("pylayer/requirements.txt", "idna==3.9\n");
    let w = work(&build(&ctx, &["--cached"]));
    assert_eq!(w["PyLayer"].0, "built");
    for (label, (deps, _, _)) in w.iter().filter(|(l, _)| *l != "PyLayer") {
        assert_ne!(deps, "built", "{label}");
    }
    assert!(ctx.join(".aws-sam/build/PyLayer/python/idna-3.9.dist-info").is_dir(), "the new version is in the layer");
    assert!(!ctx.join(".aws-sam/build/PyLayer/python/idna-3.10.dist-info").exists());

    // Functions without dependencies are not reinstalled (sam's miss).
    assert_eq!(w["Child/ChildFunction"].0, "-");
    assert_eq!(w["MakeFunction"], ("-".into(), "reused".into(), "unchanged".into()), "makefile builds are cached");
}

#[test]
fn a_moved_project_keeps_its_cache() {
    let ctx = app();
    build(&ctx, &["--cached"]);
    let target = ctx.root().join("elsewhere/moved");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::rename(ctx.path(), &target).unwrap();
    let w = work(&ctx.accel(&["build", "--cached"]).current_dir(&target).assert_success());
    assert_eq!(w.len(), 7);
    for (label, (deps, code, artifact)) in w {
        assert!(deps == "reused" || deps == "-", "{label}: deps {deps}");
        assert_eq!((code.as_str(), artifact.as_str()), ("reused", "unchanged"), "{label}");
    }
}

#[test]
fn a_failing_build_names_the_resource_and_keeps_the_previous_build() {
    let ctx = app();
    build(&ctx, &[]);
    let before = ctx.read(".aws-sam/build/template.yaml");
    ctx.write("py/app.py", "changed = True\n");
    ctx.write("py/requirements.txt", "no-such-package-accel-test==9.9.9\n");
    let out = ctx.accel(&["build", "--cached"]).assert_code(1);
    assert!(out.stdout.contains("Build Failed"), "{out}");
    let err = &out.stderr;
    assert!(err.contains("Error: PyFunction, PyTwinFunction: PythonPipBuilder:ResolveDependencies"), "{err}");
    assert!(err.contains("no-such-package-accel-test"), "the tool's output is shown: {err}");
    assert_eq!(before, ctx.read(".aws-sam/build/template.yaml"));
    assert!(ctx.read(".aws-sam/build/PyFunction/app.py").contains("six"), "the previous artifact is untouched");
    assert!(ctx.join(".aws-sam/build/NodeFunction/index.js").is_file());
}

#[test]
fn single_resource_build_keeps_the_others() {
    let ctx = app();
    build(&ctx, &[]);
    let w = work(&build(&ctx, &["PyFunction"]));
    let mut labels: Vec<_> = w.keys().cloned().collect();
    labels.sort();
    assert_eq!(labels, ["PyFunction", "PyLayer"], "the function and its layer only");
    let b = ctx.join(".aws-sam/build");
    assert!(b.join("NodeFunction/index.js").is_file(), "sam would have wiped it");
    let template = yaml(&b.join("template.yaml"));
    assert_eq!(template["Resources"]["NodeFunction"]["Properties"]["CodeUri"], "NodeFunction");

    let out = ctx.accel(&["build", "Nope"]).assert_code(1);
    assert!(out.stderr.contains("Unable to find a function or layer with name 'Nope'"), "{out}");
}

#[test]
fn an_interrupted_build_leaves_a_usable_cache() {
    let ctx = app();
    let running = ctx.accel(&["build", "--cached"]).spawn();
    // Kill it while installs are running.
    std::thread::sleep(std::time::Duration::from_millis(700));
    running.stop();
    build(&ctx, &["--cached"]);
    let b = ctx.join(".aws-sam/build");
    assert!(b.join("PyFunction/six.py").is_file() && b.join("NodeFunction/node_modules/is-number").is_dir());
    assert!(b.join("PyLayer/python/idna").is_dir());
    // And the next one has nothing to do.
    for (label, (_, code, artifact)) in work(&build(&ctx, &["--cached"])) {
        assert_eq!((code.as_str(), artifact.as_str()), ("reused", "unchanged"), "{label}");
    }
}

#[test]
fn exclude_skips_resources_and_their_paths_stay_valid() {
    let ctx = app();
    let w = work(&build(&ctx, &["-x", "NodeFunction", "--exclude", "EsbuildFunction", "-x", "PyLayer"]));
    assert!(!w.contains_key("NodeFunction") && !w.contains_key("EsbuildFunction") && !w.contains_key("PyLayer"));
    assert!(w.contains_key("PyFunction, PyTwinFunction"));
    let template = yaml(&ctx.join(".aws-sam/build/template.yaml"));
    assert_eq!(template["Resources"]["NodeFunction"]["Properties"]["CodeUri"], "../../node");
    assert_eq!(template["Resources"]["PyLayer"]["Properties"]["ContentUri"], "../../pylayer");
}

#[test]
fn go_builds_a_linux_binary_for_the_function_architecture() {
    let ctx = TestContext::from_fixture("tests/fixtures/apps/golang");
    build(&ctx, &["--cached"]);
    let binary = std::fs::read(ctx.join(".aws-sam/build/GoFunction/bootstrap")).unwrap();
    assert_eq!(&binary[..4], b"\x7fELF", "a Linux executable");
    assert_eq!(u16::from_le_bytes([binary[18], binary[19]]), 183, "for arm64 (EM_AARCH64)");
    let w = work(&build(&ctx, &["--cached"]));
    assert_eq!(w["GoFunction"], ("-".into(), "reused".into(), "unchanged".into()));
    // sam's flags: without `TrimGoPath` no `-trimpath`, so the binary names
    // the source folder (sam 1.170 writes the very same bytes); with it, not.
    let contains = |binary: &[u8], text: &str| binary.windows(text.len()).any(|w| w == text.as_bytes());
    let source = ctx.join("hello").display().to_string();
    assert!(contains(&binary, &source), "built without -trimpath");
    ctx.replace(
        "template.yaml",
        "BuildMethod: go1.x",
        "BuildMethod: go1.x\n      BuildProperties:\n        TrimGoPath: true",
    );
    build(&ctx, &["--cached"]);
    let trimmed = std::fs::read(ctx.join(".aws-sam/build/GoFunction/bootstrap")).unwrap();
    assert!(!contains(&trimmed, &source), "TrimGoPath: built with -trimpath");
}

#[test]
fn go_reports_a_compile_error_at_code_uri_rather_than_building_the_handler_folder() {
    // The handler's folder is tried only when CodeUri holds no Go files.
    let ctx = TestContext::from_fixture("tests/fixtures/apps/golang");
    ctx.replace("template.yaml", "Handler: bootstrap", "Handler: cmd");
    ctx.write("hello/cmd/main.go", "package main\n\nfunc main() {}\n");
    ctx.replace("hello/main.go", "fmt.Println(", "fmt.Println(undefinedName, ");
    let out = ctx.accel(&["build"]).assert_code(1);
    assert!(out.stderr.contains("undefined: undefinedName"), "{out}");
    assert!(!ctx.join(".aws-sam/build/GoFunction/bootstrap").exists());
}

#[test]
fn concurrent_builds_of_one_project_both_succeed() {
    let ctx = TestContext::from_fixture("templates/blog");
    let (a, b) = (ctx.accel(&["build", "--cached"]).spawn(), ctx.accel(&["build", "--cached"]).spawn());
    for running in [a, b] {
        let out = running.wait();
        assert_eq!(out.code, Some(0), "{out}");
    }
    let built = ctx.join(".aws-sam/build");
    assert!(built.join("HelloWorldFunction/six.py").is_file() && built.join("GreetingFunction/idna").is_dir());
    let state: Value = serde_json::from_str(&ctx.read(".aws-sam/accel-build.json")).unwrap();
    assert_eq!(state.as_object().unwrap().len(), 2, "the state file is whole: {state}");
    for (label, (_, code, artifact)) in work(&build(&ctx, &["--cached"])) {
        assert_eq!((code.as_str(), artifact.as_str()), ("reused", "unchanged"), "{label}");
    }
}

#[test]
fn identical_manifests_install_once_per_build() {
    let ctx = TestContext::new();
    let mut template = String::from("Resources:\n");
    for name in ["A", "B", "C"] {
        let code = name.to_lowercase();
        ctx.write(&format!("{code}/app.py"), &format!("NAME = '{name}'\n"));
        ctx.write(&format!("{code}/requirements.txt"), "six==1.16.0\n");
        template.push_str(&format!(
            "  {name}:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: {code}/\n      Handler: app.h\n      Runtime: python3.12\n",
        ));
    }
    ctx.write("template.yaml", &template);
    let w = work(&build(&ctx, &[]));
    let installs = w.values().filter(|(deps, _, _)| deps == "built").count();
    assert_eq!(installs, 1, "one pip install for three functions: {w:?}");
    for name in ["A", "B", "C"] {
        assert!(ctx.join(".aws-sam/build").join(name).join("six.py").is_file(), "{name}");
    }
}
