//! Safety on disk and honest errors: what accel refuses, and that it never writes outside its folders.

use std::collections::BTreeMap;
use std::path::Path;
#[cfg(unix)]
use std::time::Instant;
use std::time::{Duration, SystemTime};

use crate::support::{RunOutput, TestContext, yaml};
#[cfg(unix)]
use crate::support::{TestCommand, files_of};

/// A Python function built from `src/`, with its code written.
const FUNCTION: &str = "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.12\n";

/// [`FUNCTION`] with the SAM transform, as a template to deploy needs.
fn deployable() -> String {
    format!("Transform: AWS::Serverless-2016-10-31\n{FUNCTION}")
}

/// A project holding `template` and a Python handler in `src/`.
fn project(template: &str) -> TestContext {
    let ctx = TestContext::new();
    ctx.write("src/app.py", "def handler(event, context):\n    return 1\n");
    ctx.write("template.yaml", template);
    ctx
}

/// The one `Error:` line of a run's stderr; fails on none, on several, and on a panic.
fn error_line(out: &RunOutput) -> String {
    assert!(!out.stderr.contains("panicked"), "accel panicked:\n{out}");
    assert_ne!(out.code, Some(101), "exit code 101 is a panic:\n{out}");
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one `Error:` line expected:\n{out}");
    errors[0].to_string()
}

/// Runs `accel ARGS`, expects exit `code` and one `Error:` line holding every one of `parts`.
fn assert_error(ctx: &TestContext, args: &[&str], code: i32, parts: &[&str]) -> RunOutput {
    let out = ctx.accel(args).run();
    let line = error_line(&out);
    assert_eq!(out.code, Some(code), "exit code {code} expected:\n{out}");
    for part in parts {
        assert!(line.contains(part), "expected {part:?} in the error line {line:?}:\n{out}");
    }
    out
}

/// Every file and folder under `dir`, `dir` included (symlinks not
/// followed): relative path → (bytes, modification time).
fn tree(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (Vec<u8>, SystemTime)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let body = if meta.is_file() { std::fs::read(&path).unwrap() } else { Vec::new() };
            out.insert(rel, (body, meta.modified().unwrap()));
            if meta.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    out.insert(".".into(), (Vec::new(), std::fs::metadata(dir).unwrap().modified().unwrap()));
    walk(dir, dir, &mut out);
    out
}

// ---------------------------------------------------------------- path safety

/// A function whose logical id is a path, in each form of function, never
/// gets a folder there: the template is refused at the id's line, and
/// nothing is written anywhere (the sentinel `victim/` beside the project,
/// the project itself).
#[test]
fn path_like_logical_ids_are_refused_and_nothing_is_written() {
    for id in ["../../victim", "../../../victim", "..", "a/b", "<absolute path of victim/>"] {
        for (kind, code) in [("AWS::Serverless::Function", "CodeUri: src"), ("AWS::Lambda::Function", "Code: src")] {
            let ctx = TestContext::new();
            let victim = ctx.root().join("victim");
            std::fs::create_dir_all(&victim).unwrap();
            std::fs::write(victim.join("keep.txt"), "sentinel\n").unwrap();
            // An older mtime, so that a write now would show.
            let old = SystemTime::now() - Duration::from_secs(3600);
            for path in [victim.join("keep.txt"), victim.clone()] {
                std::fs::File::open(&path).unwrap().set_modified(old).unwrap();
            }
            let id = if id == "<absolute path of victim/>" { victim.display().to_string() } else { id.to_string() };
            let template = format!(
                "Resources:\n  Good:\n    Type: AWS::SNS::Topic\n  {id}:\n    Type: {kind}\n    Properties:\n      {code}\n      Handler: app.handler\n      Runtime: python3.12\n"
            );
            ctx.write("src/app.py", "def handler(event, context):\n    return 1\n");
            ctx.write("template.yaml", &template);
            let before = tree(ctx.root());

            let out = ctx.accel(&["build"]).run();
            let line = error_line(&out);
            assert_eq!(out.code, Some(1), "{id} ({kind}):\n{out}");
            let file = ctx.join("template.yaml").display().to_string();
            for part in [format!("{file}:4"), format!("resource {id}"), "Logical ids must be alphanumeric".into()] {
                assert!(line.contains(&part), "{id} ({kind}): expected {part:?} in {line:?}");
            }

            // Nothing at all is written: not beside the project, not in it, not in HOME.
            assert_eq!(before, tree(ctx.root()), "{id} ({kind}): files or mtimes changed");
            assert_eq!(std::fs::read_to_string(victim.join("keep.txt")).unwrap(), "sentinel\n");
            assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1, "{id} ({kind}): nothing added to victim/");
            assert!(!ctx.join(".aws-sam/build").exists(), "{id} ({kind}): a refused template builds nothing");
        }
    }
}

// ---------------------------------------------------------- special files

/// Runs `command` in the background until its stderr shows an `Error:`
/// line (then lets it end), failing (and killing it) when none comes within
/// 10 s; returns the run and how long it took.
#[cfg(unix)]
fn run_bounded(command: TestCommand<'_>) -> (RunOutput, Duration) {
    const LIMIT: Duration = Duration::from_secs(10);
    let started = Instant::now();
    let running = command.spawn();
    while !running.stderr().lines().any(|l| l.starts_with("Error:")) {
        if started.elapsed() > LIMIT {
            panic!("no error after {LIMIT:?}: accel hangs (killed)\n{}", running.stop());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = running.wait();
    (out, started.elapsed())
}

#[cfg(unix)]
fn build_that_fails(ctx: &TestContext) -> (RunOutput, Duration) {
    let (out, took) = run_bounded(ctx.accel(&["build"]));
    assert!(out.stdout.contains("Build Failed"), "{out}");
    (out, took)
}

#[cfg(unix)] // devices and symlinks
#[test]
fn a_symlink_to_a_device_fails_fast_naming_it() {
    let ctx = project(FUNCTION);
    std::os::unix::fs::symlink("/dev/zero", ctx.join("src/zero")).unwrap();
    let (out, took) = build_that_fails(&ctx);
    assert_eq!(out.code, Some(1), "{out}");
    let line = error_line(&out);
    assert!(line.contains(&ctx.join("src/zero").display().to_string()), "names the file: {line}");
    assert!(took < Duration::from_secs(10), "took {took:?}: /dev/zero was read?");
}

#[cfg(unix)] // mkfifo
#[test]
fn a_fifo_fails_fast_naming_it() {
    let ctx = project(FUNCTION);
    let fifo = ctx.join("src/pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let (out, took) = build_that_fails(&ctx);
    assert_eq!(out.code, Some(1), "{out}");
    let line = error_line(&out);
    assert!(line.contains(&fifo.display().to_string()), "names the FIFO: {line}");
    assert!(took < Duration::from_secs(10), "took {took:?}: the FIFO was opened?");
}

#[cfg(unix)] // symlinks
#[test]
fn a_symlink_cycle_is_named() {
    let ctx = project(FUNCTION);
    std::os::unix::fs::symlink("..", ctx.join("src/loop")).unwrap();
    let (out, took) = build_that_fails(&ctx);
    assert_eq!(out.code, Some(1), "{out}");
    let line = error_line(&out);
    assert!(line.contains("cycle"), "{line}");
    assert!(line.contains(&ctx.join("src/loop").display().to_string()), "names the link: {line}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// The template itself must not be a FIFO (or a device): accel would wait
/// for a writer forever (`-t /dev/zero` would read until memory runs out).
#[cfg(unix)] // mkfifo and symlinks
#[test]
fn a_template_that_is_a_fifo_fails_fast() {
    let ctx = project(FUNCTION);
    let made = std::process::Command::new("mkfifo").arg(ctx.join("fifo.yaml")).status().expect("mkfifo");
    assert!(made.success());
    for args in [&["build", "-t", "fifo.yaml"][..], &["sync", "--stack-name", "s", "-t", "fifo.yaml"]] {
        let (out, took) = run_bounded(ctx.accel(args));
        assert_eq!(out.code, Some(1), "{out}");
        assert!(error_line(&out).contains("fifo.yaml"), "{out}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    }
    // A template.yaml that links to one is found by default, and refused the same way.
    std::fs::remove_file(ctx.join("template.yaml")).unwrap();
    std::os::unix::fs::symlink("fifo.yaml", ctx.join("template.yaml")).unwrap();
    let (out, _) = run_bounded(ctx.accel(&["build"]));
    assert_eq!(out.code, Some(1), "{out}");
}

/// As sam (which copies with symlinks followed): a link to a file or a
/// folder outside CodeUri puts the linked content in the artifact.
#[cfg(unix)] // symlinks
#[test]
fn symlinks_to_files_and_folders_outside_code_uri_are_followed() {
    let ctx = project(FUNCTION);
    let outside = ctx.root().join("shared");
    std::fs::create_dir_all(outside.join("lib/deep")).unwrap();
    std::fs::write(outside.join("lib/deep/util.py"), "UTIL = 1\n").unwrap();
    std::fs::write(outside.join("config.json"), "{\"k\": 1}\n").unwrap();
    std::os::unix::fs::symlink(outside.join("lib"), ctx.join("src/lib")).unwrap();
    std::os::unix::fs::symlink("../../shared/config.json", ctx.join("src/config.json")).unwrap();
    ctx.accel(&["build"]).assert_success();
    let artifact = ctx.join(".aws-sam/build/Fn");
    let files = files_of(&artifact);
    assert_eq!(files.get("lib/deep/util.py").map(Vec::as_slice), Some(&b"UTIL = 1\n"[..]), "{:?}", files.keys());
    assert_eq!(files.get("config.json").map(Vec::as_slice), Some(&b"{\"k\": 1}\n"[..]));
    assert!(files.contains_key("app.py"));
    for name in ["lib", "config.json"] {
        let meta = std::fs::symlink_metadata(artifact.join(name)).unwrap();
        assert!(!meta.file_type().is_symlink(), "{name}: the artifact holds the content, not a link");
    }
    assert_eq!(std::fs::read_to_string(outside.join("config.json")).unwrap(), "{\"k\": 1}\n", "the source is intact");
}

// --------------------------------------------------------- stale build state

/// A built function then moved to S3, to inline code, then its id reused by
/// another type: the built template follows the template every time, never
/// an earlier build.
fn stale_state_is_never_trusted(flags: &[&str]) {
    let ctx = project(FUNCTION);
    let build = || {
        let mut args = vec!["build"];
        args.extend(flags);
        ctx.accel(&args)
    };
    let built = ctx.join(".aws-sam/build/template.yaml");
    build().assert_success();
    assert_eq!(yaml(&built)["Resources"]["Fn"]["Properties"]["CodeUri"], "Fn");

    ctx.replace("template.yaml", "CodeUri: src", "CodeUri: s3://bucket/release.zip");
    build().assert_success();
    let fn_ = &yaml(&built)["Resources"]["Fn"];
    assert_eq!(fn_["Properties"]["CodeUri"], "s3://bucket/release.zip", "{flags:?}: not the old artifact");
    assert!(fn_["Metadata"].get("SamResourceId").is_none(), "{flags:?}: {fn_}");

    ctx.replace("template.yaml", "CodeUri: s3://bucket/release.zip", "InlineCode: \"def handler(e, c): return 2\"");
    build().assert_success();
    let props = &yaml(&built)["Resources"]["Fn"]["Properties"];
    assert_eq!(props["InlineCode"], "def handler(e, c): return 2", "{flags:?}");
    assert!(props.get("CodeUri").is_none(), "{flags:?}: no CodeUri beside InlineCode: {props}");

    // Back to a folder, then the id reused by a type whose Properties is a list.
    ctx.replace("template.yaml", "InlineCode: \"def handler(e, c): return 2\"", "CodeUri: src");
    build().assert_success();
    ctx.write("template.yaml", "Resources:\n  Fn:\n    Type: AWS::SNS::Topic\n    Properties:\n      - a\n      - b\n");
    let mut args = vec!["build"];
    args.extend(flags);
    assert_error(&ctx, &args, 1, &["template.yaml:2", "resource Fn", "'Properties' must be a mapping"]);

    // And by a type with proper Properties: no CodeUri, no SamResourceId appear.
    ctx.write("template.yaml", "Resources:\n  Fn:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: t\n");
    build().assert_success();
    let fn_ = &yaml(&built)["Resources"]["Fn"];
    assert_eq!(fn_["Properties"], serde_json::json!({"TopicName": "t"}), "{flags:?}");
    assert!(fn_.get("Metadata").is_none(), "{flags:?}: {fn_}");
}

#[test]
fn stale_build_state_is_never_trusted() {
    stale_state_is_never_trusted(&[]);
}

#[test]
fn stale_build_state_is_never_trusted_when_cached() {
    stale_state_is_never_trusted(&["--cached"]);
}

// ------------------------------------------------------------- honest errors

#[test]
fn a_code_uri_that_is_no_path_is_one_error_line() {
    for value in [
        "42",
        "true",
        "[a, b]",
        "!Select [5, [a, b]]",
        "!FindInMap [NoMap, k, v]",
        "!Join [\",\", \"notalist\"]",
        "!Ref P",
    ] {
        let template = format!(
            "Parameters:\n  P:\n    Type: String\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: {value}\n      Handler: app.handler\n      Runtime: python3.12\n"
        );
        let ctx = project(&template);
        for command in [&["build"][..], &["build", "--cached"]] {
            assert_error(
                &ctx,
                command,
                1,
                &["template.yaml:8", "resource Fn", "CodeUri must be a local path or an S3 location"],
            );
        }
        // With a value for P, `!Ref P` is a path like any other.
        if value == "!Ref P" {
            ctx.accel(&["build", "--parameter-overrides", "P=src"]).assert_success();
        }
    }
}

#[test]
fn a_template_without_resources_is_one_error_line() {
    for template in ["Description: nothing\n", "Resources:\n", "Resources: {}\n", "Resources: []\n"] {
        let ctx = project(template);
        let expected =
            if template.contains("[]") { "'Resources' must be a mapping" } else { "'Resources' section is required" };
        let out = assert_error(&ctx, &["build"], 1, &[expected, "template.yaml"]);
        assert!(!ctx.join(".aws-sam/build").exists(), "{template:?}: {out}");
    }
}

#[test]
fn template_encodings() {
    // A UTF-8 byte-order mark is read past, as sam does.
    let ctx = project("");
    std::fs::write(ctx.join("template.yaml"), [&b"\xEF\xBB\xBF"[..], FUNCTION.as_bytes()].concat()).unwrap();
    ctx.accel(&["build"]).assert_success();
    assert!(ctx.join(".aws-sam/build/Fn/app.py").is_file());

    // UTF-16 (with its BOM, either byte order) is named as such, never "not found".
    let units: Vec<u16> = FUNCTION.encode_utf16().collect();
    let little: Vec<u8> = [0xFF, 0xFE].into_iter().chain(units.iter().flat_map(|u| u.to_le_bytes())).collect();
    let big: Vec<u8> = [0xFE, 0xFF].into_iter().chain(units.iter().flat_map(|u| u.to_be_bytes())).collect();
    for bytes in [little, big] {
        std::fs::write(ctx.join("template.yaml"), bytes).unwrap();
        let out = assert_error(&ctx, &["build"], 1, &["UTF-16", "template.yaml"]);
        assert!(!out.stderr.contains("not found"), "{out}");
    }

    // Bytes that are not UTF-8.
    std::fs::write(ctx.join("template.yaml"), b"Resources:\n  T:\n    Type: AWS::SNS::Topic # caf\xE9\xFF\n").unwrap();
    let out = assert_error(&ctx, &["build"], 1, &["UTF-8", "template.yaml"]);
    assert!(!out.stderr.contains("not found"), "{out}");
}

#[test]
fn a_samconfig_switch_that_is_no_boolean_is_a_usage_error() {
    let ctx = project(FUNCTION);
    ctx.write("samconfig.toml", "version = 0.1\n[default.build.parameters]\ncached = \"maybe\"\n");
    let out = ctx.accel(&["build"]).assert_code(2);
    assert!(out.stderr.contains("is not a valid boolean"), "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(!ctx.join(".aws-sam/build").exists(), "nothing built");
}

#[test]
fn a_start_time_that_is_no_time_is_one_error_line() {
    let ctx = TestContext::new();
    assert_error(
        &ctx,
        &["logs", "--cw-log-group", "g", "--start-time", "yesterdayish"],
        1,
        &["Unable to parse the time provided by 'start-time'"],
    );
}

/// CloudFormation's rule is checked before anything is asked of AWS.
#[test]
fn an_invalid_stack_name_makes_no_aws_call() {
    let ctx = project(FUNCTION).with_cloud();
    for name in ["my_stack", "1stack", "a.b", ""] {
        let out = ctx.accel(&["sync", "--stack-name", name]).stdin("y\n").run();
        let line = error_line(&out);
        assert_eq!(out.code, Some(1), "{name:?}:\n{out}");
        assert!(line.contains("Invalid --stack-name"), "{name:?}: {line}");
        assert!(out.calls.is_empty(), "{name:?}: AWS was called: {:?}", out.calls);
        let out = ctx.accel(&["sync", "--code", "--stack-name", name]).stdin("y\n").run();
        assert_eq!(out.code, Some(1), "{name:?}:\n{out}");
        assert!(out.calls.is_empty(), "{name:?} --code: AWS was called: {:?}", out.calls);
    }
    assert!(!ctx.join(".aws-sam").exists(), "nothing built for a stack that cannot exist");
}

// ----------------------------------------------------- with a deployed stack

/// The `--debug` line of each AWS call: `YYYY-MM-DD HH:MM:SS,mmm | Service Operation: HTTP 200 in N ms, K attempt(s)`.
fn is_call_line(line: &str, service_operation: &str) -> bool {
    let Some((stamp, rest)) = line.split_once(" | ") else { return false };
    let b = stamp.as_bytes();
    let shape = "dddd-dd-dd dd:dd:dd,ddd";
    let stamped = b.len() == shape.len()
        && shape.bytes().zip(b).all(|(s, c)| if s == b'd' { c.is_ascii_digit() } else { s == *c });
    let Some(rest) = rest.strip_prefix(service_operation).and_then(|r| r.strip_prefix(": HTTP 200 in ")) else {
        return false;
    };
    let Some((ms, attempts)) = rest.split_once(" ms, ") else { return false };
    stamped
        && !ms.is_empty()
        && ms.bytes().all(|c| c.is_ascii_digit())
        && attempts.strip_suffix(" attempt(s)").is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 1))
}

fn is_debug_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 26
        && "dddd-dd-dd dd:dd:dd,ddd | "
            .bytes()
            .zip(b)
            .all(|(s, c)| if s == b'd' { c.is_ascii_digit() } else { s == *c })
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

/// That `path` is 0644 (on Windows, which has no modes, nothing to check).
fn assert_0644(path: &Path) {
    #[cfg(unix)]
    assert_eq!(mode(path), 0o644, "{} is {:o}", path.display(), mode(path));
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(unix)] // modes
#[test]
fn build_state_files_are_0644() {
    let ctx = project(FUNCTION);
    for flags in [&["build"][..], &["build", "--cached"]] {
        ctx.accel(flags).assert_success();
        for file in [".aws-sam/build.toml", ".aws-sam/build/template.yaml"] {
            assert_eq!(mode(&ctx.join(file)), 0o644, "{flags:?}: {file} is {:o}", mode(&ctx.join(file)));
        }
    }
}

#[test]
fn build_debug_shows_each_cache_decision() {
    let ctx = project(FUNCTION);
    let out = ctx.accel(&["build", "--debug", "--cached"]).assert_success();
    let decision = |out: &RunOutput, deps: &str, code: &str| {
        out.text().lines().any(|l| {
            is_debug_line(l)
                && l.contains(&format!("Fn: dependencies {deps} (key "))
                && l.contains(&format!("code {code} (key "))
        })
    };
    assert!(decision(&out, "-", "built"), "{out}");
    let out = ctx.accel(&["build", "--debug", "--cached"]).assert_success();
    assert!(decision(&out, "-", "reused"), "{out}");
    // Without --debug, no such line.
    let out = ctx.accel(&["build", "--cached"]).assert_success();
    assert!(!out.text().lines().any(is_debug_line), "{out}");
}

/// `--debug` on a sync logs every AWS call with its status, duration and
/// attempts, and never the secret key; `sync.toml` is left 0644.
#[test]
fn sync_debug_times_each_call_and_never_prints_the_secret() {
    const SECRET: &str = "s3cr3t-never-printed";
    let ctx = project(&deployable()).with_cloud();
    let out = ctx
        .accel(&["sync", "--debug", "--stack-name", "safety-debug"])
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdin("y\n")
        .assert_success();
    let text = out.text();
    assert!(text.lines().any(|l| is_call_line(l, "CloudFormation DescribeStacks")), "{out}");
    let debug_lines = text.lines().filter(|l| is_debug_line(l)).count();
    assert!(debug_lines >= 3, "{out}");
    assert!(!out.calls.is_empty(), "the sync reached the local cloud");
    assert!(!text.contains(SECRET), "the secret key was printed:\n{out}");
    assert_0644(&ctx.join(".aws-sam/sync.toml"));
    for file in [".aws-sam/build.toml", ".aws-sam/build/template.yaml"] {
        if ctx.join(file).exists() {
            assert_0644(&ctx.join(file));
        }
    }

    // A code sync too; and no secret in its debug output either.
    ctx.write("src/app.py", "def handler(event, context):\n    return 2\n");
    let out = ctx
        .accel(&["sync", "--code", "--debug", "--stack-name", "safety-debug"])
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .assert_success();
    assert!(out.text().lines().any(|l| is_call_line(l, "Lambda UpdateFunctionCode")), "{out}");
    assert!(!out.text().contains(SECRET), "{out}");
    assert_0644(&ctx.join(".aws-sam/sync.toml"));
}

/// As sam: a `--resource-id` that names nothing is skipped with sam's words.
#[test]
fn code_sync_of_an_unknown_resource_id_is_skipped() {
    let ctx = project(&deployable()).with_cloud();
    ctx.accel(&["sync", "--stack-name", "safety-ghost"]).stdin("y\n").assert_success();
    let out =
        ctx.accel(&["sync", "--code", "--resource-id", "Ghost", "--stack-name", "safety-ghost"]).stdin("y\n").run();
    assert!(out.text().contains("Cannot create SyncFlow for Ghost. Skipping."), "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.calls.iter().any(|c| c.contains("UpdateFunctionCode")), "nothing pushed: {:?}", out.calls);
}
